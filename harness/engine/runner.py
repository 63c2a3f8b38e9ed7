"""Running jobs: data -> split -> model -> training -> metrics -> results store.

A unit that already has a result with the same config is skipped, so an interrupted suite
resumes where it stopped. A unit that fails (a non-finite loss, a bad file) is reported with its
config and the others go on; nothing is written for it as if it had succeeded.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import Dataset, ImageRecord, Problem
from harness.data.registry import get_dataset_spec
from harness.data.sources import SYNTH_PREFIX, DataSources, cache_root
from harness.data.validate import require_valid
from harness.device import resolve_device
from harness.engine import distributed
from harness.engine.families import probe, pyiqa_arch
from harness.engine.families.probe import StageExtractor
from harness.engine.families.training_free import ZeroShotScorer
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.train import TrainOutcome, train_finetune, train_frozen
from harness.plan.baselines import get_baseline, is_baseline
from harness.plan.jobs import Job
from harness.plan.protocols import PROTOCOL_DIR
from harness.plan.splits import Split, plan_split, read_split, subsample_train, write_split
from harness.results import metrics
from harness.results.store import ResultsStore, environment
from lifeiqa import LabelScale


@dataclass
class LoadedDataset:
    dataset: Dataset
    exclusions: list[Problem]


@dataclass
class JobData:
    source: LoadedDataset
    target: LoadedDataset
    train: list[ImageRecord]
    test: list[ImageRecord]
    val: list[ImageRecord]
    split_file: str
    split_sha256_16: str = ""


@dataclass
class Trained:
    """A trained (or fitted, or training-free) model's test predictions and what it was."""

    outcome: TrainOutcome
    model: torch.nn.Module | None  # None when nothing was trained with gradients
    info: dict  # recorded as the result's model_config
    higher_is_better: bool | None = None  # None: as the training labels
    selection_note: str = ""  # set when there are no epochs to select from


@dataclass
class RunSummary:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)


def targets_of(records: list[ImageRecord], dataset: Dataset, label_scale: str) -> np.ndarray:
    scores = np.array([r.score for r in records], dtype=np.float64)
    if label_scale == "unit":
        return np.array([dataset.scale.to_unit(s) for s in scores])
    return scores


