import pytest
import torch

import lifeiqa
from lifeiqa import BackboneError, LifeIQAConfig, UnknownModelError


@pytest.fixture(scope="module")
def tiny():
    return lifeiqa.create_model("lifeiqa_tiny").eval()


def test_forward_returns_one_score_per_image_and_losses(tiny):
    out = tiny(torch.rand(3, 3, 224, 224))
    assert isinstance(out, lifeiqa.LifeIQAOutput)
    assert out.score.shape == (3,)
    assert out.aux_loss.ndim == 0 and out.z_loss.ndim == 0
    assert out.aux_loss > 0 and out.z_loss > 0


def test_cached_features_path_equals_full_forward(tiny):
    x = torch.rand(2, 3, 224, 224)
    features = tiny.forward_features(x)
    assert features.pooled.shape == (2, 49, 64)  # tiny Swin: stage 3 has 64 channels
    torch.testing.assert_close(tiny.forward_head(features).score, tiny(x).score)


def test_training_step_reaches_every_parameter():
    model = lifeiqa.create_model("lifeiqa_tiny").train()
    out = model(torch.rand(2, 3, 224, 224))
    loss = lifeiqa.LifeIQALoss()(out, torch.tensor([0.3, 0.7]))
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_loss_is_smooth_l1_plus_weighted_moe_losses(tiny):
    out = tiny(torch.rand(2, 3, 224, 224))
    target = torch.tensor([0.0, 3.0])
    expected = (torch.nn.functional.smooth_l1_loss(out.score, target)
                + 0.01 * out.aux_loss + 0.001 * out.z_loss)
    torch.testing.assert_close(lifeiqa.LifeIQALoss()(out, target), expected)


@pytest.mark.parametrize("ablation", sorted(lifeiqa.ABLATIONS))
def test_every_ablation_builds_and_scores(ablation):
    model = lifeiqa.create_model("lifeiqa_tiny", ablation=ablation).eval()
    assert model(torch.rand(2, 3, 224, 224)).score.shape == (2,)


def test_ablations_change_the_structure_they_name():
    def names(ablation):
        model = lifeiqa.create_model("lifeiqa_tiny", ablation=ablation)
        return {n.split(".weight")[0] for n, _ in model.named_parameters()}

    full = names("full")
    assert any(".mixer.convs." in n for n in full)
    assert not any(".mixer" in n for n in names("no_gcn"))
    assert any(".mixer.attn" in n for n in names("gcn_to_mha"))
    assert not any("head.mixture" in n for n in names("no_moe"))
    ffn = names("moe_to_ffn")
    assert "head.mixture.fc1" in ffn and not any("router" in n for n in ffn)
    assert "memory_proj" not in names("no_stage3_kv") and "memory_proj" in full
    assert any("self_attn" in n and "multihead_attn" not in n for n in names("vanilla_decoder"))


def test_gamma_placement_paper_scales_the_bypass():
    code = lifeiqa.create_model("lifeiqa_tiny").eval()
    paper = lifeiqa.create_model("lifeiqa_tiny", gamma_placement="paper").eval()
    paper.load_state_dict(code.state_dict())
    h = torch.randn(2, 6, 24)
    normed = code.head.norm(h)
    mixed = code.head.mixture(normed).tokens
    gamma = code.head.gamma
    expected_code = code.head.fc(normed + gamma * mixed).squeeze(-1).mean(-1)
    expected_paper = code.head.fc(gamma * normed + mixed).squeeze(-1).mean(-1)
    torch.testing.assert_close(code.head(h).tokens, expected_code)
    torch.testing.assert_close(paper.head(h).tokens, expected_paper)


def test_any_timm_backbone_with_two_stages_works():
    for backbone in ("resnet18", "convnext_atto"):
        model = lifeiqa.create_model("lifeiqa_tiny", backbone=backbone, backbone_kwargs={}).eval()
        assert model(torch.rand(1, 3, 160, 192)).score.shape == (1,)


def test_normalisation_comes_from_the_backbone_config():
    effnet = lifeiqa.LifeIQA(LifeIQAConfig(backbone="tf_efficientnet_lite0", depth=1))
    assert effnet.config.input_mean == (0.5, 0.5, 0.5)
    tiny = lifeiqa.create_model("lifeiqa_tiny")
    assert tiny.config.input_mean == pytest.approx((0.485, 0.456, 0.406))


def test_model_follows_dtype_and_device_moves():
    model = lifeiqa.create_model("lifeiqa_tiny").eval().to(torch.float64)
    out = model(torch.rand(1, 3, 224, 224, dtype=torch.float64))
    assert out.score.dtype == torch.float64


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.rand(3, 224, 224), "expected a 4-D tensor"),
        (torch.rand(1, 1, 224, 224), r"expected 3 \(RGB\) channels"),
        (torch.randint(0, 255, (1, 3, 224, 224), dtype=torch.uint8), "floating-point"),
        (torch.rand(1, 3, 224, 224) * 255, r"0-255 pixel values"),
        (torch.rand(1, 3, 200, 224), "takes 224x224 crops, found 200x224"),
    ],
)
def test_bad_input_is_named(tiny, tensor, message):
    with pytest.raises(ValueError, match=message):
        tiny(tensor)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(UnknownModelError, match="did you mean lifeiqa_swin_b"):
        lifeiqa.create_model("lifeiqa_swinb")


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(BackboneError, match="resnet18"):
        lifeiqa.create_model("lifeiqa_tiny", backbone="resnet_18", backbone_kwargs={})


def test_backbone_with_one_stage_is_refused():
    with pytest.raises(BackboneError, match="two"):
        lifeiqa.create_model("lifeiqa_tiny", backbone_kwargs={
            "embed_dim": 16, "depths": (1,), "num_heads": (1,)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_heads": 5}, "not divisible"),
        ({"top_k": 9}, "exceeds num_experts"),
        ({"adjacency": "dense"}, "expected one of"),
        ({"depth": 0}, "positive integer"),
        ({"no_such_field": 1}, "unknown LifeIQAConfig field"),
    ],
)
def test_bad_config_is_named(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        lifeiqa.create_model("lifeiqa_tiny", **change)


def test_list_models_has_the_presets():
    names = lifeiqa.list_models()
    for dataset in ("live", "csiq", "tid2013", "kadid10k", "livec", "koniq10k", "spaq"):
        assert f"lifeiqa_swin_b_{dataset}" in names
    assert {"lifeiqa_swin_b", "lifeiqa_swin_t", "lifeiqa_effnet_lite0", "lifeiqa_tiny"} <= set(names)
    assert lifeiqa.list_models("*effnet*") == ["lifeiqa_effnet_lite0", "lifeiqa_effnet_lite0_small"]
    assert lifeiqa.get_spec("lifeiqa_swin_b_livec").config.num_experts == 2


def test_import_lifeiqa_does_not_import_harness():
    import subprocess
    import sys

    code = "import sys, lifeiqa; print('harness' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
