"""Metadata whose image paths leave the dataset root is refused, in every loader's own format.

One check (``layout.resolve_inside``) serves every loader and the custom CSV; these tests put
hostile names into the real metadata files of each layout (CSV, text, ``.xlsx``, ``.mat``) and
expect a Problem at that row, never a record, and a validation error naming file and row.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import ESCAPE, WRITERS, write_csiq_official, write_koniq10k_release
from openpyxl import load_workbook
from scipy.io import loadmat, savemat

from harness.data.custom import load_custom_csv
from harness.data.records import ScoreScale
from harness.data.registry import get_dataset_spec, load_dataset
from harness.data.validate import DatasetValidationError, require_valid

# A NUL only from Python 3.11, whose csv module reads it (3.10 refuses the whole file, naming it).
HOSTILE = ["/etc/passwd", "C:\\Windows\\win.ini", "C:x.png", "\\\\host\\share\\x.png",
           "//host/share/x.png", "images/../../../x.png"] + (
    ["x\x00.png"] if sys.version_info >= (3, 11) else [])
# LIVE's release names its images by position, not by metadata; every other layout reads names.
LAYOUTS = sorted(k for k in WRITERS if k not in ("live/release", "csiq/official"))
TID_ESCAPE = "../escape.bmp"  # the TID2013 release fixture's escaping row


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Each layout's fixture written once: layout -> (dataset name, folder)."""
    out = {}
    for layout in LAYOUTS:
        root = tmp_path_factory.mktemp(layout.replace("/", "_"))
        out[layout] = (WRITERS[layout](root).dataset, root)
    return out


def _replace_name(root: Path, old: str, new: str) -> None:
    """Put ``new`` where the metadata files under ``root`` name ``old``, in their own format."""
    for path in root.rglob("*"):
        if path.suffix in (".csv", ".txt"):
            path.write_text(path.read_text().replace(old, new))
        elif path.suffix == ".xlsx":
            workbook = load_workbook(path)
            for sheet in workbook:
                for row in sheet.iter_rows():
                    for cell in row:
                        if cell.value == old:
                            cell.value = new
            workbook.save(path)
        elif path.suffix == ".mat":
            data = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
            for value in data.values():
                if value.dtype == object:
                    for index in np.ndindex(value.shape):
                        if np.asarray(value[index]).ravel().tolist() == [old]:
                            value[index] = new
            savemat(path, data)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_loader_refuses_names_that_leave_the_root(pristine, layout, tmp_path):
    dataset, source = pristine[layout]
    for hostile in HOSTILE:
        if "\x00" in hostile and layout in ("spaq/release", "livec/release"):
            continue  # neither a spreadsheet nor a MATLAB char array holds a NUL character
        root = tmp_path / f"case{HOSTILE.index(hostile)}"
        shutil.copytree(source, root)
        _replace_name(root, TID_ESCAPE if layout == "tid2013/release" else ESCAPE, hostile)
        loaded = load_dataset(dataset, root)
        refused = [p for p in loaded.problems if repr(hostile) in p.reason]
        assert len(refused) == 1, (hostile, loaded.problems)
        reason = refused[0].reason
        assert "escapes the dataset root" in reason or "NUL character" in reason, reason
        file, row = refused[0].location.rsplit(":", 1)
        assert (root / file).is_file() and int(row) >= 1
        for record in loaded.records:
            record.path.resolve().relative_to(root.resolve())  # raises if outside


def test_composed_names_are_checked_too(tmp_path):
    """CSIQ's official sheet names a reference image; the file name is composed from it."""
    write_csiq_official(tmp_path)
    _replace_name(tmp_path, "boston", "../../../boston")
    loaded = load_dataset("csiq", tmp_path)
    assert any("escapes the dataset root" in p.reason for p in loaded.problems)
    assert not any("boston" in r.image_id for r in loaded.records)


def test_validation_names_the_file_and_row_of_an_escaping_path(tmp_path):
    write_koniq10k_release(tmp_path)
    with pytest.raises(DatasetValidationError) as caught:
        require_valid(load_dataset("koniq10k", tmp_path), get_dataset_spec("koniq10k"))
    assert "koniq10k_scores_and_distributions.csv:7: path '../escape.png' escapes the dataset " \
           "root" in [str(problem) for problem in caught.value.report.problems]


def test_custom_csv_refuses_the_same_names(tmp_path):
    rows = "".join(f'"{name}",3\n' for name in HOSTILE)
    (tmp_path / "scores.csv").write_text("path,mos\n" + rows + "ok.png,3\n")
    loaded = load_custom_csv(tmp_path / "scores.csv", ScoreScale("MOS", 1, 5, True))
    assert [r.image_id for r in loaded.records] == ["ok.png"]
    assert [p.location for p in loaded.problems] == [f"scores.csv:{n}"
                                                     for n in range(2, 2 + len(HOSTILE))]


def test_links_made_by_the_folder_owner_are_followed(tmp_path):
    """A symlinked image folder is the owner's arrangement (e.g. a copy on another disk); the
    harness follows it. Archives with links are refused at install (test_datasets_custom_hf_download)."""
    elsewhere = tmp_path / "big-disk"
    written = write_koniq10k_release(elsewhere, bad_rows=False)
    root = tmp_path / "koniq"
    root.mkdir()
    shutil.copy(elsewhere / "koniq10k_scores_and_distributions.csv", root)
    (root / "1024x768").symlink_to(elsewhere / "1024x768", target_is_directory=True)
    loaded = load_dataset("koniq10k", root)
    assert not loaded.problems and len(loaded) == written.images
    dataset, _, _ = require_valid(loaded, None)
    assert all(r.path.is_file() for r in dataset.records)
