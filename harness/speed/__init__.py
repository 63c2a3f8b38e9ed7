"""``lifeiqa-bench speed``: how fast the harness runs its protocols, measured side by side.

Five sections, each a ratio or a rate from one run on one device, the compared variants timed
in alternation (warmup first, then the median of several repeats, synchronising the device):

1. decoder overhead: Life-IQA forward and forward+backward over its bare backbone's;
2. data path: the authors'-style pipeline (PIL decode, crop, flip, normalise per sample, each
   image listed PATCH_NUM times, a torch DataLoader) against crops cut from the decoded cache;
3. feature cache: a 10-split frozen-backbone protocol with the feature cache against running
   the frozen backbone on every crop every epoch, and how far their predictions differ;
4. inference: seconds per image of Life-IQA against pyiqa's topiq_nr and musiq (random weights,
   built without downloads);
5. training: images/s through ``train_finetune``, the epoch against the model steps alone,
   and on a GPU the model FLOP utilisation.

Everything is generated in a temporary folder (images from :mod:`harness.data.synth.content`, cold
caches), random-initialised or offline weights only: no network.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine.batching import BatchCutter, Prefetcher, default_workers
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.train import (
    _autocast,
    _run_epochs,
    _Stepper,
    predict_features,
    train_finetune,
    train_frozen,
)
from harness.plan.recipes import Recipe
from harness.plan.splits import plan_split
from lifeiqa import BackboneFeatures, LifeIQALoss

# Dense BF16 tensor-core peaks in TFLOP/s: half the "with sparsity" figures of NVIDIA's data
# sheets (H100 Tensor Core GPU data sheet, H200 product brief, A100 data sheet). Matched against
# torch.cuda.get_device_name in order; the first match wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    (r"H200.*NVL", 835.5, "H200 NVL"),
    (r"H200", 989.5, "H200 SXM"),
    (r"H100.*NVL", 835.5, "H100 NVL"),
    (r"H100.*PCIe", 756.5, "H100 PCIe"),
    (r"H100", 989.5, "H100 SXM"),
    (r"A100", 312.0, "A100"),
)
PEAK_SOURCE = ("NVIDIA data sheets, dense BF16 tensor core (half the sparse figure): "
               "H100 SXM 989.5, H100 PCIe 756.5, H100 NVL 835.5, H200 989.5, H200 NVL 835.5, "
               "A100 312 TFLOP/s")

SECTIONS = {1: "decoder_overhead", 2: "data_path", 3: "feature_cache", 4: "inference",
            5: "training"}
TITLES = {
    "decoder_overhead": "1. Decoder overhead: Life-IQA over its bare backbone",
    "data_path": "2. Data path: authors'-style per-sample pipeline vs cached batched crops",
    "feature_cache": "3. Feature cache: 10-split frozen-backbone protocol with vs without",
    "inference": "4. Inference: Life-IQA vs pyiqa topiq_nr and musiq (random weights)",
    "training": "5. Training throughput and model FLOP utilisation",
}
PYIQA_METRICS = {
    # name -> create_metric keyword arguments that keep it offline
    "lifeiqa_effnet_lite0": {"pretrained": False},
    "lifeiqa_swin_t": {"pretrained": False},
    "topiq_nr": {"pretrained": False, "backbone_pretrain": False},
    "musiq": {"pretrained": False},
}


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (chosen by device kind and ``--tiny``)."""

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
    inference_metrics: tuple[str, ...]
    inference_batch: int
    inference_size: tuple[int, int]
    train_presets: tuple[str, ...]
    train_batch: int
    train_images: int
    train_crops: int
    train_epochs: int
    splits: int = 10


