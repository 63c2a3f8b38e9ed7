"""A user's CSV, a Hugging Face dataset, and the installation of downloaded archives (no network)."""

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from harness.data import download
from harness.data.custom import load_custom_csv
from harness.data.download import ChecksumError, UnsafeArchiveError, install_archive
from harness.data.layout import DatasetLayoutError
from harness.data.records import ScoreScale

MOS = ScoreScale("MOS", 1.0, 5.0, higher_is_better=True)


def _png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- custom CSV -------------------------------------------------------------------------------


def _write_csv(tmp_path: Path, text: str) -> Path:
    csv = tmp_path / "scores.csv"
    csv.write_text(text)
    return csv


def test_custom_csv_happy_path(tmp_path):
    csv = _write_csv(tmp_path, "path,mos,ref,distortion\n"
                               "imgs/a_blur.png,3.5,a.png,blur\n"
                               "imgs/a_noise.png,2.0,a.png,noise\n"
                               "imgs/b_blur.png,4.25,b.png,blur\n")
    ds = load_custom_csv(csv, scale=MOS, name="mine")
    assert (ds.name, ds.kind, ds.layout, ds.root) == ("mine", "synthetic", "csv", tmp_path.resolve())
    assert [r.image_id for r in ds.records] == ["imgs/a_blur.png", "imgs/a_noise.png", "imgs/b_blur.png"]
    assert [r.score for r in ds.records] == [3.5, 2.0, 4.25]
    assert ds.groups == ["a.png", "b.png"]
    assert ds.distortion_types == ("blur", "noise")
    assert ds.records[0].path == tmp_path.resolve() / "imgs" / "a_blur.png"
    assert ds.records[1].source == "scores.csv:3"
    assert ds.problems == []


def test_custom_csv_without_ref_is_authentic_and_each_image_its_own_group(tmp_path):
    csv = _write_csv(tmp_path, " Path , MOS \nx.jpg,70\ny.jpg,20\n")
    ds = load_custom_csv(csv, scale=ScoreScale("MOS", 0, 100, True), root=tmp_path)
    assert ds.kind == "authentic"
    assert [r.group for r in ds.records] == ["x.jpg", "y.jpg"]


def test_custom_csv_wrong_columns_names_found_and_expected(tmp_path):
    csv = _write_csv(tmp_path, "image,score\nx.jpg,3\n")
    expected = r"missing column.*'path', 'mos'.*found \['image', 'score'\]"
    with pytest.raises(DatasetLayoutError, match=expected):
        load_custom_csv(csv, scale=MOS)


def test_custom_csv_bad_rows_become_problems(tmp_path):
    csv = _write_csv(tmp_path, "path,mos\n"
                               "ok.png,3\n"
                               "nan.png,nan\n"
                               "empty.png,\n"
                               "word.png,good\n"
                               ",2\n"
                               "../outside.png,2\n"
                               "/etc/passwd,2\n"
                               "ok.png,4\n")
    ds = load_custom_csv(csv, scale=MOS)
    assert [r.image_id for r in ds.records] == ["ok.png"]
    reasons = {p.location: p.reason for p in ds.problems}
    assert set(reasons) == {f"scores.csv:{line}" for line in range(3, 10)}
    assert "not a finite number" in reasons["scores.csv:3"]
    assert "not a number" in reasons["scores.csv:4"]
    assert "empty path" in reasons["scores.csv:6"]
    assert "escapes the dataset root" in reasons["scores.csv:7"]
    assert "escapes the dataset root" in reasons["scores.csv:8"]
    assert "duplicate" in reasons["scores.csv:9"]


