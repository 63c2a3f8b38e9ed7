"""Running jobs: data -> split -> model -> training -> metrics -> results store.

A unit that already has a result with the same config is skipped, so an interrupted suite
resumes where it stopped. A unit that fails (a non-finite loss, a bad file) is reported with its
config and the others go on; nothing is written for it as if it had succeeded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import Dataset, ImageRecord
from harness.data.sources import DataSources, cache_root
from harness.data.validate import require_valid
from harness.device import resolve_device
from harness.engine import distributed
from harness.engine.families import EngineContext, EpochCallback, Trained, family_for
from harness.engine.parts import JobParts, LoadedDataset
from harness.engine.resume import RESUME_FILE, EpochResume
from harness.engine.train import NonFiniteLossError
from harness.errors import HarnessError, ResultsError, RunInterruptedError
from harness.fileio import folder_name
from harness.plan.jobs import Job
from harness.plan.protocols import PROTOCOL_DIR
from harness.plan.recipes import Recipe
from harness.plan.splits import Split, plan_split, read_split, subsample_train, write_split
from harness.results import metrics
from harness.results.schema import ProtocolRef, Seeds, SplitInfo, UnitResult
from harness.results.store import ResultsStore, UnitBusyError, environment, scheduler_job
from lifeiqa import LabelScale

logger = logging.getLogger(__name__)
BUSY_POLL_SECONDS = 2.0  # how often a run waiting for another process's unit looks again


@dataclass
class RunSummary:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)


def prepare_data(jobs: list[Job], sources: DataSources) -> None:
    """Generate the synthetic datasets the jobs read now: once, by the launching process,
    rather than by several workers or tasks at the same time. (A missing real dataset stays the
    failure of its units.)"""
    sources.synthesize_all([n for job in jobs for n in (job.train_dataset, job.test_dataset)])


def pending(jobs: list[Job], store: ResultsStore, force: bool) -> tuple[list[Job], RunSummary]:
    """The jobs to run, and a summary holding those already done (a config mismatch raises)."""
    summary, todo = RunSummary(), []
    for job in jobs:
        if not force and store.is_complete(job.key, job.config()):
            summary.skipped.append(job)
        else:
            todo.append(job)
    return todo, summary


def record_outcome(summary: RunSummary, job: Job, status: str, message: str = "") -> None:
    """Add a job's outcome ("done", "skipped" or "failed" with its message) to ``summary``."""
    if status == "failed":
        summary.failed.append((job, message))
    else:
        getattr(summary, status).append(job)


