"""Section 1, decoder overhead: Life-IQA's forward and forward+backward over its bare backbone's."""

from __future__ import annotations

import torch

from harness.engine.train import autocast_for
from harness.speed.report import Table
from harness.speed.sizes import Bench
from lifeiqa import LifeIQA, LifeIQALoss


def decoder_overhead(bench: Bench) -> Table:
    sizes, device, recipe = bench.sizes, bench.device, bench.recipe
    loss_fn = LifeIQALoss()
    rows = []
    for preset in sizes.overhead_presets:
        model = bench.model(preset)
        size = model.config.input_size
        x = torch.rand(sizes.overhead_batch, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        y = torch.rand(sizes.overhead_batch, device=device)

        def normalised(x: torch.Tensor = x, model: LifeIQA = model) -> torch.Tensor:
            return (x - model.input_mean) / model.input_std

        @torch.no_grad()
        def backbone_forward(model: LifeIQA = model) -> None:
            with autocast_for(device, recipe):
                model.backbone(normalised())

        @torch.no_grad()
        def lifeiqa_forward(model: LifeIQA = model, x: torch.Tensor = x) -> None:
            with autocast_for(device, recipe):
                model.forward_head(model.forward_features(x))

        def backbone_train(model: LifeIQA = model) -> None:
            with autocast_for(device, recipe):
                loss = sum(f.float().mean() for f in model.backbone(normalised()))
            loss.backward()
            model.zero_grad(set_to_none=True)

        def lifeiqa_train(model: LifeIQA = model, x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            with autocast_for(device, recipe):
                loss = loss_fn(model(x), y)
            loss.backward()
            model.zero_grad(set_to_none=True)

        model.eval()
        forward = bench.median_times({"backbone": backbone_forward, "lifeiqa": lifeiqa_forward})
        model.train()
        train = bench.median_times({"backbone": backbone_train, "lifeiqa": lifeiqa_train})
        ratio = train["lifeiqa"] / train["backbone"]
        target = overhead_target(preset, device)
        rows.append({
            "preset": preset, "batch": sizes.overhead_batch,
            "backbone_fwd_ms": 1e3 * forward["backbone"], "lifeiqa_fwd_ms": 1e3 * forward["lifeiqa"],
            "fwd_ratio": forward["lifeiqa"] / forward["backbone"],
            "backbone_fwdbwd_ms": 1e3 * train["backbone"], "lifeiqa_fwdbwd_ms": 1e3 * train["lifeiqa"],
            "fwdbwd_ratio": ratio,
            "target": f"<= {target:.2f}" if target else "", "met": ratio <= target if target else None,
        })
        del model
    return Table(tuple(rows), (
        "backbone: the timm feature extractor on the normalised batch (its last two stages); "
        "Life-IQA: the whole model (normalise, backbone, pooling, decoder, MoE head); forward "
        "in eval mode without gradients, forward+backward in train mode with the training loss",
        f"random initialisation, {bench.precision}, channels-last, batch {sizes.overhead_batch} "
        "of 224x224 crops"))


def overhead_target(preset: str, device: torch.device) -> float | None:
    """The forward+backward ratio a preset should stay within on a device kind, if one is set."""
    if device.type == "cpu" and preset == "lifeiqa_effnet_lite0":
        return 1.10
    if device.type == "cuda" and preset == "lifeiqa_swin_b":
        return 1.05
    return None