# --- Hugging Face datasets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    images = [{"bytes": _png_bytes(v), "path": None} for v in (0, 80, 160)]
    images.append({"bytes": b"this is not an image", "path": None})
    table = datasets.Dataset.from_dict(
        {"img": images, "score": [1.5, float("nan"), 4.0, 2.0], "content": ["r1", "r1", "r2", "r2"]},
        features=datasets.Features({"img": datasets.Image(), "score": datasets.Value("float32"),
                                    "content": datasets.Value("string")}))
    folder = tmp_path_factory.mktemp("hf") / "tiny"
    table.save_to_disk(str(folder))
    return folder


def test_hf_dataset_exports_images_once_and_reports_bad_rows(hf_folder, tmp_path):
    from harness.data.hf import load_hf_dataset

    def load():
        return load_hf_dataset(hf_folder, image_column="img", score_column="score",
                               group_column="content", scale=MOS, cache_dir=tmp_path / "cache")

    ds = load()
    assert (ds.kind, ds.layout, ds.name) == ("synthetic", "hf", "tiny")
    assert [r.score for r in ds.records] == [1.5, 4.0]
    assert [r.group for r in ds.records] == ["r1", "r2"]
    assert [r.source for r in ds.records] == ["tiny:0", "tiny:2"]
    assert [r.image_id for r in ds.records] == ["000000.png", "000002.png"]
    assert all(r.path.parent == ds.root and r.path.is_file() for r in ds.records)
    assert ds.records[0].path.read_bytes() == _png_bytes(0)  # original bytes kept
    problems = {p.location: p.reason for p in ds.problems}
    assert set(problems) == {"tiny:1", "tiny:3"}
    assert "not a finite number" in problems["tiny:1"]
    assert "does not decode" in problems["tiny:3"]

    mtimes = {r.path: r.path.stat().st_mtime_ns for r in ds.records}
    again = load()
    assert [r.path for r in again.records] == list(mtimes)
    assert {r.path: r.path.stat().st_mtime_ns for r in again.records} == mtimes
    assert sorted(p.name for p in ds.root.iterdir()) == ["000000.png", "000002.png"]


def test_hf_dataset_without_group_is_authentic(hf_folder, tmp_path):
    from harness.data.hf import load_hf_dataset

    ds = load_hf_dataset(hf_folder, image_column="img", score_column="score", scale=MOS,
                         cache_dir=tmp_path)
    assert ds.kind == "authentic"
    assert [r.group for r in ds.records] == [r.image_id for r in ds.records]


def test_hf_hub_name_needs_allow_download(tmp_path):
    from harness.data.hf import load_hf_dataset

    with pytest.raises(DatasetLayoutError, match="allow_download=True"):
        load_hf_dataset("someone/some-iqa-dataset", image_column="img", score_column="mos",
                        scale=MOS, cache_dir=tmp_path)


# --- archive installation ---------------------------------------------------------------------

FILES = {"CSIQ/dst_imgs/a.png": b"distorted", "CSIQ/src_imgs/a.png": b"reference"}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("make", [_zip, _tgz], ids=["zip", "tar.gz"])
def test_install_archive_extracts_verifies_and_marks(tmp_path, make):
    archive = make(tmp_path / ("csiq.zip" if make is _zip else "csiq.tar.gz"), FILES)
    root = tmp_path / "data"
    assert install_archive(archive, root, expected_sha256=_sha256(archive).upper()) == root.resolve()
    for name, data in FILES.items():
        assert (root / name).read_bytes() == data
    marker = json.loads((root / f".{archive.name}.installed.json").read_text())
    assert marker == {"archive": archive.name, "sha256": _sha256(archive), "entries": ["CSIQ"]}
    assert [p.name for p in root.iterdir() if p.name.startswith(".extract")] == []

    (root / "CSIQ/dst_imgs/a.png").write_bytes(b"edited")  # a re-extraction would restore it
    install_archive(archive, root)
    install_archive(archive, root, expected_sha256=_sha256(archive))
    assert (root / "CSIQ/dst_imgs/a.png").read_bytes() == b"edited"


