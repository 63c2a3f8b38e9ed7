"""One model of each kind a plug-in can add, registered when lifeiqa-bench loads the entry
point ``lifeiqa_bench.models: example`` (or ``--include lifeiqa_example_plugin.models``).

Every factory takes the row's model arguments as keywords: ``example_tiny_cnn(width=8)`` in a
protocol or on the command line builds ``TinyCNN(width=8)``, and the arguments become part of
each unit's config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import harness

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


@harness.register_scorer(
    "example_sharpness", lower_better=False,
    description="log variance of the Laplacian of the grey image (a classic sharpness cue); "
                "no training, no opinion scores")
class LaplacianSharpness:
    """Zero-shot: any object called on (B, 3, H, W) images in [0, 1] that returns (B,) scores."""

    def __init__(self, blur: int = 1) -> None:
        # ``blur``: a box filter's width applied first, so noise counts less than edges
        if blur < 1:
            raise ValueError(f"blur {blur}: expected an odd width >= 1")
        self.blur = blur

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        grey = images.mean(dim=1, keepdim=True) * 255
        if self.blur > 1:
            grey = F.avg_pool2d(grey, self.blur, stride=1, padding=self.blur // 2)
        edges = F.conv2d(grey, _LAPLACIAN.to(grey), padding=1)
        return torch.log1p(edges.flatten(1).var(dim=1))


@harness.register_image_model(
    "example_tiny_cnn", recipe={"crop_size": 64, "label_scale": "unit"},
    description="a three-layer CNN trained from pixels on 64x64 crops (scores on [0, 1])")
class TinyCNN(nn.Module):
    """Trainable: an ``nn.Module`` of (B, 3, crop, crop) crops in [0, 1] -> (B,) scores."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
        self.score = nn.Linear(2 * width, 1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.score(self.body(crops).mean(dim=(2, 3))).squeeze(1)


@harness.register_feature_head(
    "example_mlp_head",
    description="an MLP on the mean of the pooled stage-3 tokens and of the deepest stage "
                "(a head without attention, on Life-IQA's cached features)")
class MeanPoolMLP(nn.Module):
    """A feature head: built from the backbone's feature shapes, then
    ``lifeiqa.BackboneFeatures`` (pooled (B, tokens, C3), deepest (B, C4, H, W)) -> (B,)."""

    def __init__(self, features: harness.FeatureShapes, hidden: int = 64) -> None:
        super().__init__()
        width = features.pooled_channels + features.deepest_channels
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(),
                                 nn.Linear(hidden, 1))

    def forward(self, features) -> torch.Tensor:
        summary = torch.cat([features.pooled.mean(dim=1), features.deepest.mean(dim=(2, 3))], 1)
        return self.net(summary).squeeze(1)
