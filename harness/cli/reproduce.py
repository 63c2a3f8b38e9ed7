"""``lifeiqa-bench reproduce``: a row of the paper, by the authors' recipe and rule, beside the
last-epoch number of the same runs, checked against the published scores."""

from __future__ import annotations

import argparse
import sys

from harness.reproduce import DATASETS, SPLITS, TINY

NAME = "reproduce"
HELP = "reproduce a row of the paper: the authors' recipe and rule beside the last epoch"
DESCRIPTION = (f"Train the splits protocol ({SPLITS} splits) with the authors' recipe for DATASET as "
               "their code runs it (timm schedule, fp16, random test crops seeded per unit, their "
               "image handling), then print the published numbers, the reproduction under their "
               "reporting rule (best test-SRCC epoch, PLCC a running maximum: test-oracle) and the "
               "last-epoch numbers of the same runs, and check against "
               "leaderboards/published.yaml. Without --data-root it runs on the dataset's "
               "synthetic counterpart.")
EPILOG = ("examples:\n  lifeiqa-bench reproduce --dataset csiq --data-root ~/iqa --device cuda"
          "\n  lifeiqa-bench reproduce --dataset csiq --tiny          # CPU smoke test, synthetic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=list(DATASETS),
                        help="the dataset whose row to reproduce")
    parser.add_argument("--data-root", help="folder holding <dataset>/ (default: synthetic data)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--splits", type=int,
                        help=f"number of splits (default {SPLITS}; --tiny: {TINY['splits']})")
    parser.add_argument("--seed", type=int, default=0, help="base training seed")
    parser.add_argument("--model", help="model preset (default: the recipe's, e.g. "
                                        "lifeiqa_swin_b_csiq)")
    parser.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    parser.add_argument("--force", action="store_true", help="rerun units that have results")
    parser.add_argument("--tiny", action="store_true",
                        help=f"CPU smoke test: the synthetic counterpart ({TINY['synth_size']}), "
                             f"{TINY['model']}, {TINY['splits']} splits, {TINY['epochs']} epochs "
                             f"with the schedule's shape kept")


def run(args: argparse.Namespace) -> int:
    from harness.reproduce import reproduce

    reproduction = reproduce(args.dataset, data_root=args.data_root, device=args.device,
                             splits=args.splits, runs=args.runs, seed=args.seed, model=args.model,
                             tiny=args.tiny, force=args.force, progress=True)
    results = reproduction.results
    print(f"\n{results.done} run, {results.skipped} already done, {len(results.failed)} failed "
          f"-> {results.runs / reproduction.results.suite}\n")
    print(reproduction.table())
    if reproduction.check is not None:
        print(f"\n{reproduction.check.text()}")
    for failure in results.failed:
        job = failure.job
        print(f"FAILED {job.model.name} {job.dataset_label} {job.unit}: {failure.message}",
              file=sys.stderr)
    failed_check = reproduction.check is not None and not reproduction.check.passed
    return 1 if results.failed or failed_check or not results.units else 0
