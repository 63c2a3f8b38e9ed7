"""``--executor slurm`` against a real single-node Slurm: a job array on a CPU partition with the
default options, a cancelled task reported with its state and redone alone by a rerun, a killed
client whose rerun attaches to the live tasks instead of resubmitting, a unit past its time
limit requeued and resumed from its last epoch, and a cluster without accounting.

The cluster is the one ``scripts/slurm_cluster.sh start`` runs (``.ci/run`` starts it). Without
it these tests skip, saying so, unless LIFEIQA_REQUIRE_SLURM=1 (set by .ci/run): there a cluster
that is not up fails them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from harness.results.schema import UnitResult
from harness.results.store import read_result

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = Path(__file__).parents[1] / "scripts" / "slurm_cluster.sh"
SLURM_DIR = Path(os.environ.get("LIFEIQA_SLURM_DIR", "/tmp/lifeiqa-slurm"))
POLL = 1  # seconds between two looks at the queue
# A task that a test cancels or freezes while it runs trains this long: the test acts within a
# second or two of the task's start or of an epoch line, and Slurm tasks are a sixth of the suite's CPU
TASK_SECONDS = 8


def _cluster_missing(env: dict[str, str]) -> str | None:
    if not (SLURM_DIR / "slurm.conf").is_file():
        return f"no Slurm cluster: {SLURM_DIR}/slurm.conf is missing (scripts/slurm_cluster.sh start)"
    try:
        ping = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"no Slurm cluster: scontrol ping: {err}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"no Slurm cluster: scontrol ping says {ping.stdout.strip() or ping.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """The environment of the commands and of their Slurm tasks (sbatch passes it on), the
    session's data cache and OpenMP wait policy with it (tests/conftest.py)."""
    environment = {**os.environ, "SLURM_CONF": str(SLURM_DIR / "slurm.conf")}
    missing = _cluster_missing(environment)
    if missing:
        if os.environ.get("LIFEIQA_REQUIRE_SLURM") == "1":
            pytest.fail(f"LIFEIQA_REQUIRE_SLURM=1 but {missing}")
        pytest.skip(missing)
    return environment


LOCAL = [sys.executable, "-m", "harness.cli", "run", "--protocol", "splits", "--synth-size", "tiny",
         "--datasets", "synth-kadid10k", "--model", "lifeiqa_tiny", "--splits", "1"]


def start_locally(env: dict[str, str], runs: Path, epochs: int) -> subprocess.Popen[bytes]:
    """One split trained here with one torch thread, as a task that asked Slurm for no CPU count
    (so got one) trains it."""
    return subprocess.Popen([*LOCAL, "--runs", str(runs), "--set", f"epochs={epochs}"],
                            env={**env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def local_result(process: subprocess.Popen[bytes], runs: Path) -> UnitResult:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-2000:]
    (unit,) = results(runs).values()
    return unit


@pytest.fixture(scope="module")
def epochs_lasting(env, tmp_path_factory) -> Callable[[float], int]:
    """Epochs that keep a unit training about so many seconds on this machine. Tests that need a
    task still alive at some moment size its work with this, not with a fixed count: the first CI
    host ran 900 epochs in half the time this one takes, and the unit ended before its time limit."""
    probe = 150
    runs = tmp_path_factory.mktemp("epoch-probe")
    unit = local_result(start_locally(env, runs, probe), runs)
    per_epoch = unit.wall_seconds / probe  # an upper bound: it also holds loading the data
    return lambda seconds: max(probe, round(seconds / per_epoch))


def bench(env: dict[str, str], runs: Path, *extra: str) -> subprocess.Popen[str]:
    """``lifeiqa-bench run`` on 2 splits of the tiny synthetic KADID, as a cluster user runs it:
    default Slurm options but a short poll."""
    command = [sys.executable, "-m", "harness.cli", "run", "--protocol", "splits",
               "--synth-size", "tiny", "--datasets", "synth-kadid10k", "--model", "lifeiqa_tiny",
               "--splits", "2", "--executor", "slurm", "--slurm-poll", str(POLL),
               "--runs", str(runs), *extra]
    # SIGINT at its default, so that the command sees Ctrl-C as a terminal gives it, also where
    # pytest itself was started in the background with SIGINT ignored (children inherit that)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def read_until(process: subprocess.Popen[str], wanted: str, seconds: float = 180) -> list[str]:
    """The command's lines up to the first that holds ``wanted``."""
    lines, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line.rstrip("\n"))
        if wanted in line:
            return lines
    raise AssertionError(f"{wanted!r} not printed in {seconds} s:\n" + "\n".join(lines))