_ALL = ("lifeiqa_effnet_lite0", "lifeiqa_swin_t", "lifeiqa_swin_b")
_CPU = Sizes(
    # a few minutes on 2 cores; Swin-B trains at ~1.5 img/s there, hence the small batches
    warmup=1, repeats=3, image_size=(384, 512),
    overhead_presets=_ALL, overhead_batch=4,
    loader_images=32, patch_num=10, loader_batch=32,
    protocol_preset="lifeiqa_effnet_lite0", protocol_images=20, protocol_crops=2,
    protocol_epochs=6, protocol_batch=16,
    inference_metrics=tuple(PYIQA_METRICS), inference_batch=2, inference_size=(384, 512),
    train_presets=("lifeiqa_effnet_lite0", "lifeiqa_swin_b"), train_batch=4, train_images=8,
    train_crops=2, train_epochs=3,
)
_TINY = dict(  # seconds, for tests: the smallest models and a handful of images
    warmup=1, repeats=1, image_size=(256, 320),
    overhead_presets=("lifeiqa_effnet_lite0",), overhead_batch=2,
    loader_images=6, patch_num=4, loader_batch=8,
    protocol_preset="lifeiqa_effnet_lite0_small", protocol_images=6, protocol_crops=1,
    protocol_epochs=2, protocol_batch=8,
    inference_metrics=("lifeiqa_effnet_lite0", "topiq_nr", "musiq"), inference_batch=1,
    inference_size=(224, 288),
    train_presets=("lifeiqa_tiny",), train_batch=4, train_images=4, train_crops=2, train_epochs=2,
    splits=3,
)
SIZES = {
    ("cpu", False): _CPU,
    ("cpu", True): replace(_CPU, **_TINY),
    ("cuda", False): replace(
        _CPU, warmup=3, repeats=10, overhead_batch=64, loader_images=64, patch_num=25,
        loader_batch=128, protocol_preset="lifeiqa_swin_b", protocol_images=64, protocol_crops=4,
        protocol_batch=64,
        inference_batch=8, train_presets=("lifeiqa_effnet_lite0", "lifeiqa_swin_b"),
        train_batch=128, train_images=64, train_crops=32, train_epochs=4),
    ("cuda", True): replace(_CPU, **{**_TINY, "overhead_batch": 8, "train_batch": 16,
                                     "train_images": 8, "train_crops": 4}),
}


@dataclass
class Bench:
    """What every section shares: device, sizes, precision and a folder of images."""

    device: torch.device
    sizes: Sizes
    recipe: Recipe  # precision and compile for the GPU paths
    workers: int
    folder: Path
    images: list[ImageRecord]
    cache: DecodedImageCache

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()


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


def median_times(bench: Bench, variants: dict[str, Callable[[], object]], warmup: int | None = None,
                 repeats: int | None = None) -> dict[str, float]:
    """Median seconds of each variant; the variants run in alternation so that a change in the
    machine's load hits them alike."""
    warmup = bench.sizes.warmup if warmup is None else warmup
    repeats = bench.sizes.repeats if repeats is None else repeats
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, run in variants.items():
            bench.sync()
            start = time.perf_counter()
            run()
            bench.sync()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _model(preset: str, bench: Bench, pretrained: bool = False) -> lifeiqa.LifeIQA:
    torch.manual_seed(0)
    model = lifeiqa.create_model(preset, pretrained=pretrained).to(bench.device)
    return model.to(memory_format=torch.channels_last)


# --- 1. decoder overhead ----------------------------------------------------------------------


