"""The ``slurm`` executor: a run's units as one submitit job array, watched until each ends.

* **Submission.** :func:`sbatch_parameters` turns the run's ``slurm_*`` options into submitit's
  parameters (``--dry-run`` prints them): no GPU unless one is asked for (``--slurm-gpus-per-job``,
  or a ``cuda`` device), CPUs per task (the unit then runs that many torch threads), QOS,
  constraint, exclude, reservation, setup lines and any other sbatch option. Each task's log is
  named when it is submitted. A refused submission is one error and leaves no file behind.
* **Watching.** The queue is read once per ``--slurm-poll`` seconds: ``squeue`` (which keeps an
  ended job for the cluster's ``MinJobAge``) and, where the cluster keeps accounting, ``sacct``.
  A task whose result file exists has ended; one that left the queue without a result is
  reported at that look with its state (``CANCELLED by 0``, ``TIMEOUT``, ``OUT_OF_MEMORY``), its
  exit code and the last line of its log. Nothing waits for a state that will not come: on a
  cluster without accounting a task that is gone from ``squeue`` without a result has failed.
* **Attaching.** Every submitted task is recorded in ``<runs>/<suite>/slurm/submitted.json``.
  A rerun (after Ctrl-C, or the client killed) attaches to the recorded tasks that are still
  queued or running for the same unit config, waits for them and collects their results,
  instead of submitting them again; only units without a live task are submitted.
* **Time limits.** A task is told to stop ``--slurm-signal-lead`` seconds before its limit;
  submitit then requeues it (at most ``--slurm-retries`` times) and the unit resumes from its
  last finished epoch (:mod:`harness.engine.resume`).

Every result records its Slurm job (``result.json``'s ``scheduler``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.sources import DataSources
from harness.engine import distributed
from harness.engine.runner import JobRunner, RunSummary, pending, prepare_data, record_outcome
from harness.errors import ExecutionError, RunInterruptedError
from harness.fileio import atomic_write_text
from harness.logs import configure_logging
from harness.plan.jobs import Job
from harness.plan.options import (
    SLURM_ARRAY_PARALLELISM,
    SLURM_POLL,
    SLURM_RETRIES,
    SLURM_SIGNAL_LEAD,
    SLURM_TIME_MIN,
    RunOptions,
    RunPlan,
)
from harness.plugins import include_all
from harness.results.store import ResultsStore

log = logging.getLogger(__name__)

SQUEUE_SILENCE = 600.0  # seconds without an answer from squeue before the command gives up
LEDGER = "submitted.json"
# states in which a task may still produce its result (a requeued task passes through several)
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
                           "SPECIAL_EXIT", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED",
                           "PREEMPTED"})
# ended states that need no second look (a COMPLETED task's result file may lag on a shared disk)
FINAL_STATES = frozenset({"CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                          "BOOT_FAIL", "DEADLINE", "REVOKED"})


def signal_lead(options: RunOptions) -> int:
    """Seconds before the time limit that a task is signalled to requeue: the option, else 90,
    at most a quarter of the limit (Slurm may signal up to a minute early)."""
    slurm = options.executor
    if slurm.slurm_signal_lead is not None:
        return slurm.slurm_signal_lead
    return min(SLURM_SIGNAL_LEAD, (slurm.slurm_time or SLURM_TIME_MIN) * 60 // 4)


def sbatch_parameters(options: RunOptions, suite: str) -> dict[str, Any]:
    """submitit's parameters for the run's job array (``AutoExecutor.update_parameters``): what
    each task asks of Slurm."""
    slurm = options.executor
    gpus = options.slurm_gpus()
    extra = {"reservation": slurm.slurm_reservation} if slurm.slurm_reservation else {}
    extra.update(slurm.slurm_extra)
    parameters: dict[str, Any] = {
        "name": f"lifeiqa-{suite.replace('/', '-')}",
        "timeout_min": slurm.slurm_time or SLURM_TIME_MIN,
        "tasks_per_node": max(gpus, 1),  # one task (rank) per GPU
        "slurm_signal_delay_s": signal_lead(options),
        "slurm_array_parallelism": slurm.slurm_array_parallelism or SLURM_ARRAY_PARALLELISM,
    }
    optional = {"gpus_per_node": gpus or None, "cpus_per_task": slurm.slurm_cpus_per_task,
                "mem_gb": slurm.slurm_mem, "slurm_partition": slurm.slurm_partition,
                "slurm_account": slurm.slurm_account, "slurm_qos": slurm.slurm_qos,
                "slurm_constraint": slurm.slurm_constraint, "slurm_exclude": slurm.slurm_exclude,
                "slurm_setup": list(slurm.slurm_setup) or None,
                "slurm_additional_parameters": extra or None}
    parameters.update({k: v for k, v in optional.items() if v is not None})
    return parameters


def describe_submission(options: RunOptions, suite: str) -> str:
    """One line for ``--dry-run``: what the array would ask of Slurm."""
    parameters = sbatch_parameters(options, suite)
    retries = options.executor.slurm_retries
    shown = ", ".join(f"{k.removeprefix('slurm_')}={v}" for k, v in parameters.items())
    return (f"slurm: one array task per job to do; {shown}, retries after a timeout="
            f"{SLURM_RETRIES if retries is None else retries}, poll="
            f"{options.executor.slurm_poll or SLURM_POLL:g} s")


# --- what a task runs ------------------------------------------------------------------------


class SlurmUnit:
    """What a Slurm task runs: one job with a JobRunner, in the task's process. With several
    tasks per job (``--slurm-gpus-per-job N``) the tasks train it data-parallel."""

    def __init__(self, runs: str, sources: DataSources, device: str, exclude_bad: bool,
                 save_checkpoints: bool, force: bool, includes: tuple[str, ...] = ()) -> None:
        self.runs, self.sources, self.device = runs, sources, device
        self.exclude_bad, self.save_checkpoints, self.force = exclude_bad, save_checkpoints, force
        self.includes = includes

    def __call__(self, job: Job) -> tuple[str, str]:
        import submitit
        import torch

        configure_logging()  # the task's own process: its output is the task's log file
        include_all(self.includes)  # the plug-ins behind the job's model, in this process
        threads = task_threads()
        if threads:  # the CPUs Slurm gave the task: more threads than CPUs contend for them
            torch.set_num_threads(threads)
        if submitit.JobEnvironment().num_tasks > 1:  # one rank per task (and GPU)
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        device = distributed.setup(self.device)
        runner = JobRunner(ResultsStore(self.runs), self.sources, device, self.exclude_bad,
                           self.save_checkpoints, log=distributed.main_only(log.info),
                           resume_epochs=True, log_epochs=True)
        summary = runner.run_all([job], force=self.force, progress=False)
        if summary.failed:
            return "failed", summary.failed[0][1]
        return ("done", "") if summary.done else ("skipped", "")

    def checkpoint(self, job: Job) -> Any:
        """submitit calls this at a time limit or preemption: requeue the same unit, which
        resumes from the last epoch its run saved."""
        import submitit

        log.info("%s %s %s: requeued before the time limit; it resumes from its last finished "
                 "epoch", job.model.name, job.dataset_label, job.unit)
        return submitit.helpers.DelayedSubmission(self, job)


def task_threads() -> int | None:
    """The CPUs Slurm allocated to this task (``--cpus-per-task``, else the job's CPUs on this
    node shared by its tasks there); None outside Slurm. A task asked for no CPU count gets one,
    while torch would start a thread per core of the node."""
    given = os.environ.get("SLURM_CPUS_PER_TASK") or ""
    if given.isdigit():
        return max(int(given), 1)
    on_node = os.environ.get("SLURM_CPUS_ON_NODE") or ""
    tasks = (os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("SLURM_NTASKS") or "1")
    if on_node.isdigit():
        return max(int(on_node) // max(int(tasks) if tasks.isdigit() else 1, 1), 1)
    return None


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskState:
    """What the cluster says of one array task."""

    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, ...
    detail: str = ""  # "by 0" after CANCELLED, an exit code, a reason

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def text(self) -> str:
        return f"{self.state} {self.detail}".strip()


class SlurmQueue:
    """The states of a user's array tasks, as ``squeue`` and ``sacct`` report them."""

    def __init__(self) -> None:
        self.accounting: bool | None = None  # unknown until sacct is first asked

    def look(self, arrays: set[str]) -> dict[str, TaskState] | None:
        """Task id (``12_3``) -> state for the tasks of the ``arrays`` the cluster still knows;
        None when squeue cannot answer (the controller is down): nothing is decided then."""
        live = _squeue(arrays)
        if live is None:
            return None
        if self.accounting is not False:
            ended = _sacct(arrays)
            if ended is None and self.accounting is None:
                log.info("slurm: this cluster keeps no accounting (sacct cannot answer): task "
                         "states are read from squeue alone")
            self.accounting = ended is not None
            for task, state in (ended or {}).items():
                # sacct says why a task ended ("CANCELLED by 0", its exit code), and says it
                # while squeue still shows the task COMPLETING (its processes are given
                # KillWait to exit); otherwise squeue knows the live ones first (sacct lags
                # behind a requeue)
                if task not in live or not live[task].active or state.state in FINAL_STATES:
                    live[task] = state
        return live


