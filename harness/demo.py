"""The embedded default: the benchmark end to end with no data and no network.

Synthetic KADID-, TID2013- and KonIQ-like datasets are generated (in the real layouts) from
images that ship with installed packages (the ``small`` size: 48 content groups, so each 20 %
test part holds 10); the ``comparison`` protocol puts Life-IQA, its ablations and the baselines
(layer probes, the DEIQT-style head, CNNIQA and WaDIQaM-NR trained under the same splits, PIQE
zero-shot) on all 10 content-disjoint splits of the KADID-like set, with the offline
EfficientNet-Lite0 backbone frozen and its features cached; then cross-dataset transfer between
the synthetic sets. The leaderboard (tables, per-distortion breakdown, figures) is written to
``runs/demo/leaderboard/``.

The demo's recipe is ``cpu_bench``: the half-width ``lifeiqa_effnet_lite0_small`` preset, one
192 crop per image, trained for the epochs where the measured SRCC-vs-epochs curve flattens
(README). Cross-dataset transfer runs one seed per pair; each step's command line runs the full
version without that option. The comparison's Life-IQA row is the ``splits`` protocol's result
(same splits, seeds and recipe), so that protocol is not run twice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from harness.api import Results, evaluate_options, leaderboard, load_results, plan_options, run_options
from harness.data.sources import SYNTH_PREFIX
from harness.plan.options import RunOptions

log = logging.getLogger(__name__)

RECIPE = "cpu_bench"
STEPS: tuple[tuple[str, dict], ...] = (
    ("comparison", {}),
    ("cross-dataset", {"seeds": 1}),
)
# tiny data and the random-weight tiny model (a Swin: 224 crops, hence cpu_demo): seconds, for
# tests; the numbers mean nothing
SMOKE = {"synth_size": "tiny", "model": "lifeiqa_tiny", "recipe": "cpu_demo", "splits": 2}
TITLE = ("lifeiqa demo leaderboard (synthetic data: these numbers test the harness, not "
         "Life-IQA's published accuracy)")


def demo_steps(runs: str = "runs", seed: int = 0, smoke: bool = False) -> list[RunOptions]:
    """The demo's runs, in order."""
    return [run_options(protocol, suite=f"demo/{protocol}", runs=runs, seed=seed,
                        **{"recipe": RECIPE, **extra, **(SMOKE if smoke else {})})
            for protocol, extra in STEPS]


def demo_data(steps: list[RunOptions]) -> list[tuple[str, float]]:
    """Generate (or find in the cache) every synthetic dataset the steps read; returns each
    one's name and the seconds it took, so the demo can say where its time went."""
    timings = []
    for options in steps:
        run = plan_options(options)
        names = sorted({name for job in run.jobs for name in (job.train_dataset, job.test_dataset)
                        if name.startswith(SYNTH_PREFIX)})
        for name in names:
            if name in dict(timings):
                continue
            start = time.perf_counter()
            root = run.sources.root_for(name)
            timings.append((name, time.perf_counter() - start))
            log.info("%s: %s (%.1f s)", name, root, timings[-1][1])
    return timings


def command_line(options: RunOptions) -> str:
    """``lifeiqa-bench run ...`` with the options that differ from the defaults."""
    defaults = RunOptions(options.protocol)
    words = ["lifeiqa-bench", "run", "--protocol", options.protocol]
    for spec in dataclasses.fields(RunOptions):
        value = getattr(options, spec.name)
        if spec.name in ("protocol", "executor") or value == getattr(defaults, spec.name):
            continue
        words += [f"--{spec.name.replace('_', '-')}", str(value)]
    return " ".join(words)


def demo_leaderboard(runs: str = "runs", out: str | Path | None = None) -> Path:
    """The leaderboard of everything under ``runs/demo``."""
    out = Path(out) if out else Path(runs) / "demo" / "leaderboard"
    return leaderboard(load_results("demo", runs), out, title=TITLE)


@dataclass(frozen=True)
class DemoOutcome:
    steps: tuple[Results, ...]
    leaderboard: Path
    seconds: float
    # (stage, seconds): each synthetic dataset, each protocol step, the leaderboard
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def failed(self) -> int:
        return sum(len(step.failed) for step in self.steps)


def run_demo(runs: str = "runs", seed: int = 0, smoke: bool = False,
             leaderboard_out: str | Path | None = None, progress: bool = False) -> DemoOutcome:
    """Run the demo's steps and write its leaderboard."""
    start = time.perf_counter()
    steps = demo_steps(runs, seed, smoke)
    timings = [(f"data {name}", seconds) for name, seconds in demo_data(steps)]
    results = []
    for options in steps:
        log.info("$ %s", command_line(options))
        began = time.perf_counter()
        results.append(evaluate_options(options, progress))
        timings.append((options.protocol, time.perf_counter() - began))
    began = time.perf_counter()
    board = demo_leaderboard(runs, leaderboard_out)
    timings.append(("leaderboard", time.perf_counter() - began))
    return DemoOutcome(tuple(results), board, time.perf_counter() - start, tuple(timings))
