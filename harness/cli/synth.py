"""``lifeiqa-bench synth``: a synthetic dataset in a real dataset's release layout."""

from __future__ import annotations

import argparse

from harness.data.synth.generate import SIZES

NAME = "synth"
HELP = "write a synthetic dataset in a real dataset's release layout"
DESCRIPTION = ("Generate a synthetic IQA dataset from images that ship with installed packages, "
               "in the exact file layout of KADID-10k, TID2013, KonIQ-10k or CSIQ (DMOS, lower "
               "is better), labelled by a consensus of full-reference metrics. Deterministic per "
               "seed.")
EPILOG = "example: lifeiqa-bench synth --like kadid10k --out data/synth-kadid --size small"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--like", required=True, choices=["kadid10k", "tid2013", "koniq10k", "csiq"])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", default="default", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rater-noise", type=float, default=0.0,
                        help="std of Gaussian label noise, as a fraction of the score range")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")


def run(args: argparse.Namespace) -> int:
    from harness.data.synth.generate import synthesize

    out = synthesize(args.like, args.out, args.size, args.seed, args.rater_noise, args.force)
    print(f"synthetic {args.like}-like dataset ({args.size}, seed {args.seed}) in {out}")
    return 0