def _run_quietly(command: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _squeue(arrays: set[str]) -> dict[str, TaskState] | None:
    # the user's jobs in every state (ended ones stay for MinJobAge), one line per array task;
    # filtered here: naming an id squeue has forgotten is an error for one id, not for several
    done = _run_quietly(["squeue", "--me", "--noheader", "--array", "--states=all",
                         "--format=%i|%T|%r"])
    if done is None or done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        task, state, reason = [*line.split("|"), "", ""][:3]
        if task.split("_")[0] in arrays:
            states[task] = TaskState(state, "" if reason in ("None", "") else f"({reason})")
    return states


def _sacct(arrays: set[str]) -> dict[str, TaskState] | None:
    done = _run_quietly(["sacct", "--noheader", "--parsable2", "--allocations",
                         "--jobs", ",".join(sorted(arrays)), "--format=JobID,State,ExitCode"])
    if done is None or done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        task, state, code = [*line.split("|"), "", ""][:3]
        if "_" not in task or "[" in task:  # a pending array's range line: squeue has its tasks
            continue
        name, _, detail = state.partition(" ")
        code_text = f"exit code {code}" if code and code != "0:0" else ""
        states[task] = TaskState(name, " ".join(filter(None, (detail, code_text))))
    return states


# --- tasks and the ledger --------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One submitted array task and the unit it runs."""

    job: Job
    job_id: str  # "12_3": array 12, task 3
    logs: Path  # the suite's slurm folder; the task's files are in logs/<job_id>/

    @property
    def folder(self) -> Path:
        return self.logs / self.job_id

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.job_id}_0_{suffix}"  # rank 0's files

    def outcome(self) -> tuple[str, str] | None:
        """("done" | "skipped" | "failed", message) once the task has written its result file;
        None before."""
        from submitit.core.utils import pickle_load

        try:
            kind, payload = pickle_load(self.path("result.pkl"))
        except FileNotFoundError:
            return None
        except Exception as err:  # a half-written file: looked at again next time
            log.debug("reading %s: %s", self.path("result.pkl"), err)
            return None
        if kind == "success":
            status, message = payload
            return str(status), str(message)
        # the task raised outside the runner (submitit keeps the traceback as text)
        lines = [line for line in str(payload).strip().splitlines() if line.strip()]
        return "failed", f"{lines[-1].strip() if lines else 'the task raised'} (log: {self.path('log.err')})"

    def ended_without_result(self, state: TaskState | None) -> str:
        said = state.text() if state else ("gone from the queue (this cluster keeps no "
                                           "accounting to say how it ended)")
        last = _last_line(self.path("log.err")) or _last_line(self.path("log.out"))
        return (f"slurm task {self.job_id} ended without a result: {said}"
                + (f"; its log ends: {last}" if last else "") + f" (log: {self.path('log.err')})")


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


