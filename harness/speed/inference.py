"""Section 4, inference: seconds per image of Life-IQA against pyiqa's topiq_nr and musiq
(random weights, built without downloads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch

from harness.speed.report import Row, Table
from harness.speed.sizes import Bench

PYIQA_METRICS: dict[str, dict[str, bool]] = {
    # name -> create_metric keyword arguments that keep it offline
    "lifeiqa_effnet_lite0": {"pretrained": False},
    "lifeiqa_swin_t": {"pretrained": False},
    "topiq_nr": {"pretrained": False, "backbone_pretrain": False},
    "musiq": {"pretrained": False},
}


def inference(bench: Bench) -> Table:
    import pyiqa

    from lifeiqa.pyiqa_metric import register

    register()  # a source checkout (no installed entry point) needs it done by hand

    sizes = bench.sizes
    x = torch.rand(sizes.inference_batch, 3, *sizes.inference_size, device=bench.device)
    metrics = {}
    for name in sizes.inference_metrics:
        torch.manual_seed(0)
        metrics[name] = pyiqa.create_metric(name, device=bench.device, **PYIQA_METRICS[name])
    times = bench.median_times({name: cast(Callable[[], object], lambda m=metric: m(x))
                                for name, metric in metrics.items()},
                               warmup=1, repeats=max(2, min(sizes.repeats, 5)))
    reference = times.get("lifeiqa_effnet_lite0")
    rows: tuple[Row, ...] = tuple(
        {"metric": name, "seconds_per_image": seconds / sizes.inference_batch,
         "images_per_s": sizes.inference_batch / seconds,
         "relative_to_lifeiqa_effnet": seconds / reference if reference else None,
         "offline_flags": ", ".join(f"{k}={v}" for k, v in PYIQA_METRICS[name].items())}
        for name, seconds in times.items())
    return Table(rows, (
        f"pyiqa.create_metric(name, **offline_flags) on {bench.device}, batches of "
        f"{sizes.inference_batch} RGB images of {sizes.inference_size[1]}x{sizes.inference_size[0]} "
        "in [0, 1]; each metric's own test-time handling: Life-IQA scores 9 crops of 224 per "
        "image, topiq_nr (CFANet, ResNet-50) the whole image, musiq its multi-scale patches",
        "topiq_nr: pretrained=False skips the CFANet checkpoint, backbone_pretrain=False the "
        "timm ResNet-50 weights; musiq: pretrained=False loads no checkpoint (1 output, as "
        "the KonIQ model); lifeiqa_*: pretrained=False is random initialisation"))
