"""Life-IQA (arXiv 2511.19024): a backbone's two deepest stages, a GCN-enhanced query decoder
and a sparse mixture-of-experts head."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import FeatureBackbone, backbone_pretrained_cfg
from .config import LifeIQAConfig
from .decoder import QueryDecoder
from .layers import FeedForward, HeadOutput, PartitionAvgPool, SparseMoE

# Resize overshoot (bicubic, antialiasing) may leave values slightly outside [0, 1].
RANGE_TOLERANCE = 1e-2


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """A context with autocast off on ``device_type`` (a device type autocast does not support
    cannot be under autocast: nothing to turn off)."""
    try:
        return torch.autocast(device_type, enabled=False)
    except RuntimeError:
        return contextlib.nullcontext()


class LifeIQAOutput(NamedTuple):
    """What :meth:`LifeIQA.forward` returns.

    ``score``: one quality score per image, shape (B,), on the scale the model was trained on.
    ``aux_loss``/``z_loss``: the MoE load-balancing and router z-losses (0-dim; zero without a
    sparse MoE), to be weighted into the training loss by the caller.
    """

    score: torch.Tensor
    aux_loss: torch.Tensor
    z_loss: torch.Tensor


class BackboneFeatures(NamedTuple):
    """Backbone output as the decoder consumes it; small enough to cache per crop.

    ``pooled``: the penultimate stage partition-averaged to (B, grid*grid, C3).
    ``deepest``: the deepest stage, (B, C4, H4, W4).
    ``shallow``: with ``config.extra_kv_stages``, those stages partition-averaged to the same grid
    and concatenated along channels, (B, grid*grid, C1 + C2); else None.
    """

    pooled: torch.Tensor
    deepest: torch.Tensor
    shallow: torch.Tensor | None = None

    def map(self, function: Callable[[torch.Tensor], torch.Tensor]) -> BackboneFeatures:
        """``function`` applied to every tensor (a batch's rows, a device move)."""
        return BackboneFeatures(*cast("Iterator[Any]", (None if t is None else function(t) for t in self)))

    @staticmethod
    def cat(features: Sequence[BackboneFeatures]) -> BackboneFeatures:
        """Features of several batches as one, along the batch dimension."""
        return BackboneFeatures(*cast("Iterator[Any]", (None if parts[0] is None else torch.cat(parts)
                                                      for parts in zip(*features, strict=True))))


class QualityHead(nn.Module):
    """h = LayerNorm(x); y = Dropout(h + gamma * M(h)) (``paper``: gamma * h + M(h));
    a linear score per query, averaged over the queries."""

    def __init__(self, config: LifeIQAConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm = nn.LayerNorm(dim)
        self.mixture: nn.Module | None
        if config.head == "moe" and config.num_experts > 1:
            self.mixture = SparseMoE(dim, config.expert_hidden_dim, config.num_experts,
                                     config.top_k, config.expert_dropout, config.moe_dispatch)
        elif config.head in ("moe", "ffn"):  # the authors' code uses one plain MLP when E = 1
            self.mixture = FeedForward(dim, config.expert_hidden_dim, config.expert_dropout)
        else:
            self.mixture = None
        self.gamma = nn.Parameter(torch.tensor(config.gamma_init)) if self.mixture else None
        self.scale_bypass = config.gamma_placement == "paper"
        self.drop = nn.Dropout(config.head_dropout)
        self.fc = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        h = self.norm(x)
        if self.mixture is None:
            zero = h.new_zeros((), dtype=torch.float32)
            y, aux_loss, z_loss = h, zero, zero
        else:
            mixed, aux_loss, z_loss = self.mixture(h)
            y = self.gamma * h + mixed if self.scale_bypass else h + self.gamma * mixed
        per_query = self.fc(self.drop(y)).squeeze(-1)
        return HeadOutput(per_query.mean(dim=-1), aux_loss, z_loss)


class LifeIQA(nn.Module):
    """Life-IQA as the authors' code builds it, configurable through :class:`LifeIQAConfig`.

    Input: RGB in [0, 1], shape (B, 3, H, W); the model normalises with its backbone's statistics.
    Backbones with a fixed input size (Swin) need H = W = ``config.input_size``; score whole images
    of any size with :func:`lifeiqa.inference.predict_image`.
    """

    # buffers (registered in __init__)
    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(self, config: LifeIQAConfig, backbone_weights: str | None = None) -> None:
        super().__init__()
        pretrained_cfg = backbone_pretrained_cfg(config.backbone)
        mean = config.input_mean or tuple(pretrained_cfg["mean"])
        std = config.input_std or tuple(pretrained_cfg["std"])
        self.config = config.replace(input_mean=tuple(mean), input_std=tuple(std))
        self.fixed_input_size = bool(pretrained_cfg.get("fixed_input_size", False))
        # Set by checkpoint loading: how the score relates to the dataset it was trained on.
        self.label_scale: dict | None = None

        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.backbone = FeatureBackbone(config.backbone, backbone_weights, config.backbone_kwargs,
                                        config.extra_kv_stages)
        *shallow_channels, penultimate_channels, deepest_channels = self.backbone.channels
        dim = config.embed_dim

        self.pool = PartitionAvgPool(config.pool_grid)
        self.memory_proj = nn.Linear(penultimate_channels, dim) if config.kv_source == "stage3" else None
        self.query_proj = nn.Conv2d(deepest_channels, dim, kernel_size=1)
        # one projection per shallow stage (none in the paper's model: its state dict is unchanged)
        self.shallow_channels = tuple(shallow_channels)
        self.shallow_proj = nn.ModuleList(nn.Linear(c, dim) for c in shallow_channels)
        self.query_embed = nn.Parameter(torch.zeros(1, config.num_queries, dim))
        nn.init.trunc_normal_(self.query_embed, std=0.02)
        self.decoder = QueryDecoder(config)
        self.head = QualityHead(config)

    def check_input_format(self, x: torch.Tensor) -> None:
        """Raise unless ``x`` is a floating-point (B, 3, H, W) tensor."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape (B, 3, H, W), found {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"expected a 4-D tensor (B, 3, H, W), found shape {tuple(x.shape)}")
        if x.shape[1] != 3:
            raise ValueError(
                f"expected 3 (RGB) channels in dimension 1, found {x.shape[1]} (shape "
                f"{tuple(x.shape)}); convert grayscale/RGBA images to RGB first"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"expected a floating-point tensor with values in [0, 1], found dtype {x.dtype} "
                f"(for uint8 images use x.float() / 255)"
            )

    def check_crop_size(self, x: torch.Tensor) -> None:
        """Raise unless a fixed-size backbone gets crops of its input size."""
        size = self.config.input_size
        if self.fixed_input_size and tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"backbone {self.config.backbone} takes {size}x{size} crops, found "
                f"{x.shape[-2]}x{x.shape[-1]}; use lifeiqa.inference.predict_image for whole images"
            )

    def check_finite(self, x: torch.Tensor) -> None:
        """Raise ValueError if ``x`` holds NaN or infinite values (a host sync)."""
        bad = int((~torch.isfinite(x.detach())).sum())
        if bad:
            raise ValueError(f"expected finite values, found {bad} NaN or infinite value(s) among "
                             f"{x.numel()} (shape {tuple(x.shape)})")

    def check_range(self, x: torch.Tensor) -> None:
        """Raise ValueError unless every value of ``x`` is finite and lies in [0, 1] (host
        syncs)."""
        self.check_finite(x)
        low: torch.Tensor | float
        high: torch.Tensor | float
        low, high = torch.aminmax(x.detach())
        low, high = float(low), float(high)
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            hint = " (0-255 pixel values? divide by 255)" if high > 1.5 else ""
            raise ValueError(f"expected RGB values in [0, 1], found min {low:.4g}, max {high:.4g}{hint}")

    def forward_features(self, x: torch.Tensor) -> BackboneFeatures:
        """Normalise, run the backbone and pool the penultimate (and any shallow) stage."""
        *shallow, penultimate, deepest = self.backbone((x - self.input_mean) / self.input_std)
        pooled_shallow = torch.cat([self.pool(m) for m in shallow], dim=-1) if shallow else None
        return BackboneFeatures(self.pool(penultimate), deepest, pooled_shallow)

    def with_shallow_tokens(self, memory: torch.Tensor, features: BackboneFeatures) -> torch.Tensor:
        """``memory`` with each shallow stage's projected tokens appended (as it is without)."""
        if not self.shallow_proj:
            return memory
        if features.shallow is None:
            raise ValueError(f"this model's keys/values include stages "
                             f"{self.config.extra_kv_stages}, but the features carry none (cached "
                             f"by a model without them?)")
        stages = features.shallow.split(self.shallow_channels, dim=-1)
        return torch.cat([memory, *(proj(t) for proj, t in zip(self.shallow_proj, stages,
                                                                strict=True))], dim=1)

    def forward_head(self, features: BackboneFeatures) -> LifeIQAOutput:
        """Decoder and head on (possibly cached) backbone features."""
        if self.memory_proj is not None:
            # The queries need only the mean of the projected deepest tokens, and the mean of a
            # 1x1 convolution is the convolution of the mean: projecting one vector per image
            # instead of H4*W4 tokens saves ~6% of a CPU decoder training step.
            deepest_mean = features.deepest.mean(dim=(2, 3))
            query_mean = F.linear(deepest_mean, self.query_proj.weight.flatten(1),
                                  self.query_proj.bias).unsqueeze(1)
            memory = self.memory_proj(features.pooled)
        else:
            # Without the stage-3 path (an ablation) queries attend to the deepest stage's tokens.
            memory = self.query_proj(features.deepest).flatten(2).transpose(1, 2)
            query_mean = memory.mean(dim=1, keepdim=True)
        queries = self.query_embed + query_mean
        memory = self.with_shallow_tokens(memory, features)
        decoded = self.decoder(queries, memory)
        # The head (and with it the MoE losses) in its parameters' precision (fp32) under any
        # autocast: a bf16 score on a 0-100 scale has a resolution of 0.5 above 64, fp16 of 1/16.
        with _autocast_off(decoded.device.type):
            return LifeIQAOutput(*self.head(decoded.to(self.head.fc.weight.dtype)))

    def forward(self, x: torch.Tensor, check_range: bool = True) -> LifeIQAOutput:
        """Scores for crops ``x``. ``check_range=False`` accepts any real values (a loss on a
        network's unclamped output); the model then normalises them as they are."""
        self.check_input_format(x)
        self.check_crop_size(x)
        if check_range and not self.training:  # outside training the sync is cheap
            self.check_range(x)
        return self.forward_head(self.forward_features(x))
