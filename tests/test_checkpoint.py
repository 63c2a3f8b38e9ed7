import os
import pickle

import pytest
import torch

import lifeiqa
from lifeiqa import CheckpointError, LabelScale, WeightsError


@pytest.fixture
def trained_tiny():
    model = lifeiqa.create_model("lifeiqa_tiny", num_experts=3)
    with torch.no_grad():  # move away from the initialisation so a lost tensor would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


def test_save_then_load_is_bit_identical(trained_tiny, tmp_path):
    path = lifeiqa.save_checkpoint(trained_tiny, tmp_path / "m.safetensors",
                                   label_scale=LabelScale("native", 1.0, 5.0, True, "kadid10k"))
    loaded = lifeiqa.load_checkpoint(path)
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(x).score, trained_tiny(x).score)
    assert loaded.config == trained_tiny.config
    assert loaded.label_scale == {"kind": "native", "low": 1.0, "high": 5.0,
                                  "higher_is_better": True, "dataset": "kadid10k"}


def test_checkpoint_rebuilds_through_its_preset(trained_tiny, tmp_path):
    path = lifeiqa.save_checkpoint(trained_tiny, tmp_path / "m.safetensors")
    model = lifeiqa.create_model("lifeiqa_tiny", checkpoint=path, num_experts=3)
    assert model.config == trained_tiny.config


def test_config_mismatch_names_fields_and_matching_preset(tmp_path):
    model = lifeiqa.create_model("lifeiqa_tiny")
    path = lifeiqa.save_checkpoint(model, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError) as info:
        lifeiqa.create_model("lifeiqa_tiny", checkpoint=path, depth=3)
    message = str(info.value)
    assert "depth: preset has 3, checkpoint has 2" in message
    assert "lifeiqa_tiny" in message


def test_tensor_mismatch_against_embedded_config_is_named(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model = lifeiqa.create_model("lifeiqa_tiny")
    path = lifeiqa.save_checkpoint(model, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    del tensors["head.fc.bias"]
    tensors["head.extra"] = torch.zeros(1)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"missing: head\.fc\.bias.*unexpected: head\.extra"):
        lifeiqa.load_checkpoint(path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    model = lifeiqa.create_model("lifeiqa_tiny")
    path = lifeiqa.save_checkpoint(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"truncated\.safetensors: not a readable safetensors"):
        lifeiqa.load_checkpoint(truncated)
    foreign = tmp_path / "notes.safetensors"
    foreign.write_text("hello, not tensors")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        lifeiqa.load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        lifeiqa.load_checkpoint(tmp_path / "absent.safetensors")


class _WritesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"weight": _WritesAFile(str(marker))}, handle, protocol=2)
    with pytest.raises(WeightsError, match=r"weights-only"):
        lifeiqa.create_model("lifeiqa_tiny", checkpoint=path)
    assert not os.path.exists(marker)


def test_plain_state_dict_loads_with_a_preset(trained_tiny, tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": trained_tiny.state_dict()}, path)
    model = lifeiqa.create_model("lifeiqa_tiny", checkpoint=path, num_experts=3)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x).score, trained_tiny(x).score)
    with pytest.raises(CheckpointError, match="carries no model config"):
        lifeiqa.load_checkpoint(path)


def test_save_refuses_other_suffixes(trained_tiny, tmp_path):
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        lifeiqa.save_checkpoint(trained_tiny, tmp_path / "m.pth")
