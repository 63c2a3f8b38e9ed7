"""A unit's result as a typed, versioned object: what ``result.json`` holds.

:class:`UnitResult` is the one shape every reader uses (aggregation, leaderboards, figures,
checks, a pandas table through :meth:`UnitResult.row`). Its JSON carries ``schema_version``;
files written before versioning have none and are version 1. Reading migrates an older file
step by step up to :data:`SCHEMA_VERSION` (``MIGRATIONS``), then validates every field, so the
object in memory is always of the current schema; a file of a newer schema than this code, or
one whose content does not fit, raises :class:`~harness.errors.ResultSchemaError` naming the
file, the field and what to do.

Version history:

1. (no ``schema_version``) today's layout, grown over time: ``selection_note`` and
   ``world_size`` were added later and ``per_distortion`` is present only when the test set has
   distortion types.
2. The same layout with ``schema_version`` and every field always present.
3. ``analyses``: what a protocol's analysis computed of the unit (``routing``,
   ``separability``: harness/engine/analyses.py); ``{}`` without one.
4. ``model_kind`` (the model's kind when it ran: ``lifeiqa``, ``ablation`` or the registry
   family) and ``plugin`` (the plug-in that made a plug-in model, ``{name, version, origin,
   include}``; null for the harness's own), so a unit reads back where its plug-in is not
   installed; a model's arguments are in ``config.model_args``.
5. ``environment.arithmetic``: the CPU arithmetic the unit computed with
   (:class:`harness.arithmetic.Arithmetic`: profile, what torch reported, each library's
   setting, threads, machine); null for units written before it was recorded.
6. ``rebuilt_cache_entries``: the cache entries (decoded images, backbone features) the unit
   found damaged and computed again (its numbers do not depend on them; a damaged disk shows
   here); empty for units written before.
7. ``scheduler``: the batch job that ran the unit (:class:`SchedulerJob`: Slurm's job and
   array task ids, the node, how often it was requeued); null outside a scheduler and for
   units written before.

``result.schema.json`` beside this module is the JSON Schema (draft 2020-12) of the current
version, for tools that read results without this package (:func:`result_json_schema`); the
reader here checks every field itself and does not need it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_type_hints

from harness.arithmetic import Arithmetic
from harness.errors import InvalidOptionError, ResultSchemaError, UnknownNameError
from harness.plan.jobs import UnitKey, dataset_folder
from harness.plan.models import KINDS, ModelRef, canonical_args, variant_kind
from harness.plugins import PluginInfo
from harness.results.metrics import Scores

SCHEMA_VERSION = 7
SCHEMA_FILE = "result.schema.json"  # the JSON Schema of SCHEMA_VERSION, a package file

# The fields of a job's config that only say which replicate a unit is (its split or seed, or the
# unit a noise rerun repeats); the rest is the condition the unit measures, and units are
# aggregated only within one condition.
REPLICATE_FIELDS = ("unit", "split_seed", "seed", "rerun_of")

_DAMAGED = "the file is damaged or was edited by hand: delete its unit folder and rerun the unit"


@dataclass(frozen=True)
class ProtocolRef:
    """The protocol a unit ran under, and its version (numbers of two versions never mix)."""

    name: str
    version: str


@dataclass(frozen=True)
class SplitInfo:
    """The images a unit trained and tested on: its split file (``"whole datasets"``, with no
    hash, for units that run on whole datasets such as cross-dataset pairs) and the part sizes."""

    file: str
    sha256_16: str  # the first 16 hex digits of the split file's SHA-256; "" without a file
    train_images: int
    test_images: int
    validation_images: int


@dataclass(frozen=True)
class Seeds:
    training: int
    split: int | None  # the split index k; None for units that run on whole datasets


@dataclass(frozen=True)
class SchedulerJob:
    """The batch-scheduler job that ran a unit (:func:`harness.results.store.scheduler_job`)."""

    kind: str  # "slurm"
    job_id: str  # "12_3" for task 3 of array 12, as squeue, sacct and scancel name it
    array_job_id: str | None  # None outside an array
    array_task_id: int | None
    node: str
    restarts: int  # how often the job was requeued before this run (a time limit, preemption)


@dataclass(frozen=True)
class Environment:
    """Where a result was produced (:func:`harness.results.store.environment`)."""

    git_commit: str | None  # None outside a git checkout
    git_dirty: bool | None
    python: str
    torch: str
    timm: str
    numpy: str
    lifeiqa: str
    host: str
    platform: str
    cuda_device: str | None  # None on a machine without CUDA
    # None: written before schema version 5, when the arithmetic was not recorded
    arithmetic: Arithmetic | None = None

    @property
    def code_version(self) -> str:
        """The code a result came from, as a reader checks it: the commit, and whether the
        working tree had changes no commit records (then the code cannot be recovered)."""
        if self.git_commit is None:
            return f"lifeiqa {self.lifeiqa} outside a git checkout"
        return self.git_commit[:10] + (" with uncommitted changes" if self.git_dirty else "")

    def same_code(self, other: Environment) -> bool:
        """True only when both are known to be the same code (uncommitted changes never are)."""
        return (self.code_version == other.code_version and not self.git_dirty
                and not other.git_dirty)


class StoredCondition:
    """What a unit's stored job config says of its condition: shared by results and by the
    failure records of units that produced none, so both land in the same table cell."""

    config: dict[str, Any]

    @property
    def train_fraction(self) -> float:
        """The fraction of the training part the unit trained on (data-efficiency; else 1)."""
        return float(self.config.get("train_fraction", 1.0))

    @functools.cached_property  # a stored config is not changed; aggregation asks per result
    def config_hash(self) -> str:
        """The hash of the unit's condition: its config without the replicate fields."""
        return config_hash(self.config)

    @property
    def rerun_of(self) -> str | None:
        """The table unit this one reruns for its cell's noise (None: a table unit)."""
        value = self.config.get("rerun_of")
        return None if value is None else str(value)


