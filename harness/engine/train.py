"""Training and evaluation of one job: frozen-backbone (on cached features) or full fine-tuning.

Both modes share the optimiser (AdamW, no weight decay on biases and 1-D/0-D tensors), the
schedule (:mod:`harness.engine.schedules`; each epoch's history records its steps and the
learning rates of its first and last step), gradient-norm clipping, the loss (regression +
weighted MoE losses, in fp32 outside autocast) and the epoch selection: ``last`` (the final
epoch), ``val`` (the epoch with the best SRCC on a content-disjoint validation part), ``oracle``
(the best epoch on the test part itself) or ``authors`` (the authors' reporting rule, also on the
test part: see :func:`authors_rule`). The last two only on explicit request, and always labelled
as test-oracle.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine import distributed
from harness.engine.batching import BatchCutter, Prefetcher, predict_crops
from harness.engine.features import CropPlan
from harness.engine.resume import EpochResume, RandomStream, restore_streams, stream_states
from harness.engine.schedules import LearningRate
from harness.plan.recipes import Recipe
from harness.results import metrics
from lifeiqa import BackboneFeatures, LifeIQA, LifeIQALoss

log = logging.getLogger(__name__)

SELECTIONS = ("last", "val", "oracle", "authors")
TEST_SELECTIONS = ("oracle", "authors")  # chosen on the test part: test-oracle


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
    # metrics a reporting rule puts in place of those of the selected epoch's predictions
    # (selection "authors": their SRCC and running-maximum PLCC)
    reported: dict[str, float] = field(default_factory=dict)


def fused_adamw_applies(params: Sequence[torch.Tensor]) -> bool:
    """Whether AdamW's fused kernel (one kernel for all parameters instead of several per
    tensor: on CPU the half-width decoder's optimiser step takes 1.3 ms instead of 5) updates
    ``params`` exactly as the reference path does.

    On CUDA it always does: the kernel refuses a gradient whose strides differ from its
    parameter's. The CPU kernel (torch 2.14) does not check: it walks both in memory order, so a
    channels-last conv weight with a contiguous gradient, as DDP's gradient buckets hand back,
    got other elements' updates (fine-tuning under torchrun drifted 0.004 from one process in
    tests/test_ddp.py). A parameter in the default layout gets its gradient in that layout from
    autograd and from DDP alike, so on CPU it fuses only when every parameter is contiguous."""
    devices = {p.device.type for p in params}
    if devices == {"cuda"}:
        return True
    return devices == {"cpu"} and all(p.is_contiguous() for p in params)


def make_optimizer(model: LifeIQA, recipe: Recipe, trainable: Callable[[str], bool]) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad or not trainable(name):
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    fused = fused_adamw_applies(decay + no_decay)
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=recipe.lr, betas=(0.9, 0.999), fused=fused or None)


def autocast_for(device: torch.device, recipe: Recipe) -> torch.autocast:
    """The autocast context of ``recipe.precision`` on ``device``: bf16 or fp16 on CUDA, disabled
    for fp32 and on every other device (CPU and MPS train in fp32)."""
    if device.type == "cuda" and recipe.precision != "fp32":
        dtype = torch.bfloat16 if recipe.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@dataclass(frozen=True)
class AuthorsReport:
    """What the authors' rule reports over a run: the epoch (1-based; None if no epoch's SRCC
    reached 0) and the (SRCC, PLCC) pair it prints."""

    epoch: int | None
    srcc: float
    plcc: float


def authors_rule(history: Sequence[dict]) -> AuthorsReport:
    """The authors' reporting rule (their main.py) over per-epoch test ``test_srcc`` and
    ``test_plcc`` (raw Pearson): both maxima start at 0; after each epoch, if its SRCC is at least
    the best so far, the best SRCC becomes it and the best PLCC becomes max(best PLCC, its PLCC).
    So the reported SRCC is the last epoch of the best test SRCC, and the PLCC a running maximum
    updated only at such epochs: it may come from an earlier epoch than the SRCC."""
    epoch, best_srcc, best_plcc = None, 0.0, 0.0
    for index, entry in enumerate(history):
        if entry["test_srcc"] >= best_srcc:
            epoch, best_srcc = index + 1, entry["test_srcc"]
            best_plcc = max(best_plcc, entry["test_plcc"])
    return AuthorsReport(epoch, best_srcc, best_plcc)


def _select(history: list[dict], selection: str) -> int:
    if selection == "last":
        return len(history) - 1
    if selection == "authors":
        # a run whose test SRCC never reached 0 reports (0, 0) there; its model is the last one
        epoch = authors_rule(history).epoch
        return len(history) - 1 if epoch is None else epoch - 1
    key = "val_srcc" if selection == "val" else "test_srcc"
    return int(np.argmax([h[key] for h in history]))


class Stepper:
    """One optimisation step with the recipe's loss, clipping, schedule and precision.

    Builds the AdamW optimiser over the parameters ``trainable(name)`` selects; each call runs
    ``forward()`` under the recipe's autocast, takes the loss against ``targets`` in fp32 outside
    it, steps, and returns the detached loss (no host sync). The learning rate follows the
    recipe's schedule over ``steps_per_epoch`` calls per epoch; ``rates`` holds the rate of every
    step taken."""

    def __init__(self, model: LifeIQA, recipe: Recipe, steps_per_epoch: int,
                 device: torch.device, trainable: Callable[[str], bool]) -> None:
        self.model, self.recipe, self.device = model, recipe, device
        self.optimizer = make_optimizer(model, recipe, trainable)
        self.loss_fn = LifeIQALoss(recipe.aux_weight, recipe.z_weight, recipe.regression)
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda"
                                                       and recipe.precision == "fp16") else None
        self.learning_rate = LearningRate(recipe, self.optimizer, self.steps_per_epoch)
        self.rates: list[float] = []
        self.step_count = 0
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        distributed.sync_balance_loss(model)

    def __call__(self, forward: Callable[[], object], targets: torch.Tensor) -> torch.Tensor:
        self.rates.append(self.learning_rate.before_step(self.step_count))
        with autocast_for(self.device, self.recipe):
            output = forward()
        # the model's head returns fp32 scores under any autocast; the loss stays in fp32 too
        loss = self.loss_fn(output, targets)
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
        self.learning_rate.after_step(self.step_count)
        self.step_count += 1
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to step on as this one would (the schedule follows the
        step count)."""
        return {"optimizer": self.optimizer.state_dict(), "step_count": self.step_count,
                "rates": list(self.rates),
                "scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count, self.rates = state["step_count"], list(state["rates"])
        if self.scaler and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])

    def epoch_rates(self, first_step: int) -> dict[str, float]:
        """The rates of the first and last step taken since step ``first_step``."""
        taken = self.rates[first_step:]
        return {"lr_first": taken[0], "lr_last": taken[-1]} if taken else {}


