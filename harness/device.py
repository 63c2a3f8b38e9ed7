"""Choosing the torch device from a command-line name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit accelerator that is absent is an
    error, not a silent fall-back to CPU."""
    import torch  # here: the options of a command that trains nothing are read without torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = parse_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError(f"--device {name}: no CUDA device is available here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None)
                                     and torch.backends.mps.is_available()):
        raise InvalidOptionError(f"--device {name}: MPS is not available here")
    return device


def parse_device(name: str) -> torch.device:
    """The device ``name`` names, wherever it is present (a Slurm task's node, say)."""
    import torch

    try:
        return torch.device(name)
    except (RuntimeError, TypeError):
        raise InvalidOptionError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or "
                                 f"mps") from None
