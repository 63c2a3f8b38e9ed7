"""The harness as a Python library: what ``lifeiqa-bench`` does, callable from programs and
notebooks.

    import harness
    results = harness.evaluate("splits", datasets=["synth-kadid10k"],
                               model="lifeiqa_effnet_lite0_small", recipe="cpu_demo", splits=3)
    results.table()      # pandas DataFrame: one row per unit
    results.summary()    # the aggregated cells the leaderboard shows
    harness.leaderboard(results, out="board/")

Every option is a field of :class:`~harness.plan.options.RunOptions` (executor settings are those
of :class:`~harness.plan.options.ExecutorOptions`), validated before any work. Nothing here
prints or ends the process: progress goes to the ``harness`` loggers (silent unless the caller
configures logging) and failures raise :class:`~harness.errors.HarnessError` subclasses.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.device import resolve_device
from harness.errors import NoResultsError, unknown_name
from harness.plan.jobs import Job, UnitKey, dataset_folder
from harness.plan.options import ExecutorOptions, RunOptions, RunPlan, plan_run
from harness.reporting.leaderboard import (
    PublishedValue,
    load_published_values,
    resolve_reference,
    write_results_leaderboard,
)
from harness.results.aggregate import Cell, aggregate, markdown_tables
from harness.results.schema import UnitResult
from harness.results.store import ResultsStore, UnitFailure, environment

if TYPE_CHECKING:
    import pandas

log = logging.getLogger(__name__)

_RUN_FIELDS = {f.name for f in dataclasses.fields(RunOptions)} - {"protocol", "executor"}
_EXECUTOR_FIELDS = {f.name for f in dataclasses.fields(ExecutorOptions)}


def run_options(protocol: str, **options: Any) -> RunOptions:
    """:class:`RunOptions` from keyword arguments; executor settings (``executor="pool"``,
    ``workers=2``, ``slurm_time=60``, ...) may be given flat beside the run's."""
    for name in options:
        if name not in _RUN_FIELDS | _EXECUTOR_FIELDS:
            raise unknown_name("option", name, _RUN_FIELDS | _EXECUTOR_FIELDS)
    executor = ExecutorOptions(**{k: v for k, v in options.items() if k in _EXECUTOR_FIELDS})
    run = {k: v for k, v in options.items() if k in _RUN_FIELDS}
    for key in ("datasets", "models"):  # a single name is a common slip for a one-item list
        if isinstance(run.get(key), str):
            run[key] = (run[key],)
    return RunOptions(protocol, executor=executor, **run)


@dataclass(frozen=True)
class FailedUnit:
    job: Job
    message: str


@dataclass(frozen=True)
class Results:
    """Units of one suite (a run's, or all of a suite folder's) and what became of a run's jobs.
    ``unit_failures``: the units whose last run failed or diverged, as the store records them
    (the tables list them by name)."""

    suite: str
    runs: Path
    units: tuple[UnitResult, ...]
    done: int = 0
    skipped: int = 0
    failed: tuple[FailedUnit, ...] = ()
    unit_failures: tuple[UnitFailure, ...] = ()
    reused_other_code: tuple[UnitResult, ...] = ()  # units already done, made by other code

    def table(self) -> pandas.DataFrame:
        """One row per unit, typed columns (see :meth:`UnitResult.row`)."""
        import pandas

        return pandas.DataFrame([unit.row() for unit in self.units])

    def cells(self) -> list[Cell]:
        """The aggregated cells: one per condition (protocol and version, selection, suite,
        model, train and test dataset, training fraction, config hash)."""
        return aggregate(list(self.units))

    def reference(self, reference: str | None = None) -> str | None:
        """The model the markers compare against: ``reference`` if the suite has it (an
        UnknownNameError if not), else the run's full Life-IQA preset, never a baseline."""
        return resolve_reference(self.cells(), reference)

    def summary(self) -> pandas.DataFrame:
        """The aggregated cells as a table: medians with their order-statistic intervals (and
        the intervals' exact coverage) and unit counts; PLCC is raw Pearson."""
        import pandas

        rows = []
        for cell in self.cells():
            row = {"protocol": cell.protocol, "protocol_version": cell.version,
                   "selection": cell.selection, "suite": cell.suite, "model": cell.model,
                   "dataset": cell.dataset, "train_fraction": cell.train_fraction,
                   "config_hash": cell.config_hash, "units": cell.n}
            for metric in ("srcc", "plcc"):
                summary = getattr(cell, metric)
                row.update({f"{metric}_median": summary.median, f"{metric}_ci_low": summary.ci_low,
                            f"{metric}_ci_high": summary.ci_high,
                            f"{metric}_ci_coverage": summary.coverage,
                            f"{metric}_mean": summary.mean, f"{metric}_std": summary.std})
            rows.append(row)
        return pandas.DataFrame(rows)

    def markdown(self, reference: str | None = None) -> str:
        """The summary tables as markdown (p-values against ``reference``, by default the
        run's Life-IQA preset; never a baseline)."""
        cells = self.cells()
        return markdown_tables(cells, resolve_reference(cells, reference),
                               failures=self.unit_failures)


