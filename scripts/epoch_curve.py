"""Test SRCC against training epochs for the demo's decoder on cached features.

How the demo's recipe (``cpu_bench``) got its epochs: for each epoch count N, a fresh decoder is
trained for N epochs (the schedule spans all N, as a recipe with ``epochs=N`` would run it) on
the first splits of the synthetic KADID-like set, and the median test SRCC over the splits is
printed, beside two closed-form layer probes on the same splits as reference lines. Features
come from the harness's cache, so a rerun after the demo costs only the training.

    .venv/bin/python scripts/epoch_curve.py --splits 5 --epochs 1,2,4,6,8,12,16
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.sources import DataSources, cache_root
from harness.engine.families.base import EngineContext
from harness.engine.families.probe import fit_ridge, predict_ridge, stage_matrix
from harness.engine.features import StageExtractor
from harness.engine.train import train_frozen
from harness.plan.recipes import get_recipe
from harness.plan.splits import plan_split
from harness.results import metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="cpu_bench")
    parser.add_argument("--synth-size", default="small")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--epochs", default="1,2,4,6,8,12,16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = get_recipe(args.recipe)
    data = DataSources(synth_size=args.synth_size).load("synth-kadid10k")
    records = data.records
    scores = np.array([r.score for r in records])
    context = EngineContext(torch.device("cpu"), DecodedImageCache(cache_root() / "images"),
                            cache_root())
    model = lifeiqa.create_model(recipe.model, pretrained=True)
    features = context.feature_cache(model, recipe)
    train_features = features.get_all(records, "train")
    test_features = features.get_all(records, "test")
    stages = context.feature_cache(model, recipe, StageExtractor(model))
    stage_train, stage_test = stages.get_all(records, "train"), stages.get_all(records, "test")
    curve: dict[str, list[float]] = {}
    for k in range(args.splits):
        split = plan_split(data.name, data.groups, k, 0.2)
        train = [i for i, r in enumerate(records) if r.group in set(split.train)]
        test = [i for i, r in enumerate(records) if r.group in set(split.test)]
        for stride, name in ((8, "probe_stage2"), (16, "probe_stage3")):
            weights, _, _ = fit_ridge(stage_matrix([stage_train[i] for i in train], stride),
                                      scores[train])
            predictions = predict_ridge(weights, stage_matrix([stage_test[i] for i in test],
                                                              stride))
            curve.setdefault(name, []).append(metrics.srcc(predictions, scores[test]))
        for epochs in map(int, args.epochs.split(",")):
            torch.manual_seed(0)
            decoder = lifeiqa.create_model(recipe.model, pretrained=True)
            start = time.perf_counter()
            outcome = train_frozen(decoder, recipe.override(epochs=epochs),
                                   [train_features[i] for i in train], scores[train],
                                   [test_features[i] for i in test], scores[test], seed=k)
            srcc = metrics.srcc(outcome.predictions, scores[test])
            curve.setdefault(f"{epochs} epochs", []).append(srcc)
            print(f"split {k}: {epochs:2d} epochs SRCC {srcc:.3f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    print(f"\n{recipe.model} ({args.recipe}, lr {recipe.lr:g}, batch {recipe.batch_size}), "
          f"{len(records)} images, median test SRCC over {args.splits} splits:\n")
    print("| training | median SRCC | per split |\n|---|---|---|")
    for name, values in curve.items():
        print(f"| {name} | {statistics.median(values):.3f} | "
              f"{', '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
