"""The seven benchmark loaders on small real fixtures of their release and pyiqa layouts."""

import csv
import shutil

import numpy as np
import pytest
from dataset_fixtures import (
    KADID_TYPES,
    LIVE_FOLDERS,
    TID_TYPES,
    WRITERS,
    Written,
    write_csiq_label,
    write_csiq_official,
    write_kadid10k_release,
    write_koniq10k_release,
    write_live_release,
    write_livec_release,
    write_tid2013_release,
)
from scipy.io import savemat

from harness.data.layout import DatasetLayoutError
from harness.data.registry import get_dataset_spec, list_datasets, load_dataset

NAMES = ["csiq", "kadid10k", "koniq10k", "live", "livec", "spaq", "tid2013"]


@pytest.fixture(scope="module", params=sorted(WRITERS))
def written(request, tmp_path_factory) -> Written:
    root = tmp_path_factory.mktemp(request.param.replace("/", "_"))
    return WRITERS[request.param](root)


def _summary(dataset) -> dict:
    return {r.image_id: (r.score, r.group, r.distortion, r.level) for r in dataset.records}


def _values(dataset) -> list:
    """Records without their ids, to compare layouts of one dataset."""
    return sorted((r.group, r.distortion or "", r.level or 0, r.score) for r in dataset.records)


# --- every loader, every layout --------------------------------------------------------------


def test_loader_reports_exactly_what_the_fixture_holds(written):
    ds = load_dataset(written.dataset, written.root)
    spec = get_dataset_spec(written.dataset)
    assert ds.layout == written.layout
    assert (ds.name, ds.kind, ds.scale, ds.distortion_types) == (
        spec.name, spec.kind, spec.scale, spec.distortion_types)
    assert _summary(ds) == written.records  # ids, scores, groups, distortions, levels
    assert (len(ds), len(ds.groups)) == (written.images, written.groups)
    assert {p.location for p in ds.problems} == written.problems
    for record in ds.records:
        assert record.path.is_absolute() and record.path.is_file()
        assert record.path == ds.root / record.image_id
        file, row = record.source.rsplit(":", 1)
        assert (ds.root / file).is_file() and int(row) >= 1


def test_nan_score_and_escaping_path_are_problems_not_records(written):
    ds = load_dataset(written.dataset, written.root)
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "not a finite number" in reasons or "missing score" in reasons
    if written.dataset != "live" or written.layout == "pyiqa":  # LIVE's release names are fixed
        assert "escapes the dataset root" in reasons or "unknown dst_type" in reasons
    assert not any("escape" in r.image_id for r in ds.records)


def test_registry_knows_all_seven_with_their_facts():
    assert set(NAMES) <= set(list_datasets())
    facts = {n: get_dataset_spec(n) for n in NAMES}
    assert {n: s.kind for n, s in facts.items()} == {
        "live": "synthetic", "csiq": "synthetic", "tid2013": "synthetic", "kadid10k": "synthetic",
        "livec": "authentic", "koniq10k": "authentic", "spaq": "authentic"}
    assert {n: (s.expected_images, s.expected_groups) for n, s in facts.items()} == {
        "live": (779, 29), "csiq": (866, 30), "tid2013": (3000, 25), "kadid10k": (10125, 81),
        "livec": (1162, None), "koniq10k": (10073, None), "spaq": (11125, None)}
    assert {n: len(s.distortion_types) for n, s in facts.items()} == {
        "live": 5, "csiq": 6, "tid2013": 24, "kadid10k": 25, "livec": 0, "koniq10k": 0, "spaq": 0}
    scales = {n: (s.scale.name, s.scale.low, s.scale.high, s.scale.higher_is_better)
              for n, s in facts.items()}
    assert scales == {
        "live": ("DMOS", 0, 100, False), "csiq": ("DMOS", 0, 1, False),
        "tid2013": ("MOS", 0, 9, True), "kadid10k": ("DMOS", 1, 5, True),
        "livec": ("MOS", 0, 100, True), "koniq10k": ("MOS", 0, 100, True),
        "spaq": ("MOS", 0, 100, True)}
    assert all(s.pyiqa_meta and s.pyiqa_meta.startswith("meta_info_") for s in facts.values())
    assert get_dataset_spec("KADID-10k").name == "kadid10k"
    assert get_dataset_spec("clive").name == "livec"


# --- dataset rules ---------------------------------------------------------------------------


def test_live_drops_reference_copies_and_maps_entries_to_folders(tmp_path):
    write_live_release(tmp_path)
    ds = load_dataset("live", tmp_path)
    # 982 entries; orgs == 1 at every 7th entry from the 4th (140); one NaN entry
    assert len(ds) == 982 - 140 - 1
    assert ds.distortion_types == tuple(LIVE_FOLDERS)
    first = ds.records[0]
    assert (first.image_id, first.distortion, first.group, first.source) == (
        "jp2k/img1.bmp", "jp2k", "bikes.bmp", "dmos_realigned.mat:1")
    fastfading = [r for r in ds.records if r.distortion == "fastfading"]
    assert fastfading[-1].image_id == "fastfading/img174.bmp"
    assert not any(r.image_id == "jp2k/img4.bmp" for r in ds.records)  # entry 4: orgs == 1
    assert {r.level for r in ds.records} == {None}


def test_live_mat_shorter_than_the_release_is_reported(tmp_path):
    write_live_release(tmp_path, bad_rows=False)
    refs = [f"r{i % 3}.bmp" for i in range(981)]
    cells = np.empty((1, 981), dtype=object)
    cells[0, :] = refs
    savemat(tmp_path / "refnames_all.mat", {"refnames_all": cells})
    ds = load_dataset("live", tmp_path)
    assert [str(p) for p in ds.problems] == [
        "dmos_realigned.mat:982: entry 982 is missing from refnames_all"]


