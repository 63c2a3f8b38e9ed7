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
    demo.add_argument("--smoke", action="store_true",
                      help="tiny data and a random tiny model: a seconds-long check, "
                           "meaningless numbers")


def _add_score(commands) -> None:
    from .score import add_arguments

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeiqa-bench",
        description="Benchmark harness for Life-IQA and blind image quality assessment.",
        epilog="example: lifeiqa-bench demo",
    )
    parser.add_argument("--protocol", help="shorthand: 'lifeiqa-bench --protocol NAME [run "
                                           "options]' is 'lifeiqa-bench run --protocol NAME ...'")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_run, _add_summarize, _add_score, _add_synth, _add_datasets):
        add(commands)
    return parser


def _run_datasets(args) -> int:
    from .datasets.registry import get_dataset_spec, list_datasets, load_dataset

    if args.datasets_command == "list":
        for name in list_datasets():
            spec = get_dataset_spec(name)
            print(f"{name:10s} {spec.title:12s} {spec.kind:9s} {spec.expected_images:6d} images  "
                  f"{spec.scale.name} {spec.scale.low:g}-{spec.scale.high:g} "
                  f"({'higher' if spec.scale.higher_is_better else 'lower'} is better)")
        return 0
    if args.datasets_command == "check":
        from .datasets.validate import format_report, validate_dataset
        from .synth.generate import read_manifest

        dataset = load_dataset(args.dataset, args.root)
        synthetic = read_manifest(dataset.root) is not None  # real sizes do not apply
        if synthetic:
            print(f"synthetic dataset in the {get_dataset_spec(args.dataset).title} layout")
        report = validate_dataset(dataset, None if synthetic else get_dataset_spec(args.dataset),
                                  decode_images=not args.quick)
        print(format_report(report))
        return 0 if report.ok else 1
    from .datasets.download import download_dataset

    print(f"installed into {download_dataset(args.name, args.root)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--protocol"):  # the shorthand for 'run --protocol ...'
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    if args.command == "run":
        from .commands import run_protocol

        return run_protocol(args)
    if args.command == "summarize":
        from .commands import summarize_suite

        return summarize_suite(args.suite, args.runs, args.reference, args.out)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.runs, args.seed, args.smoke)
    if args.command == "score":
        from .score import run_score

        return run_score(args.inputs, args.checkpoint, args.model_name, args.out, args.batch_size,
                         args.device, args.num_crops, args.untrained, args.resume, args.overwrite)
    if args.command == "synth":
        from .synth.generate import synthesize

        out = synthesize(args.like, args.out, args.size, args.seed, args.rater_noise, args.force)
        print(f"synthetic {args.like}-like dataset ({args.size}, seed {args.seed}) in {out}")
        return 0
    if args.command == "datasets":
        return _run_datasets(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
