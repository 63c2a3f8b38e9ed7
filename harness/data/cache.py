"""A decoded-image cache: each image decoded (and resized) once into a uint8 array on disk.

Entries are ``.npy`` files keyed by the source file's content hash and the resize policy, so
they are shared across splits, epochs, runs and models, and a changed file gets a new entry.
Reads are memory-mapped. Writes go to a temporary file then ``os.replace``: concurrent writers
of one key write identical bytes and the last rename wins; an interrupted write leaves only a
temporary file. Each entry has a checksum beside it (``.blake2b``, written first), checked on
the entry's first read in a process: an entry that fails to load, has the wrong shape or does
not match its checksum (a damaged disk, a bad copy) is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageOps

from harness.fileio import atomic_write_bytes

CHECKSUM = ".blake2b"


class ImageReadError(OSError):
    """An image file that cannot be decoded; the message names the file."""


POLICY = re.compile(r"^(?P<kind>native|fit|squeeze)(?P<noexif>-noexif)?(:(?P<w>\d+)x(?P<h>\d+))?$")


def parse_policy(policy: str) -> tuple[str, int, int]:
    """(kind, width, height) of a resize policy: ``native``; ``fit:WxH`` (aspect kept: the longer
    side to max(W,H), the shorter to min(W,H), e.g. KonIQ/SPAQ 512x384); ``squeeze:WxH`` (exactly
    W wide, H high, aspect not kept: the authors' KonIQ/SPAQ resize, offered only for exact
    reproduction). A kind may carry ``-noexif`` (``native-noexif``, ``squeeze-noexif:384x512``):
    the pixels as stored, EXIF orientation not applied, as the authors' loaders read them."""
    match = POLICY.match(policy)
    if not match or (match["kind"] == "native") != (match["w"] is None):
        raise ValueError(f"resize policy {policy!r}: expected 'native', 'fit:WxH' or "
                         f"'squeeze:WxH', a kind optionally followed by '-noexif' (e.g. "
                         f"'squeeze-noexif:384x512')")
    if match["kind"] == "native":
        return "native", 0, 0
    return match["kind"], int(match["w"]), int(match["h"])


def applies_exif(policy: str) -> bool:
    """Whether decoding under ``policy`` turns the image by its EXIF orientation."""
    match = POLICY.match(policy)
    assert match is not None  # its one caller passes a policy parse_policy accepted
    return match["noexif"] is None


# The largest image a ``native`` policy decodes and caches as it is: 40 megapixels, a 120 MB
# entry (SPAQ's largest photographs are about 16 MP; a 12000 x 12000 file would cost 432 MB on
# disk and in memory per read). Larger ones are refused, naming the policy that shrinks them.
MAX_NATIVE_PIXELS = 40_000_000


def decode_image(path: Path, policy: str = "native") -> np.ndarray:
    """H x W x 3 uint8 RGB, EXIF orientation applied (unless the policy says ``-noexif``),
    resized per ``policy``; an image over :data:`MAX_NATIVE_PIXELS` under ``native`` raises
    ImageReadError naming it (before it is decoded)."""
    kind, width, height = parse_policy(policy)
    with Image.open(path) as image:
        if kind == "native" and image.width * image.height > MAX_NATIVE_PIXELS:
            raise ImageReadError(
                f"{path}: {image.width}x{image.height} ({image.width * image.height / 1e6:.0f} "
                f"MP) is over the {MAX_NATIVE_PIXELS / 1e6:.0f} MP a native-size cache entry may "
                f"hold ({image.width * image.height * 3 / 1e6:.0f} MB decoded); run with a policy "
                f"that resizes (--image-policy authors, or --set resize_policy=fit:1024x768) or "
                f"downscale the file")
        image = (ImageOps.exif_transpose(image) if applies_exif(policy) else image).convert("RGB")
        if kind == "fit":
            long_side, short_side = max(width, height), min(width, height)
            landscape = image.width >= image.height
            size = (long_side, short_side) if landscape else (short_side, long_side)
            scale = min(size[0] / image.width, size[1] / image.height)
            target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(target, Image.Resampling.BICUBIC) if target != image.size else image
        elif kind == "squeeze":
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        decoded: np.ndarray = np.asarray(image, dtype=np.uint8).copy()
        return decoded


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DecodedImageCache:
    """``cache.get(path, policy)`` -> a read-only memory-mapped H x W x 3 uint8 array."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        (self.root / "entries").mkdir(parents=True, exist_ok=True)
        (self.root / "digests").mkdir(parents=True, exist_ok=True)
        self.rebuilt: list[str] = []  # entries found corrupt and rebuilt, for the run's record
        self._known: dict[tuple[str, int, int], str] = {}
        self._verified: set[Path] = set()  # entries whose checksum this process has checked

    def digest(self, path: Path) -> str:
        """Content hash, remembered per (path, size, mtime) so unchanged files are not reread."""
        stat = path.stat()
        known_key = (str(path), stat.st_size, stat.st_mtime_ns)
        if known_key in self._known:
            return self._known[known_key]
        memo = self.root / "digests" / (hashlib.sha1(str(path.resolve()).encode()).hexdigest() + ".json")
        key = [stat.st_size, stat.st_mtime_ns]
        try:
            saved = json.loads(memo.read_text())
            if saved["key"] == key:
                self._known[known_key] = saved["sha256"]
                return cast(str, saved["sha256"])
        except (OSError, ValueError, KeyError):
            pass
        digest = file_digest(path)
        atomic_write_bytes(memo, json.dumps({"key": key, "sha256": digest}).encode(), durable=False)
        self._known[known_key] = digest
        return digest

    def entry_path(self, path: Path, policy: str) -> Path:
        parse_policy(policy)
        key = hashlib.sha256(f"{self.digest(path)}|{policy}".encode()).hexdigest()
        return self.root / "entries" / key[:2] / f"{key}.npy"

    def get(self, path: str | Path, policy: str = "native") -> np.ndarray:
        path = Path(path)
        entry = self.entry_path(path, policy)
        if entry.exists():
            array = self._load(entry)
            if array is not None:
                return array
            self.rebuilt.append(str(entry))
        try:
            decoded = decode_image(path, policy)
        except ImageReadError:
            raise
        except Exception as err:  # Pillow raises many types for damaged files
            raise ImageReadError(f"{path}: cannot decode the image ({type(err).__name__}: {err})") \
                from err
        buffer = io.BytesIO()
        np.save(buffer, decoded)
        data = buffer.getvalue()
        # cache entries, checked on reading (no fsync: see atomic_write)
        atomic_write_bytes(entry.with_suffix(CHECKSUM), hashlib.blake2b(data).hexdigest().encode(),
                           durable=False)
        atomic_write_bytes(entry, data, durable=False)
        self._verified.add(entry)
        return cast(np.ndarray, np.load(entry, mmap_mode="r"))

    def _load(self, entry: Path) -> np.ndarray | None:
        """The entry's array, or None if it is damaged in any way."""
        try:
            if entry not in self._verified:
                if file_digest(entry, "blake2b") != entry.with_suffix(CHECKSUM).read_text().strip():
                    return None
                self._verified.add(entry)
            array = np.load(entry, mmap_mode="r")
        except (OSError, ValueError):
            return None
        return array if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3 else None
