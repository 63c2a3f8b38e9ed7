"""Architecture configuration of Life-IQA.

A :class:`LifeIQAConfig` fully determines the module tree, so a checkpoint that embeds one can
rebuild its model. Defaults follow the authors' code (docs/design.md section 2); where the paper reads
differently the paper's reading is an option, never the default.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

QUERY_MIXERS = ("gcn", "self_attention", "none")
DECODER_LAYERS = ("gcn_cross", "vanilla")
HEADS = ("moe", "ffn", "none")
KV_SOURCES = ("stage3", "stage4")
ADJACENCY_MODES = ("fixed", "learnable")
GAMMA_PLACEMENTS = ("code", "paper")
MOE_DISPATCHES = ("auto", "dense", "sparse")
# Shallow stages that may join the keys/values (the paper's open question): stage k is the
# backbone map at stride 2^(k+1), as the layer probes count them; 3 and 4 are always used.
SHALLOW_STAGES = (1, 2)
# Crops a whole image is scored with (lifeiqa.inference: a uniform grid, scores averaged); here,
# beside the other defaults, so that a command line can show it without importing torch.
DEFAULT_NUM_CROPS = 9


@dataclass(frozen=True)
class LifeIQAConfig:
    """Everything needed to build a :class:`lifeiqa.LifeIQA` (weights excluded)."""

    backbone: str = "swin_base_patch4_window7_224.ms_in22k_ft_in1k"
    # Extra keyword arguments for ``timm.create_model`` (e.g. a reduced depth for tests).
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    # Input normalisation; ``None`` means "take it from the backbone's timm pretrained config".
    input_mean: tuple[float, float, float] | None = None
    input_std: tuple[float, float, float] | None = None
    input_size: int = 224

    embed_dim: int = 384
    num_queries: int = 6
    depth: int = 4
    num_heads: int = 6
    gcn_hidden_dims: tuple[int, ...] = (192, 96)
    adjacency: str = "fixed"
    pool_grid: int = 7

    num_experts: int = 8
    top_k: int = 2
    expert_hidden_dim: int = 1536
    gamma_init: float = 0.1
    gamma_placement: str = "code"

    attn_dropout: float = 0.0
    expert_dropout: float = 0.1
    head_dropout: float = 0.1

    # Ablation switches (the paper's Table of ablations is expressed through these).
    query_mixer: str = "gcn"
    decoder_layer: str = "gcn_cross"
    head: str = "moe"
    kv_source: str = "stage3"
    # Shallow stages whose partition-averaged tokens, each with its own projection, are appended
    # to the keys/values (empty in the paper and the authors' code).
    extra_kv_stages: tuple[int, ...] = ()

    # How the MoE runs its experts (lifeiqa.layers.SparseMoE): the same function and
    # parameters either way, so configs differing only here compare equal (compare=False).
    moe_dispatch: str = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        # Canonical forms, so a config equals itself after a JSON round trip (checkpoints).
        canonical_kwargs = json.loads(json.dumps(self.backbone_kwargs, sort_keys=True))
        object.__setattr__(self, "backbone_kwargs", canonical_kwargs)
        for name in ("input_mean", "input_std", "gcn_hidden_dims"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        stages = tuple(self.extra_kv_stages)
        if any(stage not in SHALLOW_STAGES for stage in stages) or len(set(stages)) != len(stages):
            raise ValueError(f"LifeIQAConfig.extra_kv_stages={self.extra_kv_stages!r}: expected "
                             f"distinct stages among {SHALLOW_STAGES}")
        object.__setattr__(self, "extra_kv_stages", tuple(sorted(stages)))
        choices = {
            "query_mixer": QUERY_MIXERS,
            "decoder_layer": DECODER_LAYERS,
            "head": HEADS,
            "kv_source": KV_SOURCES,
            "adjacency": ADJACENCY_MODES,
            "gamma_placement": GAMMA_PLACEMENTS,
            "moe_dispatch": MOE_DISPATCHES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"LifeIQAConfig.{name}={value!r}: expected one of {allowed}")
        positive = ("embed_dim", "num_queries", "depth", "num_heads", "pool_grid", "num_experts",
                    "top_k", "expert_hidden_dim", "input_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LifeIQAConfig.{name}={value!r}: expected a positive integer")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"LifeIQAConfig: embed_dim={self.embed_dim} is not divisible by "
                f"num_heads={self.num_heads}"
            )
        if self.num_experts > 1 and self.top_k > self.num_experts:  # E = 1 is a plain MLP
            raise ValueError(
                f"LifeIQAConfig: top_k={self.top_k} exceeds num_experts={self.num_experts}"
            )
        for name in ("attn_dropout", "expert_dropout", "head_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"LifeIQAConfig.{name}={value!r}: expected a value in [0, 1)")
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            if value is not None and len(value) != 3:
                raise ValueError(f"LifeIQAConfig.{name}={value!r}: expected three values (RGB)")

    def replace(self, **changes: Any) -> LifeIQAConfig:
        """A copy with ``changes`` applied; unknown field names are an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(
                f"unknown LifeIQAConfig field(s) {unknown}; known fields: {sorted(known)}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LifeIQAConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"config has unknown field(s) {unknown}; it was probably written by a newer "
                f"lifeiqa. Known fields: {sorted(known)}"
            )
        return cls(**data)

    def differences(self, other: LifeIQAConfig) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ, as ``{name: (self_value, other_value)}``; as ``==``, the
        fields that do not change the architecture (``compare=False``) are not compared."""
        mine, theirs = self.to_dict(), other.to_dict()
        compared = [f.name for f in dataclasses.fields(self) if f.compare]
        return {k: (mine[k], theirs[k]) for k in compared if mine[k] != theirs[k]}


# The paper's ablations (Life-IQA Table of ablations), as changes to a base configuration.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_gcn": {"query_mixer": "none"},
    "gcn_to_mha": {"query_mixer": "self_attention"},
    "no_moe": {"head": "none"},
    "moe_to_ffn": {"head": "ffn"},
    "no_stage3_kv": {"kv_source": "stage4"},
    "vanilla_decoder": {"decoder_layer": "vanilla"},
    # Beyond the paper's table: its open question (shallow stages in the keys/values) and its
    # text's reading of the graph (a learnable adjacency, where the authors' code fixes it).
    "stage2_kv": {"extra_kv_stages": (2,)},
    "stage1_kv": {"extra_kv_stages": (1,)},
    "learnable_adjacency": {"adjacency": "learnable"},
}


def apply_ablation(config: LifeIQAConfig, ablation: str) -> LifeIQAConfig:
    """``config`` with the named ablation of the paper applied."""
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; expected one of {sorted(ABLATIONS)}")
    return config.replace(**ABLATIONS[ablation])
