"""Section 6, decoder training on cached features: one optimiser step of the decoder and head
(the frozen-backbone protocols' whole training cost), as first written and with each change
that made it leaner, applied one after another and timed side by side.

The first variant rebuilds the step as it was: torch's ``nn.MultiheadAttention`` forward (which
transposes batch-first input and copies the packed keys and values apart), the 1x1 query
projection over every deepest-stage token, AdamW with one set of kernels per tensor, and all
experts run densely. Each later row adds one change; the last is the library as it is.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
from torch import nn

import lifeiqa
from harness.engine.train import fused_adamw_applies
from harness.speed.report import Table
from harness.speed.sizes import Bench
from lifeiqa import BackboneFeatures, LifeIQA, LifeIQALoss
from lifeiqa.layers import MultiheadAttention, SparseMoE

# (row, what it adds); each row keeps the changes of the rows above it
CHANGES = (
    ("reference", "torch MHA forward, query projection of every token, per-tensor AdamW, dense experts"),
    ("+ batch-first attention", "one key/value projection viewed in place, scaled_dot_product_attention"),
    ("+ mean-projected queries", "the 1x1 projection of the deepest tokens' mean, not of each token"),
    ("+ fused AdamW", "one optimiser kernel over all parameters (where the library fuses: "
                      "harness.engine.train.fused_adamw_applies says when)"),
    ("+ expert dispatch auto", "the MoE's dispatch as SparseMoE chooses it (the library as it is)"),
)


def _torch_attention(attention: MultiheadAttention, query: torch.Tensor,
                     memory: torch.Tensor) -> torch.Tensor:
    return nn.MultiheadAttention.forward(attention, query, memory, memory, need_weights=False)[0]


def _token_projected_head(model: LifeIQA, features: BackboneFeatures) -> lifeiqa.LifeIQAOutput:
    """``forward_head`` with the query projection applied to every deepest token, then averaged
    (the same function: the mean of a 1x1 convolution is the convolution of the mean)."""
    tokens = model.query_proj(features.deepest).flatten(2).transpose(1, 2)
    assert model.memory_proj is not None  # the presets section 6 times all take the stage-3 path
    memory = model.with_shallow_tokens(model.memory_proj(features.pooled), features)
    decoded = model.decoder(model.query_embed + tokens.mean(dim=1, keepdim=True), memory)
    return lifeiqa.LifeIQAOutput(*model.head(decoded))


def configure(model: LifeIQA, stage: int) -> None:
    """Put ``model`` in the state of row ``stage`` of :data:`CHANGES` (0 = reference); the
    optimiser (row 3) is the caller's."""
    for module in model.modules():
        if isinstance(module, MultiheadAttention):
            if stage < 1:
                # the earlier rows patch instance methods (the else branches undo it); mypy forbids that
                module.forward = types.MethodType(_torch_attention, module)  # type: ignore[method-assign]
            else:
                module.__dict__.pop("forward", None)
        if isinstance(module, SparseMoE):
            module.dispatch = "dense" if stage < 4 else model.config.moe_dispatch
    if stage < 2:
        model.forward_head = types.MethodType(_token_projected_head, model)  # type: ignore[method-assign]
    else:
        model.__dict__.pop("forward_head", None)


def training_step(model: LifeIQA, features: BackboneFeatures, targets: torch.Tensor,
                  fused: bool) -> Callable[[], None]:
    """One step (forward, the training loss, backward, AdamW) on the same batch each call;
    ``fused``: AdamW's fused kernel where the library would use it."""
    params = [p for name, p in model.named_parameters() if not name.startswith("backbone.")]
    optimizer = torch.optim.AdamW(params, lr=1e-4,
                                  fused=(fused and fused_adamw_applies(params)) or None)
    loss_fn = LifeIQALoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model.forward_head(features), targets).backward()
        optimizer.step()

    return step


def head_flops_per_crop(model: LifeIQA, features: BackboneFeatures, targets: torch.Tensor) -> float:
    """Forward and backward FLOPs of the decoder and head per crop (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        LifeIQALoss()(model.forward_head(features), targets).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops() / targets.shape[0])


def decoder_training(bench: Bench) -> Table:
    device = bench.device
    rows = []
    for preset, crop, batch in bench.sizes.decoder_steps:
        model = bench.model(preset)
        with torch.no_grad():
            model.eval()
            features = model.forward_features(torch.rand(batch, 3, crop, crop, device=device))
        features = features.map(lambda t: t.float().contiguous())
        targets = torch.rand(batch, device=device)
        model.train()
        # one model per row, with the same initial weights: each keeps its own optimiser state
        variants = {}
        for stage, (name, _) in enumerate(CHANGES):
            copy = bench.model(preset)
            copy.load_state_dict(model.state_dict())
            copy.train()
            configure(copy, stage)
            variants[name] = training_step(copy, features, targets, fused=stage >= 3)
        times = bench.median_times(variants)
        configure(model, len(CHANGES) - 1)
        flops = head_flops_per_crop(model, features, targets)
        base = times[CHANGES[0][0]]
        for name, _ in CHANGES:
            rows.append({"preset": preset, "crop": crop, "batch": batch, "variant": name,
                         "ms_per_crop": 1e3 * times[name] / batch,
                         "speedup": base / times[name],
                         "gflop_per_crop": flops / 1e9 if name == CHANGES[-1][0] else None,
                         "gflop_per_s": (flops * batch / times[name] / 1e9
                                         if name == CHANGES[-1][0] else None)})
    return Table(tuple(rows), (
        "one optimiser step of the decoder and head on a fixed batch of cached backbone features "
        "(forward, the training loss, backward, AdamW; no clipping, no schedule); random weights, "
        "fp32; each row adds one change to the row above it:",
        *(f"{name}: {what}" for name, what in CHANGES),
        "gflop_per_crop: forward and backward FLOPs of the library's step (torch's flop counter: "
        "matrix products and attention); gflop_per_s: what the step achieves of them"))
