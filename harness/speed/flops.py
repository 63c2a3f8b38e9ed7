"""Model FLOPs of a training step, the GPUs' dense BF16 peaks, and model FLOP utilisation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

import lifeiqa
from harness.engine.train import autocast_for
from harness.plan.recipes import Recipe
from lifeiqa import LifeIQALoss

# Dense BF16 tensor-core peaks in TFLOP/s: half the "with sparsity" figures of NVIDIA's data
# sheets (H100 Tensor Core GPU data sheet, H200 product brief, A100 data sheet). Matched against
# torch.cuda.get_device_name in order; the first match wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    (r"H200.*NVL", 835.5, "H200 NVL"),
    (r"H200", 989.5, "H200 SXM"),
    (r"H100.*NVL", 835.5, "H100 NVL"),
    (r"H100.*PCIe", 756.5, "H100 PCIe"),
    (r"H100", 989.5, "H100 SXM"),
    (r"A100", 312.0, "A100"),
)
PEAK_SOURCE = ("NVIDIA data sheets, dense BF16 tensor core (half the sparse figure): "
               "H100 SXM 989.5, H100 PCIe 756.5, H100 NVL 835.5, H200 989.5, H200 NVL 835.5, "
               "A100 312 TFLOP/s")


def peak_bf16_tflops(device_name: str) -> tuple[float | None, str]:
    """A CUDA device's dense BF16 peak (TFLOP/s) and its label, or None and why not."""
    for pattern, peak, label in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peak, label
    return None, f"unknown device {device_name!r}: MFU not reported"


def device_peak(device: torch.device) -> tuple[float | None, str]:
    """:func:`peak_bf16_tflops` of ``device``; None (and why) for a device that is not CUDA."""
    if device.type != "cuda":
        return None, f"no peak table for {device.type}: MFU not reported"
    return peak_bf16_tflops(torch.cuda.get_device_name(device))


def model_flop_utilisation(flops_per_image: float, images: int, seconds: float,
                           peak_tflops: float) -> float:
    """The fraction of the peak that ``images`` training images in ``seconds`` amount to."""
    return flops_per_image * images / seconds / (peak_tflops * 1e12)


def conv_backward_flop(grad_out_shape: Sequence[int], x_shape: Sequence[int], w_shape: Sequence[int],
                       *args: Any, out_shape: tuple[Sequence[int] | None, ...], **kwargs: Any) -> int:
    """torch's count for a convolution's backward, with its weight gradient counted once: torch
    (2.x) counts a grouped convolution's weight gradient ``groups`` times, 20x too many FLOPs
    for EfficientNet's depthwise convolutions."""
    from torch.utils.flop_counter import conv_backward_flop as torch_count
    from torch.utils.flop_counter import conv_flop_count

    # torch's registration wraps the count (functools.wraps) and annotates it without __wrapped__
    flops: int = torch_count.__wrapped__(  # type: ignore[attr-defined]
        grad_out_shape, x_shape, w_shape, *args, out_shape=out_shape, **kwargs)
    transposed, groups, output_mask = args[4], args[6], args[7]
    if output_mask[1] and groups > 1 and not transposed:
        def swap(shape: Sequence[int]) -> list[int]:
            return [shape[1], shape[0], *shape[2:]]

        weight_shape = out_shape[1]
        assert weight_shape is not None  # output_mask[1]: the weight's gradient is computed
        weight = conv_flop_count(swap(x_shape), swap(grad_out_shape), swap(weight_shape))
        flops -= weight - weight // groups
    return flops


def train_flops_per_image(model: lifeiqa.LifeIQA, device: torch.device, recipe: Recipe) -> float:
    """Model FLOPs of one training step (forward and backward) per image, counted by
    torch.utils.flop_counter (matrix products, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = model.config.input_size
    x = torch.rand(2, 3, size, size, device=device)
    model.train()
    fixed = {torch.ops.aten.convolution_backward: conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=fixed) as counter:
        with autocast_for(device, recipe):
            loss = LifeIQALoss()(model(x), torch.zeros(2, device=device))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops() / 2)
