"""The interface every model family implements, and what the engine lends a family to run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast, runtime_checkable

import torch

from harness.data.cache import DecodedImageCache
from harness.engine.features import CropPlan, FeatureCache, LifeIQAExtractor, StageExtractor
from harness.engine.parts import JobParts
from harness.engine.resume import EpochResume
from harness.engine.train import TrainOutcome, train_finetune, train_frozen
from harness.errors import ExecutionError, ModelContractError
from harness.plan.jobs import Job
from harness.plan.models import ModelRef
from harness.plan.recipes import Recipe
from lifeiqa import BackboneFeatures, LifeIQA

EpochCallback = Callable[[dict], None]  # called with each epoch's history entry


@dataclass(frozen=True)
class Trained:
    """A trained (or fitted, or training-free) model's test predictions and what it was."""

    outcome: TrainOutcome
    model: torch.nn.Module | None  # None when nothing was trained with gradients
    info: dict  # recorded as the result's model_config
    higher_is_better: bool | None = None  # None: as the training labels
    selection_note: str = ""  # set when there are no epochs to select from
    analyses: dict = field(default_factory=dict)  # the job's analysis (harness.engine.analyses)


@dataclass(frozen=True)
class EngineContext:
    """What the engine provides to a family: the device to run on, the decoded-image cache,
    and the root of the on-disk caches (features, zero-shot scores)."""

    device: torch.device
    images: DecodedImageCache
    cache_root: Path
    # the feature caches lent out, whose rebuilt entries a unit's result records
    feature_caches: list[FeatureCache] = field(default_factory=list)
    # where the unit being run saves its state after each epoch, to resume from there when it
    # is cut short (a Slurm time limit); None: it starts over (harness.engine.resume)
    resume: EpochResume | None = None

    def rebuilt(self) -> list[str]:
        """Every cache entry found damaged and rebuilt by this process so far (decoded images,
        then features), in the order found."""
        return [*self.images.rebuilt, *(e for c in self.feature_caches for e in c.rebuilt)]

    def feature_cache(self, model: LifeIQA, recipe: Recipe,
                      extractor: LifeIQAExtractor | StageExtractor | None = None,
                      draw: int = 0) -> FeatureCache:
        """The frozen-backbone feature cache for ``model`` on ``recipe``'s crops (training
        crops of ``draw``: :attr:`harness.plan.jobs.Job.crop_draw`); ``extractor`` says what is
        stored (Life-IQA's decoder inputs by default)."""
        plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size,
                        recipe.resize_policy, recipe.hflip, draw)
        cache = FeatureCache(self.cache_root / "features", model, plan, self.images, self.device,
                             extractor)
        self.feature_caches.append(cache)
        return cache


@runtime_checkable
class ModelFamily(Protocol):
    """How one family of models is trained (or fitted, or just applied) and predicts."""

    # The ModelRef kinds (harness.plan.models.KINDS) this family serves.
    kinds: tuple[str, ...]

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        """Train ``job.model`` on ``parts.train`` by ``job.recipe`` (selecting the epoch by
        ``job.selection``) and predict ``parts.test``."""
        ...


def model_label(model: ModelRef) -> str:
    """A registry model as errors name it: with its arguments and, for a plug-in's, the
    plug-in's name and version."""
    plugin = model.spec.plugin
    return f"model {model.name}" + (f" (plug-in {plugin.label})" if plugin else "")


def build_module(model: ModelRef, *leading: object) -> torch.nn.Module:
    """The row's network, built by its registry entry's factory from ``leading`` (a feature
    head's feature shapes) and the row's model arguments; a factory that fails (pyiqa raises
    many types when it would fetch weights) or returns no module raises ExecutionError."""
    try:
        # every image-model and feature-head entry has a factory (built-ins and plug-ins alike)
        net = cast("Callable[..., object]", model.spec.factory)(*leading, **model.arguments)
    except Exception as err:
        raise ExecutionError(f"{model_label(model)} could not be built offline from "
                             f"{model.arguments or 'no arguments'}: {type(err).__name__}: "
                             f"{err}") from err
    if not isinstance(net, torch.nn.Module):
        raise ExecutionError(f"{model_label(model)}: its factory returned a "
                             f"{type(net).__name__}, not a torch.nn.Module")
    return net


def registry_info(model: ModelRef) -> dict:
    """What every unit of a registry model records of it (its ``model_config`` starts so)."""
    spec = model.spec
    return {"model": spec.name, "family": spec.family, "model_args": model.arguments,
            **({"plugin": spec.plugin.to_dict()} if spec.plugin else {})}


def scores_of(output: object, batch: int, model: ModelRef) -> torch.Tensor:
    """(B,) float scores from a model's output, which its contract says is a tensor of shape
    (B,) or (B, 1); anything else raises :class:`ModelContractError` naming the model."""
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if shape not in ((batch,), (batch, 1)):
        found = f"a tensor of shape {shape}" if shape is not None else type(output).__name__
        raise ModelContractError(f"{model_label(model)}: its output for a batch of {batch} is "
                                 f"{found}; expected a tensor of shape ({batch},) or ({batch}, 1)")
    return cast(torch.Tensor, output).float().reshape(batch)  # a tensor: its shape was checked


def check_finite(scores: torch.Tensor, model: ModelRef, what: str) -> None:
    """Raise :class:`ModelContractError` unless every score is finite."""
    if not bool(torch.isfinite(scores).all()):
        raise ModelContractError(f"{model_label(model)}: non-finite scores {what} "
                                 f"({scores.detach().flatten()[:4].tolist()} ...)")


def finetune(model: LifeIQA, job: Job, parts: JobParts, context: EngineContext,
             on_epoch: EpochCallback | None) -> TrainOutcome:
    """The job's parts trained on from pixels, the whole network (:func:`train_finetune`), as
    every family that trains end to end runs it: the job's recipe, selection and seed, the
    engine's images, device and resume file."""
    return train_finetune(model, job.recipe, parts.train, parts.train_y, parts.test, parts.test_y,
                          context.images, selection=job.selection, val_records=parts.val,
                          val_targets=parts.val_y, device=context.device, seed=job.seed,
                          on_epoch=on_epoch, resume=context.resume)


def train_on_features(model: LifeIQA, job: Job, parts: JobParts, context: EngineContext,
                      on_epoch: EpochCallback | None, *, train: Sequence[BackboneFeatures],
                      test: Sequence[BackboneFeatures],
                      val: Sequence[BackboneFeatures]) -> TrainOutcome:
    """The head trained on the parts' cached features (:func:`train_frozen`), as every family
    that trains on frozen features runs it (the parts give the targets)."""
    return train_frozen(model, job.recipe, train, parts.train_y, test, parts.test_y,
                        selection=job.selection, val_features=val, val_targets=parts.val_y,
                        device=context.device, seed=job.seed, on_epoch=on_epoch,
                        resume=context.resume)