def decoder_overhead(bench: Bench) -> dict:
    sizes, device = bench.sizes, bench.device
    loss_fn = LifeIQALoss()
    rows = []
    for preset in sizes.overhead_presets:
        model = _model(preset, bench)
        size = model.config.input_size
        x = torch.rand(sizes.overhead_batch, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        y = torch.rand(sizes.overhead_batch, device=device)

        def normalised(x=x, model=model) -> torch.Tensor:
            return (x - model.input_mean) / model.input_std

        @torch.no_grad()
        def backbone_forward(model=model) -> None:
            with _autocast(device, bench.recipe):
                model.backbone(normalised())

        @torch.no_grad()
        def lifeiqa_forward(model=model, x=x) -> None:
            with _autocast(device, bench.recipe):
                model.forward_head(model.forward_features(x))

        def backbone_train(model=model) -> None:
            with _autocast(device, bench.recipe):
                loss = sum(f.float().mean() for f in model.backbone(normalised()))
            loss.backward()
            model.zero_grad(set_to_none=True)

        def lifeiqa_train(model=model, x=x, y=y) -> None:
            with _autocast(device, bench.recipe):
                loss = loss_fn(model(x), y)
            loss.backward()
            model.zero_grad(set_to_none=True)

        model.eval()
        forward = median_times(bench, {"backbone": backbone_forward, "lifeiqa": lifeiqa_forward})
        model.train()
        train = median_times(bench, {"backbone": backbone_train, "lifeiqa": lifeiqa_train})
        ratio = train["lifeiqa"] / train["backbone"]
        target = _overhead_target(preset, device)
        rows.append({
            "preset": preset, "batch": sizes.overhead_batch,
            "backbone_fwd_ms": 1e3 * forward["backbone"], "lifeiqa_fwd_ms": 1e3 * forward["lifeiqa"],
            "fwd_ratio": forward["lifeiqa"] / forward["backbone"],
            "backbone_fwdbwd_ms": 1e3 * train["backbone"], "lifeiqa_fwdbwd_ms": 1e3 * train["lifeiqa"],
            "fwdbwd_ratio": ratio,
            "target": f"<= {target:.2f}" if target else "", "met": ratio <= target if target else None,
        })
        del model
    return {"rows": rows, "notes": [
        "backbone: the timm feature extractor on the normalised batch (its last two stages); "
        "Life-IQA: the whole model (normalise, backbone, pooling, decoder, MoE head); forward "
        "in eval mode without gradients, forward+backward in train mode with the training loss",
        f"random initialisation, {bench.recipe.precision if device.type == 'cuda' else 'fp32'}, "
        f"channels-last, batch {sizes.overhead_batch} of 224x224 crops"]}


def _overhead_target(preset: str, device: torch.device) -> float | None:
    if device.type == "cpu" and preset == "lifeiqa_effnet_lite0":
        return 1.10
    if device.type == "cuda" and preset == "lifeiqa_swin_b":
        return 1.05
    return None


# --- 2. data path -----------------------------------------------------------------------------


class AuthorsStyleDataset(torch.utils.data.Dataset):
    """The authors' training set as their code builds it: each image listed PATCH_NUM times;
    per sample the file is decoded with PIL, then a torchvision random flip, random 224 crop,
    ToTensor and ImageNet normalisation."""

    def __init__(self, paths: list[Path], patch_num: int, crop: int) -> None:
        from torchvision import transforms

        self.samples = [path for path in paths for _ in range(patch_num)]
        self.transform = transforms.Compose([
            transforms.RandomHorizontalFlip(), transforms.RandomCrop(crop), transforms.ToTensor(),
            transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.samples[index]) as image:
            return self.transform(image.convert("RGB"))


def data_path(bench: Bench) -> dict:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.loader_images]
    samples = sizes.loader_images * sizes.patch_num
    mean = torch.tensor((0.485, 0.456, 0.406), device=device).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), device=device).view(1, 3, 1, 1)
    authors = torch.utils.data.DataLoader(
        AuthorsStyleDataset([r.path for r in records], sizes.patch_num, 224),
        batch_size=sizes.loader_batch, shuffle=True, num_workers=bench.workers,
        pin_memory=device.type == "cuda")

    def authors_epoch() -> None:
        for batch in authors:
            batch.to(device, non_blocking=True)

    start = time.perf_counter()
    cache = DecodedImageCache(bench.folder / "data-path-cache")
    cutter = BatchCutter(cache, [r.path for r in records], "native", 224)
    decode_seconds = time.perf_counter() - start
    prefetch = Prefetcher(cutter, device, bench.workers)
    listing = np.repeat(np.arange(len(records)), sizes.patch_num)
    rng = np.random.default_rng(0)

    def cached_epoch() -> None:
        crops = cutter.random_crops(listing, True, rng)
        for x, _ in prefetch(crops.batches(sizes.loader_batch)):
            x.sub_(mean).div_(std)  # the model does this in forward(); here both paths end alike

    times = median_times(bench, {"authors": authors_epoch, "cached": cached_epoch},
                         warmup=1, repeats=max(2, min(sizes.repeats, 3)))
    speedup = times["authors"] / times["cached"]
    target = 10.0 if device.type == "cpu" else None
    return {"rows": [{
        "images": len(records), "image_size": "x".join(map(str, sizes.image_size[::-1])) + " PNG",
        "patch_num": sizes.patch_num, "samples": samples, "batch": sizes.loader_batch,
        "workers": bench.workers,
        "authors_samples_per_s": samples / times["authors"],
        "cached_samples_per_s": samples / times["cached"], "speedup": speedup,
        "cache_fill_s": decode_seconds,
        "target": f">= {target:g}x" if target else "", "met": speedup >= target if target else None,
    }], "notes": [
        f"both deliver normalised float batches of 224 crops on {device}; authors'-style: a "
        f"DataLoader with {bench.workers} worker process(es) decoding each sample's PNG with PIL "
        f"(torchvision flip, crop, ToTensor, Normalize); cached: uint8 crops cut from the "
        f"memory-mapped decoded cache by {bench.workers} thread(s), converted on the device",
        "cache_fill_s: decoding the images into the cache once (per dataset, not per epoch)"]}


