"""pyiqa networks behind the interface the harness's training loop drives.

The loop calls ``model(crops)`` and reads ``.score``, ``.aux_loss`` and ``.z_loss`` (Life-IQA's
output); the adapter gives a pyiqa network that interface, with zero MoE losses, so a pyiqa
architecture trains with exactly the optimiser, schedule, loss and selection Life-IQA gets.
Networks are built with their pretrained-weight options off: nothing is downloaded.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from harness.engine.families.base import EngineContext, EpochCallback, Trained
from harness.engine.parts import JobParts
from harness.engine.train import train_finetune
from harness.plan.baselines import Baseline, get_baseline
from harness.plan.jobs import Job
from lifeiqa import LifeIQAOutput


class PyiqaArchAdapter(nn.Module):
    def __init__(self, net: nn.Module, description: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.description = description

    def forward(self, x: torch.Tensor) -> LifeIQAOutput:
        score = self.net(x).float().reshape(x.shape[0], -1).mean(1)
        zero = score.new_zeros(())
        return LifeIQAOutput(score, zero, zero)

    # The loop's evaluation calls Life-IQA's two halves; a pyiqa network has no separable frozen
    # part, so the "features" are the crops themselves.
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head(self, x: torch.Tensor) -> LifeIQAOutput:
        return self(x)


def build(baseline: Baseline) -> PyiqaArchAdapter:
    settings = baseline.settings
    try:
        module = importlib.import_module(settings["module"])
    except ImportError as err:
        raise RuntimeError(f"baseline {baseline.name}: cannot import {settings['module']} "
                           f"({err}); is pyiqa installed?") from err
    cls = getattr(module, settings["cls"])
    try:
        net = cls(**settings["kwargs"])
    except Exception as err:  # pyiqa raises many types when it tries to fetch weights
        raise RuntimeError(f"baseline {baseline.name}: pyiqa's {settings['cls']}"
                           f"({settings['kwargs']}) could not be built offline: "
                           f"{type(err).__name__}: {err}") from err
    return PyiqaArchAdapter(net, {"baseline": baseline.name, "pyiqa_class": settings["cls"],
                                  "kwargs": settings["kwargs"],
                                  "trainable_parameters": sum(p.numel() for p in net.parameters()
                                                              if p.requires_grad)})


class PyiqaArchFamily:
    """A pyiqa network, trained by the harness's fine-tuning loop."""

    kinds = ("pyiqa_arch",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        # seeded like every other family: a unit's starting weights must not depend on which
        # units ran before it in the same process (a resumed run equals an uninterrupted one)
        torch.manual_seed(job.seed)
        model = build(get_baseline(job.model.variant))
        outcome = train_finetune(model, job.recipe, parts.train, parts.train_y, parts.test,
                                 parts.test_y, context.images, job.selection, parts.val,
                                 parts.val_y, context.device, job.seed, on_epoch)
        return Trained(outcome, model, model.description)
