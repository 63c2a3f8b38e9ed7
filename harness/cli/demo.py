"""``lifeiqa-bench demo``: the benchmark end to end on synthetic data, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "demo"
HELP = "the benchmark end to end on synthetic data, offline"
DESCRIPTION = ("Generate synthetic KADID-, TID2013- and KonIQ-like datasets, run the comparison "
               "protocol (Life-IQA, its ablations and the baselines on 10 content-disjoint "
               "splits) and cross-dataset transfer on the offline EfficientNet-Lite0 backbone, "
               "and print the leaderboard with the time each stage took.")
EPILOG = "example: lifeiqa-bench demo --runs runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    parser.add_argument("--seed", type=int, default=0, help="base training seed")
    parser.add_argument("--leaderboard-out",
                        help="leaderboard folder (default: RUNS/demo/leaderboard)")
    parser.add_argument("--workers", type=int,
                        help="worker processes for the units (default: one per core, at most "
                             "4; 1 runs them in this process)")
    parser.add_argument("--rerun", metavar="RUNS",
                        help="the runs folder of another demo run (another clone, machine or "
                             "thread count): every marker is re-tested under the rerun noise "
                             "measured from it, and a fragile one is shown hollow (△/▽)")
    parser.add_argument("--rerun-noise", type=float, metavar="SD",
                        help="the sd of a unit's SRCC and PLCC between runs, stated (where no "
                             "--rerun measured it): markers are re-tested under it")
    parser.add_argument("--noise-boards", nargs=2, metavar=("A.json", "B.json"),
                        help="two leaderboard.json files of the same units made under different "
                             "arithmetic (harness/arithmetic.py): every verdict is re-tested "
                             "under the noise measured per cell between them")
    parser.add_argument("--splits", type=int, metavar="N",
                        help="at most N splits in each step (default: the comparison's 10, "
                             "the ablation's and routing's 5): a smaller demo with less "
                             "statistical power, its cells' unit counts say so")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data and a random tiny model: a seconds-long check, "
                             "meaningless numbers")


def run(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    outcome = run_demo(args.runs, args.seed, args.smoke, args.leaderboard_out, progress=True,
                       workers=args.workers, rerun=args.rerun, rerun_noise=args.rerun_noise,
                       splits=args.splits,
                       noise_boards=tuple(args.noise_boards) if args.noise_boards else None)
    for results in outcome.steps:
        print(f"\n{results.suite}: {results.done} run, {results.skipped} already done, "
              f"{len(results.failed)} failed")
        for failure in results.failed:
            job = failure.job
            print(f"FAILED {job.model.name} {job.dataset_label} {job.unit}: {failure.message}",
                  file=sys.stderr)
    path = outcome.leaderboard
    print("\n" + "=" * 80 + "\n" + path.read_text())
    stages = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in outcome.timings)
    print(f"Demo wall time {outcome.seconds / 60:.1f} min ({stages}). Leaderboard written to "
          f"{path} (figures in {path.parent / 'figures'}; as a page: "
          f"{path.parent / 'index.html'}); one folder per unit under "
          f"{Path(args.runs) / 'demo'}/.")
    return 1 if outcome.failed else 0
