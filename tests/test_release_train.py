"""``lifeiqa-bench train``: a release model on a dataset's official parts, installed as a pyiqa
metric and scoring a folder as ``lifeiqa-bench score`` does."""

import csv
import json
import os
import subprocess
import sys

import pytest
from dataset_fixtures import KONIQ_IMAGES, write_koniq10k_pyiqa, write_koniq10k_release

import lifeiqa
from harness.cli import main
from harness.data.partitions import group_partition, official_partition
from harness.data.registry import get_dataset_spec, load_dataset
from harness.errors import DatasetError, InvalidOptionError
from harness.release import TrainOptions, plan_release
from lifeiqa import weights

KONIQ = get_dataset_spec("koniq10k")


@pytest.fixture(autouse=True)
def own_caches(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(weights.CHECKPOINT_ENV, raising=False)


def write_sets(root, parts, name="koniq10k_distributions_sets.csv", column="set"):
    with open(root / name, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", column])
        writer.writerows([image, 0, 0.1, 0.5, 0.3, 0.1, 100, 60.0, 0.5, part]
                         for image, part in parts.items())


def test_the_koniq_release_partition_is_its_set_column(tmp_path):
    write_koniq10k_release(tmp_path, bad_rows=False)
    dataset = load_dataset("koniq10k", tmp_path)
    with pytest.raises(DatasetError, match="no official train/validation/test partition"):
        official_partition(dataset, KONIQ)
    parts = dict(zip(KONIQ_IMAGES, ["training", "test", "validation", "training"], strict=True))
    write_sets(tmp_path, parts)
    partition = official_partition(dataset, KONIQ)
    assert partition.source == "koniq10k_distributions_sets.csv:set"
    assert partition.sizes() == {"train": 2, "val": 1, "test": 1}
    assert [r.image_id for r in partition.test] == [f"1024x768/{KONIQ_IMAGES[1]}"]

    write_sets(tmp_path, {**parts, KONIQ_IMAGES[0]: "holdout"})
    with pytest.raises(DatasetError, match=r"koniq10k_distributions_sets.csv:2: part 'holdout'"):
        official_partition(dataset, KONIQ)
    write_sets(tmp_path, dict(list(parts.items())[1:]))
    with pytest.raises(DatasetError, match=f"1 image.*in no part.*{KONIQ_IMAGES[0]}"):
        official_partition(dataset, KONIQ)


def test_the_pyiqa_layout_partition_is_its_official_split_column(tmp_path):
    written = write_koniq10k_pyiqa(tmp_path, bad_rows=False)
    meta = tmp_path / "meta_info" / "meta_info_KonIQ10kDataset.csv"
    with open(meta, newline="") as handle:
        rows = list(csv.reader(handle))
    with open(meta, "w", newline="") as handle:
        parts = ["train", "val", "test", "train"]
        csv.writer(handle).writerows([[*rows[0], "official_split"],
                                      *([*row, part] for row, part in zip(rows[1:], parts,
                                                                          strict=True))])
    dataset = load_dataset("koniq10k", written.root)
    partition = official_partition(dataset, KONIQ)
    assert partition.source == "meta_info/meta_info_KonIQ10kDataset.csv:official_split"
    assert partition.sizes() == {"train": 2, "val": 1, "test": 1}
    by_groups = group_partition(dataset, {"train": dataset.groups[:3], "test": dataset.groups[3:]},
                                "split.json")
    assert by_groups.sizes() == {"train": 3, "val": 0, "test": 1}
    with pytest.raises(DatasetError, match="2 content group"):
        group_partition(dataset, {"train": dataset.groups[:2]}, "split.json")


def test_options_are_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEIQA_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "model.safetensors")
    mistakes = [
        (dict(out=str(tmp_path / "model.pt")), "are .safetensors files"),
        (dict(out=out, selection="oracle"), "never used to choose"),
        (dict(out=out, dataset="konik"), "did you mean koniq"),
        (dict(out=out, register="lifeiqa_swinn_t"), "did you mean lifeiqa_swin_t"),
        (dict(out=out, dataset="kadid10k"), "defines no train/validation/test partition; pass "
                                            "--split FILE"),
        (dict(out=out, split="split_77-val"), "expected 'official', a split file"),
        (dict(out=out, data_root=str(tmp_path)), "no folder named 'koniq10k' in it"),
        (dict(out=out, model="lifeiqa_tiny", register="lifeiqa_effnet_lite0"),
         "the metric is Life-IQA on tf_efficientnet_lite0.*but lifeiqa_tiny is Life-IQA on "
         "swin_tiny"),
        (dict(out=out, recipe="cpu_demo", register="lifeiqa"), "lifeiqa_effnet_lite0_small"),
    ]
    for options, message in mistakes:
        with pytest.raises(InvalidOptionError, match=message):
            plan_release(TrainOptions(**options))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(InvalidOptionError, match="pass --overwrite"):
        TrainOptions(out=out)
    assert not (tmp_path / "cache").exists()  # nothing synthesised, nothing trained
    plan = plan_release(TrainOptions(out=out, overwrite=True, device="cpu"))
    assert (plan.recipe.name, plan.preset, plan.split_file) == ("cpu_demo",
                                                                "lifeiqa_effnet_lite0_small", None)
    assert (plan.recipe.epochs, plan.recipe.label_scale) == (20, "unit")
    plan = plan_release(TrainOptions(out=out, overwrite=True, recipe="cpu_demo",
                                     overrides={"epochs": 2}))
    assert (plan.recipe.epochs, plan.recipe.label_scale) == (2, "native")  # named: as it is


@pytest.mark.slow
def test_train_add_then_pyiqa_scores_a_folder_as_the_score_command(tmp_path, capsys,
                                                                   session_cache):
    checkpoint = tmp_path / "release.safetensors"
    assert main(["train", "--synth-size", "tiny", "--device", "cpu", "--out", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "recipe cpu_demo, label_scale=unit, epochs=20, selection val" in printed
    assert "test part (5 images): SRCC" in printed

    info = lifeiqa.read_checkpoint_info(checkpoint)
    made = info.provenance
    assert info.label_scale == lifeiqa.LabelScale("unit", 0.0, 1.0, True, "synth-koniq10k")
    assert (made["dataset"], made["split"], made["split_source"]) == (
        "synth-koniq10k", "official", "koniq10k_distributions_sets.csv:set")
    assert made["parts"] == {"train": 17, "val": 2, "test": 5}
    assert (made["recipe"], made["model"], made["selection"]) == (
        "cpu_demo", "lifeiqa_effnet_lite0_small", "val")
    assert made["git_commit"] and made["date"] and made["test"]["n"] == 5
    report = json.loads(checkpoint.with_suffix(".json").read_text())
    assert report["provenance"] == made and len(report["test_predictions"]) == 5
    assert len(report["history"]) == made["recipe_fields"]["epochs"] == 20

    assert main(["weights", "add", str(checkpoint), "--name", "lifeiqa_effnet_lite0"]) == 0
    folder = next((session_cache / "synth").glob("koniq10k-tiny-*")) / "512x384"
    scores = tmp_path / "scores.csv"
    assert main(["score", str(folder), "--checkpoint", str(checkpoint), "--out", str(scores)]) == 0
    with open(scores, newline="") as handle:
        expected = {row["path"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert len(expected) == 24
    code = ("import json, sys, pyiqa\n"
            "metric = pyiqa.create_metric('lifeiqa_effnet_lite0', device='cpu')\n"
            "print(json.dumps({p: float(metric(p)) for p in json.load(sys.stdin)}))\n")
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps(list(expected)),
                            capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert result.returncode == 0, result.stderr
    through_pyiqa = json.loads(result.stdout)
    for path, score in expected.items():  # the CSV keeps 6 decimals
        assert through_pyiqa[path] == pytest.approx(score, abs=1e-6), path
