"""SPAQ, Smartphone Photography Attribute and Quality (Fang et al., 2020): 11,125 photographs.

Release layout: ``TestImage/NNNNN.jpg`` and ``Annotations/MOS and Image attribute scores.xlsx``
(``Image name, MOS, Brightness, Colorfulness, Contrast, Noisiness, Sharpness``). Only the full
size ``TestImage/`` is read: the Life-IQA authors train on a ``512x384/`` copy they resized
without keeping the aspect ratio, and resizing belongs to the data pipeline, not the records.

pyiqa layout: ``meta_info_SPAQDataset.csv`` (``Image name, MOS, ...`` plus scene and EXIF
columns) over ``SPAQ/TestImage/``.

MOS 0-100, higher is better. Each image is its own group.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.loaders._common import RecordCollector, read_xlsx
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

ANNOTATIONS = "Annotations/MOS and Image attribute scores.xlsx"

PYIQA = PyiqaMeta("meta_info_SPAQDataset.csv", ("SPAQ/TestImage",), full_reference=False)


def load_release(root: Path) -> Dataset:
    """SPAQ from its release folder (the annotation workbook)."""
    out = RecordCollector(SPEC, root, "release")
    workbook = out.find(ANNOTATIONS)
    out.add_rows(workbook, out.folder("TestImage"), read_xlsx(workbook, ("Image name", "MOS")),
                 name=0, score=1)
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """SPAQ from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA)


SPEC = register_dataset(DatasetSpec(
    name="spaq", title="SPAQ", kind="authentic",
    scale=ScoreScale("MOS", 0.0, 100.0, higher_is_better=True),
    expected_images=11125, expected_groups=None, distortion_types=(),
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv,
))
