"""The embedded default: the benchmark end to end with no data and no network.

Synthetic KADID-, TID2013- and KonIQ-like datasets are generated (in the real layouts) from
images that ship with installed packages (the ``small`` size: 48 content groups, so each 20 %
test part holds 10); the ``comparison`` protocol puts Life-IQA, its six ablations and the
baselines on cached features (four layer probes, the DEIQT-style head) and PIQE zero-shot on all
10 content-disjoint splits of the KADID-like set, with the offline EfficientNet-Lite0 backbone
frozen and its features cached; then cross-dataset transfer between the synthetic sets, one seed
per pair. The two baselines trained from pixels are left out for time, and the leaderboard says
so. The leaderboard (tables, per-distortion breakdown, figures, and how well the data separates
models) is written to ``runs/demo/leaderboard/``.

The demo's recipe is ``cpu_bench``: the half-width ``lifeiqa_effnet_lite0_small`` preset, one
192 crop per image, trained for the epochs where the measured SRCC-vs-epochs curve flattens
(README). Each step's command line is logged; without ``--models`` and ``--seeds`` it runs the
full version.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.api import Results, evaluate_all, leaderboard, load_results, plan_options, run_options
from harness.data.sources import DataSources
from harness.plan.options import RunOptions
from harness.plan.protocols import load_protocol
from harness.reporting.views import Section, Table
from harness.results.aggregate import Cell

log = logging.getLogger(__name__)

RECIPE = "cpu_bench"
# The comparison's rows the demo runs: all but the two trained from pixels (cnniqa, wadiqam_nr),
# which cost ~120 s per unit on 2 cores against ~5 s for a unit on cached features: the two
# would take twice the rest of the demo. The leaderboard names them and how to run them.
DEMO_ROWS = ("full", "no_gcn", "gcn_to_mha", "no_moe", "moe_to_ffn", "no_stage3_kv",
             "vanilla_decoder", "deiqt_head", "probe_stage1", "probe_stage2", "probe_stage3",
             "probe_stage4", "piqe")
STEPS: tuple[tuple[str, dict], ...] = (
    ("comparison", {"models": DEMO_ROWS}),
    # the paper's open question (shallow stages in the keys/values) and its text's learnable
    # adjacency, against Life-IQA on 5 of the splits (their stages come from the comparison's
    # cached backbone pass; 5 splits keep the step near two minutes, and show medians, not
    # markers)
    ("ablation", {"models": ("full", "stage2_kv", "stage1_kv", "learnable_adjacency"),
                  "splits": 5}),
    # the probes' cached stage features again: seconds
    ("feature-separability", {}),
    # expert routing by distortion type, with and without the balance loss; 5 splits of the
    # KADID-like set (its 25 types; 10 more units would double the step for a p-value per split)
    ("routing", {"datasets": ("synth-kadid10k",), "splits": 5}),
    ("cross-dataset", {"seeds": 1}),
)
# Units of each seeded cell of the split steps rerun under another seed and draw of training
# crops: the board re-tests every verdict under each cell's noise measured from them
# (harness/results/stability.py). Three paired differences give each cell's sd with 3 degrees of
# freedom (good to about +-40 %) for about a quarter more time; the cross-dataset step's one
# seed per pair makes no comparisons to re-test.
NOISE_UNITS = 3
# What a benchmark on this data would need to separate models, and the data it is measured on:
# (label, step, column, statistic, target)
KADID, TRANSFER = "synth-kadid10k", "synth-kadid10k -> synth-tid2013"
RESOLUTION_GOALS = (
    ("median SRCC of Life-IQA over {splits}", "comparison", KADID, "median", ">= 0.85"),
    ("width of that median's interval", "comparison", KADID, "width", "<= 0.10"),
    ("KADID-like -> TID-like transfer SRCC", "cross-dataset", TRANSFER, "median", ">= 0.80"),
)
# tiny data and the random-weight tiny model (a Swin: 224 crops, hence cpu_demo): seconds, for
# tests; the numbers mean nothing
SMOKE = {"synth_size": "tiny", "model": "lifeiqa_tiny", "recipe": "cpu_demo", "splits": 2}
TITLE = ("lifeiqa demo leaderboard (synthetic data: these numbers test the harness, not "
         "Life-IQA's published accuracy)")


def default_workers() -> int:
    """Worker processes for the demo's units: two on 2 cores (the decoder's small kernels keep
    two threads of one process from filling both cores: 2 x 1 thread ran ~1.5x the units of
    1 x 2), at most four (each then gets cores / 4 threads)."""
    return max(1, min(os.cpu_count() or 1, 4))


def demo_steps(runs: str = "runs", seed: int = 0, smoke: bool = False,
               workers: int | None = None, splits: int | None = None) -> list[RunOptions]:
    """The demo's runs, in order; ``workers`` processes run each step's units (default:
    :func:`default_workers`; 1 runs them here, one after another; the smoke run always does);
    ``splits``: at most that many splits in each step that has splits (a smaller demo, with less
    power: how its cost grows with the work, speed report section 8)."""
    workers = 1 if smoke else (workers or default_workers())
    executor = {"executor": "pool", "workers": workers} if workers > 1 else {}
    steps = []
    for protocol, extra in STEPS:
        chosen = {"recipe": RECIPE, **extra, **(SMOKE if smoke else {}), **executor}
        declared = load_protocol(protocol)
        if declared.kind == "splits":
            # the smoke run reruns one unit of the comparison's cells only: the path, for seconds
            chosen.setdefault("noise_units", NOISE_UNITS if not smoke else
                              int(protocol == "comparison"))
            if splits is not None:
                chosen["splits"] = min(splits, chosen.get("splits", declared.splits))
        steps.append(run_options(protocol, suite=f"demo/{protocol}", runs=runs, seed=seed,
                                 **chosen))
    return steps


def demo_data(steps: list[RunOptions]) -> list[tuple[str, float]]:
    """Generate (or find in the cache) every synthetic dataset the steps read, side by side;
    returns each one's name and the seconds it took, so the demo can say where its time went."""
    wanted: dict[DataSources, set[str]] = {}
    for options in steps:
        run = plan_options(options)
        wanted.setdefault(run.sources, set()).update(
            name for job in run.jobs for name in (job.train_dataset, job.test_dataset))
    timings = [timing for sources, names in wanted.items()
               for timing in sources.synthesize_all(sorted(names))]
    for name, seconds in timings:
        log.info("%s: %.1f s", name, seconds)
    return timings


