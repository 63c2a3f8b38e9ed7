"""Life-IQA as a pyiqa no-reference metric: ``pyiqa.create_metric("lifeiqa")``.

pyiqa looks a metric name up in ``pyiqa.default_model_configs.DEFAULT_CONFIGS`` before it
loads any plugin, so the configuration entries are added by :mod:`lifeiqa_pyiqa_hook` (a
torch-free start-up hook) and the network class is registered here, through pyiqa's
``pyiqa.archs`` entry point or on ``import lifeiqa``.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DEFAULT_NUM_CROPS
from .errors import CheckpointError
from .inference import score_images
from .registry import create_model
from .weights import (
    CHECKPOINT_ENV,
    default_weights,
    load_for,
    metric_preset,
    missing_weights_message,
    resolve_weights_path,
)

__all__ = ["CHECKPOINT_ENV", "LifeIQAMetric", "register", "resolve_weights_path"]


class LifeIQAMetric(nn.Module):
    """The network pyiqa builds for the ``lifeiqa*`` metrics.

    Weights, first found: ``pretrained_model_path`` (a file, https URL or hf:// reference);
    with ``pretrained`` (the default), ``$LIFEIQA_CHECKPOINT`` if it has this name's
    architecture, then the weights registered for the name (``lifeiqa-bench weights add``);
    else an error naming the commands that make and register some. ``pretrained=False`` (and
    no path) gives random initialisation. A checkpoint on another backbone than ``model_name``'s
    (by default the name's preset) is refused; the decoder's size is the checkpoint's own.

    Scores are mapped to [0, 1], higher is better, using the checkpoint's label scale. Images of
    any size are scored on a uniform grid of ``num_crops`` crops (images smaller than a crop are
    resized up). Input conventions follow pyiqa's: the range check is pyiqa's own
    (``check_input_range``, on when scoring, off with ``as_loss=True``); the network accepts any
    finite real values and normalises them as they are, without clamping, so gradients reach
    every pixel; NaN or infinite values raise.
    """

    def __init__(self, metric_name: str = "lifeiqa", model_name: str | None = None,
                 pretrained: bool = True, pretrained_model_path: str | None = None,
                 num_crops: int = DEFAULT_NUM_CROPS) -> None:
        super().__init__()
        preset = model_name or metric_preset(metric_name)
        wanted = f"metric {metric_name!r}" + (f" (model_name={preset!r})" if model_name and
                                              preset != metric_preset(metric_name) else "")
        if pretrained_model_path:
            self.model = load_for(preset, resolve_weights_path(pretrained_model_path), wanted)
        elif pretrained:
            path = default_weights(metric_name, preset)
            if path is None:
                raise CheckpointError(missing_weights_message(metric_name))
            self.model = load_for(preset, path, wanted)
        else:
            self.model = create_model(preset, pretrained=False)
        self.model.eval()
        self.num_crops = num_crops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return score_images(self.model, x, num_crops=self.num_crops,
                            check_range=False).unsqueeze(1)


def register() -> None:
    """Register :class:`LifeIQAMetric` with pyiqa's network registry (idempotent)."""
    from pyiqa.utils.registry import ARCH_REGISTRY

    ARCH_REGISTRY.register(LifeIQAMetric, override=True)
