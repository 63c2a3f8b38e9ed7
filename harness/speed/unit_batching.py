"""Section 7, units per loop: the decoder training steps of several units (each its own decoder
and head, seed and batch) run one after another, as the executors run them, against the same
steps as one batched computation, the units' parameters stacked and ``torch.func.vmap`` over
them, with the FLOP/s each achieves.

Why the harness trains units one at a time: on a CPU the step is bound by its matrix products,
which run near a bare matmul's FLOP/s (this section prints both), so stacking units adds no
speed while it costs the sparse expert dispatch (vmap needs the dense one: the sparse path's
shapes depend on the routing) and the fused attention kernel (vmap has no CPU rule for it, so
the batched steps take the composite one). On a GPU, where a small decoder's step is
launch-bound, the same rows show what batching would buy.

Both variants skip gradient clipping (a per-unit norm) and the schedule, as section 6 does, and
run without dropout.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.engine.train import fused_adamw_applies
from harness.speed.decoder_training import head_flops_per_crop, training_step
from harness.speed.report import Table
from harness.speed.sizes import Bench
from lifeiqa import BackboneFeatures, LifeIQA, LifeIQALoss
from lifeiqa.layers import SparseMoE


def without_dropout(model: LifeIQA) -> LifeIQA:
    """``model`` with every dropout off, so both variants draw no random numbers (vmap would
    draw its own per unit) and train alike."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def one_at_a_time(models: list[LifeIQA], batches: list[BackboneFeatures],
                  targets: list[torch.Tensor]) -> Callable[[], None]:
    """Each unit's step in turn (section 6's step: forward, the training loss, backward, AdamW)."""
    steps = [training_step(m, f, t, fused=True)
             for m, f, t in zip(models, batches, targets, strict=True)]

    def step() -> None:
        for unit_step in steps:
            unit_step()

    return step


class BatchedSteps:
    """The units' steps as one: parameters stacked along a unit axis, the forward and loss
    vmapped over it, the summed loss backpropagated (each unit's gradient is its own, the units
    sharing no parameter), one AdamW over the stacked tensors (elementwise, so per unit).
    Starts from the models' parameters as they are when built; leaves the models unchanged."""

    def __init__(self, models: list[LifeIQA], batches: list[BackboneFeatures],
                 targets: list[torch.Tensor]) -> None:
        trained = [name for name, _ in models[0].named_parameters()
                   if not name.startswith("backbone.")]  # the frozen backbone is not stepped
        self.stacked = {name: torch.stack([m.get_parameter(name).detach() for m in models])
                        .requires_grad_() for name in trained}
        self.features = BackboneFeatures._make(None if parts[0] is None else torch.stack(parts)
                                               for parts in zip(*batches, strict=True))
        self.targets = torch.stack(targets)
        stacked = list(self.stacked.values())
        self.optimizer = torch.optim.AdamW(stacked, lr=1e-4,
                                           fused=fused_adamw_applies(stacked) or None)
        # a functional copy of one unit whose forward is the cached-feature path, its experts
        # run densely (the sparse dispatch's shapes depend on the routing: vmap cannot batch it)
        self.base = copy.deepcopy(models[0])
        # an instance's forward replaced by another signature, which mypy forbids
        self.base.forward = self.base.forward_head  # type: ignore[method-assign, assignment]
        for module in self.base.modules():
            if isinstance(module, SparseMoE):
                module.dispatch = "dense"
        loss_fn = LifeIQALoss()

        def unit_loss(params: dict[str, torch.Tensor], features: BackboneFeatures,
                      target: torch.Tensor) -> torch.Tensor:
            output = torch.func.functional_call(self.base, params, (features,), strict=False)
            loss: torch.Tensor = loss_fn(output, target)
            return loss

        # the unit axis is the first of every tensor; an absent field (no shallow stages) has none
        unit_axes = BackboneFeatures._make(None if t is None else 0 for t in self.features)
        self.losses = torch.func.vmap(unit_loss, in_dims=(0, unit_axes, 0))

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        # attention by its composite (math) kernel, which vmap batches; the fused CPU kernel has
        # no batching rule and would run unit by unit
        with sdpa_kernel(SDPBackend.MATH):
            self.losses(self.stacked, self.features, self.targets).sum().backward()
        self.optimizer.step()

    def unit_parameters(self, unit: int) -> dict[str, torch.Tensor]:
        """Unit ``unit``'s trainable parameters as the batched steps have left them."""
        return {name: tensor[unit].detach() for name, tensor in self.stacked.items()}


def unit_batching(bench: Bench) -> Table:
    device = bench.device
    preset, crop, batch = bench.sizes.decoder_steps[-1]  # the demo's decoder and batch
    with torch.no_grad():
        reference = bench.model(preset).eval()
        features = reference.forward_features(torch.rand(batch, 3, crop, crop, device=device))
    rows = []
    for units in bench.sizes.unit_counts:
        models = []
        for unit in range(units):
            torch.manual_seed(unit)  # each unit its own initial weights, as its seed gives
            models.append(without_dropout(bench.model(preset)).train())
        # each unit its own batch: the features shuffled, the targets drawn
        generator = torch.Generator().manual_seed(units)
        orders = [torch.randperm(batch, generator=generator) for _ in range(units)]
        batches = [features.map(cast(Callable[[torch.Tensor], torch.Tensor],
                                     lambda t, o=o: t[o.to(t.device)].float().contiguous()))
                   for o in orders]
        targets = [torch.rand(batch, generator=generator).to(device) for _ in range(units)]
        times = bench.median_times({"one at a time": one_at_a_time(models, batches, targets),
                                    "batched": BatchedSteps(models, batches, targets)})
        flops = units * batch * head_flops_per_crop(models[0], batches[0], targets[0])
        alone = times["one at a time"]
        for variant in ("one at a time", "batched"):
            rows.append({"preset": preset, "batch": batch, "units": units, "variant": variant,
                         "ms_per_unit_step": 1e3 * times[variant] / units,
                         "units_per_minute_vs_one_at_a_time": alone / times[variant],
                         "gflop_per_s": flops / times[variant] / 1e9})
    size = 2048 if device.type == "cpu" else 8192
    a, b = (torch.rand(size, size, device=device) for _ in range(2))
    matmul = bench.median_times({"matmul": lambda: a @ b})["matmul"]
    rows.append({"preset": f"bare fp32 matmul {size}x{size}x{size}", "batch": None, "units": None,
                 "variant": "reference", "ms_per_unit_step": 1e3 * matmul,
                 "units_per_minute_vs_one_at_a_time": None,
                 "gflop_per_s": 2 * size ** 3 / matmul / 1e9})
    return Table(tuple(rows), (
        f"one optimiser step (forward, the training loss, backward, AdamW) of each of `units` "
        f"decoders and heads ({preset}, random weights, each its own batch of {batch} cached "
        f"features), fp32, no dropout, no clipping or schedule",
        "one at a time: each unit's step in turn with the library's kernels (the executors' way); "
        "batched: the units' parameters stacked and the step vmapped over them (torch.func), "
        "experts dense and attention by the composite kernel (what vmap can batch), one AdamW "
        "over the stacked tensors; both leave each unit's parameters alike (tests/test_speed.py)",
        "units_per_minute_vs_one_at_a_time: the batched variant's throughput in units over the "
        "other's (above 1: batching pays); gflop_per_s: the library step's forward and backward "
        "FLOPs (torch's counter; the dense experts' extra work not counted) over the step's "
        "time; the last row: a bare matrix product, the device's practical fp32 rate"))
