"""``lifeiqa-bench``: the harness's command line."""

from __future__ import annotations

import argparse
import sys


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo", help="the benchmark end to end on synthetic data, offline (under 10 min on CPU)",
        description="Generate synthetic KADID-, TID2013- and KonIQ-like datasets, run the splits "
                    "protocol with ablations and cross-dataset transfer on the offline "
                    "EfficientNet-Lite0 backbone, and print the leaderboard.",
        epilog="example: lifeiqa-bench demo --runs runs",
    )
    demo.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    demo.add_argument("--seed", type=int, default=0, help="base training seed")
    demo.add_argument("--leaderboard-out", help="leaderboard folder (default: RUNS/demo/leaderboard)")
    demo.add_argument("--smoke", action="store_true",
                      help="tiny data and a random tiny model: a seconds-long check, "
                           "meaningless numbers")


def _add_score(commands) -> None:
    from harness.engine.score import add_arguments

    score = commands.add_parser(
        "score", help="score image files and folders into a CSV (path,score)",
        description="Score images with a Life-IQA checkpoint. Scores are in [0, 1], higher is "
                    "better (mapped through the checkpoint's label scale), as pyiqa reports them.",
        epilog="example: lifeiqa-bench score photos/ 'more/*.jpg' --checkpoint model.safetensors "
               "--out scores.csv",
    )
    add_arguments(score)


def _add_synth(commands) -> None:
    synth = commands.add_parser(
        "synth", help="write a synthetic dataset in a real dataset's release layout",
        description="Generate a synthetic IQA dataset from images that ship with installed "
                    "packages, in the exact file layout of KADID-10k, TID2013 or KonIQ-10k, "
                    "labelled by a consensus of full-reference metrics. Deterministic per seed.",
        epilog="example: lifeiqa-bench synth --like kadid10k --out data/synth-kadid --size small",
    )
    synth.add_argument("--like", required=True, choices=["kadid10k", "tid2013", "koniq10k"])
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--size", default="default", choices=["tiny", "small", "default"])
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--rater-noise", type=float, default=0.0,
                       help="std of Gaussian label noise, as a fraction of the score range")
    synth.add_argument("--force", action="store_true", help="regenerate even if up to date")


def _add_datasets(commands) -> None:
    datasets = commands.add_parser("datasets", help="list, check and download datasets")
    sub = datasets.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="the benchmark datasets the harness reads")
    check = sub.add_parser(
        "check", help="read a dataset folder and report counts, groups, types and problems",
        epilog="example: lifeiqa-bench datasets check ~/data/kadid10k --dataset kadid10k",
    )
    check.add_argument("root", help="the dataset folder (release or pyiqa layout)")
    check.add_argument("--dataset", required=True, help="dataset name (see 'datasets list')")
    check.add_argument("--quick", action="store_true",
                       help="verify image structure instead of decoding every pixel")
    download = sub.add_parser(
        "download", help="fetch a dataset archive that pyiqa publishes (needs the network)",
        epilog="example: lifeiqa-bench datasets download kadid10k --root ~/data",
    )
    download.add_argument("name")
    download.add_argument("--root", required=True)


