"""What a job trains: a typed model reference instead of a name parsed on ``"+"``.

A model is a Life-IQA preset (``lifeiqa/registry.py``) with a variant: ``"full"``, one of the
paper's ablations (``lifeiqa.config.ABLATIONS``) or a registered baseline
(:mod:`harness.plan.baselines`). Baselines that train on the preset's backbone (probes, the
DEIQT-style head) use its weights; the others ignore the preset but record it, so every unit of
one run names the same backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import unknown_name
from harness.plan.baselines import get_baseline, is_baseline, list_baselines
from lifeiqa.config import ABLATIONS

FULL = "full"
# Model kinds in leaderboard order: the reference first, then its ablations, then baselines.
KINDS = ("lifeiqa", "ablation", "lifeiqa_config", "probe", "pyiqa_arch", "training_free")


@dataclass(frozen=True)
class ModelRef:
    preset: str
    variant: str = FULL

    def __post_init__(self) -> None:
        if self.variant != FULL and self.variant not in ABLATIONS and not is_baseline(self.variant):
            raise unknown_name("model variant", self.variant, [*ABLATIONS, *list_baselines()],
                               "(or pyiqa:<metric>)")

    @property
    def kind(self) -> str:
        """``"lifeiqa"`` (the full model), ``"ablation"``, or the baseline's family."""
        if self.variant == FULL:
            return "lifeiqa"
        if is_baseline(self.variant):
            return get_baseline(self.variant).family
        return "ablation"

    @property
    def is_baseline(self) -> bool:
        return self.kind not in ("lifeiqa", "ablation")

    @property
    def name(self) -> str:
        """The display and folder name: the preset, ``preset+ablation``, or the baseline's name."""
        if self.variant == FULL:
            return self.preset
        return self.variant if self.is_baseline else f"{self.preset}+{self.variant}"

    def __str__(self) -> str:
        return self.name
