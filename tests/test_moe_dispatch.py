"""The MoE's sparse top-k dispatch equals its dense one (outputs, losses, every gradient), keeps
the parameters, and is chosen by ``moe_dispatch`` (``auto``: by device and size)."""

import pytest
import torch

import lifeiqa
from lifeiqa import LifeIQAConfig
from lifeiqa.layers import SparseMoE, sparse_dispatch_pays
from lifeiqa.presets import get_spec, matching_presets


def twin_moes(dim: int, hidden: int, experts: int, top_k: int, dropout: float = 0.0
              ) -> tuple[SparseMoE, SparseMoE]:
    dense = SparseMoE(dim, hidden, experts, top_k, dropout, dispatch="dense")
    sparse = SparseMoE(dim, hidden, experts, top_k, dropout, dispatch="sparse")
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def outputs_and_gradients(moe: SparseMoE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = moe(x)
    # a loss that weighs every output element differently, so each gradient path is exercised
    probe = torch.linspace(-1, 1, out.tokens.numel()).view_as(out.tokens)
    ((out.tokens * probe).sum() + out.aux_loss + out.z_loss).backward()
    result = {"tokens": out.tokens, "aux_loss": out.aux_loss, "z_loss": out.z_loss,
              "grad:x": x.grad}
    for name, param in moe.named_parameters():
        assert param.grad is not None, name
        result[f"grad:{name}"] = param.grad
    return result


@pytest.mark.parametrize("experts,top_k,shape", [(5, 2, (3, 6, 16)), (8, 2, (4, 16)),
                                                 (4, 3, (2, 6, 16)), (4, 1, (7, 16))])
def test_sparse_dispatch_equals_dense_in_outputs_losses_and_gradients(experts, top_k, shape):
    torch.manual_seed(0)
    dense, sparse = twin_moes(16, 32, experts, top_k, dropout=0.1)
    dense.eval(), sparse.eval()
    x = torch.randn(shape)
    expected, found = outputs_and_gradients(dense, x), outputs_and_gradients(sparse, x)
    assert expected.keys() == found.keys()
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)


def test_an_expert_no_token_chooses_gets_the_same_zero_gradient_in_both():
    torch.manual_seed(1)
    dense, sparse = twin_moes(16, 32, 4, 2)
    for moe in (dense, sparse):
        with torch.no_grad():
            moe.router.bias[3] = -1e4  # expert 3 is never in a top 2 of 4
    x = torch.randn(2, 6, 16)
    assert not dense.route(x)[1][..., 3].any()
    expected, found = outputs_and_gradients(dense, x), outputs_and_gradients(sparse, x)
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)
    unused = [name for name in found if name.startswith("grad:experts.3.")]
    assert len(unused) == 4 and all((found[name] == 0).all() for name in unused)


@pytest.mark.parametrize("dispatch", ["dense", "sparse"])
def test_expert_dropout_applies_in_training_on_both_paths(dispatch):
    torch.manual_seed(2)
    x = torch.randn(4, 6, 16)
    moe = SparseMoE(16, 64, 4, 2, dropout=0.5, dispatch=dispatch)
    evaluated = moe.eval()(x).tokens
    trained = moe.train()(x).tokens
    assert not torch.allclose(trained, evaluated, atol=1e-4)
    moe.experts.apply(lambda m: setattr(m, "p", 0.0) if isinstance(m, torch.nn.Dropout) else None)
    torch.testing.assert_close(moe.train()(x).tokens, evaluated)


def test_dispatch_keeps_the_parameters_and_state_dict():
    dense, sparse = twin_moes(16, 32, 4, 2)
    assert list(dense.state_dict()) == list(sparse.state_dict())
    assert sum(p.numel() for p in dense.parameters()) == sum(p.numel() for p in sparse.parameters())
    models = {d: lifeiqa.create_model("lifeiqa_tiny", moe_dispatch=d) for d in ("dense", "sparse")}
    assert list(models["dense"].state_dict()) == list(models["sparse"].state_dict())
    assert models["dense"].config == models["sparse"].config  # the same architecture


def test_whole_model_gradients_agree_across_dispatch():
    torch.manual_seed(3)
    dense = lifeiqa.create_model("lifeiqa_tiny", moe_dispatch="dense").eval()
    sparse = lifeiqa.create_model("lifeiqa_tiny", moe_dispatch="sparse").eval()
    sparse.load_state_dict(dense.state_dict())
    with torch.no_grad():
        features = dense.forward_features(torch.rand(5, 3, 224, 224))
    targets = torch.rand(5)
    grads = []
    for model in (dense, sparse):
        out = model.forward_head(features)
        lifeiqa.LifeIQALoss()(out, targets).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("mixture.experts" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_auto_picks_sparse_on_cpu_where_measured_faster_and_dense_elsewhere():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    small = get_spec("lifeiqa_effnet_lite0_small").config
    swin_b = get_spec("lifeiqa_swin_b").config

    def pays(config: LifeIQAConfig, tokens: int, device: torch.device = cpu) -> bool:
        return sparse_dispatch_pays(device, tokens, config.embed_dim, config.expert_hidden_dim,
                                    config.num_experts, config.top_k)

    assert pays(small, 64 * 6) and pays(swin_b, 64 * 6) and pays(swin_b, 6)
    assert not pays(get_spec("lifeiqa_tiny").config, 16 * 6)  # measured 0.93x
    assert not pays(swin_b.replace(top_k=8), 64 * 6)  # k = E: nothing skipped
    assert not pays(swin_b, 64 * 6, cuda)  # host sync and dynamic shapes; not measured faster
    moe = SparseMoE(192, 768, 4, 2, 0.0)
    assert moe.dispatch == "auto"
    assert moe.uses_sparse_dispatch(torch.zeros(64, 6, 192))
    assert not moe.uses_sparse_dispatch(torch.zeros(1, 1, 192))


def test_moe_dispatch_is_validated_and_not_part_of_the_architecture():
    with pytest.raises(ValueError, match=r"moe_dispatch='fast'.*'auto', 'dense', 'sparse'"):
        LifeIQAConfig(moe_dispatch="fast")
    with pytest.raises(ValueError, match="dispatch='fast'"):
        SparseMoE(8, 16, 4, 2, 0.0, dispatch="fast")
    config = get_spec("lifeiqa_tiny").config
    sparse = config.replace(moe_dispatch="sparse")
    assert sparse == config and sparse.differences(config) == {}
    assert "lifeiqa_tiny" in matching_presets(sparse)
    assert LifeIQAConfig.from_dict(sparse.to_dict()).moe_dispatch == "sparse"


def test_checkpoint_loads_with_the_requested_dispatch(tmp_path):
    path = tmp_path / "tiny.safetensors"
    lifeiqa.save_checkpoint(lifeiqa.create_model("lifeiqa_tiny"), path)
    model = lifeiqa.create_model("lifeiqa_tiny", checkpoint=path, moe_dispatch="sparse")
    assert model.head.mixture.dispatch == "sparse"
