"""Helpers shared by the loaders: case-insensitive paths, safe joins, table reading."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath, PureWindowsPath

from harness.data.records import Problem
from harness.errors import DatasetError


class DatasetLayoutError(DatasetError):
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


def resolve_inside(root: Path, relative: str, location: str, folder: str = ""
                   ) -> tuple[Path | None, Problem | None]:
    """``root / folder / relative`` if ``relative`` stays inside; else a Problem naming the row.

    The one check every loader's metadata passes through: it must never point outside the
    dataset. ``..`` components, absolute paths and Windows drive or UNC paths (``C:\\x``,
    ``\\\\host\\x``) are refused on every OS, as is a NUL character (no file name holds one).
    ``folder`` is the loader's own image folder (trusted), which the metadata's names are
    relative to. Symbolic links under the root are followed: whoever owns the folder made them,
    and archives holding links are refused when installed (``download.install_archive``).
    """
    if "\0" in relative:
        return None, Problem(location, f"path {relative!r} contains a NUL character")
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or PureWindowsPath(relative).drive:
        return None, Problem(location, f"path {relative!r} escapes the dataset root")
    return root / folder / posix, None


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line, fields) of each non-blank row of a comma-separated UTF-8 file.

    A row's line is the one it starts on (a quoted field may span lines); a file that is not
    UTF-8 CSV raises DatasetLayoutError naming it.
    """
    rows: list[tuple[int, list[str]]] = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
            start = reader.line_num + 1
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((start, row))
                start = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as err:
            raise DatasetLayoutError(f"{path}: not readable as UTF-8 CSV near line "
                                     f"{reader.line_num + 1} ({err})") from err
    return header, rows


def image_id(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
