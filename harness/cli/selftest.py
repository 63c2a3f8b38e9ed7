"""``lifeiqa-bench selftest stats``: the statistics' self-test (harness/results/selftest.py)."""

from __future__ import annotations

import argparse

NAME = "selftest"
HELP = "simulate the harness's statistics on data with a known truth and print how they fare"
DESCRIPTION = ("stats: the coverage of the median interval at n = 3, 5, 10; the family-wise "
               "false-alarm rate of the leaderboard's ▲/▼ under the null for a 15-model x "
               "7-dataset table; the power to mark a true SRCC gain of 0.01 and 0.02 over 10 "
               "and 20 splits. Seeded; about half a minute on one core (--quick: seconds, "
               "coarser).")
EPILOG = "example: lifeiqa-bench selftest stats --seed 0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["stats"], help="what to test: stats")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the simulated draws (coarser figures, for a smoke test)")


def run(args: argparse.Namespace) -> int:
    from harness.results.selftest import SelfTestSize, run_stats_selftest

    size = SelfTestSize(400, 200, 200, 1000, 4000) if args.quick else SelfTestSize()
    print(run_stats_selftest(args.seed, size).text())
    return 0
