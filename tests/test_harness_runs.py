"""The harness end to end on the synthetic default, as a user runs it: in real processes where
the process matters (a first run, a kill), the others in this one (tests/commands.py bench_here)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from commands import bench, bench_here, counts, start_bench
from dataset_fixtures import noise_images, write_noise_koniq

import harness
import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.data.synth.generate import synthesize
from harness.engine.features import CropPlan, FeatureCache
from harness.engine.train import predict_features
from harness.results.schema import ProtocolRef, UnitResult
from harness.results.store import environment, read_result

FAST = ["--model", "lifeiqa_tiny", "--synth-size", "tiny", "--set", "epochs=2",
        "--set", "train_crops=2", "--set", "test_crops=2", "--set", "batch_size=32"]


def results(runs: Path) -> dict[str, UnitResult]:
    return {str(p.parent.relative_to(runs)): read_result(p)
            for p in sorted(runs.rglob("result.json"))}


@pytest.mark.slow
def test_splits_protocol_end_to_end_then_resume_and_config_guard(tmp_path, capsys):
    runs = tmp_path / "runs"
    first = bench("--protocol", "splits", "--splits", "2", "--runs", str(runs), *FAST)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = results(runs)
    assert len(stored) == 2
    result = next(iter(stored.values()))
    assert result.protocol == ProtocolRef("splits", "1.0")
    assert result.selection == "last" and result.selected_epoch == 2
    assert [entry["epoch"] for entry in result.history] == [1, 2]
    assert result.seeds.split == int(result.unit[-2:]) and result.wall_seconds > 0
    assert result.world_size == 1 and result.config["recipe"]["epochs"] == 2
    assert len(result.per_distortion) == 25
    assert result.environment.torch == torch.__version__
    split = json.loads(Path(result.split.file).read_text())
    assert not set(split["train"]) & set(split["test"])
    unit = runs / next(iter(stored))
    predictions = (unit / "predictions.csv").read_text().splitlines()
    assert len(predictions) - 1 == result.split.test_images == 125
    assert "selection: last epoch" in first.stdout and "protocol v1.0" in first.stdout

    # the reruns in this process: what they do is read the store, not train
    again = bench_here(capsys, "--protocol", "splits", "--splits", "2", "--runs", str(runs), *FAST, "--json")
    assert counts(again.stdout) == (0, 2, 0)
    # every unit of the suite with its key and scores, as stored
    assert {u["unit"]: (u["model"], u["srcc"], u["plcc"]) for u in json.loads(again.stdout)["units"]} \
        == {r.unit: (r.model.name, r.metrics.srcc, r.metrics.plcc) for r in stored.values()}
    if not environment().git_dirty:  # a clean checkout reuses its own units without a word
        assert "other code" not in again.stderr
    # a unit made by another commit with uncommitted changes is reused, and the run says so
    other = runs / next(iter(stored)) / "result.json"
    data = json.loads(other.read_text())
    data["environment"].update(git_commit="0" * 40, git_dirty=True)
    other.write_text(json.dumps(data))
    reused = bench_here(capsys, "--protocol", "splits", "--splits", "2", "--runs", str(runs), *FAST, "--json")
    assert counts(reused.stdout) == (0, 2, 0)
    # units of a checkout with uncommitted changes are never known to be of the same code
    assert json.loads(reused.stdout)["reused_other_code"] == (2 if environment().git_dirty else 1)
    assert "already done were made by other code than this checkout's" in reused.stderr
    assert "0000000000 with uncommitted changes: 1" in reused.stderr
    changed = bench_here(capsys, "--protocol", "splits", "--splits", "2", "--runs", str(runs),
                         *FAST, "--set", "epochs=3")
    assert changed.returncode != 0
    assert "recipe.epochs: stored 2, requested 3" in changed.stdout + changed.stderr


@pytest.mark.slow
def test_kill_midway_then_rerun_gives_the_uninterrupted_aggregate(tmp_path):
    args = ["run", "--protocol", "splits", "--splits", "3", *FAST]
    reference = bench(*args, "--runs", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    runs = tmp_path / "killed"
    process = start_bench(*args, "--runs", str(runs), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not list(runs.rglob("result.json")) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = results(runs)
    assert 1 <= len(finished) < 3, "kill landed too late to test a resume"
    stamps = {k: (runs / k / "result.json").stat().st_mtime_ns for k in finished}
    resumed = bench(*args, "--runs", str(runs), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert counts(resumed.stdout) == (3 - len(finished), len(finished), 0)
    assert all((runs / k / "result.json").stat().st_mtime_ns == t for k, t in stamps.items())
    ours, theirs = results(runs), results(tmp_path / "reference")
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key].metrics.to_dict() == pytest.approx(theirs[key].metrics.to_dict(),
                                                             abs=1e-6)


@pytest.mark.slow
def test_cross_dataset_and_per_distortion_protocols_run(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    cross = bench_here(capsys, "--protocol", "cross-dataset", "--seeds", "1", "--runs", runs, *FAST)
    assert cross.returncode == 0, cross.stdout + cross.stderr
    assert "synth-kadid10k -> synth-tid2013" in cross.stdout
    assert "synth-koniq10k -> synth-kadid10k" in cross.stdout
    per = bench_here(capsys, "--protocol", "per-distortion", "--splits", "1", "--runs", runs, *FAST)
    assert per.returncode == 0, per.stderr
    assert "Per-distortion SRCC" in per.stdout and "white noise in color component" in per.stdout


def test_cached_features_predict_like_the_frozen_backbone(session_cache, tmp_path):
    root = synthesize("kadid10k", session_cache / "synth" / "kadid10k-tiny-seed0", "tiny", 0)
    records = load_dataset("kadid10k", root).records[:6]
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    plan = CropPlan(train_crops=2, test_crops=3, crop_size=224, resize_policy="native")
    features = FeatureCache(tmp_path / "features", model, plan, DecodedImageCache(session_cache / "images"))
    cached = predict_features(model, features.get_all(records, "test"), torch.device("cpu"))
    reread = predict_features(model, features.get_all(records, "test"), torch.device("cpu"))
    with torch.no_grad():
        direct = np.array([float(model(features.crops(r, "test")).score.mean()) for r in records])
    np.testing.assert_allclose(cached, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cached, reread)


# one of two processes filling a feature cache at once: it builds its model, says it is ready
# (a file) and waits for the start signal (another), then fills the cache and prints how many
# images it computed and a digest of every image's features
FILL_CACHE = """
import hashlib, os, sys, time
from pathlib import Path
import torch
import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.engine.features import CropPlan, FeatureCache