class Ledger:
    """``<suite>/slurm/submitted.json``: per unit the task last submitted for it and the config
    it was submitted with, so that a rerun attaches to a live task instead of resubmitting; per
    array what it asked of Slurm and when."""

    def __init__(self, logs: Path) -> None:
        self.path = logs / LEDGER

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:  # only attaching is lost: units are resubmitted
            log.warning("slurm: %s cannot be read (%s); live tasks it named are not attached "
                        "to", self.path, err)
            return {}
        return data if isinstance(data, dict) else {}

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Unit folder -> {"job_id", "config"} of the task last submitted for it."""
        tasks = self.read().get("tasks", {})
        return tasks if isinstance(tasks, dict) else {}

    def record(self, tasks: Sequence[Task], parameters: dict[str, Any]) -> None:
        data = self.read()
        entries, arrays = data.get("tasks", {}), data.get("arrays", {})
        for task in tasks:
            entries[_unit_name(task.job)] = {"job_id": task.job_id, "config": task.job.config()}
        arrays[tasks[0].job_id.split("_")[0]] = {
            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tasks": len(tasks),
            "parameters": parameters}
        atomic_write_text(self.path, json.dumps(
            {"format": 1, "tasks": entries, "arrays": arrays}, indent=1, default=str))


def _unit_name(job: Job) -> str:
    return "/".join(job.key.folder_parts())


# --- the executor ----------------------------------------------------------------------------


def run_slurm(plans: Sequence[RunPlan], progress: bool = False) -> list[RunSummary]:
    """One job array per plan, in turn. Tasks log to their own files; ``progress`` is for the
    local executor's live display."""
    return [_run_slurm_plan(plan) for plan in plans]


