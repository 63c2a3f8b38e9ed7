"""The CI regression gate, its golden file, and the proof that it catches regressions.

    python scripts/gate.py check       # make golden-check (CI): run the gate suite, compare per unit
    python scripts/gate.py write       # make golden: run it at two thread counts, write the golden
    python scripts/gate.py mutations   # make mutation-check: inject regressions, each must fail

The gate suite is the ``ci-golden`` protocol on the ``gate``-size synthetic sets. A rerun is
compared with ``leaderboards/golden-synthetic.yaml`` unit by unit (same split files, same seeds),
two-sided, with per-unit tolerances from the rerun noise measured when the golden was written.

Every run here computes under the pinned arithmetic (``harness/arithmetic.py``: AVX2 kernels on
x86-64), so on any x86 host a gate run at the golden's 2 threads reproduces it bit for bit (an
unpinned run on an AVX2-only host failed 4 of 12 cells against a golden made on an AVX-512
one). What still moves a unit is the thread count (reductions split by threads): ``write``
measures the tolerances from the same suite at 2 threads against 1 thread, cold and warm, and
then the false-alarm and power bounds from a last run, at 3 threads, that did not set them.

The mutation check copies the code to a temporary folder, applies one real regression at a time
(an exact text change that must match once, so no mutation can silently become a no-op), runs the
gate from that copy exactly as CI does, and requires every mutation to fail it and every clean
rerun to pass. A mutation that changes how features are computed or found starts with no cached
features (and a stale cache of other backbone weights planted); the others start from the clean
run's caches, which they cannot change. It prints caught/total and the false alarms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.arithmetic import pinned_environment

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "leaderboards" / "golden-synthetic.yaml"
SUITE = "golden"
RUN = ["run", "--protocol", "ci-golden", "--synth-size", "gate", "--suite", SUITE]
# the code a gate run imports; a mutation changes its temporary copy
CODE = ("lifeiqa", "harness", "protocols", "leaderboards")


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    # it changes how features are computed or found, so its run starts with no cached features
    # (the others start from the clean run's caches, which they cannot change: a run is faster)
    cold: bool = False


# Real regressions, each a change a careless edit could make. The gate must fail on every one.
MUTATIONS = (
    Mutation("training labels permuted within the training part", "harness/engine/parts.py",
             "                   targets_of(train, source.dataset, label_scale),\n",
             "                   __import__('numpy').random.default_rng(0).permutation(\n"
             "                       targets_of(train, source.dataset, label_scale)),\n"),
    Mutation("the GCN output zeroed (the model still runs)", "lifeiqa/layers.py",
             "            if i < len(self.convs) - 1:\n                x = F.relu(x)\n        return x\n",
             "            if i < len(self.convs) - 1:\n                x = F.relu(x)\n"
             "        return x * 0\n"),
    Mutation("test crops cut from the wrong image", "harness/engine/features.py",
             "        array = self.images.get(record.path, self.plan.resize_policy)\n",
             "        source = self.__dict__.setdefault('_previous', record.path) if part == 'test' "
             "else record.path\n"
             "        if part == 'test':\n            self._previous = record.path\n"
             "        array = self.images.get(source, self.plan.resize_policy)\n", cold=True),
    Mutation("SRCC orientation flipped for DMOS data", "harness/results/metrics.py",
             "    oriented = target if higher_is_better else -target\n",
             "    oriented = target\n"),
    Mutation("learning rate x 0.01", "harness/engine/schedules.py",
             "            rate = self.recipe.lr * lr_factor(",
             "            rate = self.recipe.lr * 0.01 * lr_factor("),
    Mutation("test images leaked into training", "harness/engine/runner.py",
             "            return JobParts.with_targets(source, target, part[\"train\"], part[\"test\"],",
             "            part[\"train\"] = part[\"train\"] + part[\"test\"]\n"
             "            return JobParts.with_targets(source, target, part[\"train\"], part[\"test\"],"),
    Mutation("the feature cache keyed without the backbone weights", "harness/engine/features.py",
             "    for name, tensor in sorted(model.backbone.state_dict().items()):\n"
             "        digest.update(name.encode())\n"
             "        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())\n",
             "    for name, _tensor in sorted(model.backbone.state_dict().items()):\n"
             "        digest.update(name.encode())\n", cold=True),
)

# Before every gate run of the mutation check, features of the gate's images from a backbone with
# other weights (random, same architecture, same crop plan) go into the run's fresh cache: a
# stale cache left by another model. Correct code keys them apart and never reads them.
POISON = """
import sys
from harness.api import dry_run
from harness.data.cache import DecodedImageCache
from harness.data.sources import cache_root
from harness.engine.features import CropPlan, FeatureCache
import lifeiqa

