"""Safe reading of tensor files: safetensors, or torch files with ``weights_only=True``."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from .errors import WeightsError

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def read_safetensors(path: str | Path) -> tuple[OrderedDict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a safetensors file, with a clear error if unreadable."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = OrderedDict((key, handle.get_tensor(key)) for key in handle.keys())  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(
            f"{path}: not a readable safetensors file (truncated or another format?): {err}"
        ) from err
    return tensors, metadata


def read_safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file, read from its header alone (no tensors)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(
            f"{path}: not a readable safetensors file (truncated or another format?): {err}"
        ) from err


def read_torch_file(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """A state dict from a torch file, loaded with ``weights_only=True`` (no code is executed).

    Accepts a bare state dict or one nested under 'state_dict', 'model' or 'model_state_dict'.
    """
    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for refused or damaged pickles
        raise WeightsError(
            f"{path}: could not be read as a weights-only torch file ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Files that need arbitrary "
            f"unpickling are refused; convert them to safetensors from a trusted environment."
        ) from err
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return OrderedDict(obj)


def read_state_dict(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or torch file, chosen by the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    if path.suffix in TORCH_SUFFIXES:
        return read_torch_file(path)
    raise WeightsError(
        f"{path}: unknown weights format {path.suffix!r}; expected .safetensors or one of "
        f"{TORCH_SUFFIXES}"
    )