@dataclass(frozen=True, kw_only=True)
class UnitResult(StoredCondition):
    """One unit of work's result: the model, data, split and protocol it ran, its test metrics
    and the record of how it ran. Build it with keywords; ``model`` is the typed model."""

    schema_version: int = SCHEMA_VERSION
    suite: str
    protocol: ProtocolRef
    preset: str
    variant: str
    train_dataset: str
    test_dataset: str
    unit: str  # "split_03", "split_03-frac0.4", "seed_01"
    selection: str  # "last", "val" or "oracle"
    selected_epoch: int | None  # None when there are no epochs (see selection_note)
    selection_note: str  # why the selection mode does not apply ("" when it does)
    metrics: Scores  # of the test part, as metrics.evaluate gives them
    per_distortion: dict[str, float]  # SRCC per distortion type; {} without distortion types
    split: SplitInfo
    seeds: Seeds
    config: dict[str, Any]  # the job's config (compared on reruns)
    model_config: dict[str, Any]  # what the model family records about the model it ran
    data: dict[str, dict[str, Any]]  # "train"/"test": where each dataset was read from
    exclusions: tuple[str, ...]  # records left out of the datasets, one problem each
    history: tuple[dict[str, Any], ...]  # per-epoch training log
    device: str
    world_size: int  # processes that trained it (torchrun); 1 otherwise
    environment: Environment
    wall_seconds: float
    analyses: dict[str, Any] = field(default_factory=dict)  # by analysis name; {} without one
    model_kind: str = ""  # "" when built: resolved from the registry (a stored one is kept)
    plugin: PluginInfo | None = None  # the plug-in that made the model; None: the harness's own
    # cache entries found damaged and computed again while it ran
    rebuilt_cache_entries: tuple[str, ...] = ()
    scheduler: SchedulerJob | None = None  # the batch job that ran it; None: none

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ResultSchemaError(f"a UnitResult is of schema version {SCHEMA_VERSION}, not "
                                    f"{self.schema_version}: older files are migrated on reading")
        if not self.model_kind:  # raises UnknownNameError for an unknown variant
            object.__setattr__(self, "model_kind", ModelRef(self.preset, self.variant).kind)

    @property
    def model(self) -> ModelRef:
        """The model, with the kind it was run as (no registry lookup: a plug-in's units read
        back where the plug-in is not installed)."""
        return ModelRef(self.preset, self.variant,
                        canonical_args(self.config.get("model_args", {})), self.model_kind)

    @property
    def dataset_label(self) -> str:
        """The dataset, or ``SOURCE -> TARGET`` for a cross-dataset pair."""
        if self.train_dataset == self.test_dataset:
            return self.train_dataset
        return f"{self.train_dataset} -> {self.test_dataset}"

    @property
    def split_name(self) -> str:
        """The split file as tables name it (:func:`runs_relative`)."""
        return runs_relative(self.split.file, self.suite)

    @property
    def key(self) -> UnitKey:
        """Where the unit's folder is in a results store."""
        return UnitKey(self.suite, self.model.name,
                       dataset_folder(self.train_dataset, self.test_dataset), self.unit)

    def row(self) -> dict[str, str | int | float | None]:
        """The result as one flat row of typed scalars (for a pandas table, one row per unit).
        Free-form parts (config, model_config, history, data) are left out."""
        model = self.model
        return {
            "suite": self.suite, "protocol": self.protocol.name,
            "protocol_version": self.protocol.version, "selection": self.selection,
            "model": model.name, "preset": self.preset, "variant": self.variant,
            "kind": model.kind, "plugin": self.plugin.label if self.plugin else None,
            "train_dataset": self.train_dataset,
            "test_dataset": self.test_dataset, "unit": self.unit,
            "split_file": self.split.file, "split_sha256_16": self.split.sha256_16,
            "train_images": self.split.train_images, "test_images": self.split.test_images,
            "validation_images": self.split.validation_images,
            **self.metrics.to_dict(),
            "training_seed": self.seeds.training, "split_seed": self.seeds.split,
            "selected_epoch": self.selected_epoch, "wall_seconds": self.wall_seconds,
            "device": self.device, "world_size": self.world_size,
            "cuda_device": self.environment.cuda_device,
            "git_commit": self.environment.git_commit,
        }

    def to_json_dict(self) -> dict[str, Any]:
        """The current schema's JSON document (``model`` holds the name the store's folder
        uses, beside ``preset`` and ``variant``)."""
        return {
            "schema_version": self.schema_version, "suite": self.suite,
            "protocol": asdict(self.protocol),
            "model": self.model.name, "preset": self.preset, "variant": self.variant,
            "train_dataset": self.train_dataset, "test_dataset": self.test_dataset,
            "unit": self.unit, "selection": self.selection,
            "selected_epoch": self.selected_epoch, "selection_note": self.selection_note,
            "metrics": self.metrics.to_dict(), "per_distortion": dict(self.per_distortion),
            "split": asdict(self.split), "seeds": asdict(self.seeds),
            "config": self.config, "model_config": self.model_config, "data": self.data,
            "exclusions": list(self.exclusions), "history": list(self.history),
            "device": self.device, "world_size": self.world_size,
            "environment": asdict(self.environment), "wall_seconds": self.wall_seconds,
            "analyses": self.analyses, "model_kind": self.model_kind,
            "plugin": self.plugin.to_dict() if self.plugin else None,
            "rebuilt_cache_entries": list(self.rebuilt_cache_entries),
            "scheduler": asdict(self.scheduler) if self.scheduler else None,
        }

    @classmethod
    def from_json_dict(cls, data: Any, source: str | Path) -> UnitResult:
        """The result in ``data`` (a parsed ``result.json``; ``source`` names it in errors),
        migrated from its schema version to the current one."""
        version = document_version(data, "schema_version", SCHEMA_VERSION, source,
                                   "result schema versions", "rerun the unit with this one",
                                   f"; {_DAMAGED}")
        for step in range(version, SCHEMA_VERSION):
            try:
                data = MIGRATIONS[step](data)
            except UnknownNameError as err:  # a model this version of the harness no longer has
                raise ResultSchemaError(f"{source}: field 'variant': {err}") from err
        return _read_current(_Fields(data, source))