class JobRunner:
    def __init__(self, store: ResultsStore, sources: DataSources, device: str = "auto",
                 exclude_bad: bool = False, save_checkpoints: bool = False,
                 log=print) -> None:
        self.store = store
        self.sources = sources
        self.device = resolve_device(device)
        self.exclude_bad = exclude_bad
        self.save_checkpoints = save_checkpoints
        self.log = log
        self._datasets: dict[str, LoadedDataset] = {}
        self.images = DecodedImageCache(cache_root() / "images")

    def dataset(self, name: str) -> LoadedDataset:
        if name not in self._datasets:
            raw = self.sources.load(name)
            spec = None if name.startswith(SYNTH_PREFIX) else get_dataset_spec(name)
            dataset, _, excluded = require_valid(raw, spec, self.exclude_bad)
            self._datasets[name] = LoadedDataset(dataset, excluded)
        return self._datasets[name]

    def split(self, job: Job, dataset: Dataset) -> tuple[Split, str]:
        """The job's split and the file that records it: the committed frozen file when it
        matches, else one written beside the results (every number names its split file)."""
        planned = plan_split(dataset.name, dataset.groups, job.split_seed, job.test_fraction,
                             job.validation_fraction)
        name = f"split_{job.split_seed:02d}" + ("-val" if planned.validation else "") + ".json"
        frozen = PROTOCOL_DIR / "splits" / dataset.name / name
        if frozen.is_file() and read_split(frozen) == planned:
            path = frozen
        else:
            path = self.store.root / job.suite / "splits" / dataset.name / name
            if not path.is_file() or read_split(path) != planned:
                write_split(planned, path)
        split = subsample_train(planned, job.train_fraction) if job.train_fraction < 1 else planned
        return split, str(path)

    def parts(self, job: Job) -> JobData:
        """The job's training, test and validation records and where they came from."""
        source = self.dataset(job.train_dataset)
        target = self.dataset(job.test_dataset)
        if job.kind == "splits":
            split, split_path = self.split(job, source.dataset)
            part = {}
            for name, groups in (("train", split.train), ("test", split.test),
                                 ("val", split.validation)):
                chosen = set(groups)
                part[name] = [r for r in source.dataset.records if r.group in chosen]
            digest = hashlib.sha256(Path(split_path).read_bytes()).hexdigest()[:16]
            return JobData(source, target, part["train"], part["test"], part["val"], split_path,
                           digest)
        train, val = list(source.dataset.records), []
        if job.validation_fraction > 0:
            held = set(plan_split(source.dataset.name, source.dataset.groups, job.seed,
                                  job.validation_fraction).test)
            val = [r for r in train if r.group in held]
            train = [r for r in train if r.group not in held]
        return JobData(source, target, train, list(target.dataset.records), val, "whole datasets")

    def build_model(self, job: Job) -> lifeiqa.LifeIQA:
        """The job's Life-IQA: the preset, with its ablation or a baseline's config changes."""
        torch.manual_seed(job.seed)
        spec = lifeiqa.get_spec(job.preset)
        changes = get_baseline(job.variant).settings.get("config", {}) \
            if is_baseline(job.variant) else {}
        ablation = None if job.variant == "full" or is_baseline(job.variant) else job.variant
        return lifeiqa.create_model(job.preset, pretrained=spec.pretrained_weights is not None,
                                    ablation=ablation, **changes)

    def _features(self, model: lifeiqa.LifeIQA, recipe, extractor=None) -> FeatureCache:
        plan = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size,
                        recipe.resize_policy, recipe.hflip)
        return FeatureCache(cache_root() / "features", model, plan, self.images, self.device,
                            extractor)

    def train(self, job: Job, data: JobData, train_y: np.ndarray, test_y: np.ndarray,
              val_y: np.ndarray | None, on_epoch=None) -> Trained:
        """Train (or fit, or just apply) the job's model by its family."""
        recipe = job.recipe
        train, test, val = data.train, data.test, data.val
        baseline = get_baseline(job.variant) if is_baseline(job.variant) else None
        family = baseline.family if baseline else "lifeiqa"
        if family == "training_free":
            scorer = ZeroShotScorer(baseline, cache_root() / "zero_shot", self.images,
                                    recipe.resize_policy, self.device)
            info = {**scorer.describe(), "trained_on": list(baseline.trained_on or ())}
            return Trained(TrainOutcome(scorer.predict(test), 0), None, info,
                           not scorer.lower_better,
                           "zero-shot: no training, no epochs")
        if family == "pyiqa_arch":
            model = pyiqa_arch.build(baseline)
            torch.manual_seed(job.seed)
            outcome = train_finetune(model, recipe, train, train_y, test, test_y, self.images,
                                     job.selection, val, val_y, self.device, job.seed, on_epoch)
            return Trained(outcome, model, model.description)
        model = self.build_model(job)
        if family == "probe":
            stride = baseline.settings["stride"]
            features = self._features(model, recipe, StageExtractor(model))
            x_train = probe.stage_matrix(features.get_all(train, "train"), stride)
            weights, alpha, gcv = probe.fit_ridge(x_train, np.repeat(train_y, recipe.train_crops))
            x_test = probe.stage_matrix(features.get_all(test, "test"), stride)
            predictions = probe.per_image(probe.predict_ridge(weights, x_test), recipe.test_crops)
            info = {"probe_stride": stride, "backbone": model.config.backbone,
                    "features": int(x_train.shape[1]), "ridge_alpha": alpha, "gcv": gcv}
            return Trained(TrainOutcome(predictions, 0, [{"ridge_alpha": alpha, "gcv": gcv}]),
                           None, info, None,
                           "closed form: ridge alpha by generalised cross-validation on the "
                           "training crops, no epochs")
        if recipe.mode == "frozen":
            features = self._features(model, recipe)
            outcome = train_frozen(model, recipe, features.get_all(train, "train"), train_y,
                                   features.get_all(test, "test"), test_y, job.selection,
                                   features.get_all(val, "test"), val_y, self.device, job.seed,
                                   on_epoch)
        elif recipe.mode == "finetune":
            outcome = train_finetune(model, recipe, train, train_y, test, test_y, self.images,
                                     job.selection, val, val_y, self.device, job.seed, on_epoch)
        else:
            raise ValueError(f"recipe {recipe.name}: mode {recipe.mode!r} needs a training-free "
                             f"baseline, not {job.model_name}")
        return Trained(outcome, model, model.config.to_dict())

    def run(self, job: Job, on_epoch=None) -> dict:
        start = time.perf_counter()
        data = self.parts(job)
        source, target, train, test, val = data.source, data.target, data.train, data.test, data.val
        recipe = job.recipe
        train_y = targets_of(train, source.dataset, recipe.label_scale)
        test_y = targets_of(test, target.dataset, recipe.label_scale)
        val_y = targets_of(val, source.dataset, recipe.label_scale) if val else None
        trained = self.train(job, data, train_y, test_y, val_y, on_epoch)
        outcome, model = trained.outcome, trained.model
        # Orient predictions so that higher means better quality before correlating.
        train_higher = trained.higher_is_better if trained.higher_is_better is not None else (
            recipe.label_scale == "unit" or source.dataset.scale.higher_is_better)
        oriented = outcome.predictions if train_higher else -outcome.predictions
        native_test = np.array([r.score for r in test])
        scores = metrics.evaluate(oriented, native_test, target.dataset.scale.higher_is_better)
        result = {
            "protocol": {"name": job.protocol, "version": job.protocol_version},
            "suite": job.suite, "model": job.model_name, "preset": job.preset,
            "variant": job.variant, "train_dataset": job.train_dataset,
            "test_dataset": job.test_dataset, "unit": job.unit,
            "selection": job.selection,
            "selected_epoch": outcome.selected_epoch if not trained.selection_note else None,
            "selection_note": trained.selection_note,
            "metrics": scores.to_dict(),
            "split": {"file": data.split_file, "sha256_16": data.split_sha256_16,
                      "train_images": len(train), "test_images": len(test),
                      "validation_images": len(val)},
            "config": job.config(),
            "model_config": trained.info,
            "data": {"train": self.sources.describe(job.train_dataset),
                     "test": self.sources.describe(job.test_dataset)},
            "exclusions": [str(p) for p in source.exclusions
                           + (target.exclusions if target is not source else [])],
            "seeds": {"training": job.seed, "split": job.split_seed},
            "history": outcome.history,
            "device": str(self.device), "world_size": distributed.world_size(),
            "environment": environment(),
            "wall_seconds": round(time.perf_counter() - start, 2),
        }
        if any(r.distortion for r in test):  # cheap, so always; the protocol decides display
            result["per_distortion"] = per_distortion_srcc(test, oriented, native_test,
                                                           target.dataset.scale.higher_is_better)
        predictions = [{"image_id": r.image_id, "group": r.group, "distortion": r.distortion or "",
                        "level": r.level if r.level is not None else "", "score": r.score,
                        "prediction": float(p)} for r, p in zip(test, outcome.predictions,
                                                                 strict=True)]
        if self.save_checkpoints and isinstance(model, lifeiqa.LifeIQA) and distributed.is_main():
            scale = source.dataset.scale
            label = (LabelScale("unit", 0.0, 1.0, True, job.train_dataset)
                     if recipe.label_scale == "unit" else
                     LabelScale("native", scale.low, scale.high, scale.higher_is_better,
                                job.train_dataset))
            lifeiqa.save_checkpoint(model, self.store.unit_dir(job.key) / "checkpoint.safetensors",
                                    label_scale=label)
        if distributed.is_main():  # under torchrun, rank 0 writes for all ranks
            self.store.write(job.key, result, predictions)
        return result

    def run_all(self, jobs: list[Job], force: bool = False,
                take: Callable[[Job], bool] | None = None) -> RunSummary:
        """Run the jobs that have no result yet, with a progress display on stderr (suite
        progress with ETA, and the current job's epochs) and one line per finished unit.

        ``take``: a queue shared with other processes (``--executor pool``); a job it does not
        hand to this process is theirs, and left out of this summary."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        summary = RunSummary()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True,
                      disable=not distributed.is_main()) as progress:  # torchrun: rank 0's
            suite = progress.add_task(f"suite {jobs[0].suite if jobs else ''}", total=len(jobs))
            epochs = progress.add_task("", total=None, visible=False)
            for index, job in enumerate(jobs, start=1):
                if not force and self.store.is_complete(job.key, job.config()):
                    summary.skipped.append(job)
                    progress.advance(suite)
                    continue
                if take is not None and not take(job):
                    progress.advance(suite)
                    continue
                label = f"[{index}/{len(jobs)}] {job.model_name} {job.dataset_label} {job.unit}"
                progress.update(epochs, description=f"  {label} epoch", completed=0,
                                total=job.recipe.epochs, visible=True)

                def on_epoch(entry: dict, task=epochs) -> None:
                    progress.update(task, completed=entry["epoch"])

                try:
                    with distributed.claim(self.store, job.key):
                        # another process may have finished it since the check above
                        finished = not force and self.store.is_complete(job.key, job.config())
                        result = None if finished else self.run(job, on_epoch)
                    if result is None:
                        summary.skipped.append(job)
                        progress.advance(suite)
                        continue
                    summary.done.append(job)
                    m = result["metrics"]
                    self.log(f"{label}: SRCC {m['srcc']:.4f} PLCC {m['plcc']:.4f} "
                             f"({job.selection}, epoch {result['selected_epoch']}, "
                             f"{result['wall_seconds']:.0f} s)")
                except Exception as err:  # one unit's failure must not stop the suite
                    message = f"{type(err).__name__}: {err}"
                    summary.failed.append((job, message))
                    self.log(f"{label}: FAILED {message}\n  config: {job.config()}")
                    if not isinstance(err, (RuntimeError, ValueError, OSError)):
                        self.log(traceback.format_exc())
                progress.advance(suite)
        return summary


def per_distortion_srcc(records: list[ImageRecord], predictions: np.ndarray, targets: np.ndarray,
                        higher_is_better: bool) -> dict[str, float]:
    by_type: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if record.distortion:
            by_type.setdefault(record.distortion, []).append(i)
    oriented = targets if higher_is_better else -targets
    return {name: metrics.srcc(predictions[idx], oriented[idx])
            for name, idx in sorted(by_type.items()) if len(idx) >= 2}
