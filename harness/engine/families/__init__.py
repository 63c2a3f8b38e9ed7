"""Model families: how each kind of model is trained (or fitted, or just applied) and predicts.

Every family implements :class:`ModelFamily`; the runner looks one up by the job's model kind
(:attr:`harness.plan.models.ModelRef.kind`) and never branches on family names. A new family is
a module here with a class that has ``kinds`` and ``fit_predict``, added to ``_FAMILIES``. The
families a plug-in's models belong to (feature heads, image models, zero-shot scorers) build
them with the registry entry's factory; nothing here names a plug-in.
"""

from __future__ import annotations

from harness.engine.families.base import EngineContext, EpochCallback, ModelFamily, Trained
from harness.engine.families.feature_head import FeatureHeadFamily
from harness.engine.families.image_model import ImageModelFamily
from harness.engine.families.lifeiqa import LifeIQAFamily
from harness.engine.families.probe import ProbeFamily
from harness.engine.families.zero_shot import ZeroShotFamily
from harness.errors import unknown_name
from harness.plan.models import ModelRef

__all__ = ["FAMILIES", "EngineContext", "EpochCallback", "ModelFamily", "Trained", "family_for",
           "get_family"]

_FAMILIES: tuple[ModelFamily, ...] = (LifeIQAFamily(), ProbeFamily(), FeatureHeadFamily(),
                                      ImageModelFamily(), ZeroShotFamily())
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
