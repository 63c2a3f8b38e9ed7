"""``lifeiqa-bench score`` as a user runs it, on real image files: the command line in this
process (``tests/commands.py bench_here``), so no test waits for an interpreter to start."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from commands import bench_here
from PIL import Image

import lifeiqa
from harness.engine.score import read_image
from lifeiqa import LabelScale


@pytest.fixture
def bench(capsys: pytest.CaptureFixture[str]):
    """``lifeiqa-bench ARGS`` in this process: its exit status and output."""
    return lambda *args: bench_here(capsys, *args)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = lifeiqa.create_model("lifeiqa_tiny")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    lifeiqa.save_checkpoint(model, path, label_scale=LabelScale("native", 0.0, 1.0, False, "csiq"))
    return path


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (260, 300, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.integers(0, 255, (180, 240), dtype=np.uint8)).save(root / "nested" / "gray.jpg")
    Image.fromarray(rng.integers(0, 255, (230, 230, 4), dtype=np.uint8)).save(root / "rgba.webp")
    Image.fromarray(rng.integers(0, 255, (240, 250, 3), dtype=np.uint8)).save(root / "c.bmp")
    Image.fromarray(rng.integers(0, 255, (240, 250, 3), dtype=np.uint8)).save(root / "d.tiff")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "notes.txt").write_text("not an image, not picked up")
    return root


def read_rows(path: Path) -> dict[str, float]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["path", "score"]
        return {row["path"]: float(row["score"]) for row in reader}


def test_scores_a_folder_skipping_and_naming_the_corrupt_file(bench, folder, checkpoint, tmp_path):
    out = tmp_path / "scores.csv"
    result = bench("score", str(folder), "--checkpoint", str(checkpoint), "--out", str(out),
                   "--batch-size", "2")
    assert result.returncode == 1
    assert "corrupt.jpg" in result.stderr and "1 input(s) failed" in result.stderr
    rows = read_rows(out)
    assert sorted(Path(p).name for p in rows) == ["a.png", "c.bmp", "d.tiff", "gray.jpg", "rgba.webp"]


def test_cli_score_equals_pyiqa_and_lifeiqa(bench, folder, checkpoint, tmp_path):
    import pyiqa

    out = tmp_path / "scores.csv"
    result = bench("score", str(folder / "a.png"), str(folder / "*.bmp"),
                   "--checkpoint", str(checkpoint), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    image = read_image(folder / "a.png")[None]
    model = lifeiqa.load_checkpoint(checkpoint)
    metric = pyiqa.create_metric("lifeiqa", pretrained_model_path=str(checkpoint), device="cpu",
                                 model_name="lifeiqa_tiny")  # the name's architecture, overridden
    with torch.no_grad():
        direct = float(lifeiqa.score_images(model, image))
    assert rows[str(folder / "a.png")] == pytest.approx(direct, abs=1e-5)
    assert float(metric(image)) == pytest.approx(direct, abs=1e-5)
    assert len(rows) == 2


def test_interrupted_output_resumes_without_rescoring(bench, folder, checkpoint, tmp_path):
    out = tmp_path / "scores.csv"
    first = bench("score", str(folder / "a.png"), "--checkpoint", str(checkpoint), "--out", str(out))
    assert first.returncode == 0
    again = bench("score", str(folder), "--checkpoint", str(checkpoint), "--out", str(out))
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = bench("score", str(folder), "--checkpoint", str(checkpoint), "--out", str(out),
                    "--resume")
    assert "1 already there" in resumed.stdout
    rows = read_rows(out)
    assert len(rows) == 5 and list(rows).count(str(folder / "a.png")) == 1


def test_untrained_smoke_run_warns(bench, folder, tmp_path):
    out = tmp_path / "scores.csv"
    result = bench("score", str(folder / "c.bmp"), "--model", "lifeiqa_tiny", "--untrained",
                   "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "meaningless" in result.stderr
    missing = bench("score", str(folder / "c.bmp"), "--out", str(tmp_path / "x.csv"))
    assert missing.returncode == 2 and "no Life-IQA weights for 'lifeiqa'" in missing.stderr
    assert "--untrained" in missing.stderr


def test_a_model_name_scores_with_its_registered_weights(bench, monkeypatch, folder, tmp_path):
    """``--model NAME`` without ``--checkpoint`` loads the weights registered for NAME (or for
    the metric whose preset NAME is), exactly as ``--checkpoint`` with their file does."""
    monkeypatch.setenv("LIFEIQA_WEIGHTS_DIR", str(tmp_path / "weights"))
    model = lifeiqa.create_model("lifeiqa_effnet_lite0")
    file = lifeiqa.save_checkpoint(model, tmp_path / "effnet.safetensors",
                                   label_scale=LabelScale("native", 1.0, 5.0, True, "koniq10k"))
    image = str(folder / "c.bmp")
    unregistered = bench("score", image, "--model", "lifeiqa_effnet_lite0", "--out",
                         str(tmp_path / "none.csv"))
    assert unregistered.returncode == 2
    assert "no Life-IQA weights for 'lifeiqa_effnet_lite0'" in unregistered.stderr
    added = bench("weights", "add", str(file), "--name", "lifeiqa_effnet_lite0")
    assert added.returncode == 0, added.stderr
    by_file = bench("score", image, "--checkpoint", str(file), "--out", str(tmp_path / "f.csv"))
    assert by_file.returncode == 0, by_file.stderr
    by_name = bench("score", image, "--model", "lifeiqa_effnet_lite0", "--out",
                    str(tmp_path / "n.csv"))
    assert by_name.returncode == 0, by_name.stderr
    assert read_rows(tmp_path / "n.csv") == read_rows(tmp_path / "f.csv")
    other = bench("score", image, "--model", "lifeiqa_tiny", "--out", str(tmp_path / "t.csv"))
    assert other.returncode == 2 and "--model lifeiqa_tiny: no weights can be registered" in \
        other.stderr


def test_read_image_honours_exif_orientation(tmp_path):
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = 255  # left half white
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    tensor = read_image(tmp_path / "rotated.jpg")
    assert tensor.shape == (3, 40, 20)
    assert tensor[:, :10].mean() > 0.9 and tensor[:, 30:].mean() < 0.1
