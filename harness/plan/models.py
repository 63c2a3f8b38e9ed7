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
LIFEIQA_KINDS = KINDS[:2]  # a protocol's ``variants``; every other kind is a baseline family


def variant_kind(variant: str) -> str:
    """The kind of model ``variant`` makes of a preset: ``"lifeiqa"`` (the full model),
    ``"ablation"``, or the baseline's family. An unknown name raises
    :class:`~harness.errors.UnknownNameError` naming the close ones (an unknown pyiqa metric,
    a ``KeyError`` from :func:`~harness.plan.baselines.get_baseline`)."""
    if variant == FULL:
        return "lifeiqa"
    if variant in ABLATIONS:
        return "ablation"
    if is_baseline(variant):
        return get_baseline(variant).family
    raise unknown_name("model variant", variant, [*ABLATIONS, *list_baselines()],
                       "(or pyiqa:<metric>)")


@dataclass(frozen=True)
class ModelRef:
    preset: str
    variant: str = FULL

    def __post_init__(self) -> None:
        variant_kind(self.variant)  # raises for an unknown variant

    @property
    def kind(self) -> str:
        """``"lifeiqa"`` (the full model), ``"ablation"``, or the baseline's family."""
        return variant_kind(self.variant)

    @property
    def is_baseline(self) -> bool:
        return self.kind not in LIFEIQA_KINDS

    @property
    def name(self) -> str:
        """The display and folder name: the preset, ``preset+ablation``, or the baseline's name."""
        if self.variant == FULL:
            return self.preset
        return self.variant if self.is_baseline else f"{self.preset}+{self.variant}"

    def __str__(self) -> str:
        return self.name
