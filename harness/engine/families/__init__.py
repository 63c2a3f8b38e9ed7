"""Model families: how each kind of model is trained (or fitted, or just applied) and predicts.

Every family implements :class:`ModelFamily`; the runner looks one up by the job's model kind
(:attr:`harness.plan.models.ModelRef.kind`) and never branches on family names. A new family is
a module here with a class that has ``kinds`` and ``fit_predict``, added to ``_FAMILIES``.
"""

from __future__ import annotations

from harness.engine.families.base import EngineContext, EpochCallback, ModelFamily, Trained
from harness.engine.families.lifeiqa import LifeIQAFamily
from harness.engine.families.probe import ProbeFamily
from harness.engine.families.pyiqa_arch import PyiqaArchFamily
from harness.engine.families.training_free import TrainingFreeFamily
from harness.errors import unknown_name
from harness.plan.models import ModelRef

__all__ = ["FAMILIES", "EngineContext", "EpochCallback", "ModelFamily", "Trained", "family_for",
           "get_family"]

_FAMILIES: tuple[ModelFamily, ...] = (LifeIQAFamily(), ProbeFamily(), PyiqaArchFamily(),
                                      TrainingFreeFamily())
FAMILIES: dict[str, ModelFamily] = {kind: family for family in _FAMILIES for kind in family.kinds}


def get_family(kind: str) -> ModelFamily:
    """The family that trains models of ``kind``; an unknown kind raises
    :class:`~harness.errors.UnknownNameError`."""
    if kind not in FAMILIES:
        raise unknown_name("model kind", kind, FAMILIES)
    return FAMILIES[kind]


def family_for(model: ModelRef) -> ModelFamily:
    """The family that trains ``model``."""
    return get_family(model.kind)