def steps_per_epoch(samples: int, recipe: Recipe) -> int:
    """Optimiser steps of an epoch over ``samples`` training samples; raises ValueError when
    ``recipe.drop_last`` leaves none."""
    if not recipe.drop_last:
        return math.ceil(samples / recipe.batch_size)
    if samples < recipe.batch_size:
        raise ValueError(f"recipe {recipe.name}: {samples} training samples make no full batch "
                         f"of {recipe.batch_size} with drop_last=True; lower batch_size or set "
                         f"drop_last=False")
    return samples // recipe.batch_size


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
                on_epoch: Callable[[dict], None] | None, resume: EpochResume | None = None,
                streams: Sequence[RandomStream] = ()) -> TrainOutcome:
    """The epoch loop shared by both modes, with epoch selection; returns test predictions at
    the selected epoch (the model is left in that state). With ``resume`` the state after each
    epoch is saved, and a saved one is taken up where it stopped; ``streams`` are the random
    generators the batches and predictions draw from, saved with it."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection {selection!r}: expected one of {SELECTIONS}")
    if selection == "val" and predict_val is None:
        raise ValueError("selection 'val' needs a validation part")
    history: list[dict] = []
    best_state, best_predictions = None, None
    device = stepper.device
    saved = resume.load() if resume else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        stepper.load_state_dict(saved["stepper"])
        history, best_state, best_predictions = saved["history"], saved["best_state"], \
            saved["best_predictions"]
        restore_streams(streams, saved["streams"])
        assert resume is not None  # saved came from it
        log.info("resumed after epoch %d of %d (%s)", len(history), recipe.epochs, resume.path)
    for epoch in range(len(history), recipe.epochs):
        model.train()
        loss_sum = torch.zeros((), device=device)
        first_step = stepper.step_count
        for forward, targets in batches():
            loss_sum += stepper(forward, targets)
        steps = stepper.step_count - first_step
        entry = {"epoch": epoch + 1, "loss": _check_finite(distributed.mean(loss_sum), epoch) / max(steps, 1),
                 "steps": steps, **stepper.epoch_rates(first_step)}
        if selection == "val":
            assert predict_val is not None  # checked above
            entry["val_srcc"] = metrics.srcc(_finite(predict_val(), "validation", epoch + 1),
                                             cast(np.ndarray, val_targets))  # given with predict_val
        test_predictions = None
        if selection in TEST_SELECTIONS:
            test_predictions = _finite(predict_test(), "test", epoch + 1)
            entry["test_srcc"] = metrics.srcc(test_predictions, test_targets)
            if selection == "authors":
                entry["test_plcc"] = metrics.plcc(test_predictions, test_targets)
        history.append(entry)
        if on_epoch:
            on_epoch(entry)
        if selection != "last" and _select(history, selection) == epoch:
            # the test predictions that selected the epoch are its result (random test crops
            # drawn again would give others)
            best_state, best_predictions = copy.deepcopy(model.state_dict()), test_predictions
        if resume and distributed.is_main() and epoch + 1 < recipe.epochs:
            resume.save({"model": model.state_dict(), "stepper": stepper.state_dict(),
                         "history": history, "best_state": best_state,
                         "best_predictions": best_predictions,
                         "streams": stream_states(streams)})
    if best_state is not None:
        model.load_state_dict(best_state)
    selected = _select(history, selection) + 1
    predictions = best_predictions if best_predictions is not None else \
        _finite(predict_test(), "test", selected)
    reported = {}
    if selection == "authors":
        report = authors_rule(history)
        reported = {"srcc": report.srcc, "plcc": report.plcc}
    return TrainOutcome(predictions, selected, history, reported)


# --- frozen backbone --------------------------------------------------------------------------


@torch.no_grad()
def predict_features(model: LifeIQA, features: Sequence[BackboneFeatures], device: torch.device,
                     batch_size: int = 256) -> np.ndarray:
    """Per-image predictions: the mean over each image's (test) crops."""
    model.eval()
    if not features:
        return np.empty(0)
    stacked = BackboneFeatures.cat(features)
    crops = features[0].pooled.shape[0]
    scores = []
    for start in range(0, stacked.pooled.shape[0], batch_size):
        part = stacked.map(cast("Callable[[torch.Tensor], torch.Tensor]",
                                lambda t, start=start: t[start:start + batch_size].to(device)))
        scores.append(model.forward_head(part).score.float().cpu())
    return torch.cat(scores).view(-1, crops).mean(1).numpy()


