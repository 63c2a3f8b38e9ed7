"""What a run is asked to do, checked in one place before any work starts.

:class:`RunOptions` is shared by the API (``harness.evaluate(...)``) and the command line
(``lifeiqa-bench run``): one set of defaults, one validation. :func:`plan_run` turns valid options
into the jobs to run; every mistake a user can make in the options (an unknown protocol, model,
recipe, dataset or recipe field, a value of the wrong type, a folder that does not exist, an
executor option without its executor) is an :class:`~harness.errors.InvalidOptionError` raised
here, naming the option, the value and what was expected, so that no unit starts (and no synthetic
data is generated) for a run that cannot succeed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lifeiqa
from harness.data.declared import declare_dataset
from harness.data.records import SYNTH_PREFIX
from harness.data.registry import list_datasets
from harness.data.sources import DataSources
from harness.data.synth.generate import SIZES, WRITERS
from harness.device import parse_device, resolve_device
from harness.errors import DataNotFoundError, InvalidOptionError, unknown_name
from harness.fileio import check_suite
from harness.plan.jobs import Job, plan_jobs
from harness.plan.models import ModelRef, format_args, parse_row
from harness.plan.protocols import Protocol, load_protocol
from harness.plan.recipes import (
    IMAGE_POLICIES,
    RECIPES,
    TEST_CROP_LAYOUTS,
    Recipe,
    authors_image_policy,
    get_recipe,
)
from harness.plugins import include_all
from lifeiqa.errors import UnknownModelError

log = logging.getLogger(__name__)

SELECTIONS = ("last", "val", "oracle", "authors")
# chosen on the test set, so only with --allow-oracle: what each reports
TEST_ORACLE = {"oracle": "the best epoch measured on the test set",
               "authors": "the authors' rule (the best test-SRCC epoch, PLCC a running maximum)"}
SYNTH_SIZES = tuple(SIZES)
EXECUTORS = ("local", "pool", "slurm")
SLURM_CLUSTERS = ("slurm", "local", "debug")  # submitit's; local and debug are for tests
# what a Slurm option left unset stands for (harness.engine.slurm; the command line's help)
SLURM_TIME_MIN = 240
SLURM_ARRAY_PARALLELISM = 256
SLURM_RETRIES = 3
SLURM_SIGNAL_LEAD = 90  # seconds; at most a quarter of the time limit
SLURM_POLL = 30.0


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _require_int(name: str, value: object, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidOptionError(f"{_flag(name)} {value!r}: expected an integer >= {minimum}")


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidOptionError(f"{_flag(name)} {value!r}: expected one of {', '.join(choices)}")


def check_preset(name: str) -> None:
    try:
        lifeiqa.get_spec(name)
    except UnknownModelError:
        raise unknown_name("model preset", name, lifeiqa.list_models()) from None


@dataclass(frozen=True)
class ExecutorOptions:
    """Where jobs run: ``local`` (here, one after another), ``pool`` (worker processes, one per
    GPU of ``gpus`` or ``workers`` on CPU) or ``slurm`` (a submitit job array; what each
    ``slurm_*`` field asks of sbatch is :func:`harness.engine.slurm.sbatch_parameters`)."""

    executor: str = "local"
    gpus: tuple[str, ...] = ()
    workers: int | None = None
    slurm_partition: str | None = None
    slurm_time: int | None = None  # minutes per job
    slurm_gpus_per_job: int | None = None  # None: 1 if the run's device is cuda, else 0
    slurm_cpus_per_task: int | None = None  # the unit's torch threads follow it
    slurm_mem: float | None = None  # GB per job
    slurm_account: str | None = None
    slurm_qos: str | None = None
    slurm_constraint: str | None = None
    slurm_exclude: str | None = None  # nodes not to run on
    slurm_reservation: str | None = None
    slurm_setup: tuple[str, ...] = ()  # shell lines run before each task (module load, ...)
    slurm_extra: Mapping[str, str] = field(default_factory=dict)  # any other sbatch option
    slurm_retries: int | None = None  # requeues after a timeout (default 3)
    slurm_signal_lead: int | None = None  # seconds before the limit the task is told to stop
    slurm_poll: float | None = None  # seconds between two looks at the queue (default 30)
    slurm_array_parallelism: int | None = None
    slurm_cluster: str = "slurm"

    POOL_FIELDS = ("gpus", "workers")
    SLURM_FIELDS = ("slurm_partition", "slurm_time", "slurm_gpus_per_job", "slurm_cpus_per_task",
                    "slurm_mem", "slurm_account", "slurm_qos", "slurm_constraint",
                    "slurm_exclude", "slurm_reservation", "slurm_setup", "slurm_extra",
                    "slurm_retries", "slurm_signal_lead", "slurm_poll",
                    "slurm_array_parallelism")

    def __post_init__(self) -> None:
        _require_choice("executor", self.executor, EXECUTORS)
        _require_choice("slurm_cluster", self.slurm_cluster, SLURM_CLUSTERS)
        object.__setattr__(self, "gpus", tuple(str(g).strip() for g in self.gpus))
        object.__setattr__(self, "slurm_setup", tuple(self.slurm_setup))
        object.__setattr__(self, "slurm_extra", dict(self.slurm_extra))
        for owner, names in (("pool", self.POOL_FIELDS), ("slurm", self.SLURM_FIELDS)):
            given = [n for n in names if getattr(self, n) not in (None, (), {})]
            if given and self.executor != owner:
                raise InvalidOptionError(f"{', '.join(map(_flag, given))}: only with --executor "
                                         f"{owner}")
        if self.executor == "pool":
            if self.gpus and self.workers is not None:
                raise InvalidOptionError("--executor pool: give --gpus (one worker per GPU) or "
                                         "--workers N, not both")
            if not self.gpus and self.workers is None:
                raise InvalidOptionError("--executor pool needs --gpus 0,1,... (one worker per "
                                         "GPU) or --workers N")
            if not all(g.isdigit() for g in self.gpus):
                raise InvalidOptionError(f"--gpus {','.join(self.gpus)!r}: expected "
                                         f"comma-separated GPU indices, e.g. 0,1")
        _require_int("workers", self.workers, 1)
        for name, minimum in (("slurm_time", 1), ("slurm_gpus_per_job", 0),
                              ("slurm_cpus_per_task", 1), ("slurm_retries", 0),
                              ("slurm_signal_lead", 1), ("slurm_array_parallelism", 1)):
            _require_int(name, getattr(self, name), minimum)
        if self.slurm_poll is not None and (isinstance(self.slurm_poll, bool) or not isinstance(
                self.slurm_poll, (int, float)) or not self.slurm_poll > 0):
            raise InvalidOptionError(f"--slurm-poll {self.slurm_poll!r}: expected seconds > 0")
        for key, value in self.slurm_extra.items():
            if not isinstance(key, str) or not key.replace("-", "_").isidentifier() \
                    or not isinstance(value, str):
                raise InvalidOptionError(f"--slurm-extra {key}={value}: expected an sbatch "
                                         f"option's long name and a text value, e.g. "
                                         f"mail-type=END")
        if self.slurm_signal_lead is not None and self.slurm_time is not None \
                and self.slurm_signal_lead >= self.slurm_time * 60:
            raise InvalidOptionError(f"--slurm-signal-lead {self.slurm_signal_lead}: expected "
                                     f"fewer seconds than --slurm-time {self.slurm_time} "
                                     f"minute(s) gives a task")


@dataclass(frozen=True)
class RunOptions:
    """A protocol run. ``None`` means "the protocol's or the recipe's default"."""

    protocol: str
    model: str | None = None  # a Life-IQA preset (lifeiqa.list_models()); default: the recipe's
    recipe: str | None = None  # default: cpu_demo on CPU or synthetic data, else authors_<dataset>
    overrides: Mapping[str, Any] = field(default_factory=dict)  # recipe field -> value
    selection: str = "last"
    allow_oracle: bool = False
    test_crops: str | None = None  # "grid" or "random" (the authors'); None: the recipe's layout
    image_policy: str = "recipe"  # "recipe": its resize policy; "authors": theirs per dataset
    data_root: str | None = None  # a folder holding one sub-folder per real dataset
    dataset_roots: Mapping[str, str] = field(default_factory=dict)  # dataset -> folder
    # datasets of one's own: name -> declaration (harness.data.declared: a mapping, a one-line
    # declaration or a YAML file); each joins a splits protocol's datasets
    define_datasets: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()  # a subset of the protocol's datasets; () = all
    models: tuple[str, ...] = ()  # a subset of the protocol's rows (variants, baselines); () = all
    # rows added to the protocol's (registry models or Life-IQA variants, with model arguments:
    # "pyiqa:musiq", "my_net(width=64)")
    add_models: tuple[str, ...] = ()
    # plug-in modules or .py files to import first (their models join the registry); worker
    # processes import them too
    include: tuple[str, ...] = ()
    limit: int | None = None  # at most N images per part (a quick look; recorded, marked, refused by check)
    synthetic: bool = False  # the synthetic sets (the default when no data is given)
    synth_size: str = "small"
    suite: str | None = None  # default: the protocol's name
    runs: str = "runs"
    splits: int | None = None
    seeds: int | None = None
    noise_units: int | None = None  # default: the protocol's
    seed: int = 0
    device: str = "auto"
    force: bool = False
    exclude_bad: bool = False
    save_checkpoints: bool = False
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def __post_init__(self) -> None:
        # frozen, so the mappings and sequences become read-only copies
        object.__setattr__(self, "overrides", dict(self.overrides))
        object.__setattr__(self, "dataset_roots", dict(self.dataset_roots))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "add_models", tuple(self.add_models))
        object.__setattr__(self, "include", tuple(self.include))
        include_all(self.include)  # first: the rows below may name the included models
        for row in (*self.models, *self.add_models):
            ModelRef.parse("", row)  # an unknown model or bad arguments, named before any work
        _require_choice("selection", self.selection, SELECTIONS)
        _require_choice("synth_size", self.synth_size, SYNTH_SIZES)
        if self.selection in TEST_ORACLE and not self.allow_oracle:
            raise InvalidOptionError(
                f"--selection {self.selection} reports {TEST_ORACLE[self.selection]}; pass "
                f"--allow-oracle to permit it (every table then says test-oracle)")
        if self.test_crops is not None:
            _require_choice("test_crops", self.test_crops, TEST_CROP_LAYOUTS)
        _require_choice("image_policy", self.image_policy, IMAGE_POLICIES)
        for name, field_name in (("test_crops", "test_crop_layout"), ("image_policy", "resize_policy")):
            if getattr(self, name) not in (None, "recipe") and field_name in self.overrides:
                raise InvalidOptionError(f"{_flag(name)} {getattr(self, name)} sets the recipe's "
                                         f"{field_name}: drop --set {field_name}=...")
        _require_int("splits", self.splits, 1)
        _require_int("limit", self.limit, 1)
        _require_int("seeds", self.seeds, 1)
        _require_int("noise_units", self.noise_units, 0)
        _require_int("seed", self.seed, 0)
        if not isinstance(self.executor, ExecutorOptions):
            raise InvalidOptionError(f"executor {self.executor!r}: expected ExecutorOptions")
        if self.data_root is not None and not Path(self.data_root).expanduser().is_dir():
            raise DataNotFoundError(f"--data-root {self.data_root}: no such folder")
        known = list_datasets()
        for name, root in self.dataset_roots.items():
            if name not in known and not name.startswith(SYNTH_PREFIX):
                raise unknown_name("dataset", name, known, f"(in --dataset-root {name}={root})")
            if not Path(root).expanduser().is_dir():
                raise DataNotFoundError(f"--dataset-root {name}={root}: no such folder")
        if not isinstance(self.define_datasets, Mapping):
            raise InvalidOptionError(f"define_datasets {self.define_datasets!r}: expected a mapping "
                                     f"of dataset name -> declaration")
        object.__setattr__(self, "define_datasets", {
            str(name): declare_dataset(str(name), value, origin=f"--define-dataset {name}")
            for name, value in self.define_datasets.items()})
        if self.define_datasets and self.synthetic:
            raise InvalidOptionError(f"--synthetic runs the synthetic sets only: drop it to run "
                                     f"the declared dataset(s) {', '.join(self.define_datasets)}")
        for declaration in self.define_datasets.values():
            declaration.load()  # a missing CSV or image folder, or a column it lacks, fails now
        if self.recipe is not None:
            get_recipe(self.recipe)
        if self.model is not None:
            check_preset(self.model)
        if self.executor.executor == "slurm":  # the device is the task's node's, not this one's
            if self.device != "auto":
                parse_device(self.device)
        else:
            resolve_device(self.device)
        if self.executor.gpus and self.device not in ("auto", "cuda"):
            raise InvalidOptionError(f"--gpus gives each worker its own GPU as 'cuda'; leave "
                                     f"--device auto (or cuda), not {self.device!r}")

    def slurm_gpus(self) -> int:
        """GPUs each Slurm task asks for: ``slurm_gpus_per_job``, else one for a ``cuda`` device
        and none otherwise (``auto`` asks for none: a CPU partition refuses a GPU request)."""
        given = self.executor.slurm_gpus_per_job
        if given is not None:
            return given
        return 1 if self.device.startswith("cuda") else 0

    def on_cpu(self) -> bool:
        """Whether the units will run on a CPU: the device here, or a Slurm task's (one that
        asks for no GPU), which picks the CPU recipes."""
        if self.executor.executor == "slurm":
            return self.slurm_gpus() == 0 and not self.device.startswith("cuda")
        return resolve_device(self.device).type == "cpu"

    @property
    def uses_synthetic_data(self) -> bool:
        return self.synthetic or not (self.data_root or self.dataset_roots or self.define_datasets)

    def sources(self) -> DataSources:
        root = Path(self.data_root).expanduser() if self.data_root else None
        return DataSources(root, tuple(self.dataset_roots.items()), self.synth_size,
                           declared=tuple(self.define_datasets.values()))

    def replace(self, **changes: Any) -> RunOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunPlan:
    """Valid options expanded: the protocol as restricted to the chosen (or present) datasets,
    where the data comes from, and the jobs."""

    options: RunOptions
    protocol: Protocol
    sources: DataSources
    jobs: tuple[Job, ...]
    notes: tuple[str, ...] = ()  # what was left out and why (never silently)
    # what a process that runs these jobs imports first: --include and the modules of plug-in
    # models registered by an imported module (installed entry points load themselves)
    includes: tuple[str, ...] = ()

    @property
    def suite(self) -> str:
        return self.jobs[0].suite


def _check_dataset_names(protocol: Protocol, options: RunOptions) -> None:
    """Every dataset the protocol names is one the harness knows (registered, declared by the
    protocol or the run, or a synthetic twin), checked before any work: a typo is named with a
    suggestion, never planned and failed unit by unit or skipped as "no data"."""
    real = [*list_datasets(), *(d.name for d in protocol.define_datasets),
            *options.define_datasets]
    synthetic = [SYNTH_PREFIX + name for name in WRITERS]
    for field_name, known in (("datasets", real), ("pairs", real),
                              ("synthetic_datasets", synthetic), ("synthetic_pairs", synthetic)):
        value = getattr(protocol, field_name)
        for name in (n for entry in value for n in ((entry,) if isinstance(entry, str) else entry)):
            if name not in known:
                raise unknown_name("dataset", name, known,
                                   f"(in protocol {protocol.source or protocol.name}: "
                                   f"{field_name})")


def _restrict(protocol: Protocol, options: RunOptions, sources: DataSources) -> tuple[Protocol, list[str]]:
    """Keep the targets whose datasets were chosen or, for real data, are present."""
    synthetic = options.uses_synthetic_data
    targets = protocol.targets(synthetic)
    if synthetic and protocol.kind == "splits":
        # the synthetic counterpart of any of the protocol's datasets may be named (synth-csiq)
        targets += [(name, name) for name in options.datasets if (name, name) not in targets
                    and name.removeprefix(SYNTH_PREFIX) in set(protocol.datasets) & set(WRITERS)
                    and name.startswith(SYNTH_PREFIX)]
    named = {name for pair in targets for name in pair}
    unused = [name for name in options.define_datasets if name not in named]
    if protocol.kind == "splits":
        # declaring a dataset for a run says to run it: it joins a splits protocol's datasets
        targets += [(name, name) for name in unused]
        unused = []
    if options.datasets:
        offered = sorted({name for pair in targets for name in pair})
        for name in options.datasets:
            if name not in offered:
                raise unknown_name("dataset", name, offered,
                                   f"(the {'synthetic ' if synthetic else ''}datasets of protocol "
                                   f"{protocol.name})")
    wanted = set(options.datasets) or None
    keep = []
    notes = [f"declared dataset {name} is in no pair of protocol {protocol.name}: not run"
             for name in unused]
    for train, test in targets:
        names = {train, test}
        if wanted is not None and not names <= wanted:
            continue
        if not synthetic and wanted is None:
            missing = [n for n in names if not sources.has(n)]
            if missing:
                notes.append(f"skipping {train}->{test}: no data for {', '.join(sorted(missing))}")
                continue
        keep.append((train, test))
    field_name = ("synthetic_" if synthetic else "") + ("datasets" if protocol.kind == "splits"
                                                        else "pairs")
    value = tuple(t for t, _ in keep) if protocol.kind == "splits" else tuple(keep)
    changes: dict[str, Any] = {field_name: value}
    return dataclasses.replace(protocol, **changes), notes


def _row_name(row: str) -> str:
    """A row as protocols store it: the name with its arguments in canonical form."""
    variant, args = parse_row(row)
    return variant + format_args(args)


def _add_models(protocol: Protocol, rows: tuple[str, ...]) -> tuple[Protocol, list[str]]:
    """The protocol with ``rows`` added: Life-IQA variants to its variants, registry models to
    its baselines (a row it already has is noted, not repeated)."""
    variants, baselines, notes = list(protocol.variants), list(protocol.baselines), []
    for row in map(_row_name, rows):
        if row in (*variants, *baselines):
            notes.append(f"--add-models {row}: protocol {protocol.name} already has this row")
            continue
        (baselines if ModelRef.parse("", row).from_registry else variants).append(row)
    return dataclasses.replace(protocol, variants=tuple(variants), baselines=tuple(baselines)), notes


def _with_declared(options: RunOptions, protocol: Protocol) -> RunOptions:
    """The options with the protocol's declared datasets beside the run's own, checked as those
    are (a run on the synthetic sets reads none of them)."""
    if options.synthetic or not protocol.define_datasets:
        return options
    twice = [d.name for d in protocol.define_datasets if d.name in options.define_datasets]
    if twice:
        raise InvalidOptionError(f"dataset(s) {', '.join(twice)} declared both by protocol "
                                 f"{protocol.source} and by --define-dataset: declare each once")
    return options.replace(define_datasets={**{d.name: d for d in protocol.define_datasets},
                                            **options.define_datasets})


def _restrict_models(protocol: Protocol, models: tuple[str, ...]) -> tuple[Protocol, list[str]]:
    """Keep the protocol's rows (variants and baselines) named in ``models``; () keeps all."""
    if not models:
        return protocol, []
    models = tuple(map(_row_name, models))
    rows = (*protocol.variants, *protocol.baselines)
    for name in models:
        if name not in rows:
            raise unknown_name("model row", name, rows, f"(the variants and baselines of protocol "
                                                        f"{protocol.name}, in --models)")
    left_out = [name for name in rows if name not in models]
    protocol = dataclasses.replace(
        protocol, variants=tuple(v for v in protocol.variants if v in models),
        baselines=tuple(b for b in protocol.baselines if b in models))
    return protocol, ([f"rows of protocol {protocol.name} left out by --models: "
                       f"{', '.join(left_out)}"] if left_out else [])