def _add_run_options(parser: argparse.ArgumentParser, protocol_required: bool) -> None:
    parser.add_argument("--protocol", required=protocol_required,
                        help="protocol name (protocols/<name>.yaml) or a YAML path")
    parser.add_argument("--model", help="model preset (default: the recipe's)")
    parser.add_argument("--recipe", help="training recipe (default: cpu_demo on CPU or for "
                                         "synthetic data, else the authors' per-dataset recipe; "
                                         "cpu_frozen trains the full-width decoder)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a recipe field, e.g. --set epochs=5 (repeatable)")
    parser.add_argument("--selection", default="last", choices=["last", "val", "oracle"],
                        help="epoch selection: last (default), val (content-disjoint "
                             "validation part), oracle (best epoch on test; needs --allow-oracle)")
    parser.add_argument("--allow-oracle", action="store_true",
                        help="permit --selection oracle (results are labelled test-oracle)")
    parser.add_argument("--data-root", help="folder holding one sub-folder per real dataset")
    parser.add_argument("--dataset-root", action="append", default=[], metavar="NAME=PATH",
                        help="location of one dataset (repeatable)")
    parser.add_argument("--datasets", help="comma-separated subset of the protocol's datasets")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the synthetic datasets (the default when no data is given)")
    parser.add_argument("--synth-size", default="small", choices=["tiny", "small", "default"])
    parser.add_argument("--suite", help="results go to RUNS/SUITE (default: the protocol name)")
    parser.add_argument("--runs", default="runs", help="results store folder (default: runs)")
    parser.add_argument("--splits", type=int, help="number of splits (default: the protocol's)")
    parser.add_argument("--seeds", type=int, help="number of seeds for cross-dataset")
    parser.add_argument("--seed", type=int, default=0, help="base training seed")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--dry-run", action="store_true", help="print the job plan and stop")
    parser.add_argument("--force", action="store_true", help="rerun units that have results")
    parser.add_argument("--exclude-bad", action="store_true",
                        help="exclude images with problems (recorded in each result) instead "
                             "of refusing to start")
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write checkpoint.safetensors in each unit folder")
    scale = parser.add_argument_group(
        "scale-out", "where jobs run (harness/executors.py); for one job on several GPUs use "
                     "torchrun --nproc_per_node N -m harness.cli run ...")
    scale.add_argument("--executor", default="local", choices=["local", "pool", "slurm"],
                       help="local: here, one job after another (default); pool: worker "
                            "processes (--gpus or --workers); slurm: a submitit job array")
    scale.add_argument("--gpus", help="pool: one worker per listed GPU, e.g. 0,1,2,3")
    scale.add_argument("--workers", type=int, help="pool: number of CPU worker processes")
    scale.add_argument("--slurm-partition", help="slurm: partition")
    scale.add_argument("--slurm-time", type=int, metavar="MINUTES",
                       help="slurm: time limit per job (default 240)")
    scale.add_argument("--slurm-gpus-per-job", type=int,
                       help="slurm: GPUs per job (default 1; N > 1 trains data-parallel)")
    scale.add_argument("--slurm-mem", type=float, metavar="GB", help="slurm: memory per job")
    scale.add_argument("--slurm-account", help="slurm: account to charge")
    scale.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help="slurm: jobs of the array running at once (default 256)")
    # submitit's in-process ("debug") and subprocess ("local") executors, for tests
    scale.add_argument("--slurm-cluster", default="slurm", choices=["slurm", "local", "debug"],
                       help=argparse.SUPPRESS)


