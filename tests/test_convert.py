import pytest
import torch
from official_layout import official_forward, official_state_dict

import lifeiqa
from lifeiqa import CheckpointError


@pytest.fixture(scope="module")
def official():
    return official_state_dict(seed=3)


def test_authors_layout_loads_and_reproduces_their_forward(official, tmp_path):
    path = tmp_path / "authors.pth"
    torch.save(official, path)
    model = lifeiqa.create_model("lifeiqa_tiny", checkpoint=path).eval()
    images = torch.rand(3, 3, 224, 224)
    with torch.no_grad():
        expected = official_forward(official, images)
        ours = model(images).score
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_unmatched_and_missing_keys_are_reported_by_name(official):
    model = lifeiqa.create_model("lifeiqa_tiny")
    broken = dict(official)
    broken["bunch_decoder.layers.0.extra_thing.weight"] = torch.zeros(3)
    del broken["fc.bias"]
    with pytest.raises(CheckpointError) as info:
        lifeiqa.convert_official_state_dict(broken, model)
    message = str(info.value)
    assert "bunch_decoder.layers.0.extra_thing.weight" in message
    assert "head.fc.bias" in message


def test_disagreeing_backbone_copies_are_reported(official):
    model = lifeiqa.create_model("lifeiqa_tiny")
    broken = dict(official)
    broken["backbone_stages.0.0.proj.weight"] = broken["backbone_stages.0.0.proj.weight"] + 1
    with pytest.raises(CheckpointError, match=r"backbone_stages\.0\.0\.proj\.weight"):
        lifeiqa.convert_official_state_dict(broken, model)


def test_backbone_stages_copy_alone_suffices(official):
    model = lifeiqa.create_model("lifeiqa_tiny")
    stages_only = {k: v for k, v in official.items() if not k.startswith("pretrain_model.")}
    converted = lifeiqa.convert_official_state_dict(stages_only, model)
    assert set(converted) == set(model.state_dict())


def test_a_wrong_architecture_is_refused_with_shapes(official, tmp_path):
    path = tmp_path / "authors.pth"
    torch.save(official, path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        lifeiqa.create_model("lifeiqa_tiny", checkpoint=path, embed_dim=48, gcn_hidden_dims=(24, 12))
