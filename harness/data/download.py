"""Fetch the dataset archives that pyiqa publishes on the Hugging Face hub and install them in
pyiqa's layout (``<root>/<dataset folder>`` + ``<root>/meta_info/``), which ``load_dataset`` reads.

Only ``_remote_info``, ``fetch_resumable`` and ``_fetch_meta`` touch the network; everything after
the download is ``install_archive``, a plain function on a local file: checksum, safe extraction,
and a marker so that an archive already installed is not extracted again.

The archive is fetched with a plain HTTP Range request rather than ``hf_hub_download``: recent
huggingface_hub releases download to a per-process temporary file and delete it on failure, so
an interrupted multi-GB download would restart from zero.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from harness.data.layout import DatasetLayoutError, find_child
from harness.errors import DatasetError, unknown_name

# Archive names and folders as pyiqa 0.1.16 uses them (pyiqa/data/dataset_api.py and
# pyiqa/default_dataset_configs.yml); the meta_info CSVs live in a separate hub repo.
DATA_REPO = "chaofengc/IQA-PyTorch-Datasets"
META_REPO = "chaofengc/IQA-PyTorch-Datasets-metainfo"
DOWNLOAD_DIR = ".downloads"
_CHUNK = 1 << 20


class ChecksumError(DatasetError):
    """An archive's sha256 is not the one the hub reports."""


class UnsafeArchiveError(DatasetError):
    """An archive member would land outside the install folder, or is a link or device."""


@dataclass(frozen=True)
class HubArchive:
    """Where a dataset lives on the hub and what it installs."""

    name: str
    archive: str  # file in DATA_REPO
    meta_csv: str  # file in META_REPO, installed into <root>/meta_info/
    folder: str  # top-level folder the archive must create under <root>
    aliases: tuple[str, ...] = ()


_ARCHIVES = (
    HubArchive("live", "live.tgz", "meta_info_LIVEIQADataset.csv", "LIVEIQA_release2", ("liveiqa",)),
    HubArchive("livem", "livem.tgz", "meta_info_LIVEMDDataset.csv", "LIVEmultidistortiondatabase",
               ("livemd",)),
    HubArchive("csiq", "csiq.tgz", "meta_info_CSIQDataset.csv", "CSIQ"),
    HubArchive("tid2008", "tid2008.tgz", "meta_info_TID2008Dataset.csv", "tid2008"),
    HubArchive("tid2013", "tid2013.tgz", "meta_info_TID2013Dataset.csv", "tid2013"),
    HubArchive("kadid10k", "kadid10k.tgz", "meta_info_KADID10kDataset.csv", "kadid10k"),
    HubArchive("livec", "live_challenge.tgz", "meta_info_LIVEChallengeDataset.csv", "LIVEC",
               ("livechallenge",)),
    HubArchive("koniq10k", "koniq10k.tgz", "meta_info_KonIQ10kDataset.csv", "koniq10k",
               ("koniq10k1024",)),
    HubArchive("koniq10k++", "koniq10k.tgz", "meta_info_KonIQ10k++Dataset.csv", "koniq10k"),
    HubArchive("spaq", "spaq.tgz", "meta_info_SPAQDataset.csv", "SPAQ"),
    HubArchive("flive", "flive.tgz", "meta_info_FLIVEDataset.csv", "FLIVE_Database"),
    HubArchive("pipal", "pipal.tar", "meta_info_PIPALDataset.csv", "PIPAL"),
    HubArchive("gfiqa", "gfiqa-20k.tgz", "meta_info_GFIQADataset.csv", "GFIQA-20k"),
    HubArchive("cgfiqa", "CGFIQA.zip", "meta_info_CGFIQADataset.csv", "CGFIQA"),
)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def hub_archive(name: str) -> HubArchive:
    """The hub entry for ``name`` (letter case, '-' and '_' ignored)."""
    for entry in _ARCHIVES:
        if _key(name) in {_key(n) for n in (entry.name, *entry.aliases)}:
            return entry
    raise unknown_name("downloadable dataset", name, [e.name for e in _ARCHIVES])


def download_dataset(name: str, root: str | Path) -> Path:
    """Download (resuming a partial file), verify and install dataset ``name`` under ``root``.

    Returns ``root``, ready for ``load_dataset(name, root)``. The archive stays in
    ``<root>/.downloads`` so an interrupted install can be redone without downloading again; a
    checksum error names that file, which must then be deleted to fetch it anew.
    """
    from huggingface_hub import hf_hub_url

    entry = hub_archive(name)
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    expected, size = _remote_info(entry.archive)
    if expected is None or not _is_installed(root, entry.archive, expected):
        archive = root / DOWNLOAD_DIR / entry.archive
        if not archive.exists():
            fetch_resumable(hf_hub_url(DATA_REPO, entry.archive, repo_type="dataset"), archive, size)
        install_archive(archive, root, expected_sha256=expected)
    _fetch_meta(entry.meta_csv, root / "meta_info")
    if find_child(root, entry.folder, required=False) is None:
        found = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        raise DatasetLayoutError(f"{root}: {entry.archive} did not create {entry.folder!r}; "
                                 f"the folder holds {found}")
    return root


