"""Section 8, protocol cost against the number of splits: the gate's suite and the demo, each run
from the command line as a user runs it, cold (a fresh process, an empty cache, an empty
results store), at several split counts one after another in one run.

A line fitted through each command's wall times splits them into what a run pays once (the
synthetic data, the first backbone pass, starting processes) and what each further split adds;
the units' own seconds, summed, say how much of the wall time is training and scoring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.results.schema import UnitResult
from harness.results.store import read_result
from harness.speed.report import Table
from harness.speed.sizes import Bench

# the children choose their own threads, as a user's run does (the demo's workers take one core
# each; the gate runs in one process on every core): thread counts made for the sections timed
# in this process must not reach them. OMP_WAIT_POLICY does: it says how the machine is shared,
# for every section alike, and the report's header states it.
_THREAD_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run_cold(arguments: tuple[str, ...], splits: int, folder: Path,
             environment: dict[str, str] | None = None) -> tuple[float, list[UnitResult]]:
    """Wall seconds of ``lifeiqa-bench ARGUMENTS --splits N`` in a fresh process with an empty
    cache and results store (and ``environment``, where given, in place of this process's),
    and the units it stored."""
    runs = folder / "runs"
    env = {key: value for key, value in (environment or os.environ).items()
           if key not in _THREAD_SETTINGS}
    env["LIFEIQA_CACHE"] = str(folder / "cache")
    command = [sys.executable, "-m", "harness.cli", *arguments, "--splits", str(splits),
               "--runs", str(runs)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`lifeiqa-bench {' '.join(command[3:])}` exited with "
                           f"{done.returncode}: {(done.stdout + done.stderr)[-2000:]}")
    return seconds, [read_result(path) for path in sorted(runs.rglob("result.json"))]


def protocol_scaling(bench: Bench) -> Table:
    rows = []
    for label, arguments, counts in bench.sizes.scaling:
        walls = []
        for splits in counts:
            seconds, results = run_cold(arguments, splits,
                                        bench.folder / f"scaling-{label}-{splits}")
            units = [r.wall_seconds for r in results]
            walls.append(seconds)
            rows.append({"command": f"lifeiqa-bench {' '.join(arguments)}", "splits": splits,
                         "wall_s": seconds, "units": len(units), "unit_s_summed": sum(units),
                         "fixed_s_fit": None, "per_split_s_fit": None})
        if len(counts) > 1:
            per_split, fixed = np.polyfit(counts, walls, 1)
            rows[-1].update(fixed_s_fit=float(fixed), per_split_s_fit=float(per_split))
    return Table(tuple(rows), (
        "each command run from the command line (`python -m harness.cli ... --splits N --runs "
        "DIR`) in a fresh process with an empty LIFEIQA_CACHE and results store, so every run "
        "generates its synthetic data and makes its backbone pass; one command after another; "
        "the children choose their device and threads as a user's run does (--device auto; "
        "OMP_NUM_THREADS not passed down, OMP_WAIT_POLICY as in the header)",
        "demo --splits N: every step on at most N splits (comparison, ablation, separability, "
        "routing), cross-dataset as always (one seed per pair)",
        "units: the units stored; unit_s_summed: their own wall seconds added up (the demo's "
        "workers run units side by side, so this can exceed wall_s)",
        "fixed_s_fit, per_split_s_fit: a least-squares line through the command's wall times "
        "against splits (intercept: what a run pays once; slope: what each split adds), on "
        "the last row of each command; it holds over the counts measured (the demo's ablation "
        "and routing stop at 5 splits whatever N)"))
