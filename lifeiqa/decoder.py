"""The query decoder: query tokens attend to pooled stage-3 (or stage-4) tokens."""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import LifeIQAConfig
from .layers import MultiheadAttention, QueryGCN, SelfAttentionMixer


class GCNCrossAttentionLayer(nn.Module):
    """x = x + mixer(x); x = x + CrossAttn(LayerNorm(x), memory). No FFN, no final norm.

    The mixer is the query GCN (authors' code; no norm before it), multi-head self-attention
    (ablation "GCN -> MHA") or nothing (ablation "no GCN").
    """

    def __init__(self, config: LifeIQAConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.mixer: nn.Module | None
        if config.query_mixer == "gcn":
            self.mixer = QueryGCN(dim, config.gcn_hidden_dims, config.num_queries,
                                  config.adjacency)
        elif config.query_mixer == "self_attention":
            self.mixer = SelfAttentionMixer(dim, config.num_heads, config.attn_dropout)
        else:
            self.mixer = None
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attn = MultiheadAttention(dim, config.num_heads, dropout=config.attn_dropout,
                                             batch_first=True)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.mixer is not None:
            x = x + self.mixer(x)
        return cast(torch.Tensor, x + self.cross_attn(self.norm_cross(x), memory))


class VanillaDecoderLayer(nn.Module):
    """Ablation "vanilla decoder": pre-norm self-attention, cross-attention and a GELU FFN."""

    def __init__(self, config: LifeIQAConfig) -> None:
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(
            config.embed_dim, config.num_heads, dim_feedforward=config.expert_hidden_dim,
            dropout=config.attn_dropout, activation=F.gelu, batch_first=True, norm_first=True,
        )

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.layer(x, memory))


class QueryDecoder(nn.Module):
    """``depth`` decoder layers. Like the authors' (and torch's) decoder, the layers start as
    deep copies of one initialised layer, so they share their initial weights."""

    def __init__(self, config: LifeIQAConfig) -> None:
        super().__init__()
        layer_cls = GCNCrossAttentionLayer if config.decoder_layer == "gcn_cross" else VanillaDecoderLayer
        first = layer_cls(config)
        self.layers = nn.ModuleList([first] + [copy.deepcopy(first) for _ in range(config.depth - 1)])

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, memory)
        return queries