def install_archive(archive_path: str | Path, root: str | Path,
                    expected_sha256: str | None = None) -> Path:
    """Verify ``archive_path`` (.zip, .tar, .tar.gz/.tgz) and extract it into ``root``.

    A no-op when the marker says this archive (same sha256) is installed and its top-level
    entries still exist. Extraction goes to a temporary folder inside ``root`` and is merged in
    only when every member was safe, so a rejected archive leaves nothing behind; files already
    at the same paths are replaced, as unpacking by hand would.
    """
    archive = Path(archive_path)
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    if expected_sha256 and _is_installed(root, archive.name, expected_sha256):
        return root
    actual = sha256_file(archive)
    if expected_sha256 and actual != expected_sha256.lower():
        raise ChecksumError(f"{archive}: sha256 is {actual}, expected {expected_sha256.lower()}")
    if _is_installed(root, archive.name, actual):
        return root
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        _extract(archive, staging)
        entries = sorted(p.name for p in staging.iterdir())
        for entry in entries:
            _merge(staging / entry, root / entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _marker(root, archive.name).write_text(
        json.dumps({"archive": archive.name, "sha256": actual, "entries": entries}, indent=1))
    return root


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _marker(root: Path, archive_name: str) -> Path:
    return root / f".{archive_name}.installed.json"


def _is_installed(root: Path, archive_name: str, sha256: str) -> bool:
    try:
        marker = json.loads(_marker(root, archive_name).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == sha256.lower() and all(
        (root / entry).exists() for entry in marker.get("entries", []))


def _safe_relative(member: str, archive: Path) -> PurePosixPath:
    """The member's path, refused when absolute or climbing out with '..' (path traversal)."""
    posix = member.replace("\\", "/")
    path = PurePosixPath(posix)
    if path.is_absolute() or (len(posix) > 1 and posix[1] == ":") or ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {member!r} would be written outside the folder")
    return path


def _members(archive: Path) -> Iterator[tuple[str, str, IO[bytes] | None]]:
    """(name, kind, stream) per member, kind being "dir", "file" or "other" (links, devices)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if info.is_dir():
                    yield info.filename, "dir", None
                elif stat.S_ISLNK(info.external_attr >> 16):
                    yield info.filename, "other", None
                else:
                    with zipped.open(info) as stream:
                        yield info.filename, "file", stream
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                if member.isdir():
                    yield member.name, "dir", None
                elif member.isreg():
                    yield member.name, "file", tar.extractfile(member)
                else:
                    yield member.name, "other", None
    else:
        raise UnsafeArchiveError(f"{archive}: not a zip or tar archive")


def _extract(archive: Path, dest: Path) -> None:
    for name, kind, stream in _members(archive):
        relative = _safe_relative(name, archive)
        if kind == "other":
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a link or special file")
        if not relative.parts:
            continue
        target = dest / relative
        if kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        assert stream is not None  # a "file" member always comes with its stream
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(stream, out, _CHUNK)


def _merge(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``, merging into an existing folder file by file."""
    if src.is_dir() and dest.is_dir():
        for child in src.iterdir():
            _merge(child, dest / child.name)
    elif not dest.exists() or (src.is_file() and dest.is_file()):
        os.replace(src, dest)
    else:
        kind = "folder" if src.is_dir() else "file"
        raise DatasetLayoutError(f"{dest}: the archive has a {kind} here, which exists as another kind")


def fetch_resumable(url: str, dest: Path, size: int | None = None) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, continuing a partial ``.part`` left by an
    interrupted run with an HTTP Range request (a server that ignores it resends everything)."""
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    done = part.stat().st_size if part.exists() else 0
    if size is not None and done > size:
        done = 0
    if size is None or done < size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
        with urllib.request.urlopen(request, timeout=60) as response, \
                part.open("ab" if response.status == 206 else "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    if size is not None and part.stat().st_size != size:
        raise OSError(f"{part}: got {part.stat().st_size} of {size} bytes; run again to resume")
    os.replace(part, dest)
    return dest


def _remote_info(filename: str) -> tuple[str | None, int | None]:
    """The sha256 the hub reports for the LFS file (None if stored without LFS) and its size."""
    from huggingface_hub import HfApi

    info = HfApi().get_paths_info(DATA_REPO, [filename], repo_type="dataset")
    if not info:
        raise FileNotFoundError(f"{filename} not found in the hub dataset repo {DATA_REPO}")
    lfs = getattr(info[0], "lfs", None)
    return (lfs.sha256 if lfs is not None else None), getattr(info[0], "size", None)


def _fetch_meta(filename: str, meta_dir: Path) -> Path:
    """One meta_info CSV (small: huggingface_hub's own download and cache check suffice)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(META_REPO, filename, repo_type="dataset", local_dir=meta_dir))
