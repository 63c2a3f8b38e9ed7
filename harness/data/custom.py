"""A user's own scored images: a folder plus a CSV (``path, mos`` and optionally ``ref``,
``distortion``), on a score scale the user states, since a CSV cannot say which way is better."""

from __future__ import annotations

import math
from pathlib import Path

from harness.data.layout import DatasetLayoutError, image_id, read_csv, resolve_inside
from harness.data.records import Dataset, ImageRecord, Problem, ScoreScale

REQUIRED_COLUMNS = ("path", "mos")
OPTIONAL_COLUMNS = ("ref", "distortion")


def parse_score(value: object) -> tuple[float | None, str | None]:
    """``value`` as a finite float, or the reason it is not one (shared with the HF loader)."""
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"score {value!r} is not a number"
    if not math.isfinite(score):
        return None, f"score {value!r} is not a finite number"
    return score, None


def load_custom_csv(csv_path: str | Path, scale: ScoreScale, root: str | Path | None = None,
                    name: str = "custom") -> Dataset:
    """Read a user's CSV into a Dataset without opening any image.

    ``root`` (default: the CSV's folder) is where the ``path`` column is relative to. The kind is
    "synthetic" when a ``ref`` column names content groups, else "authentic" (each image its own
    group). Bad rows become Problems located as ``<file>:<line>`` (the header is line 1; a blank
    line holds no row), never records, so nothing is dropped silently.
    """
    csv_path = Path(csv_path).expanduser().resolve()
    root = Path(root).expanduser().resolve() if root is not None else csv_path.parent
    if not csv_path.is_file():
        raise DatasetLayoutError(f"{csv_path}: CSV file not found")
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: image folder not found")
    header, rows = read_csv(csv_path)
    columns = _match_columns(csv_path, header)

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
        values = {key: row[pos].strip() for key, pos in columns.items()}
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
                   kind="synthetic" if "ref" in columns else "authentic", layout="csv",
                   distortion_types=distortions, problems=problems)


def _match_columns(csv_path: Path, found: list[str]) -> dict[str, int]:
    """Known column name -> position, matched ignoring case and surrounding spaces."""
    positions = {str(col).strip().lower(): pos for pos, col in enumerate(found)}
    missing = [col for col in REQUIRED_COLUMNS if col not in positions]
    if missing:
        raise DatasetLayoutError(
            f"{csv_path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            f"(optional {list(OPTIONAL_COLUMNS)}), found {found}")
    return {col: positions[col] for col in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if col in positions}


def _record(root: Path, values: dict[str, str], location: str) -> ImageRecord | Problem:
    if not values["path"]:
        return Problem(location, "empty path")
    path, problem = resolve_inside(root, values["path"], location)
    if problem is not None:
        return problem
    score, reason = parse_score(values["mos"])
    if reason is not None:
        return Problem(location, reason)
    rel = image_id(root, path)
    group = values.get("ref", rel)
    if not group:
        return Problem(location, "empty ref: the content group is needed to keep splits apart")
    return ImageRecord(image_id=rel, path=path, score=score, group=group.replace("\\", "/"),
                       distortion=values.get("distortion") or None, source=location)
