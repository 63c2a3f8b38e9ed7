"""How much work each section does, and what every section shares: the device, the sizes, the
precision and a folder of generated images."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.plan.recipes import Recipe
from harness.speed.timing import median_times, synchronize


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (chosen by device kind and ``tiny``)."""

    warmup: int
    repeats: int
    image_size: tuple[int, int]  # (height, width) of the generated image files
    overhead_presets: tuple[str, ...]
    overhead_batch: int
    loader_images: int
    patch_num: int
    loader_batch: int
    protocol_preset: str
    protocol_images: int
    protocol_crops: int
    protocol_epochs: int
    protocol_batch: int
    inference_metrics: tuple[str, ...]  # names in harness.speed.inference.PYIQA_METRICS
    inference_batch: int
    inference_size: tuple[int, int]
    train_presets: tuple[str, ...]
    train_batch: int
    train_images: int
    train_crops: int
    train_epochs: int
    splits: int = 10
    # section 6: (preset, crop, batch) of each decoder training step timed
    decoder_steps: tuple[tuple[str, int, int], ...] = (
        ("lifeiqa_effnet_lite0", 224, 16), ("lifeiqa_effnet_lite0_small", 192, 64))
    # section 7: how many units' decoder steps are timed one at a time and batched (the last
    # decoder step of section 6)
    unit_counts: tuple[int, ...] = (1, 2, 5, 10)
    # section 8: (label, the lifeiqa-bench command without --splits and --runs, split counts)
    scaling: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
        ("gate", ("run", "--protocol", "ci-golden", "--synth-size", "gate"), (2, 5, 10)),
        ("demo", ("demo",), (1, 3)))
    # section 9: (the lifeiqa-bench command without --splits and --runs, splits, runs per profile)
    arithmetic: tuple[tuple[str, ...], int, int] = (
        ("run", "--protocol", "ci-golden", "--synth-size", "gate"), 2, 2)

    @property
    def image_count(self) -> int:
        """How many images the sections read, at most."""
        return max(self.loader_images, self.protocol_images, self.train_images)


_ALL = ("lifeiqa_effnet_lite0", "lifeiqa_swin_t", "lifeiqa_swin_b")
_CPU = Sizes(
    # a few minutes on 2 cores; Swin-B trains at ~1.5 img/s there, hence the small batches
    warmup=1, repeats=3, image_size=(384, 512),
    overhead_presets=_ALL, overhead_batch=4,
    loader_images=32, patch_num=10, loader_batch=32,
    protocol_preset="lifeiqa_effnet_lite0", protocol_images=20, protocol_crops=2,
    protocol_epochs=6, protocol_batch=16,
    inference_metrics=("lifeiqa_effnet_lite0", "lifeiqa_swin_t", "topiq_nr", "musiq"),
    inference_batch=2, inference_size=(384, 512),
    train_presets=("lifeiqa_effnet_lite0", "lifeiqa_swin_b"), train_batch=4, train_images=8,
    train_crops=2, train_epochs=3,
)
_TINY_RUN = ("run", "--protocol", "splits", "--synth-size", "tiny", "--model", "lifeiqa_tiny",
             "--set", "epochs=1")
_TINY: dict[str, Any] = dict(  # seconds, for tests: the smallest models and a handful of images
    warmup=1, repeats=1, image_size=(256, 320),
    overhead_presets=("lifeiqa_effnet_lite0",), overhead_batch=2,
    loader_images=6, patch_num=4, loader_batch=8,
    protocol_preset="lifeiqa_effnet_lite0_small", protocol_images=6, protocol_crops=1,
    protocol_epochs=2, protocol_batch=8,
    inference_metrics=("lifeiqa_effnet_lite0", "topiq_nr", "musiq"), inference_batch=1,
    inference_size=(224, 288),
    train_presets=("lifeiqa_tiny",), train_batch=4, train_images=4, train_crops=2, train_epochs=2,
    splits=3, decoder_steps=(("lifeiqa_effnet_lite0_small", 192, 8),), unit_counts=(1, 2),
    # one unit each, of the random tiny model for one epoch: the sections' machinery, not the
    # demo (tests/test_demo_cli.py runs that) nor the default model's training (tens of seconds)
    scaling=(("splits", _TINY_RUN, (1,)),),
    arithmetic=(_TINY_RUN, 1, 1),
)
SIZES: dict[tuple[str, bool], Sizes] = {  # (device kind, tiny) -> sizes
    ("cpu", False): _CPU,
    ("cpu", True): replace(_CPU, **_TINY),
    ("cuda", False): replace(
        _CPU, warmup=3, repeats=10, overhead_batch=64, loader_images=64, patch_num=25,
        loader_batch=128, protocol_preset="lifeiqa_swin_b", protocol_images=64, protocol_crops=4,
        protocol_batch=64,
        inference_batch=8, train_presets=("lifeiqa_effnet_lite0", "lifeiqa_swin_b"),
        train_batch=128, train_images=64, train_crops=32, train_epochs=4,
        decoder_steps=(("lifeiqa_effnet_lite0", 224, 128), ("lifeiqa_swin_b", 224, 128))),
    ("cuda", True): replace(_CPU, **{**_TINY, "overhead_batch": 8, "train_batch": 16,
                                     "train_images": 8, "train_crops": 4}),
}


def sizes_for(device: torch.device, tiny: bool) -> Sizes:
    """The sizes for ``device`` (MPS runs the CPU sizes)."""
    return SIZES[("cuda" if device.type == "cuda" else "cpu", tiny)]


@dataclass(frozen=True)
class Bench:
    """What every section shares: device, sizes, precision and a folder of images."""

    device: torch.device
    sizes: Sizes
    recipe: Recipe  # precision and compile for the GPU paths
    workers: int
    folder: Path
    images: list[ImageRecord]
    cache: DecodedImageCache

    @property
    def precision(self) -> str:
        """The precision the sections run in: the recipe's on CUDA, fp32 elsewhere."""
        return self.recipe.precision if self.device.type == "cuda" else "fp32"

    def sync(self) -> None:
        """Wait for the device's queued work (see :func:`harness.speed.timing.synchronize`)."""
        synchronize(self.device)

    def median_times(self, variants: Mapping[str, Callable[[], object]], warmup: int | None = None,
                     repeats: int | None = None) -> dict[str, float]:
        """:func:`harness.speed.timing.median_times` on this device, by default with the sizes'
        warmup and repeats."""
        return median_times(self.device, variants,
                            self.sizes.warmup if warmup is None else warmup,
                            self.sizes.repeats if repeats is None else repeats)

    def model(self, preset: str) -> lifeiqa.LifeIQA:
        """``preset`` with seeded random weights (no download), on the device, channels-last."""
        torch.manual_seed(0)
        model = lifeiqa.create_model(preset, pretrained=False).to(self.device)
        return model.to(memory_format=torch.channels_last)


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[ImageRecord]:
    """``count`` PNG files of natural content (photos, textures, dead leaves) with random scores,
    each image its own content group."""
    from PIL import Image

    from harness.data.synth.content import pristine_images

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for index, pristine in enumerate(pristine_images(count, *size, seed)):
        path = folder / f"{index:04d}.png"
        Image.fromarray(pristine.image).save(path)
        records.append(ImageRecord(path.name, path, float(rng.uniform(1, 5)), path.name))
    return records
