"""Dataset specs: what the harness knows about each benchmark dataset, registered by the loader
modules (:mod:`harness.data.loaders`); :mod:`harness.data.registry` looks them up by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.records import Dataset, ScoreScale
from harness.errors import InvalidOptionError, PluginError, unknown_name
from harness.plugins import PluginInfo, loading
from lifeiqa.naming import Registry

if TYPE_CHECKING:
    from harness.data.partitions import Assignment


@dataclass(frozen=True)
class DatasetSpec:
    """What the harness knows about a benchmark dataset.

    ``load_release`` reads the original release layout; ``pyiqa_meta`` names the CSV in pyiqa's
    ``meta_info/`` layout, read by ``load_pyiqa``. Expected sizes are checked with a warning
    (partial copies are common), never enforced silently. ``official_partition`` reads the
    train/validation/test partition the release defines, if it defines one (None when the
    loaded copy lacks the file that holds it). ``plugin``: the plug-in that registered it
    (set by :func:`register_dataset`; None for the harness's own loaders), which results record.
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
    plugin: PluginInfo | None = None


def dataset_key(name: str) -> str:
    """``name`` as lookups compare it: any letter case, ``-`` and ``_`` ignored (KADID-10k)."""
    return name.lower().replace("-", "").replace("_", "")


def _taken(name: str, new: DatasetSpec, known: DatasetSpec) -> InvalidOptionError:
    whose = f"plug-in {known.plugin.label}'s" if known.plugin else "built-in"
    message = f"dataset name {name!r} would shadow the {whose} dataset {known.name!r} ({known.title})"
    if new.plugin is not None:
        return PluginError(f"plug-in {new.plugin.label}: {message}")
    return InvalidOptionError(message)


DATASETS: Registry[DatasetSpec] = Registry("dataset", unknown_name, _taken, key=dataset_key)


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Make ``spec`` known by its name and aliases (loader modules and dataset plug-ins call
    this; a plug-in's spec records the plug-in). A name that a lookup would confuse with a
    registered one is refused: it would shadow that dataset, or be shadowed by it."""
    spec = dataclasses.replace(spec, plugin=loading())
    return DATASETS.register(spec.name, spec, spec.aliases)