def finish(process: subprocess.Popen[str], seconds: float = 400) -> tuple[int, str]:
    """The exit status and the rest of the output, read through ``process.stdout``: after
    read_until its buffer may already hold the next lines, which communicate() would skip (it
    reads the pipe beneath; a summary line went missing that way)."""
    rest: list[str] = []
    reader = threading.Thread(target=lambda: rest.append(process.stdout.read()), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        process.kill()
        raise AssertionError(f"the command did not end in {seconds} s: {process.args}")
    return process.wait(30), rest[0]


def squeue(env: dict[str, str]) -> dict[str, str]:
    """Task id -> state, for every task the cluster still knows."""
    out = subprocess.run(["squeue", "--noheader", "--array", "--states=all", "--format=%i %T"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def wait_for_state(env: dict[str, str], task: str, state: str, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while squeue(env).get(task) != state:
        assert time.monotonic() < end, f"task {task} not {state} in {seconds} s: {squeue(env)}"
        time.sleep(0.5)


def restart(env: dict[str, str], *flags: str) -> None:
    """The cluster's controller restarted (scripts/slurm_cluster.sh restart)."""
    subprocess.run(["bash", str(SCRIPT), "restart", *flags], env=env, check=True,
                   capture_output=True, timeout=180)


def results(runs: Path) -> dict[str, object]:
    return {path.parent.name: read_result(path) for path in runs.rglob("result.json")}


def submitted(runs: Path) -> dict[str, str]:
    """Unit folder -> the task the ledger says was last submitted for it."""
    ledger = json.loads((runs / "splits" / "slurm" / "submitted.json").read_text())
    return {unit.rsplit("/", 1)[-1]: entry["job_id"] for unit, entry in ledger["tasks"].items()}


def test_a_job_array_with_default_options_then_a_cancelled_task_is_named_and_redone(env, epochs_lasting,
                                                                                   tmp_path):
    # 8 s of work: the second task is still training when the test cancels it after its
    # second epoch, within a second (it polls the log twice a second)
    runs, epochs = tmp_path / "runs", epochs_lasting(TASK_SECONDS)
    run = bench(env, runs, "--set", f"epochs={epochs}")
    lines = read_until(run, "split_01 -> task")
    # each task's log is named as it is submitted
    tasks = dict(line.split(" -> task ")[1].split(", log ") for line in lines if " -> task " in line)
    assert len(tasks) == 2 and all(Path(log).parent.is_dir() for log in tasks.values())
    first, second = sorted(tasks)
    # the unit's output reaches its log as it goes, before the unit ends
    log = Path(tasks[second])
    end = time.monotonic() + 120
    while f"epoch 2/{epochs}" not in (log.read_text() if log.is_file() else ""):
        assert time.monotonic() < end, "no epoch line in the task's log while it runs"
        time.sleep(0.5)
    subprocess.run(["scancel", second], env=env, check=True)
    cancelled_at = time.monotonic()
    lines = read_until(run, "split_01: failed")
    assert time.monotonic() - cancelled_at < POLL + 10  # at the next look, not minutes later
    assert f"slurm task {second} ended without a result: CANCELLED by" in lines[-1]
    code, out = finish(run)
    assert code == 1 and "1 run, 0 already done, 1 failed" in out, out
    (unit,) = results(runs).values()
    assert unit.unit == "split_00" and unit.device == "cpu"
    assert unit.scheduler.job_id == first and unit.scheduler.array_task_id == 0
    assert unit.scheduler.restarts == 0
    assert unit.environment.arithmetic.threads == 1  # the one CPU Slurm gave the task
    # no submitit leftovers beside the task folders
    assert not list((runs / "splits" / "slurm").glob(".submission_file_*"))

    # the rerun submits the cancelled unit alone, with knobs a cluster user sets
    rerun = bench(env, runs, "--set", f"epochs={epochs}", "--slurm-cpus-per-task", "2",
                  "--slurm-setup", "echo the setup line ran", "--slurm-extra", "comment=lifeiqa")
    code, out = finish(rerun)
    assert code == 0 and "1 run, 1 already done, 0 failed" in out, out
    redone = results(runs)["split_01"]
    job = redone.scheduler.job_id
    assert redone.scheduler.array_job_id is None and job != first.split("_")[0]  # one task
    assert submitted(runs)["split_01"] == job
    assert redone.environment.arithmetic.threads == 2  # its torch threads: its CPUs
    script = (runs / "splits" / "slurm" / job / f"{job}_submission.sh").read_text()
    assert "#SBATCH --cpus-per-task=2" in script and "#SBATCH --comment=lifeiqa" in script
    assert "gpus" not in script  # no GPU asked of a CPU partition
    log = runs / "splits" / "slurm" / job / f"{job}_0_log.out"
    assert "the setup line ran" in log.read_text()


def test_a_submission_sbatch_refuses_is_one_line_and_leaves_no_file(env, tmp_path):
    runs = tmp_path / "runs"
    code, out = finish(bench(env, runs, "--slurm-exclude", "no-such-node"))
    assert code == 1, out
    (error,) = [line for line in out.splitlines() if "error" in line]
    assert error.startswith("lifeiqa-bench run: error: sbatch refused the job array: ")
    assert "Traceback" not in out
    assert not [p for p in (runs / "splits" / "slurm").rglob("*")]


def freeze(env: dict[str, str], tasks: Iterable[str]) -> None:
    """The tasks kept alive however long what follows takes: a pending one held, a running one
    suspended (stopped where it is), as an admin would. Held first, so that a task that starts
    meanwhile is caught by the suspension."""
    for command in ("hold", "suspend"):  # each refuses the tasks it does not apply to
        for task in tasks:
            subprocess.run(["scontrol", command, task], env=env, capture_output=True)
    states = {task: squeue(env)[task] for task in tasks}
    assert set(states.values()) <= {"PENDING", "SUSPENDED"}, states


def thaw(env: dict[str, str], tasks: Iterable[str]) -> None:
    for command in ("release", "resume"):
        for task in tasks:
            subprocess.run(["scontrol", command, task], env=env, capture_output=True)


def test_a_rerun_attaches_to_the_live_tasks_of_a_killed_client(env, epochs_lasting, tmp_path):
    runs, epochs = tmp_path / "runs", f"epochs={epochs_lasting(TASK_SECONDS)}"
    run = bench(env, runs, "--set", epochs)
    read_until(run, "split_01 -> task")
    live = submitted(runs)
    run.send_signal(signal.SIGINT)
    code, out = finish(run, 60)
    assert code == 130 and "Traceback" not in out, out
    assert "stopped waiting (Ctrl-C)" in out and "attach to them" in out
    assert all(squeue(env)[task] in ("PENDING", "RUNNING") for task in live.values())
    # while two clients start (seconds each on a busy machine), the tasks could end: frozen,
    # they are still live when the rerun looks, and then run to their end
    freeze(env, live.values())

    killed = bench(env, runs, "--set", epochs)
    read_until(killed, "attached to 2 task(s)")
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)

    rerun = bench(env, runs, "--set", epochs)
    attached = read_until(rerun, "attached to 2 task(s)")
    thaw(env, live.values())
    code, out = finish(rerun)
    out = "\n".join(attached) + "\n" + out
    assert code == 0 and "slurm (slurm): submitted" not in out, out
    assert "2 run, 0 already done, 0 failed" in out
    assert {name: unit.scheduler.job_id for name, unit in results(runs).items()} == live
    assert submitted(runs) == live


def test_a_unit_past_its_time_limit_is_requeued_and_resumes_from_its_last_epoch(env, epochs_lasting,
                                                                                tmp_path):
    """A one-minute limit: Slurm signals the task 15 s (to 45 s, its timer ticks every 30 s)
    before it; the unit saves its state after each epoch and is requeued; the rerun of the task
    takes it up after its last saved epoch and finishes it. (Slurm holds a requeued job two
    minutes; here the test releases it at once, as an impatient admin would, and gives it ten
    minutes: on a busy machine one more minute may not finish the unit, and after three requeues
    submitit gives up.) That a unit resumed so ends with the numbers of an uninterrupted run is
    tested without a cluster, on a unit a tenth this size:
    tests/test_harness_runs.py::test_a_unit_cut_short_resumes_from_its_last_saved_epoch_with_the_uninterrupted_numbers."""
    # work for 100 s: past the signal at 45 s after the start even where the probe, run on a
    # busier machine, doubled an epoch's cost
    runs, epochs = tmp_path / "runs", epochs_lasting(100)
    run = bench(env, runs, "--splits", "1", "--slurm-time", "1", "--set", f"epochs={epochs}")
    (line,) = [x for x in read_until(run, " -> task ") if " -> task " in x]
    job = line.split(" -> task ")[1].split(",")[0]
    end = time.monotonic() + 590
    while run.poll() is None and time.monotonic() < end:
        held = subprocess.run(["squeue", "--noheader", "--jobs", job, "--format=%T %r"], env=env,
                              capture_output=True, text=True).stdout.split()
        if held == ["PENDING", "BeginTime"]:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now", "TimeLimit=10"],
                           env=env, check=True, capture_output=True)
        time.sleep(1)
    code, out = finish(run, 30)
    assert code == 0 and "1 run, 0 already done, 0 failed" in out, out
    (unit,) = results(runs).values()
    assert unit.scheduler.restarts >= 1
    log = (runs / "splits" / "slurm" / unit.scheduler.job_id / f"{unit.scheduler.job_id}_0_log.out")
    resumed = [line for line in log.read_text().splitlines() if "resumed after epoch" in line]
    assert resumed, log.read_text()[-2000:]
    saved = int(resumed[0].split("resumed after epoch ")[1].split()[0])
    assert 0 < saved < epochs  # taken up part of the way, not started again
    assert [entry["epoch"] for entry in unit.history] == list(range(1, epochs + 1))
    assert not list(runs.rglob("resume.pt"))  # removed with the result


@pytest.fixture
def no_accounting(env):
    """The same cluster with its controller restarted without accounting, then with it again."""
    restart(env, "--no-accounting")
    assert subprocess.run(["sacct"], env=env, capture_output=True).returncode != 0
    yield
    restart(env)


def test_without_accounting_a_cancelled_task_is_still_reported_and_the_run_ends(env, no_accounting,
                                                                               epochs_lasting,
                                                                               tmp_path):
    runs = tmp_path / "runs"
    run = bench(env, runs, "--set", f"epochs={epochs_lasting(TASK_SECONDS)}")
    lines = read_until(run, "split_01 -> task")
    second = lines[-1].split(" -> task ")[1].split(",")[0]
    wait_for_state(env, second, "RUNNING")
    subprocess.run(["scancel", second], env=env, check=True)
    code, out = finish(run, 300)
    assert code == 1 and "1 run, 0 already done, 1 failed" in out, out
    assert "keeps no accounting" in out
    assert f"slurm task {second} ended without a result: CANCELLED" in out
