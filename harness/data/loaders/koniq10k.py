"""KonIQ-10k (Hosu et al., 2020): 10,073 photographs with authentic distortions.

Release layout: ``koniq10k_scores_and_distributions.csv`` (``image_name, c1..c5, c_total, MOS,
SD, MOS_zscore``) and the images in ``1024x768/`` or the ``512x384/`` copy (``1024x768/`` is used
when both are present, as in the Life-IQA authors' loader).

Score column: ``MOS_zscore``, the mean of per-rater z-scored ratings rescaled to 0-100. The
Life-IQA authors' loader (``IQA/iqa_dataset.py``) reads it, and it is what the field reports on;
pyiqa's ``mos`` column holds the same values (e.g. 77.38 for ``10004473376.jpg``, whose 1-5
``MOS`` is 3.83). The raw ``MOS`` (1-5) is not used.

pyiqa layout: ``meta_info_KonIQ10kDataset.csv`` (``img_name, mos, std, split, ...``) over
``koniq10k/1024x768/`` or ``koniq10k/512x384/`` (pyiqa's default is the latter).

Official partition (7,058 training, 1,000 validation, 2,015 test images): the ``set`` column
(``training``/``validation``/``test``) of the release's ``koniq10k_distributions_sets.csv``
(``image_name, c1..c5, c_total, MOS, SD, set``; or a ``set`` column in the scores file), or the
``official_split`` column (``train``/``val``/``test``) of pyiqa's CSV.

MOS 0-100, higher is better. Each image is its own group.
"""

from __future__ import annotations

from pathlib import Path

from harness.data.layout import find_child, image_id, read_csv
from harness.data.loaders._common import RecordCollector, column
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.partitions import Assignment, part_name
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset
from harness.errors import DatasetError

SCORE_COLUMN = "MOS_zscore"
SCORES_CSV = "koniq10k_scores_and_distributions.csv"
SETS_CSV = "koniq10k_distributions_sets.csv"

PYIQA = PyiqaMeta("meta_info_KonIQ10kDataset.csv", ("koniq10k/1024x768", "koniq10k/512x384"),
                  full_reference=False)


def load_release(root: Path) -> Dataset:
    """KonIQ-10k from its release folder (``koniq10k_scores_and_distributions.csv``)."""
    out = RecordCollector(SPEC, root, "release")
    scores = out.find(SCORES_CSV)
    header, rows = read_csv(scores)
    out.add_rows(scores, out.folder("1024x768", "512x384"), rows,
                 name=column(header, "image_name", scores),
                 score=column(header, SCORE_COLUMN, scores))
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """KonIQ-10k from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA)


def read_official_partition(dataset: Dataset) -> Assignment | None:
    """The release's train/validation/test partition (image name -> part), or None when the
    copy holds no file with it."""
    # (file, part column, image name column; None: the first, as pyiqa reads its CSVs)
    candidates = ((f"meta_info/{PYIQA.csv}", "official_split", None),) \
        if dataset.layout == "pyiqa" else ((SETS_CSV, "set", "image_name"),
                                           (SCORES_CSV, "set", "image_name"))
    for name, part_column, name_column in candidates:
        path = find_child(dataset.root, name, required=False)
        if path is None:
            continue
        header, rows = read_csv(path)
        if part_column not in [h.strip().lower() for h in header]:
            continue
        where = image_id(dataset.root, path)
        names = column(header, name_column, path) if name_column else 0
        parts = column(header, part_column, path)
        assignment = {}
        for line, row in rows:
            if len(row) <= max(names, parts):
                raise DatasetError(f"{where}:{line}: row has {len(row)} field(s), expected at "
                                   f"least {max(names, parts) + 1}")
            assignment[row[names].strip()] = part_name(row[parts], f"{where}:{line}")
        return Assignment(assignment, f"{where}:{part_column}")
    return None


SPEC = register_dataset(DatasetSpec(
    name="koniq10k", title="KonIQ-10k", kind="authentic",
    scale=ScoreScale("MOS", 0.0, 100.0, higher_is_better=True),
    expected_images=10073, expected_groups=None, distortion_types=(),
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv, aliases=("koniq",),
    official_partition=read_official_partition,
))
