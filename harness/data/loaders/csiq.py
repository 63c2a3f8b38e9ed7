"""CSIQ (Larson and Chandler, 2010): 30 references, 866 distorted images, 6 distortion types.

Two layouts are read (``load_release`` picks the first present):

- official: ``dst_imgs/<type>/<ref>.<CODE>.<level>.png`` and ``csiq.DMOS.xlsx``. Its sheet
  ``all_by_image`` has the header on row 4, columns ``image, dst_idx, dst_type, dst_lev,
  dmos_std, dmos`` (D-I), with ``dst_type`` one of ``noise, jpeg, jpeg 2000, fnoise, blur,
  contrast`` and ``image`` 1600 stored as a number. This structure was confirmed from several
  independent public readers of the file, not from the file itself; the header row is found
  by its column names wherever it is, and other sheets are searched if that one is missing.
- derived (the Life-IQA authors' and many others'): ``csiq_label.txt`` lines
  ``<ref>.<CODE>.<level>.png <dmos>`` over a flat ``dst_imgs_all/``.

pyiqa layout: ``meta_info_CSIQDataset.csv`` (``ref_name, dist_name, dmos``) over a flat
``CSIQ/dst_imgs/``.

DMOS 0-1, lower is better. Group: ``<ref>.png``. Distortion: the type folder name, which is the
file-name code in lower case (``AWGN`` -> ``awgn``); level from the file name (1-5).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harness.data.layout import DatasetLayoutError, find_child
from harness.data.loaders._common import (
    BadRow,
    Meta,
    RecordCollector,
    cell_text,
    parse_int,
    read_words,
    read_xlsx,
)
from harness.data.loaders.pyiqa_meta import PyiqaMeta, load_pyiqa_layout
from harness.data.records import Dataset, ScoreScale
from harness.data.specs import DatasetSpec, register_dataset

TYPES = ("awgn", "jpeg", "jpeg2000", "fnoise", "blur", "contrast")
# csiq.DMOS.xlsx ``dst_type`` -> (folder under dst_imgs/ = type name, code in file names)
_XLSX_TYPES = {"noise": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"),
               "jpeg 2000": ("jpeg2000", "jpeg2000"), "fnoise": ("fnoise", "fnoise"),
               "blur": ("blur", "BLUR"), "contrast": ("contrast", "contrast")}

PYIQA = PyiqaMeta("meta_info_CSIQDataset.csv", ("CSIQ/dst_imgs",), full_reference=True)


def _describe(name: str, ref: str | None) -> Meta:
    parts = PurePosixPath(name.replace("\\", "/")).name.rsplit(".", 3)
    if len(parts) != 4:
        raise BadRow(f"{name}: expected <ref>.<TYPE>.<level>.png")
    reference, code, level, _ = parts
    if code.lower() not in TYPES:
        raise BadRow(f"{name}: unknown distortion code {code!r}")
    return Meta(group=f"{reference}.png", distortion=code.lower(),
                level=parse_int(level, "distortion level"))


def load_release(root: Path) -> Dataset:
    """CSIQ from the official layout if present, else from the ``csiq_label.txt`` layout."""
    out = RecordCollector(SPEC, root, "release", _describe)
    xlsx = find_child(out.root, "csiq.DMOS.xlsx", required=False)
    if xlsx is not None and find_child(out.root, "dst_imgs", required=False) is not None:
        _read_official(out, xlsx)
    elif (labels := find_child(out.root, "csiq_label.txt", required=False)) is not None:
        out.add_rows(labels, out.folder("dst_imgs_all"), read_words(labels), name=0, score=1)
    else:
        raise DatasetLayoutError(f"{out.root}: expected csiq.DMOS.xlsx with dst_imgs/ (official "
                                 "release) or csiq_label.txt with dst_imgs_all/")
    return out.dataset()


def _read_official(out: RecordCollector, xlsx: Path) -> None:
    folder = out.folder("dst_imgs")
    for row, (image, kind, level, dmos) in read_xlsx(
            xlsx, ("image", "dst_type", "dst_lev", "dmos"), sheet="all_by_image"):
        location = out.where(xlsx, row)
        with out.row(location):
            if not cell_text(image):
                raise BadRow("empty image name")
            if (key := cell_text(kind).lower()) not in _XLSX_TYPES:
                raise BadRow(f"unknown dst_type {kind!r} (known: {', '.join(_XLSX_TYPES)})")
            subfolder, code = _XLSX_TYPES[key]
            name = f"{subfolder}/{cell_text(image)}.{code}.{parse_int(level, 'dst_lev')}.png"
            out.add(location, folder, name, dmos)


def load_pyiqa(root: Path) -> Dataset:
    """CSIQ from pyiqa's layout."""
    return load_pyiqa_layout(root, SPEC, PYIQA, _describe)


SPEC = register_dataset(DatasetSpec(
    name="csiq", title="CSIQ", kind="synthetic",
    scale=ScoreScale("DMOS", 0.0, 1.0, higher_is_better=False),
    expected_images=866, expected_groups=30, distortion_types=TYPES,
    load_release=load_release, load_pyiqa=load_pyiqa, pyiqa_meta=PYIQA.csv,
))
