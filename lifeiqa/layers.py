"""Building blocks of the Life-IQA decoder: partition pooling, the query GCN and the MoE head."""

from __future__ import annotations

import functools
import math
from itertools import pairwise
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=64)
def _partition_matrix(size: int, grid: int) -> torch.Tensor:
    """(grid, size) averaging matrix over ``grid`` non-overlapping, exhaustive partitions.

    Partition i spans [floor(i*size/grid), floor((i+1)*size/grid)), as the authors' partition
    average does (for 14 -> 7 this is plain 2x2 average pooling). When ``size < grid`` a cell
    would be empty, so it takes the single position it starts at instead.
    """
    bounds = [(i * size) // grid for i in range(grid + 1)]
    weights = torch.zeros(grid, size, dtype=torch.float64)
    for i in range(grid):
        start, end = bounds[i], max(bounds[i + 1], bounds[i] + 1)
        start = min(start, size - 1)
        end = min(end, size)
        weights[i, start:end] = 1.0 / (end - start)
    return weights


class PartitionAvgPool(nn.Module):
    """Average a (B, C, H, W) map over a grid x grid partition -> (B, grid*grid, C), row-major."""

    def __init__(self, grid: int = 7) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        rows = _partition_matrix(height, self.grid).to(x.device, x.dtype)
        cols = _partition_matrix(width, self.grid).to(x.device, x.dtype)
        pooled = torch.einsum("ih,bchw,jw->bijc", rows, x, cols)
        return pooled.flatten(1, 2)


def normalized_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """Symmetric normalisation D^-1/2 (A + I) D^-1/2 of a non-negative (N, N) adjacency."""
    with_self = adjacency + torch.eye(adjacency.shape[-1], device=adjacency.device,
                                      dtype=adjacency.dtype)
    inv_sqrt_degree = with_self.sum(-1).clamp_min(1e-6).rsqrt()
    return inv_sqrt_degree[:, None] * with_self * inv_sqrt_degree[None, :]


class GraphConv(nn.Module):
    """One graph convolution A (X W) + b over the query tokens; W is stored (in, out)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        # kaiming_uniform_ on an (in, out) tensor uses fan_in = out, as in the authors' code.
        nn.init.kaiming_uniform_(self.weight)

    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(adjacency, x @ self.weight) + self.bias


class QueryGCN(nn.Module):
    """Graph convolutions over the N query tokens (widths d -> h1 -> ... -> d, ReLU between).

    ``adjacency="fixed"`` is the authors' code: the complete graph with self loops, normalised,
    i.e. (J + I) / (N + 1), a constant buffer outside the state dict. ``"learnable"`` is the
    paper's description: one learnable (N, N) matrix per graph convolution, initialised to the
    complete graph (so it starts equal to the fixed one) and normalised as |A| + I.
    """

    def __init__(self, dim: int, hidden_dims: tuple[int, ...], num_tokens: int,
                 adjacency: str = "fixed") -> None:
        super().__init__()
        widths = (dim, *hidden_dims, dim)
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in pairwise(widths))
        self.learnable = adjacency == "learnable"
        complete = torch.ones(num_tokens, num_tokens)
        if self.learnable:
            self.adjacency = nn.ParameterList(nn.Parameter(complete.clone()) for _ in self.convs)
        else:
            self.register_buffer("fixed_adjacency", normalized_adjacency(complete),
                                 persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            adjacency = (normalized_adjacency(self.adjacency[i].abs()) if self.learnable
                         else self.fixed_adjacency)
            x = conv(adjacency.to(x.dtype), x)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class SelfAttentionMixer(nn.Module):
    """Ablation "GCN -> MHA": pre-norm multi-head self-attention over the query tokens."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return self.attn(h, h, h, need_weights=False)[0]


class HeadOutput(NamedTuple):
    tokens: torch.Tensor
    aux_loss: torch.Tensor
    z_loss: torch.Tensor


class Expert(nn.Module):
    """Expert MLP of the sparse MoE: Linear -> ReLU -> Dropout -> Linear."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class FeedForward(nn.Module):
    """The single MLP used instead of the MoE (E = 1): Linear -> GELU -> Linear -> Dropout."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        zero = x.new_zeros(())
        return HeadOutput(self.drop(self.fc2(F.gelu(self.fc1(x)))), zero, zero)


class SparseMoE(nn.Module):
    """Top-k routed mixture of experts over tokens, with load-balancing and router z-losses.

    Routing: keep the k largest router logits, set the others to -inf, softmax; the kept weights
    sum to one. Every expert runs densely on every token and unselected weights are exactly zero,
    so the output equals the sparse sum. Life-IQA routes only six tokens per image, so the dense
    form costs well under 1% of the backbone, needs no data-dependent indexing (no host sync), and
    gives every expert a gradient each step (DistributedDataParallel needs no unused-parameter
    search).
    """

    def __init__(self, dim: int, hidden_dim: int, num_experts: int, top_k: int,
                 dropout: float) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.router = nn.Linear(dim, num_experts)
        self.experts = nn.ModuleList(Expert(dim, hidden_dim, dropout) for _ in range(num_experts))

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights, selected, logits): post-top-k softmax weights, a 0/1 selection mask, logits."""
        logits = self.router(x)
        top_values, top_index = logits.topk(self.top_k, dim=-1)
        sparse_logits = torch.full_like(logits, -math.inf).scatter(-1, top_index, top_values)
        weights = sparse_logits.softmax(dim=-1)
        selected = torch.zeros_like(logits).scatter(-1, top_index, 1.0)
        return weights, selected, logits

    def forward(self, x: torch.Tensor) -> HeadOutput:
        weights, selected, logits = self.route(x)
        expert_out = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (..., E, D)
        tokens = (weights.unsqueeze(-1) * expert_out).sum(dim=-2)
        flat_weights = weights.reshape(-1, self.num_experts).float()
        flat_selected = selected.reshape(-1, self.num_experts).float().detach()
        # Switch-Transformer balance loss; uniform routing gives k.
        aux_loss = self.num_experts * (flat_weights.mean(0) * flat_selected.mean(0)).sum()
        # ST-MoE router z-loss over all raw logits.
        z_loss = torch.logsumexp(logits.float(), dim=-1).pow(2).mean()
        return HeadOutput(tokens, aux_loss, z_loss)
