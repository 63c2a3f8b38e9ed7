"""Life-IQA, its ablations and its configuration baselines (the DEIQT-style head).

The model is the job's preset with the variant's changes; it trains on cached frozen-backbone
features (recipe mode ``frozen``) or whole, on crops of the decoded images (``finetune``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import torch

import lifeiqa
from harness.engine import analyses
from harness.engine.families.base import (
    EngineContext,
    EpochCallback,
    Trained,
    finetune,
    train_on_features,
)
from harness.engine.features import CropPlan
from harness.engine.parts import JobParts
from harness.engine.train import predict_features, predict_records
from harness.errors import InvalidOptionError
from harness.plan.jobs import Job
from harness.plan.models import ModelRef
from lifeiqa.layers import SparseMoE


def build_model(model: ModelRef, seed: int) -> lifeiqa.LifeIQA:
    """``model``'s Life-IQA, initialised under ``seed``: the preset with the ablation or the
    configuration changes of a ``lifeiqa_config`` baseline (any other baseline gets the
    preset as it is: the probes read its backbone)."""
    torch.manual_seed(seed)
    spec = lifeiqa.get_spec(model.preset)
    changes = model.spec.settings.get("config", {}) if model.kind == "lifeiqa_config" else {}
    ablation = model.variant if model.kind == "ablation" else None
    return lifeiqa.create_model(model.preset, pretrained=spec.pretrained_weights is not None,
                                ablation=ablation, **changes)


class LifeIQAFamily:
    """Life-IQA, an ablation of it, or a configuration baseline, trained as the recipe's mode says."""

    kinds: tuple[str, ...] = ("lifeiqa", "ablation", "lifeiqa_config")

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        recipe = job.recipe
        model = build_model(job.model, job.seed)
        recorder = routing_recorder(model, job, parts) if job.analysis == "routing" else None
        if recorder is not None:
            on_epoch = recorder.on_epoch(on_epoch)
        if recipe.mode == "frozen":
            features = context.feature_cache(model, recipe, draw=job.crop_draw)
            test_features = features.get_all(parts.test, "test")
            outcome = train_on_features(model, job, parts, context, on_epoch,
                                        train=features.get_all(parts.train, "train"),
                                        test=test_features, val=features.get_all(parts.val, "test"))

            def predict_test() -> np.ndarray:
                return predict_features(model, test_features, context.device)
        elif recipe.mode == "finetune":
            outcome = finetune(model, job, parts, context, on_epoch)
            plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size,
                            recipe.resize_policy, recipe.hflip)

            def predict_test() -> np.ndarray:  # the uniform grid of test crops, in image order
                return predict_records(model, parts.test, context.images, plan, context.device,
                                       recipe)
        else:
            raise InvalidOptionError(f"recipe {recipe.name}: mode {recipe.mode!r} needs a "
                                     f"training-free baseline, not {job.model.name}")
        found = {}
        if recorder is not None:
            found["routing"] = test_part_routing(recorder, predict_test, parts, job.seed)
        return Trained(outcome, model, {**model.config.to_dict(), **parameter_counts(model)},
                       analyses=found)


def parameter_counts(model: lifeiqa.LifeIQA) -> dict[str, int]:
    """The model's parameters, all and without the backbone (what frozen training trains)."""
    total = sum(p.numel() for p in model.parameters())
    return {"parameters": total,
            "head_parameters": total - sum(p.numel() for p in model.backbone.parameters())}


def routing_recorder(model: lifeiqa.LifeIQA, job: Job, parts: JobParts) -> analyses.RouterRecorder:
    """A recorder on the model's MoE router; the routing analysis needs a sparse MoE head and
    distortion types (checked before training)."""
    if len({r.distortion for r in parts.test if r.distortion}) < 2:
        raise InvalidOptionError(
            f"the routing analysis needs distortion types: the test part of "
            f"{job.test_dataset} has fewer than two; use tid2013, kadid10k or their synthetic twins")
    mixture = model.head.mixture
    if not isinstance(mixture, SparseMoE):
        raise InvalidOptionError(
            f"the routing analysis needs a sparse MoE head; {job.model.name} has "
            f"{type(mixture).__name__ if mixture is not None else 'none'} (head="
            f"{model.config.head!r}, num_experts={model.config.num_experts})")
    return analyses.RouterRecorder(mixture.router, mixture.top_k)


def test_part_routing(recorder: analyses.RouterRecorder, predict_test: Callable[[], np.ndarray],
                      parts: JobParts, seed: int) -> dict:
    """The selected model's routing of the test part, by distortion type (images without a
    type left out); the permutation test shuffles types within content group and level, so
    each image's group and level go with it."""
    with recorder.capture() as captured:
        predict_test()
    recorder.remove()
    experts = captured[0].shape[-1]
    # rows are image-major (every crop of an image in turn), each with its query tokens
    logits = torch.cat([c.reshape(-1, experts) for c in captured]).numpy()
    logits = logits.reshape(len(parts.test), -1, experts)
    typed = [i for i, r in enumerate(parts.test) if r.distortion]
    records = [parts.test[i] for i in typed]
    # every record in ``records`` has a distortion type (``typed``)
    return analyses.routing(logits[typed], cast("list[str]", [r.distortion for r in records]),
                            [r.group for r in records], [r.level for r in records],
                            recorder.top_k, seed=seed)
