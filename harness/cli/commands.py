"""The ``run`` and ``summarize`` commands: option parsing into a job plan, and table output."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

from harness.data.sources import SYNTH_PREFIX, DataSources
from harness.device import resolve_device
from harness.engine.executors import execute
from harness.plan.jobs import Job, plan_jobs
from harness.plan.protocols import Protocol, load_protocol
from harness.plan.recipes import RECIPES, Recipe, get_recipe
from harness.results.aggregate import aggregate, markdown_tables
from harness.results.store import ResultsStore


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=5", "lr=1e-4", "hflip=False"]`` -> typed values (Python literals, else text)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _recipes(protocol: Protocol, args, synthetic: bool) -> dict[str, Recipe]:
    overrides = parse_overrides(args.set)
    device = resolve_device(args.device)
    recipes = {}
    for train, _ in protocol.targets(synthetic):
        if args.recipe:
            name = args.recipe
        elif synthetic or device.type == "cpu":
            name = "cpu_demo"
        else:
            name = f"authors_{train.removeprefix(SYNTH_PREFIX)}"
            if name not in RECIPES:
                raise SystemExit(f"no authors' recipe for {train}; pass --recipe (one of "
                                 f"{sorted(RECIPES)})")
        try:
            recipes[train] = get_recipe(name).override(**overrides)
        except (KeyError, ValueError) as err:
            raise SystemExit(f"recipe: {err}") from err
    return recipes


def _restrict(protocol: Protocol, synthetic: bool, sources: DataSources,
              chosen: str | None) -> Protocol:
    """Keep the protocol's targets whose datasets were chosen (``--datasets``) or, for real
    data, are present; say which were left out and why (never silently)."""
    wanted = set(chosen.split(",")) if chosen else None
    keep, dropped = [], []
    for train, test in protocol.targets(synthetic):
        names = {train, test}
        if wanted is not None and not names <= wanted:
            continue
        if not synthetic and wanted is None:
            missing = [n for n in names if not sources.has(n)]
            if missing:
                dropped.append(f"{train}->{test} (no data for {', '.join(sorted(missing))})")
                continue
        keep.append((train, test))
    if dropped:
        print(f"note: skipping {len(dropped)} target(s) without data: {'; '.join(dropped)}")
    field = ("synthetic_" if synthetic else "") + ("datasets" if protocol.kind == "splits" else "pairs")
    value = tuple(t for t, _ in keep) if protocol.kind == "splits" else tuple(keep)
    return dataclasses.replace(protocol, **{field: value})


def plan_from_args(args) -> tuple[list[Job], DataSources, Protocol]:
    protocol = load_protocol(args.protocol)
    synthetic = args.synthetic or not (args.data_root or args.dataset_root)
    if args.selection == "oracle" and not args.allow_oracle:
        raise SystemExit("--selection oracle reports the best epoch measured on the test set; "
                         "pass --allow-oracle to permit it (every table then says test-oracle)")
    roots = []
    for item in args.dataset_root:
        if "=" not in item:
            raise SystemExit(f"--dataset-root {item!r}: expected NAME=PATH")
        roots.append(tuple(item.split("=", 1)))
    sources = DataSources(Path(args.data_root) if args.data_root else None, tuple(roots),
                          args.synth_size)
    protocol = _restrict(protocol, synthetic, sources, args.datasets)
    recipes = _recipes(protocol, args, synthetic)
    presets = {args.model or recipe.model for recipe in recipes.values()}
    if len(presets) != 1:
        raise SystemExit(f"the recipes use different models {sorted(presets)}; pass --model")
    jobs = plan_jobs(protocol, args.suite or protocol.name, presets.pop(), recipes, synthetic,
                     args.selection, args.seed, args.splits, args.seeds)
    if not jobs:
        raise SystemExit(f"protocol {protocol.name} has no {'synthetic ' if synthetic else ''}"
                         f"datasets")
    return jobs, sources, protocol


def run_protocol(args) -> int:
    jobs, sources, protocol = plan_from_args(args)
    store = ResultsStore(args.runs)
    suite = jobs[0].suite
    print(f"protocol {protocol.name} v{protocol.version}: {len(jobs)} job(s) -> "
          f"{store.root / suite}  (selection: {args.selection})")
    if args.dry_run:
        for job in jobs:
            done = store.load(job.key) is not None
            print(f"  {'done ' if done else 'to do'}  {job.model_name:32s} {job.dataset_label:36s} "
                  f"{job.unit:16s} recipe={job.recipe.name} mode={job.recipe.mode} "
                  f"epochs={job.recipe.epochs}")
        return 0
    summary = execute(args.executor, jobs, sources, args)
    if summary is None:  # a torchrun rank other than 0: rank 0 reports for the launch
        return 0
    print(f"\n{len(summary.done)} run, {len(summary.skipped)} already done, "
          f"{len(summary.failed)} failed")
    summarize_suite(suite, args.runs, jobs[0].model_name if jobs[0].variant == "full" else None)
    for job, message in summary.failed:
        print(f"FAILED {job.model_name} {job.dataset_label} {job.unit}: {message}", file=sys.stderr)
    return 1 if summary.failed else 0


def summarize_suite(suite: str, runs: str = "runs", reference: str | None = None,
                    out: str | None = None) -> int:
    results = ResultsStore(runs).results(suite)
    if not results:
        print(f"no results under {Path(runs) / suite}", file=sys.stderr)
        return 1
    cells = aggregate(results)
    if reference is None:
        fulls = sorted({c.model for c in cells if "+" not in c.model})
        reference = fulls[0] if fulls else None
    text = markdown_tables(cells, reference)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return 0


def leaderboard_command(args) -> int:
    from harness.reporting.leaderboard import write_leaderboard

    if args.published == "none":
        published = []
    else:
        from harness.reporting.leaderboard import load_published_values

        published = load_published_values(args.published)
    out = args.out or str(Path(args.runs) / args.suite / "leaderboard")
    path = write_leaderboard(args.suite, args.runs, out, published, args.reference, args.title)
    print(path.read_text())
    print(f"written to {path} (figures in {path.parent / 'figures'})")
    return 0


def list_baselines_command() -> int:
    from tabulate import tabulate

    from harness.plan.baselines import get_baseline, list_baselines

    rows = []
    for name in list_baselines():
        b = get_baseline(name)
        trained_on = "" if b.trained_on is None else (", ".join(b.trained_on) or "no opinion scores")
        rows.append([name, b.family, b.needs, trained_on, b.description])
    print(tabulate(rows, headers=["name", "family", "needs", "weights fitted on", "what"],
                   tablefmt="simple", maxcolwidths=[None, None, 24, 14, 60]))
    print("\nAlso: pyiqa:<metric> for any pyiqa NR metric whose weights are cached locally "
          "(evaluated zero-shot; the data its weights saw is read from pyiqa's config).")
    return 0
