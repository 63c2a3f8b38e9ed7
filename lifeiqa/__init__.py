"""lifeiqa: the Life-IQA blind image quality model (arXiv 2511.19024) as a library.

    >>> import lifeiqa
    >>> model = lifeiqa.create_model("lifeiqa_effnet_lite0", pretrained=True)
    >>> scores = lifeiqa.predict_image(model.eval(), images)  # RGB in [0, 1], any size
"""

from typing import TYPE_CHECKING, Any

from .config import ABLATIONS, LifeIQAConfig, apply_ablation
from .errors import BackboneError, CheckpointError, LifeIQAError, UnknownModelError, WeightsError

if TYPE_CHECKING:
    from .checkpoint import (
        LabelScale,
        load_checkpoint,
        read_checkpoint,
        read_checkpoint_info,
        save_checkpoint,
    )
    from .convert import convert_official_state_dict
    from .inference import predict_image, score_images
    from .losses import LifeIQALoss
    from .model import BackboneFeatures, LifeIQA, LifeIQAOutput
    from .registry import create_model, get_spec, list_models, register_model

# The names that need torch load on first use: a command that only reads results, lists names
# or names an error (``import lifeiqa.errors`` runs this file) then starts in a fraction of a
# second instead of the two that importing torch takes.
_LAZY: dict[str, str] = {
    "LabelScale": "checkpoint", "load_checkpoint": "checkpoint", "read_checkpoint": "checkpoint",
    "read_checkpoint_info": "checkpoint", "save_checkpoint": "checkpoint",
    "convert_official_state_dict": "convert", "predict_image": "inference",
    "score_images": "inference", "LifeIQALoss": "losses", "BackboneFeatures": "model",
    "LifeIQA": "model", "LifeIQAOutput": "model", "create_model": "registry",
    "get_spec": "registry", "list_models": "registry", "register_model": "registry",
}

__version__ = "0.1.0"


def list_ablations() -> list[str]:
    """Names of the paper's ablations, usable as ``create_model(..., ablation=name)``."""
    return sorted(ABLATIONS)


__all__ = [
    "ABLATIONS", "BackboneError", "BackboneFeatures", "CheckpointError", "LabelScale", "LifeIQA",
    "LifeIQAConfig", "LifeIQAError", "LifeIQALoss", "LifeIQAOutput", "UnknownModelError",
    "WeightsError", "apply_ablation", "convert_official_state_dict", "create_model", "get_spec",
    "list_ablations", "list_models", "load_checkpoint", "predict_image", "read_checkpoint",
    "read_checkpoint_info", "register_model", "save_checkpoint", "score_images",
]


if not TYPE_CHECKING:  # for a type checker the imports above define the names

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'lifeiqa' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def _connect_pyiqa() -> None:
    """Make ``pyiqa.create_metric("lifeiqa")`` work after ``import lifeiqa`` (even with the
    start-up hook switched off): add the configs now or when pyiqa loads."""
    import sys

    import lifeiqa_pyiqa_hook

    lifeiqa_pyiqa_hook.install()
    if "pyiqa.utils.registry" in sys.modules:
        from .pyiqa_metric import register

        register()


_connect_pyiqa()