def _recipes(protocol: Protocol, options: RunOptions, on_cpu: bool) -> dict[str, Recipe]:
    synthetic = options.uses_synthetic_data
    recipes = {}
    for train, _ in protocol.targets(synthetic):
        if options.recipe:
            name = options.recipe
        elif synthetic or on_cpu:
            name = "cpu_demo"
        else:
            name = f"authors_{train.removeprefix(SYNTH_PREFIX)}"
            if name not in RECIPES:
                raise InvalidOptionError(f"no authors' recipe for {train}; pass --recipe (one of "
                                         f"{', '.join(sorted(RECIPES))})")
        recipe = get_recipe(name).override(**options.overrides)
        if options.test_crops is not None:
            recipe = recipe.override(test_crop_layout=options.test_crops)
        if options.image_policy == "authors":
            recipe = recipe.override(resize_policy=authors_image_policy(train))
        recipes[train] = recipe
    return recipes


def plan_run(options: RunOptions, on_cpu: bool) -> RunPlan:
    """The jobs ``options`` ask for; ``on_cpu`` (the resolved device is a CPU) picks the CPU
    default recipe when none is named. Raises InvalidOptionError before any work."""
    protocol = load_protocol(options.protocol)
    options = _with_declared(options, protocol)
    _check_dataset_names(protocol, options)
    sources = options.sources()
    protocol, notes = _restrict(protocol, options, sources)
    # --models picks among the protocol's own rows; --add-models rows are kept whatever it picks
    protocol, left_out = _restrict_models(protocol, options.models)
    protocol, added = _add_models(protocol, options.add_models)
    notes += left_out + added
    recipes = _recipes(protocol, options, on_cpu)
    presets = {options.model or recipe.model for recipe in recipes.values()}
    if len(presets) > 1:
        raise InvalidOptionError(f"the recipes use different models {sorted(presets)}; pass "
                                 f"--model")
    synthetic = options.uses_synthetic_data
    if not presets:
        raise InvalidOptionError(f"protocol {protocol.name} has no {'synthetic ' if synthetic else ''}"
                                 f"datasets to run" + (f" ({'; '.join(notes)})" if notes else ""))
    preset = presets.pop()
    check_preset(preset)  # a recipe's default preset, checked like a given one
    suite = check_suite(options.suite, "--suite") if options.suite else \
        check_suite(protocol.name, f"protocol {protocol.source or protocol.name}: name (the "
                                   f"default suite; or pass --suite)")
    jobs = plan_jobs(protocol, suite, preset, recipes, synthetic,
                     options.selection, options.seed, options.splits, options.seeds,
                     options.noise_units)
    digests = {declared.name: declared.csv_sha256() for declared in sources.declared}
    jobs = [dataclasses.replace(job, limit=options.limit, data_versions=tuple(
        (name, digests[name]) for name in dict.fromkeys((job.train_dataset, job.test_dataset))
        if name in digests)) for job in jobs]
    for note in notes:
        log.info("note: %s", note)
    return RunPlan(options, protocol, sources, tuple(jobs), tuple(notes),
                   plugin_includes(jobs, options))


def plugin_includes(jobs: list[Job], options: RunOptions) -> tuple[str, ...]:
    """What worker processes import to see the jobs' plug-in models; a model registered in a
    script's ``__main__`` cannot reach them, and says so."""
    includes = list(options.include)
    for model in dict.fromkeys(job.model for job in jobs if job.model.from_registry):
        plugin = model.spec.plugin
        if plugin is None or plugin.origin == "entry_point":
            continue
        if plugin.origin == "main" and options.executor.executor != "local":
            raise InvalidOptionError(
                f"model {model.name} is registered in {plugin.name} (the running script), which "
                f"--executor {options.executor.executor}'s processes cannot import: move it to a "
                f"module and pass include=[MODULE] (--include), or use the local executor")
        if plugin.include and plugin.include not in includes:
            includes.append(plugin.include)
    return tuple(includes)
