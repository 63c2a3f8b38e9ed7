"""The results store: one self-describing folder per unit of work.

``<runs>/<suite>/<model>/<dataset-or-pair>/<unit>/`` holds ``result.json`` (a
:class:`~harness.results.schema.UnitResult`: metrics, selection mode, protocol name and version,
split-file hash, the resolved config, seeds, git commit, package versions, device, wall time)
and ``predictions.csv``; a unit that failed (or diverged) holds ``failure.json`` instead, so
tables list it by name rather than lose it. ``result.json`` is written last
and atomically: its presence means the unit is complete, so an interrupted unit is simply
redone and a reader never sees a partial result. A rerun skips complete units and refuses a
unit whose stored config differs from the requested one (naming the differences).
Concurrent runners claim a unit with an exclusive lock (flock on ``.lock``) first.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from harness.arithmetic import current as current_arithmetic
from harness.errors import ResultSchemaError, ResultsError
from harness.fileio import atomic_write_text, check_suite
from harness.plan.jobs import UnitKey
from harness.plan.protocols import PROTOCOL_DIR
from harness.results.schema import Environment, SchedulerJob, StoredCondition, UnitResult

if TYPE_CHECKING:
    import pandas

log = logging.getLogger(__name__)

RESULT = "result.json"
PREDICTIONS = "predictions.csv"
FAILURE = "failure.json"
LOCK = ".lock"
FAILURE_KINDS = ("failed", "diverged")
# predictions.csv's columns, one row per test image (written by harness.engine.runner)
PREDICTION_COLUMNS = ("image_id", "group", "distortion", "level", "score", "prediction")


@dataclass(frozen=True)
class UnitFailure(StoredCondition):
    """A unit that ran and produced no result: ``kind`` is ``diverged`` (a non-finite loss or
    prediction) or ``failed`` (any other error), ``message`` the error. ``config`` is the job's
    config, so the failure lands in the table cell its result would have."""

    suite: str
    model: str
    unit: str
    kind: str
    message: str
    config: dict[str, Any]

    @property
    def protocol(self) -> str:
        return str(self.config.get("protocol"))

    @property
    def protocol_version(self) -> str:
        return str(self.config.get("protocol_version"))

    @property
    def selection(self) -> str:
        return str(self.config.get("selection"))

    @property
    def dataset_label(self) -> str:
        train, test = self.config.get("train_dataset"), self.config.get("test_dataset")
        return str(train) if train == test else f"{train} -> {test}"


class ConfigMismatchError(ResultsError):
    """A stored result was made with a different config than the one requested."""


class UnitBusyError(ResultsError):
    """Another live process is working on this unit."""


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def config_differences(stored: dict, requested: dict) -> list[str]:
    a, b = _flatten(stored), _flatten(requested)
    return [f"{k}: stored {a.get(k)!r}, requested {b.get(k)!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _version_of(package: str) -> str:
    """The version of ``package`` as loaded, else as installed: a run that trained no timm
    model does not import timm (2-3 s) to record its version."""
    module = sys.modules.get(package)
    version = getattr(module, "__version__", None)
    return str(version) if version else importlib.metadata.version(package)


def environment() -> Environment:
    """Where a result was produced: versions, git commit, host, CPU arithmetic."""
    import numpy
    import torch

    import lifeiqa

    # a query only: without optional locks git status never rewrites the repository's index
    git: dict[str, Any] = {"capture_output": True, "text": True, "cwd": Path(__file__).parent,
                           "timeout": 10, "env": {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], **git).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], **git).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return Environment(
        git_commit=commit, git_dirty=dirty, python=platform.python_version(),
        torch=torch.__version__, timm=_version_of("timm"), numpy=numpy.__version__,
        lifeiqa=lifeiqa.__version__, host=socket.gethostname(), platform=platform.platform(),
        cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        arithmetic=current_arithmetic(),
    )


def scheduler_job() -> SchedulerJob | None:
    """The Slurm job this process runs in, from the variables Slurm sets; None outside one."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    in_array = bool(array and task and task.isdigit())
    return SchedulerJob(
        kind="slurm", job_id=f"{array}_{task}" if in_array else job,
        array_job_id=array if in_array else None,
        array_task_id=int(cast(str, task)) if in_array else None,
        node=os.environ.get("SLURMD_NODENAME", socket.gethostname()),
        restarts=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0))


