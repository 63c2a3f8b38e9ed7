"""``lifeiqa-bench leaderboard``: the markdown leaderboard and figures of a suite."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "leaderboard"
HELP = "markdown leaderboard with figures for a suite (models x datasets)"
DESCRIPTION = ("Aggregate a suite (a folder of the results store; nested suites included) into "
               "markdown tables per protocol: medians with order-statistic intervals and n, "
               "Holm-corrected significance against Life-IQA, missing and failed units named, "
               "published numbers side by side, figures; leaderboard.json holds the raw and "
               "adjusted p-values; --html DIR adds a static page made from it (sortable, "
               "filterable tables; opens from disk).")
EPILOG = ("examples:\n  lifeiqa-bench leaderboard demo --out leaderboards/synthetic"
          "\n  lifeiqa-bench leaderboard demo --out board --html board")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", help="suite folder under --runs (e.g. demo or demo/comparison)")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", help="output folder (default: RUNS/SUITE/leaderboard)")
    parser.add_argument("--reference", help="model the markers compare against (default: the "
                                            "run's Life-IQA preset, never a baseline)")
    parser.add_argument("--published", default=None,
                        help="published scores YAML shown beside the reproductions (default: "
                             "leaderboards/published.yaml; 'none' to leave them out)")
    parser.add_argument("--title", help="page title")
    parser.add_argument("--html", metavar="DIR",
                        help="also write DIR/index.html: the leaderboard as a page made from "
                             "leaderboard.json, self-contained (opens from disk, no network); "
                             "its links to each unit's result.json are relative to DIR")
    noise = parser.add_argument_group(
        "rerun noise", "re-test every verdict with each unit perturbed by its rerun noise; one "
                       "given again in under 95%% of the re-tests is fragile (△/▽ hollow "
                       "markers; ◇ where a rerun may add a marker)")
    noise.add_argument("--rerun", metavar="RUNS/SUITE",
                       help="the same suite run again (another clone, machine or thread count): "
                            "each cell's rerun sd is measured from the differences of its units")
    noise.add_argument("--rerun-noise", type=float, metavar="SD",
                       help="the rerun sd of a unit's SRCC and PLCC where no rerun measured it")
    noise.add_argument("--noise-boards", nargs=2, metavar=("A.json", "B.json"),
                       help="two leaderboard.json files of the same units made under different "
                            "arithmetic: each cell's rerun sd is measured between them")


def run(args: argparse.Namespace) -> int:
    from harness import api

    published = None if args.published == "none" else (args.published or "default")
    out = args.out or str(Path(args.runs) / args.suite / "leaderboard")
    rerun = None
    if args.rerun:
        folder = Path(args.rerun)
        rerun = api.load_results(folder.name, folder.parent)
    path = api.leaderboard(api.load_results(args.suite, args.runs), out, published,
                           args.reference, args.title, rerun, args.rerun_noise, html=args.html,
                           noise_boards=tuple(args.noise_boards) if args.noise_boards else None)
    print(path.read_text())
    page = f", page {Path(args.html) / 'index.html'}" if args.html else ""
    print(f"written to {path} (figures in {path.parent / 'figures'}, p-values in "
          f"{path.parent / 'leaderboard.json'}{page})")
    return 0
