"""Data-parallel training under torchrun (2 real processes, gloo on loopback).

The test process keeps its sockets blocked; the torchrun children get the same block through
sitecustomize (tests/netblock), which lets loopback through, so gloo and the rendezvous run on
127.0.0.1 only. This file is also the script the ranks run (``__main__`` below).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_fixtures import write_kadid10k_release

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.engine import distributed
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.train import train_finetune, train_frozen
from harness.plan.recipes import get_recipe
from harness.results.store import read_result
from lifeiqa import BackboneFeatures

TOLERANCE = 1e-4
TINY_BACKBONE = lifeiqa.get_spec("lifeiqa_tiny").config.backbone_kwargs


def _tiny() -> lifeiqa.LifeIQA:
    """The tiny preset without dropout or stochastic depth (their masks are drawn per rank);
    4 experts, top-2, so the balance loss is live."""
    torch.manual_seed(0)
    return lifeiqa.create_model("lifeiqa_tiny", expert_dropout=0.0, head_dropout=0.0,
                                backbone_kwargs={**TINY_BACKBONE, "drop_path_rate": 0.0})


def _expert_patterns(model: lifeiqa.LifeIQA, features: list[BackboneFeatures]) -> int:
    """How many different expert selections (over the six queries) the images get."""
    tokens = []
    handle = model.head.mixture.register_forward_hook(lambda m, args, out: tokens.append(args[0]))
    with torch.no_grad():
        model.forward_head(BackboneFeatures(torch.cat([f.pooled for f in features]),
                                            torch.cat([f.deepest for f in features])))
    handle.remove()
    selected = model.head.mixture.route(tokens[0])[1]
    return len({tuple(row.flatten().tolist()) for row in selected})


def _train(root: Path, cache: Path) -> dict[str, np.ndarray]:
    """Three trainings: frozen (global batch 5 over 16 rows: shards of 3/2 and a last batch of
    1 row, computed whole by both ranks; oracle selection), fine-tuning (batch 3: shards 2/1),
    and frozen on features scaled per image so that rows route to different experts (per-rank
    routing fractions would then change the balance loss's gradient). Also counts the rows
    each process's head saw in training."""
    records = sorted(load_dataset("kadid10k", root).records, key=lambda r: r.image_id)
    train, test = records[:8], records[8:]  # references I01, I02 | I03
    train_y = np.array([r.score for r in train])
    test_y = np.array([r.score for r in test])
    images = DecodedImageCache(cache / "images")
    base = get_recipe("cpu_demo").override(model="lifeiqa_tiny")
    out: dict[str, np.ndarray] = {}
    for mode in ("frozen", "finetune", "routing"):
        model = _tiny()
        rows = []
        model.head.register_forward_hook(
            lambda module, args, output, seen=rows: seen.append(len(args[0])) if module.training
            else None)
        if mode == "finetune":
            recipe = base.override(mode="finetune", epochs=1, batch_size=3, train_crops=1,
                                   test_crops=2, lr=3e-4)
            outcome = train_finetune(model, recipe, train, train_y, test, test_y, images, seed=3)
        else:
            features = FeatureCache(cache / "features", model, CropPlan(2, 2, 224, "native"), images)
            train_x, test_x = features.get_all(train, "train"), features.get_all(test, "test")
            if mode == "frozen":
                recipe = base.override(epochs=2, batch_size=5)
                outcome = train_frozen(model, recipe, train_x, train_y, test_x, test_y,
                                       selection="oracle", seed=3)
            else:
                scales = np.linspace(-30, 30, len(train_x))
                train_x = [BackboneFeatures(f.pooled, f.deepest * s)
                           for f, s in zip(train_x, scales, strict=True)]
                out["patterns"] = np.array(_expert_patterns(model, train_x))
                recipe = base.override(epochs=3, batch_size=6, lr=1e-2, aux_weight=1.0)
                outcome = train_frozen(model, recipe, train_x, train_y, test_x, test_y, seed=3)
        out[mode] = outcome.predictions
        out[f"{mode}_loss"] = np.array([h["loss"] for h in outcome.history])
        out[f"{mode}_epoch"] = np.array(outcome.selected_epoch)
        out[f"{mode}_rows"] = np.array(sum(rows))
    return out


def _torchrun(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(port), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


CLI = ["run", "--protocol", "splits", "--splits", "1", "--datasets", "kadid10k", "--model",
       "lifeiqa_tiny", "--device", "cpu", "--set", "mode='finetune'", "--set", "epochs=1",
       "--set", "train_crops=1", "--set", "test_crops=1", "--set", "batch_size=5"]


@pytest.fixture(scope="module")
def launch(tmp_path_factory) -> dict:
    """One process's training, then one torchrun launch of this file (2 ranks): the same
    trainings, then ``lifeiqa-bench run`` (a fine-tuning unit) in the same ranks."""
    folder = tmp_path_factory.mktemp("ddp")
    kadid, cache = folder / "kadid", folder / "cache"
    write_kadid10k_release(kadid, bad_rows=False)
    single = _train(kadid, cache)
    env = {**os.environ, "LIFEIQA_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    if Path("/sys/class/net/lo").exists():  # keep gloo on loopback
        env["GLOO_SOCKET_IFNAME"] = "lo"
    ranks = _torchrun([__file__, str(kadid), str(cache), str(folder)], env)
    assert ranks.returncode == 0, ranks.stdout[-3000:] + ranks.stderr[-3000:]
    return {"single": single, "ranks": ranks, "runs": folder / "runs",
            "shards": [dict(np.load(folder / f"rank{r}.npz")) for r in range(2)]}


@pytest.mark.slow
def test_two_ranks_train_like_one_process(launch):
    single, shards = launch["single"], launch["shards"]
    assert int(single["patterns"]) > 2  # the routing run routes rows differently
    for mode in ("frozen", "finetune", "routing"):
        for key in (mode, f"{mode}_loss"):
            for shard in shards:  # every rank ends with the same (gathered) predictions
                np.testing.assert_allclose(shard[key], single[key], atol=TOLERANCE, rtol=0)
        assert int(shards[0][f"{mode}_epoch"]) == int(single[f"{mode}_epoch"])
    # the ranks really split the rows: frozen 16 rows per epoch in batches 5,5,5,1 (the last
    # computed by both), 2 epochs; fine-tuning 8 rows in batches 3,3,2
    assert [int(s["frozen_rows"]) for s in shards] == [2 * (3 + 3 + 3 + 1), 2 * (2 + 2 + 2 + 1)]
    assert int(single["frozen_rows"]) == 2 * 16
    assert [int(s["finetune_rows"]) for s in shards] == [2 + 2 + 1, 1 + 1 + 1]


@pytest.mark.slow
def test_the_run_command_under_torchrun_writes_one_result_from_rank_zero(launch):
    runs = launch["runs"]
    assert launch["ranks"].stdout.count("1 run, 0 already done, 0 failed") == 1  # rank 0 reports
    (result_file,) = runs.rglob("result.json")
    result = read_result(result_file)
    assert result.world_size == 2 and result.device == "cpu"
    assert result.config["recipe"]["batch_size"] == 5  # the global batch
    predictions = (result_file.parent / "predictions.csv").read_text().splitlines()
    assert len(predictions) - 1 == result.split.test_images > 0
    assert np.isfinite(result.metrics.plcc) and np.isfinite(result.history[0]["loss"])
    assert not list(runs.rglob(".lock"))


if __name__ == "__main__":  # a rank of the launch fixture's torchrun
    from harness.cli import main

    data, cache, out = map(Path, sys.argv[1:4])
    distributed.setup("cpu")
    np.savez(out / f"rank{distributed.rank()}.npz", **_train(data, cache))
    sys.exit(main([*CLI, "--dataset-root", f"kadid10k={data}", "--runs", str(out / "runs")]))
