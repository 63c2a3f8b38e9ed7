"""Training and evaluation of one job: frozen-backbone (on cached features) or full fine-tuning.

Both modes share the optimiser (AdamW, no weight decay on biases and 1-D/0-D tensors), the
schedule, gradient-norm clipping, the loss (regression + weighted MoE losses) and the epoch
selection: ``last`` (the final epoch), ``val`` (the epoch with the best SRCC on a
content-disjoint validation part) or ``oracle`` (the best epoch on the test part itself: only on
explicit request, and always labelled test-oracle).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine import distributed
from harness.engine.batching import BatchCutter, Prefetcher, predict_crops
from harness.engine.features import CropPlan
from harness.plan.recipes import Recipe, lr_factor
from harness.results import metrics
from lifeiqa import BackboneFeatures, LifeIQA, LifeIQALoss

SELECTIONS = ("last", "val", "oracle")


class NonFiniteLossError(RuntimeError):
    """Training diverged; the job fails with this message and nothing is written as a result."""


@dataclass
class EvalSet:
    """Records to predict, with their targets (on the training label scale)."""

    records: list[ImageRecord]
    targets: np.ndarray


@dataclass
class TrainOutcome:
    predictions: np.ndarray  # for the test set, at the selected epoch
    selected_epoch: int
    history: list[dict] = field(default_factory=list)


def make_optimizer(model: LifeIQA, recipe: Recipe, trainable: Callable[[str], bool]) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad or not trainable(name):
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=recipe.lr, betas=(0.9, 0.999))


def autocast_for(device: torch.device, recipe: Recipe) -> torch.autocast:
    """The autocast context of ``recipe.precision`` on ``device``: bf16 or fp16 on CUDA, disabled
    for fp32 and on every other device (CPU and MPS train in fp32)."""
    if device.type == "cuda" and recipe.precision != "fp32":
        dtype = torch.bfloat16 if recipe.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


def _select(history: list[dict], selection: str) -> int:
    if selection == "last":
        return len(history) - 1
    key = "val_srcc" if selection == "val" else "test_srcc"
    return int(np.argmax([h[key] for h in history]))


class Stepper:
    """One optimisation step with the recipe's loss, clipping, schedule and precision.

    Builds the AdamW optimiser over the parameters ``trainable(name)`` selects; each call runs
    ``forward()`` under the recipe's autocast, takes the loss against ``targets``, steps, and
    returns the detached loss (no host sync). The learning rate follows the recipe's schedule
    over ``steps_per_epoch`` calls per epoch."""

    def __init__(self, model: LifeIQA, recipe: Recipe, steps_per_epoch: int,
                 device: torch.device, trainable: Callable[[str], bool]) -> None:
        self.model, self.recipe, self.device = model, recipe, device
        self.optimizer = make_optimizer(model, recipe, trainable)
        self.loss_fn = LifeIQALoss(recipe.aux_weight, recipe.z_weight, recipe.regression)
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda"
                                                       and recipe.precision == "fp16") else None
        self.step_count = 0
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        distributed.sync_balance_loss(model)

    def __call__(self, forward: Callable[[], object], targets: torch.Tensor) -> torch.Tensor:
        factor = lr_factor(self.recipe, self.step_count / self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.recipe.lr * factor
        with autocast_for(self.device, self.recipe):
            loss = self.loss_fn(forward(), targets)
        loss = distributed.weight_loss(loss, targets.shape[0])  # torchrun: this rank's share
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        distributed.average_gradients(self.params)  # before unscaling: every rank sees any inf
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.recipe.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step_count += 1
        return loss.detach()


def _check_finite(loss_sum: torch.Tensor, epoch: int) -> float:
    value = float(loss_sum)  # one host sync per epoch, not per step
    if not math.isfinite(value):
        raise NonFiniteLossError(f"non-finite training loss in epoch {epoch + 1}")
    return value


def _finite(predictions: np.ndarray, part: str, epoch: int) -> np.ndarray:
    """``predictions``, unless an update diverged the model after its loss was last checked."""
    if not np.all(np.isfinite(predictions)):
        raise NonFiniteLossError(f"non-finite {part} predictions after epoch {epoch}: training "
                                 f"diverged")
    return predictions


Batch = tuple[Callable[[], object], torch.Tensor]  # (forward pass, targets)


def _run_epochs(model: LifeIQA, recipe: Recipe, stepper: Stepper,
                batches: Callable[[], Iterable[Batch]], predict_test: Callable[[], np.ndarray],
                test_targets: np.ndarray, selection: str,
                predict_val: Callable[[], np.ndarray] | None, val_targets: np.ndarray | None,
                on_epoch: Callable[[dict], None] | None) -> TrainOutcome:
    """The epoch loop shared by both modes, with epoch selection; returns test predictions at
    the selected epoch (the model is left in that state)."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection {selection!r}: expected one of {SELECTIONS}")
    if selection == "val" and predict_val is None:
        raise ValueError("selection 'val' needs a validation part")
    history: list[dict] = []
    best_state, best_value = None, -math.inf
    device = stepper.device
    for epoch in range(recipe.epochs):
        model.train()
        loss_sum = torch.zeros((), device=device)
        steps = 0
        for forward, targets in batches():
            loss_sum += stepper(forward, targets)
            steps += 1
        entry = {"epoch": epoch + 1, "loss": _check_finite(distributed.mean(loss_sum), epoch) / max(steps, 1)}
        if selection == "val":
            entry["val_srcc"] = metrics.srcc(_finite(predict_val(), "validation", epoch + 1), val_targets)
        if selection == "oracle":
            entry["test_srcc"] = metrics.srcc(_finite(predict_test(), "test", epoch + 1), test_targets)
        history.append(entry)
        if on_epoch:
            on_epoch(entry)
        if selection != "last":
            value = entry["val_srcc" if selection == "val" else "test_srcc"]
            if value > best_value:
                best_value, best_state = value, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    selected = _select(history, selection) + 1
    return TrainOutcome(_finite(predict_test(), "test", selected), selected, history)


