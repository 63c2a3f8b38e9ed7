"""Timing the compared variants of a section: in alternation, synchronising the device."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on CPU), so a timer sees it finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def median_times(device: torch.device, variants: Mapping[str, Callable[[], object]], warmup: int,
                 repeats: int) -> dict[str, float]:
    """Median seconds of each variant over ``repeats`` rounds after ``warmup`` untimed ones; the
    variants run in alternation so that a change in the machine's load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, run in variants.items():
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