plan = dry_run("ci-golden", synth_size="gate", suite="golden", runs=sys.argv[1])
job = next(j for j in plan.jobs if j.model.variant == "full")
model = lifeiqa.create_model(job.model.preset, pretrained=False)  # other weights, same shapes
recipe = job.recipe
crops = CropPlan(recipe.train_crops, recipe.test_crops, recipe.crop_size, recipe.resize_policy,
                 recipe.hflip)
cache = FeatureCache(cache_root() / "features", model, crops,
                     DecodedImageCache(cache_root() / "images"), "cpu")
for name in sorted({j.train_dataset for j in plan.jobs}):
    records = plan.sources.load(name).records
    cache.get_all(records, "train")
    cache.get_all(records, "test")
"""


def run(command: list[str], code: Path, cache: Path, threads: int, log: Path) -> int:
    """One command of the harness imported from ``code``, with its own cache and thread count,
    under the pinned arithmetic (every command, the planted stale cache's too)."""
    env = {**os.environ, **pinned_environment(),
           "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]),
           "LIFEIQA_CACHE": str(cache), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(command)}  (threads {threads})\n")
        handle.flush()
        return subprocess.run(command, cwd=code, env=env, stdout=handle, stderr=subprocess.STDOUT,
                              check=False).returncode


def bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def gate(code: Path, work: Path, threads: int = 2, poison: bool = False,
         golden: Path = GOLDEN, start: Path | None = None, warm: bool = False) -> tuple[bool, Path]:
    """Run the gate suite from ``code`` in ``work`` and check it; (passed, log). ``start``: a
    cache to begin from, its generated synthetic sets only, or (``warm``) all of it."""
    work.mkdir(parents=True, exist_ok=True)
    cache, runs, log = work / "cache", work / "runs", work / "gate.log"
    if start is not None:
        shutil.copytree(start if warm else start / "synth", cache if warm else cache / "synth")
    assert_imports_from(code, cache)
    if poison and run([sys.executable, "-c", POISON, str(runs)], code, cache, threads, log):
        raise RuntimeError(f"the poison step failed; see {log}")
    if run(bench(*RUN, "--runs", str(runs)), code, cache, threads, log) not in (0, 1):
        return False, log  # the run itself broke (bad input, crash): a regression too
    checked = run(bench("check", str(runs / SUITE), "--against", str(golden), "--require-all",
                        "--metric", "both", "--report", str(work / "check.json")),
                  code, cache, threads, log)
    return checked == 0, log


def assert_imports_from(code: Path, cache: Path) -> None:
    """The gate must run the copy it was given, not the installed checkout."""
    env = {**os.environ, "PYTHONPATH": str(code), "LIFEIQA_CACHE": str(cache)}
    found = subprocess.run([sys.executable, "-c", "import harness, lifeiqa; "
                            "print(harness.__file__); print(lifeiqa.__file__)"], cwd=code, env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    if not all(Path(f).resolve().is_relative_to(code.resolve()) for f in found):
        raise RuntimeError(f"the gate would import {found}, not the copy in {code}")


def copy_code(destination: Path) -> Path:
    for name in CODE:
        shutil.copytree(ROOT / name, destination / name,
                        ignore=shutil.ignore_patterns("__pycache__", "synthetic", "gpu-check"))
    return destination


def apply(mutation: Mutation, code: Path) -> None:
    path = code / mutation.path
    text = path.read_text()
    found = text.count(mutation.old)
    if found != 1:
        raise RuntimeError(f"mutation {mutation.name!r}: its text occurs {found} times in "
                           f"{mutation.path} (expected once); update the mutation to the code")
    path.write_text(text.replace(mutation.old, mutation.new))


def command_check(args: argparse.Namespace) -> int:
    """A fresh run every time: results, features and decoded images from an earlier run would
    hide a change in how they are computed. Generated synthetic sets are kept (their manifest
    regenerates them when the generator changes)."""
    work = Path(args.work)
    kept = work / "kept-synth"
    shutil.rmtree(kept, ignore_errors=True)
    if (work / "cache" / "synth").is_dir():
        shutil.move(work / "cache" / "synth", kept)
    for name in ("cache", "runs", "gate.log", "check.json"):
        target = work / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    if kept.is_dir():
        (work / "cache").mkdir(parents=True)
        shutil.move(kept, work / "cache" / "synth")
    passed, log = gate(ROOT, work, threads=args.threads)
    print(log.read_text()[-6000:])
    return 0 if passed else 1


def command_write(args: argparse.Namespace) -> int:
    """Runs at 2 threads (the golden values), at 1 thread cold and at 1 thread warm (the 2-thread
    run's cached features, the decoder trained at 1 thread) set the golden file and its
    tolerances (the reruns' differences: a warm 1-thread run moved a unit by 0.0136 where the cold
    one moved at most 0.0031); a last run at 3 threads, cold, sets nothing: the false-alarm and
    power bounds come from it."""
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    trials = (("t2", 2, None), ("t1", 1, "synth"), ("t1-warm", 1, "all"), ("t3", 3, "synth"))
    for name, threads, start in trials:
        log = work / name / "gate.log"
        log.parent.mkdir(parents=True)
        if start == "synth":
            shutil.copytree(work / "t2" / "cache" / "synth", work / name / "cache" / "synth")
        elif start == "all":
            shutil.copytree(work / "t2" / "cache", work / name / "cache")
        code = run(bench(*RUN, "--runs", str(work / name / "runs")), ROOT, work / name / "cache",
                   threads, log)
        if code:
            print(log.read_text()[-4000:])
            return code
        if name == "t1-warm":
            code = subprocess.run(bench("check", str(work / "t2" / "runs" / SUITE), "--write-golden",
                                        str(GOLDEN), "--rerun", str(work / "t1" / "runs" / SUITE),
                                        "--rerun", str(work / "t1-warm" / "runs" / SUITE)),
                                  cwd=ROOT, env={**os.environ, **pinned_environment()},
                                  check=False).returncode
            if code:
                return code
    report = power(work / "t3" / "runs", GOLDEN)
    (work / "power.json").write_text(json.dumps(report, indent=1))
    print_power(report)
    return 0


def power(runs: Path, golden: Path, drops: tuple[float, ...] = (0.01, 0.02, 0.03),
          confidence: float = 0.95) -> dict:
    """False-alarm and power bounds of the per-unit gate (SRCC and PLCC), from the noise of a
    clean cold run against the golden file, a run that did not set the tolerances (``write``
    makes one at 3 threads: what another thread count, or cache, than the golden's changes; at
    the golden's 2 threads on x86 a run is bit-identical, and no false alarm is possible).

    Model: a clean run's unit differs from its golden value by D ~ N(0, s^2), s estimated by
    the root mean square of the cell's measured differences; the band T of each unit is the
    golden file's, fixed when it was written (so no band is re-estimated in CI). s from n
    units is uncertain: besides the estimate, the upper confidence bound
    ``s_up = s * sqrt(n / chi2_{1-confidence}(n))`` is used. Units may be correlated (they
    share cached features, and a cold cache moves them together), so no independence is
    assumed: a cell's false alarm is at most ``n * P(|D| > T)`` (union bound) and a run's at
    most the sum over its cells and both metrics; the power to catch a true drop d (every unit
    of a cell shifted by -d) is at least that of one unit, ``P(D - d < -T)``, taken at the
    less favourable of s and s_up. The medians add nothing to either: a median moves by at most
    the largest unit difference, against the same T."""
    from statistics import NormalDist

    import yaml
    from scipy import stats

    from harness.api import load_results

    normal = NormalDist()
    units = {(u.model.name, u.test_dataset, u.unit): u for u in load_results(SUITE, runs).units}
    rows, run_bound = [], 0.0
    for entry in yaml.safe_load(golden.read_text())["entries"]:
        for metric in ("srcc", "plcc"):
            limit = entry["unit_tolerance"][metric]
            diffs = [getattr(units[(entry["model"], entry["dataset"], s["unit"])].metrics, metric)
                     - s[metric] for s in entry["split_files"]]
            n = len(diffs)
            s = (sum(d * d for d in diffs) / n) ** 0.5
            s_up = s * (n / stats.chi2.ppf(1 - confidence, n)) ** 0.5

            def exceed(sd: float, limit: float = limit) -> float:  # P(|D| > T)
                return 2 * normal.cdf(-limit / sd) if sd > 0 else 0.0

            def caught(drop: float, sd: float, limit: float = limit) -> float:  # P(D - d < -T)
                return normal.cdf((drop - limit) / sd) if sd > 0 else float(drop > limit)

            false_alarm = min(1.0, n * exceed(s_up))
            run_bound += false_alarm
            rows.append({"model": entry["model"], "dataset": entry["dataset"], "metric": metric,
                         "units": n, "max_abs_diff": max(map(abs, diffs)), "rms": s,
                         "rms_upper": s_up, "tolerance": limit,
                         "false_alarm_bound": false_alarm,
                         "false_alarm_at_rms": min(1.0, n * exceed(s)),
                         **{f"power_bound_{d:g}": min(caught(d, s), caught(d, s_up))
                            for d in drops}})
    srcc = [r for r in rows if r["metric"] == "srcc"]
    return {"cells": rows, "false_alarm_per_run_bound": min(1.0, run_bound),
            "power_bound_worst_srcc_cell": {f"{d:g}": min(r[f"power_bound_{d:g}"] for r in srcc)
                                            for d in drops},
            "confidence": confidence, "runs": str(runs), "golden": str(golden),
            "model": power.__doc__.split("\n\n")[1].strip()}


def print_power(report: dict) -> None:
    print(f"\ngate bounds from the clean run in {report['runs']} against {report['golden']} "
          f"(per cell and metric: measured |difference| max and rms, its "
          f"{report['confidence']:.0%} upper bound, the tolerance, the false-alarm bound, the "
          f"power bound to catch a true drop d):")
    for r in report["cells"]:
        print(f"  {r['model']:28s} {r['dataset']:16s} {r['metric']} max {r['max_abs_diff']:.4f} "
              f"rms {r['rms']:.4f} (up {r['rms_upper']:.4f}) T {r['tolerance']:.3f} "
              f"FA <= {r['false_alarm_bound']:.1e} "
              + " ".join(f"d={k.rsplit('_', 1)[1]}: >= {v:.3f}" for k, v in r.items()
                         if k.startswith("power_bound_")))
    print(f"false alarms per run <= {report['false_alarm_per_run_bound']:.1e}; power in the "
          f"least sensitive SRCC cell >= {report['power_bound_worst_srcc_cell']}")


def command_power(args: argparse.Namespace) -> int:
    """The bounds from the last ``check`` run (or any run of the gate suite)."""
    report = power(Path(args.runs), GOLDEN)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    print_power(report)
    return 0


def command_mutations(args: argparse.Namespace) -> int:
    """The clean code's first gate run is the first clean rerun (cold: synthetic sets generated,
    every feature computed) and leaves the warm cache that the mutations downstream of features
    start from; the cache-touching mutations and a second cold clean rerun (1 thread) start
    from the synthetic sets alone, with a stale cache of other backbone weights planted first;
    the last clean reruns start warm."""
    start = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="lifeiqa-mutations-"))
    threads = args.clean_threads
    trials: list[tuple[Mutation | None, int, bool]] = [(None, threads[0], False)]
    trials += [(m, 2, not m.cold) for m in MUTATIONS]
    trials += [(None, threads[1], False)] + [(None, n, True) for n in threads[2:]]
    rows, caught, alarms = [], 0, 0
    try:
        for index, (mutation, count, warm) in enumerate(trials):
            code = copy_code(base / f"trial{index}" / "code")
            if mutation:
                apply(mutation, code)
            # the stale cache matters to the cache-key mutation, and clean code must ignore it
            poison = not warm and (mutation is None or mutation.cold) and index > 0
            t0 = time.perf_counter()
            passed, log = gate(code, base / f"trial{index}", threads=count, poison=poison,
                               start=None if index == 0 else base / "trial0" / "cache", warm=warm)
            seconds = time.perf_counter() - t0
            name = mutation.name if mutation else "clean rerun"
            if mutation:
                caught += not passed
                verdict = "caught" if not passed else "MISSED"
            else:
                alarms += not passed
                verdict = "passed" if passed else "FALSE ALARM"
            how = "warm" if warm else ("cold, stale cache planted" if poison else "cold")
            rows.append({"trial": name, "threads": count, "start": how, "verdict": verdict,
                         "seconds": round(seconds, 1), "log": str(log)})
            print(f"{name:55s} threads {count}  {how:26s} {verdict:11s} {seconds:6.1f} s",
                  flush=True)
        clean = len(threads)
        summary = {"mutations_caught": caught, "mutations": len(MUTATIONS),
                   "clean_reruns": clean, "false_alarms": alarms,
                   "minutes": round((time.perf_counter() - start) / 60, 1), "trials": rows}
        print(f"\nmutations caught: {caught}/{len(MUTATIONS)}; false alarms: {alarms}/{clean} "
              f"clean reruns; {summary['minutes']} min")
        if args.report:
            Path(args.report).write_text(json.dumps(summary, indent=1))
        return 0 if caught == len(MUTATIONS) and alarms == 0 else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run the gate suite here and check it (CI)")
    check.add_argument("--work", default=".golden-runs")
    check.add_argument("--threads", type=int, default=2)
    write = sub.add_parser("write", help="rerun the gate suite and rewrite the golden file")
    write.add_argument("--work", default=".golden-runs/write")
    bounds = sub.add_parser("power", help="false-alarm and power bounds of the gate from a clean "
                                          "run against the golden file (default: the last check)")
    bounds.add_argument("--runs", default=".golden-runs/runs",
                        help="the runs folder of a clean gate run (default: what check leaves)")
    bounds.add_argument("--report", help="write the bounds as JSON here")
    mutations = sub.add_parser("mutations", help="every injected regression must fail the gate")
    mutations.add_argument("--clean-threads", type=int, nargs="+", default=[2, 1, 2, 1, 2],
                           help="thread counts of the clean reruns, at least two: the first "
                                "two cold, the rest warm (default: 2 1 2 1 2)")
    mutations.add_argument("--report", help="write the outcome as JSON here")
    mutations.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    if args.command == "mutations" and len(args.clean_threads) < 2:
        parser.error("--clean-threads: give at least two thread counts (two cold clean reruns)")
    return {"check": command_check, "write": command_write, "power": command_power,
            "mutations": command_mutations}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
