"""The embedded default: the benchmark end to end with no data and no network.

Synthetic KADID-, TID2013- and KonIQ-like datasets are generated (in the real layouts) from
images that ship with installed packages; the ``splits`` protocol runs on the KADID-like set
with the offline EfficientNet-Lite0 backbone frozen and its features cached; the ``comparison``
protocol puts Life-IQA, its ablations and the baselines (layer probes, the DEIQT-style head,
CNNIQA and WaDIQaM-NR trained under the same splits, PIQE zero-shot) on the same splits; then
cross-dataset transfer between the synthetic sets. The leaderboard (tables, per-distortion
breakdown, figures) is written to ``runs/demo/leaderboard/``.

To stay near 10 minutes on 2 CPU cores the demo uses the ``cpu_demo`` recipe (the half-width
``lifeiqa_effnet_lite0_small`` preset, 3 epochs, one crop per image), the comparison on the
first 3 of the 10 splits, and one seed per cross-dataset pair; each step's command line runs the
full versions without those options.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from harness.api import Results, evaluate_options, leaderboard, load_results, run_options
from harness.plan.options import RunOptions

log = logging.getLogger(__name__)

STEPS: tuple[tuple[str, dict], ...] = (
    ("splits", {}),
    ("comparison", {"splits": 3}),
    ("cross-dataset", {"seeds": 1}),
)
# tiny data and the random-weight tiny model: seconds, for tests; the numbers mean nothing
SMOKE = {"synth_size": "tiny", "model": "lifeiqa_tiny", "splits": 2}
TITLE = ("lifeiqa demo leaderboard (synthetic data: these numbers test the harness, not "
         "Life-IQA's published accuracy)")


def demo_steps(runs: str = "runs", seed: int = 0, smoke: bool = False) -> list[RunOptions]:
    """The demo's runs, in order."""
    return [run_options(protocol, recipe="cpu_demo", suite=f"demo/{protocol}", runs=runs,
                        seed=seed, **{**extra, **(SMOKE if smoke else {})})
            for protocol, extra in STEPS]


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

    @property
    def failed(self) -> int:
        return sum(len(step.failed) for step in self.steps)


def run_demo(runs: str = "runs", seed: int = 0, smoke: bool = False,
             leaderboard_out: str | Path | None = None, progress: bool = False) -> DemoOutcome:
    """Run the demo's steps and write its leaderboard."""
    start = time.perf_counter()
    steps = []
    for options in demo_steps(runs, seed, smoke):
        log.info("$ %s", command_line(options))
        steps.append(evaluate_options(options, progress))
    return DemoOutcome(tuple(steps), demo_leaderboard(runs, leaderboard_out),
                       time.perf_counter() - start)
