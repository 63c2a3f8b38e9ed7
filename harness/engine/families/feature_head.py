"""Heads on frozen backbone features: a plug-in's ``nn.Module`` trained on the feature cache.

The head receives what Life-IQA's decoder receives, ``lifeiqa.BackboneFeatures`` of the
preset's frozen backbone (the penultimate stage partition-pooled, the deepest stage), read from
the same feature cache the frozen Life-IQA units fill, so a new head costs no backbone pass and
trains in seconds per unit, with Life-IQA's frozen loop (optimiser, schedule, loss, selection).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from harness.engine.families.base import (
    EngineContext,
    EpochCallback,
    Trained,
    build_module,
    check_finite,
    model_label,
    registry_info,
    scores_of,
    train_on_features,
)
from harness.engine.families.lifeiqa import build_model
from harness.engine.parts import JobParts
from harness.errors import InvalidOptionError
from harness.plan.jobs import Job
from harness.plan.model_specs import FeatureShapes
from harness.plan.models import ModelRef
from lifeiqa import BackboneFeatures, LifeIQA, LifeIQAOutput


class FeatureHeadAdapter(nn.Module):
    """A head of ``BackboneFeatures`` -> (B,) or (B, 1) scores, as the frozen loop drives
    Life-IQA's decoder (``forward_head``)."""

    def __init__(self, head: nn.Module, model: ModelRef) -> None:
        super().__init__()
        self.head = head
        self.model = model

    def forward_head(self, features: BackboneFeatures) -> LifeIQAOutput:
        score = scores_of(self.head(features), features.pooled.shape[0], self.model)
        zero = score.new_zeros(())
        return LifeIQAOutput(score, zero, zero)


def shapes_of(features: BackboneFeatures) -> FeatureShapes:
    """The per-crop shapes of one image's cached features."""
    _, tokens, channels = features.pooled.shape
    _, deepest, height, width = features.deepest.shape
    return FeatureShapes(tokens, channels, deepest, height, width)


class FeatureHeadFamily:
    """A plug-in head on the preset's cached frozen features."""

    kinds: tuple[str, ...] = ("feature_head",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        recipe = job.recipe
        if recipe.mode != "frozen":
            raise InvalidOptionError(f"{model_label(job.model)} trains on cached frozen "
                                     f"features: recipe mode 'frozen', not {recipe.mode!r}")
        # the preset's Life-IQA, for its backbone: the cache is the one its frozen units use
        features = context.feature_cache(build_model(job.model, job.seed), recipe,
                                         draw=job.crop_draw)
        train = features.get_all(parts.train, "train")
        test = features.get_all(parts.test, "test")
        val = features.get_all(parts.val, "test")
        shapes = shapes_of(train[0])
        torch.manual_seed(job.seed)
        head = build_module(job.model, shapes)
        model = FeatureHeadAdapter(head, job.model)
        with torch.no_grad():  # the contract, checked on one image's crops before training
            check_finite(model.eval().forward_head(train[0]).score, job.model,
                         "on one training image's features")
        # the adapter drives the frozen loop as Life-IQA's decoder does (forward_head)
        outcome = train_on_features(cast(LifeIQA, model), job, parts, context, on_epoch,
                                    train=train, test=test, val=val)
        info = {**registry_info(job.model), "features": vars(shapes),
                "trainable_parameters": sum(p.numel() for p in head.parameters()
                                            if p.requires_grad)}
        return Trained(outcome, model, info)
