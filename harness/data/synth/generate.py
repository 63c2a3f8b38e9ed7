"""``lifeiqa-bench synth``: synthetic datasets written in real datasets' release layouts.

The real loaders read the output unchanged, so a synthetic run exercises the same code path as
a real one. Pristine content comes from :mod:`harness.data.synth.content`, distortions from
:mod:`harness.data.synth.distortions`, labels from :mod:`harness.data.synth.labels`. Output is written to a
temporary folder and renamed into place, with a ``synth.json`` manifest; an existing complete
output with the same manifest is reused.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.arithmetic import current as current_arithmetic
from harness.data.synth import distortions as D
from harness.data.synth.content import CATALOGUES, content_groups
from harness.data.synth.labels import (
    DEFAULT_LABEL_SCALE,
    DEFAULT_METRICS,
    consensus_quality,
    full_reference_scores,
    to_native_scale,
)
from harness.data.synth.manifest import MANIFEST, read_manifest
from harness.fileio import reason_of

GENERATOR_VERSION = "2"  # 2: the KonIQ-like set also writes the release's official partition


@dataclass(frozen=True)
class SynthSize:
    groups: int  # content groups: sources (a photo, a texture, a procedural image)
    height: int
    width: int
    authentic_images: int
    # each group gets every distortion type at this many of the 5 levels (drawn per group and
    # type), spread over its references: the budget goes to content, not to more images of it
    levels: int = 5
    crops: int = 1  # references per large photo: the whole, then zoomed tiles (one group)
    catalogue: str = "skimage"  # content.CATALOGUES
    png_compression: int = 6  # zlib level of PNG files (PIL's default; 1 writes 3x faster)

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= D.LEVELS:
            raise ValueError(f"levels={self.levels}: expected 1..{D.LEVELS}")
        if self.catalogue not in CATALOGUES:
            raise ValueError(f"catalogue={self.catalogue!r}: expected one of {CATALOGUES}")


SIZES = {
    # tiny: for tests; every type and level, little content, small images
    "tiny": SynthSize(groups=2, height=96, width=128, authentic_images=24),
    # gate: the CI regression gate (make golden-check); enough content for 10 splits with two
    # groups in each test part at the tiny resolution, so a gate run stays a few minutes
    "gate": SynthSize(groups=10, height=96, width=128, authentic_images=120),
    # small: the CPU demo's benchmark; 48 content groups, so each 20 % test part holds 10, from
    # every photo installed packages ship (3 views of each large one), toned grey photos,
    # textures and textured dead leaves, at half the real datasets' resolution; every type at
    # one of its 5 levels per group (25 KADID-like images per group: more groups buy more
    # statistical power than more images of the same content)
    "small": SynthSize(groups=48, height=192, width=256, authentic_images=300, levels=1,
                       crops=3, catalogue="installed", png_compression=1),
    # default: the real datasets' 512x384 resolution, 16 content groups
    "default": SynthSize(groups=16, height=384, width=512, authentic_images=800),
}


@dataclass(frozen=True)
class SynthConfig:
    like: str
    size: str
    seed: int
    metrics: tuple[str, ...] = DEFAULT_METRICS
    label_scale: float = DEFAULT_LABEL_SCALE
    rater_noise: float = 0.0
    generator_version: str = GENERATOR_VERSION


@dataclass
class _Item:
    """One distorted image on its way to disk."""

    relative: str
    image: np.ndarray
    reference: np.ndarray
    reference_name: str
    type_code: int
    level: int


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


# the key of the streams that draw each group's levels; no reference index reaches it, so they
# never coincide with a distortion's stream (seed, reference, type, level)
_LEVEL_STREAM = 1_000_005


def _save(image: np.ndarray, path: Path, **params: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **params)


def _reference_based(config: SynthConfig, out: Path, types: tuple[D.DistortionType, ...],
                     reference_path: Callable[[int], str],
                     distorted_path: Callable[[int, int, int], str]
                     ) -> tuple[list[_Item], np.ndarray, dict]:
    """Write each content group's references and its distortions (every type, at the size's
    number of levels, spread over the group's references); return the items, their labels and
    the manifest's details: the content of each reference and the content group of each image
    (:func:`harness.data.synth.manifest.apply_content_groups` applies them when loading)."""
    size = SIZES[config.size]
    items: list[_Item] = []
    contents: dict[str, str] = {}
    groups: dict[str, str] = {}
    scores: dict[str, list[np.ndarray]] = {m: [] for m in config.metrics}
    png = {"compress_level": size.png_compression}  # BMP and JPEG writers ignore it
    ref_index = 0
    for group_index, group in enumerate(content_groups(size.groups, size.height, size.width,
                                                       config.seed, size.catalogue, size.crops),
                                        start=1):
        references = []
        for pristine in group.references:
            ref_index += 1
            if ref_index > 99:  # the layouts name references with two digits
                raise ValueError(f"size {config.size}: more than 99 references")
            ref_rel = reference_path(ref_index)
            _save(pristine.image, out / ref_rel, **png)
            contents[ref_rel] = pristine.name
            groups[ref_rel] = group.name
            references.append((ref_index, ref_rel, pristine.image))
        batch: list[_Item] = []
        for position, dtype in enumerate(types):
            index, ref_rel, reference = references[(position + group_index) % len(references)]
            for level in _levels(size.levels, _rng(config.seed, _LEVEL_STREAM, group_index,
                                                   dtype.code)):
                rng = _rng(config.seed, index, dtype.code, level)
                distorted = D.distort(reference, dtype, level, rng)
                rel = distorted_path(index, dtype.code, level)
                _save(distorted, out / rel, **png)
                groups[rel] = group.name
                batch.append(_Item(rel, distorted, reference, ref_rel, dtype.code, level))
        # score per group to bound memory; ranks are taken over the whole set below
        raw = full_reference_scores([b.image for b in batch], [b.reference for b in batch],
                                    config.metrics, config.label_scale)
        for name in config.metrics:
            scores[name].append(raw[name])
        for item in batch:  # keep only names, not pixels
            item.image = item.reference = np.empty(0, dtype=np.uint8)
        items.extend(batch)
    quality = consensus_quality({m: np.concatenate(v) for m, v in scores.items()})
    return items, quality, {"contents": contents, "groups": groups}


def _levels(count: int, rng: np.random.Generator) -> list[int]:
    """``count`` of the levels 1..5, in order: all of them, or a random subset."""
    if count == D.LEVELS:
        return list(range(1, D.LEVELS + 1))
    return sorted(int(level) + 1 for level in rng.choice(D.LEVELS, size=count, replace=False))


def _write_kadid(config: SynthConfig, out: Path) -> dict:
    items, quality, details = _reference_based(
        config, out, D.KADID_TYPES,
        reference_path=lambda r: f"images/I{r:02d}.png",
        distorted_path=lambda r, t, lev: f"images/I{r:02d}_{t:02d}_{lev:02d}.png",
    )
    dmos = to_native_scale(quality, 1.0, 5.0, True, config.rater_noise, _rng(config.seed, 99))
    with open(out / "dmos.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dist_img", "ref_img", "dmos", "var"])
        for item, value in zip(items, dmos, strict=True):
            writer.writerow([Path(item.relative).name, Path(item.reference_name).name,
                             f"{value:.4f}", f"{config.rater_noise * 4:.4f}"])
    return details


def _write_tid2013(config: SynthConfig, out: Path) -> dict:
    items, quality, details = _reference_based(
        config, out, D.TID_TYPES,
        reference_path=lambda r: f"reference_images/I{r:02d}.BMP",
        distorted_path=lambda r, t, lev: f"distorted_images/i{r:02d}_{t:02d}_{lev}.bmp",
    )
    mos = to_native_scale(quality, 0.0, 9.0, True, config.rater_noise, _rng(config.seed, 99))
    with open(out / "mos_with_names.txt", "w") as names, open(out / "mos_std.txt", "w") as std:
        for item, value in zip(items, mos, strict=True):
            names.write(f"{value:.5f} {Path(item.relative).name}\n")
            std.write(f"{config.rater_noise * 9:.5f}\n")
    return details


def _write_csiq(config: SynthConfig, out: Path) -> dict:
    """CSIQ's derived layout (``csiq_label.txt`` over a flat ``dst_imgs_all/``): DMOS in [0, 1],
    lower is better, so the set exercises every lower-is-better code path."""
    items, quality, details = _reference_based(
        config, out, D.CSIQ_TYPES,
        reference_path=lambda r: f"src_imgs/{1000 + r}.png",
        distorted_path=lambda r, t, lev: (f"dst_imgs_all/{1000 + r}."
                                          f"{D.CSIQ_CODES[D.CSIQ_TYPES[t - 1].name]}.{lev}.png"),
    )
    dmos = to_native_scale(quality, 0.0, 1.0, False, config.rater_noise, _rng(config.seed, 99))
    with open(out / "csiq_label.txt", "w") as labels:
        for item, value in zip(items, dmos, strict=True):
            labels.write(f"{Path(item.relative).name} {value:.6f}\n")
    return details


def _rating_counts(mos: float, raters: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of 1..5 ratings from ``raters`` people whose opinions centre on ``mos``."""
    votes = np.clip(np.rint(rng.normal(mos, 0.7, size=raters)), 1, 5).astype(int)
    return np.bincount(votes, minlength=6)[1:]


