"""The authors' training objective: SmoothL1 on the score plus weighted MoE losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .model import LifeIQAOutput


class LifeIQALoss(nn.Module):
    """regression(score, target) + aux_weight * aux_loss + z_weight * z_loss.

    ``regression="smooth_l1"`` (beta 1) is the authors' code; ``"l1"`` the paper's text.
    """

    def __init__(self, aux_weight: float = 0.01, z_weight: float = 0.001,
                 regression: str = "smooth_l1") -> None:
        super().__init__()
        if regression not in ("smooth_l1", "l1"):
            raise ValueError(f"regression={regression!r}: expected 'smooth_l1' or 'l1'")
        self.aux_weight = aux_weight
        self.z_weight = z_weight
        self.regression = regression

    def forward(self, output: LifeIQAOutput, target: torch.Tensor) -> torch.Tensor:
        score = output.score.float()
        target = target.to(score.dtype).view_as(score)
        if self.regression == "smooth_l1":
            fit = F.smooth_l1_loss(score, target, beta=1.0)
        else:
            fit = F.l1_loss(score, target)
        return fit + self.aux_weight * output.aux_loss + self.z_weight * output.z_loss
