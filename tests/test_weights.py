"""Installed weights (lifeiqa.weights) and ``lifeiqa-bench weights``, on real checkpoint files."""

import json

import pytest
import torch

import lifeiqa
from harness.cli import main
from lifeiqa import CheckpointError, LabelScale, WeightsError, weights
from lifeiqa.errors import UnknownModelError
from lifeiqa.presets import matching_presets

PROVENANCE = {"dataset": "koniq10k", "split": "official", "split_source":
              "koniq10k_distributions_sets.csv:set", "parts": {"train": 7058, "val": 1000,
                                                                "test": 2015},
              "recipe": "authors_koniq10k", "model": "lifeiqa_effnet_lite0", "selection": "val",
              "selected_epoch": 7, "git_commit": "0123456789abcdef", "git_dirty": False,
              "test": {"srcc": 0.9123, "plcc": 0.9234, "n": 2015},
              "date": "2026-11-29T12:00:00+00:00"}


@pytest.fixture(autouse=True)
def own_caches(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(weights.CHECKPOINT_ENV, raising=False)


@pytest.fixture(scope="module")
def effnet(tmp_path_factory):
    """A lifeiqa_effnet_lite0 model (random weights) and its checkpoint with provenance."""
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_effnet_lite0").eval()
    path = lifeiqa.save_checkpoint(
        model, tmp_path_factory.mktemp("ckpt") / "koniq.safetensors",
        LabelScale("native", 0.0, 100.0, True, "koniq10k"), provenance=PROVENANCE)
    return model, path


def test_the_folder_is_the_override_else_beside_pyiqa_in_the_torch_hub(tmp_path, monkeypatch):
    assert weights.weights_dir() == tmp_path / "weights"
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV)
    assert weights.weights_dir() == tmp_path / "torch-home" / "hub" / "lifeiqa" / "weights"


def test_provenance_travels_in_the_header_and_reads_without_the_tensors(effnet):
    _, path = effnet
    info = lifeiqa.read_checkpoint_info(path)
    assert info.provenance == PROVENANCE
    assert info.label_scale == LabelScale("native", 0.0, 100.0, True, "koniq10k")
    assert info.config.backbone == "tf_efficientnet_lite0"
    assert lifeiqa.read_checkpoint(path).provenance == PROVENANCE


def test_add_list_show_remove_from_the_command_line(effnet, capsys):
    _, path = effnet
    assert main(["weights", "list"]) == 0
    assert "no weights registered" in capsys.readouterr().out
    assert main(["weights", "add", str(path), "--name", "lifeiqa_effnet_lite0"]) == 0
    assert "now loads it" in capsys.readouterr().out
    registered = weights.weights_dir() / "lifeiqa_effnet_lite0.safetensors"
    assert registered.read_bytes() == path.read_bytes()  # provenance and all, byte for byte

    assert main(["weights", "list"]) == 0
    listed = capsys.readouterr().out
    for shown in ("architecture: Life-IQA on tf_efficientnet_lite0 (preset lifeiqa_effnet_lite0)",
                  "dataset:      koniq10k",
                  "split:        official (koniq10k_distributions_sets.csv:set; 7058 train, "
                  "1000 val, 2015 test)",
                  "recipe:       authors_koniq10k", "selection:    val (epoch 7)",
                  "git commit:   0123456789ab", "SRCC 0.9123  PLCC 0.9234  (n=2015)",
                  "date:         2026-11-29T12:00:00+00:00", "label scale:  native 0-100"):
        assert shown in listed
    assert main(["weights", "show", "lifeiqa_effnet_lite0"]) == 0
    shown = capsys.readouterr().out
    assert '"selected_epoch": 7' in shown and "tf_efficientnet_lite0" in shown

    assert main(["weights", "add", str(path), "--name", "lifeiqa_effnet_lite0"]) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["weights", "add", str(path), "--name", "lifeiqa_effnet_lite0", "--replace"]) == 0
    assert main(["weights", "remove", "lifeiqa_effnet_lite0"]) == 0
    assert not registered.exists() and weights.list_weights() == []
    assert main(["weights", "show", "lifeiqa_effnet_lite0"]) == 2


def test_names_and_architectures_are_checked(effnet, tmp_path, capsys):
    _, path = effnet
    with pytest.raises(UnknownModelError, match="did you mean lifeiqa_swin_t"):
        weights.add_weights(path, "lifeiqa_swinn_t")
    with pytest.raises(CheckpointError) as info:
        weights.add_weights(path, "lifeiqa")
    message = str(info.value)
    assert "tf_efficientnet_lite0" in message and "swin_base_patch4_window7_224" in message
    assert main(["weights", "add", str(path)]) == 2  # --name defaults to lifeiqa
    assert "cannot serve under that name" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        weights.add_weights(broken, "lifeiqa_effnet_lite0")
    assert weights.list_weights() == []


def test_a_plain_state_dict_is_stored_with_the_names_preset(effnet, tmp_path):
    model, _ = effnet
    state = tmp_path / "authors.pth"
    torch.save(model.state_dict(), state)
    entry = weights.add_weights(state, "lifeiqa_effnet_lite0")
    assert entry.path.suffix == ".safetensors"
    assert matching_presets(entry.info.config) == ["lifeiqa_effnet_lite0"]
    images = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(lifeiqa.predict_image(lifeiqa.load_checkpoint(entry.path), images),
                                   lifeiqa.predict_image(model, images))
    assert json.loads(json.dumps(entry.provenance)) == {}
