"""``recipe.compile``: torch.compile of the training forward pass gives the eager outputs and
gradients. The equality tests trace with the ``aot_eager`` backend (Dynamo's graph capture and
AOT autograd's joint forward/backward graph, run by eager kernels): inductor's C++ compilation of
even the tiny model takes ~35 s cold on one CPU core, ~70 s for the whole model. The training
test runs the recipe's real torch.compile call, with the backend swapped for aot_eager through
Dynamo's backend override where this torch has one (else it compiles with inductor, slowly)."""

import contextlib
import copy

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

import lifeiqa
from harness.engine.train import train_frozen
from harness.plan.recipes import Recipe
from lifeiqa import BackboneFeatures


def tiny_without_dropout() -> lifeiqa.LifeIQA:
    """The tiny model in training mode without randomness (dropout, the backbone's drop path)."""
    torch.manual_seed(0)
    backbone = lifeiqa.get_spec("lifeiqa_tiny").config.backbone_kwargs
    return lifeiqa.create_model("lifeiqa_tiny", attn_dropout=0.0, expert_dropout=0.0,
                                head_dropout=0.0,
                                backbone_kwargs={**backbone, "drop_path_rate": 0.0}).train()


def loss_and_gradients(model: lifeiqa.LifeIQA, forward, inputs, targets: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    out = forward(inputs)
    loss = lifeiqa.LifeIQALoss()(out, targets)
    loss.backward()
    result = {"score": out.score, "aux_loss": out.aux_loss, "z_loss": out.z_loss, "loss": loss}
    result.update({f"grad:{n}": p.grad for n, p in model.named_parameters() if p.grad is not None})
    return result


def assert_same(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert found.keys() == expected.keys()
    assert sum(name.startswith("grad:") for name in expected) > 20
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_compiled_decoder_and_head_match_eager_in_one_graph():
    eager = tiny_without_dropout()
    with torch.no_grad():
        features = eager.forward_features(torch.rand(4, 3, 224, 224))
    targets = torch.rand(4)
    compiled = copy.deepcopy(eager)
    # fullgraph: no graph break (the MoE's "auto" dispatch stays dense while compiling)
    head = torch.compile(compiled.forward_head, backend="aot_eager", fullgraph=True)
    assert_same(loss_and_gradients(compiled, head, features, targets),
                loss_and_gradients(eager, eager.forward_head, features, targets))


@pytest.mark.slow
def test_compiled_whole_model_matches_eager():
    eager = tiny_without_dropout()
    x, targets = torch.rand(2, 3, 224, 224), torch.rand(2)
    compiled = copy.deepcopy(eager)
    forward = torch.compile(compiled, backend="aot_eager")
    assert_same(loss_and_gradients(compiled, forward, x, targets),
                loss_and_gradients(eager, eager, x, targets))


@pytest.mark.slow
def test_frozen_training_with_compile_matches_eager():
    torch.manual_seed(1)
    train = [BackboneFeatures(torch.randn(2, 49, 64), torch.randn(2, 128, 7, 7)) for _ in range(8)]
    test = [BackboneFeatures(torch.randn(1, 49, 64), torch.randn(1, 128, 7, 7)) for _ in range(3)]
    recipe = Recipe(name="compile-test", mode="frozen", epochs=1, warmup_epochs=0.0,
                    batch_size=8, lr=1e-3, model="lifeiqa_tiny")
    outcomes = []
    aot_eager = (torch._dynamo.config.patch(debug_backend_override=">=0:aot_eager")
                 if hasattr(torch._dynamo.config, "debug_backend_override")
                 else contextlib.nullcontext())
    compiled_frames = []
    for compile_step in (False, True):
        model = tiny_without_dropout()
        frames = counters["frames"]["ok"]
        with aot_eager:
            outcomes.append(train_frozen(model, recipe.override(compile=compile_step), train,
                                         np.linspace(0, 1, 8), test, np.zeros(3)))
        compiled_frames.append(counters["frames"]["ok"] - frames)
    assert compiled_frames[0] == 0 and compiled_frames[1] >= 1
    eager, compiled = outcomes
    assert eager.history[0]["steps"] == compiled.history[0]["steps"] == 2
    np.testing.assert_allclose(compiled.history[0]["loss"], eager.history[0]["loss"], rtol=1e-4)
    np.testing.assert_allclose(compiled.predictions, eager.predictions, rtol=1e-4, atol=1e-5)