# --- 3. feature cache -------------------------------------------------------------------------


def _protocol_recipe(sizes: Sizes) -> Recipe:
    """``cpu_frozen`` (fp32, so that the two variants' predictions compare at float tolerance)."""
    from harness.plan.recipes import get_recipe

    return get_recipe("cpu_frozen").override(
        model=sizes.protocol_preset, epochs=sizes.protocol_epochs, train_crops=sizes.protocol_crops,
        test_crops=sizes.protocol_crops, batch_size=sizes.protocol_batch)


def _train_uncached(model: lifeiqa.LifeIQA, recipe: Recipe, features: FeatureCache,
                    train: list[ImageRecord], train_y: np.ndarray, test: list[ImageRecord],
                    test_y: np.ndarray, device: torch.device, seed: int) -> np.ndarray:
    """``train_frozen``'s training step for step (same seed, order, batches and schedule), the
    frozen backbone run on each batch's crops instead of read from the cache."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    crops = recipe.train_crops
    targets = torch.as_tensor(np.repeat(train_y, crops), dtype=torch.float32)
    n = targets.shape[0]
    stepper = _Stepper(model, recipe, math.ceil(n / recipe.batch_size), device,
                       lambda name: not name.startswith("backbone."))

    @torch.no_grad()
    def backbone(x: torch.Tensor) -> BackboneFeatures:
        model.backbone.eval()  # frozen, as when the cache is filled
        out = model.forward_features(x.to(device, memory_format=torch.channels_last))
        return BackboneFeatures(out.pooled.float().contiguous(), out.deepest.float().contiguous())

    def batches():
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, recipe.batch_size):
            index = order[start:start + recipe.batch_size].tolist()
            batch = backbone(torch.stack([features.crops(train[i // crops], "train")[i % crops]
                                          for i in index]))
            yield (lambda b=batch: model.forward_head(b)), targets[index].to(device)

    def predict() -> np.ndarray:
        cpu = [BackboneFeatures(*(t.cpu() for t in backbone(features.crops(r, "test"))))
               for r in test]
        return predict_features(model, cpu, device)

    return _run_epochs(model, recipe, stepper, batches, predict, test_y, "last", None, None,
                       None).predictions


def feature_cache(bench: Bench) -> dict:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.protocol_images]
    recipe = _protocol_recipe(sizes)
    plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size, recipe.resize_policy,
                    recipe.hflip)
    images = DecodedImageCache(bench.folder / "protocol-images")
    for record in records:  # decoded once beforehand: both variants read the same cache
        images.get(record.path, recipe.resize_policy)
    scores = {r.image_id: r.score for r in records}
    # One initial model for every split (random weights, no download): the cache is keyed by the
    # backbone's weights, which a real protocol's pretrained backbone shares across splits.
    initial = _model(recipe.model, bench)
    seconds = {"cached": 0.0, "uncached": 0.0}
    passes = {"cached": 0, "uncached": 0}  # crops through the backbone
    seen: set[tuple[str, str]] = set()
    largest, scale = 0.0, 1.0
    for k in range(sizes.splits):
        split = plan_split("speed", [r.group for r in records], k, 0.2)
        train = [r for r in records if r.group in set(split.train)]
        test = [r for r in records if r.group in set(split.test)]
        train_y = np.array([scores[r.image_id] for r in train])
        test_y = np.array([scores[r.image_id] for r in test])
        parts = {(r.image_id, "train") for r in train} | {(r.image_id, "test") for r in test}
        passes["cached"] += recipe.train_crops * len(parts - seen)
        seen |= parts
        passes["uncached"] += recipe.train_crops * (recipe.epochs * len(train) + len(test))
        predictions = {}
        for variant in ("cached", "uncached"):
            model = copy.deepcopy(initial)  # not timed: both variants pay it alike
            if variant == "uncached":  # used only to cut crops; hashing the weights is not needed
                features = FeatureCache(bench.folder / "features", model, plan, images, device)
            bench.sync()
            start = time.perf_counter()
            if variant == "cached":  # hashing the backbone's weights is part of the cache's cost
                features = FeatureCache(bench.folder / "features", model, plan, images, device)
                predictions[variant] = train_frozen(
                    model, recipe, features.get_all(train, "train"), train_y,
                    features.get_all(test, "test"), test_y, device=device, seed=k).predictions
            else:
                predictions[variant] = _train_uncached(model, recipe, features, train, train_y, test,
                                                       test_y, device, k)
            bench.sync()
            seconds[variant] += time.perf_counter() - start
        largest = max(largest, float(np.abs(predictions["cached"] - predictions["uncached"]).max()))
        scale = max(scale, float(np.abs(predictions["cached"]).max()))
    speedup = seconds["uncached"] / seconds["cached"]
    tolerance = 1e-4 * scale
    return {"rows": [{
        "preset": recipe.model, "splits": sizes.splits, "images": len(records),
        "crops_per_image": recipe.train_crops, "epochs": recipe.epochs,
        "with_cache_s": seconds["cached"], "without_cache_s": seconds["uncached"],
        "speedup": speedup, "backbone_passes_ratio": passes["uncached"] / passes["cached"],
        "max_abs_prediction_diff": largest, "equal_within_tolerance": largest <= tolerance,
        "target": ">= 20x, equal predictions", "met": speedup >= 20 and largest <= tolerance,
    }], "notes": [
        f"recipe cpu_frozen ({recipe.model}, random weights, fp32, {recipe.epochs} epochs, batch "
        f"{recipe.batch_size}, {recipe.train_crops} crops per image), {sizes.splits} random 80/20 "
        "splits; with the cache each image's train and test crops go through the backbone once "
        "for all splits; without it the frozen backbone runs on each batch's crops every epoch "
        "of every split. backbone_passes_ratio (about 4 x epochs + 1) bounds the speedup; the "
        "decoder's own training, the same in both, lowers it",
        f"predictions equal within {tolerance:.1e} (1e-4 of their scale): batched backbone "
        "kernels round differently from per-image ones; model construction is not timed"]}


# --- 4. inference against pyiqa ---------------------------------------------------------------


def inference(bench: Bench) -> dict:
    import pyiqa

    from lifeiqa.pyiqa_metric import register

    register()  # a source checkout (no installed entry point) needs it done by hand

    sizes = bench.sizes
    x = torch.rand(sizes.inference_batch, 3, *sizes.inference_size, device=bench.device)
    metrics = {}
    for name in sizes.inference_metrics:
        torch.manual_seed(0)
        metrics[name] = pyiqa.create_metric(name, device=bench.device, **PYIQA_METRICS[name])
    times = median_times(bench, {name: (lambda m=metric: m(x)) for name, metric in metrics.items()},
                         warmup=1, repeats=max(2, min(sizes.repeats, 5)))
    reference = times.get("lifeiqa_effnet_lite0")
    rows = [{"metric": name, "seconds_per_image": seconds / sizes.inference_batch,
             "images_per_s": sizes.inference_batch / seconds,
             "relative_to_lifeiqa_effnet": seconds / reference if reference else None,
             "offline_flags": ", ".join(f"{k}={v}" for k, v in PYIQA_METRICS[name].items())}
            for name, seconds in times.items()]
    return {"rows": rows, "notes": [
        f"pyiqa.create_metric(name, **offline_flags) on {bench.device}, batches of "
        f"{sizes.inference_batch} RGB images of {sizes.inference_size[1]}x{sizes.inference_size[0]} "
        "in [0, 1]; each metric's own test-time handling: Life-IQA scores 9 crops of 224 per "
        "image, topiq_nr (CFANet, ResNet-50) the whole image, musiq its multi-scale patches",
        "topiq_nr: pretrained=False skips the CFANet checkpoint, backbone_pretrain=False the "
        "timm ResNet-50 weights; musiq: pretrained=False loads no checkpoint (1 output, as "
        "the KonIQ model); lifeiqa_*: pretrained=False is random initialisation"]}


# --- 5. training throughput -------------------------------------------------------------------


def peak_bf16_tflops(device_name: str) -> tuple[float | None, str]:
    """A CUDA device's dense BF16 peak (TFLOP/s) and its label, or None and why not."""
    for pattern, peak, label in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peak, label
    return None, f"unknown device {device_name!r}: MFU not reported"


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, *args, out_shape, **kwargs) -> int:
    """torch's count for a convolution's backward, with its weight gradient counted once: torch
    (2.x) counts a grouped convolution's weight gradient ``groups`` times, 20x too many FLOPs
    for EfficientNet's depthwise convolutions."""
    from torch.utils.flop_counter import conv_backward_flop, conv_flop_count

    flops = conv_backward_flop.__wrapped__(grad_out_shape, x_shape, w_shape, *args,
                                           out_shape=out_shape, **kwargs)
    transposed, groups, output_mask = args[4], args[6], args[7]
    if output_mask[1] and groups > 1 and not transposed:
        def swap(shape):
            return [shape[1], shape[0], *shape[2:]]

        weight = conv_flop_count(swap(x_shape), swap(grad_out_shape), swap(out_shape[1]))
        flops -= weight - weight // groups
    return flops


