"""Reproducing a row of the paper: the ``splits`` protocol with the authors' recipe, reported by
their rule beside the last-epoch number of the same runs, and checked against the published
scores (``lifeiqa-bench reproduce --dataset csiq --data-root DIR --device cuda``).

Each split trains once, as the authors' code trains: the ``authors_<dataset>`` recipe (timm's
schedulers as their ``build_scheduler`` builds them, fp16 autocast with a gradient scaler, the
last partial batch dropped), their test crops (``test_crops="random"``: PATCH_NUM random crops
per test image, drawn afresh at every evaluation, seeded per unit), their image handling
(``image_policy="authors"``) and their reporting rule (selection ``authors``: the best test-SRCC
epoch, PLCC a running maximum; test-oracle, so ``allow_oracle``). Every epoch's test SRCC and
PLCC are kept in the unit's history, so the same runs also give the honest last-epoch number:
the gap between the two is what choosing the epoch on the test set adds.

What is not the authors': the splits (theirs are unseeded; ours are the protocol's frozen,
content-disjoint splits) and one process with their effective 4-GPU batch.

``tiny=True`` is the CPU smoke test on the embedded default: the dataset's synthetic counterpart
(tiny size), the random-weight ``lifeiqa_tiny`` model (Swin-B weights need a download), two
splits, and the recipe shrunk in data and epochs only (:data:`TINY`): fewer crops per image and
per step, 3 epochs with the warmup and decay interval scaled by the same factor
(:meth:`~harness.plan.recipes.Recipe.with_epochs`), so the learning rate traces the same curve
over the run (same warmup LR, base LR, decay rate and floor, drops at the same fractions of
training). Its numbers test the harness, not the paper.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.api import Results, evaluate_options, run_options
from harness.data.records import SYNTH_PREFIX
from harness.errors import InvalidOptionError, unknown_name
from harness.plan.options import RunOptions
from harness.plan.recipes import RECIPES, get_recipe
from harness.reporting.check import CheckReport, check_suite
from harness.reporting.published import PUBLISHED_FILE, PublishedRef, load_published
from harness.results import metrics
from harness.results.aggregate import format_interval, interval_note
from harness.results.schema import UnitResult

DATASETS = tuple(sorted(name.removeprefix("authors_") for name in RECIPES
                        if name.startswith("authors_")))
SPLITS = 10
# The CPU smoke: data and epochs shrunk, the schedule's shape kept (see the module doc).
TINY = {"epochs": 3, "batch_size": 8, "train_crops": 2, "test_crops": 2, "splits": 2,
        "synth_size": "tiny", "model": "lifeiqa_tiny"}


def tiny_overrides(dataset: str) -> dict[str, object]:
    """The recipe fields :data:`TINY` changes in ``authors_<dataset>``."""
    shrunk = get_recipe(f"authors_{dataset}").with_epochs(cast(int, TINY["epochs"]))
    return {"epochs": shrunk.epochs, "warmup_epochs": shrunk.warmup_epochs,
            "step_every": shrunk.step_every, "batch_size": TINY["batch_size"],
            "train_crops": TINY["train_crops"], "test_crops": TINY["test_crops"]}


def reproduce_options(dataset: str, *, data_root: str | None = None, device: str = "auto",
                      splits: int | None = None, runs: str = "runs", seed: int = 0,
                      model: str | None = None, tiny: bool = False, force: bool = False) -> RunOptions:
    """The run :func:`reproduce` makes: real data under ``data_root``, else the synthetic
    counterpart (``tiny``: the smoke test)."""
    if dataset not in DATASETS:
        raise unknown_name("dataset with an authors' recipe", dataset, DATASETS)
    if tiny and data_root is not None:
        raise InvalidOptionError("--tiny runs on the synthetic counterpart; drop --data-root")
    name = dataset if data_root is not None else SYNTH_PREFIX + dataset
    extra: dict[str, object] = {}
    if tiny:
        extra = {"overrides": tiny_overrides(dataset), "synth_size": TINY["synth_size"]}
    return run_options(
        "splits", datasets=(name,), recipe=f"authors_{dataset}", selection="authors",
        allow_oracle=True, test_crops="random", image_policy="authors", data_root=data_root,
        suite=f"reproduce{'-tiny' if tiny else ''}/{name}", runs=runs,
        splits=splits or (TINY["splits"] if tiny else SPLITS), seed=seed, device=device,
        model=model or (TINY["model"] if tiny else None), force=force, **extra)


@dataclass(frozen=True)
class Reproduction:
    """One dataset's reproduction: its units, the two readings of them, the published row and
    the check against it."""

    dataset: str  # as run: the real name, or synth-<name>
    results: Results
    published: PublishedRef | None  # the paper's Life-IQA row for the real dataset
    check: CheckReport | None  # None when no unit finished

    @property
    def units(self) -> tuple[UnitResult, ...]:
        return self.results.units

    @property
    def synthetic(self) -> bool:
        return self.dataset.startswith(SYNTH_PREFIX)

    def values(self, reading: str, metric: str) -> list[float]:
        """Per-unit ``metric`` under ``reading``: ``rule`` (the authors', the units' metrics) or
        ``last`` (the last epoch of the same runs, from each unit's history)."""
        if reading == "rule":
            return [getattr(unit.metrics, metric) for unit in self.units]
        return [unit.history[-1][f"test_{metric}"] for unit in self.units]

    def table(self) -> str:
        """Published vs reproduced by the authors' rule vs the last epoch, and the gap."""
        from tabulate import tabulate

        def summary(values: list[float]) -> str:
            return format_interval(metrics.summarize(values), digits=4)

        published = self.published
        rows: list[list[str | int]]
        rows = [["published (paper; their rule)",
                 *(f"{published.metrics[m]:.3f}" if published and m in published.metrics else "-"
                   for m in ("srcc", "plcc")), "-"]]
        if self.units:
            n = len(self.units)
            rows += [["reproduced, authors' rule (test-oracle)",
                      *(summary(self.values("rule", m)) for m in ("srcc", "plcc")), n],
                     ["reproduced, last epoch (same runs)",
                      *(summary(self.values("last", m)) for m in ("srcc", "plcc")), n],
                     ["gap: rule - last epoch (median of per-unit gaps)",
                      *(f"{np.median(np.subtract(self.values('rule', m), self.values('last', m))):+.4f}"
                        for m in ("srcc", "plcc")), n]]
        heading = f"### Reproduction: Life-IQA on {self.dataset}, splits protocol"
        if self.synthetic:
            heading += " (synthetic data: these numbers test the harness, not the paper)"
        note = (f"Medians over units. {interval_note([len(self.units)] if self.units else [])} "
                "Authors' rule: each unit's best "
                "test-SRCC epoch, PLCC a running maximum updated only when test SRCC improves "
                "(raw Pearson), as their main.py reports. Last epoch: the final epoch of the "
                "same training runs, on the same kind of test crops.")
        return "\n".join([heading, "", tabulate(rows, headers=["", "SRCC", "PLCC", "units"],
                                                 tablefmt="github", disable_numparse=True),
                          "", note])


def published_row(dataset: str) -> PublishedRef | None:
    """The paper's Life-IQA row of the ``splits`` protocol on ``dataset`` (a real name)."""
    for entry in load_published().entries:
        if entry.protocol == "splits" and entry.dataset == dataset and entry.model == "Life-IQA":
            return entry
    return None


def reproduce(dataset: str, *, progress: bool = False, **options: Any) -> Reproduction:
    """Run :func:`reproduce_options` ``(dataset, **options)``, then read the units both ways and
    check them against ``leaderboards/published.yaml``."""
    run = reproduce_options(dataset, **options)
    results = evaluate_options(run, progress)
    check = None
    if results.units:
        assert run.suite is not None  # reproduce_options names the suite
        # the published Life-IQA rows record the authors' rule (selection "authors"), which is
        # what this run reproduces: a like-for-like check, no selection mismatch to allow
        report = check_suite(Path(run.runs) / run.suite, PUBLISHED_FILE, metric="both")
        # the rows of this dataset under this protocol (the file holds every published number)
        check = dataclasses.replace(report, rows=tuple(
            row for row in report.rows if row.protocol == "splits" and row.dataset == dataset))
    return Reproduction(run.datasets[0], results, published_row(dataset), check)
