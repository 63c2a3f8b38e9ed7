"""The harness as a Python library: what ``lifeiqa-bench`` does, callable from programs and
notebooks.

    import harness
    results = harness.evaluate("splits", datasets=["synth-kadid10k"],
                               model="lifeiqa_effnet_lite0_small", recipe="cpu_demo", splits=3)
    results.table()      # pandas DataFrame: one row per unit
    results.summary()    # the aggregated cells the leaderboard shows
    results.predictions()              # one row per unit and test image: label, prediction
    results.per_distortion()           # SRCC per unit and distortion type
    results.per_distortion_summary()   # its median over units per cell and type
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InvalidOptionError, NoResultsError, unknown_name
from harness.plan.jobs import Job, UnitKey, dataset_folder
from harness.plan.options import ExecutorOptions, RunOptions, RunPlan, plan_run
from harness.reporting.leaderboard import (
    PublishedValue,
    board_noise,
    load_published_values,
    resolve_reference,
    write_results_leaderboard,
)
from harness.reporting.leaderboard import rerun_noise as rerun_noise_of
from harness.reporting.views import Section
from harness.results.aggregate import Cell, aggregate, cell_key, markdown_tables
from harness.results.schema import UnitResult
from harness.results.stability import RerunNoise, seed_noise, split_reruns
from harness.results.store import (
    PREDICTION_COLUMNS,
    PREDICTIONS,
    ResultsStore,
    UnitFailure,
    environment,
    read_predictions,
)

if TYPE_CHECKING:
    import pandas

    from harness.engine.runner import RunSummary

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
    for key in ("datasets", "models", "add_models", "include"):  # one name for a one-item list
        if isinstance(run.get(key), str):
            run[key] = (run[key],)
    return RunOptions(protocol, executor=executor, **run)


# The columns that say which unit a row of predictions or per-distortion SRCC belongs to: the
# values Results.table() shows under the same names (so the tables merge on them), and the hash
# of the unit's condition, which tells two configs of one model apart.
UNIT_KEY_COLUMNS = ("suite", "protocol", "protocol_version", "selection", "model", "kind",
                    "train_dataset", "test_dataset", "unit", "split_file", "config_hash")


def _unit_keys(unit: UnitResult) -> dict[str, str]:
    """The :data:`UNIT_KEY_COLUMNS` of ``unit``."""
    row = unit.row()
    return {**{name: str(row[name]) for name in UNIT_KEY_COLUMNS[:-1]},
            "config_hash": unit.config_hash}


# The columns that name a cell (its condition) in Results.summary() and per_distortion_summary().
CELL_KEY_COLUMNS = ("protocol", "protocol_version", "selection", "suite", "model", "dataset",
                    "train_fraction", "config_hash")


def _cell_keys(cell: Cell) -> dict[str, str | float]:
    """The :data:`CELL_KEY_COLUMNS` of ``cell``."""
    return dict(zip(CELL_KEY_COLUMNS, (cell.protocol, cell.version, cell.selection, cell.suite,
                                       cell.model, cell.dataset, cell.train_fraction,
                                       cell.config_hash), strict=True))


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
    # the noise reruns (in no table): each cell's rerun noise is measured from them
    # (harness/results/stability.py)
    noise_reruns: tuple[UnitResult, ...] = ()

    def outcome(self) -> dict[str, Any]:
        """What the run did, as data (``lifeiqa-bench run --json``): how many units it ran and
        found done, each failed unit by name, how many of those done were made by other code,
        and every unit of the suite with its key (:data:`UNIT_KEY_COLUMNS`) and scores."""
        return {"suite": self.suite, "run": self.done, "already_done": self.skipped,
                "failed": [{"model": f.job.model.name, "dataset": f.job.dataset_label,
                            "unit": f.job.unit, "message": f.message} for f in self.failed],
                "reused_other_code": len(self.reused_other_code),
                "units": [{**_unit_keys(unit), **unit.metrics.to_dict()} for unit in self.units]}

    def seed_noise(self) -> RerunNoise | None:
        """Each cell's rerun sd measured from this run's noise reruns (None: it has none)."""
        return seed_noise(self.units, self.noise_reruns)

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
            row = {**_cell_keys(cell), "units": cell.n}
            for metric in ("srcc", "plcc"):
                summary = getattr(cell, metric)
                row.update({f"{metric}_median": summary.median, f"{metric}_ci_low": summary.ci_low,
                            f"{metric}_ci_high": summary.ci_high,
                            f"{metric}_ci_coverage": summary.coverage,
                            f"{metric}_mean": summary.mean, f"{metric}_std": summary.std})
            rows.append(row)
        return pandas.DataFrame(rows)

    def predictions(self) -> pandas.DataFrame:
        """Every unit's per-image predictions, read from its ``predictions.csv`` in the store
        under ``runs``: one row per unit and test image, the unit's :data:`UNIT_KEY_COLUMNS`
        then ``image_id``, ``group`` (the content group), ``distortion`` and ``level`` (missing
        where the dataset defines none), ``score`` (the label, on the dataset's native scale)
        and ``prediction`` (the model's output as it came: a zero-shot metric whose scores fall
        with quality, PIQE's, is not flipped here as it is for the unit's correlations). A
        unit whose file is missing or damaged
        raises :class:`~harness.errors.ResultSchemaError` naming the file: no unit is left out
        without a word."""
        import pandas

        store = ResultsStore(self.runs)
        frames = [read_predictions(store.unit_dir(unit.key) / PREDICTIONS, unit.metrics.n)
                  .assign(**_unit_keys(unit)) for unit in self.units]
        columns = [*UNIT_KEY_COLUMNS, *PREDICTION_COLUMNS]
        if not frames:
            return pandas.DataFrame(columns=columns).astype(
                {"level": "Int64", "score": "float64", "prediction": "float64"})
        return pandas.concat(frames, ignore_index=True)[columns]

    def per_distortion(self) -> pandas.DataFrame:
        """SRCC per distortion type on each unit's test part (``UnitResult.per_distortion``):
        one row per unit and type, the unit's :data:`UNIT_KEY_COLUMNS`, ``distortion`` and
        ``srcc``; units whose test dataset has no distortion types have no rows."""
        import pandas

        rows = [{**_unit_keys(unit), "distortion": name, "srcc": value}
                for unit in self.units for name, value in sorted(unit.per_distortion.items())]
        return pandas.DataFrame(rows, columns=[*UNIT_KEY_COLUMNS, "distortion", "srcc"]) \
            .astype({"srcc": "float64"})

    def per_distortion_summary(self) -> pandas.DataFrame:
        """:meth:`per_distortion` aggregated as the leaderboard's per-distortion tables show it:
        one row per cell (the condition, as in :meth:`summary`) and type, with ``units`` (the
        cell's units that have the type) and ``srcc_median`` (the median over them)."""
        import pandas

        counts = Counter((cell_key(unit), name) for unit in self.units
                         for name in unit.per_distortion)
        rows = [{**_cell_keys(cell), "distortion": name, "units": counts[(cell.key, name)],
                 "srcc_median": median}
                for cell in self.cells() for name, median in cell.per_distortion.items()]
        return pandas.DataFrame(rows, columns=[*CELL_KEY_COLUMNS, "distortion", "units",
                                               "srcc_median"]) \
            .astype({"train_fraction": "float64", "units": "int64", "srcc_median": "float64"})

    def markdown(self, reference: str | None = None) -> str:
        """The summary tables as markdown (p-values against ``reference``, by default the
        run's Life-IQA preset; never a baseline)."""
        cells = self.cells()
        return markdown_tables(cells, resolve_reference(cells, reference),
                               failures=self.unit_failures)


def dry_run(protocol: str, **options: Any) -> RunPlan:
    """The jobs a run would execute (nothing runs): ``lifeiqa-bench run --dry-run``. Takes the
    options of :func:`evaluate`."""
    return plan_options(run_options(protocol, **options))


def plan_options(options: RunOptions) -> RunPlan:
    """:func:`dry_run` for options already built."""
    return plan_run(options, on_cpu=options.on_cpu())


def evaluate(
    protocol: str, *,
    model: str | None = None,
    recipe: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    selection: str = "last",
    allow_oracle: bool = False,
    test_crops: str | None = None,
    image_policy: str = "recipe",
    data_root: str | None = None,
    dataset_roots: Mapping[str, str] | None = None,
    define_datasets: Mapping[str, Any] | None = None,
    datasets: Sequence[str] | str = (),
    models: Sequence[str] | str = (),
    add_models: Sequence[str] | str = (),
    include: Sequence[str] | str = (),
    limit: int | None = None,
    synthetic: bool = False,
    synth_size: str = "small",
    suite: str | None = None,
    runs: str | Path = "runs",
    splits: int | None = None,
    seeds: int | None = None,
    noise_units: int | None = None,
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
    exclude_bad: bool = False,
    save_checkpoints: bool = False,
    executor: str = "local",
    gpus: Sequence[str] = (),
    workers: int | None = None,
    slurm_partition: str | None = None,
    slurm_time: int | None = None,
    slurm_gpus_per_job: int | None = None,
    slurm_cpus_per_task: int | None = None,
    slurm_mem: float | None = None,
    slurm_account: str | None = None,
    slurm_qos: str | None = None,
    slurm_constraint: str | None = None,
    slurm_exclude: str | None = None,
    slurm_reservation: str | None = None,
    slurm_setup: Sequence[str] = (),
    slurm_extra: Mapping[str, str] | None = None,
    slurm_retries: int | None = None,
    slurm_signal_lead: int | None = None,
    slurm_poll: float | None = None,
    slurm_array_parallelism: int | None = None,
    slurm_cluster: str = "slurm",
    progress: bool = False,
) -> Results:
    """Run ``protocol`` and return its units. Units already in the store with the same config
    are reused (``force=True`` reruns them); a unit that fails is listed in
    :attr:`Results.failed` and the others go on. Every option is validated before any work: a
    bad one raises :class:`~harness.errors.InvalidOptionError` naming it. ``None`` means the
    protocol's or the recipe's default. The command line's ``lifeiqa-bench run`` flags are these
    names with dashes.

    Args:
        protocol: a packaged protocol's name (``lifeiqa-bench list protocols``) or a YAML path.
        model: the Life-IQA preset (``lifeiqa.list_models()``); default: the recipe's.
        recipe: a recipe name; default ``cpu_demo`` on a CPU or synthetic data, else
            ``authors_<dataset>``.
        overrides: recipe field -> value (``{"epochs": 5}`` is ``--set epochs=5``).
        selection: which epoch a unit reports: ``last``, ``val`` (a content-disjoint validation
            part), or the test-oracle ``oracle`` and ``authors`` (these two need
            ``allow_oracle``).
        allow_oracle: permit a test-oracle selection (every table then says so).
        test_crops: ``grid`` or ``random`` (the authors'); default: the recipe's layout.
        image_policy: ``recipe`` (its resize policy) or ``authors`` (theirs per dataset).
        data_root: a folder holding one sub-folder per real dataset.
        dataset_roots: dataset name -> its folder, for datasets kept elsewhere.
        define_datasets: datasets of one's own, name -> declaration (a mapping, a one-line
            declaration or a YAML file); each joins a ``splits`` protocol's datasets.
        datasets: a subset of the protocol's datasets (default: all).
        models: a subset of the protocol's rows (variants, baselines; default: all).
        add_models: rows added to the protocol's (``"pyiqa:musiq"``, ``"my_net(width=64)"``).
        include: plug-in modules or ``.py`` files imported first (workers import them too).
        limit: at most this many images per part (a quick look; marked, refused by ``check``).
        synthetic: the synthetic sets (the default when no data is given).
        synth_size: size of the synthetic sets: ``tiny``, ``gate``, ``small`` or ``default``.
        suite: the results folder's name under ``runs`` (default: the protocol's name).
        runs: the runs folder; nothing is written outside it (and the cache).
        splits: run at most this many splits.
        seeds: run at most this many seeds per cell.
        noise_units: units per seeded cell rerun under another seed to measure rerun noise
            (default: the protocol's).
        seed: the base seed of the run.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        force: rerun units already in the store, replacing them.
        exclude_bad: drop the rows dataset validation rejects (recorded in every result)
            instead of refusing the run.
        save_checkpoints: keep each unit's trained weights beside its result.
        executor: ``local`` (here), ``pool`` (worker processes) or ``slurm`` (a job array).
        gpus: pool: one worker per GPU index listed.
        workers: pool: this many CPU workers.
        slurm_partition: Slurm partition.
        slurm_time: Slurm time limit per job, minutes.
        slurm_gpus_per_job: GPUs per Slurm job (default 1 with a cuda device, else 0).
        slurm_cpus_per_task: CPUs per Slurm task; the unit runs that many torch threads.
        slurm_mem: memory per Slurm job, GB.
        slurm_account: Slurm account.
        slurm_qos: Slurm quality of service.
        slurm_constraint: node features a Slurm job requires.
        slurm_exclude: nodes a Slurm job must not run on.
        slurm_reservation: the Slurm reservation to run in.
        slurm_setup: shell lines each Slurm task runs first (``module load ...``).
        slurm_extra: any other sbatch option, long name -> value (``{"mail-type": "END"}``).
        slurm_retries: requeues of a Slurm task after its time limit (default 3).
        slurm_signal_lead: seconds before the time limit a task is told to requeue.
        slurm_poll: seconds between two looks at the Slurm queue (default 30).
        slurm_array_parallelism: at most this many array tasks at once.
        slurm_cluster: ``slurm``, or ``local``/``debug`` (submitit's stand-ins, for tests).
        progress: show a live display on stderr.

    Returns:
        The run's units as stored, with what became of each (:class:`Results`).
    """
    options = {name: value for name, value in locals().items()
               if name not in ("protocol", "progress") and value is not None}
    options["runs"] = str(runs)
    return evaluate_options(run_options(protocol, **options), progress)


def evaluate_options(options: RunOptions, progress: bool = False) -> Results:
    """:func:`evaluate` for options already built (the command line's path)."""
    return evaluate_all([options], progress)[0]


def evaluate_all(options: Sequence[RunOptions], progress: bool = False) -> list[Results]:
    """:func:`evaluate_options` for several runs executed together, one Results per run: under
    the pool executor their jobs share one queue and one set of workers (the demo's steps), so
    the workers start once and no run waits for the last unit of the one before; the other
    executors run them in turn. The runs must name the same executor (and, for a pool, the
    same runs folder, device and data)."""
    from harness.engine.executors import execute

    runs = [plan_options(o) for o in options]
    for run in runs:
        log.info("protocol %s v%s: %d job(s) -> %s  (selection: %s)", run.protocol.name,
                 run.protocol.version, len(run.jobs), Path(run.options.runs) / run.suite,
                 run.options.selection)
    return [_results(run, outcome) for run, outcome in zip(runs, execute(runs, progress), strict=True)]


def _results(run: RunPlan, outcome: RunSummary | None) -> Results:
    """A run's units as stored after its execution, with what became of each."""
    store = ResultsStore(run.options.runs)
    loaded = {job.key: store.load(job.key) for job in run.jobs}
    units, noise_reruns = split_reruns(u for u in loaded.values() if u is not None)
    failures = tuple(f for f in store.failures(run.suite)
                     if UnitKey(f.suite, f.model, dataset_folder(f.config["train_dataset"],
                                                                 f.config["test_dataset"]),
                                f.unit) in loaded)
    runs = Path(run.options.runs)
    if outcome is None:  # a torchrun rank other than 0: rank 0 reports for the launch
        return Results(run.suite, runs, tuple(units), unit_failures=failures,
                       noise_reruns=tuple(noise_reruns))
    reused: tuple[UnitResult, ...] = ()
    if outcome.skipped:
        current = environment()
        reused = tuple(unit for unit in (loaded[job.key] for job in outcome.skipped)
                       if unit is not None and not unit.environment.same_code(current))
    if reused:
        log.warning("note: %s", reuse_note(reused, len(outcome.skipped)))
    return Results(run.suite, runs, tuple(units), len(outcome.done), len(outcome.skipped),
                   tuple(FailedUnit(job, message) for job, message in outcome.failed), failures,
                   reused, tuple(noise_reruns))


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
    units, noise_reruns = split_reruns(store.results(suite))
    if not units:
        raise NoResultsError(f"no results under {Path(runs) / suite}")
    return Results(suite, Path(runs), tuple(units), unit_failures=tuple(store.failures(suite)),
                   noise_reruns=tuple(noise_reruns))


def leaderboard(results: Results, out: str | Path, published: str | Path | None = "default",
                reference: str | None = None, title: str | None = None,
                rerun: Results | None = None, rerun_noise: float | None = None,
                sections: Sequence[Section] = (), html: str | Path | None = None,
                noise_boards: tuple[str | Path, str | Path] | None = None) -> Path:
    """Write ``out/leaderboard.md``, its figures and ``out/leaderboard.json`` (the numbers
    behind it, raw and Holm-adjusted p-values included) for ``results``; returns the markdown.
    ``sections``: parts before the tables; ``html``: a folder for the page ``index.html``, made
    from that ``leaderboard.json`` (links to each unit's files are relative to the page).
    ``published``: a published-scores YAML shown beside the reproductions, ``"default"`` for
    ``leaderboards/published.yaml``, None to leave them out. Verdicts are re-tested under rerun
    noise (a fragile marker is hollow, △/▽; a fragile unmarked comparison ◇) measured per cell
    from ``rerun`` (the same suite run again) or from ``noise_boards`` (two leaderboard.json
    files of the same units, made under different arithmetic), for the cells they lack from the
    run's own noise reruns (:meth:`Results.seed_noise`) and, for cells nothing measured, the
    stated sd ``rerun_noise``; with none, the notes say the verdicts were not re-tested."""
    values: list[PublishedValue] = [] if published is None else \
        load_published_values(None if published == "default" else published)
    if rerun is not None and noise_boards is not None:
        raise InvalidOptionError("--rerun and --noise-boards: give one source of rerun noise")
    noise: RerunNoise | None
    if noise_boards is not None:
        noise = board_noise(*noise_boards, default=rerun_noise)
    else:
        source = f"a rerun in {rerun.runs / rerun.suite}" if rerun is not None else ""
        noise = rerun_noise_of(list(results.units), list(rerun.units) if rerun else None,
                               rerun_noise, source)
    in_run = results.seed_noise()
    noise = in_run if noise is None else noise.filled_from(in_run)
    return write_results_leaderboard(list(results.units), results.runs, out, values, reference,
                                     title or f"Leaderboard: {results.suite}",
                                     results.unit_failures, noise, sections, html)


CATALOGS = ("protocols", "recipes", "presets", "models", "datasets")


def catalog(what: str, include: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What can be named in a run, one dict per entry: ``protocols``, ``recipes``, ``presets``
    (Life-IQA's), ``models`` (the Life-IQA variants, then the registry's: built-ins and
    plug-ins, after importing ``include``) or ``datasets``; ``lifeiqa-bench list WHAT``."""
    import lifeiqa
    from harness.data.registry import get_dataset_spec, list_datasets
    from harness.plan.protocols import list_protocols, load_protocol
    from harness.plan.recipes import RECIPES
    from harness.plan.registry import get_bench_model, list_bench_models
    from harness.plugins import include_all
    from lifeiqa.config import ABLATIONS

    if what not in CATALOGS:
        raise unknown_name("catalog", what, CATALOGS)
    include_all(tuple(include))
    if what == "protocols":
        rows = []
        for name in list_protocols():
            protocol = load_protocol(name)
            rows.append({"name": name, "version": protocol.version, "kind": protocol.kind,
                         "rows": len(protocol.variants) + len(protocol.baselines),
                         "description": protocol.description})
        return rows
    if what == "recipes":
        return [{"name": r.name, "mode": r.mode, "model": r.model, "epochs": r.epochs,
                 "batch_size": r.batch_size, "lr": r.lr, "train_crops": r.train_crops,
                 "test_crops": r.test_crops, "crop_size": r.crop_size}
                for r in sorted(RECIPES.values(), key=lambda r: r.name)]
    if what == "presets":
        return [{"name": name, "backbone": lifeiqa.get_spec(name).config.backbone,
                 "description": lifeiqa.get_spec(name).description}
                for name in lifeiqa.list_models()]
    if what == "datasets":
        rows = []
        for name in list_datasets():
            spec = get_dataset_spec(name)
            rows.append({"name": name, "title": spec.title, "kind": spec.kind,
                         "scale": spec.scale.describe(), "images": spec.expected_images,
                         "source": f"plug-in {spec.plugin.label}" if spec.plugin else "built-in"})
        return rows
    rows = [{"name": name, "family": "lifeiqa" if name == "full" else "ablation", "plugin": "",
             "needs": "the preset", "trained_on": "",
             "description": "Life-IQA as the preset configures it" if name == "full" else
             f"the paper's ablation {name} of the preset"} for name in dict.fromkeys(("full", *ABLATIONS))]
    for name in list_bench_models():
        model_spec = get_bench_model(name)
        rows.append({"name": name, "family": model_spec.family,
                     "plugin": model_spec.plugin.label if model_spec.plugin else "",
                     "needs": model_spec.needs,
                     "trained_on": "" if model_spec.trained_on is None else
                     (", ".join(model_spec.trained_on) or "no opinion scores"),
                     "description": model_spec.description})
    return rows
