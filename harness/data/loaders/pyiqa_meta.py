"""pyiqa's dataset layout: ``<root>/meta_info/meta_info_<Name>Dataset.csv`` plus image folders.

``pyiqa.load_dataset`` unpacks the archives of the hub repo ``chaofengc/IQA-PyTorch-Datasets``
under one data root and its CSVs (hub repo ``chaofengc/IQA-PyTorch-Datasets-metainfo``) under
``<root>/meta_info``; each dataset's image folder is its ``dataroot_target`` in pyiqa 0.1.16's
``default_dataset_configs.yml`` (e.g. ``CSIQ/dst_imgs``, ``tid2013/distorted_images``).

pyiqa reads these CSVs by position, and so does this module: full-reference CSVs are
``ref_name, dist_name, <score>, ...``, no-reference ones ``<image name>, <score>, ...`` (SPAQ's
header reads ``Image name, MOS``). Image names are relative to the image folder. Split columns
are ignored: they are not all reference-disjoint, and the harness makes its own splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.data.layout import read_csv
from harness.data.loaders._common import Describe, RecordCollector
from harness.data.records import Dataset
from harness.data.specs import DatasetSpec


@dataclass(frozen=True)
class PyiqaMeta:
    """Where pyiqa keeps one dataset.

    ``image_dirs``: folders (relative to the data root) the CSV's names are relative to; the
    first one present is used. ``skip_first``: leading CSV rows pyiqa's dataset class drops.
    """

    csv: str
    image_dirs: tuple[str, ...]
    full_reference: bool
    skip_first: int = 0


def load_pyiqa_layout(root: Path, spec: DatasetSpec, meta: PyiqaMeta,
                      describe: Describe | None = None) -> Dataset:
    """Read ``spec``'s dataset from pyiqa's layout under ``root``; bad rows become Problems."""
    out = RecordCollector(spec, root, "pyiqa", describe)
    csv_path = out.find(f"meta_info/{meta.csv}")
    _, rows = read_csv(csv_path)
    first = 1 if meta.full_reference else 0  # column of the image name
    out.add_rows(csv_path, out.folder(*meta.image_dirs), rows, name=first, score=first + 1,
                 ref=0 if meta.full_reference else None, skip_first=meta.skip_first)
    return out.dataset()