root, folder, go = map(Path, sys.argv[1:4])
torch.set_num_threads(1)
records = load_dataset("kadid10k", root).records[:16]
torch.manual_seed(0)
model = lifeiqa.create_model("lifeiqa_tiny").eval()
plan = CropPlan(train_crops=2, test_crops=2, crop_size=224, resize_policy="native")
features = FeatureCache(folder / "features", model, plan, DecodedImageCache(folder / "images"))
computed = []
compute = features._compute
features._compute = lambda record, part: computed.append(record) or compute(record, part)
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.01)
digest = hashlib.sha256()
for entry in features.get_all(records, "test"):
    for tensor in (entry.pooled, entry.deepest):
        digest.update(tensor.numpy().tobytes())
print(len(computed), digest.hexdigest())
"""


@pytest.mark.slow
def test_processes_sharing_a_feature_cache_split_the_images_between_them(session_cache, tmp_path):
    root = synthesize("kadid10k", session_cache / "synth" / "kadid10k-tiny-seed0", "tiny", 0)
    go = tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-c", FILL_CACHE, str(root), str(tmp_path), str(go)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    counts, digests = zip(*(out.split() for out, _ in outputs), strict=True)
    # every image computed once, by one of them, and both did part of the work (one computing
    # while the other waits would give 16 and 0); each read the other's share
    assert sum(map(int, counts)) == 16 and min(map(int, counts)) > 0, counts
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_finetune_mode_and_guards(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    tuned = bench_here(capsys, "--protocol", "splits", "--splits", "1", "--runs", runs, *FAST,
                       "--set", "mode='finetune'", "--set", "epochs=1", "--set", "train_crops=1")
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    oracle = bench_here(capsys, "--protocol", "splits", "--selection", "oracle", "--runs", runs, *FAST)
    assert oracle.returncode != 0 and "--allow-oracle" in oracle.stderr
    plan = bench_here(capsys, "--protocol", "ablation", "--dry-run", "--runs", runs, *FAST)
    assert plan.returncode == 0
    assert plan.stdout.count("to do") == 100 and "lifeiqa_tiny+no_gcn" in plan.stdout
    assert "lifeiqa_tiny+stage1_kv" in plan.stdout


@pytest.mark.slow
def test_a_harness_trained_checkpoint_serves_pyiqa(tmp_path):
    import pyiqa

    runs = tmp_path / "runs"
    trained = bench("--protocol", "splits", "--splits", "1", "--runs", str(runs), *FAST,
                    "--save-checkpoints")
    assert trained.returncode == 0, trained.stderr
    checkpoint = next(runs.rglob("checkpoint.safetensors"))
    model = lifeiqa.load_checkpoint(checkpoint)
    assert model.label_scale["dataset"] == "synth-kadid10k"
    metric = pyiqa.create_metric("lifeiqa", pretrained_model_path=str(checkpoint), device="cpu",
                                 model_name="lifeiqa_tiny")  # the name's architecture, overridden
    image = torch.rand(1, 3, 240, 320)
    with torch.no_grad():
        expected = lifeiqa.score_images(model, image)
    torch.testing.assert_close(metric(image).view(-1), expected)


def write_mos_and_dmos_sets(root: Path) -> tuple[Path, Path]:
    """A KonIQ-10k release (MOS, higher is better) and a CSIQ pyiqa layout (DMOS in [0, 1],
    lower is better) of noise images whose quality falls with the noise."""
    koniq = write_noise_koniq(root / "koniq", 48)
    csiq = root / "csiq"
    images = noise_images(csiq / "CSIQ" / "dst_imgs", 24, lambda k: f"ref{k % 6}.AWGN.{k // 6 + 1}.png")
    (csiq / "meta_info").mkdir(parents=True)
    with open(csiq / "meta_info" / "meta_info_CSIQDataset.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_name", "dist_name", "dmos"])
        writer.writerows([[f"ref{k % 6}.png", name, round(s / 60, 4)]
                          for k, (name, s) in enumerate(images)])
    return koniq, csiq


def test_oracle_selection_on_a_mos_to_dmos_pair_selects_the_best_epoch(tmp_path):
    koniq, csiq = write_mos_and_dmos_sets(tmp_path / "data")
    protocol = tmp_path / "pair.yaml"
    protocol.write_text("name: pair\nversion: '1'\nkind: cross-dataset\nseeds: 1\n"
                        "pairs: [[koniq10k, csiq]]\nvariants: [full]\n")
    results = harness.evaluate(
        str(protocol), runs=str(tmp_path / "runs"), model="lifeiqa_tiny", recipe="cpu_demo",
        dataset_roots={"koniq10k": str(koniq), "csiq": str(csiq)}, device="cpu",
        selection="oracle", allow_oracle=True,
        overrides={"epochs": 4, "label_scale": "native", "batch_size": 8, "lr": 3e-3})
    assert not results.failed, results.failed
    (result,) = results.units
    history = [entry["test_srcc"] for entry in result.history]
    assert len(set(np.round(history, 6))) > 1, "the epochs should differ"
    # the selected epoch is the one that agrees best with the DMOS labels, oriented as quality
    assert result.selected_epoch == int(np.argmax(history)) + 1
    assert result.metrics.srcc == pytest.approx(history[result.selected_epoch - 1], abs=1e-9)
    assert result.metrics.srcc == pytest.approx(max(history), abs=1e-9)


@pytest.mark.slow
def test_a_unit_cut_short_resumes_from_its_last_saved_epoch_with_the_uninterrupted_numbers(
        tmp_path, caplog):
    """What a Slurm task that reached its time limit relies on (tests/test_slurm_cluster.py
    requeues one for real): with epoch resume on, a unit stopped during an epoch is taken up by
    the next runner after the last epoch it saved, and ends with the numbers of a run that was
    never stopped: weights, optimiser and schedule, epoch log, the selected epoch's state and
    predictions so far, and every random stream."""
    from harness.api import dry_run
    from harness.engine.resume import RESUME_FILE
    from harness.engine.runner import JobRunner
    from harness.errors import RunInterruptedError
    from harness.results.store import ResultsStore

    epochs, stop_in = 4, 3  # stopped in epoch 3: epochs 1 and 2 saved
    plan = dry_run("splits", datasets=["synth-kadid10k"], synth_size="tiny", splits=1,
                   model="lifeiqa_tiny", selection="oracle", allow_oracle=True,
                   overrides={"epochs": epochs, "train_crops": 2, "batch_size": 16})
    (job,) = plan.jobs
    prepare = JobRunner(ResultsStore(tmp_path / "never"), plan.sources, "cpu")
    prepare.dataset(job.train_dataset)  # the synthetic set exists before any run starts

    def run(runs: Path, log=None) -> UnitResult:
        JobRunner(ResultsStore(runs), plan.sources, "cpu", resume_epochs=True, log_epochs=True,
                  log=log).run_all([job])
        (unit,) = results(runs).values()
        return unit

    uninterrupted = run(tmp_path / "uninterrupted")

    def stop(line: str) -> None:  # the epoch log of the runner: a stop in the middle of one
        if f" epoch {stop_in}/{epochs}:" in line:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(RunInterruptedError):
        run(cut, log=stop)
    assert not results(cut) and len(list(cut.rglob(RESUME_FILE))) == 1
    with caplog.at_level("INFO", logger="harness.engine.train"):
        resumed = run(cut)
    assert f"resumed after epoch {stop_in - 1} of {epochs}" in caplog.text
    assert not list(cut.rglob(RESUME_FILE))  # removed with the result
    assert len(resumed.history) == epochs and resumed.selected_epoch == uninterrupted.selected_epoch
    assert resumed.history == uninterrupted.history
    assert resumed.metrics == uninterrupted.metrics
    theirs, ours = (np.loadtxt(next(runs.rglob("predictions.csv")), delimiter=",", skiprows=1,
                               usecols=-1) for runs in (tmp_path / "uninterrupted", cut))
    np.testing.assert_array_equal(ours, theirs)
