"""The learning rate of every optimiser step: the harness's own schedule or timm's schedulers
built as the authors' code builds them.

``recipe.scheduler == "harness"``: the rate before each step is ``recipe.lr`` times
:func:`harness.plan.recipes.lr_factor` at the step's fractional epoch.

``recipe.scheduler == "timm"``: the authors' ``build_scheduler`` (their ``lr_scheduler.py``,
from DEIQT and Swin-Transformer) with their arguments: the epochs converted to optimiser steps
with ``int(epochs * steps_per_epoch)``; ``StepLRScheduler(decay_t, decay_rate, warmup_lr_init,
warmup_t, t_in_epochs=False)``, whose ``warmup_prefix`` defaults to True, so the decay clock
starts after the warmup (drops at epochs 12 and 22 of 30); ``CosineLRScheduler(t_initial=all
steps, lr_min, warmup_lr_init, warmup_t, cycle_limit=1, t_in_epochs=False)``, whose warmup
overlaps the cosine. Their loop (``main.py``) calls ``step_update(g)`` after optimiser step ``g``
(counted from 0 over the whole run), so step ``g + 1`` runs at timm's rate for ``g`` and step 0
at the rate the scheduler sets on construction (``warmup_lr_init``): every rate is used one
step after timm computes it, here as there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from harness.plan.recipes import Recipe, lr_factor

if TYPE_CHECKING:
    from timm.scheduler.scheduler import Scheduler


def timm_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Scheduler:
    """timm's scheduler for ``recipe`` over ``steps_per_epoch`` optimiser steps per epoch, with
    the arguments of the authors' ``build_scheduler``."""
    from timm.scheduler.cosine_lr import CosineLRScheduler
    from timm.scheduler.step_lr import StepLRScheduler

    num_steps = int(recipe.epochs * steps_per_epoch)
    warmup_steps = int(recipe.warmup_epochs * steps_per_epoch)
    if recipe.schedule == "cosine":
        return CosineLRScheduler(optimizer, t_initial=num_steps, lr_min=recipe.min_lr,
                                 warmup_lr_init=recipe.warmup_lr, warmup_t=warmup_steps,
                                 cycle_limit=1, t_in_epochs=False)
    # at least one step: a run shortened below one decay interval's step must not divide by 0
    decay_steps = max(1, int(recipe.step_every * steps_per_epoch))
    return StepLRScheduler(optimizer, decay_t=decay_steps, decay_rate=recipe.decay_rate,
                           warmup_lr_init=recipe.warmup_lr, warmup_t=warmup_steps,
                           t_in_epochs=False)


class LearningRate:
    """Sets the learning rate of each optimiser step by ``recipe``'s schedule: call
    :meth:`before_step` before step ``g`` (0-based over the run) and :meth:`after_step` after it."""

    def __init__(self, recipe: Recipe, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> None:
        self.recipe = recipe
        self.optimizer = optimizer
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.scheduler = (timm_scheduler(recipe, optimizer, self.steps_per_epoch)
                          if recipe.scheduler == "timm" else None)

    def before_step(self, step: int) -> float:
        """Set the rate of step ``step`` and return it."""
        if self.scheduler is None:
            rate = self.recipe.lr * lr_factor(self.recipe, step / self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = rate
        return float(self.optimizer.param_groups[0]["lr"])

    def after_step(self, step: int) -> None:
        if self.scheduler is not None:
            self.scheduler.step_update(step)