class JobRunner:
    def __init__(self, store: ResultsStore, sources: DataSources, device: str = "auto",
                 exclude_bad: bool = False, save_checkpoints: bool = False,
                 log: Callable[[str], None] | None = None, resume_epochs: bool = False,
                 log_epochs: bool = False) -> None:
        """``log`` receives one line per finished or failed unit (default: this module's
        logger at INFO), and with ``log_epochs`` one per epoch (for a log file, where no live
        display is). ``resume_epochs``: a unit saves its state after each epoch and a unit cut
        short resumes from it (:mod:`harness.engine.resume`; units with an analysis, which
        follows every epoch, start over)."""
        self.store = store
        self.sources = sources
        self.device = resolve_device(device)
        self.exclude_bad = exclude_bad
        self.save_checkpoints = save_checkpoints
        self.log = log or logger.info
        self.resume_epochs, self.log_epochs = resume_epochs, log_epochs
        self._datasets: dict[str, LoadedDataset] = {}
        self.images = DecodedImageCache(cache_root() / "images")
        self.context = EngineContext(self.device, self.images, cache_root())

    def dataset(self, name: str) -> LoadedDataset:
        if name not in self._datasets:
            raw = self.sources.load(name)
            dataset, _, excluded = require_valid(raw, self.sources.spec(name), self.exclude_bad)
            self._datasets[name] = LoadedDataset(dataset, excluded)
        return self._datasets[name]

    def split(self, job: Job, dataset: Dataset) -> tuple[Split, str]:
        """The job's split and the file that records it: the committed frozen file when it
        matches, else one written beside the results (every number names its split file)."""
        assert job.split_seed is not None  # a splits job's (parts() calls this only for those)
        planned = plan_split(dataset.name, dataset.groups, job.split_seed, job.test_fraction,
                             job.validation_fraction)
        name = f"split_{job.split_seed:02d}" + ("-val" if planned.validation else "") + ".json"
        frozen = PROTOCOL_DIR / "splits" / dataset.name / name
        if frozen.is_file() and read_split(frozen) == planned:
            path = frozen
        else:
            path = self.store.suite_dir(job.suite) / "splits" / folder_name(dataset.name) / name
            if not path.is_file() or self._stored_split(path) != planned:
                write_split(planned, path)
        split = subsample_train(planned, job.train_fraction) if job.train_fraction < 1 else planned
        return split, str(path)

    def _stored_split(self, path: Path) -> Split | None:
        """The split a file beside the results holds; None (rewritten by the caller, saying
        so) when it is damaged: it is derived from the data and the seed, so nothing is lost."""
        try:
            return read_split(path)
        except ValueError as err:
            self.log(f"{err}; writing it again from the data and the split seed")
            return None

    def parts(self, job: Job) -> JobParts:
        """The job's training, test and validation records (at most ``job.limit`` of each),
        their targets on the recipe's label scale, and where they came from."""
        source = self.dataset(job.train_dataset)
        target = self.dataset(job.test_dataset)
        if job.kind == "splits":
            split, split_path = self.split(job, source.dataset)
            part: dict[str, list[ImageRecord]] = {}
            for name, groups in (("train", split.train), ("test", split.test),
                                 ("val", split.validation)):
                chosen = set(groups)
                part[name] = limited([r for r in source.dataset.records if r.group in chosen],
                                     job.limit, (job.seed, len(part)))
            digest = hashlib.sha256(Path(split_path).read_bytes()).hexdigest()[:16]
            return JobParts.with_targets(source, target, part["train"], part["test"], part["val"],
                                         job.recipe.label_scale, split_path, digest)
        train, val = list(source.dataset.records), []
        if job.validation_fraction > 0:
            held = set(plan_split(source.dataset.name, source.dataset.groups, job.seed,
                                  job.validation_fraction).test)
            val = [r for r in train if r.group in held]
            train = [r for r in train if r.group not in held]
        return JobParts.with_targets(source, target, limited(train, job.limit, (job.seed, 0)),
                                     limited(list(target.dataset.records), job.limit, (job.seed, 1)),
                                     limited(val, job.limit, (job.seed, 2)),
                                     job.recipe.label_scale, "whole datasets")

    def train(self, job: Job, data: JobParts, on_epoch: EpochCallback | None = None,
              resume: EpochResume | None = None) -> Trained:
        """Train (or fit, or just apply) the job's model by its family (``resume``: where
        its state is saved after each epoch, and taken up from)."""
        context = dataclasses.replace(self.context, resume=resume) if resume else self.context
        return family_for(job.model).fit_predict(job, data, context, on_epoch)

    def run(self, job: Job, on_epoch: EpochCallback | None = None) -> UnitResult:
        start = time.perf_counter()
        self.context.feature_caches.clear()  # this unit counts the entries it rebuilds
        rebuilt_before = len(self.context.rebuilt())
        data = self.parts(job)
        source, target, train, test, val = data.source, data.target, data.train, data.test, data.val
        recipe = job.recipe
        saved_state = EpochResume(self.store.unit_dir(job.key) / RESUME_FILE, job.config())
        resumable = self.resume_epochs and job.analysis == "none"
        trained = self.train(job, data, on_epoch, saved_state if resumable else None)
        outcome, model = trained.outcome, trained.model
        # Orient predictions so that higher means better quality before correlating.
        train_higher = trained.higher_is_better if trained.higher_is_better is not None else (
            recipe.label_scale == "unit" or source.dataset.scale.higher_is_better)
        oriented = outcome.predictions if train_higher else -outcome.predictions
        native_test = np.array([r.score for r in test])
        scores = metrics.evaluate(oriented, native_test, target.dataset.scale.higher_is_better)
        # a reporting rule's numbers (the authors': PLCC a running maximum over epochs)
        scores = dataclasses.replace(scores, **cast("dict[str, Any]", outcome.reported))
        result = UnitResult(
            suite=job.suite, protocol=ProtocolRef(job.protocol, job.protocol_version),
            preset=job.model.preset, variant=job.model.variant,
            train_dataset=job.train_dataset, test_dataset=job.test_dataset, unit=job.unit,
            selection=job.selection,
            selected_epoch=outcome.selected_epoch if not trained.selection_note else None,
            selection_note=trained.selection_note,
            metrics=scores,
            # cheap, so always (empty without distortion types); the protocol decides display
            per_distortion=per_distortion_srcc(test, oriented, native_test,
                                               target.dataset.scale.higher_is_better),
            split=SplitInfo(data.split_file, data.split_sha256_16, len(train), len(test),
                            len(val)),
            seeds=Seeds(training=job.seed, split=job.split_seed),
            config=job.config(),
            model_config=trained.info,
            data={"train": self.sources.describe(job.train_dataset),
                  "test": self.sources.describe(job.test_dataset)},
            exclusions=tuple(str(p) for p in source.exclusions
                             + (target.exclusions if target is not source else [])),
            history=tuple(outcome.history),
            device=str(self.device), world_size=distributed.world_size(),
            environment=environment(),
            wall_seconds=round(time.perf_counter() - start, 2),
            analyses=trained.analyses, model_kind=job.model.kind,
            plugin=job.model.spec.plugin if job.model.from_registry else None,
            rebuilt_cache_entries=tuple(self.context.rebuilt()[rebuilt_before:]),
            scheduler=scheduler_job(),
        )
        predictions = [{"image_id": r.image_id, "group": r.group, "distortion": r.distortion or "",
                        "level": r.level if r.level is not None else "", "score": r.score,
                        "prediction": float(p)} for r, p in zip(test, outcome.predictions,
                                                                 strict=True)]
        if self.save_checkpoints and isinstance(model, lifeiqa.LifeIQA) and distributed.is_main():
            lifeiqa.save_checkpoint(model, self.store.unit_dir(job.key) / "checkpoint.safetensors",
                                    label_scale=checkpoint_label_scale(recipe, source.dataset))
        if distributed.is_main():  # under torchrun, rank 0 writes for all ranks
            self.store.write(job.key, result, predictions)
            # the state this run saved, or one a Slurm task left that this run did not use
            saved_state.clear()
        return result

    def run_all(self, jobs: list[Job], force: bool = False,
                take: Callable[[Job], bool] | None = None, progress: bool = True) -> RunSummary:
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
                      # only when asked, and under torchrun only rank 0's
                      disable=not (progress and distributed.is_main())) as bars:
            suite = bars.add_task(f"suite {jobs[0].suite if jobs else ''}", total=len(jobs))
            epochs = bars.add_task("", total=None, visible=False)

            def attempt(job: Job, label: str) -> None:
                """Run one unit (UnitBusyError: another process holds it)."""
                bars.update(epochs, description=f"  {label} epoch", completed=0,
                            total=job.recipe.epochs, visible=True)

                def on_epoch(entry: dict) -> None:
                    bars.update(epochs, completed=entry["epoch"])
                    if self.log_epochs:
                        self.log(f"{label} epoch {entry['epoch']}/{job.recipe.epochs}: loss "
                                 f"{entry['loss']:.4f}")

                self._run_one(job, label, force, summary, on_epoch)
                bars.advance(suite)

            running: str | None = None  # the unit being run, for an interruption's message
            index = 0
            busy: list[tuple[Job, str]] = []
            try:
                for index, job in enumerate(jobs, start=1):
                    if not force and self.store.is_complete(job.key, job.config()):
                        summary.skipped.append(job)
                        bars.advance(suite)
                        continue
                    if take is not None and not take(job):
                        bars.advance(suite)
                        continue
                    running = f"[{index}/{len(jobs)}] {job.model.name} {job.dataset_label} {job.unit}"
                    try:
                        attempt(job, running)
                    except UnitBusyError as err:
                        busy.append((job, running))
                        self.log(f"{running}: {err}; this run waits for it after the others")
                    running = None
                # units another live process was running: waited for, then skipped if it
                # finished them, or run here if it ended without (a run that deferred to
                # another has not failed)
                for job, running in busy:
                    while True:
                        try:
                            attempt(job, running)
                            break
                        except UnitBusyError:
                            time.sleep(BUSY_POLL_SECONDS)
                running = None
            except KeyboardInterrupt:
                raise RunInterruptedError(interrupted_message(
                    len(summary.done), running, len(jobs) - index + len(busy))) from None
        return summary

    def _run_one(self, job: Job, label: str, force: bool, summary: RunSummary,
                 on_epoch: Callable[[dict], None]) -> None:
        """Run ``job`` under its unit lock into ``summary`` (done, skipped when another process
        finished it meanwhile, or failed: one unit's failure does not stop the others)."""
        try:
            with distributed.claim(self.store, job.key):
                # another process may have finished it since it was last checked
                finished = not force and self.store.is_complete(job.key, job.config())
                result = None if finished else self.run(job, on_epoch)
        except UnitBusyError:
            raise
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            summary.failed.append((job, message))
            self.record_failure(job, err, message)
            self.log(f"{label}: FAILED {message}\n  config: {job.config()}")
            if not isinstance(err, (HarnessError, RuntimeError, ValueError, OSError)):
                self.log(traceback.format_exc())
            return
        if result is None:
            summary.skipped.append(job)
            return
        summary.done.append(job)
        self.log(f"{label}: SRCC {result.metrics.srcc:.4f} PLCC {result.metrics.plcc:.4f} "
                 f"({job.selection}, epoch {result.selected_epoch}, {result.wall_seconds:.0f} s)")

    def record_failure(self, job: Job, err: Exception, message: str) -> None:
        """Leave a failure record where the unit's result would be, so tables list the unit
        rather than lose it; not for store errors (a busy unit, another config), which say
        nothing about the unit's own run."""
        if isinstance(err, ResultsError) or not distributed.is_main():
            return
        kind = "diverged" if isinstance(err, NonFiniteLossError) else "failed"
        try:
            self.store.write_failure(job.key, job.config(), kind, message)
        except OSError as write_error:  # the failure itself is already reported
            self.log(f"could not record the failure of {job.key.parts()}: {write_error}")


