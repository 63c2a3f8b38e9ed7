"""A user's own scored images: a folder plus a CSV (``path, mos`` and optionally ``ref``,
``distortion``, or columns of the user's naming), on a score scale the user states, since a CSV
cannot say which way is better."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from harness.data.layout import DatasetLayoutError, image_id, read_csv, resolve_inside
from harness.data.records import Dataset, ImageRecord, Problem, ScoreScale

# What each column holds (its role) -> the column's name unless the caller names another.
DEFAULT_COLUMNS = {"path": "path", "score": "mos", "group": "ref", "distortion": "distortion"}
REQUIRED_ROLES = ("path", "score")


def parse_score(value: object) -> tuple[float | None, str | None]:
    """``value`` as a finite float, or the reason it is not one (shared with the HF loader)."""
    try:
        score = float(value)  # type: ignore[arg-type]  # any object: TypeError is caught
    except (TypeError, ValueError):
        return None, f"score {value!r} is not a number"
    if not math.isfinite(score):
        return None, f"score {value!r} is not a finite number"
    return score, None


def load_custom_csv(csv_path: str | Path, scale: ScoreScale, root: str | Path | None = None,
                    name: str = "custom", columns: Mapping[str, str] | None = None) -> Dataset:
    """Read a user's CSV into a Dataset without opening any image.

    ``columns`` maps a role (``path``, ``score``, ``group``, ``distortion``) to the CSV's name
    for that column (matched ignoring case and surrounding spaces); a role not named there reads
    its default column (:data:`DEFAULT_COLUMNS`), an optional one only if present. ``root``
    (default: the CSV's folder) is where the path column is relative to. The kind is "synthetic"
    when a group column names content groups (reference images), else "authentic" (each image
    its own group). Bad rows (an empty path, group or distortion, a score that is not a number,
    a duplicate path) become Problems located as ``<file>:<line>`` (the header is line 1; a
    blank line holds no row), never records, so nothing is dropped silently.
    """
    csv_path = Path(csv_path).expanduser().resolve()
    root = Path(root).expanduser().resolve() if root is not None else csv_path.parent
    if not csv_path.is_file():
        raise DatasetLayoutError(f"{csv_path}: CSV file not found")
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: image folder not found")
    header, rows = read_csv(csv_path)
    positions = _match_columns(csv_path, header, columns or {})

    records: list[ImageRecord] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        location = f"{csv_path.name}:{line}"
        if any(cell.strip() for cell in row[len(header):]):  # an unquoted comma in a path?
            problems.append(Problem(location, f"row has {len(row)} fields but the header has "
                                              f"{len(header)}"))
            continue
        row = row + [""] * (len(header) - len(row))  # missing trailing cells are empty
        values = {role: row[pos].strip() for role, pos in positions.items()}
        record = _record(root, values, location)
        if isinstance(record, ImageRecord) and record.image_id in first_line:
            record = Problem(location, f"duplicate path {values['path']!r} "
                                       f"(first at line {first_line[record.image_id]})")
        if isinstance(record, Problem):
            problems.append(record)
            continue
        first_line[record.image_id] = line
        records.append(record)

    distortions = tuple(dict.fromkeys(r.distortion for r in records if r.distortion))
    return Dataset(name=name, root=root, records=records, scale=scale,
                   kind="synthetic" if "group" in positions else "authentic", layout="csv",
                   distortion_types=distortions, problems=problems)


def _match_columns(csv_path: Path, found: list[str], given: Mapping[str, str]) -> dict[str, int]:
    """Role -> position of its column, matched ignoring case and surrounding spaces; a required
    role's column, or one the caller named, must be there."""
    unknown = sorted(set(given) - set(DEFAULT_COLUMNS))
    if unknown:
        raise DatasetLayoutError(f"{csv_path}: unknown column role(s) {unknown}; expected "
                                 f"{list(DEFAULT_COLUMNS)}")
    wanted = {role: given.get(role, default) for role, default in DEFAULT_COLUMNS.items()}
    positions = {str(col).strip().lower(): pos for pos, col in enumerate(found)}
    missing = [wanted[role] for role in DEFAULT_COLUMNS
               if (role in REQUIRED_ROLES or role in given)
               and wanted[role].strip().lower() not in positions]
    if missing:
        optional = [wanted[role] for role in DEFAULT_COLUMNS if role not in REQUIRED_ROLES]
        raise DatasetLayoutError(
            f"{csv_path}: missing column(s) {missing}; expected "
            f"{[wanted[role] for role in REQUIRED_ROLES]} (optional {optional}), found {found}")
    return {role: positions[name.strip().lower()] for role, name in wanted.items()
            if name.strip().lower() in positions}


def _record(root: Path, values: dict[str, str], location: str) -> ImageRecord | Problem:
    if not values["path"]:
        return Problem(location, "empty path")
    path, problem = resolve_inside(root, values["path"], location)
    if problem is not None:
        return problem
    score, reason = parse_score(values["score"])
    if reason is not None:
        return Problem(location, reason)
    assert path is not None and score is not None  # no problem and no reason: both were set
    rel = image_id(root, path)
    group = values.get("group", rel)
    if not group:
        return Problem(location, "empty content group: it is needed to keep splits apart")
    if values.get("distortion") == "":  # a per-distortion table would lose the image silently
        return Problem(location, "empty distortion type")
    return ImageRecord(image_id=rel, path=path, score=score, group=group.replace("\\", "/"),
                       distortion=values.get("distortion"), source=location)
