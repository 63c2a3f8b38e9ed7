"""Scoring whole images: a deterministic grid of crops per image, predictions averaged.

The authors test on random crops; a fixed grid makes a score a function of the image alone.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F

from .config import DEFAULT_NUM_CROPS
from .model import LifeIQA


def grid_shape(height: int, width: int, count: int) -> tuple[int, int]:
    """(rows, cols) with rows * cols == count, the factor pair closest to the image's aspect."""
    if count < 1:
        raise ValueError(f"num_crops must be at least 1, found {count}")
    aspect = height / width
    pairs = [(r, count // r) for r in range(1, count + 1) if count % r == 0]
    return min(pairs, key=lambda rc: abs(math.log((rc[0] / rc[1]) / aspect)))


def crop_offsets(height: int, width: int, crop: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` crops on a uniform grid spanning the image, row-major."""
    rows, cols = grid_shape(height, width, count)

    def spread(extent: int, n: int) -> list[int]:
        if n == 1:
            return [(extent - crop) // 2]
        return [round(i * (extent - crop) / (n - 1)) for i in range(n)]

    return [(top, left) for top in spread(height, rows) for left in spread(width, cols)]


def upscaled_size(height: int, width: int, crop: int) -> tuple[int, int]:
    """The (height, width) :func:`upscale_to_fit` gives an image of this size: aspect kept, the
    shorter side at least ``crop``. (Asking torch on the meta device instead runs bicubic's
    Python decomposition, about 90 ms an image on a CPU.)"""
    short = min(height, width)
    if short >= crop:
        return height, width
    scale = crop / short
    return max(crop, round(height * scale)), max(crop, round(width * scale))


def upscale_to_fit(images: torch.Tensor, crop: int) -> torch.Tensor:
    """Resize (bicubic, aspect kept) so the shorter side is at least ``crop``; else unchanged.

    Bicubic overshoot is cut back to [0, 1], or to the input's own range where that is wider (a
    loss may feed any real tensor): only overshooting values lose their gradient, and images in
    [0, 1] are treated the same whatever their mode.
    """
    height, width = images.shape[-2:]
    size = upscaled_size(height, width, crop)
    if size == (height, width):
        return images
    resized = F.interpolate(images, size=size, mode="bicubic", align_corners=False)
    low, high = torch.aminmax(images.detach())
    return resized.clamp(low.clamp(max=0), high.clamp(min=1))


def extract_crops(images: torch.Tensor, crop: int, num_crops: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B * num_crops, 3, crop, crop), image-major."""
    images = upscale_to_fit(images, crop)
    height, width = images.shape[-2:]
    offsets = crop_offsets(height, width, crop, num_crops)
    crops = torch.stack([images[:, :, t:t + crop, s:s + crop] for t, s in offsets], dim=1)
    return crops.flatten(0, 1)


def unit_scale(scores: torch.Tensor, label_scale: dict | None) -> torch.Tensor:
    """Map scores from a checkpoint's label scale to [0, 1], higher is better.

    Without a label scale (an untrained model) the scores are returned unchanged.
    """
    if not label_scale:
        return scores
    low, high = float(label_scale["low"]), float(label_scale["high"])
    unit = (scores - low) / (high - low)
    return unit if label_scale["higher_is_better"] else 1 - unit


def score_images(model: LifeIQA, images: torch.Tensor, num_crops: int = DEFAULT_NUM_CROPS,
                 check_range: bool = True) -> torch.Tensor:
    """Quality scores (B,) in [0, 1], higher is better: :func:`predict_image` mapped through the
    model's label scale. This is what the pyiqa metric and ``lifeiqa-bench score`` report."""
    return unit_scale(predict_image(model, images, num_crops, check_range), model.label_scale)


def predict_image(model: LifeIQA, images: torch.Tensor, num_crops: int = DEFAULT_NUM_CROPS,
                  check_range: bool = True) -> torch.Tensor:
    """Raw model scores (B,) for a batch of RGB images in [0, 1] of any size (all one size).

    Each image is scored on ``num_crops`` crops of the model's input size laid on a uniform grid;
    images smaller than a crop are first resized up (bicubic, aspect ratio kept). Gradients flow
    through when enabled, so this also serves as a differentiable loss. Values outside [0, 1]
    raise unless ``check_range=False`` (a loss on a network's unclamped output): the model then
    sees the values as given, normalised by its backbone's mean and std, never clamped (only
    resize overshoot beyond the input's own range is, see :func:`upscale_to_fit`). Non-finite
    values always raise.
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    model.check_input_format(images)
    if check_range:
        model.check_range(images)
    else:
        model.check_finite(images)
    batch = images.shape[0]
    crops = extract_crops(images, model.config.input_size, num_crops)
    return cast(torch.Tensor, model(crops, check_range=check_range).score.view(batch, num_crops).mean(dim=1))
