"""``lifeiqa-bench score``: score image files and folders into a CSV (path,score)."""

from __future__ import annotations

import argparse
import sys

from lifeiqa.config import DEFAULT_NUM_CROPS

NAME = "score"
HELP = "score image files and folders into a CSV (path,score)"
DESCRIPTION = ("Score images with Life-IQA weights: a checkpoint file, or the weights registered "
               "for a name (lifeiqa-bench weights add). Scores are in [0, 1], higher is better "
               "(mapped through the checkpoint's label scale), as pyiqa reports them.")
EPILOG = ("examples:\n  lifeiqa-bench score photos/ --model lifeiqa          # its registered weights"
          "\n  lifeiqa-bench score photos/ 'more/*.jpg' --checkpoint model.safetensors "
          "--out scores.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--checkpoint",
                        help="a lifeiqa .safetensors checkpoint (or a .pth with --model); "
                             "default: the weights registered for --model")
    parser.add_argument("--model", dest="model_name",
                        help="without --checkpoint: a registered-weights name (lifeiqa, "
                             "lifeiqa_swin_t, lifeiqa_effnet_lite0; default lifeiqa) or its "
                             "preset; with --checkpoint: the preset of a plain state dict")
    parser.add_argument("--out", default="scores.csv",
                        help="CSV to write (path,score); default scores.csv")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--num-crops", type=int, default=DEFAULT_NUM_CROPS,
                        help="crops per image on a uniform grid, averaged")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--untrained", action="store_true",
                        help="allow a smoke run without a checkpoint (scores are meaningless)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="skip paths already in --out")
    group.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from harness.engine.score import score_images

    report = score_images(args.inputs, args.out, args.checkpoint, args.model_name,
                          args.batch_size, args.device, args.num_crops, args.untrained,
                          args.resume, args.overwrite, progress=True)
    print(f"scored {report.scored} image(s) into {report.out}"
          + (f" ({report.already_there} already there)" if report.already_there else ""))
    if report.failures:
        print(f"{len(report.failures)} input(s) failed:", file=sys.stderr)
        for failure in report.failures:
            print(f"  {failure.path}: {failure.reason}", file=sys.stderr)
        return 1
    return 0
