"""Dataset specs: what the harness knows about each benchmark dataset, registered by the loader
modules (:mod:`harness.data.loaders`); :mod:`harness.data.registry` looks them up by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.records import Dataset, ScoreScale

if TYPE_CHECKING:
    from harness.data.partitions import Assignment


@dataclass(frozen=True)
class DatasetSpec:
    """What the harness knows about a benchmark dataset.

    ``load_release`` reads the original release layout; ``pyiqa_meta`` names the CSV in pyiqa's
    ``meta_info/`` layout, read by ``load_pyiqa``. Expected sizes are checked with a warning
    (partial copies are common), never enforced silently. ``official_partition`` reads the
    train/validation/test partition the release defines, if it defines one (None when the
    loaded copy lacks the file that holds it).
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
    official_partition: Callable[[Dataset], Assignment | None] | None = None


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    for key in (spec.name, *spec.aliases):
        if key in _SPECS:
            raise ValueError(f"dataset name {key!r} is already registered")
        _SPECS[key] = spec
    return spec


def registered_specs() -> dict[str, DatasetSpec]:
    """Name or alias -> spec, as registered so far (import harness.data.registry for all)."""
    return dict(_SPECS)