def _write_koniq(config: SynthConfig, out: Path) -> dict:
    """Authentic-style images (a random mix of 1-3 capture-like defects each), no references.

    The CSV has KonIQ-10k's columns; counts c1..c5 come from simulated raters around the
    consensus label, MOS and SD are computed from those counts, and MOS_zscore is MOS mapped
    linearly to 0-100 (KonIQ's per-rater z-scoring cannot be simulated without raters). As in
    the release, ``koniq10k_distributions_sets.csv`` repeats them (c1..c5 as fractions, ``MOS``
    on 0-100) with the official partition in its ``set`` column, in KonIQ's proportions.
    """
    size = SIZES[config.size]
    count = size.authentic_images
    references = [pristine for group in content_groups(max(size.groups, 4), size.height,
                                                       size.width, config.seed + 1,
                                                       size.catalogue, size.crops)
                  for pristine in group.references]
    names, images, pristine_of, mixtures = [], [], [], {}
    for index in range(count):
        rng = _rng(config.seed, 7, index)
        pristine = references[index % len(references)]
        # a random crop-and-rescale makes each image's content distinct from its siblings'
        top, left = rng.integers(0, size.height // 4), rng.integers(0, size.width // 4)
        crop = pristine.image[top:top + size.height * 3 // 4, left:left + size.width * 3 // 4]
        content = np.asarray(Image.fromarray(crop).resize((size.width, size.height),
                                                          Image.Resampling.LANCZOS))
        image, applied = D.authentic_mixture(content, rng)
        name = f"{10_000_000 + index * 7919}.jpg"
        _save(image, out / "512x384" / name, quality=95)
        # label the image as stored (JPEG-decoded), against its undistorted content
        stored = np.asarray(Image.open(out / "512x384" / name).convert("RGB"))
        names.append(name)
        images.append(stored)
        pristine_of.append(content)
        mixtures[name] = applied
    raw = full_reference_scores(images, pristine_of, config.metrics, config.label_scale)
    quality = consensus_quality(raw)
    target = to_native_scale(quality, 1.0, 5.0, True, config.rater_noise, _rng(config.seed, 99))
    sets = _koniq_sets(names, config.seed)
    with open(out / "koniq10k_scores_and_distributions.csv", "w", newline="") as handle, \
            open(out / "koniq10k_distributions_sets.csv", "w", newline="") as sets_handle:
        writer, sets_writer = csv.writer(handle), csv.writer(sets_handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                         "MOS_zscore"])
        sets_writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                              "set"])
        for index, (name, value) in enumerate(zip(names, target, strict=True)):
            counts = _rating_counts(value, 120, _rng(config.seed, 11, index))
            ratings = np.repeat(np.arange(1, 6), counts)
            mos, sd = ratings.mean(), ratings.std(ddof=1)
            zscore = f"{(mos - 1) / 4 * 100:.6f}"
            writer.writerow([name, *counts.tolist(), int(counts.sum()), f"{mos:.6f}", f"{sd:.6f}",
                             zscore])
            sets_writer.writerow([name, *(f"{c / counts.sum():.6f}" for c in counts),
                                  int(counts.sum()), zscore, f"{sd:.6f}", sets[name]])
    # images cut from one source share its content group (the loader makes each its own)
    groups = {f"512x384/{name}": references[index % len(references)].content_group
              for index, name in enumerate(names)}
    return {"mixtures": {k: [[n, round(s, 4)] for n, s in v] for k, v in mixtures.items()},
            "contents": [r.name for r in references], "groups": groups}