class ResultsStore:
    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    @classmethod
    def of_folder(cls, folder: Path) -> tuple[ResultsStore, str]:
        """The store and suite whose folder ``folder`` is: ``runs/demo`` (a parent of nested
        suites) or a nested suite's own ``runs/reproduce-tiny/synth-csiq``. The suite a result
        under it records says how far up the runs folder is (a unit's files are found from
        there)."""
        folder = Path(folder)
        first = next(iter(sorted(folder.rglob(RESULT))), None)
        recorded = read_result(first).suite.split("/") if first is not None else []
        for depth in range(len(recorded), 0, -1):
            if folder.parts[-depth:] == tuple(recorded[:depth]):
                return cls(Path(*folder.parts[:-depth]) if len(folder.parts) > depth else
                           Path(".")), "/".join(recorded[:depth])
        return cls(folder.parent), folder.name

    def suite_dir(self, suite: str) -> Path:
        """The suite's folder (a suite name is checked: it never leaves the runs folder)."""
        return self.root.joinpath(*check_suite(suite).split("/"))

    def unit_dir(self, key: UnitKey) -> Path:
        return self.root.joinpath(*key.folder_parts())

    def load(self, key: UnitKey) -> UnitResult | None:
        """The unit's result; None if it has none (it is not complete)."""
        try:
            return read_result(self.unit_dir(key) / RESULT)
        except FileNotFoundError:
            return None

    def is_complete(self, key: UnitKey, config: dict) -> bool:
        """True if a result exists for exactly ``config`` and its files agree with it (a unit
        whose files do not is run again, saying why); raises if one exists for another."""
        stored = self.load(key)
        if stored is None:
            return False
        damage = self.damage(stored)
        if damage is not None:
            log.warning("%s; running the unit again", damage)
            return False
        differences = config_differences(stored.config, config)
        if differences:
            raise ConfigMismatchError(
                f"{self.unit_dir(key)} holds a result made with a different config:\n  "
                + "\n  ".join(differences[:20])
                + "\nUse another --suite, or --force to rerun and replace it.")
        return True

    @contextmanager
    def claim(self, key: UnitKey) -> Iterator[Path]:
        """Exclusive ownership of a unit while it runs: an advisory lock (``flock``) on the
        unit's lock file, which records the owner's pid and host for the busy message.

        The kernel drops the lock when its process dies, however it dies, so a killed run
        leaves nothing to clean up and no lock is taken over by guessing whether its owner
        lives. Raises :class:`UnitBusyError` at once if another process holds it.
        """
        folder = self.unit_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / LOCK
        descriptor = _lock(lock, folder)
        try:
            # who holds it, for others' busy message; the flock is the lock, so a full disk
            # here must not fail the unit
            with suppress(OSError):
                os.ftruncate(descriptor, 0)
                os.write(descriptor, f"{os.getpid()} {socket.gethostname()}".encode())
            yield folder
        finally:
            # unlink before unlocking: a process waiting on this file then sees it replaced
            lock.unlink(missing_ok=True)
            os.close(descriptor)

    def write_failure(self, key: UnitKey, config: dict, kind: str, message: str) -> Path:
        """Record that the unit ran and failed (``kind``: one of FAILURE_KINDS); a later
        successful run of the unit removes the record."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"failure kind {kind!r}: expected one of {FAILURE_KINDS}")
        path = self.unit_dir(key) / FAILURE
        atomic_write_text(path, json.dumps({"suite": key.suite, "model": key.model,
                                            "unit": key.unit, "kind": kind, "message": message,
                                            "config": config}, indent=1, sort_keys=True))
        return path

    def failures(self, suite: str) -> list[UnitFailure]:
        """Every unit of a suite (nested suites included) whose last run failed and that has no
        result, sorted by path."""
        base = self.suite_dir(suite)
        if not base.exists():
            return []
        out = []
        for path in sorted(base.rglob(FAILURE)):
            if (path.parent / RESULT).exists():
                continue
            try:
                data = json.loads(path.read_text())
                out.append(UnitFailure(data["suite"], data["model"], data["unit"], data["kind"],
                                       data["message"], data["config"]))
            except (ValueError, KeyError, TypeError) as err:
                raise ResultSchemaError(f"{path}: not a failure record ({err}); delete it and "
                                        f"rerun the unit") from err
        return out

    def write(self, key: UnitKey, result: UnitResult, predictions: list[dict]) -> Path:
        """Predictions first, then result.json (the completion mark); an earlier failure
        record of the unit is removed."""
        folder = self.unit_dir(key)
        if predictions:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(predictions[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(predictions)
            atomic_write_text(folder / PREDICTIONS, buffer.getvalue())
        atomic_write_text(folder / RESULT,
                          json.dumps(result.to_json_dict(), indent=1, sort_keys=True))
        (folder / FAILURE).unlink(missing_ok=True)
        return folder

    def results(self, suite: str) -> list[UnitResult]:
        """Every complete result of a suite (``suite`` may be a parent folder of suites, as
        ``demo`` is of ``demo/splits``), sorted by path; a unit whose files disagree with its
        result raises ResultSchemaError naming the file (:meth:`damage`), never a table of
        part of it."""
        base = self.suite_dir(suite)
        found = [read_result(p) for p in sorted(base.rglob(RESULT))] if base.exists() else []
        for result in found:
            damage = self.damage(result)
            if damage is not None:
                raise ResultSchemaError(f"{damage}: delete the unit's folder "
                                        f"{self.unit_dir(result.key)} and rerun the unit")
        return found

    def split_file(self, result: UnitResult) -> Path | None:
        """Where the unit's split file is now: the committed frozen ones in the repository, the
        others under this runs folder (wherever it was when the unit ran); None for a unit on
        whole datasets."""
        if not result.split.sha256_16:
            return None
        name = result.split_name
        if name.startswith("protocols/splits/"):
            return PROTOCOL_DIR / name.removeprefix("protocols/")
        return self.root / name

    def damage(self, result: UnitResult) -> str | None:
        """Why the unit's files disagree with its ``result.json`` (None: they agree): its
        predictions must be every test image it scored, with the columns it writes, and its
        split file must be present with the hash the unit recorded."""
        predictions = self.unit_dir(result.key) / PREDICTIONS
        try:
            read_predictions(predictions, result.metrics.n)
        except ResultSchemaError as err:
            return str(err).removesuffix("; delete its unit folder and rerun the unit")
        split = self.split_file(result)
        if split is None:
            return None
        if not split.is_file():
            return (f"{predictions.parent}: its split file {split} is missing (the unit's test "
                    f"images cannot be checked)")
        digest = hashlib.sha256(split.read_bytes()).hexdigest()[:16]
        if digest != result.split.sha256_16:
            return (f"{split}: sha256 {digest}, but the unit in {predictions.parent} recorded "
                    f"{result.split.sha256_16}: the split file was changed since it ran")
        return None


def read_result(path: Path) -> UnitResult:
    """The result in a ``result.json``, of any schema version this harness reads."""
    try:
        data = json.loads(path.read_text())
    except ValueError as err:  # a result.json is only ever replaced whole; be loud anyway
        raise ResultSchemaError(f"{path}: not valid JSON ({err}); the file is damaged: delete "
                                f"its unit folder and rerun the unit") from err
    return UnitResult.from_json_dict(data, path)


def read_predictions(path: Path, rows: int | None = None) -> pandas.DataFrame:
    """A unit's ``predictions.csv`` as a typed table, one row per test image: ``image_id`` and
    ``group`` (strings), ``distortion`` (a string, missing where the dataset defines no types),
    ``level`` (Int64, missing likewise), ``score`` (the label, on the dataset's native scale) and
    ``prediction`` (float64). ``rows``: how many test images the unit's result says it scored.
    A missing, cut-short or damaged file raises ResultSchemaError naming the file (and line)."""
    import pandas

    fix = "delete its unit folder and rerun the unit"
    try:
        table = pandas.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as err:
        raise ResultSchemaError(f"{path}: missing: a complete unit has its predictions beside its "
                                f"result.json; {fix}") from err
    except (OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
        raise ResultSchemaError(f"{path}: not a predictions CSV ({err}); {fix}") from err
    if set(table.columns) != set(PREDICTION_COLUMNS):
        raise ResultSchemaError(f"{path}: expected the columns {', '.join(PREDICTION_COLUMNS)}, "
                                f"found {', '.join(map(str, table.columns))}; {fix}")
    if rows is not None and len(table) != rows:
        raise ResultSchemaError(f"{path}: {len(table)} rows, but the unit's result.json says it "
                                f"scored {rows} test images (metrics.n): the file is cut short or "
                                f"was replaced; {fix}")

    def refuse(column: str, bad: pandas.Series, expected: str) -> None:
        if bad.any():
            index = int(bad.to_numpy().nonzero()[0][0])
            raise ResultSchemaError(f"{path}:{index + 2}: column {column!r}: expected {expected}, "
                                    f"found {table[column].iloc[index]!r}; {fix}")

    for column in ("image_id", "group"):
        refuse(column, table[column] == "", "a name")
    out = table[list(PREDICTION_COLUMNS)].copy()
    for column in ("score", "prediction"):
        out[column] = pandas.to_numeric(table[column], errors="coerce").astype("float64")
        refuse(column, out[column].isna(), "a number")
    level = pandas.to_numeric(table["level"].mask(table["level"] == ""), errors="coerce")
    refuse("level", (table["level"] != "") & (level.isna() | (level % 1 != 0)), "a whole number")
    out["level"] = level.astype("Int64")
    out["distortion"] = table["distortion"].mask(table["distortion"] == "")
    return out


def _lock(lock: Path, folder: Path) -> int:
    """An open descriptor of ``lock`` holding its exclusive flock; UnitBusyError if taken."""
    import fcntl

    while True:
        descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(descriptor, 200).decode(errors="replace").split()
            os.close(descriptor)
            who = f"process {owner[0]} on {owner[1]}" if len(owner) == 2 else "another process"
            raise UnitBusyError(f"{folder} is being run by {who} (unit lock {lock})") from None
        except BaseException:
            os.close(descriptor)
            raise
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(descriptor).st_ino:
            return descriptor
        os.close(descriptor)  # locked a file its owner had just released and unlinked: retry
