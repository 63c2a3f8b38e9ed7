"""Release models: one Life-IQA model trained on a whole dataset part, the model a user installs
as a metric (``lifeiqa-bench train``), as opposed to one unit of a protocol.

    import harness
    trained = harness.train_release(harness.TrainOptions(
        out="lifeiqa-koniq.safetensors", dataset="koniq10k", data_root="/data"))
    trained.scores.srcc      # on the test part, at the validation-selected epoch

The data is divided by the partition the dataset's release defines (KonIQ-10k's ``set``
column: training, validation, test) or by a split file; the model trains on the training part
with the authors' recipe for the dataset (on a CPU, or on the synthetic stand-in when no data is
given: ``cpu_demo`` for longer, on [0, 1] targets), the epoch is chosen on the validation part,
and the test part is scored once. The checkpoint embeds its label scale and its provenance
(dataset, split, recipe, selection, git commit, test scores, date); a JSON report beside it adds
the epoch history and the test predictions. With ``register`` the checkpoint becomes a pyiqa
metric name's default weights (:mod:`lifeiqa.weights`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.partitions import Partition, group_partition, official_partition
from harness.data.records import SYNTH_PREFIX
from harness.data.registry import get_dataset_spec
from harness.data.sources import DataSources, cache_root
from harness.data.validate import require_valid
from harness.device import resolve_device
from harness.engine.families import EngineContext, family_for
from harness.engine.parts import JobParts, LoadedDataset
from harness.engine.runner import checkpoint_label_scale
from harness.errors import DataNotFoundError, InvalidOptionError, unknown_name
from harness.fileio import atomic_write_text
from harness.plan.jobs import Job
from harness.plan.models import ModelRef
from harness.plan.options import SYNTH_SIZES, check_preset
from harness.plan.protocols import PROTOCOL_DIR
from harness.plan.recipes import RECIPES, Recipe, get_recipe
from harness.plan.splits import read_split
from harness.results import metrics
from harness.results.store import environment
from lifeiqa import weights
from lifeiqa.errors import UnknownModelError

log = logging.getLogger(__name__)

OFFICIAL = "official"
# The CPU default: cpu_demo's frozen backbone and half-width decoder, trained for longer (a
# release model is trained once, not once per split) and on [0, 1] targets (on KonIQ's native
# 0-100 MOS three CPU epochs leave the model near chance). --set changes these too.
CPU_RECIPE, CPU_OVERRIDES = "cpu_demo", {"label_scale": "unit", "epochs": 20}
SELECTIONS = ("val", "last")  # never the test part: a release model's test score is reported
RELEASE_VERSION = "1"


@dataclass(frozen=True)
class TrainOptions:
    """What ``lifeiqa-bench train`` is asked to make; checked before any work.

    ``split``: ``official`` (the partition the dataset's release defines) or a split file (a
    path, or a name under ``protocols/splits/<dataset>/``) whose parts are content groups.
    With neither ``data_root`` nor ``dataset_root`` the synthetic stand-in of the dataset is
    used (``synth_size``). ``recipe``: by default the authors' for the dataset, or ``cpu_demo``
    with :data:`CPU_OVERRIDES` on a CPU or synthetic data. ``register``: a pyiqa metric name to
    install the result as (``replace`` to replace weights already registered for it).
    """

    out: str
    dataset: str = "koniq10k"
    split: str = OFFICIAL
    data_root: str | None = None  # a folder holding <dataset>/
    dataset_root: str | None = None  # the dataset's own folder
    synth_size: str = "small"
    model: str | None = None  # a Life-IQA preset; default: the recipe's
    recipe: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # recipe field -> value
    selection: str = "val"
    seed: int = 0
    device: str = "auto"
    exclude_bad: bool = False
    register: str | None = None
    replace: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", dict(self.overrides))
        object.__setattr__(self, "dataset", get_dataset_spec(self.dataset).name)
        out = Path(self.out).expanduser()
        if out.suffix != ".safetensors":
            raise InvalidOptionError(f"--out {self.out}: checkpoints are .safetensors files")
        if out.exists() and not self.overwrite:
            raise InvalidOptionError(f"--out {self.out} exists: pass --overwrite to replace it")
        if self.selection not in SELECTIONS:
            raise InvalidOptionError(f"--selection {self.selection!r}: expected one of "
                                     f"{', '.join(SELECTIONS)} (a release model's test part is "
                                     f"scored once, never used to choose)")
        if self.synth_size not in SYNTH_SIZES:
            raise InvalidOptionError(f"--synth-size {self.synth_size!r}: expected one of "
                                     f"{', '.join(SYNTH_SIZES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidOptionError(f"--seed {self.seed!r}: expected an integer >= 0")
        for flag, folder in (("--data-root", self.data_root), ("--dataset-root", self.dataset_root)):
            if folder is not None and not Path(folder).expanduser().is_dir():
                raise DataNotFoundError(f"{flag} {folder}: no such folder")
        if self.recipe is not None:
            get_recipe(self.recipe)
        if self.model is not None:
            check_preset(self.model)
        if self.register is not None:
            try:
                weights.metric_preset(self.register)
            except UnknownModelError:
                raise unknown_name("metric name", self.register, weights.metric_names(),
                                   "(for --register)") from None
            if weights.registered_weights(self.register) and not self.replace:
                raise InvalidOptionError(f"--register {self.register}: weights are already "
                                         f"registered for it ({weights.weights_dir()}); pass "
                                         f"--replace to replace them")
        resolve_device(self.device)

    @property
    def synthetic(self) -> bool:
        return not (self.data_root or self.dataset_root)

    @property
    def dataset_name(self) -> str:
        """The name the data is loaded and recorded under (``synth-<dataset>`` when synthetic)."""
        return f"{SYNTH_PREFIX}{self.dataset}" if self.synthetic else self.dataset

    def sources(self) -> DataSources:
        root = Path(self.data_root).expanduser() if self.data_root else None
        roots = ((self.dataset, self.dataset_root),) if self.dataset_root else ()
        return DataSources(root, roots, self.synth_size)


@dataclass(frozen=True)
class ReleasePlan:
    """Valid options resolved: the recipe (overrides applied), the preset, the device, and the
    split file when the split is not the official one."""

    options: TrainOptions
    recipe: Recipe
    overrides: dict[str, Any]  # the recipe fields changed: the CPU default's, then the user's
    preset: str
    device: str
    split_file: Path | None


def _split_file(options: TrainOptions) -> Path | None:
    if options.split == OFFICIAL:
        if get_dataset_spec(options.dataset).official_partition is None:
            raise InvalidOptionError(
                f"--split official: {options.dataset}'s release defines no train/validation/test "
                f"partition; pass --split FILE, a split file with a validation part (e.g. one of "
                f"{PROTOCOL_DIR / 'splits' / options.dataset}/split_00-val.json)")
        return None
    path = Path(options.split).expanduser()
    named = PROTOCOL_DIR / "splits" / options.dataset / f"{options.split}.json"
    for candidate in (path, named):
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(f"--split {options.split}: expected 'official', a split file, or a "
                            f"name in {named.parent}")


def plan_release(options: TrainOptions) -> ReleasePlan:
    """Resolve ``options``; every mistake raises InvalidOptionError before any work."""
    device = resolve_device(options.device)
    defaults: dict[str, Any] = {}
    if options.recipe:
        name = options.recipe
    elif options.synthetic or device.type == "cpu":
        name, defaults = CPU_RECIPE, CPU_OVERRIDES
    else:
        name = f"authors_{options.dataset}"
        if name not in RECIPES:
            raise InvalidOptionError(f"no authors' recipe for {options.dataset}; pass --recipe "
                                     f"(one of {', '.join(sorted(RECIPES))})")
    overrides = {**defaults, **options.overrides}
    recipe = get_recipe(name).override(**overrides)
    if recipe.mode == "zero_shot":
        raise InvalidOptionError(f"recipe {recipe.name} trains nothing (mode zero_shot)")
    preset = options.model or recipe.model
    check_preset(preset)
    recipe = recipe.override(model=preset)
    if options.register:
        wanted = weights.metric_preset(options.register)
        if not weights.fits(wanted, lifeiqa.get_spec(preset).config):
            raise InvalidOptionError(
                f"--register {options.register}: the metric is "
                f"{weights.describe_architecture(lifeiqa.get_spec(wanted).config)}, but "
                f"{preset} is {weights.describe_architecture(lifeiqa.get_spec(preset).config)}; "
                f"pass --model with a preset on the metric's backbone")
    if not options.synthetic and not options.sources().has(options.dataset):
        raise DataNotFoundError(f"--data-root {options.data_root}: no folder named "
                                f"{options.dataset!r} in it (any letter case); pass "
                                f"--dataset-root PATH for the dataset's own folder")
    return ReleasePlan(options, recipe, overrides, preset, str(device), _split_file(options))


@dataclass(frozen=True)
class ReleaseModel:
    """What :func:`train_release` made."""

    checkpoint: Path
    report: Path  # the JSON report: provenance, epoch history, test predictions
    provenance: dict[str, Any]
    scores: metrics.Scores
    registered: Path | None  # the registered copy, with ``register``


def _partition(plan: ReleasePlan, loaded: LoadedDataset) -> Partition:
    dataset = loaded.dataset
    if plan.split_file is None:
        return official_partition(dataset, get_dataset_spec(plan.options.dataset))
    try:
        split = read_split(plan.split_file, dataset.groups)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InvalidOptionError(f"--split {plan.split_file}: {err}") from err
    return group_partition(dataset, {"train": split.train, "val": split.validation,
                                     "test": split.test}, str(plan.split_file))


def _fingerprint(partition: Partition) -> str:
    """SHA-256 (16 hex digits) of the sorted ``image part`` lines: the partition, whatever file
    it came from."""
    lines = sorted(f"{r.image_id} {part}" for part in ("train", "val", "test")
                   for r in getattr(partition, part))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def train_release(options: TrainOptions) -> ReleaseModel:
    """Train, select, test, save (and register) one release model; see the module's docstring."""
    plan = plan_release(options)
    recipe, name = plan.recipe, options.dataset_name
    sources = options.sources()
    raw = sources.load(name)
    # synthetic sets are checked without the real dataset's expected counts
    spec = None if options.synthetic else get_dataset_spec(options.dataset)
    dataset, _, excluded = require_valid(raw, spec, options.exclude_bad)
    loaded = LoadedDataset(dataset, excluded)
    partition = _partition(plan, loaded)
    sizes = partition.sizes()
    if options.selection == "val" and not partition.val:
        raise InvalidOptionError(f"--selection val: {partition.source} has no validation part; "
                                 f"use a split file with one, or --selection last")
    log.info("%s: %s, parts %s (%s)", name, options.split, sizes, partition.source)
    total = sum(sizes.values())
    job = Job(suite="release", protocol="release", protocol_version=RELEASE_VERSION,
              kind="release", model=ModelRef(plan.preset), train_dataset=name, test_dataset=name,
              unit=options.split if plan.split_file is None else plan.split_file.stem,
              split_seed=None, seed=options.seed, train_fraction=1.0,
              test_fraction=sizes["test"] / total, validation_fraction=sizes["val"] / total,
              selection=options.selection, breakdown="none", recipe=recipe)
    parts = JobParts.with_targets(loaded, loaded, list(partition.train), list(partition.test),
                                  list(partition.val), recipe.label_scale, partition.source)
    device = resolve_device(plan.device)
    context = EngineContext(device, DecodedImageCache(cache_root() / "images"), cache_root())
    log.info("training %s on %s with recipe %s (%s, %d epochs) on %s", plan.preset, name,
             recipe.name, recipe.mode, recipe.epochs, device)
    trained = family_for(job.model).fit_predict(
        job, parts, context, lambda entry: log.info("epoch %s: %s", entry["epoch"], entry))
    model = trained.model
    if not isinstance(model, lifeiqa.LifeIQA):
        raise InvalidOptionError(f"{plan.preset} with recipe {recipe.name} trains no Life-IQA model")
    higher = trained.higher_is_better if trained.higher_is_better is not None else (
        recipe.label_scale == "unit" or dataset.scale.higher_is_better)
    predictions = trained.outcome.predictions
    native = np.array([r.score for r in partition.test])
    scores = metrics.evaluate(predictions if higher else -predictions, native,
                              dataset.scale.higher_is_better)
    env = environment()
    provenance = {
        "dataset": name, "synthetic": options.synthetic, "dataset_root": str(dataset.root),
        "layout": dataset.layout, "exclusions": len(excluded),
        "split": options.split if plan.split_file is None else str(plan.split_file),
        "split_source": partition.source, "partition_sha256_16": _fingerprint(partition),
        "parts": sizes, "model": plan.preset, "recipe": recipe.name,
        "recipe_fields": recipe.to_dict(), "overrides": plan.overrides,
        "selection": options.selection, "selected_epoch": trained.outcome.selected_epoch,
        "seed": options.seed, "device": str(device), "git_commit": env.git_commit,
        "git_dirty": env.git_dirty, "environment": dataclasses.asdict(env),
        "test": scores.to_dict(), "test_crops": recipe.test_crops,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "release_version": RELEASE_VERSION,
    }
    out = Path(options.out).expanduser()
    lifeiqa.save_checkpoint(model, out, label_scale=checkpoint_label_scale(recipe, dataset),
                            provenance=provenance)
    report = out.with_suffix(".json")
    atomic_write_text(report, json.dumps({
        "checkpoint": str(out), "provenance": provenance, "history": trained.outcome.history,
        "test_predictions": [{"image_id": r.image_id, "score": r.score, "prediction": float(p)}
                             for r, p in zip(partition.test, predictions, strict=True)],
    }, indent=1))
    registered = None
    if options.register:
        registered = weights.add_weights(out, options.register, replace=options.replace).path
    log.info("test (%d images): SRCC %.4f PLCC %.4f; wrote %s", scores.n, scores.srcc,
             scores.plcc, out)
    return ReleaseModel(out, report, provenance, scores, registered)
