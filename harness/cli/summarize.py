"""``lifeiqa-bench summarize``: a suite's results aggregated into tables."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "summarize"
HELP = "aggregate a suite's results into tables"
EPILOG = "example: lifeiqa-bench summarize splits --reference lifeiqa_effnet_lite0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--reference", help="model the p-values compare against (default: the "
                                            "run's Life-IQA preset, never a baseline)")
    parser.add_argument("--out", help="also write the tables to this markdown file")


def run(args: argparse.Namespace) -> int:
    from harness import api

    text = api.load_results(args.suite, args.runs).markdown(args.reference)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0
