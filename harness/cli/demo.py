"""``lifeiqa-bench demo``: the benchmark end to end on synthetic data, offline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "demo"
HELP = "the benchmark end to end on synthetic data, offline (under 10 min on CPU)"
DESCRIPTION = ("Generate synthetic KADID-, TID2013- and KonIQ-like datasets, run the splits "
               "protocol with ablations and cross-dataset transfer on the offline "
               "EfficientNet-Lite0 backbone, and print the leaderboard.")
EPILOG = "example: lifeiqa-bench demo --runs runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    parser.add_argument("--seed", type=int, default=0, help="base training seed")
    parser.add_argument("--leaderboard-out",
                        help="leaderboard folder (default: RUNS/demo/leaderboard)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data and a random tiny model: a seconds-long check, "
                             "meaningless numbers")


def run(args: argparse.Namespace) -> int:
    from harness.cli.run import run_and_report
    from harness.demo import command_line, demo_leaderboard, demo_steps

    start = time.perf_counter()
    failures = 0
    for options in demo_steps(args.runs, args.seed, args.smoke):
        print(f"\n$ {command_line(options)}")
        failures += run_and_report(options) != 0
    elapsed = time.perf_counter() - start
    path = demo_leaderboard(args.runs, args.leaderboard_out)
    print("\n" + "=" * 80 + "\n" + path.read_text())
    print(f"Demo wall time {elapsed / 60:.1f} min. Leaderboard written to {path} (figures in "
          f"{path.parent / 'figures'}); one folder per unit under {Path(args.runs) / 'demo'}/.")
    return 1 if failures else 0
