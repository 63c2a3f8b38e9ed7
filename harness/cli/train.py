"""``lifeiqa-bench train``: one release model on a whole dataset part, to install as a metric."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train one model on a dataset's official training part (a release checkpoint)"
DESCRIPTION = (
    "Train one Life-IQA model on a dataset's training part (the partition its release defines, "
    "e.g. KonIQ-10k's train/validation/test sets, or a split file), choose the epoch on the "
    "validation part, score the test part once, and write a checkpoint that embeds its label "
    "scale and provenance (shown by 'lifeiqa-bench weights list'), with a JSON report beside it. "
    "Recipe: the authors' for the dataset on a GPU; on a CPU or on the synthetic stand-in used "
    "when no data is given, cpu_demo for 20 epochs on [0, 1] targets.")
EPILOG = ("examples:"
          "\n  lifeiqa-bench train --dataset koniq10k --split official --data-root DIR "
          "--device cuda --out lifeiqa-koniq.safetensors --register lifeiqa"
          "\n  lifeiqa-bench train --out demo.safetensors --register lifeiqa_effnet_lite0"
          "   # synthetic KonIQ-like set, CPU")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="the checkpoint to write (.safetensors)")
    parser.add_argument("--dataset", default="koniq10k", help="dataset name (default koniq10k)")
    parser.add_argument("--split", default="official",
                        help="'official' (the release's own partition, default) or a split file "
                             "with a validation part (a path, or a name in "
                             "protocols/splits/<dataset>/)")
    parser.add_argument("--data-root", help="folder holding <dataset>/ (default: the synthetic "
                                            "stand-in)")
    parser.add_argument("--dataset-root", help="the dataset's own folder")
    parser.add_argument("--synth-size", default="small", choices=["tiny", "small", "default"],
                        help="size of the synthetic stand-in (no data given)")
    parser.add_argument("--model", help="model preset (default: the recipe's)")
    parser.add_argument("--recipe", help="training recipe (default: the authors' for the "
                                         "dataset; on a CPU or synthetic data cpu_demo with "
                                         "epochs=20, label_scale=unit)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a recipe field, e.g. --set epochs=5 (repeatable)")
    parser.add_argument("--selection", default="val", choices=["val", "last"],
                        help="the epoch kept: best validation SRCC (default) or the last")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--exclude-bad", action="store_true",
                        help="leave out images with problems instead of refusing to start")
    parser.add_argument("--register", metavar="NAME",
                        help="install the checkpoint as this pyiqa metric's default weights "
                             "(lifeiqa, lifeiqa_swin_t, lifeiqa_effnet_lite0)")
    parser.add_argument("--replace", action="store_true",
                        help="with --register: replace weights already registered for NAME")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run(args: argparse.Namespace) -> int:
    from harness.cli.run import parse_overrides
    from harness.release import TrainOptions, train_release

    options = TrainOptions(
        out=args.out, dataset=args.dataset, split=args.split, data_root=args.data_root,
        dataset_root=args.dataset_root, synth_size=args.synth_size, model=args.model,
        recipe=args.recipe, overrides=parse_overrides(args.set), selection=args.selection,
        seed=args.seed, device=args.device, exclude_bad=args.exclude_bad,
        register=args.register, replace=args.replace, overwrite=args.overwrite)
    trained = train_release(options)
    made = trained.provenance
    test = trained.scores
    changed = "".join(f", {k}={v}" for k, v in made["overrides"].items())
    print(f"trained {made['model']} on {made['dataset']} ({made['split']}: "
          + ", ".join(f"{n} {part}" for part, n in made["parts"].items())
          + f"), recipe {made['recipe']}{changed}, selection {made['selection']} "
            f"(epoch {made['selected_epoch']})")
    print(f"test part ({test.n} images): SRCC {test.srcc:.4f}  PLCC {test.plcc:.4f}  "
          f"KRCC {test.krcc:.4f}")
    print(f"wrote {trained.checkpoint} and {trained.report}")
    if trained.registered:
        print(f"registered as {options.register!r}: {trained.registered}")
    return 0
