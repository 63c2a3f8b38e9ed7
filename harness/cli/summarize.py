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
    from harness.fileio import atomic_write_text

    text = api.load_results(args.suite, args.runs).markdown(args.reference)
    if args.out:  # whole or not at all; a failure is one line naming the file
        atomic_write_text(Path(args.out), text + "\n")
    print(text)
    return 0
