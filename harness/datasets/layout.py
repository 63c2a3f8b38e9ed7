"""Helpers shared by the loaders: case-insensitive paths, safe joins, table reading."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from .records import Problem


class DatasetLayoutError(ValueError):
    """The folder does not hold the layout a loader expects; the message says what is missing."""


def find_child(parent: Path, name: str, *, required: bool = True) -> Path | None:
    """``parent / name`` matched case-insensitively (release archives vary in case).

    ``name`` may contain '/' for nested paths; each component is matched in turn.
    """
    current = parent
    for part in PurePosixPath(name).parts:
        exact = current / part
        if exact.exists():
            current = exact
            continue
        matches = [c for c in current.iterdir() if c.name.lower() == part.lower()] \
            if current.is_dir() else []
        if not matches:
            if required:
                raise DatasetLayoutError(f"{parent}: expected {name!r} (any letter case), not found")
            return None
        current = matches[0]
    return current


def resolve_inside(root: Path, relative: str, location: str) -> tuple[Path | None, Problem | None]:
    """``root / relative`` if it stays inside ``root``; else a Problem naming the row.

    Metadata must never point outside the dataset (``../``, absolute paths).
    """
    posix = relative.replace("\\", "/")
    if PurePosixPath(posix).is_absolute() or ".." in PurePosixPath(posix).parts:
        return None, Problem(location, f"path {relative!r} escapes the dataset root")
    return root / posix, None


def image_id(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
