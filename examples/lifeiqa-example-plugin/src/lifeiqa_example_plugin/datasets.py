"""A dataset of one's own, read from a folder and a CSV of scores with the CSV's own column
names, registered when lifeiqa-bench loads the entry point ``lifeiqa_bench.datasets: example``.

``example_photos``: a folder holding ``ratings.csv`` (columns ``file``, ``quality`` on 1-5,
higher is better, ``scene`` (the content group that splits keep together) and ``degradation``
(the distortion type, for per-distortion tables)) and the images it names.
``python -m lifeiqa_example_plugin.make_data DIR`` writes such a folder. Point a run at it with
``--dataset-root example_photos=DIR``.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.custom import load_custom_csv
from harness.data.records import Dataset, ScoreScale
from harness.data.registry import DatasetSpec, register_dataset

CSV = "ratings.csv"
SCALE = ScoreScale("MOS", 1.0, 5.0, higher_is_better=True)
COLUMNS = {"path": "file", "score": "quality", "group": "scene", "distortion": "degradation"}


def load(root: Path) -> Dataset:
    """The folder's images and scores (bad rows become problems with their ``file:line``)."""
    return load_custom_csv(Path(root) / CSV, SCALE, root, "example_photos", COLUMNS)


register_dataset(DatasetSpec(
    name="example_photos", title="Example photos (a CSV of 1-5 quality ratings)",
    kind="synthetic", scale=SCALE, expected_images=0, expected_groups=None,
    distortion_types=(), load_release=load))