def dry_run(protocol: str, **options: Any) -> RunPlan:
    """The jobs a run would execute (nothing runs): ``lifeiqa-bench run --dry-run``."""
    return plan_options(run_options(protocol, **options))


def plan_options(options: RunOptions) -> RunPlan:
    """:func:`plan` for options already built."""
    return plan_run(options, on_cpu=resolve_device(options.device).type == "cpu")


def evaluate(protocol: str, *, progress: bool = False, **options: Any) -> Results:
    """Run ``protocol`` (a name in ``protocols/`` or a YAML path) and return its units. Units
    already in the store with the same config are reused (pass ``force=True`` to rerun them);
    a unit that fails is listed in ``Results.failed`` and the others go on. ``progress`` shows
    a live display on stderr."""
    return evaluate_options(run_options(protocol, **options), progress)


def evaluate_options(options: RunOptions, progress: bool = False) -> Results:
    """:func:`evaluate` for options already built (the command line's path)."""
    from harness.engine.executors import execute

    run = plan_options(options)
    log.info("protocol %s v%s: %d job(s) -> %s  (selection: %s)", run.protocol.name,
             run.protocol.version, len(run.jobs), Path(options.runs) / run.suite, options.selection)
    outcome = execute(run, progress)
    store = ResultsStore(options.runs)
    loaded = {job.key: store.load(job.key) for job in run.jobs}
    units = tuple(u for u in loaded.values() if u is not None)
    failures = tuple(f for f in store.failures(run.suite)
                     if UnitKey(f.suite, f.model, dataset_folder(f.config["train_dataset"],
                                                                 f.config["test_dataset"]),
                                f.unit) in loaded)
    if outcome is None:  # a torchrun rank other than 0: rank 0 reports for the launch
        return Results(run.suite, Path(options.runs), units, unit_failures=failures)
    reused: tuple[UnitResult, ...] = ()
    if outcome.skipped:
        current = environment()
        reused = tuple(unit for unit in (loaded[job.key] for job in outcome.skipped)
                       if unit is not None and not unit.environment.same_code(current))
    if reused:
        log.warning("note: %s", reuse_note(reused, len(outcome.skipped)))
    return Results(run.suite, Path(options.runs), units, len(outcome.done), len(outcome.skipped),
                   tuple(FailedUnit(job, message) for job, message in outcome.failed), failures,
                   reused)


def reuse_note(reused: Sequence[UnitResult], skipped: int) -> str:
    """Why reused units deserve a look: resuming matches a unit's config, not its code, so a
    unit made before a change to the code is reused as it was made."""
    versions = Counter(unit.environment.code_version for unit in reused)
    made = ", ".join(f"{version}: {count}" for version, count in sorted(versions.items()))
    return (f"{len(reused)} of the {skipped} unit(s) already done were made by other code than "
            f"this checkout's ({made}) and are reused as stored; --force reruns them")


def load_results(suite: str, runs: str | Path = "runs") -> Results:
    """Every complete unit under ``runs/suite`` (nested suites included)."""
    store = ResultsStore(runs)
    units = tuple(store.results(suite))
    if not units:
        raise NoResultsError(f"no results under {Path(runs) / suite}")
    return Results(suite, Path(runs), units, unit_failures=tuple(store.failures(suite)))


def leaderboard(results: Results, out: str | Path, published: str | Path | None = "default",
                reference: str | None = None, title: str | None = None) -> Path:
    """Write ``out/leaderboard.md``, its figures and ``out/leaderboard.json`` (the numbers
    behind it, raw and Holm-adjusted p-values included) for ``results``; returns the markdown.
    ``published``: a published-scores YAML shown beside the reproductions, ``"default"`` for
    ``leaderboards/published.yaml``, None to leave them out."""
    values: list[PublishedValue] = [] if published is None else \
        load_published_values(None if published == "default" else published)
    return write_results_leaderboard(list(results.units), results.runs, out, values, reference,
                                     title or f"Leaderboard: {results.suite}",
                                     results.unit_failures)