def _koniq_sets(names: list[str], seed: int) -> dict[str, str]:
    """KonIQ-10k's official parts in its proportions (2,015 test, 1,000 validation of 10,073;
    at least two images each), images placed by a hash of the seed and their name."""
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}/{n}".encode()).hexdigest())
    n_test = max(2, round(len(names) * 2015 / 10073))
    n_val = max(2, round(len(names) * 1000 / 10073))
    return {name: "test" if i < n_test else "validation" if i < n_test + n_val else "training"
            for i, name in enumerate(order)}


WRITERS: dict[str, Callable[[SynthConfig, Path], dict]] = {
    "kadid10k": _write_kadid,
    "tid2013": _write_tid2013,
    "koniq10k": _write_koniq,
    "csiq": _write_csiq,
}


def _made_with(config: SynthConfig) -> dict:
    """What a dataset's manifest must record to be reused: its configuration, its size's
    definition and the CPU kernels that computed it (other kernels change single pixels, and
    through the crops seeded by image content every feature: harness/arithmetic.py)."""
    return {"config": asdict(config), "size": asdict(SIZES[config.size]),
            "arithmetic": current_arithmetic().kernels}


def _matches(manifest: dict | None, config: SynthConfig) -> bool:
    """Whether a manifest records a dataset made as :func:`_made_with` says."""
    made = json.loads(json.dumps(_made_with(config)))
    return manifest is not None and bool(manifest) and \
        all(manifest.get(key) == value for key, value in made.items())


