"""Trainable image models: any ``nn.Module`` mapping crops to scores, fine-tuned by the engine.

The registry entry's factory builds the network from the row's model arguments (a plug-in's
class, or pyiqa's network for the pyiqa rows, built with its weight downloads off). The adapter
gives it the interface the training loop drives (Life-IQA's output: ``.score`` and zero MoE
losses), so it trains with exactly the optimiser, schedule, loss, precision, selection and data
parallelism Life-IQA gets. Before training, one forward pass on two crops checks the output's
shape and finiteness, so a model that breaks the contract fails with its name at once.
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
    finetune,
    registry_info,
    scores_of,
)
from harness.engine.parts import JobParts
from harness.plan.jobs import Job
from harness.plan.models import ModelRef
from lifeiqa import LifeIQA, LifeIQAOutput


class ImageModelAdapter(nn.Module):
    """A network of (B, 3, crop, crop) crops in [0, 1] -> (B,) or (B, 1) scores, as the loop
    drives Life-IQA."""

    def __init__(self, net: nn.Module, model: ModelRef) -> None:
        super().__init__()
        self.net = net
        self.model = model

    def forward(self, x: torch.Tensor) -> LifeIQAOutput:
        score = scores_of(self.net(x), x.shape[0], self.model)
        zero = score.new_zeros(())
        return LifeIQAOutput(score, zero, zero)

    # The loop's evaluation calls Life-IQA's two halves; an image model has no separable frozen
    # part, so the "features" are the crops themselves.
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head(self, x: torch.Tensor) -> LifeIQAOutput:
        return cast(LifeIQAOutput, self(x))


def build(model: ModelRef) -> ImageModelAdapter:
    """The row's network, built by its registry entry's factory from its model arguments."""
    return ImageModelAdapter(build_module(model), model)


@torch.no_grad()
def check_output(adapter: ImageModelAdapter, crop_size: int, seed: int) -> None:
    """One forward pass on two random crops, in eval mode: the output's shape and finiteness."""
    generator = torch.Generator().manual_seed(seed)
    adapter.eval()
    crops = torch.rand(2, 3, crop_size, crop_size, generator=generator)
    check_finite(adapter(crops).score, adapter.model, "on two random crops")


class ImageModelFamily:
    """A network of crops, trained by the harness's fine-tuning loop."""

    kinds: tuple[str, ...] = ("image_model",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        # seeded like every other family: a unit's starting weights must not depend on which
        # units ran before it in the same process (a resumed run equals an uninterrupted one)
        torch.manual_seed(job.seed)
        model = build(job.model)
        check_output(model, job.recipe.crop_size, job.seed)
        # the adapter drives the loop as Life-IQA does (forward, forward_features, forward_head)
        outcome = finetune(cast(LifeIQA, model), job, parts, context, on_epoch)
        info = {**registry_info(job.model), **job.model.spec.settings,
                "trainable_parameters": sum(p.numel() for p in model.parameters()
                                            if p.requires_grad)}
        return Trained(outcome, model, info)
