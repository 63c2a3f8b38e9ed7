"""Read state dicts in the layout of the authors' code (TANGLONG2/Life-IQA) into lifeiqa's.

The authors' layout (docs/design.md section 2): ``proj_layer3``, ``proj_layer4``, ``bunch_embedding``,
``bunch_decoder.layers.N.{multihead_attn, GCN.gcn{1,2,3}, norm2}``, ``MOE.router.linear``,
``MOE.experts.e.net.{0,3}`` (or ``MOE.net.{0,2}`` with one expert), ``norm3``, ``gamma``, ``fc``,
and the Swin backbone twice: under ``pretrain_model.`` and under ``backbone_stages.``.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import nn

from .errors import CheckpointError

# Buffers that older timm versions saved and that the model now rebuilds itself.
_REGENERATED = re.compile(r"\.(relative_position_index|attn_mask)$")

_HEAD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^proj_layer3\.(weight|bias)$"), r"memory_proj.\1"),
    (re.compile(r"^proj_layer4\.(weight|bias)$"), r"query_proj.\1"),
    (re.compile(r"^bunch_embedding$"), "query_embed"),
    (re.compile(r"^bunch_decoder\.layers\.(\d+)\.multihead_attn\.(.+)$"),
     r"decoder.layers.\1.cross_attn.\2"),
    (re.compile(r"^bunch_decoder\.layers\.(\d+)\.GCN\.gcn1\.(weight|bias)$"),
     r"decoder.layers.\1.mixer.convs.0.\2"),
    (re.compile(r"^bunch_decoder\.layers\.(\d+)\.GCN\.gcn2\.(weight|bias)$"),
     r"decoder.layers.\1.mixer.convs.1.\2"),
    (re.compile(r"^bunch_decoder\.layers\.(\d+)\.GCN\.gcn3\.(weight|bias)$"),
     r"decoder.layers.\1.mixer.convs.2.\2"),
    (re.compile(r"^bunch_decoder\.layers\.(\d+)\.norm2\.(weight|bias)$"),
     r"decoder.layers.\1.norm_cross.\2"),
    (re.compile(r"^MOE\.router\.linear\.(weight|bias)$"), r"head.mixture.router.\1"),
    (re.compile(r"^MOE\.experts\.(\d+)\.net\.0\.(weight|bias)$"), r"head.mixture.experts.\1.fc1.\2"),
    (re.compile(r"^MOE\.experts\.(\d+)\.net\.3\.(weight|bias)$"), r"head.mixture.experts.\1.fc2.\2"),
    (re.compile(r"^MOE\.net\.0\.(weight|bias)$"), r"head.mixture.fc1.\1"),
    (re.compile(r"^MOE\.net\.2\.(weight|bias)$"), r"head.mixture.fc2.\1"),
    (re.compile(r"^norm3\.(weight|bias)$"), r"head.norm.\1"),
    (re.compile(r"^gamma$"), "head.gamma"),
    (re.compile(r"^fc\.(weight|bias)$"), r"head.fc.\1"),
]

# backbone_stages.* -> the timm Swin model's own names.
_STAGE_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^backbone_stages\.0\.0\.(.+)$"), r"patch_embed.\1"),
    (re.compile(r"^backbone_stages\.0\.1\.(.+)$"), r"layers.0.\1"),
    (re.compile(r"^backbone_stages\.([123])\.(.+)$"), r"layers.\1.\2"),
]


def is_official_layout(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(("bunch_decoder.", "bunch_embedding")) for k in state)


def _apply(rules: list[tuple[re.Pattern[str], str]], key: str) -> str | None:
    for pattern, replacement in rules:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None


def _backbone_key(timm_name: str) -> str:
    """timm's full-model name -> our feature-net name (``features_only`` flattens ``layers.N``)."""
    return "backbone.body." + re.sub(r"^layers\.(\d+)\.", r"layers_\1.", timm_name)


def convert_official_state_dict(state: dict[str, torch.Tensor],
                                model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an authors'-layout state dict to ``model``'s names.

    Raises :class:`CheckpointError` naming every key it cannot place, every key the model needs
    that the file lacks, and any backbone tensor whose two copies disagree. Buffers the model
    rebuilds (Swin's relative position index and attention masks) are skipped with a warning.
    """
    own = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmatched: list[str] = []
    regenerated: list[str] = []
    disagreeing: list[str] = []
    for key, tensor in state.items():
        if key.startswith("pretrain_model."):
            target: str | None = _backbone_key(key[len("pretrain_model."):])
        elif key.startswith("backbone_stages."):
            timm_name = _apply(_STAGE_RULES, key)
            target = _backbone_key(timm_name) if timm_name else None
        else:
            target = _apply(_HEAD_RULES, key)
        if target is None or target not in own:
            (regenerated if _REGENERATED.search(key) else unmatched).append(key)
            continue
        if target in converted:
            if not torch.equal(converted[target], tensor):
                disagreeing.append(f"{origin[target]} vs {key}")
            continue
        if target == "head.gamma":
            tensor = tensor.reshape(own[target].shape)
        converted[target] = tensor
        origin[target] = key
    missing = sorted(set(own) - set(converted))
    if unmatched or missing or disagreeing:
        parts = []
        if unmatched:
            parts.append(f"keys with no place in this model: {sorted(unmatched)}")
        if missing:
            parts.append(f"model tensors absent from the file: {missing}")
        if disagreeing:
            parts.append(f"duplicated backbone tensors that disagree: {disagreeing}")
        raise CheckpointError("cannot convert the authors' state dict: " + "; ".join(parts))
    if regenerated:
        warnings.warn(f"skipped {len(regenerated)} buffers that the model rebuilds "
                      f"(e.g. {regenerated[0]})", stacklevel=2)
    return converted
