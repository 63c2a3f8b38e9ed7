"""``lifeiqa-bench run``: a protocol's jobs, the missing ones run, then the summary table."""

from __future__ import annotations

import argparse
import ast
import json
import sys

from harness.errors import InvalidOptionError
from harness.plan.models import split_rows
from harness.plan.options import (
    SELECTIONS,
    SLURM_ARRAY_PARALLELISM,
    SLURM_POLL,
    SLURM_RETRIES,
    SLURM_SIGNAL_LEAD,
    SLURM_TIME_MIN,
    SYNTH_SIZES,
    ExecutorOptions,
    RunOptions,
)
from harness.plan.recipes import IMAGE_POLICIES, TEST_CROP_LAYOUTS

NAME = "run"
HELP = "run a protocol (splits, cross-dataset, per-distortion, ablation, ...)"
DESCRIPTION = ("Expand a protocol into jobs, run the missing ones, store one folder per unit, "
               "then print the summary table.")
EPILOG = ("examples:\n  lifeiqa-bench run --protocol splits            # synthetic default"
          "\n  lifeiqa-bench run --protocol cross-dataset --data-root ~/iqa --device cuda"
          "\n  lifeiqa-bench run --protocol splits --set epochs=3 --splits 2 --dry-run"
          "\n  lifeiqa-bench run --protocol splits --define-dataset "
          "mine=scores.csv,range=1:5,better=higher,group=ref")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True,
                        help="protocol name (protocols/<name>.yaml) or a YAML path")
    parser.add_argument("--model", help="model preset (default: the recipe's)")
    parser.add_argument("--recipe", help="training recipe (default: cpu_demo on CPU or for "
                                         "synthetic data, else the authors' per-dataset recipe; "
                                         "cpu_frozen trains the full-width decoder)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a recipe field, e.g. --set epochs=5 (repeatable)")
    parser.add_argument("--selection", default="last", choices=list(SELECTIONS),
                        help="epoch selection: last (default), val (content-disjoint "
                             "validation part), oracle (best epoch on test; needs "
                             "--allow-oracle), authors (the authors' reporting rule: best "
                             "test-SRCC epoch, PLCC a running maximum; needs --allow-oracle)")
    parser.add_argument("--allow-oracle", action="store_true",
                        help="permit --selection oracle or authors (results are labelled "
                             "test-oracle)")
    parser.add_argument("--test-crops", dest="test_crops", choices=list(TEST_CROP_LAYOUTS),
                        help="test crops: grid (the recipes' default: a uniform grid) or random "
                             "(the authors': random positions drawn at every evaluation, seeded "
                             "per unit; fine-tuning recipes only)")
    parser.add_argument("--image-policy", default="recipe", choices=list(IMAGE_POLICIES),
                        help="recipe (default: the recipe's resize policy, EXIF orientation "
                             "applied) or authors (theirs: KonIQ-10k/SPAQ squeezed to 384x512, "
                             "no EXIF orientation)")
    parser.add_argument("--data-root", help="folder holding one sub-folder per real dataset")
    parser.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH",
                        help="location of one dataset (repeatable)")
    add_define_dataset_argument(parser)
    parser.add_argument("--datasets", help="comma-separated subset of the protocol's datasets")
    parser.add_argument("--models", help="comma-separated subset of the protocol's rows (its "
                                         "variants and baselines, e.g. full,probe_stage3); "
                                         "rows of --add-models are kept")
    parser.add_argument("--add-models", metavar="ROWS",
                        help="comma-separated rows to add to the protocol: registry models "
                             "(lifeiqa-bench list models), pyiqa:<metric>, pyiqa-arch:<Class> "
                             "or a plug-in's, with model arguments as NAME(key=value,...), e.g. "
                             "\"pyiqa:musiq,my_net(width=64)\"")
    add_include_argument(parser)
    parser.add_argument("--synthetic", action="store_true",
                        help="use the synthetic datasets (the default when no data is given)")
    parser.add_argument("--synth-size", default="small", choices=list(SYNTH_SIZES))
    parser.add_argument("--suite", help="results go to RUNS/SUITE (default: the protocol name)")
    parser.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    parser.add_argument("--splits", type=int, help="number of splits (default: the protocol's)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="a quick look: at most N images of each part (train, validation, "
                             "test) per unit; recorded, marked in every table, refused by check")
    parser.add_argument("--seeds", type=int, help="number of seeds for cross-dataset")
    parser.add_argument("--seed", type=int, default=0, help="base training seed")
    parser.add_argument("--noise-units", type=int, metavar="N",
                        help="rerun the first N units of each seeded cell under another seed and "
                             "draw of training crops, to measure each cell's rerun noise for the "
                             "leaderboard's fragile markers (default: the protocol's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--dry-run", action="store_true", help="print the job plan and stop")
    parser.add_argument("--json", action="store_true",
                        help="print what the run did as one JSON object (counts, failed units, "
                             "every unit's key and scores), for programs; progress and failures "
                             "still go to stderr")
    parser.add_argument("--force", action="store_true", help="rerun units that have results")
    parser.add_argument("--exclude-bad", action="store_true",
                        help="exclude images with problems (recorded in each result) instead "
                             "of refusing to start")
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write checkpoint.safetensors in each unit folder")
    scale = parser.add_argument_group(
        "scale-out", "where jobs run (harness/engine/executors.py); for one job on several GPUs "
                     "use torchrun --nproc_per_node N -m harness.cli run ...")
    scale.add_argument("--executor", default="local", choices=["local", "pool", "slurm"],
                       help="local: here, one job after another (default); pool: worker "
                            "processes (--gpus or --workers); slurm: a submitit job array")
    scale.add_argument("--gpus", help="pool: one worker per listed GPU, e.g. 0,1,2,3")
    scale.add_argument("--workers", type=int, help="pool: number of CPU worker processes")
    scale.add_argument("--slurm-partition", help="slurm: partition")
    scale.add_argument("--slurm-time", type=int, metavar="MINUTES",
                       help=f"slurm: time limit per job (default {SLURM_TIME_MIN}); a unit that reaches it "
                            "is requeued and resumes from its last finished epoch")
    scale.add_argument("--slurm-gpus-per-job", type=int, metavar="N",
                       help="slurm: GPUs per job (default 1 with --device cuda, else 0; N > 1 "
                            "trains data-parallel)")
    scale.add_argument("--slurm-cpus-per-task", type=int, metavar="N",
                       help="slurm: CPUs per task; the unit runs that many torch threads")
    scale.add_argument("--slurm-mem", type=float, metavar="GB", help="slurm: memory per job")
    scale.add_argument("--slurm-account", help="slurm: account to charge")
    scale.add_argument("--slurm-qos", help="slurm: quality of service")
    scale.add_argument("--slurm-constraint", help="slurm: node features required, e.g. a100")
    scale.add_argument("--slurm-exclude", metavar="NODES", help="slurm: nodes not to run on")
    scale.add_argument("--slurm-reservation", help="slurm: reservation to run in")
    scale.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                       help="slurm: a shell line each task runs first, e.g. 'module load "
                            "cuda' (repeatable, in order)")
    scale.add_argument("--slurm-extra", action="append", default=[], metavar="KEY=VALUE",
                       help="slurm: any other sbatch option by its long name, e.g. "
                            "mail-type=END (repeatable)")
    scale.add_argument("--slurm-retries", type=int, metavar="N",
                       help=f"slurm: requeues of a task after its time limit (default {SLURM_RETRIES})")
    scale.add_argument("--slurm-signal-lead", type=int, metavar="SECONDS",
                       help="slurm: how long before the time limit a task is told to stop and "
                            f"requeue (default {SLURM_SIGNAL_LEAD}, at most a quarter of --slurm-time)")
    scale.add_argument("--slurm-poll", type=float, metavar="SECONDS",
                       help=f"slurm: seconds between two looks at the queue (default {SLURM_POLL:g}); a "
                            "failed or cancelled task is reported at the next look")
    scale.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help=f"slurm: jobs of the array running at once (default {SLURM_ARRAY_PARALLELISM})")
    # submitit's in-process ("debug") and subprocess ("local") executors, for tests
    scale.add_argument("--slurm-cluster", default="slurm", choices=["slurm", "local", "debug"],
                       help=argparse.SUPPRESS)


