"""Shallow stages in the keys/values (a Life-IQA configuration and its ablation rows): the config,
the model, the feature cache, parameter counts and the ablation rows, end to end."""

import json

import pytest
import torch
from commands import bench
from safetensors import safe_open
from safetensors.torch import save_file

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.data.synth.generate import synthesize
from harness.engine.features import CropPlan, FeatureCache, StageExtractor, tensor_checksum
from harness.engine.train import predict_features
from harness.plan.protocols import load_protocol
from lifeiqa import BackboneFeatures, LifeIQAConfig
from lifeiqa.layers import PartitionAvgPool

SWIN_B_FULL = 99_678_146  # tests/test_parameter_parity.py: the authors' model
SWIN_B_STAGE_CHANNELS = {1: 128, 2: 256}  # Swin-B's stage widths
SWIN_B_DIM = 384


def test_config_validates_and_canonicalises_the_stages():
    assert LifeIQAConfig(extra_kv_stages=[2, 1]).extra_kv_stages == (1, 2)
    for bad in ((3,), (0,), (1, 1)):
        with pytest.raises(ValueError, match="extra_kv_stages"):
            LifeIQAConfig(extra_kv_stages=bad)
    config = LifeIQAConfig(extra_kv_stages=(2,))
    assert LifeIQAConfig.from_dict(json.loads(config.to_json())) == config
    # a config written before the field existed reads as the paper's model
    old = {k: v for k, v in LifeIQAConfig().to_dict().items() if k != "extra_kv_stages"}
    assert LifeIQAConfig.from_dict(old).extra_kv_stages == ()


def test_shallow_tokens_are_the_partition_averaged_stages_projected_and_appended():
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny", ablation="stage1_kv").eval()
    default = lifeiqa.create_model("lifeiqa_tiny").eval()
    default.backbone.load_state_dict(model.backbone.state_dict())
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        features = model.forward_features(x)
        stage1 = model.backbone((x - model.input_mean) / model.input_std)[0]
        plain = default.forward_features(x)
    assert stage1.shape[-1] == 56 and features.shallow.shape == (2, 49, stage1.shape[1])
    torch.testing.assert_close(features.shallow, PartitionAvgPool(7)(stage1))
    # the two deepest stages are what the default model computes from the same weights
    torch.testing.assert_close(features.pooled, plain.pooled)
    torch.testing.assert_close(features.deepest, plain.deepest)
    assert plain.shallow is None
    stage3 = model.memory_proj(features.pooled)
    memory = model.with_shallow_tokens(stage3, features)
    assert memory.shape == (2, 98, model.config.embed_dim)
    torch.testing.assert_close(memory[:, :49], stage3)
    torch.testing.assert_close(memory[:, 49:], model.shallow_proj[0](features.shallow))
    with pytest.raises(ValueError, match="carry none"):
        model.forward_head(BackboneFeatures(features.pooled, features.deepest))


def test_both_shallow_stages_split_by_channels():
    model = lifeiqa.create_model("lifeiqa_tiny", extra_kv_stages=(1, 2)).eval()
    assert model.backbone.reductions == (4, 8, 16, 32)
    assert [p.in_features for p in model.shallow_proj] == list(model.shallow_channels)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224))
    assert torch.isfinite(out.score).all()


def test_backbone_features_cat_and_map_keep_the_optional_field():
    a = BackboneFeatures(torch.zeros(2, 4, 3), torch.zeros(2, 5, 1, 1), torch.ones(2, 4, 6))
    b = BackboneFeatures(torch.ones(1, 4, 3), torch.ones(1, 5, 1, 1), torch.zeros(1, 4, 6))
    joined = BackboneFeatures.cat([a, b])
    assert [t.shape[0] for t in joined] == [3, 3, 3]
    assert joined.map(lambda t: t[1:]).shallow.sum() == 4 * 6
    plain = BackboneFeatures.cat([a[:2], b[:2]])
    assert plain.shallow is None and plain.map(lambda t: t * 2).shallow is None


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.slow
def test_parameter_counts_of_the_new_rows_on_swin_b():
    """Each shallow stage adds one Linear(C_k, d); the learnable adjacency one N x N matrix per
    graph convolution (3 per layer, 4 layers, N = 6); the paper's model is unchanged."""
    counts = {name: trainable(lifeiqa.create_model("lifeiqa_swin_b", pretrained=False,
                                                   ablation=name))
              for name in ("full", "stage2_kv", "stage1_kv", "learnable_adjacency")}
    assert counts["full"] == SWIN_B_FULL
    for stage in (1, 2):
        linear = SWIN_B_STAGE_CHANNELS[stage] * SWIN_B_DIM + SWIN_B_DIM
        assert counts[f"stage{stage}_kv"] == SWIN_B_FULL + linear
    assert counts["learnable_adjacency"] == SWIN_B_FULL + 4 * 3 * 6 * 6