def command_line(options: RunOptions) -> str:
    """``lifeiqa-bench run ...`` with the options that differ from the defaults."""
    defaults = RunOptions(options.protocol)
    words = ["lifeiqa-bench", "run", "--protocol", options.protocol]
    for spec in dataclasses.fields(RunOptions):
        value = getattr(options, spec.name)
        if spec.name in ("protocol", "executor") or value == getattr(defaults, spec.name):
            continue
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        words += [f"--{spec.name.replace('_', '-')}", text]
    return " ".join(words)


def left_out_note() -> str:
    """The comparison's rows the demo does not run, and the command that runs them."""
    protocol = load_protocol("comparison")
    left_out = [row for row in (*protocol.variants, *protocol.baselines) if row not in DEMO_ROWS]
    if not left_out:
        return ""
    return (f"Rows of the comparison protocol the demo leaves out for time: {', '.join(left_out)} "
            f"(trained from pixels: ~120 s per unit on 2 CPU cores, against ~5 s for a unit on "
            f"cached features). `lifeiqa-bench run --protocol comparison --recipe {RECIPE}` runs "
            f"every row on the same splits.")


def resolution_table(results: Results, reference: str | None) -> Table:
    """The demo's goals for statistical resolution against what the run measured."""
    cells: dict[tuple[str, str, str | None], Cell] = {
        (c.suite.removeprefix("demo/"), c.column, c.model): c for c in results.cells()}
    rows = []
    for label, step, column, statistic, target in RESOLUTION_GOALS:
        cell = cells.get((step, column, reference))
        if cell is None:
            rows.append([label.format(splits="the splits"), target, "not run", ""])
            continue
        label = label.format(splits="one split" if cell.n == 1 else f"the {cell.n} splits")
        if statistic == "width" and cell.n < 2:  # one unit's "interval" is a point
            rows.append([label, target, f"no interval from one {cell.units[0].split('_')[0]}",
                         "NO"])
            continue
        summary = cell.srcc
        value = summary.median if statistic == "median" else summary.ci_high - summary.ci_low
        limit = float(target.split()[1])
        met = value >= limit if target.startswith(">=") else value <= limit
        detail = (f"one {cell.units[0].split('_')[0]}" if cell.n == 1 else
                  f"n={cell.n}; [{summary.ci_low:.3f}, {summary.ci_high:.3f}], "
                  f"{summary.coverage:.1%} coverage")
        rows.append([label, target, f"{value:.3f} ({detail})", "yes" if met else "NO"])
    return Table("", ["goal", "target", "measured", "met"], rows)