def train_flops_per_image(model: lifeiqa.LifeIQA, bench: Bench) -> float:
    """Model FLOPs of one training step (forward and backward) per image, counted by
    torch.utils.flop_counter (matrix products, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = model.config.input_size
    x = torch.rand(2, 3, size, size, device=bench.device)
    model.train()
    fixed = {torch.ops.aten.convolution_backward: _conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=fixed) as counter:
        with _autocast(bench.device, bench.recipe):
            loss = LifeIQALoss()(model(x), torch.zeros(2, device=bench.device))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def training(bench: Bench) -> dict:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.train_images]
    samples = sizes.train_images * sizes.train_crops
    steps = math.ceil(samples / sizes.train_batch)
    peak, peak_label = (peak_bf16_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda"
                        else (None, f"no peak table for {device.type}: MFU not reported"))
    rows = []
    for preset in sizes.train_presets:
        recipe = replace(bench.recipe, name="speed", model=preset, epochs=sizes.train_epochs,
                         warmup_epochs=0, batch_size=sizes.train_batch, lr=1e-5,
                         train_crops=sizes.train_crops, test_crops=1)
        model = _model(preset, bench)
        flops = train_flops_per_image(model, bench)
        stepper = _Stepper(model, recipe, steps, device, lambda name: True)
        forward = torch.compile(model) if recipe.compile else model
        size = model.config.input_size
        x = torch.rand(sizes.train_batch, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        y = torch.rand(sizes.train_batch, device=device)

        def model_steps(stepper=stepper, forward=forward, x=x, y=y, model=model) -> None:
            model.train()
            total = torch.zeros((), device=device)
            for _ in range(steps):
                total += stepper(lambda: forward(x), y)
            float(total)  # one host sync, as the epoch loop does

        # the steps alone are timed before and after the epochs, so that a change in the
        # machine's load hits both sides alike
        repeats = max(1, sizes.repeats // 5)
        alone_times = [median_times(bench, {"steps": model_steps}, 1, repeats)["steps"]]
        ends: list[float] = []
        train_finetune(model, recipe, records, np.array([r.score for r in records]), records[:2],
                       np.zeros(2), bench.cache, device=device, seed=0,
                       on_epoch=lambda _, ends=ends: (bench.sync(), ends.append(time.perf_counter())),
                       workers=bench.workers)
        epoch = float(statistics.median(np.diff(ends)))  # the first epoch (warmup) has no start mark
        alone_times.append(median_times(bench, {"steps": model_steps}, 0, repeats)["steps"])
        alone = statistics.mean(alone_times)
        row = {"preset": preset, "batch": sizes.train_batch, "steps_per_epoch": steps,
               "epoch_images_per_s": samples / epoch, "steps_alone_images_per_s": samples / alone,
               "epoch_over_steps": epoch / alone, "train_gflop_per_image": flops / 1e9,
               "mfu": None, "mfu_steps_alone": None}
        if peak:
            row["mfu"] = flops * samples / epoch / (peak * 1e12)
            row["mfu_steps_alone"] = flops * samples / alone / (peak * 1e12)
        if device.type == "cuda" and preset == "lifeiqa_swin_b":
            row["target"] = ">= 35% of bf16 peak, epoch <= 1.1x steps"
            row["met"] = bool(row["mfu"] and row["mfu"] >= 0.35 and row["epoch_over_steps"] <= 1.1)
        rows.append(row)
        del model, stepper
    return {"rows": rows, "notes": [
        f"train_finetune on {sizes.train_images} images x {sizes.train_crops} crops "
        f"({samples} samples, {steps} steps of {sizes.train_batch}) per epoch, "
        f"{sizes.train_epochs} epochs, the first not timed; epoch = the median of the others, "
        "crops cut from the decoded cache in the background; steps alone = the same number "
        "of optimiser steps on one batch already on the device, timed before and after",
        f"precision {bench.recipe.precision if device.type == 'cuda' else 'fp32'}, "
        f"compile={bench.recipe.compile}; peak: {peak_label}"
        + (f" {peak} TFLOP/s ({PEAK_SOURCE})" if peak else "")]}


# --- the report -------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench], dict]] = {
    "decoder_overhead": decoder_overhead, "data_path": data_path, "feature_cache": feature_cache,
    "inference": inference, "training": training}


def machine(device: torch.device) -> dict:
    import timm

    try:
        import pyiqa

        pyiqa_version = pyiqa.__version__
    except ImportError:  # section 4 then fails alone, with this error
        pyiqa_version = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"device": str(device), "cpu": cpu, "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (active)"),
            "torch": torch.__version__, "timm": timm.__version__, "pyiqa": pyiqa_version,
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_speed(sections: list[int], device: torch.device, tiny: bool = False,
              precision: str = "bf16", compile: bool = False, workers: int | None = None,
              log: Callable[[str], None] = print,
              on_section: Callable[[dict], None] | None = None) -> dict:
    """Run the chosen sections; returns the report (see :func:`render_markdown`), also passed
    to ``on_section`` after each section (so an interrupted run keeps what it measured)."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"--sections: unknown section(s) {unknown}; expected numbers from "
                         f"{sorted(SECTIONS)}")
    sizes = SIZES[("cuda" if device.type == "cuda" else "cpu", tiny)]
    if workers is not None and workers < 0:
        raise ValueError(f"--workers {workers}: expected 0 or more")
    workers = default_workers(device) if workers is None else workers
    if device.type == "cpu":
        workers = max(workers, min(2, os.cpu_count() or 1))  # the authors' loader needs some
    report = {"benchmark": "lifeiqa-bench speed", "machine": machine(device),
              "settings": {"tiny": tiny, "precision": precision, "compile": compile,
                           "workers": workers, "sizes": asdict(sizes)},
              "load_average_start": list(os.getloadavg()), "sections": {}, "failed": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lifeiqa-speed-") as tmp:
        folder = Path(tmp)
        count = max(sizes.loader_images, sizes.protocol_images, sizes.train_images)
        log(f"speed: {device} ({report['machine'].get('gpu', report['machine']['cpu'])}), "
            f"{'tiny sizes, ' if tiny else ''}writing {count} test images")
        images = write_images(folder / "images", count, sizes.image_size)
        recipe = Recipe(name="speed", precision=precision, compile=compile)
        bench = Bench(device, sizes, recipe, workers, folder, images,
                      DecodedImageCache(folder / "decoded"))
        for number in sections:
            name = SECTIONS[number]
            log(f"running {TITLES[name]} ...")
            start = time.perf_counter()
            try:
                result = RUNNERS[name](bench)
            except Exception as err:  # one section's failure must not lose the others' figures
                report["failed"][name] = f"{type(err).__name__}: {err}"
                log(f"  FAILED: {report['failed'][name]}")
                continue
            result["seconds"] = time.perf_counter() - start
            report["sections"][name] = {"title": TITLES[name], **result}
            report["load_average_end"] = list(os.getloadavg())
            if on_section:
                on_section(report)
    report["load_average_end"] = list(os.getloadavg())
    report["wall_seconds"] = time.perf_counter() - started
    return report


def _format(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "NO", None: ""}[value]
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.2e}"
    return str(value)


