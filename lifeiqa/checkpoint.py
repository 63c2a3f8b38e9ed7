"""Checkpoints: safetensors files that embed the model config and label scale.

One ``.safetensors`` file rebuilds its model: the architecture (:class:`LifeIQAConfig`) and the
label scale travel in the file's metadata. ``.pt``/``.pth`` state dicts (lifeiqa's layout or the
authors') are read with ``weights_only=True`` and need the config from a preset.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .config import LifeIQAConfig
from .errors import CheckpointError
from .files import read_safetensors, read_safetensors_metadata, read_torch_file
from .model import LifeIQA
from .presets import matching_presets

FORMAT = "lifeiqa-checkpoint"
FORMAT_VERSION = "1"
_CONFIG_KEY = "lifeiqa.config"
_LABEL_KEY = "lifeiqa.label_scale"
_PROVENANCE_KEY = "lifeiqa.provenance"


@dataclass(frozen=True)
class LabelScale:
    """The scale a model's scores are on.

    ``kind``: ``"native"`` (the dataset's own MOS/DMOS scale, as the authors train) or ``"unit"``
    (mapped to [0, 1], higher is better). ``low``/``high``: the range of that scale.
    ``higher_is_better``: the direction of the scores. ``dataset``: what it was trained on.
    """

    kind: str
    low: float
    high: float
    higher_is_better: bool
    dataset: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("native", "unit"):
            raise ValueError(f"LabelScale.kind={self.kind!r}: expected 'native' or 'unit'")
        if not self.low < self.high:
            raise ValueError(f"LabelScale: low={self.low} must be below high={self.high}")


def save_checkpoint(model: LifeIQA, path: str | Path, label_scale: LabelScale | None = None,
                    metadata: dict[str, str] | None = None,
                    provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (weights, config, label scale) to one safetensors file, atomically.

    ``provenance``: how the weights were made (dataset, split, recipe, selection, commit, test
    scores, date; any JSON values), kept in the file's metadata and shown by
    ``lifeiqa-bench weights list``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: checkpoints are written as .safetensors files")
    scale = label_scale or (LabelScale(**model.label_scale) if model.label_scale else None)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        _CONFIG_KEY: model.config.to_json(),
        _LABEL_KEY: json.dumps(asdict(scale) if scale else None),
        **({_PROVENANCE_KEY: json.dumps(dict(provenance), sort_keys=True)} if provenance else {}),
        **(metadata or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@dataclass
class Checkpoint:
    """The contents of a checkpoint file."""

    config: LifeIQAConfig | None  # None for plain state dicts, which carry no config
    state_dict: dict[str, torch.Tensor]
    label_scale: LabelScale | None
    metadata: dict[str, str]
    official_layout: bool
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint file says about itself, read from its header without its tensors."""

    path: Path
    config: LifeIQAConfig | None  # None for plain state dicts
    label_scale: LabelScale | None
    provenance: dict[str, Any] | None
    metadata: dict[str, str]


def _parse_header(path: Path, metadata: dict[str, str]) -> CheckpointInfo:
    if _CONFIG_KEY not in metadata:
        return CheckpointInfo(path, None, None, None, metadata)
    try:
        config = LifeIQAConfig.from_dict(json.loads(metadata[_CONFIG_KEY]))
        label = json.loads(metadata.get(_LABEL_KEY, "null"))
        label_scale = LabelScale(**label) if label else None
        provenance = json.loads(metadata.get(_PROVENANCE_KEY, "null"))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: the embedded config is invalid: {err}") from err
    if provenance is not None and not isinstance(provenance, dict):
        raise CheckpointError(f"{path}: the embedded provenance is {type(provenance).__name__}, "
                              f"expected a JSON object")
    return CheckpointInfo(path, config, label_scale, provenance, metadata)


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """A checkpoint's config, label scale and provenance, read from a safetensors header alone
    (cheap for any size); a ``.pt``/``.pth`` state dict carries none of them."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix != ".safetensors":
        return CheckpointInfo(path, None, None, None, {})
    return _parse_header(path, read_safetensors_metadata(path))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint without building a model."""
    from .convert import is_official_layout

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix != ".safetensors":
        state = read_torch_file(path)
        return Checkpoint(None, state, None, {}, is_official_layout(state))
    tensors, metadata = read_safetensors(path)
    info = _parse_header(path, metadata)
    if info.config is None:
        return Checkpoint(None, tensors, None, metadata, is_official_layout(tensors))
    return Checkpoint(info.config, tensors, info.label_scale, metadata, False, info.provenance)


def _architecture_differences(expected: LifeIQAConfig, found: LifeIQAConfig) -> dict[str, Any]:
    """Differences that matter; normalisation left unset in ``expected`` matches anything."""
    diffs = expected.differences(found)
    for name in ("input_mean", "input_std"):
        if getattr(expected, name) is None:
            diffs.pop(name, None)
    return diffs


def load_checkpoint(path: str | Path, expected_config: LifeIQAConfig | None = None,
                    preset: str | None = None, map_location: str | torch.device = "cpu") -> LifeIQA:
    """Rebuild a model from a checkpoint.

    A lifeiqa safetensors checkpoint builds itself from its embedded config; if
    ``expected_config`` is given it must agree (the error names the differing fields and the
    presets that do match). A state dict without config (``.pth``/``.pt``, or the authors'
    layout) is built with ``expected_config``.
    """
    from .convert import convert_official_state_dict

    path = Path(path)
    ckpt = read_checkpoint(path)
    config = ckpt.config
    if config is None:
        if expected_config is None:
            raise CheckpointError(
                f"{path}: a plain state dict carries no model config; load it with "
                f"lifeiqa.create_model(<preset name>, checkpoint={str(path)!r})"
            )
        config = expected_config
    elif expected_config is not None:
        diffs = _architecture_differences(expected_config, config)
        if diffs:
            matches = matching_presets(config)
            listed = "; ".join(f"{k}: preset has {a!r}, checkpoint has {b!r}"
                               for k, (a, b) in sorted(diffs.items()))
            hint = (f"it matches preset(s) {matches}" if matches
                    else "load it with lifeiqa.load_checkpoint(path), which uses its own config")
            raise CheckpointError(
                f"{path}: checkpoint architecture differs from "
                f"{preset or 'the requested config'} ({listed}); {hint}"
            )
        config = config.replace(moe_dispatch=expected_config.moe_dispatch)  # how, not what
    model = LifeIQA(config)
    state = ckpt.state_dict
    if ckpt.official_layout:
        state = convert_official_state_dict(state, model)
    load_state_dict_strict(model, state, source=str(path))
    model.label_scale = asdict(ckpt.label_scale) if ckpt.label_scale else None
    return model.to(map_location).eval()


def load_state_dict_strict(model: torch.nn.Module, state: dict[str, torch.Tensor],
                           source: str) -> None:
    """Load every tensor, or raise naming each missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(
        f"{k}: model {tuple(own[k].shape)}, file {tuple(state[k].shape)}"
        for k in set(own) & set(state) if own[k].shape != state[k].shape
    )
    if missing or unexpected or mis_shaped:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected),
                             ("shape mismatch", mis_shaped)):
            if items:
                shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(f"{source}: tensors do not match the model ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)