def add_include_argument(parser: argparse.ArgumentParser) -> None:
    """``--include MODULE``: shared by the commands that resolve model names."""
    parser.add_argument("--include", action="append", default=[], metavar="MODULE",
                        help="import a plug-in module (a module name or a .py file) that is not "
                             "installed, so its models can be named (repeatable; worker "
                             "processes import it too)")


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``["epochs=5", "lr=1e-4", "hflip=False"]`` -> typed values (Python literals, else text;
    the recipe then checks each field's type)."""
    out: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidOptionError(f"--set {pair!r}: expected FIELD=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _pairs(flag: str, items: list[str], expected: str = "NAME=PATH") -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise InvalidOptionError(f"{flag} {item!r}: expected {expected}")
        name, path = item.split("=", 1)
        if name in out:  # the later one would silently replace the first
            raise InvalidOptionError(f"{flag} {name}: given twice ({name}={out[name]} and {item})")
        out[name] = path
    return out


DEFINE_DATASET = ("NAME=FILE.yaml (a declaration) or NAME=CSV,range=LOW:HIGH,better=higher|lower"
                  "[,images=DIR][,path=COLUMN][,score=COLUMN][,group=COLUMN]"
                  "[,distortion=COLUMN][,score_name=MOS]")


def add_define_dataset_argument(parser: argparse.ArgumentParser, joins: bool = True) -> None:
    """``--define-dataset``, as ``run`` and ``datasets`` take it."""
    parser.add_argument(
        "--define-dataset", action="append", default=[], metavar="NAME=DECLARATION",
        help=f"a dataset of your own, a CSV of scores and its images: {DEFINE_DATASET}; the "
             f"columns default to path, mos, ref, distortion; images to the CSV's folder "
             f"(repeatable" + ("; it joins a splits protocol's datasets)" if joins else ")"))


def define_datasets_from_args(items: list[str]) -> dict[str, str]:
    """``--define-dataset`` values: name -> its declaration (read by RunOptions)."""
    return _pairs("--define-dataset", items, DEFINE_DATASET)


def options_from_args(args: argparse.Namespace) -> RunOptions:
    executor = ExecutorOptions(
        executor=args.executor,
        gpus=tuple(args.gpus.split(",")) if args.gpus else (), workers=args.workers,
        slurm_partition=args.slurm_partition, slurm_time=args.slurm_time,
        slurm_gpus_per_job=args.slurm_gpus_per_job, slurm_cpus_per_task=args.slurm_cpus_per_task,
        slurm_mem=args.slurm_mem, slurm_account=args.slurm_account, slurm_qos=args.slurm_qos,
        slurm_constraint=args.slurm_constraint, slurm_exclude=args.slurm_exclude,
        slurm_reservation=args.slurm_reservation, slurm_setup=tuple(args.slurm_setup),
        slurm_extra=_pairs("--slurm-extra", args.slurm_extra, "KEY=VALUE"),
        slurm_retries=args.slurm_retries, slurm_signal_lead=args.slurm_signal_lead,
        slurm_poll=args.slurm_poll, slurm_array_parallelism=args.slurm_array_parallelism,
        slurm_cluster=args.slurm_cluster)
    return RunOptions(
        protocol=args.protocol, model=args.model, recipe=args.recipe,
        overrides=parse_overrides(args.set), selection=args.selection,
        allow_oracle=args.allow_oracle, test_crops=args.test_crops,
        image_policy=args.image_policy, data_root=args.data_root,
        dataset_roots=_pairs("--dataset-root", args.dataset_root),
        define_datasets=define_datasets_from_args(args.define_dataset),
        datasets=tuple(args.datasets.split(",")) if args.datasets else (),
        models=tuple(split_rows(args.models)) if args.models else (),
        add_models=tuple(split_rows(args.add_models)) if args.add_models else (),
        limit=args.limit,
        include=tuple(args.include),
        synthetic=args.synthetic, synth_size=args.synth_size, suite=args.suite, runs=args.runs,
        splits=args.splits, seeds=args.seeds, noise_units=args.noise_units, seed=args.seed,
        device=args.device,
        force=args.force, exclude_bad=args.exclude_bad, save_checkpoints=args.save_checkpoints,
        executor=executor)


def print_plan(options: RunOptions) -> None:
    from harness import api
    from harness.results.store import ResultsStore

    plan = api.plan_options(options)
    store = ResultsStore(options.runs)
    print(f"protocol {plan.protocol.name} v{plan.protocol.version}: {len(plan.jobs)} job(s) -> "
          f"{store.root / plan.suite}  (selection: {options.selection})")
    if options.executor.executor == "slurm":
        from harness.engine.slurm import describe_submission

        print(describe_submission(options, plan.suite))
    for job in plan.jobs:
        done = store.load(job.key) is not None
        print(f"  {'done ' if done else 'to do'}  {job.model.name:32s} {job.dataset_label:36s} "
              f"{job.unit:16s} recipe={job.recipe.name} mode={job.recipe.mode} "
              f"epochs={job.recipe.epochs}")


def run_and_report(options: RunOptions, as_json: bool = False) -> int:
    """Run, then print the counts and the summary table (``as_json``: the run's outcome as
    one JSON object) and each failure (the run's exit status: 1 if any unit failed)."""
    from harness import api
    from harness.engine import distributed

    results = api.evaluate_options(options, progress=True)
    if not distributed.is_main():  # under torchrun, rank 0 reports for the launch
        return 0
    if as_json:
        print(json.dumps(results.outcome(), indent=1))
    else:
        print(f"\n{results.done} run, {results.skipped} already done, {len(results.failed)} "
              f"failed")
        if results.units:
            print(results.markdown())
    for failure in results.failed:
        job = failure.job
        print(f"FAILED {job.model.name} {job.dataset_label} {job.unit}: {failure.message}",
              file=sys.stderr)
    return 1 if results.failed else 0


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.dry_run:
        print_plan(options)
        return 0
    return run_and_report(options, args.json)
