"""KADID-10k (Lin, Hosu and Saupe, 2019): 81 references x 25 types x 5 levels = 10,125.

Release layout: ``images/IRR_TT_LL.png`` (references ``images/IRR.png``) and ``dmos.csv``
(``dist_img, ref_img, dmos, var``). Some copies, the Life-IQA authors' among them, keep the
distorted images in ``distorted_images/`` instead; that folder is used when ``images/`` is absent.

pyiqa layout: ``meta_info_KADID10kDataset.csv`` (``ref_name, dist_name, dmos, std``) over
``kadid10k/images/``.

Scores ("dmos" in the file) 1-5, higher is better. Group: ``IRR.png`` from the file name.
Distortion: type TT's name; level LL (1-5).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from harness.data.layout import read_csv
from harness.data.loaders._common import BadRow, Meta, RecordCollector, column, type_name
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

# KADID-10k paper / release readme, in code order 01-25 (docs/design.md section 4)
TYPES = (
    "Gaussian blur", "lens blur", "motion blur", "color diffusion", "color shift",
    "color quantization", "color saturation (HSV)", "color saturation (LAB)", "JPEG2000", "JPEG",
    "white noise", "white noise in color component", "impulse noise", "multiplicative noise",
    "denoise", "brighten", "darken", "mean shift", "jitter", "non-eccentricity patch", "pixelate",
    "quantization", "color block", "high sharpen", "contrast change",
)
_NAME = re.compile(r"i(\d{2})_(\d{2})_(\d{2})\.png")

PYIQA = PyiqaMeta("meta_info_KADID10kDataset.csv", ("kadid10k/images",), full_reference=True)


def _describe(name: str, ref: str | None) -> Meta:
    match = _NAME.fullmatch(PurePosixPath(name.replace("\\", "/")).name.lower())
    if match is None:
        raise BadRow(f"{name}: expected IRR_TT_LL.png")
    reference, code, level = match.groups()
    return Meta(group=f"I{reference}.png", distortion=type_name(TYPES, int(code), name),
                level=int(level))


def load_release(root: Path) -> Dataset:
    """KADID-10k from its release folder (``dmos.csv``)."""
    out = RecordCollector(SPEC, root, "release", _describe)
    scores = out.find("dmos.csv")
    header, rows = read_csv(scores)
    out.add_rows(scores, out.folder("images", "distorted_images"), rows,
                 name=column(header, "dist_img", scores), score=column(header, "dmos", scores))
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """KADID-10k from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA, _describe)


SPEC = register_dataset(DatasetSpec(
    name="kadid10k", title="KADID-10k", kind="synthetic",
    scale=ScoreScale("DMOS", 1.0, 5.0, higher_is_better=True),
    expected_images=10125, expected_groups=81, distortion_types=TYPES,
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv, aliases=("kadid",),
))