def result_json_schema() -> dict[str, Any]:
    """The JSON Schema of a :data:`SCHEMA_VERSION` ``result.json`` (a fresh copy)."""
    text = resources.files("harness.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def document_version(data: Any, field: str, current: int, source: str | Path, what: str,
                     redo: str, damaged: str = "") -> int:
    """The version of a versioned JSON document (``result.json``, ``leaderboard.json``): its
    ``field``, 1 when absent (written before versioning). A non-object, a version that is not
    a whole number >= 1 (``damaged`` is appended: what to do) or one newer than ``current``
    raises :class:`ResultSchemaError` naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise ResultSchemaError(f"{source}: expected a JSON object, found "
                                f"{type(data).__name__}{damaged}")
    version = data.get(field, 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultSchemaError(f"{source}: field {field!r}: expected a whole number >= 1, "
                                f"found {version!r}{damaged}")
    if version > current:
        raise ResultSchemaError(
            f"{source}: field {field!r} is {version}, but this harness reads {what} up to "
            f"{current}: it was written by a newer harness; upgrade lifeiqa-bench to read it "
            f"(or {redo})")
    return version


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of ``config`` without :data:`REPLICATE_FIELDS` (JSON with
    sorted keys): equal for every replicate of one condition."""
    condition = {k: v for k, v in config.items() if k not in REPLICATE_FIELDS}
    text = json.dumps(condition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def runs_relative(file: str, suite: str) -> str:
    """A split file named relative to the runs folder (``SUITE/splits/DATASET/split_00.json``,
    where the runner writes them) or to the repository (``protocols/splits/...``, the frozen
    ones), whatever absolute or working-directory path the unit recorded; other text
    (``whole datasets``) as it is. Tables never show a machine's absolute paths."""
    path = file.replace("\\", "/")
    for marker in (f"{suite}/splits/", "protocols/splits/"):
        if path.startswith(marker):
            return path
        at = path.rfind("/" + marker)
        if at >= 0:
            return path[at + 1:]
    return path


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no ``schema_version``) -> 2: fields older writers left out get the value they
    stood for (no zero-shot note, one process, no distortion types)."""
    return {"selection_note": "", "world_size": 1, "per_distortion": {}, **data,
            "schema_version": 2}


# MIGRATIONS[k] turns a version-k document into a version-(k + 1) one.
def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 -> 3: no analyses were computed before the field existed."""
    return {"analyses": {}, **data, "schema_version": 3}


