"""Section 5, training: images/s through ``train_finetune``, the epoch against the model steps
alone, and on a GPU the model FLOP utilisation."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from harness.engine.train import Stepper, train_finetune
from harness.speed.flops import PEAK_SOURCE, device_peak, model_flop_utilisation, train_flops_per_image
from harness.speed.report import Table
from harness.speed.sizes import Bench
from lifeiqa import LifeIQA


def training(bench: Bench) -> Table:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.train_images]
    samples = sizes.train_images * sizes.train_crops
    steps = math.ceil(samples / sizes.train_batch)
    peak, peak_label = device_peak(device)
    rows = []
    for preset in sizes.train_presets:
        recipe = replace(bench.recipe, name="speed", model=preset, epochs=sizes.train_epochs,
                         warmup_epochs=0, batch_size=sizes.train_batch, lr=1e-5,
                         train_crops=sizes.train_crops, test_crops=1)
        model = bench.model(preset)
        flops = train_flops_per_image(model, device, bench.recipe)
        stepper = Stepper(model, recipe, steps, device, lambda name: True)
        forward = torch.compile(model) if recipe.compile else model
        size = model.config.input_size
        x = torch.rand(sizes.train_batch, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        y = torch.rand(sizes.train_batch, device=device)

        def model_steps(stepper: Stepper = stepper, forward: Callable[..., Any] = forward,
                        x: torch.Tensor = x, y: torch.Tensor = y, model: LifeIQA = model) -> None:
            model.train()
            total = torch.zeros((), device=device)
            for _ in range(steps):
                total += stepper(lambda: forward(x), y)
            float(total)  # one host sync, as the epoch loop does

        # the steps alone are timed before and after the epochs, so that a change in the
        # machine's load hits both sides alike
        repeats = max(1, sizes.repeats // 5)
        alone_times = [bench.median_times({"steps": model_steps}, 1, repeats)["steps"]]
        ends: list[float] = []

        def mark_epoch(_: dict, ends: list[float] = ends) -> None:
            bench.sync()
            ends.append(time.perf_counter())

        train_finetune(model, recipe, records, np.array([r.score for r in records]), records[:2],
                       np.zeros(2), bench.cache, device=device, seed=0,
                       on_epoch=mark_epoch,
                       workers=bench.workers)
        epoch = float(statistics.median(np.diff(ends)))  # the first epoch (warmup) has no start mark
        alone_times.append(bench.median_times({"steps": model_steps}, 0, repeats)["steps"])
        alone = statistics.mean(alone_times)
        row: dict[str, Any] = {
            "preset": preset, "batch": sizes.train_batch, "steps_per_epoch": steps,
            "epoch_images_per_s": samples / epoch, "steps_alone_images_per_s": samples / alone,
            "epoch_over_steps": epoch / alone, "train_gflop_per_image": flops / 1e9,
            "mfu": None, "mfu_steps_alone": None}
        if peak:
            row["mfu"] = model_flop_utilisation(flops, samples, epoch, peak)
            row["mfu_steps_alone"] = model_flop_utilisation(flops, samples, alone, peak)
        if device.type == "cuda" and preset == "lifeiqa_swin_b":
            row["target"] = ">= 35% of bf16 peak, epoch <= 1.1x steps"
            row["met"] = bool(row["mfu"] and row["mfu"] >= 0.35 and row["epoch_over_steps"] <= 1.1)
        rows.append(row)
        del model, stepper
    return Table(tuple(rows), (
        f"train_finetune on {sizes.train_images} images x {sizes.train_crops} crops "
        f"({samples} samples, {steps} steps of {sizes.train_batch}) per epoch, "
        f"{sizes.train_epochs} epochs, the first not timed; epoch = the median of the others, "
        "crops cut from the decoded cache in the background; steps alone = the same number "
        "of optimiser steps on one batch already on the device, timed before and after",
        f"precision {bench.precision}, {compiled_by(bench.recipe.compile)}; peak: {peak_label}"
        + (f" {peak} TFLOP/s ({PEAK_SOURCE})" if peak else "")))


def compiled_by(compiled: bool) -> str:
    """Whether the training forward was compiled, and by what: inductor, unless torch's override
    variable named other backends (a debugging aid; the tests use it to skip inductor's C++
    build on a CPU), whose figures are then not inductor's."""
    override = os.environ.get("TORCH_COMPILE_OVERRIDE_BACKENDS")
    if not compiled:
        return "compile=False"
    return (f"compile=True (backends {override!r}, from TORCH_COMPILE_OVERRIDE_BACKENDS)"
            if override else "compile=True (inductor)")
