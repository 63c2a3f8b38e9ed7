"""``lifeiqa-bench datasets``: list, check and download datasets."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.run import add_define_dataset_argument, define_datasets_from_args
from harness.errors import InvalidOptionError

if TYPE_CHECKING:
    from harness.data.declared import DatasetDeclaration

NAME = "datasets"
HELP = "list, check and download datasets"
CHECK_EPILOG = """examples:
  lifeiqa-bench datasets check ~/data/kadid10k --dataset kadid10k
  lifeiqa-bench datasets check my_set.yaml           # a declaration file (named by its stem)
  lifeiqa-bench datasets check --protocol my_protocol.yaml   # the datasets it declares
  lifeiqa-bench datasets check --define-dataset mine=scores.csv,range=1:5,better=higher"""


def _add_declared_arguments(parser: argparse.ArgumentParser) -> None:
    add_define_dataset_argument(parser, joins=False)
    parser.add_argument("--protocol", metavar="NAME_OR_YAML",
                        help="also the datasets this protocol declares (define_datasets)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the datasets the harness reads (built-in, from "
                                          "plug-ins, and any declared here) and where each "
                                          "comes from")
    _add_declared_arguments(listing)
    check = sub.add_parser(
        "check", help="read a dataset folder or a declared dataset and report counts, groups, "
                      "types and problems",
        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("root", nargs="?",
                       help="the dataset folder (release or pyiqa layout; name it with "
                            "--dataset), or a declaration YAML file")
    check.add_argument("--dataset", help="the folder's dataset name (see 'datasets list')")
    _add_declared_arguments(check)
    check.add_argument("--quick", action="store_true",
                       help="verify image structure instead of decoding every pixel")
    download = sub.add_parser(
        "download", help="fetch a dataset archive that pyiqa publishes (needs the network)",
        epilog="example: lifeiqa-bench datasets download kadid10k --root ~/data",
    )
    download.add_argument("name")
    download.add_argument("--root", required=True)


def _is_declaration_file(root: str | None) -> bool:
    return root is not None and root.lower().endswith((".yaml", ".yml"))


def _declared(args: argparse.Namespace) -> list[DatasetDeclaration]:
    """The datasets declared by the arguments: a protocol's, ``--define-dataset``'s and (check)
    a declaration file's."""
    from harness.data.declared import declare_dataset, load_declaration_file
    from harness.plan.protocols import load_protocol

    found = list(load_protocol(args.protocol).define_datasets) if args.protocol else []
    found += [declare_dataset(name, value, origin=f"--define-dataset {name}")
              for name, value in define_datasets_from_args(args.define_dataset).items()]
    if _is_declaration_file(getattr(args, "root", None)):
        found.append(load_declaration_file(args.root))
    return found


def _list(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.api import catalog

    for row in catalog("datasets"):
        print(f"{row['name']:10s} {row['title']:12s} {row['kind']:9s} {row['images']:6d} images  "
              f"{row['scale']}  {row['source']}")
    for declaration in _declared(args):
        dataset = declaration.load()
        print(f"{declaration.name:10s} {Path(declaration.csv).name:12s} {dataset.kind:9s} "
              f"{len(dataset):6d} images  {dataset.scale.describe()}  declared by "
              f"{declaration.where}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from harness.data.registry import get_dataset_spec, load_dataset
    from harness.data.synth.manifest import read_manifest
    from harness.data.validate import format_report, validate_dataset

    folder = args.root if not _is_declaration_file(args.root) else None
    if (folder is None) != (args.dataset is None):
        raise InvalidOptionError("datasets check: a dataset folder and --dataset NAME go together "
                                 "(the folder's dataset); a declared dataset needs neither")
    declared = _declared(args)
    if folder is None and not declared:
        raise InvalidOptionError("datasets check: give a dataset folder with --dataset NAME, a "
                                 "declaration YAML file, --define-dataset NAME=... or --protocol")
    ok = True
    if folder is not None:
        spec = get_dataset_spec(args.dataset)
        dataset = load_dataset(args.dataset, folder)
        synthetic = read_manifest(dataset.root) is not None  # real sizes do not apply
        if synthetic:
            print(f"synthetic dataset in the {spec.title} layout")
        report = validate_dataset(dataset, None if synthetic else spec,
                                  decode_images=not args.quick)
        print(format_report(report))
        ok = report.ok
    for declaration in declared:
        report = validate_dataset(declaration.load(), decode_images=not args.quick)
        print(f"declared by {declaration.where}: {declaration.csv}")
        print(format_report(report))
        ok = ok and report.ok
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    if args.datasets_command == "list":
        return _list(args)
    if args.datasets_command == "check":
        return _check(args)
    from harness.data.download import download_dataset

    print(f"installed into {download_dataset(args.name, args.root)}")
    return 0
