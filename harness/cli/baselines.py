"""``lifeiqa-bench baselines``: the registered baselines and what each needs."""

from __future__ import annotations

import argparse

NAME = "baselines"
HELP = "list the registered baselines and what each needs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from harness.plan.baselines import get_baseline, list_baselines

    rows = []
    for name in list_baselines():
        b = get_baseline(name)
        trained_on = "" if b.trained_on is None else (", ".join(b.trained_on) or "no opinion scores")
        rows.append([name, b.family, b.needs, trained_on, b.description])
    print(tabulate(rows, headers=["name", "family", "needs", "weights fitted on", "what"],
                   tablefmt="simple", maxcolwidths=[None, None, 24, 14, 60]))
    print("\nAlso: pyiqa:<metric> for any pyiqa NR metric whose weights are cached locally "
          "(evaluated zero-shot; the data its weights saw is read from pyiqa's config).")
    return 0
