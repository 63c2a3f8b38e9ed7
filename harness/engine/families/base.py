"""The interface every model family implements, and what the engine lends a family to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from harness.data.cache import DecodedImageCache
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.parts import JobParts
from harness.engine.train import TrainOutcome
from harness.plan.jobs import Job
from harness.plan.recipes import Recipe
from lifeiqa import LifeIQA

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

    def feature_cache(self, model: LifeIQA, recipe: Recipe, extractor=None) -> FeatureCache:
        """The frozen-backbone feature cache for ``model`` on ``recipe``'s crops; ``extractor``
        says what is stored (Life-IQA's decoder inputs by default)."""
        plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size,
                        recipe.resize_policy, recipe.hflip)
        return FeatureCache(self.cache_root / "features", model, plan, self.images, self.device,
                            extractor)


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
