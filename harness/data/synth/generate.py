"""``lifeiqa-bench synth``: synthetic datasets written in real datasets' release layouts.

The real loaders read the output unchanged, so a synthetic run exercises the same code path as
a real one. Pristine content comes from :mod:`harness.data.synth.content`, distortions from
:mod:`harness.data.synth.distortions`, labels from :mod:`harness.data.synth.labels`. Output is written to a
temporary folder and renamed into place, with a ``synth.json`` manifest; an existing complete
output with the same manifest is reused.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harness.data.synth import distortions as D
from harness.data.synth.content import pristine_images
from harness.data.synth.labels import (
    DEFAULT_LABEL_SCALE,
    DEFAULT_METRICS,
    consensus_quality,
    full_reference_scores,
    to_native_scale,
)

GENERATOR_VERSION = "1"
MANIFEST = "synth.json"


@dataclass(frozen=True)
class SynthSize:
    references: int
    height: int
    width: int
    authentic_images: int


SIZES = {
    # tiny: for tests; every type and level, little content, small images
    "tiny": SynthSize(references=2, height=96, width=128, authentic_images=24),
    # small: the CPU demo; 12 content groups (the least for meaningful splits) at half the
    # real datasets' resolution, generated in about a minute each
    "small": SynthSize(references=12, height=192, width=256, authentic_images=300),
    # default: the real datasets' 512x384 resolution, 16 content groups
    "default": SynthSize(references=16, height=384, width=512, authentic_images=800),
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


def _save(image: np.ndarray, path: Path, **params) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **params)


def _reference_based(config: SynthConfig, out: Path, types: tuple[D.DistortionType, ...],
                     reference_path: Callable[[int], str],
                     distorted_path: Callable[[int, int, int], str]
                     ) -> tuple[list[_Item], np.ndarray, dict[str, str]]:
    """Write references and every (type, level) distortion; return items and their labels."""
    size = SIZES[config.size]
    items: list[_Item] = []
    contents: dict[str, str] = {}
    scores: dict[str, list[np.ndarray]] = {m: [] for m in config.metrics}
    for ref_index, pristine in enumerate(pristine_images(size.references, size.height,
                                                         size.width, config.seed), start=1):
        ref_rel = reference_path(ref_index)
        _save(pristine.image, out / ref_rel)
        contents[ref_rel] = pristine.name
        batch: list[_Item] = []
        for dtype in types:
            for level in range(1, 6):
                rng = _rng(config.seed, ref_index, dtype.code, level)
                distorted = D.distort(pristine.image, dtype, level, rng)
                rel = distorted_path(ref_index, dtype.code, level)
                _save(distorted, out / rel)
                batch.append(_Item(rel, distorted, pristine.image, ref_rel, dtype.code, level))
        # score per reference to bound memory; ranks are taken over the whole set below
        raw = full_reference_scores([b.image for b in batch], [b.reference for b in batch],
                                    config.metrics, config.label_scale)
        for name in config.metrics:
            scores[name].append(raw[name])
        for item in batch:  # keep only names, not pixels
            item.image = item.reference = np.empty(0, dtype=np.uint8)
        items.extend(batch)
    quality = consensus_quality({m: np.concatenate(v) for m, v in scores.items()})
    return items, quality, contents


def _write_kadid(config: SynthConfig, out: Path) -> dict:
    items, quality, contents = _reference_based(
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
    return contents


def _write_tid2013(config: SynthConfig, out: Path) -> dict:
    items, quality, contents = _reference_based(
        config, out, D.TID_TYPES,
        reference_path=lambda r: f"reference_images/I{r:02d}.BMP",
        distorted_path=lambda r, t, lev: f"distorted_images/i{r:02d}_{t:02d}_{lev}.bmp",
    )
    mos = to_native_scale(quality, 0.0, 9.0, True, config.rater_noise, _rng(config.seed, 99))
    with open(out / "mos_with_names.txt", "w") as names, open(out / "mos_std.txt", "w") as std:
        for item, value in zip(items, mos, strict=True):
            names.write(f"{value:.5f} {Path(item.relative).name}\n")
            std.write(f"{config.rater_noise * 9:.5f}\n")
    return contents


def _rating_counts(mos: float, raters: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of 1..5 ratings from ``raters`` people whose opinions centre on ``mos``."""
    votes = np.clip(np.rint(rng.normal(mos, 0.7, size=raters)), 1, 5).astype(int)
    return np.bincount(votes, minlength=6)[1:]


