"""Data-parallel training of one job over the processes of a ``torchrun`` launch.

``torchrun --nproc_per_node N -m harness.cli run ...`` starts N copies of the command. Each finds
its rank in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins a process group
(gloo on CPU; NCCL on CUDA, rank r on ``cuda:LOCAL_RANK``). Every rank builds the same model from
the same seed and walks the same batch order; then:

* each global batch (``recipe.batch_size`` is the global batch) is split by rows, rank r taking
  rows r::N; a batch with fewer rows than ranks is computed whole by every rank;
* each rank's loss is weighted by its share of the batch's rows and the gradients are averaged
  with one all-reduce per step, so every rank applies the gradient of the whole global batch;
  the MoE load-balancing loss uses the routing fractions of the whole global batch (it is a
  product of two batch means, so per-rank fractions would change its gradient);
* test and validation predictions are split the same way and gathered in order, so every rank
  computes the same correlations and selects the same epoch;
* only rank 0 claims units in the results store and writes results.

For a model without dropout or stochastic depth this reproduces one process up to float rounding
(tests/test_ddp.py). Their masks are drawn per rank (Life-IQA's head and experts use dropout,
timm's Swin drop-path), so a run with them agrees with one process in distribution only, as any
data-parallel run does. BatchNorm statistics (EfficientNet backbones under
full fine-tuning) are per rank, as in plain PyTorch DDP.

Outside a launch every function here is a no-op or the identity, so single-process code pays
nothing.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import torch
import torch.distributed as dist

from harness.device import resolve_device
from harness.errors import InvalidOptionError

if TYPE_CHECKING:
    from harness.plan.jobs import UnitKey
    from harness.results.store import ResultsStore
    from lifeiqa.layers import HeadOutput, SparseMoE

Rows = TypeVar("Rows", torch.Tensor, np.ndarray)


def launched() -> bool:
    """Whether this process is one of several started by torchrun (or a launcher like it)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def main_only(say: Callable[[str], None]) -> Callable[[str], None]:
    """``say`` on rank 0, which speaks for a launch; a no-op on the other ranks."""
    return say if is_main() else _silent


def _silent(*_args: object) -> None:
    """What ranks other than 0 say."""


def setup(device: str) -> str:
    """Join the launch's process group (once, if launched) and return this rank's device name."""
    if not launched():
        return device
    resolved = resolve_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if resolved.type == "cuda":
        # torch's stub types device.index as int; it is None for a device named without one
        if cast("int | None", resolved.index) is not None:
            raise InvalidOptionError(f"--device {device} under torchrun: each rank takes "
                                     f"cuda:LOCAL_RANK; pass --device cuda (or auto)")
        backend, name = "nccl", f"cuda:{local}"
    elif resolved.type == "cpu":
        backend, name = "gloo", "cpu"
    else:
        raise InvalidOptionError(f"--device {device}: torchrun data parallelism runs on CPU "
                                 f"(gloo) or CUDA (NCCL), not {resolved.type}")
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
        # at exit, after the caller has reported: NCCL warns about a group left open
        atexit.register(dist.destroy_process_group)
    return name


def barrier() -> None:
    if active():
        dist.barrier()


def shard(batch: Rows) -> Rows:
    """This rank's rows of a global training batch: rows r::N, or all of them when the batch
    has fewer rows than ranks (every rank then computes it; :func:`weight_loss` accounts)."""
    size = world_size()
    if size == 1 or len(batch) < size:
        return batch
    return batch[rank()::size]


def weight_loss(loss: torch.Tensor, rows: int) -> torch.Tensor:
    """Scale this rank's mean loss over ``rows`` rows so that the average of the ranks'
    gradients is the gradient of the mean loss over all ranks' rows."""
    if not active():
        return loss
    total = torch.tensor(float(rows), device=loss.device)
    dist.all_reduce(total)
    return loss * (world_size() * rows / total)


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients over ranks in one all-reduce. The same parameters have gradients
    on every rank: the model is the same and Life-IQA's experts run densely."""
    if not active():
        return
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return
    flat = torch.cat([cast(torch.Tensor, p.grad).reshape(-1) for p in with_grad])
    dist.all_reduce(flat)
    flat /= world_size()
    for param, chunk in zip(with_grad,
                            flat.split([p.numel() for p in with_grad]),
                            strict=True):
        param.grad = chunk.view_as(param).to(param.dtype)


def sync_balance_loss(model: torch.nn.Module) -> None:
    """Make each MoE layer's load-balancing loss use the routing fractions of the global batch
    while training under a launch (a forward hook; a no-op in eval mode and in one process)."""
    if not active():
        return
    from lifeiqa.layers import SparseMoE

    for module in model.modules():
        if isinstance(module, SparseMoE) and not getattr(module, "_global_balance", False):
            module.register_forward_hook(_global_balance)
            # Module.__setattr__'s stub admits only tensors and modules; a plain flag is fine
            module._global_balance = True  # type: ignore[assignment]


def _global_balance(module: SparseMoE, args: tuple, output: HeadOutput) -> HeadOutput | None:
    if not module.training:
        return None
    # Routing again is cheap (six tokens per image) and keeps the model code untouched.
    weights, selected, _ = module.route(args[0])
    experts = module.num_experts
    selected = selected.reshape(-1, experts).float().detach()
    counts = torch.cat([selected.sum(0), selected.new_tensor([selected.shape[0]])])
    dist.all_reduce(counts)
    fraction = counts[:-1] / counts[-1]
    aux = experts * (weights.reshape(-1, experts).float().mean(0) * fraction).sum()
    return output._replace(aux_loss=aux)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks (of a per-rank share of a loss, giving the global batch's loss)."""
    if not active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world_size()


def map_sharded(predict: Callable[[Sequence], np.ndarray], items: Sequence) -> np.ndarray:
    """``predict(items)`` with each rank predicting rows r::N; every rank gets all predictions,
    in ``items``' order."""
    size = world_size()
    if size == 1:
        return predict(items)
    parts: list = [None] * size
    dist.all_gather_object(parts, np.asarray(predict(items[rank()::size])))
    out = np.empty(len(items), dtype=np.result_type(*parts))
    for index, part in enumerate(parts):
        out[index::size] = part
    return out


@contextmanager
def claim(store: ResultsStore, key: UnitKey) -> Iterator[Path]:
    """The store's claim on a unit; under a launch rank 0 takes it for all ranks, and every
    rank raises alike when another process holds it (so no rank waits for the others)."""
    if not active():
        with store.claim(key) as folder:
            yield folder
        return
    from harness.results.store import UnitBusyError

    with ExitStack() as stack:
        message: list[str | None] = [None]
        if is_main():
            try:
                stack.enter_context(store.claim(key))
            except UnitBusyError as err:
                message[0] = str(err)
        dist.broadcast_object_list(message, src=0)
        if message[0] is not None:
            raise UnitBusyError(message[0])
        yield store.unit_dir(key)