def test_the_paper_model_has_no_shallow_keys_in_its_state_dict():
    model = lifeiqa.create_model("lifeiqa_tiny")
    assert not any(k.startswith("shallow_proj") for k in model.state_dict())
    assert any(k.startswith("shallow_proj.0.")
               for k in lifeiqa.create_model("lifeiqa_tiny", ablation="stage2_kv").state_dict())


def test_one_backbone_pass_serves_the_model_its_ablations_and_the_probes(tmp_path):
    root = synthesize("kadid10k", tmp_path / "synth", "tiny", 0)
    records = load_dataset("kadid10k", root).records[:2]
    images = DecodedImageCache(tmp_path / "images")
    plan = CropPlan(train_crops=2, test_crops=2, crop_size=224, resize_policy="native")
    torch.manual_seed(0)
    plain = lifeiqa.create_model("lifeiqa_tiny").eval()
    fused = lifeiqa.create_model("lifeiqa_tiny", ablation="stage2_kv").eval()
    fused.backbone.load_state_dict(plain.backbone.state_dict())
    plain_cache = FeatureCache(tmp_path / "features", plain, plan, images)
    assert all(f.shallow is None for f in plain_cache.get_all(records, "test"))
    fused_cache = FeatureCache(tmp_path / "features", fused, plan, images)
    probes = FeatureCache(tmp_path / "features", plain, plan, images, extractor=StageExtractor(plain))
    # one entry per image and part for every consumer of this backbone, written by the first
    assert fused_cache.folder == plain_cache.folder == probes.folder
    features = fused_cache.get_all(records, "test")
    assert sorted(probes.get(records[0], "test")) == ["s16", "s32", "s4", "s8"]
    assert fused_cache.extractor._body is None and probes.extractor._body is None  # never ran
    assert all(f.shallow is not None and f.shallow.shape == (2, 49, 32) for f in features)
    # a file without the tensors a view reads is rebuilt, never trusted
    path = fused_cache._path(images.digest(records[1].path), "test")
    with safe_open(str(path), "pt") as handle:
        kept = {name: handle.get_tensor(name) for name in handle.keys() if name != "shallow2"}  # noqa: SIM118
    save_file(kept, str(path), metadata={"blake2b": tensor_checksum(kept)})
    fresh = FeatureCache(tmp_path / "features", fused, plan, images)
    assert fresh.get(records[1], "test").shallow is not None and fresh.rebuilt == [str(path)]
    cached = predict_features(fused, fresh.get_all(records, "test"), torch.device("cpu"))
    with torch.no_grad():
        direct = [float(fused(fresh.crops(r, "test")).score.mean()) for r in records]
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(direct), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_ablation_protocol_lists_the_rows_and_they_train_end_to_end(tmp_path):
    assert {"stage2_kv", "stage1_kv", "learnable_adjacency"} <= set(load_protocol("ablation").variants)
    protocol = tmp_path / "fusion.yaml"
    protocol.write_text("name: fusion\nversion: '1'\nkind: splits\nsplits: 1\n"
                        "synthetic_datasets: [synth-kadid10k]\n"
                        "variants: [full, stage2_kv, stage1_kv, learnable_adjacency]\n")
    run = bench("run", "--protocol", str(protocol), "--runs", str(tmp_path / "runs"),
                "--model", "lifeiqa_tiny", "--synth-size", "tiny", "--set", "epochs=1",
                "--set", "train_crops=2", "--set", "test_crops=2", "--set", "batch_size=32",
                cache=tmp_path / "cache")
    assert run.returncode == 0, run.stdout + run.stderr
    configs = {p.parent.parent.parent.name: json.loads(p.read_text())["model_config"]
               for p in (tmp_path / "runs").rglob("result.json")}
    assert configs["lifeiqa_tiny+stage1_kv"]["extra_kv_stages"] == [1]
    assert configs["lifeiqa_tiny+learnable_adjacency"]["adjacency"] == "learnable"
    assert len(configs) == 4
    # stage 1 of lifeiqa_tiny has 16 channels, embed_dim 24: one Linear(16, 24) more
    added = configs["lifeiqa_tiny+stage1_kv"]["parameters"] - configs["lifeiqa_tiny"]["parameters"]
    assert added == 16 * 24 + 24
    assert configs["lifeiqa_tiny+stage2_kv"]["head_parameters"] \
        - configs["lifeiqa_tiny"]["head_parameters"] == 32 * 24 + 24
    board = bench("leaderboard", "fusion", "--runs", str(tmp_path / "runs"),
                  "--out", str(tmp_path / "board"))
    assert board.returncode == 0, board.stderr
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    total = configs["lifeiqa_tiny+stage1_kv"]["parameters"]
    table = text.split("**Parameters**")[1]
    row = next(line for line in table.splitlines() if "lifeiqa_tiny+stage1_kv " in line)
    assert f"| {total:,} " in row
