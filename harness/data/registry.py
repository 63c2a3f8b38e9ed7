"""The benchmark datasets by name, and ``load_dataset`` which picks the layout it finds."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.data.layout import DatasetLayoutError, find_child
from harness.data.records import Dataset, ScoreScale


@dataclass(frozen=True)
class DatasetSpec:
    """What the harness knows about a benchmark dataset.

    ``load_release`` reads the original release layout; ``pyiqa_meta`` names the CSV in pyiqa's
    ``meta_info/`` layout, read by ``load_pyiqa``. Expected sizes are checked with a warning
    (partial copies are common), never enforced silently.
    """

    name: str
    title: str
    kind: str  # "synthetic" or "authentic"
    scale: ScoreScale
    expected_images: int
    expected_groups: int | None
    distortion_types: tuple[str, ...]
    load_release: Callable[[Path], Dataset]
    load_pyiqa: Callable[[Path], Dataset] | None = None
    pyiqa_meta: str | None = None
    aliases: tuple[str, ...] = ()


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    for key in (spec.name, *spec.aliases):
        if key in _SPECS:
            raise ValueError(f"dataset name {key!r} is already registered")
        _SPECS[key] = spec
    return spec


def list_datasets() -> list[str]:
    _ensure_loaded()
    return sorted({spec.name for spec in _SPECS.values()})


def get_dataset_spec(name: str) -> DatasetSpec:
    _ensure_loaded()
    key = name.lower().replace("-", "").replace("_", "")
    for spec_key, spec in _SPECS.items():
        if spec_key.replace("-", "").replace("_", "") == key:
            return spec
    close = difflib.get_close_matches(name.lower(), list(_SPECS), n=3)
    raise KeyError(f"unknown dataset {name!r}" + (f"; did you mean {close}?" if close else "")
                   + f" Known: {list_datasets()}")


def load_dataset(name: str, root: str | Path) -> Dataset:
    """Read dataset ``name`` from ``root``, in pyiqa's meta_info layout if present, else the
    original release layout. Parsing problems are collected on ``Dataset.problems``."""
    spec = get_dataset_spec(name)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: dataset folder not found")
    if spec.pyiqa_meta and spec.load_pyiqa and find_child(root, f"meta_info/{spec.pyiqa_meta}",
                                                          required=False):
        return spec.load_pyiqa(root)
    return spec.load_release(root)


def _ensure_loaded() -> None:
    """Import the loader modules, which register their specs."""
    from harness.data import loaders  # noqa: F401