def is_synthesized(like: str, out: str | Path, size: str = "default", seed: int = 0,
                   rater_noise: float = 0.0) -> bool:
    """Whether :func:`synthesize` would reuse ``out`` as it is (nothing to generate)."""
    config = SynthConfig(like=like, size=size, seed=seed, rater_noise=rater_noise)
    return like in WRITERS and size in SIZES and \
        _matches(read_manifest(Path(out).expanduser().resolve()), config)


def synthesize(like: str, out: str | Path, size: str = "default", seed: int = 0,
               rater_noise: float = 0.0, force: bool = False) -> Path:
    """Write a synthetic dataset in ``like``'s release layout to ``out`` and return ``out``.

    An existing output whose manifest has the same configuration and size definition is
    reused unless ``force``.
    """
    if like not in WRITERS:
        raise ValueError(f"--like {like!r}: expected one of {sorted(WRITERS)}")
    if size not in SIZES:
        raise ValueError(f"--size {size!r}: expected one of {sorted(SIZES)}")
    config = SynthConfig(like=like, size=size, seed=seed, rater_noise=rater_noise)
    out = Path(out).expanduser().resolve()
    existing = read_manifest(out)
    if _matches(existing, config) and not force:
        return out
    if out.exists() and any(out.iterdir()) and not (existing or force):
        raise FileExistsError(f"{out} exists and is not a synthetic dataset; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # One maker at a time in a folder of sets, and the next finds the set made: two makers
        # that each put theirs in place removed the first one's set under a process reading it
        # (a CI run's training found images of its dmos.csv gone). The lock is the folder's
        # own, so no lock file is left; the kernel drops a killed maker's.
        lock = os.open(out.parent, os.O_RDONLY)
    except OSError as err:
        raise _named(err, out) from err
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _matches(read_manifest(out), config) and not force:
            return out
        return _make(config, out)
    finally:
        os.close(lock)


def _make(config: SynthConfig, out: Path) -> Path:
    """Make the set in a staging folder beside ``out``, then put it in ``out``'s place."""
    try:
        remove_orphans(out)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise _named(err, out) from err
    start = time.perf_counter()
    # held while the set is made: a later run removes a staging folder only when no live
    # process holds it (a kill -9 leaves one behind; the kernel drops the lock)
    holder = os.open(staging, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        details = WRITERS[config.like](config, staging)
        manifest = {**_made_with(config), "seconds": round(time.perf_counter() - start, 1),
                    "details": details}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except OSError as err:
        raise _named(err, out) from err
    finally:
        os.close(holder)
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _named(err: OSError, out: Path) -> OSError:
    """``err`` naming the synthetic set (the OS names a file inside the staging folder, or
    nothing)."""
    return OSError(err.errno, f"cannot write the synthetic dataset {out}: {reason_of(err)}; "
                              f"nothing of it was kept")


def remove_orphans(out: Path) -> list[Path]:
    """Remove the staging folders of ``out`` that generations killed before they finished left
    behind (one whose maker still runs holds its lock, and is kept); returns those removed."""
    removed = []
    for folder in out.parent.glob(f".{out.name}.*"):
        if not folder.is_dir():
            continue
        try:
            holder = os.open(folder, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile, or not a folder
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(holder)
    return removed
