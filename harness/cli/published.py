"""``lifeiqa-bench published``: the published scores with their sources."""

from __future__ import annotations

import argparse
import sys

NAME = "published"
HELP = "published scores with their sources (leaderboards/published.yaml)"
DESCRIPTION = ("Print reference scores: each row's model, dataset, protocol, metrics, epoch "
               "selection, provenance (second-hand, checked or measured) and source.")
EPILOG = "example: lifeiqa-bench published --dataset csiq --format csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="reference YAML (default: leaderboards/published.yaml)")
    parser.add_argument("--dataset", help="only rows on this dataset (either side of a pair)")
    parser.add_argument("--model", help="only rows whose model name contains this, or that list "
                                        "it as a harness model")
    parser.add_argument("--format", default="markdown", choices=["markdown", "csv"])


def run(args: argparse.Namespace) -> int:
    from harness.reporting.published import csv_text, load_published, markdown, select

    reference = load_published(args.file)
    entries = select(reference.entries, args.dataset, args.model)
    if not entries:
        print(f"no entries in {reference.path} for dataset={args.dataset!r} "
              f"model={args.model!r}", file=sys.stderr)
        return 1
    if args.format == "csv":
        print(csv_text(entries), end="")
    else:
        print(markdown(entries))
    return 0