SampleFeatures = Callable[[torch.Tensor], BackboneFeatures]
"""The backbone features of a batch of training samples, given their indices: sample ``i`` is
crop ``i % crops`` of training image ``i // crops``."""


def train_frozen(model: LifeIQA, recipe: Recipe, train_features: Sequence[BackboneFeatures],
                 train_targets: np.ndarray, test_features: Sequence[BackboneFeatures],
                 test_targets: np.ndarray, *, selection: str = "last",
                 val_features: Sequence[BackboneFeatures] = (),
                 val_targets: np.ndarray | None = None,
                 device: torch.device | str = "cpu", seed: int = 0,
                 on_epoch: Callable[[dict], None] | None = None,
                 resume: EpochResume | None = None) -> TrainOutcome:
    """Train the decoder and head on cached backbone features; the backbone is not run."""
    stacked = BackboneFeatures.cat(train_features)

    def sample_features(index: torch.Tensor) -> BackboneFeatures:
        return stacked.map(lambda t: t[index])

    return train_frozen_on(model, recipe, sample_features, train_features[0].pooled.shape[0],
                           train_targets, test_features, test_targets, selection=selection,
                           val_features=val_features, val_targets=val_targets, device=device,
                           seed=seed, on_epoch=on_epoch, resume=resume)


