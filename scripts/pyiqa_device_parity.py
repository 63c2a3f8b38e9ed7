"""Do the pyiqa metric's scores agree across devices? One seeded checkpoint, fixed images,
``pyiqa.create_metric("lifeiqa_effnet_lite0", pretrained_model_path=...)`` on each device,
compared with the same checkpoint scored on the CPU by ``lifeiqa.score_images``.

    python scripts/pyiqa_device_parity.py --devices cpu,cuda --out parity.json

Prints (and with ``--out`` writes) a JSON report; exits 1 if a device's scores differ from the
reference by more than ``--tolerance`` (1e-2 on the [0, 1] scale pyiqa reports). The tests run
the CPU half, ``scripts/gpu_check.sh`` the CUDA half. No network: random weights, no downloads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pyiqa
import torch

import lifeiqa
from lifeiqa import LabelScale

NAME = "lifeiqa_effnet_lite0"


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A seeded random model on the metric's architecture, on a 1-5 label scale (so score
    differences are not shrunk by a wide scale)."""
    torch.manual_seed(seed)
    model = lifeiqa.create_model(NAME)
    return lifeiqa.save_checkpoint(model, path, LabelScale("native", 1.0, 5.0, True, "parity"))


def make_images(seed: int = 0) -> list[torch.Tensor]:
    """Two sizes: one scored on crops as it is, one resized up first."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 3, 300, 400, generator=generator),
            torch.rand(1, 3, 150, 200, generator=generator)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="cpu", help="comma-separated, e.g. cpu,cuda")
    parser.add_argument("--tolerance", type=float, default=1e-2)
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = make_checkpoint(Path(folder) / "parity.safetensors")
        images = make_images()
        reference_model = lifeiqa.load_checkpoint(checkpoint)
        with torch.no_grad():
            reference = torch.cat([lifeiqa.score_images(reference_model, x)
                                   for x in images]).double()
        report = {"reference": "lifeiqa.score_images on cpu", "tolerance": args.tolerance,
                  "scores": {"reference": reference.tolist()}, "max_abs_difference": {}}
        for device in args.devices.split(","):
            metric = pyiqa.create_metric(NAME, pretrained_model_path=str(checkpoint),
                                         device=device)
            scores = torch.cat([metric(x).view(-1).cpu() for x in images]).double()
            report["scores"][device] = scores.tolist()
            report["max_abs_difference"][device] = float((scores - reference).abs().max())
    report["ok"] = all(d <= args.tolerance for d in report["max_abs_difference"].values())
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