def _add_run(commands) -> None:
    run = commands.add_parser(
        "run", help="run a protocol (splits, cross-dataset, per-distortion, ablation, ...)",
        description="Expand a protocol into jobs, run the missing ones, store one folder per "
                    "unit, then print the summary table.",
        epilog="examples:\n  lifeiqa-bench run --protocol splits            # synthetic default"
               "\n  lifeiqa-bench run --protocol cross-dataset --data-root ~/iqa --device cuda"
               "\n  lifeiqa-bench run --protocol splits --set epochs=3 --splits 2 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_options(run, protocol_required=True)


def _add_summarize(commands) -> None:
    summarize = commands.add_parser(
        "summarize", help="aggregate a suite's results into tables",
        epilog="example: lifeiqa-bench summarize splits --reference lifeiqa_effnet_lite0",
    )
    summarize.add_argument("suite")
    summarize.add_argument("--runs", default="runs")
    summarize.add_argument("--reference", help="model the p-values compare against")
    summarize.add_argument("--out", help="also write the tables to this markdown file")


def _add_leaderboard(commands) -> None:
    board = commands.add_parser(
        "leaderboard", help="markdown leaderboard with figures for a suite (models x datasets)",
        description="Aggregate a suite (a folder of the results store; nested suites included) "
                    "into markdown tables per protocol: medians with 95%% intervals, "
                    "significance against Life-IQA, published numbers side by side, figures.",
        epilog="example: lifeiqa-bench leaderboard demo --out leaderboards/synthetic",
    )
    board.add_argument("suite", help="suite folder under --runs (e.g. demo or demo/comparison)")
    board.add_argument("--runs", default="runs")
    board.add_argument("--out", help="output folder (default: RUNS/SUITE/leaderboard)")
    board.add_argument("--reference", help="model the markers compare against (default: the "
                                           "suite's Life-IQA preset)")
    board.add_argument("--published", default=None,
                       help="published scores YAML shown beside the reproductions (default: "
                            "leaderboards/published.yaml; 'none' to leave them out)")
    board.add_argument("--title", help="page title")


def _add_baselines(commands) -> None:
    commands.add_parser("baselines", help="list the registered baselines and what each needs")


def _add_speed(commands) -> None:
    speed = commands.add_parser(
        "speed", help="measure the harness's speed: decoder overhead, data path, feature cache, "
                      "inference against pyiqa, training throughput and MFU",
        description="Five benchmarks, each a ratio or rate measured side by side in one run on "
                    "generated images, with random or offline weights (no network). Prints the "
                    "tables; --out writes them as JSON.",
        epilog="example: lifeiqa-bench speed --device cuda --out speed.json --markdown speed.md",
    )
    speed.add_argument("--sections", default="1,2,3,4,5",
                       help="comma-separated sections to run (default: all five)")
    speed.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    speed.add_argument("--tiny", action="store_true",
                       help="tiny sizes and iterations: a quick check, figures not meaningful")
    speed.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"],
                       help="autocast precision on CUDA (default bf16; CPU runs fp32)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the training model")
    speed.add_argument("--workers", type=int,
                       help="crop-cutting threads and authors'-style loader processes (default: "
                            "4 on a GPU, 2 on CPU)")
    speed.add_argument("--out", help="write the report as JSON here")
    speed.add_argument("--markdown", help="write the tables as markdown here")


def _add_published(commands) -> None:
    published = commands.add_parser(
        "published", help="published scores with their sources (leaderboards/published.yaml)",
        description="Print reference scores: each row's model, dataset, protocol, metrics, epoch "
                    "selection, provenance (second-hand, checked or measured) and source.",
        epilog="example: lifeiqa-bench published --dataset csiq --format csv",
    )
    published.add_argument("--file", help="reference YAML (default: leaderboards/published.yaml)")
    published.add_argument("--dataset", help="only rows on this dataset (either side of a pair)")
    published.add_argument("--model", help="only rows whose model name contains this, or that "
                                           "list it as a harness model")
    published.add_argument("--format", default="markdown", choices=["markdown", "csv"])


def _add_check(commands) -> None:
    check = commands.add_parser(
        "check", help="check a suite's medians against reference scores, or write a golden file",
        description="Match each reference row to the suite's cell (model, dataset or pair, "
                    "protocol) and fail (exit 1) when a median falls short of the reference by "
                    "more than the tolerance; better is fine. Rows without a reproduction are "
                    "MISSING. --write-golden writes the suite's medians as a reference file with "
                    "per-row tolerances from the measured spread over units.",
        epilog="examples:\n  lifeiqa-bench check runs/splits --against leaderboards/published.yaml"
               "\n  lifeiqa-bench check runs/ci --write-golden leaderboards/golden-ci.yaml"
               "\n  lifeiqa-bench check runs/ci --against leaderboards/golden-ci.yaml --require-all "
               "--report check.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("results", help="a suite folder of the results store, e.g. runs/splits")
    mode = check.add_mutually_exclusive_group(required=True)
    mode.add_argument("--against", metavar="REF.yaml", help="reference file to check against")
    mode.add_argument("--write-golden", metavar="OUT.yaml",
                      help="write the suite's medians as a reference file (provenance: measured)")
    check.add_argument("--metric", default="srcc", choices=["srcc", "plcc", "both"])
    check.add_argument("--tolerance", type=float, default=0.01,
                       help="allowed shortfall where a row gives none (default 0.01)")
    check.add_argument("--report", metavar="check.json", help="also write the comparison as JSON")
    check.add_argument("--require-all", action="store_true",
                       help="reference rows without a reproduction fail the check")
    check.add_argument("--spread-k", type=float, default=2.0,
                       help="golden: tolerance = max(min, k * sqrt(pi/2) * std / sqrt(units)) "
                            "(default k = 2)")
    check.add_argument("--min-tolerance", type=float, default=0.005,
                       help="golden: the smallest tolerance written (default 0.005)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeiqa-bench",
        description="Benchmark harness for Life-IQA and blind image quality assessment.",
        epilog="example: lifeiqa-bench demo",
    )
    parser.add_argument("--protocol", help="shorthand: 'lifeiqa-bench --protocol NAME [run "
                                           "options]' is 'lifeiqa-bench run --protocol NAME ...'")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_run, _add_summarize, _add_leaderboard, _add_baselines, _add_score,
                _add_synth, _add_datasets, _add_speed, _add_published, _add_check):
        add(commands)
    return parser


