"""``lifeiqa-bench datasets``: list, check and download datasets."""

from __future__ import annotations

import argparse

NAME = "datasets"
HELP = "list, check and download datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
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


def run(args: argparse.Namespace) -> int:
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

        spec = get_dataset_spec(args.dataset)
        dataset = load_dataset(args.dataset, args.root)
        synthetic = read_manifest(dataset.root) is not None  # real sizes do not apply
        if synthetic:
            print(f"synthetic dataset in the {spec.title} layout")
        report = validate_dataset(dataset, None if synthetic else spec,
                                  decode_images=not args.quick)
        print(format_report(report))
        return 0 if report.ok else 1
    from harness.data.download import download_dataset

    print(f"installed into {download_dataset(args.name, args.root)}")
    return 0
