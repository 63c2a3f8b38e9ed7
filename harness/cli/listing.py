"""``lifeiqa-bench list WHAT``: the protocols, recipes, presets, models or datasets a run can
name (the models: Life-IQA's variants, the registry's built-ins and every plug-in's)."""

from __future__ import annotations

import argparse
import json

from harness.cli.run import add_include_argument

NAME = "list"
HELP = "list the protocols, recipes, presets, models or datasets a run can name"
EPILOG = ("examples:\n  lifeiqa-bench list models                 # registry: built-ins and plug-ins"
          "\n  lifeiqa-bench list models --include my_models.py"
          "\n  lifeiqa-bench list protocols --json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", help="protocols, recipes, presets, models or datasets")
    parser.add_argument("--json", action="store_true", help="one JSON array, for programs")
    add_include_argument(parser)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.api import catalog

    rows = catalog(args.what, args.include)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    wide = {"description": 60, "needs": 24, "title": 30}
    headers = list(rows[0]) if rows else []
    print(tabulate([list(r.values()) for r in rows], headers=headers, tablefmt="simple",
                   maxcolwidths=[wide.get(h) for h in headers]))
    if args.what == "models":
        print("\nAlso: pyiqa:<metric> (any pyiqa NR metric whose weights are cached locally, "
              "zero-shot) and pyiqa-arch:<Class> (any pyiqa network, trained); model arguments "
              "as NAME(key=value,...).")
    return 0
