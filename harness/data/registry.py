"""The benchmark datasets by name, and ``load_dataset`` which picks the layout it finds."""

from __future__ import annotations

from pathlib import Path

# importing the loaders registers their specs
from harness.data import loaders  # noqa: F401
from harness.data.layout import find_child
from harness.data.records import Dataset
from harness.data.specs import DatasetSpec, register_dataset, registered_specs
from harness.data.synth.manifest import apply_content_groups
from harness.errors import DataNotFoundError, unknown_name

__all__ = ["DatasetSpec", "get_dataset_spec", "list_datasets", "load_dataset", "register_dataset"]


def list_datasets() -> list[str]:
    return sorted({spec.name for spec in registered_specs().values()})


def get_dataset_spec(name: str) -> DatasetSpec:
    key = name.lower().replace("-", "").replace("_", "")
    for spec_key, spec in registered_specs().items():
        if spec_key.replace("-", "").replace("_", "") == key:
            return spec
    raise unknown_name("dataset", name, list_datasets())


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