def _write_koniq(config: SynthConfig, out: Path) -> dict:
    """Authentic-style images (a random mix of 1-3 capture-like defects each), no references.

    The CSV has KonIQ-10k's columns; counts c1..c5 come from simulated raters around the
    consensus label, MOS and SD are computed from those counts, and MOS_zscore is MOS mapped
    linearly to 0-100 (KonIQ's per-rater z-scoring cannot be simulated without raters).
    """
    size = SIZES[config.size]
    count = size.authentic_images
    references = list(pristine_images(max(size.references, 4), size.height, size.width,
                                      config.seed + 1))
    names, images, pristine_of, mixtures = [], [], [], {}
    for index in range(count):
        rng = _rng(config.seed, 7, index)
        pristine = references[index % len(references)]
        # a random crop-and-rescale makes each image's content distinct from its siblings'
        top, left = rng.integers(0, size.height // 4), rng.integers(0, size.width // 4)
        crop = pristine.image[top:top + size.height * 3 // 4, left:left + size.width * 3 // 4]
        content = np.asarray(Image.fromarray(crop).resize((size.width, size.height),
                                                          Image.LANCZOS))
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
    with open(out / "koniq10k_scores_and_distributions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                         "MOS_zscore"])
        for index, (name, value) in enumerate(zip(names, target, strict=True)):
            counts = _rating_counts(value, 120, _rng(config.seed, 11, index))
            ratings = np.repeat(np.arange(1, 6), counts)
            mos, sd = ratings.mean(), ratings.std(ddof=1)
            writer.writerow([name, *counts.tolist(), int(counts.sum()), f"{mos:.6f}", f"{sd:.6f}",
                             f"{(mos - 1) / 4 * 100:.6f}"])
    return {"mixtures": {k: [[n, round(s, 4)] for n, s in v] for k, v in mixtures.items()},
            "contents": [r.name for r in references]}


WRITERS: dict[str, Callable[[SynthConfig, Path], dict]] = {
    "kadid10k": _write_kadid,
    "tid2013": _write_tid2013,
    "koniq10k": _write_koniq,
}


def read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def synthesize(like: str, out: str | Path, size: str = "default", seed: int = 0,
               rater_noise: float = 0.0, force: bool = False) -> Path:
    """Write a synthetic dataset in ``like``'s release layout to ``out`` and return ``out``.

    An existing output whose manifest has the same configuration is reused unless ``force``.
    """
    if like not in WRITERS:
        raise ValueError(f"--like {like!r}: expected one of {sorted(WRITERS)}")
    if size not in SIZES:
        raise ValueError(f"--size {size!r}: expected one of {sorted(SIZES)}")
    config = SynthConfig(like=like, size=size, seed=seed, rater_noise=rater_noise)
    out = Path(out).expanduser().resolve()
    existing = read_manifest(out)
    if existing and existing.get("config") == json.loads(json.dumps(asdict(config))) and not force:
        return out
    if out.exists() and any(out.iterdir()) and not (existing or force):
        raise FileExistsError(f"{out} exists and is not a synthetic dataset; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    start = time.perf_counter()
    try:
        details = WRITERS[like](config, staging)
        manifest = {"config": asdict(config), "size": asdict(SIZES[size]),
                    "seconds": round(time.perf_counter() - start, 1), "details": details}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out