def render_markdown(report: dict) -> str:
    from tabulate import tabulate

    info = report["machine"]
    lines = [f"# lifeiqa-bench speed ({'tiny' if report['settings']['tiny'] else 'full'} sizes)", "",
             f"Device: {info['device']}" + (f" ({info['gpu']})" if "gpu" in info else "")
             + f"; CPU: {info['cpu']} ({info['cpu_cores']} cores); torch {info['torch']}, timm "
             f"{info['timm']}, pyiqa {info['pyiqa']}; {info['date']}.",
             f"Load average at start/end: {report['load_average_start'][0]:.1f} / "
             f"{report['load_average_end'][0]:.1f} (on {info['cpu_cores']} cores; above the core "
             "count means other processes shared the machine and the figures are noisy). "
             f"{info['torch_threads']} torch thread(s), OMP_WAIT_POLICY {info['omp_wait_policy']} "
             "(on a shared CPU, PASSIVE keeps OpenMP's spinning threads from stalling every op).",
             ""]
    for section in report["sections"].values():
        rows = [{k: _format(v) for k, v in row.items()} for row in section["rows"]]
        lines += [f"## {section['title']}", "", tabulate(rows, headers="keys", tablefmt="github"),
                  ""]
        lines += [f"- {note}" for note in section["notes"]]
        lines += [f"- section time: {section['seconds']:.0f} s", ""]
    for name, message in report["failed"].items():
        lines += [f"## {TITLES[name]}", "", f"FAILED: {message}", ""]
    if "wall_seconds" in report:
        lines.append(f"Total wall time: {report['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def main(args) -> int:
    from harness.device import resolve_device

    try:
        sections = [int(part) for part in args.sections.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--sections {args.sections!r}: expected numbers like 1,2,5") from None
    device = resolve_device(args.device)

    def save(report: dict) -> None:
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        if args.markdown:
            Path(args.markdown).write_text(render_markdown(report) + "\n")

    try:
        report = run_speed(sections, device, args.tiny, args.precision, args.compile, args.workers,
                           on_section=save)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    save(report)
    print(render_markdown(report))
    return 1 if report["failed"] else 0