# --- frozen backbone --------------------------------------------------------------------------


def _stack(features: Sequence[BackboneFeatures]) -> BackboneFeatures:
    return BackboneFeatures(torch.cat([f.pooled for f in features]),
                            torch.cat([f.deepest for f in features]))


@torch.no_grad()
def predict_features(model: LifeIQA, features: Sequence[BackboneFeatures], device: torch.device,
                     batch_size: int = 256) -> np.ndarray:
    """Per-image predictions: the mean over each image's (test) crops."""
    model.eval()
    if not features:
        return np.empty(0)
    stacked = _stack(features)
    crops = features[0].pooled.shape[0]
    scores = []
    for start in range(0, stacked.pooled.shape[0], batch_size):
        part = BackboneFeatures(stacked.pooled[start:start + batch_size].to(device),
                                stacked.deepest[start:start + batch_size].to(device))
        scores.append(model.forward_head(part).score.float().cpu())
    return torch.cat(scores).view(-1, crops).mean(1).numpy()


SampleFeatures = Callable[[torch.Tensor], BackboneFeatures]
"""The backbone features of a batch of training samples, given their indices: sample ``i`` is
crop ``i % crops`` of training image ``i // crops``."""


def train_frozen(model: LifeIQA, recipe: Recipe, train_features: Sequence[BackboneFeatures],
                 train_targets: np.ndarray, test_features: Sequence[BackboneFeatures],
                 test_targets: np.ndarray, selection: str = "last",
                 val_features: Sequence[BackboneFeatures] = (),
                 val_targets: np.ndarray | None = None,
                 device: torch.device | str = "cpu", seed: int = 0,
                 on_epoch: Callable[[dict], None] | None = None) -> TrainOutcome:
    """Train the decoder and head on cached backbone features; the backbone is not run."""
    stacked = _stack(train_features)

    def sample_features(index: torch.Tensor) -> BackboneFeatures:
        return BackboneFeatures(stacked.pooled[index], stacked.deepest[index])

    return train_frozen_on(model, recipe, sample_features, train_features[0].pooled.shape[0],
                           train_targets, test_features, test_targets, selection, val_features,
                           val_targets, device, seed, on_epoch)


