"""Installed weights: the checkpoint each pyiqa metric name (``lifeiqa``, ``lifeiqa_swin_t``,
``lifeiqa_effnet_lite0``) loads by default, kept in a local folder.

The folder is ``$LIFEIQA_WEIGHTS_DIR`` if set, else ``<torch hub dir>/lifeiqa/weights`` (torch's
``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``, where pyiqa keeps its own weights under
``pyiqa/``). It holds one ``<name>.safetensors`` per registered name, a copy of the file that
was added, so its embedded config, label scale and provenance travel with it.

A name fixes an architecture: the backbone of its preset (``lifeiqa``: Swin-B). The decoder's
size comes from the checkpoint's embedded config (the authors' per-dataset recipes differ in
experts and depth), but a checkpoint on another backbone is refused for that name, whether it
is added, passed as ``pretrained_model_path`` or named by ``LIFEIQA_CHECKPOINT`` (which then
applies only to the names it fits, with a warning for the others).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifeiqa_pyiqa_hook import PRESETS

from .checkpoint import CheckpointInfo, load_checkpoint, read_checkpoint_info, save_checkpoint
from .config import LifeIQAConfig
from .errors import CheckpointError, UnknownModelError, WeightsError
from .model import LifeIQA
from .presets import get_spec, matching_presets
from .registry import create_model

WEIGHTS_DIR_ENV = "LIFEIQA_WEIGHTS_DIR"
CHECKPOINT_ENV = "LIFEIQA_CHECKPOINT"
SUFFIX = ".safetensors"


def weights_dir() -> Path:
    """Where registered weights live: ``$LIFEIQA_WEIGHTS_DIR``, else beside pyiqa's weights in
    torch's hub folder (``$TORCH_HOME/hub/lifeiqa/weights``)."""
    override = os.environ.get(WEIGHTS_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from torch.hub import get_dir

    return Path(get_dir()) / "lifeiqa" / "weights"


def metric_names() -> list[str]:
    """The pyiqa metric names weights can be registered for."""
    return sorted(PRESETS)


def metric_preset(name: str) -> str:
    """The preset whose architecture metric ``name``'s weights must have."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "."
        raise UnknownModelError(f"unknown Life-IQA metric name {name!r}{hint} Known: "
                                f"{', '.join(metric_names())}")
    return PRESETS[name]


# --- architectures --------------------------------------------------------------------------


def _backbone(config: LifeIQAConfig) -> tuple[str, dict[str, Any]]:
    """What makes two checkpoints the same network for a metric name: the timm architecture
    (its pretrained tag only says where the initial weights came from) and its arguments."""
    return config.backbone.split(".", 1)[0], dict(config.backbone_kwargs or {})


def describe_architecture(config: LifeIQAConfig) -> str:
    """``Life-IQA on <backbone>`` and the presets it equals, for messages and listings."""
    name, kwargs = _backbone(config)
    text = f"Life-IQA on {name}" + (f" {kwargs}" if kwargs else "")
    presets = matching_presets(config)  # the generic preset first: registration order
    return text + (f" (preset {presets[0]})" if presets else "")


def fits(preset: str, config: LifeIQAConfig) -> bool:
    """Whether a checkpoint with ``config`` has the architecture ``preset`` stands for."""
    return _backbone(config) == _backbone(get_spec(preset).config)


def check_architecture(preset: str, config: LifeIQAConfig, source: str, wanted: str) -> None:
    """Raise :class:`CheckpointError`, naming both, unless ``config`` fits ``preset``; ``wanted``
    names what asked for it (``metric 'lifeiqa'``)."""
    if not fits(preset, config):
        raise CheckpointError(
            f"{source} is {describe_architecture(config)}, but {wanted} is "
            f"{describe_architecture(get_spec(preset).config)}; it cannot serve under that name")


def load_for(preset: str, path: Path, wanted: str) -> LifeIQA:
    """The model in ``path`` if it has ``preset``'s architecture; a plain state dict (no
    embedded config, e.g. the authors' layout) is read into the preset itself."""
    info = read_checkpoint_info(path)
    if info.config is None:
        return create_model(preset, checkpoint=path)
    check_architecture(preset, info.config, str(path), wanted)
    return load_checkpoint(path)


# --- weights references ---------------------------------------------------------------------


def resolve_weights_path(reference: str) -> Path:
    """A local path for ``reference``: a file path, an https URL, or ``hf://owner/repo/file``.

    URLs and hub references download only when asked (here), into the torch/HF caches.
    """
    if reference.startswith("hf://"):
        parts = reference[len("hf://"):].split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise CheckpointError(f"{reference!r}: expected hf://owner/repo/path/to/file")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=f"{parts[0]}/{parts[1]}", filename=parts[2]))
    if reference.startswith(("https://", "http://")):
        from torch.hub import download_url_to_file, get_dir

        # keyed by the whole URL, so two files of the same name from different places differ
        tag = hashlib.sha256(reference.encode()).hexdigest()[:12]
        target = Path(get_dir()) / "lifeiqa" / f"{tag}-{Path(reference.split('?')[0]).name}"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            download_url_to_file(reference, str(target), progress=False)
        return target
    path = Path(os.path.expanduser(reference))
    if not path.is_file():
        raise CheckpointError(f"pretrained_model_path {reference!r}: no such file")
    return path


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredWeights:
    """The weights registered for one metric name, as their file describes them."""

    name: str
    path: Path
    info: CheckpointInfo

    @property
    def provenance(self) -> dict[str, Any]:
        """How they were made (empty for checkpoints saved without provenance)."""
        return self.info.provenance or {}

    @property
    def architecture(self) -> str:
        return describe_architecture(self.info.config) if self.info.config else "-"


