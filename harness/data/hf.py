"""Any Hugging Face ``datasets`` dataset with an image column and a score column.

The harness works on image files (validation, decoded-image cache, pyiqa metrics), so each image
is written once to an export folder, named by row index, and reused by later calls.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from PIL import Image

from harness.data.custom import parse_score
from harness.data.layout import DatasetLayoutError, image_id
from harness.data.records import Dataset, ImageRecord, Problem, ScoreScale
from harness.fileio import atomic_write_bytes

# Formats whose original bytes are kept as they are; anything else is re-encoded as PNG.
_KEEP_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp",
                 "TIFF": ".tif", "GIF": ".gif"}


def load_hf_dataset(source: str | Path, *, image_column: str, score_column: str, scale: ScoreScale,
                    cache_dir: str | Path, group_column: str | None = None, split: str | None = None,
                    allow_download: bool = False, name: str | None = None) -> Dataset:
    """Load ``source`` and export its images under ``cache_dir``.

    ``source`` is a ``save_to_disk`` folder, or a hub dataset name, which is fetched only with
    ``allow_download=True`` so that no run touches the network by surprise. ``group_column``
    names the content group (the reference image, for synthetic distortions: kind "synthetic");
    without it each image is its own group ("authentic"). Rows with a bad score or an image that
    does not decode become Problems located as ``<name>:<row>`` (row index in the split).
    """
    table, label = _open(source, split, allow_download)
    name = name or label
    for column in (image_column, score_column, group_column):
        if column is not None and column not in table.column_names:
            raise DatasetLayoutError(f"{label}: no column {column!r}; columns are {table.column_names}")
    fingerprint = table._fingerprint  # of the data as stored, before the cast below
    table = _undecoded(table, image_column, label)
    export = _export_dir(Path(cache_dir).expanduser().resolve(), label, fingerprint, image_column)

    existing = {p.stem: p for p in export.iterdir() if not p.name.startswith(".")}
    records: list[ImageRecord] = []
    problems: list[Problem] = []
    columns = [c for c in (image_column, score_column, group_column) if c is not None]
    for row, values in enumerate(table.select_columns(columns)):
        location = f"{name}:{row}"
        score, reason = parse_score(values[score_column])
        group = None if group_column is None else values[group_column]
        if reason is None and group_column is not None and group in (None, ""):
            reason = f"empty {group_column!r}: the content group is needed to keep splits apart"
        path = existing.get(_stem(row))
        if reason is None and path is None:
            path, reason = _export_image(values[image_column], export, row)
        if reason is not None:
            problems.append(Problem(location, reason))
            continue
        assert path is not None and score is not None  # no reason: both were set
        rel = image_id(export, path)
        records.append(ImageRecord(image_id=rel, path=path, score=score,
                                   group=rel if group is None else str(group), source=location))
    return Dataset(name=name, root=export, records=records, scale=scale,
                   kind="authentic" if group_column is None else "synthetic", layout="hf",
                   problems=problems)


def _open(source: str | Path, split: str | None, allow_download: bool) -> tuple[Any, str]:
    """The split as a ``datasets.Dataset`` plus a label for messages and folder names."""
    import datasets

    local = Path(source).expanduser()
    if local.exists():
        loaded = datasets.load_from_disk(str(local))
        label = local.resolve().name
    elif not allow_download:
        raise DatasetLayoutError(
            f"{source!r} is not a local dataset folder; fetching it from the Hugging Face hub "
            "downloads data, which needs an explicit allow_download=True")
    else:
        loaded = datasets.load_dataset(str(source), split=split)
        label = str(source).replace("/", "--")
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) == 1:
            split = next(iter(loaded))
        if split not in loaded:
            raise DatasetLayoutError(f"{source}: choose a split with split=...; it has {list(loaded)}")
        loaded = loaded[split]
    return loaded, label if split is None else f"{label}-{split}"


def _export_dir(cache_dir: Path, label: str, fingerprint: str, image_column: str) -> Path:
    """One folder per dataset version and image column, so a rebuilt dataset never reuses
    another version's files (the ``datasets`` fingerprint changes when the data does)."""
    identity = f"{fingerprint}:{image_column}".encode()
    export = cache_dir / f"{label}-{image_column}-{hashlib.sha256(identity).hexdigest()[:12]}"
    export.mkdir(parents=True, exist_ok=True)
    return export


def _undecoded(table: Any, image_column: str, label: str) -> Any:
    """The table with ``image_column`` yielding ``{"bytes", "path"}`` so originals can be kept."""
    import datasets

    feature = table.features[image_column]
    if not isinstance(feature, datasets.Image):
        raise DatasetLayoutError(f"{label}: column {image_column!r} is {feature}, not an Image column")
    return table.cast_column(image_column, datasets.Image(decode=False))


def _stem(row: int) -> str:
    return f"{row:06d}"


def _export_image(value: dict | None, export: Path, row: int) -> tuple[Path | None, str | None]:
    """Write the row's image (original bytes if in a common format, else PNG) atomically."""
    data = (value or {}).get("bytes")
    src = (value or {}).get("path")
    if data is None and src and Path(src).is_file():
        data = Path(src).read_bytes()
    if data is None:
        return None, "no image bytes and no readable image path"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            suffix = _KEEP_FORMATS.get(image.format or "")
            if suffix is None:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                data, suffix = buffer.getvalue(), ".png"
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return None, f"image does not decode: {error}"
    path = export / f"{_stem(row)}{suffix}"
    atomic_write_bytes(path, data)
    return path, None
