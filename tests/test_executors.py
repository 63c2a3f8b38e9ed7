"""The run command's executors give the same results per unit: local (in process), a pool of
worker processes (with a worker killed mid-unit, then a rerun), and submitit's local executor
standing in for Slurm (real subprocesses, real pickling)."""

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from commands import counts
from dataset_fixtures import write_kadid10k_release

from harness.cli import main
from harness.results.store import read_result


@pytest.fixture(scope="module")
def kadid(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kadid")
    write_kadid10k_release(root, bad_rows=False)
    return root


def bench(kadid: Path, runs: Path, *extra: str) -> int:
    """``lifeiqa-bench run`` in this process: 2 splits of a small KADID layout, tiny model."""
    return main(["run", "--protocol", "splits", "--splits", "2", "--dataset-root",
                 f"kadid10k={kadid}", "--datasets", "kadid10k", "--model", "lifeiqa_tiny",
                 "--device", "cpu", "--set", "epochs=2", "--set", "batch_size=4",
                 "--runs", str(runs), *extra])


def units(runs: Path) -> dict[str, tuple[dict[str, float], np.ndarray]]:
    """Per unit: its metrics and its test predictions."""
    out = {}
    for path in sorted(runs.rglob("result.json")):
        lines = (path.parent / "predictions.csv").read_text().splitlines()[1:]
        out[str(path.parent.relative_to(runs))] = (
            read_result(path).metrics.to_dict(),
            np.array([float(line.rsplit(",", 1)[1]) for line in lines]))
    return out


def assert_same_units(ours: dict, reference: dict, count: int) -> None:
    # Pool workers run with fewer torch threads, which changes float summation order only.
    assert len(ours) == count and set(ours) <= set(reference)
    for unit, (metrics, predictions) in ours.items():
        assert metrics == pytest.approx(reference[unit][0], abs=1e-5), unit
        np.testing.assert_allclose(predictions, reference[unit][1], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def reference(kadid, tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("local")
    assert bench(kadid, runs) == 0
    return units(runs)


@pytest.mark.slow
def test_slurm_executor_through_submitit_matches_local(kadid, reference, tmp_path, capsys):
    runs = tmp_path / "runs"
    slurm = ["--splits", "1", "--executor", "slurm", "--slurm-cluster", "local"]
    assert bench(kadid, runs, *slurm, "--slurm-gpus-per-job", "0", "--slurm-time", "10",
                 "--json") == 0
    out, err = capsys.readouterr()
    assert "slurm (local): submitted 1 task(s)" in err and counts(out) == (1, 0, 0)
    assert_same_units(units(runs), reference, 1)
    (log,) = (runs / "splits" / "slurm").rglob("*_log.out")
    assert "SRCC" in log.read_text()
    assert bench(kadid, runs, *slurm, "--json") == 0
    assert counts(capsys.readouterr().out) == (0, 1, 0)  # nothing is resubmitted


@pytest.mark.slow
def test_pool_worker_killed_midway_is_reported_and_its_unit_redone(kadid, reference, tmp_path,
                                                                    capsys):
    runs = tmp_path / "runs"
    codes = []
    parent = threading.Thread(target=lambda: codes.append(
        bench(kadid, runs, "--executor", "pool", "--workers", "2", "--json")))
    parent.start()
    deadline, victim = time.time() + 300, None
    while victim is None and parent.is_alive() and time.time() < deadline:
        for lock in runs.rglob(".lock"):  # a claim records "pid host" once written
            owner = lock.read_text().split()
            if owner:
                victim = int(owner[0])
                break
        time.sleep(0.05)
    assert victim, "no worker claimed a unit"
    os.kill(victim, signal.SIGKILL)
    parent.join(300)
    first = capsys.readouterr()
    assert codes == [1]
    assert "(killed by SIGKILL)" in first.err and counts(first.out) == (1, 0, 1)
    assert "[worker 0]" in first.err or "[worker 1]" in first.err
    assert len(units(runs)) == 1 and lock.exists()  # a stale claim, no result
    assert bench(kadid, runs, "--executor", "pool", "--workers", "2", "--json") == 0
    second = capsys.readouterr()
    assert "pool: 1 worker(s)" in second.err and counts(second.out) == (1, 1, 0)
    assert_same_units(units(runs), reference, 2)
    logs = list((runs / "splits" / "pool").rglob("worker-*.log"))
    assert len(logs) == 3 and sum("SRCC" in log.read_text() for log in logs) == 2


def test_executor_options_are_checked(kadid, tmp_path, capsys):
    for args, message in (
            (["--workers", "2"], "--workers: only with --executor pool"),
            (["--executor", "pool"], "needs --gpus 0,1,... (one worker per GPU) or --workers N"),
            (["--executor", "pool", "--gpus", "a,b"],
             "--gpus 'a,b': expected comma-separated GPU indices"),
            (["--slurm-time", "5"], "--slurm-time: only with --executor slurm"),
            (["--slurm-setup", "module load cuda"], "--slurm-setup: only with --executor slurm"),
            (["--executor", "slurm", "--slurm-time", "1", "--slurm-signal-lead", "60"],
             "--slurm-signal-lead 60: expected fewer seconds than --slurm-time 1 minute(s)"),
            (["--executor", "slurm", "--slurm-extra", "mail-type"],
             "--slurm-extra 'mail-type': expected KEY=VALUE"),
            (["--executor", "slurm", "--slurm-extra", "mail type=END"],
             "--slurm-extra mail type=END: expected an sbatch option's long name"),
            (["--executor", "slurm", "--slurm-poll", "0"], "--slurm-poll 0.0: expected seconds > 0"),
            (["--executor", "slurm", "--slurm-cpus-per-task", "0"],
             "--slurm-cpus-per-task 0: expected an integer >= 1")):
        assert bench(kadid, tmp_path, *args) == 2
        assert message in capsys.readouterr().err


def test_a_slurm_dry_run_shows_what_each_task_asks_of_slurm(kadid, tmp_path, capsys):
    """No GPU by default (a CPU partition refuses a GPU request), one with a cuda device; every
    knob reaches submitit's parameters, which the dry run prints."""
    from harness.engine.slurm import sbatch_parameters
    from harness.plan.options import ExecutorOptions, RunOptions

    assert bench(kadid, tmp_path, "--executor", "slurm", "--dry-run") == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("slurm:"))
    assert "gpus_per_node" not in line and "timeout_min=240" in line and "signal_delay_s=90" in line
    knobs = ["--executor", "slurm", "--slurm-time", "20", "--slurm-cpus-per-task", "4",
             "--slurm-qos", "high", "--slurm-constraint", "a100", "--slurm-exclude", "n[1-2]",
             "--slurm-reservation", "iqa", "--slurm-setup", "module load cuda",
             "--slurm-setup", "source env/bin/activate", "--slurm-extra", "mail-type=END",
             "--slurm-retries", "5", "--slurm-poll", "10", "--device", "cuda", "--dry-run"]
    assert bench(kadid, tmp_path, *knobs) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("slurm:"))
    for shown in ("timeout_min=20", "signal_delay_s=90", "gpus_per_node=1", "cpus_per_task=4",
                  "qos=high", "constraint=a100", "exclude=n[1-2]",
                  "setup=['module load cuda', 'source env/bin/activate']",
                  "additional_parameters={'reservation': 'iqa', 'mail-type': 'END'}",
                  "retries after a timeout=5", "poll=10 s"):
        assert shown in line, (shown, line)
    short = RunOptions("splits", executor=ExecutorOptions("slurm", slurm_time=2))
    assert sbatch_parameters(short, "splits")["slurm_signal_delay_s"] == 30  # a quarter of 2 min


@pytest.mark.slow
def test_runs_executed_together_share_one_pool_and_match_local(kadid, reference, tmp_path):
    import harness

    def options(suite: str, splits: int, **changes) -> harness.RunOptions:
        settings = {"suite": suite, "splits": splits, "dataset_roots": {"kadid10k": str(kadid)},
                    "datasets": ("kadid10k",), "model": "lifeiqa_tiny", "device": "cpu",
                    "overrides": {"epochs": 2, "batch_size": 4}, "runs": str(tmp_path / "runs"),
                    "executor": "pool", "workers": 2, **changes}
        return harness.run_options("splits", **settings)

    first, second = harness.evaluate_all([options("pair/one", 1), options("pair/two", 2)])
    assert (first.suite, first.done, second.suite, second.done) == ("pair/one", 1, "pair/two", 2)
    # one queue and one set of workers for both, under the folder the suites share
    (pool,) = (tmp_path / "runs" / "pair" / "pool").iterdir()
    assert len(list(pool.glob("taken/*"))) == 3 and len(list(pool.glob("worker-*.json"))) == 2
    for results in (first, second):  # each unit as the local executor made it alone
        ours = units(tmp_path / "runs" / results.suite)
        assert_same_units({f"splits/{unit}": value for unit, value in ours.items()},
                          reference, results.done)
    for other, message in ((options("pair/three", 1, runs=str(tmp_path / "elsewhere")),
                            "differ in --runs"),
                           (options("pair/one", 1), "list the same unit twice"),
                           (options("pair/three", 1, executor="local", workers=None),
                            "different executors")):
        with pytest.raises(harness.InvalidOptionError, match=message):
            harness.evaluate_all([options("pair/one", 1), other])


def test_ctrl_c_during_a_submission_waits_for_its_end():
    """sbatch and the ledger of what it queued happen together: a Ctrl-C in between is raised
    once both are done, and Python's own handler is back afterwards."""
    import os
    import signal
    import time

    from harness.engine.slurm import _interrupts_deferred

    order = []
    # Python's own handler, as the command line has it (an xdist worker ignores SIGINT)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt), _interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        order.append("submitted and recorded")
    restored = signal.signal(signal.SIGINT, outer)
    assert order == ["submitted and recorded"] and restored is signal.default_int_handler


def test_a_ctrl_c_lets_each_worker_unwind_before_a_stubborn_one_is_terminated(tmp_path):
    """stop_workers: a worker interrupted unwinds (its ``finally`` runs: here it writes a file),
    and one that ignores the interrupt is terminated once the grace is over."""
    import subprocess
    import sys

    from harness.engine.executors import stop_workers

    # as a terminal's Ctrl-C finds it: a shell that started the tests in the background left
    # SIGINT ignored, and a child inherits that
    unwinds = ("import pathlib, signal, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
               "try:\n    print('up', flush=True); time.sleep(60)\n"
               f"finally:\n    pathlib.Path({str(tmp_path / 'unwound')!r}).write_text('yes')\n")
    stubborn = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "print('up', flush=True); time.sleep(60)\n")
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
               for code in (unwinds, stubborn)]
    for worker in workers:  # each is inside its sleep
        assert worker.stdout.readline() == "up\n"
    started = time.monotonic()
    stop_workers(workers, grace=2.0)
    assert (tmp_path / "unwound").read_text() == "yes"
    assert workers[0].returncode != 0 and workers[1].returncode == -signal.SIGTERM
    assert 2.0 <= time.monotonic() - started < 30
