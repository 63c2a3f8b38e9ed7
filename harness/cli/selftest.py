"""``lifeiqa-bench selftest stats``: the statistics' self-test (harness/results/selftest.py)."""

from __future__ import annotations

import argparse

NAME = "selftest"
HELP = ("run the leaderboard's statistics on simulated results of known truth; exit 1 when a "
        "figure is outside its bound")
DESCRIPTION = ("stats: simulated unit results go through the leaderboard's own aggregation, "
               "paired Wilcoxon test, Holm adjustment and markers. Bounded figures (each PASS or "
               "FAIL): the coverage of the median interval at n = 3, 5, 10 against the coverage "
               "it states; the family-wise false-alarm rate of ▲/▼ under the null in a 15-model "
               "x 7-dataset table of 10 and 20 splits (<= 0.05 plus a binomial margin); the "
               "power to mark a gain of 0.02 over 10 splits with paired sd 0.01 (>= 0.9 less a "
               "margin); Holm against Bonferroni on tables with real gains and nulls (Holm ahead "
               "in >= 25 % of tables less a margin, never behind, false markers <= 0.05 plus a "
               "margin, markers in p-value order). Exit status 1 when any figure is out. "
               "Seeded; about two minutes on one core, with the unbounded power grid (--quick: "
               "the bounded figures at smaller sizes, about 10 s, what CI runs).")
EPILOG = "example: lifeiqa-bench selftest stats --seed 0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["stats"], help="what to test: stats")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="the bounded figures only, at the CI's sizes (bounds set for them)")


def run(args: argparse.Namespace) -> int:
    from harness.results.selftest import DEFAULT_SIZE, QUICK_SIZE, run_stats_selftest

    report = run_stats_selftest(args.seed, QUICK_SIZE if args.quick else DEFAULT_SIZE)
    print(report.text())
    return 0 if report.passed else 1