def test_csiq_layouts_agree(tmp_path):
    layouts = [load_dataset("csiq", write(tmp_path / key).root)
               for key, write in (("official", write_csiq_official), ("label", write_csiq_label),
                                  ("pyiqa", WRITERS["csiq/pyiqa"]))]
    assert _values(layouts[0]) == _values(layouts[1]) == _values(layouts[2])
    official = layouts[0]
    assert {r.distortion for r in official.records} == {"awgn", "jpeg2000"}
    assert {r.level for r in official.records} == {1, 2}
    assert "1600.png" in official.groups  # the image 1600 is a number in the workbook
    assert all(r.image_id.startswith(("dst_imgs/awgn/", "dst_imgs/jpeg2000/")) for r in official.records)


def test_csiq_without_metadata_names_both_layouts(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"csiq_label\.txt"):
        load_dataset("csiq", tmp_path)


@pytest.mark.parametrize("dataset", ["tid2013", "kadid10k"])
def test_synthetic_release_and_pyiqa_layouts_agree(dataset, tmp_path):
    release = load_dataset(dataset, WRITERS[f"{dataset}/release"](tmp_path / "r").root)
    pyiqa = load_dataset(dataset, WRITERS[f"{dataset}/pyiqa"](tmp_path / "p").root)
    assert _values(release) == _values(pyiqa)


def test_tid2013_names_levels_and_mixed_case_files(tmp_path):
    ds = load_dataset("tid2013", write_tid2013_release(tmp_path).root)
    assert {r.distortion for r in ds.records} == set(TID_TYPES.values())
    assert {r.level for r in ds.records} == {1, 5}
    assert ds.groups == ["I01.BMP", "I02.BMP", "I25.BMP"]
    ids = {r.image_id for r in ds.records}
    assert {"distorted_images/I01_01_1.bmp", "distorted_images/I02_24_5.BMP",
            "distorted_images/i25_24_5.bmp"} <= ids
    assert ds.distortion_types[23] == "Sparse sampling and reconstruction"


def test_kadid10k_names_levels_and_direction(tmp_path):
    ds = load_dataset("kadid10k", write_kadid10k_release(tmp_path).root)
    assert {r.distortion for r in ds.records} == set(KADID_TYPES.values())
    assert {r.level for r in ds.records} == {1, 5}
    assert ds.groups == ["I01.png", "I02.png", "I03.png"]
    assert ds.scale.higher_is_better and all(1 <= r.score <= 5 for r in ds.records)
    assert ds.distortion_types[24] == "contrast change"


def test_livec_drops_the_seven_training_images(tmp_path):
    ds = load_dataset("livec", write_livec_release(tmp_path).root)
    assert not any("t" in r.image_id.split("/")[-1] for r in ds.records)
    assert ds.records[0].source == "Data/AllImages_release.mat:8"
    assert ds.groups == sorted(r.image_id for r in ds.records)  # each image its own group


def test_koniq_reads_mos_zscore_not_mos(tmp_path):
    ds = load_dataset("koniq10k", write_koniq10k_release(tmp_path).root)
    with open(tmp_path / "koniq10k_scores_and_distributions.csv") as handle:
        table = {row["image_name"]: row for row in csv.DictReader(handle)}
    for record in ds.records:
        row = table[record.image_id.removeprefix("1024x768/")]
        assert record.score == float(row["MOS_zscore"]) != float(row["MOS"])


def test_koniq_prefers_1024x768_and_falls_back_to_512x384(tmp_path):
    write_koniq10k_release(tmp_path)
    shutil.move(tmp_path / "1024x768", tmp_path / "512x384")
    assert {r.image_id.split("/")[0] for r in load_dataset("koniq10k", tmp_path).records} == {"512x384"}


# --- robustness ------------------------------------------------------------------------------


def test_metadata_and_folders_are_matched_in_any_letter_case(tmp_path):
    kadid = write_kadid10k_release(tmp_path / "kadid")
    (kadid.root / "dmos.csv").rename(kadid.root / "DMOS.CSV")
    (kadid.root / "images").rename(kadid.root / "IMAGES")
    livec = write_livec_release(tmp_path / "livec")
    (livec.root / "Images").rename(livec.root / "images")
    (livec.root / "Data").rename(livec.root / "DATA")
    for written, folder in ((kadid, "IMAGES/"), (livec, "images/")):
        ds = load_dataset(written.dataset, written.root)
        assert len(ds) == written.images and len(ds.problems) == len(written.problems)
        assert all(r.image_id.startswith(folder) and r.path.is_file() for r in ds.records)


def test_missing_metadata_and_columns_are_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"dmos\.csv"):
        load_dataset("kadid10k", tmp_path)
    write_koniq10k_release(tmp_path)
    path = tmp_path / "koniq10k_scores_and_distributions.csv"
    path.write_text(path.read_text().replace("MOS_zscore", "zscore"))
    with pytest.raises(DatasetLayoutError, match="MOS_zscore"):
        load_dataset("koniq10k", tmp_path)


def test_duplicate_rows_and_unknown_codes_are_problems(tmp_path):
    write_kadid10k_release(tmp_path, bad_rows=False)
    with open(tmp_path / "dmos.csv", "a") as handle:
        handle.write("I01_01_01.png,I01.png,2.5,0.1\nI01_26_01.png,I01.png,2.5,0.1\n")
    ds = load_dataset("kadid10k", tmp_path)
    assert len(ds) == 12
    assert [p.location for p in ds.problems] == ["dmos.csv:14", "dmos.csv:15"]
    assert "listed again (first at dmos.csv:2)" in ds.problems[0].reason
    assert "unknown distortion type code 26" in ds.problems[1].reason
