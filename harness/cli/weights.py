"""``lifeiqa-bench weights``: install checkpoints as the pyiqa metrics' default weights."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lifeiqa.weights import RegisteredWeights

NAME = "weights"
HELP = "add, list, show and remove the weights pyiqa.create_metric('lifeiqa...') loads"
DESCRIPTION = (
    "Registered weights are what pyiqa.create_metric(NAME) loads with its defaults. They live in "
    "$LIFEIQA_WEIGHTS_DIR, else in torch's hub folder beside pyiqa's weights "
    "($TORCH_HOME/hub/lifeiqa/weights). A checkpoint is accepted for a name only if it has the "
    "name's architecture (backbone).")
EPILOG = ("examples:"
          "\n  lifeiqa-bench weights add lifeiqa-koniq.safetensors --name lifeiqa"
          "\n  lifeiqa-bench weights list")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="register a checkpoint for a metric name")
    add.add_argument("file", help="a lifeiqa .safetensors checkpoint (or a plain state dict "
                                  "for the name's preset)")
    add.add_argument("--name", default="lifeiqa",
                     help="the pyiqa metric name (lifeiqa, lifeiqa_swin_t, lifeiqa_effnet_lite0; "
                          "default lifeiqa)")
    add.add_argument("--replace", action="store_true",
                     help="replace weights already registered for the name")
    sub.add_parser("list", help="registered weights and their provenance")
    show = sub.add_parser("show", help="everything a registered checkpoint records")
    show.add_argument("name")
    remove = sub.add_parser("remove", help="unregister (delete) a name's weights")
    remove.add_argument("name")


def _test_scores(provenance: dict) -> str:
    test = provenance.get("test") or {}
    if not test:
        return "-"
    return f"SRCC {test['srcc']:.4f}  PLCC {test['plcc']:.4f}  (n={test.get('n', '?')})"


def _describe(entry: RegisteredWeights) -> list[str]:
    """One registered checkpoint as the lines ``list`` prints."""
    made = entry.provenance
    scale = entry.info.label_scale
    lines = [f"{entry.name}  {entry.path}",
             f"  architecture: {entry.architecture}",
             "  label scale:  " + (f"{scale.kind} {scale.low:g}-{scale.high:g} "
                                   f"({'higher' if scale.higher_is_better else 'lower'} is "
                                   f"better)" if scale else "none (raw scores)")]
    if not made:
        return [*lines, "  provenance:   none recorded"]
    sizes = made.get("parts") or {}
    parts = ", ".join(f"{sizes[part]} {part}" for part in ("train", "val", "test") if part in sizes)
    commit = made.get("git_commit") or "?"
    return [*lines,
            f"  dataset:      {made.get('dataset', '?')}",
            f"  split:        {made.get('split', '?')} ({made.get('split_source', '?')}; {parts})",
            f"  recipe:       {made.get('recipe', '?')} (model {made.get('model', '?')})",
            f"  selection:    {made.get('selection', '?')} (epoch "
            f"{made.get('selected_epoch', '?')})",
            f"  git commit:   {commit[:12]}" + (" (uncommitted changes)" if made.get("git_dirty")
                                                else ""),
            f"  test scores:  {_test_scores(made)}",
            f"  date:         {made.get('date', '?')}"]


def run(args: argparse.Namespace) -> int:
    from lifeiqa import weights

    if args.weights_command == "add":
        entry = weights.add_weights(args.file, args.name, replace=args.replace)
        print(f"registered {args.file} as {entry.name!r}: "
              f"pyiqa.create_metric({entry.name!r}) now loads it")
        print("\n".join(_describe(entry)))
    elif args.weights_command == "list":
        entries = weights.list_weights()
        print(f"weights folder: {weights.weights_dir()}")
        if not entries:
            print(f"no weights registered (names: {', '.join(weights.metric_names())}); "
                  f"add some with: lifeiqa-bench weights add FILE --name NAME")
        for entry in entries:
            print("\n".join(_describe(entry)))
    elif args.weights_command == "show":
        entry = weights.get_weights(args.name)
        print("\n".join(_describe(entry)))
        if entry.info.config is not None:
            print(f"  config: {entry.info.config.to_json()}")
        if entry.provenance:
            print(f"  provenance: {json.dumps(entry.provenance, indent=2, sort_keys=True)}")
    else:
        print(f"removed {weights.remove_weights(args.name)}")
    return 0
