"""LIVE In the Wild Image Quality Challenge Database (ChallengeDB_release; Ghadiyaram and
Bovik, 2016): 1,162 photographs with authentic distortions.

Release layout: ``Images/``, ``Data/AllImages_release.mat`` (``AllImages_release``, a 1169x1
cell of file names) and ``Data/AllMOS_release.mat`` (``AllMOS_release``, 1x1169). The first 7
entries are the raters' training images (``t1.bmp`` ...) and are dropped, as the Life-IQA
authors' loader and pyiqa's ``LIVEChallengeDataset`` do: 1,162 remain.

pyiqa layout: ``meta_info_LIVEChallengeDataset.csv`` (``img_name, mos, std``, the same 1,169
entries in the same order) over ``LIVEC/``.

MOS 0-100, higher is better. Each image is its own group.
"""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from harness.data.loaders._common import RecordCollector, read_mat
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

TRAINING_ENTRIES = 7

PYIQA = PyiqaMeta("meta_info_LIVEChallengeDataset.csv", ("LIVEC",), full_reference=False,
                  skip_first=TRAINING_ENTRIES)


def load_release(root: Path) -> Dataset:
    """LIVEC from its release folder (``Data/AllImages_release.mat``, ``AllMOS_release.mat``)."""
    out = RecordCollector(SPEC, root, "release")
    names_path = out.find("Data/AllImages_release.mat")
    names = read_mat(names_path, "AllImages_release")
    scores = read_mat(out.find("Data/AllMOS_release.mat"), "AllMOS_release")
    rows = enumerate(zip_longest(names, scores), 1)  # a missing value shows as None
    out.add_rows(names_path, out.folder("Images"), rows, name=0, score=1,
                 skip_first=TRAINING_ENTRIES)
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """LIVEC from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA)


SPEC = register_dataset(DatasetSpec(
    name="livec", title="LIVEC", kind="authentic",
    scale=ScoreScale("MOS", 0.0, 100.0, higher_is_better=True),
    expected_images=1162, expected_groups=None, distortion_types=(),
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv,
    aliases=("clive", "livechallenge"),
))
