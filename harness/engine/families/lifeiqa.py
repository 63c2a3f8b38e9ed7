"""Life-IQA, its ablations and its configuration baselines (the DEIQT-style head).

The model is the job's preset with the variant's changes; it trains on cached frozen-backbone
features (recipe mode ``frozen``) or whole, on crops of the decoded images (``finetune``).
"""

from __future__ import annotations

import torch

import lifeiqa
from harness.engine.families.base import EngineContext, EpochCallback, Trained
from harness.engine.parts import JobParts
from harness.engine.train import train_finetune, train_frozen
from harness.errors import InvalidOptionError
from harness.plan.baselines import get_baseline
from harness.plan.jobs import Job
from harness.plan.models import ModelRef


def build_model(model: ModelRef, seed: int) -> lifeiqa.LifeIQA:
    """``model``'s Life-IQA, initialised under ``seed``: the preset with the ablation or the
    configuration changes of a ``lifeiqa_config`` baseline (any other baseline gets the
    preset as it is: the probes read its backbone)."""
    torch.manual_seed(seed)
    spec = lifeiqa.get_spec(model.preset)
    changes = get_baseline(model.variant).settings.get("config", {}) \
        if model.kind == "lifeiqa_config" else {}
    ablation = model.variant if model.kind == "ablation" else None
    return lifeiqa.create_model(model.preset, pretrained=spec.pretrained_weights is not None,
                                ablation=ablation, **changes)


class LifeIQAFamily:
    """Life-IQA, an ablation of it, or a configuration baseline, trained as the recipe's mode says."""

    kinds = ("lifeiqa", "ablation", "lifeiqa_config")

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        recipe = job.recipe
        model = build_model(job.model, job.seed)
        if recipe.mode == "frozen":
            features = context.feature_cache(model, recipe)
            outcome = train_frozen(model, recipe, features.get_all(parts.train, "train"),
                                   parts.train_y, features.get_all(parts.test, "test"),
                                   parts.test_y, job.selection, features.get_all(parts.val, "test"),
                                   parts.val_y, context.device, job.seed, on_epoch)
        elif recipe.mode == "finetune":
            outcome = train_finetune(model, recipe, parts.train, parts.train_y, parts.test,
                                     parts.test_y, context.images, job.selection, parts.val,
                                     parts.val_y, context.device, job.seed, on_epoch)
        else:
            raise InvalidOptionError(f"recipe {recipe.name}: mode {recipe.mode!r} needs a "
                                     f"training-free baseline, not {job.model.name}")
        return Trained(outcome, model, model.config.to_dict())