def train_frozen_on(model: LifeIQA, recipe: Recipe, sample_features: SampleFeatures, crops: int,
                    train_targets: np.ndarray, test_features: Sequence[BackboneFeatures],
                    test_targets: np.ndarray, *, selection: str = "last",
                    val_features: Sequence[BackboneFeatures] = (),
                    val_targets: np.ndarray | None = None,
                    device: torch.device | str = "cpu", seed: int = 0,
                    on_epoch: Callable[[dict], None] | None = None,
                    resume: EpochResume | None = None) -> TrainOutcome:
    """:func:`train_frozen` with each batch's training features taken from ``sample_features``
    (``crops`` per training image): read from a cache, or the frozen backbone run on the batch's
    crops. The seed, sample order, batches and schedule do not depend on where they come from."""
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    targets = torch.as_tensor(np.repeat(train_targets, crops), dtype=torch.float32)
    n = targets.shape[0]
    steps = steps_per_epoch(n, recipe)
    stepper = Stepper(model, recipe, steps, device, lambda name: not name.startswith("backbone."))
    head = torch.compile(model.forward_head) if recipe.compile else model.forward_head

    def batches() -> Iterable[Batch]:
        order = torch.randperm(n, generator=generator)
        for start in range(0, steps * recipe.batch_size, recipe.batch_size):
            index = distributed.shard(order[start:start + recipe.batch_size])
            batch = sample_features(index).map(lambda t: t.to(device))
            yield cast("Callable[[], object]", lambda b=batch: head(b)), targets[index].to(device)

    def predict(features: Sequence[BackboneFeatures]) -> np.ndarray:
        return predict_features(model, features, device)

    return _run_epochs(
        model, recipe, stepper, batches,
        lambda: distributed.map_sharded(predict, test_features), test_targets, selection,
        (lambda: distributed.map_sharded(predict, val_features)) if len(val_features) else None,
        val_targets, on_epoch, resume, [generator])


# --- full fine-tuning -------------------------------------------------------------------------

# random test crops: generator streams of their own, (seed, stream), apart from the training one
TEST_STREAM, VALIDATION_STREAM = 1, 2