def _v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 -> 4: units before plug-ins were of the harness's own models, whose kind the
    registry gives (an unknown variant raises, naming it)."""
    kind = variant_kind(str(data.get("variant"))) if "model_kind" not in data else data["model_kind"]
    return {"plugin": None, **data, "model_kind": kind, "schema_version": 4}


def _v4_to_v5(data: dict[str, Any]) -> dict[str, Any]:
    """Version 4 -> 5: the arithmetic of older units is unknown."""
    environment = data.get("environment")
    if isinstance(environment, dict):
        environment = {"arithmetic": None, **environment}
    return {**data, "environment": environment, "schema_version": 5}


def _v5_to_v6(data: dict[str, Any]) -> dict[str, Any]:
    """Version 5 -> 6: what older units rebuilt was not recorded."""
    return {"rebuilt_cache_entries": [], **data, "schema_version": 6}


def _v6_to_v7(data: dict[str, Any]) -> dict[str, Any]:
    """Version 6 -> 7: which scheduler job ran older units was not recorded."""
    return {"scheduler": None, **data, "schema_version": 7}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7}


class _Fields:
    """Typed access to a result document's fields; every failure names the file and field."""

    def __init__(self, data: Mapping[str, Any], source: str | Path, prefix: str = "") -> None:
        self.data, self.source, self.prefix = data, source, prefix
        self.read: set[str] = set()

    def error(self, name: str, problem: str) -> ResultSchemaError:
        return ResultSchemaError(f"{self.source}: field {self.prefix + name!r}: {problem}; "
                                 f"{_DAMAGED}")

    def get(self, name: str, kind: type, optional: bool = False) -> Any:
        """Field ``name``, of type ``kind`` (or None when ``optional``)."""
        self.read.add(name)
        if name not in self.data:
            raise self.error(name, "missing")
        value = self.data[name]
        if value is None and optional:
            return None
        # an int is a valid float (JSON has one number type); a bool is no int
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            expected = kind.__name__ + (" or null" if optional else "")
            raise self.error(name, f"expected {expected}, found {_short(value)}")
        return value

    def items(self, name: str, kind: type) -> list[Any]:
        """A list field whose items are all of ``kind``."""
        values: list[Any] = self.get(name, list)
        wrong = next((v for v in values if not isinstance(v, kind)), None)
        if wrong is not None:
            raise self.error(name, f"expected a list of {kind.__name__}, found an item {_short(wrong)}")
        return values

    def part(self, name: str) -> _Fields:
        return _Fields(self.get(name, dict), self.source, f"{self.prefix}{name}.")

    def build(self, cls: type) -> Any:
        """The dataclass ``cls`` from this part's fields, each read with its annotated type
        (``X`` or ``X | None``; a dataclass field is built the same way); unknown fields are
        refused."""
        hints = get_type_hints(cls)
        values = {}
        for f in fields(cls):
            kinds = get_args(hints[f.name]) or (hints[f.name],)
            optional = type(None) in kinds
            kind: type = next(k for k in kinds if k is not type(None))
            if is_dataclass(kind):
                present = self.get(f.name, dict, optional) is not None
                values[f.name] = self.part(f.name).build(kind) if present else None
            else:
                values[f.name] = self.get(f.name, kind, optional)
        self.done()
        return cls(**values)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.error(unknown[0], f"unknown field (of schema version {SCHEMA_VERSION}); "
                                          f"known: {', '.join(sorted(self.read))}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_current(document: _Fields) -> UnitResult:
    document.get("schema_version", int)
    preset, variant = document.get("preset", str), document.get("variant", str)
    config = document.get("config", dict)
    kind = document.get("model_kind", str)
    if kind not in KINDS:
        raise document.error("model_kind", f"expected one of {', '.join(KINDS)}, found {kind!r}")
    try:
        model = ModelRef(preset, variant, canonical_args(config.get("model_args", {})), kind)
    except InvalidOptionError as err:
        raise document.error("config", f"model_args: {err}") from err
    plugin = document.get("plugin", dict, optional=True)
    if plugin is not None:
        plugin = document.part("plugin").build(PluginInfo)
    scheduler = document.get("scheduler", dict, optional=True)
    if scheduler is not None:
        scheduler = document.part("scheduler").build(SchedulerJob)
    stored_model = document.get("model", str)
    if stored_model != model.name:
        raise document.error("model", f"{stored_model!r} is not the name of preset {preset!r} "
                                       f"with variant {variant!r} ({model.name!r})")
    per_distortion, data = document.part("per_distortion"), document.part("data")
    result = UnitResult(
        suite=document.get("suite", str),
        protocol=document.part("protocol").build(ProtocolRef),
        preset=preset, variant=variant,
        train_dataset=document.get("train_dataset", str),
        test_dataset=document.get("test_dataset", str),
        unit=document.get("unit", str), selection=document.get("selection", str),
        selected_epoch=document.get("selected_epoch", int, optional=True),
        selection_note=document.get("selection_note", str),
        metrics=document.part("metrics").build(Scores),
        per_distortion={name: per_distortion.get(name, float) for name in per_distortion.data},
        split=document.part("split").build(SplitInfo),
        seeds=document.part("seeds").build(Seeds),
        config=config, model_config=document.get("model_config", dict),
        data={name: data.get(name, dict) for name in data.data},
        exclusions=tuple(document.items("exclusions", str)),
        history=tuple(document.items("history", dict)), device=document.get("device", str),
        world_size=document.get("world_size", int),
        environment=document.part("environment").build(Environment),
        wall_seconds=document.get("wall_seconds", float),
        analyses=document.get("analyses", dict), model_kind=kind, plugin=plugin,
        rebuilt_cache_entries=tuple(document.items("rebuilt_cache_entries", str)),
        scheduler=scheduler,
    )
    document.done()
    return result
