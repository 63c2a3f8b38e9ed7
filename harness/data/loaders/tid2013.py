"""TID2013 (Ponomarenko et al., 2015): 25 references x 24 distortion types x 5 levels = 3000.

Release layout: ``distorted_images/iRR_TT_L.bmp``, ``reference_images/IRR.BMP`` and
``mos_with_names.txt`` (lines ``<mos> <name>``). File names on disk mix letter case
(``I01_11_1.BMP`` next to ``i01_01_2.bmp``); records use the spelling on disk.

pyiqa layout: ``meta_info_TID2013Dataset.csv`` (``ref_name, dist_name, mos, std``) over
``tid2013/distorted_images/``.

MOS 0-9, higher is better. Group: ``IRR.BMP`` from the file name (one spelling for all 25
references, although reference 25 is stored as ``i25.bmp``). Distortion: type TT's name;
level L (1-5).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from harness.data.loaders._common import BadRow, Meta, RecordCollector, read_words, type_name
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

# Table I of the TID2013 readme, in code order 01-24 (as reproduced in the README of
# github.com/olivesgatech/Spatial-Pooling-in-IQA)
TYPES = (
    "Additive Gaussian noise",
    "Additive noise in color components is more intensive than additive noise in the "
    "luminance component",
    "Spatially correlated noise",
    "Masked noise",
    "High frequency noise",
    "Impulse noise",
    "Quantization noise",
    "Gaussian blur",
    "Image denoising",
    "JPEG compression",
    "JPEG2000 compression",
    "JPEG transmission errors",
    "JPEG2000 transmission errors",
    "Non eccentricity pattern noise",
    "Local block-wise distortions of different intensity",
    "Mean shift (intensity shift)",
    "Contrast change",
    "Change of color saturation",
    "Multiplicative Gaussian noise",
    "Comfort noise",
    "Lossy compression of noisy images",
    "Image color quantization with dither",
    "Chromatic aberrations",
    "Sparse sampling and reconstruction",
)
_NAME = re.compile(r"i(\d{2})_(\d{2})_(\d)\.bmp")

PYIQA = PyiqaMeta("meta_info_TID2013Dataset.csv", ("tid2013/distorted_images",),
                  full_reference=True)


def _describe(name: str, ref: str | None) -> Meta:
    match = _NAME.fullmatch(PurePosixPath(name.replace("\\", "/")).name.lower())
    if match is None:
        raise BadRow(f"{name}: expected iRR_TT_L.bmp")
    reference, code, level = match.groups()
    return Meta(group=f"I{reference}.BMP", distortion=type_name(TYPES, int(code), name),
                level=int(level))


def load_release(root: Path) -> Dataset:
    """TID2013 from its release folder (``mos_with_names.txt``)."""
    out = RecordCollector(SPEC, root, "release", _describe)
    scores = out.find("mos_with_names.txt")
    out.add_rows(scores, out.folder("distorted_images"), read_words(scores), name=1, score=0)
    return out.dataset()


def load_pyiqa(root: Path) -> Dataset:
    """TID2013 from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA, _describe)


SPEC = register_dataset(DatasetSpec(
    name="tid2013", title="TID2013", kind="synthetic",
    scale=ScoreScale("MOS", 0.0, 9.0, higher_is_better=True),
    expected_images=3000, expected_groups=25, distortion_types=TYPES,
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv,
))