def predict_records(model: LifeIQA, records: Sequence[ImageRecord], images: DecodedImageCache,
                    plan: CropPlan, device: torch.device, recipe: Recipe | None = None,
                    workers: int | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-image predictions: the mean over ``plan.test_crops`` crops, on a uniform grid or, given
    ``rng``, at uniform random positions drawn from it (unflipped, as the authors' test crops),
    cut from the decoded-image cache in batches that span images (``recipe.batch_size`` crops,
    under the recipe's precision; 64 crops in fp32 without a recipe)."""
    model.eval()
    cutter = BatchCutter(images, [r.path for r in records], plan.resize_policy, plan.crop_size)
    layout = torch.channels_last if recipe is None or recipe.channels_last else torch.contiguous_format

    def forward(x: torch.Tensor) -> torch.Tensor:
        # the cutter's output is valid by construction: skip forward()'s range check (a host sync)
        with autocast_for(device, recipe) if recipe else contextlib.nullcontext():
            return model.forward_head(model.forward_features(x.contiguous(memory_format=layout))).score

    crops = cutter.grid_crops(plan.test_crops) if rng is None else \
        cutter.random_crops(np.repeat(np.arange(len(records)), plan.test_crops), False, rng)
    return predict_crops(forward, Prefetcher(cutter, device, workers), crops, plan.test_crops,
                         recipe.batch_size if recipe else 64, device)


def train_finetune(model: LifeIQA, recipe: Recipe, train_records: Sequence[ImageRecord],
                   train_targets: np.ndarray, test_records: Sequence[ImageRecord],
                   test_targets: np.ndarray, images: DecodedImageCache, *, selection: str = "last",
                   val_records: Sequence[ImageRecord] = (), val_targets: np.ndarray | None = None,
                   device: torch.device | str = "cpu", seed: int = 0,
                   on_epoch: Callable[[dict], None] | None = None,
                   workers: int | None = None, resume: EpochResume | None = None) -> TrainOutcome:
    """The paper's mode: the whole network trains on random crops (each image listed
    ``train_crops`` times per epoch) cut from the decoded-image cache by ``workers`` background
    processes (default :func:`harness.engine.batching.default_workers`; the batches do not depend on
    it); evaluation averages a uniform grid of test crops, or (``recipe.test_crop_layout ==
    "random"``) random ones drawn afresh at every evaluation from streams seeded by ``seed``, one
    per part (test, validation), apart from the training stream: a seed gives the same crops for
    the same world size."""
    device = torch.device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size, recipe.resize_policy,
                    recipe.hflip)
    layout = torch.channels_last if recipe.channels_last else torch.contiguous_format
    # torch's Module.to overloads omit a device with a memory_format (call-overload)
    model.to(device, memory_format=layout)  # type: ignore[call-overload]
    forward = torch.compile(model) if recipe.compile else model
    cutter = BatchCutter(images, [r.path for r in train_records], recipe.resize_policy,
                         recipe.crop_size)
    prefetch = Prefetcher(cutter, device, workers)
    listing = np.repeat(np.arange(len(train_records)), recipe.train_crops)
    steps = steps_per_epoch(len(listing), recipe)
    stepper = Stepper(model, recipe, steps, device, lambda name: True)
    targets = torch.as_tensor(train_targets, dtype=torch.float32).to(device)

    def batches() -> Iterable[Batch]:
        crops = cutter.random_crops(listing, recipe.hflip, rng)
        # every rank draws the same crops and cuts only its rows of each batch
        mine = [c.take(distributed.shard(np.arange(len(c))))
                for c in crops.batches(recipe.batch_size)[:steps]]
        for x, image in prefetch(mine):
            x = x.contiguous(memory_format=layout)
            yield cast("Callable[[], object]", lambda x=x: forward(x)), targets[image]

    random_tests = recipe.test_crop_layout == "random"
    crop_rngs = {stream: np.random.default_rng((seed, stream)) if random_tests else None
                 for stream in (TEST_STREAM, VALIDATION_STREAM)}

    def predict(records: Sequence[ImageRecord], stream: int) -> Callable[[], np.ndarray]:
        return lambda: distributed.map_sharded(
            lambda part: predict_records(model, part, images, plan, device, recipe, workers,
                                         crop_rngs[stream]), records)

    return _run_epochs(model, recipe, stepper, batches, predict(test_records, TEST_STREAM),
                       test_targets, selection,
                       predict(val_records, VALIDATION_STREAM) if len(val_records) else None,
                       val_targets, on_epoch, resume,
                       [rng, *(r for r in crop_rngs.values() if r is not None)])