def _run_slurm_plan(plan: RunPlan) -> RunSummary:
    try:
        import submitit  # noqa: F401 (here, so that a missing one is one line before any work)
    except ImportError as err:
        raise ExecutionError("--executor slurm needs submitit: pip install 'lifeiqa[harness]' "
                             "(or pip install submitit)") from err
    options, slurm = plan.options, plan.options.executor
    store = ResultsStore(options.runs)
    todo, summary = pending(list(plan.jobs), store, options.force)
    if not todo:
        return summary
    prepare_data(todo, plan.sources)
    logs = store.suite_dir(plan.suite) / "slurm"
    on_cluster = slurm.slurm_cluster == "slurm"
    queue = SlurmQueue() if on_cluster else None
    attached = _attach(todo, logs, queue) if queue and not options.force else []
    mine = {task.job.key for task in attached}
    submit = [job for job in todo if job.key not in mine]
    handles: dict[str, Any] = {}
    tasks = list(attached)
    poll = slurm.slurm_poll or (SLURM_POLL if on_cluster else 0.5)
    try:
        if submit:
            with _interrupts_deferred():  # a Ctrl-C then raises with the new tasks known
                new, handles = _submit_units(plan, submit, logs, store)
                tasks += new
        _watch(tasks, queue, handles, poll, summary)
    except KeyboardInterrupt:
        if not tasks:  # nothing queued: the command line's own word on Ctrl-C says it all
            raise
        ended = {job.key for job in summary.done + summary.skipped} | {
            job.key for job, _ in summary.failed}
        left = sum(task.job.key not in ended for task in tasks)
        raise RunInterruptedError(
            f"stopped waiting (Ctrl-C): {len(summary.done)} unit(s) collected; the other "
            f"{left} go on as Slurm tasks: run the same command again to attach to them and "
            f"collect their results (finished units are skipped), or scancel "
            f"{' '.join(sorted({t.job_id.split('_')[0] for t in tasks}))} to stop them") from None
    return summary


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C held until the block ends, then raised: sbatch and the ledger that records what it
    queued happen together or not at all, else a rerun would submit the same units again. (In
    the main thread only, the one Python gives signals to.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):  # the default handler raises KeyboardInterrupt
        previous(signal.SIGINT, None)


def _submit_units(plan: RunPlan, jobs: list[Job], logs: Path,
                  store: ResultsStore) -> tuple[list[Task], dict[str, Any]]:
    """Submit ``jobs`` as one array, record its tasks (on a real cluster) and name each task's
    log; the tasks and submitit's handles by task id."""
    import submitit

    options, slurm = plan.options, plan.options.executor
    executor = submitit.AutoExecutor(folder=logs / "%j", cluster=slurm.slurm_cluster,
                                     slurm_max_num_timeout=SLURM_RETRIES
                                     if slurm.slurm_retries is None else slurm.slurm_retries)
    parameters = sbatch_parameters(options, plan.suite)
    executor.update_parameters(**parameters)
    unit = SlurmUnit(str(store.root), plan.sources, options.device, options.exclude_bad,
                     options.save_checkpoints, options.force, plan.includes)
    submitted = _submit(executor, unit, jobs, logs)
    tasks = [Task(job, handle.job_id, logs) for handle, job in zip(submitted, jobs, strict=True)]
    if slurm.slurm_cluster == "slurm":
        Ledger(logs).record(tasks, parameters)
    array = tasks[0].job_id.split("_")[0]
    log.info("slurm (%s): submitted %d task(s) as %s %s", slurm.slurm_cluster, len(tasks),
             "array" if "_" in tasks[0].job_id else "job", array)
    for task in tasks:
        log.info("  %s %s %s -> task %s, log %s", task.job.model.name, task.job.dataset_label,
                 task.job.unit, task.job_id, task.path("log.out"))
    return tasks, {handle.job_id: handle for handle in submitted}


