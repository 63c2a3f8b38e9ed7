"""Section 9, what the pinned arithmetic costs: the gate's suite run cold from the command line
under each profile (:mod:`harness.arithmetic`), alternating, in one run, with each run's units'
seconds and what torch reported.

Pinning holds every library to AVX2 kernels; on an AVX-512 host that can only cost time where
the wider kernels were faster, and on an AVX2-only host both profiles run the same kernels.
"""

from __future__ import annotations

import os
import statistics

from harness.arithmetic import PROFILES, SETTINGS, VARIABLE, default_profile
from harness.speed.report import Table
from harness.speed.scaling import run_cold
from harness.speed.sizes import Bench


def profile_environment(profile: str) -> dict[str, str]:
    """This process's environment with ``profile`` in place of its own pin."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS and k != VARIABLE}
    return {**env, VARIABLE: profile, **PROFILES[profile]}


def arithmetic_cost(bench: Bench) -> Table:
    arguments, splits, repeats = bench.sizes.arithmetic
    pinned = default_profile()
    profiles = (pinned, "native") if pinned != "native" else ("native",)
    walls: dict[str, list[float]] = {p: [] for p in profiles}
    units: dict[str, list[float]] = {p: [] for p in profiles}
    reported: dict[str, str] = {}
    for repeat in range(repeats):
        for profile in profiles:  # alternating, so a slow spell of the machine hits both
            seconds, results = run_cold(arguments, splits,
                                        bench.folder / f"arithmetic-{profile}-{repeat}",
                                        profile_environment(profile))
            walls[profile].append(seconds)
            units[profile].append(sum(r.wall_seconds for r in results))
            found = {r.environment.arithmetic.label for r in results if r.environment.arithmetic}
            reported[profile] = "; ".join(sorted(found))
    base = statistics.median(walls[profiles[-1]])
    rows = [{"profile": profile, "arithmetic": reported[profile], "runs": repeats,
             "wall_s_median": statistics.median(walls[profile]),
             "unit_s_summed_median": statistics.median(units[profile]),
             "wall_vs_native": statistics.median(walls[profile]) / base}
            for profile in profiles]
    return Table(tuple(rows), (
        f"`lifeiqa-bench {' '.join(arguments)} --splits {splits}` in a fresh process with an "
        f"empty cache and results store (synthetic data generated, every feature computed), "
        f"{repeats} time(s) under each profile, alternating; {VARIABLE} and the libraries' "
        f"variables set for the child only",
        "arithmetic: what the units recorded (harness/arithmetic.py); wall_vs_native: the "
        "median wall time over native's (1.0 on a host whose best kernels are AVX2)"))
