"""Section 3, feature cache: a 10-split frozen-backbone protocol with the feature cache against
running the frozen backbone on every crop every epoch, and how far their predictions differ."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.train import train_frozen, train_frozen_on
from harness.plan.recipes import Recipe, get_recipe
from harness.plan.splits import plan_split
from harness.speed.report import Table
from harness.speed.sizes import Bench, Sizes
from lifeiqa import BackboneFeatures


def protocol_recipe(sizes: Sizes) -> Recipe:
    """``cpu_frozen`` (fp32, so that the two variants' predictions compare at float tolerance)."""
    return get_recipe("cpu_frozen").override(
        model=sizes.protocol_preset, epochs=sizes.protocol_epochs, train_crops=sizes.protocol_crops,
        test_crops=sizes.protocol_crops, batch_size=sizes.protocol_batch)


def train_uncached(model: lifeiqa.LifeIQA, recipe: Recipe, features: FeatureCache,
                   train: list[ImageRecord], train_y: np.ndarray, test: list[ImageRecord],
                   test_y: np.ndarray, device: torch.device, seed: int) -> np.ndarray:
    """Test predictions of :func:`train_frozen`'s training (the same seed, order, batches and
    schedule) with the frozen backbone run on each batch's crops instead of read from
    ``features``, which only cuts the crops."""
    crops = recipe.train_crops

    @torch.no_grad()
    def backbone(x: torch.Tensor) -> BackboneFeatures:
        model.backbone.eval()  # frozen, as when the cache is filled
        out = model.forward_features(x.to(device, memory_format=torch.channels_last))
        return BackboneFeatures(out.pooled.float().contiguous(), out.deepest.float().contiguous())

    def sample_features(index: torch.Tensor) -> BackboneFeatures:
        return backbone(torch.stack([features.crops(train[i // crops], "train")[i % crops]
                                     for i in index.tolist()]))

    # the backbone is frozen: its test features are the same before training as after
    test_features = [backbone(features.crops(record, "test")) for record in test]
    return train_frozen_on(model, recipe, sample_features, crops, train_y, test_features, test_y,
                           device=device, seed=seed).predictions


def feature_cache(bench: Bench) -> Table:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.protocol_images]
    recipe = protocol_recipe(sizes)
    plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size, recipe.resize_policy,
                    recipe.hflip)
    images = DecodedImageCache(bench.folder / "protocol-images")
    for record in records:  # decoded once beforehand: both variants read the same cache
        images.get(record.path, recipe.resize_policy)
    scores = {r.image_id: r.score for r in records}
    # One initial model for every split (random weights, no download): the cache is keyed by the
    # backbone's weights, which a real protocol's pretrained backbone shares across splits.
    initial = bench.model(recipe.model)
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
                predictions[variant] = train_uncached(model, recipe, features, train, train_y, test,
                                                      test_y, device, k)
            bench.sync()
            seconds[variant] += time.perf_counter() - start
        largest = max(largest, float(np.abs(predictions["cached"] - predictions["uncached"]).max()))
        scale = max(scale, float(np.abs(predictions["cached"]).max()))
    speedup = seconds["uncached"] / seconds["cached"]
    tolerance = 1e-4 * scale
    return Table(({
        "preset": recipe.model, "splits": sizes.splits, "images": len(records),
        "crops_per_image": recipe.train_crops, "epochs": recipe.epochs,
        "with_cache_s": seconds["cached"], "without_cache_s": seconds["uncached"],
        "speedup": speedup, "backbone_passes_ratio": passes["uncached"] / passes["cached"],
        "max_abs_prediction_diff": largest, "equal_within_tolerance": largest <= tolerance,
        "target": ">= 20x, equal predictions", "met": speedup >= 20 and largest <= tolerance,
    },), (
        f"recipe cpu_frozen ({recipe.model}, random weights, fp32, {recipe.epochs} epochs, batch "
        f"{recipe.batch_size}, {recipe.train_crops} crops per image), {sizes.splits} random 80/20 "
        "splits; with the cache each image's train and test crops go through the backbone once "
        "for all splits; without it the frozen backbone runs on each batch's crops every epoch "
        "of every split. backbone_passes_ratio (about 4 x epochs + 1) bounds the speedup; the "
        "decoder's own training, the same in both, lowers it",
        f"predictions equal within {tolerance:.1e} (1e-4 of their scale): batched backbone "
        "kernels round differently from per-image ones; model construction is not timed"))
