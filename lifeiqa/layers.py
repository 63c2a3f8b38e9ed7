"""Building blocks of the Life-IQA decoder: partition pooling, the query GCN and the MoE head."""

from __future__ import annotations

import functools
import math
from itertools import pairwise
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import MOE_DISPATCHES


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


class MultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` (same parameters, initialisation and state-dict keys, so the
    authors' checkpoints load) with a batch-first forward that returns only the attended values.

    Why not torch's forward: on batch-first input it transposes to sequence-first, and for a
    shared key/value tensor it projects them packed and then copies the pair apart; with Life-
    IQA's 6 queries over 49 memory tokens those copies (and their zero-filled gradients) cost
    about a fifth of a decoder training step on CPU. Here one projection of the memory is viewed
    as keys and values in place and fed to ``scaled_dot_product_attention``.
    """

    # narrower than nn.MultiheadAttention.forward on purpose (see above)
    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        batch, queries, dim = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        q_weight, kv_weight = self.in_proj_weight.split([dim, 2 * dim])
        q_bias, kv_bias = self.in_proj_bias.split([dim, 2 * dim])
        q = F.linear(query, q_weight, q_bias).view(batch, queries, heads, head_dim).transpose(1, 2)
        kv = F.linear(memory, kv_weight, kv_bias).view(batch, -1, 2, heads, head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return cast(torch.Tensor, self.out_proj(attended.transpose(1, 2).reshape(batch, queries, dim)))


class SelfAttentionMixer(nn.Module):
    """Ablation "GCN -> MHA": pre-norm multi-head self-attention over the query tokens."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return cast(torch.Tensor, self.attn(h, h))


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
        return cast(torch.Tensor, self.fc2(self.drop(F.relu(self.fc1(x)))))


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
    sum to one. ``dispatch`` says how the experts run; both give the same outputs and gradients:

    - ``"dense"``: every expert on every token, weighted by the routing weights (exactly zero
      where unselected). No data-dependent shapes (no host sync, one graph under torch.compile).
    - ``"sparse"``: the tokens sorted by expert, each expert on its own tokens only, the weighted
      outputs added back per token: top_k / num_experts of the dense FLOPs, at the price of one
      host sync (the per-expert counts) and a few gathers. An expert chosen by no token still
      runs on zero tokens, so it gets a zero gradient as in the dense path (DDP needs no
      unused-parameter search).
    - ``"auto"``: whichever :func:`sparse_dispatch_pays` says is faster for the device and size.
    """

    def __init__(self, dim: int, hidden_dim: int, num_experts: int, top_k: int,
                 dropout: float, dispatch: str = "auto") -> None:
        super().__init__()
        if dispatch not in MOE_DISPATCHES:
            raise ValueError(f"SparseMoE dispatch={dispatch!r}: expected one of {MOE_DISPATCHES}")
        self.num_experts = num_experts
        self.top_k = top_k
        self.dispatch = dispatch
        self.router = nn.Linear(dim, num_experts)
        self.experts = nn.ModuleList(Expert(dim, hidden_dim, dropout) for _ in range(num_experts))

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights, selected, logits): post-top-k softmax weights, a 0/1 selection mask, logits."""
        weights, _, selected, logits = self._route(x)
        return weights, selected, logits

    def _route(self, x: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`route` plus the (..., k) indices of the chosen experts."""
        logits = self.router(x)
        top_values, top_index = logits.topk(self.top_k, dim=-1)
        sparse_logits = torch.full_like(logits, -math.inf).scatter(-1, top_index, top_values)
        weights = sparse_logits.softmax(dim=-1)
        selected = torch.zeros_like(logits).scatter(-1, top_index, 1.0)
        return weights, top_index, selected, logits

    def uses_sparse_dispatch(self, x: torch.Tensor) -> bool:
        """Whether :meth:`forward` on ``x`` takes the sparse path."""
        if self.dispatch != "auto":
            return self.dispatch == "sparse"
        # data-dependent shapes would break a compiled graph in two around a host sync
        if torch.compiler.is_compiling():
            return False
        fc1 = cast(Expert, self.experts[0]).fc1
        return sparse_dispatch_pays(x.device, x.numel() // x.shape[-1], fc1.in_features,
                                    fc1.out_features, self.num_experts, self.top_k)

    def _dense(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        expert_out = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (..., E, D)
        return (weights.unsqueeze(-1) * expert_out).sum(dim=-2)

    def _sparse(self, x: torch.Tensor, weights: torch.Tensor,
                top_index: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        choices = top_index.reshape(-1)  # (tokens * k,): token t's j-th expert at t * k + j
        order = choices.argsort(stable=True)  # the choices grouped by expert
        token = order // self.top_k
        counts = torch.bincount(choices, minlength=self.num_experts).tolist()  # the host sync
        routed = flat.index_select(0, token).split(counts)
        expert_out = torch.cat([expert(part) for expert, part in zip(self.experts, routed,
                                                                     strict=True)])
        chosen_weights = weights.reshape(-1, self.num_experts).gather(
            -1, top_index.reshape(-1, self.top_k)).reshape(-1)
        weighted = expert_out * chosen_weights[order].unsqueeze(-1).to(expert_out.dtype)
        tokens = weighted.new_zeros(flat.shape[0], weighted.shape[-1])
        return tokens.index_add_(0, token, weighted).view(*x.shape[:-1], -1)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        weights, top_index, selected, logits = self._route(x)
        tokens = (self._sparse(x, weights, top_index) if self.uses_sparse_dispatch(x)
                  else self._dense(x, weights))
        flat_weights = weights.reshape(-1, self.num_experts).float()
        flat_selected = selected.reshape(-1, self.num_experts).float().detach()
        # Switch-Transformer balance loss; uniform routing gives k.
        aux_loss = self.num_experts * (flat_weights.mean(0) * flat_selected.mean(0)).sum()
        # ST-MoE router z-loss over all raw logits.
        z_loss = torch.logsumexp(logits.float(), dim=-1).pow(2).mean()
        return HeadOutput(tokens, aux_loss, z_loss)


def sparse_dispatch_pays(device: torch.device, tokens: int, dim: int, hidden_dim: int,
                         num_experts: int, top_k: int) -> bool:
    """Whether the sparse dispatch of :class:`SparseMoE` is faster than the dense one (training,
    forward and backward) for ``tokens`` routed tokens on ``device``; ``dispatch="auto"``."""
    # Measured on 2 CPU threads (forward + backward, dense vs sparse interleaved, median of 15):
    # d=192, h=768, E=4, k=2 (lifeiqa_effnet_lite0_small), 64 images x 6 queries: dense 30.6 ms,
    # sparse 17.0 ms (1.80x); the same at 1 image: 3.0 vs 3.0 ms (1.0x); d=384, h=1536, E=8, k=2
    # (lifeiqa_swin_b) at 64 images: 160 vs 55 ms (2.9x), at 256: 539 vs 154 ms (3.5x); E=k
    # saves nothing (0.96x); lifeiqa_tiny (d=24, h=48) at 16 images: 0.93x. Sparse pays on CPU
    # once the skipped expert work is a few million multiply-adds. On CUDA it is not measured:
    # its per-expert counts need a host sync each step, its shapes change with the routing (no
    # CUDA graphs; under torch.compile "auto" is dense anyway) and index_add_ is not
    # deterministic there, while the dense MoE on six tokens per image is a small part of a
    # step, so CUDA (and any other device) stays dense.
    if device.type != "cpu":
        return False
    skipped_multiply_adds = tokens * (num_experts - top_k) * 2 * hidden_dim * dim
    return skipped_multiply_adds >= 4_000_000