def limited(records: list[ImageRecord], limit: int | None, seed: tuple[int, int]) -> list[ImageRecord]:
    """At most ``limit`` of ``records``, drawn without replacement under ``seed`` (the unit's,
    and the part's index) and kept in their order: a quick look spread over the whole part."""
    if limit is None or len(records) <= limit:
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), limit, replace=False))
    return [records[i] for i in keep]


def checkpoint_label_scale(recipe: Recipe, dataset: Dataset) -> LabelScale:
    """The scale a model trained by ``recipe`` on ``dataset`` predicts on, as its checkpoint
    records it: the dataset's native scale, or [0, 1] higher-is-better."""
    if recipe.label_scale == "unit":
        return LabelScale("unit", 0.0, 1.0, True, dataset.name)
    scale = dataset.scale
    return LabelScale("native", scale.low, scale.high, scale.higher_is_better, dataset.name)


def per_distortion_srcc(records: list[ImageRecord], predictions: np.ndarray, targets: np.ndarray,
                        higher_is_better: bool) -> dict[str, float]:
    by_type: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if record.distortion:
            by_type.setdefault(record.distortion, []).append(i)
    oriented = targets if higher_is_better else -targets
    return {name: metrics.srcc(predictions[idx], oriented[idx])
            for name, idx in sorted(by_type.items()) if len(idx) >= 2}


def interrupted_message(finished: int, running: str | None, not_started: int) -> str:
    """What a Ctrl-C left: units finished (kept), the one cut short (no result: a unit's files
    are written whole or not at all), those not started, and how to resume."""
    cut = f"; {running.split('] ', 1)[-1]} was cut short and left no result" if running else ""
    return (f"interrupted (Ctrl-C): {finished} unit(s) finished in this run and are kept{cut}; "
            f"{not_started} not started; run the same command again to resume (finished units "
            f"are skipped)")