def _attach(todo: list[Job], logs: Path, queue: SlurmQueue) -> list[Task]:
    """The recorded tasks of ``todo``'s units that are still queued or running with the same
    config: waited for, not submitted again."""
    recorded = Ledger(logs).tasks()
    candidates = {}
    for job in todo:
        entry = recorded.get(_unit_name(job))
        if entry and entry.get("config") == job.config() and isinstance(entry.get("job_id"), str):
            candidates[job.key] = Task(job, entry["job_id"], logs)
    if not candidates:
        return []
    states = queue.look({task.job_id.split("_")[0] for task in candidates.values()}) or {}
    live = [task for task in candidates.values()
            if (state := states.get(task.job_id)) is not None and state.active]
    if live:
        log.info("slurm: attached to %d task(s) still queued or running from an earlier "
                 "submission (%s); not submitted again", len(live),
                 ", ".join(task.job_id for task in live[:8]) + (" ..." if len(live) > 8 else ""))
    return live


def _submit(executor: Any, unit: SlurmUnit, jobs: list[Job], logs: Path) -> list[Any]:
    """Submit the array; a refusal is one error with sbatch's reason, and the files submitit
    wrote for it are removed (its leftover copy of the script is removed after a success too)."""
    from submitit.core.utils import FailedJobError

    logs.mkdir(parents=True, exist_ok=True)
    before = set(logs.iterdir())
    with _stderr_kept() as said:
        try:
            handles: list[Any] = executor.map_array(unit, jobs)
            refused = None
        except FailedJobError as err:
            refused = err
    if refused is None:
        for path in set(logs.glob(".submission_file_*")) - before:
            _remove(path)
        if said():  # sbatch's warnings on a submission it took
            sys.stderr.write(said())
        return handles
    for path in set(logs.iterdir()) - before:
        _remove(path)
    lines = [line.strip() for line in (said() + "\n" + str(refused)).splitlines() if line.strip()]
    reason = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
    raise ExecutionError(f"sbatch refused the job array: "
                         f"{reason.removeprefix('sbatch: error: ') or 'no reason given'}")


@contextlib.contextmanager
def _stderr_kept() -> Iterator[Callable[[], str]]:
    """What child processes write to this process's stderr meanwhile (sbatch, started by
    submitit), kept instead of printed; the caller decides what to show."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as kept:
        os.dup2(kept.fileno(), 2)
        text: list[str] = []
        try:
            yield lambda: "".join(text)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        kept.seek(0)
        text.append(kept.read().decode(errors="replace"))


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _watch(tasks: list[Task], queue: SlurmQueue | None, handles: dict[str, Any], poll: float,
           summary: RunSummary) -> None:
    """Wait for every task, recording each outcome in ``summary`` as it comes: its result, or
    the state it ended in without one. ``queue`` is None for submitit's local stand-in, whose
    own handles say whether a task still runs."""
    waiting = {task.job_id: task for task in tasks}
    unsure: set[str] = set()  # ended without a result at the last look: confirmed at the next
    silent_since: float | None = None  # when squeue last failed to answer, in a row
    while waiting:
        states = queue.look({i.split("_")[0] for i in waiting}) if queue else None
        if queue and states is None:
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since > SQUEUE_SILENCE:
                raise ExecutionError(
                    f"squeue has not answered for {SQUEUE_SILENCE // 60:.0f} minutes: the "
                    f"tasks {', '.join(sorted(waiting))} may go on; rerun the same command to "
                    f"attach to them when the cluster answers again")
            log.warning("slurm: squeue cannot answer now; looking again in %g s", poll)
            time.sleep(poll)
            continue
        silent_since = None
        for job_id, task in list(waiting.items()):
            outcome = task.outcome()
            if outcome is None:
                state = (states or {}).get(job_id) if queue else _local_state(handles[job_id])
                if state is not None and state.active:
                    unsure.discard(job_id)
                    continue
                if job_id not in unsure and not (state and state.state in FINAL_STATES):
                    unsure.add(job_id)
                    continue
                outcome = ("failed", task.ended_without_result(state))
            del waiting[job_id]
            unsure.discard(job_id)
            status, message = outcome
            record_outcome(summary, task.job, status, message)
            log.info("%s %s %s: %s (slurm task %s)%s", task.job.model.name,
                     task.job.dataset_label, task.job.unit, status, job_id,
                     ": " + message if message else "")
        if waiting:
            time.sleep(min(poll, 2.0) if unsure else poll)


def _local_state(handle: Any) -> TaskState:
    """submitit's local stand-in: running while its process runs."""
    return TaskState("RUNNING" if not handle.done() else "COMPLETED")
