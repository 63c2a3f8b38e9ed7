"""``lifeiqa-bench published``: the published scores with their sources."""

from __future__ import annotations

import argparse
import sys

NAME = "published"
HELP = ("published scores with their sources (leaderboards/published.yaml, and pyiqa's own "
        "figures in leaderboards/pyiqa/)")
DESCRIPTION = ("Print reference scores: each row's model, dataset, protocol, metrics, epoch "
               "selection, provenance (second-hand, checked or measured), the images it was "
               "computed on where known, and its source. By default both bundled files: the "
               "papers' numbers (leaderboards/published.yaml) and pyiqa's zero-shot benchmark "
               "figures (leaderboards/pyiqa/published.yaml, read from pyiqa's CSV files; "
               "full-reference rows and datasets the harness lacks are listed as not "
               "reproducible here).")
EPILOG = ("examples:\n  lifeiqa-bench published --dataset csiq --format csv"
          "\n  lifeiqa-bench published --model pyiqa:niqe"
          "\n  lifeiqa-bench published --file leaderboards/golden-synthetic.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", action="append", metavar="REF.yaml",
                        help="reference YAML (repeatable; default: leaderboards/published.yaml "
                             "and leaderboards/pyiqa/published.yaml)")
    parser.add_argument("--dataset", help="only rows on this dataset (either side of a pair)")
    parser.add_argument("--model", help="only rows whose model name contains this, or that list "
                                        "it as a harness model (e.g. pyiqa:niqe)")
    parser.add_argument("--format", default="markdown", choices=["markdown", "csv"])


def run(args: argparse.Namespace) -> int:
    from harness.reporting.published import (
        BUNDLED_FILES,
        csv_text,
        load_reference,
        markdown,
        select,
    )

    references = [load_reference(path) for path in (args.file or BUNDLED_FILES)]
    entries = [e for reference in references
               for e in select(reference.entries, args.dataset, args.model)]
    if not entries:
        print(f"no entries in {', '.join(r.path for r in references)} for "
              f"dataset={args.dataset!r} model={args.model!r}", file=sys.stderr)
        return 1
    if args.format == "csv":
        print(csv_text(entries), end="")
    else:
        print(markdown(entries))
    return 0