def train_frozen_on(model: LifeIQA, recipe: Recipe, sample_features: SampleFeatures, crops: int,
                    train_targets: np.ndarray, test_features: Sequence[BackboneFeatures],
                    test_targets: np.ndarray, selection: str = "last",
                    val_features: Sequence[BackboneFeatures] = (),
                    val_targets: np.ndarray | None = None,
                    device: torch.device | str = "cpu", seed: int = 0,
                    on_epoch: Callable[[dict], None] | None = None) -> TrainOutcome:
    """:func:`train_frozen` with each batch's training features taken from ``sample_features``
    (``crops`` per training image): read from a cache, or the frozen backbone run on the batch's
    crops. The seed, sample order, batches and schedule do not depend on where they come from."""
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    targets = torch.as_tensor(np.repeat(train_targets, crops), dtype=torch.float32)
    n = targets.shape[0]
    stepper = Stepper(model, recipe, math.ceil(n / recipe.batch_size), device,
                      lambda name: not name.startswith("backbone."))

    def batches() -> Iterable[Batch]:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, recipe.batch_size):
            index = distributed.shard(order[start:start + recipe.batch_size])
            batch = BackboneFeatures(*(part.to(device) for part in sample_features(index)))
            yield (lambda b=batch: model.forward_head(b)), targets[index].to(device)

    def predict(features: Sequence[BackboneFeatures]) -> np.ndarray:
        return predict_features(model, features, device)

    return _run_epochs(
        model, recipe, stepper, batches,
        lambda: distributed.map_sharded(predict, test_features), test_targets, selection,
        (lambda: distributed.map_sharded(predict, val_features)) if len(val_features) else None,
        val_targets, on_epoch)


# --- full fine-tuning -------------------------------------------------------------------------


def predict_records(model: LifeIQA, records: Sequence[ImageRecord], images: DecodedImageCache,
                    plan: CropPlan, device: torch.device, recipe: Recipe | None = None,
                    workers: int | None = None) -> np.ndarray:
    """Per-image predictions: the mean over a uniform grid of ``plan.test_crops`` crops, cut
    from the decoded-image cache in batches that span images (``recipe.batch_size`` crops, under
    the recipe's precision; 64 crops in fp32 without a recipe)."""
    model.eval()
    cutter = BatchCutter(images, [r.path for r in records], plan.resize_policy, plan.crop_size)
    layout = torch.channels_last if recipe is None or recipe.channels_last else torch.contiguous_format

    def forward(x: torch.Tensor) -> torch.Tensor:
        # the cutter's output is valid by construction: skip forward()'s range check (a host sync)
        with autocast_for(device, recipe) if recipe else contextlib.nullcontext():
            return model.forward_head(model.forward_features(x.contiguous(memory_format=layout))).score

    return predict_crops(forward, Prefetcher(cutter, device, workers), cutter.grid_crops(plan.test_crops),
                         plan.test_crops, recipe.batch_size if recipe else 64, device)


def train_finetune(model: LifeIQA, recipe: Recipe, train_records: Sequence[ImageRecord],
                   train_targets: np.ndarray, test_records: Sequence[ImageRecord],
                   test_targets: np.ndarray, images: DecodedImageCache, selection: str = "last",
                   val_records: Sequence[ImageRecord] = (), val_targets: np.ndarray | None = None,
                   device: torch.device | str = "cpu", seed: int = 0,
                   on_epoch: Callable[[dict], None] | None = None,
                   workers: int | None = None) -> TrainOutcome:
    """The paper's mode: the whole network trains on random crops (each image listed
    ``train_crops`` times per epoch) cut from the decoded-image cache by ``workers`` background
    processes (default :func:`harness.engine.batching.default_workers`; the batches do not depend on
    it); evaluation averages a uniform grid of test crops."""
    device = torch.device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size, recipe.resize_policy,
                    recipe.hflip)
    layout = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(device, memory_format=layout)
    forward = torch.compile(model) if recipe.compile else model
    cutter = BatchCutter(images, [r.path for r in train_records], recipe.resize_policy,
                         recipe.crop_size)
    prefetch = Prefetcher(cutter, device, workers)
    listing = np.repeat(np.arange(len(train_records)), recipe.train_crops)
    stepper = Stepper(model, recipe, math.ceil(len(listing) / recipe.batch_size), device,
                      lambda name: True)
    targets = torch.as_tensor(train_targets, dtype=torch.float32).to(device)

    def batches() -> Iterable[Batch]:
        crops = cutter.random_crops(listing, recipe.hflip, rng)
        # every rank draws the same crops and cuts only its rows of each batch
        mine = [c.take(distributed.shard(np.arange(len(c)))) for c in crops.batches(recipe.batch_size)]
        for x, image in prefetch(mine):
            x = x.contiguous(memory_format=layout)
            yield (lambda x=x: forward(x)), targets[image]

    def predict(records: Sequence[ImageRecord]) -> Callable[[], np.ndarray]:
        return lambda: distributed.map_sharded(
            lambda part: predict_records(model, part, images, plan, device, recipe, workers), records)

    return _run_epochs(model, recipe, stepper, batches, predict(test_records), test_targets,
                       selection, predict(val_records) if len(val_records) else None,
                       val_targets, on_epoch)