def _registered_file(name: str) -> Path:
    metric_preset(name)  # an unknown name raises, naming the known ones
    return weights_dir() / f"{name}{SUFFIX}"


def registered_weights(name: str) -> RegisteredWeights | None:
    """The weights registered for metric ``name``, or None."""
    path = _registered_file(name)
    return RegisteredWeights(name, path, read_checkpoint_info(path)) if path.is_file() else None


def get_weights(name: str) -> RegisteredWeights:
    """The weights registered for metric ``name``; :class:`WeightsError` if there are none."""
    found = registered_weights(name)
    if found is None:
        raise WeightsError(f"no weights registered for {name!r} in {weights_dir()}; registered: "
                           f"{', '.join(w.name for w in list_weights()) or 'none'}")
    return found


def list_weights() -> list[RegisteredWeights]:
    """Every registered name's weights, by name."""
    return [w for w in map(registered_weights, metric_names()) if w is not None]


def add_weights(file: str | Path, name: str = "lifeiqa", replace: bool = False) -> RegisteredWeights:
    """Register checkpoint ``file`` as metric ``name``'s default weights (a copy in
    :func:`weights_dir`).

    The file must load with the name's architecture: a lifeiqa ``.safetensors`` checkpoint on
    the name's backbone (kept byte for byte, provenance included), or a plain state dict for the
    name's preset (stored as a lifeiqa checkpoint with that preset's config). Weights already
    registered for ``name`` are replaced only with ``replace``.
    """
    source = Path(file).expanduser()
    preset = metric_preset(name)
    target = _registered_file(name)
    if not source.is_file():
        raise WeightsError(f"{source}: no such checkpoint file")
    if target.is_file() and not replace:
        held = registered_weights(name)
        raise WeightsError(f"weights for {name!r} are already registered ({target}, "
                           f"{_summary(held.provenance) if held else ''}); pass replace=True "
                           f"(--replace) to put {source} in their place")
    # a full load: a file that cannot serve the metric is refused now, not at create_metric
    model = load_for(preset, source, f"metric {name!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if read_checkpoint_info(source).config is None:
        save_checkpoint(model, target)
    else:
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(handle)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return RegisteredWeights(name, target, read_checkpoint_info(target))


def remove_weights(name: str) -> Path:
    """Unregister metric ``name``'s weights (their file is deleted); returns the file."""
    found = get_weights(name)
    found.path.unlink()
    return found.path


def _summary(provenance: dict[str, Any]) -> str:
    if not provenance:
        return "no provenance recorded"
    test = provenance.get("test") or {}
    return (f"trained on {provenance.get('dataset', '?')} ({provenance.get('split', '?')}), "
            f"test SRCC {test.get('srcc', float('nan')):.4f}")


def default_weights(name: str, preset: str | None = None) -> Path | None:
    """The file ``create_metric(name)`` loads by default: ``$LIFEIQA_CHECKPOINT`` when it has
    ``preset``'s architecture (by default the name's; otherwise a warning says it is skipped),
    else the weights registered for ``name``, else None."""
    preset = preset or metric_preset(name)
    reference = os.environ.get(CHECKPOINT_ENV, "").strip()
    if reference:
        path = resolve_weights_path(reference)
        config = read_checkpoint_info(path).config
        if config is None or fits(preset, config):
            return path
        warnings.warn(f"{CHECKPOINT_ENV}={reference} is {describe_architecture(config)}; metric "
                      f"{name!r} is {describe_architecture(get_spec(preset).config)}, so it does "
                      f"not use it", UserWarning, stacklevel=3)
    found = registered_weights(name)
    return found.path if found else None


def missing_weights_message(name: str) -> str:
    """What to do when metric ``name`` has no weights: the two commands that make and register
    some."""
    preset = metric_preset(name)
    file = f"{name}-koniq10k{SUFFIX}"
    return (
        f"no Life-IQA weights for {name!r}: none are registered in {weights_dir()} "
        f"(${WEIGHTS_DIR_ENV}), and the authors publish none. Train and register some with\n"
        f"  lifeiqa-bench train --dataset koniq10k --split official --data-root DIR "
        f"--model {preset} --out {file}\n"
        f"  lifeiqa-bench weights add {file} --name {name}\n"
        f"or pass pretrained_model_path=<file.safetensors> (or set {CHECKPOINT_ENV}), or "
        f"pretrained=False for random initialisation."
    )
