"""The benchmark datasets by name, and ``load_dataset`` which picks the layout it finds.

Besides the built-in loaders, an installed distribution may add datasets through an entry point
in group ``lifeiqa_bench.datasets`` (:data:`harness.plugins.DATASET_GROUP`): a module, or a
callable taking no arguments, that calls :func:`register_dataset`. The group is loaded once per
process by the lookups here (``list_datasets``; the others when the built-ins lack the name), so
the command line, the API, pool workers and Slurm tasks all see the same datasets.
"""

from __future__ import annotations

from pathlib import Path

# importing the loaders registers their specs
from harness.data import loaders  # noqa: F401
from harness.data.layout import find_child
from harness.data.records import Dataset
from harness.data.specs import DATASETS, DatasetSpec, register_dataset
from harness.data.synth.manifest import apply_content_groups
from harness.errors import DataNotFoundError
from harness.plugins import DATASET_GROUP, load_group

__all__ = ["DatasetSpec", "find_dataset_spec", "get_dataset_spec", "list_datasets", "load_dataset",
           "register_dataset"]


def list_datasets() -> list[str]:
    """Every dataset's name, the installed plug-ins' included."""
    load_group(DATASET_GROUP)
    return sorted(DATASETS.names())


def find_dataset_spec(name: str) -> DatasetSpec | None:
    """The spec a lookup of ``name`` finds (any letter case, ``-``/``_`` ignored), or None;
    the installed plug-ins are loaded when the registered specs lack it."""
    if name not in DATASETS:
        load_group(DATASET_GROUP)
    return DATASETS.get(name) if name in DATASETS else None


def get_dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        load_group(DATASET_GROUP)
    return DATASETS.get(name)


def load_dataset(name: str, root: str | Path) -> Dataset:
    """Read dataset ``name`` from ``root``, in pyiqa's meta_info layout if present, else the
    original release layout. Parsing problems are collected on ``Dataset.problems``."""
    spec = get_dataset_spec(name)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: dataset folder not found (expected the {spec.title} "
                                f"release or pyiqa layout)")
    if spec.pyiqa_meta and spec.load_pyiqa and find_child(root, f"meta_info/{spec.pyiqa_meta}",
                                                          required=False):
        return apply_content_groups(spec.load_pyiqa(root))
    # a synthetic set's manifest names the content group of each image (crops of one photo)
    return apply_content_groups(spec.load_release(root))