def _run_datasets(args) -> int:
    from harness.data.registry import get_dataset_spec, list_datasets, load_dataset

    if args.datasets_command == "list":
        for name in list_datasets():
            spec = get_dataset_spec(name)
            print(f"{name:10s} {spec.title:12s} {spec.kind:9s} {spec.expected_images:6d} images  "
                  f"{spec.scale.name} {spec.scale.low:g}-{spec.scale.high:g} "
                  f"({'higher' if spec.scale.higher_is_better else 'lower'} is better)")
        return 0
    if args.datasets_command == "check":
        from harness.data.synth.generate import read_manifest
        from harness.data.validate import format_report, validate_dataset

        dataset = load_dataset(args.dataset, args.root)
        synthetic = read_manifest(dataset.root) is not None  # real sizes do not apply
        if synthetic:
            print(f"synthetic dataset in the {get_dataset_spec(args.dataset).title} layout")
        report = validate_dataset(dataset, None if synthetic else get_dataset_spec(args.dataset),
                                  decode_images=not args.quick)
        print(format_report(report))
        return 0 if report.ok else 1
    from harness.data.download import download_dataset

    print(f"installed into {download_dataset(args.name, args.root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--protocol"):  # the shorthand for 'run --protocol ...'
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    if args.command == "run":
        from harness.cli.commands import run_protocol

        return run_protocol(args)
    if args.command == "summarize":
        from harness.cli.commands import summarize_suite

        return summarize_suite(args.suite, args.runs, args.reference, args.out)
    if args.command == "leaderboard":
        from harness.cli.commands import leaderboard_command

        return leaderboard_command(args)
    if args.command == "baselines":
        from harness.cli.commands import list_baselines_command

        return list_baselines_command()
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from harness.demo import run_demo

        return run_demo(args.runs, args.seed, args.smoke, args.leaderboard_out)
    if args.command == "score":
        from harness.engine.score import run_score

        return run_score(args.inputs, args.checkpoint, args.model_name, args.out, args.batch_size,
                         args.device, args.num_crops, args.untrained, args.resume, args.overwrite)
    if args.command == "synth":
        from harness.data.synth.generate import synthesize

        out = synthesize(args.like, args.out, args.size, args.seed, args.rater_noise, args.force)
        print(f"synthetic {args.like}-like dataset ({args.size}, seed {args.seed}) in {out}")
        return 0
    if args.command == "datasets":
        return _run_datasets(args)
    if args.command == "speed":
        from harness.speed import main as run_speed

        return run_speed(args)
    if args.command == "published":
        from harness.reporting.published import published_command

        return published_command(args.file, args.dataset, args.model, args.format)
    if args.command == "check":
        from harness.reporting.check import run_check, write_golden

        if args.write_golden:
            return write_golden(args.results, args.write_golden, args.spread_k, args.min_tolerance)
        return run_check(args.results, args.against, args.metric, args.tolerance, args.report,
                         args.require_all)
    parser.error(f"unknown command {args.command!r}")
    return 2