def test_install_archive_checksum_mismatch_names_both_hashes(tmp_path):
    archive = _zip(tmp_path / "csiq.zip", FILES)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as caught:
        install_archive(archive, tmp_path / "data", expected_sha256=wrong)
    assert all(part in str(caught.value) for part in (str(archive), _sha256(archive), wrong))
    assert not (tmp_path / "data" / "CSIQ").exists()


@pytest.mark.parametrize("make", [_zip, _tgz], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("evil", ["../evil.txt", "CSIQ/../../evil.txt", "/tmp/evil.txt"])
def test_install_archive_rejects_path_traversal(tmp_path, make, evil):
    archive = make(tmp_path / ("bad.zip" if make is _zip else "bad.tgz"), {**FILES, evil: b"x"})
    root = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        install_archive(archive, root)
    assert not (tmp_path / "evil.txt").exists()
    assert list(root.iterdir()) == []  # nothing half-installed, no marker


def test_install_archive_rejects_links(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("CSIQ/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        install_archive(archive, tmp_path / "data")


def test_download_dataset_installs_pyiqa_layout_and_skips_a_second_download(tmp_path, monkeypatch):
    archive = _tgz(tmp_path / "csiq.tgz", FILES)
    fetched = []

    def fake_fetch(url, dest, size):
        fetched.append((url.rsplit("/", 1)[-1], size))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(archive.read_bytes())
        return dest

    def fake_meta(filename, meta_dir):
        meta_dir.mkdir(parents=True, exist_ok=True)
        (meta_dir / filename).write_text("ref_name,dist_name,dmos\n")
        return meta_dir / filename

    monkeypatch.setattr(download, "fetch_resumable", fake_fetch)
    monkeypatch.setattr(download, "_fetch_meta", fake_meta)
    monkeypatch.setattr(download, "_remote_info", lambda name: (_sha256(archive), archive.stat().st_size))
    root = tmp_path / "data"
    assert download.download_dataset("CSIQ", root) == root.resolve()
    assert (root / "meta_info/meta_info_CSIQDataset.csv").is_file()
    assert (root / "CSIQ/src_imgs/a.png").is_file()
    download.download_dataset("csiq", root)
    assert fetched == [("csiq.tgz", archive.stat().st_size)]  # installed: not fetched again

    with pytest.raises(DatasetLayoutError, match="did not create 'kadid10k'"):
        download.download_dataset("KADID-10k", root)


class _RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD, honouring ``Range: bytes=N-`` when HONOUR_RANGE is set."""

    PAYLOAD = bytes(range(256)) * 40
    HONOUR_RANGE = True
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self):
        self.ranges.append(self.headers.get("Range"))
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") and self.HONOUR_RANGE else 0
        body = self.PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("honour_range", [True, False])
def test_fetch_resumable_continues_a_partial_file(tmp_path, monkeypatch, honour_range):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_RangeServer, "HONOUR_RANGE", honour_range)
    monkeypatch.setattr(_RangeServer, "ranges", [])
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeServer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        dest = tmp_path / "dl" / "x.tgz"
        dest.parent.mkdir()
        dest.with_name("x.tgz.part").write_bytes(_RangeServer.PAYLOAD[:1000])
        url = f"http://127.0.0.1:{server.server_port}/x.tgz"
        download.fetch_resumable(url, dest, size=len(_RangeServer.PAYLOAD))
    finally:
        server.shutdown()
        server.server_close()
    assert dest.read_bytes() == _RangeServer.PAYLOAD
    assert _RangeServer.ranges == ["bytes=1000-"]
    assert not dest.with_name("x.tgz.part").exists()


def test_hub_archive_names():
    assert download.hub_archive("LIVE-Challenge").archive == "live_challenge.tgz"
    assert download.hub_archive("koniq10k++").meta_csv == "meta_info_KonIQ10k++Dataset.csv"
    with pytest.raises(KeyError, match="downloadable"):
        download.hub_archive("nope")
