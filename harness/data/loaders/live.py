"""LIVE Image Quality Assessment Database, Release 2 (Sheikh, Sabir and Bovik, 2006).

Release layout: five folders of distorted ``imgN.bmp``, ``refimgs/`` (29 references),
``dmos_realigned.mat`` (``dmos_new``, ``orgs``) and ``refnames_all.mat`` (``refnames_all``).
The .mat variables are 1x982 rows in the folder order jp2k (227), jpeg (233), wn (174), gblur
(174), fastfading (174); entry ``i`` of a folder is ``img<i>.bmp``. Entries with ``orgs == 1``
are copies of reference images placed among the distorted ones and are dropped: 779 remain.

Scores are the realigned DMOS ``dmos_new``, as read by the Life-IQA authors' loader
(``IQA/iqa_dataset.py``): lower is better, nominally 0-100. The exact span of the realigned
values was not confirmed from a public source; ``ScoreScale.contains`` takes a slack.

pyiqa layout: ``meta_info_LIVEIQADataset.csv`` (``ref_name, dist_name, mos`` with names like
``refimgs/bikes.bmp, jp2k/img2.bmp``) over ``LIVEIQA_release2/``. pyiqa built that CSV from
``dmos.mat`` (the original DMOS, not the realigned one), so the two layouts give different
scores for the same image.

Group: the reference image name (``bikes.bmp``). Distortion: the folder; no level.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harness.data.loaders._common import BadRow, Meta, RecordCollector, cell_text, parse_int, read_mat
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

FOLDER_SIZES = {"jp2k": 227, "jpeg": 233, "wn": 174, "gblur": 174, "fastfading": 174}
TYPES = tuple(FOLDER_SIZES)
# (folder, image number) of each .mat entry, in the release's order
_ENTRIES = [(folder, n) for folder, size in FOLDER_SIZES.items() for n in range(1, size + 1)]

PYIQA = PyiqaMeta("meta_info_LIVEIQADataset.csv", ("LIVEIQA_release2",), full_reference=True)


def _describe(name: str, ref: str | None) -> Meta:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if len(parts) < 2 or parts[0].lower() not in TYPES:
        raise BadRow(f"{name}: not inside a distortion folder ({', '.join(TYPES)})")
    if not ref:
        raise BadRow(f"{name}: no reference image name")
    return Meta(group=PurePosixPath(ref.replace("\\", "/")).name, distortion=parts[0].lower())


def load_release(root: Path) -> Dataset:
    """LIVE from its release folder (``dmos_realigned.mat`` and ``refnames_all.mat``)."""
    out = RecordCollector(SPEC, root, "release", _describe)
    dmos_path, refs_path = out.find("dmos_realigned.mat"), out.find("refnames_all.mat")
    columns = {"dmos_new": read_mat(dmos_path, "dmos_new"), "orgs": read_mat(dmos_path, "orgs"),
               "refnames_all": read_mat(refs_path, "refnames_all")}
    for index in range(max(len(values) for values in columns.values())):
        location = out.where(dmos_path, index + 1)
        with out.row(location):
            if index >= len(_ENTRIES):
                raise BadRow(f"entry {index + 1} is beyond the release's {len(_ENTRIES)} "
                             f"(folder sizes {FOLDER_SIZES})")
            short = [name for name, values in columns.items() if index >= len(values)]
            if short:
                raise BadRow(f"entry {index + 1} is missing from {', '.join(short)}")
            if parse_int(columns["orgs"][index], "orgs") == 1:
                continue  # a reference copy, not a distorted image
            folder, number = _ENTRIES[index]
            out.add(location, "", f"{folder}/img{number}.bmp", columns["dmos_new"][index],
                    ref=cell_text(columns["refnames_all"][index]))
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """LIVE from pyiqa's layout (original, not realigned, DMOS)."""
    return load_pyiqa_layout(root, SPEC, PYIQA, _describe)


SPEC = register_dataset(DatasetSpec(
    name="live", title="LIVE IQA R2", kind="synthetic",
    scale=ScoreScale("DMOS", 0.0, 100.0, higher_is_better=False),
    expected_images=779, expected_groups=29, distortion_types=TYPES,
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv,
))