def resolution_section(results: Results) -> Section:
    """The leaderboard's first part: what the demo can resolve, and what it leaves out."""
    return Section(
        "How well this data separates models",
        "Targets a benchmark needs to resolve differences of a few hundredths between models, "
        "against what this run measured (SRCC, the comparison's reference model). A NO means "
        "the demo cannot resolve such differences; the notes under each table say which rows "
        "it does separate.", resolution_table(results, results.reference()), left_out_note())


def demo_leaderboard(runs: str = "runs", out: str | Path | None = None,
                     rerun: str | Path | None = None, rerun_noise: float | None = None,
                     noise_boards: tuple[str | Path, str | Path] | None = None) -> Path:
    """The leaderboard of everything under ``runs/demo`` (markdown, ``leaderboard.json`` and the
    page ``index.html`` beside them); with ``rerun`` (the runs folder of another demo run:
    another clone, machine or thread count) or a stated ``rerun_noise`` (the sd of a unit's
    SRCC and PLCC between runs) or ``noise_boards`` (two leaderboard.json files of the same
    units made under different arithmetic), every verdict is re-tested under that noise, and a
    fragile one is drawn so."""
    out = Path(out) if out else Path(runs) / "demo" / "leaderboard"
    results = load_results("demo", runs)
    again = load_results("demo", rerun) if rerun else None
    return leaderboard(results, out, title=TITLE, rerun=again, rerun_noise=rerun_noise,
                       sections=[resolution_section(results)], html=out,
                       noise_boards=noise_boards)


@dataclass(frozen=True)
class DemoOutcome:
    steps: tuple[Results, ...]
    leaderboard: Path
    seconds: float
    # (stage, seconds): each synthetic dataset, the units of all steps (and each step's units
    # summed), the leaderboard
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def failed(self) -> int:
        return sum(len(step.failed) for step in self.steps)


def run_demo(runs: str = "runs", seed: int = 0, smoke: bool = False,
             leaderboard_out: str | Path | None = None, progress: bool = False,
             workers: int | None = None, rerun: str | Path | None = None,
             rerun_noise: float | None = None, splits: int | None = None,
             noise_boards: tuple[str | Path, str | Path] | None = None) -> DemoOutcome:
    """Run the demo's steps (each on at most ``splits`` splits, where given) and write its
    leaderboard (verdicts re-tested under the noise of ``rerun``, another demo run's runs
    folder, of ``noise_boards`` or the stated sd ``rerun_noise``, where given)."""
    start = time.perf_counter()
    steps = demo_steps(runs, seed, smoke, workers, splits)
    timings = [(f"data {name}", seconds) for name, seconds in demo_data(steps)]
    for options in steps:
        log.info("$ %s", command_line(options))
    # one queue for every step's units: the workers start once, and no step waits for the
    # last unit of the one before (each command above, run alone, gives the same units)
    began = time.perf_counter()
    results = evaluate_all(steps, progress)
    timings.append((f"units of the {len(steps)} steps", time.perf_counter() - began))
    # where that went, step by step: the seconds of its units, summed (two workers run them side
    # by side), for a step whose units all ran now
    timings += [(f"{options.protocol} units summed", sum(u.wall_seconds for u in step.units))
                for options, step in zip(steps, results, strict=True)
                if step.done and not step.skipped]
    began = time.perf_counter()
    board = demo_leaderboard(runs, leaderboard_out, rerun, rerun_noise, noise_boards)
    timings.append(("leaderboard", time.perf_counter() - began))
    return DemoOutcome(tuple(results), board, time.perf_counter() - start, tuple(timings))
