"""lifeiqa: the Life-IQA blind image quality model (arXiv 2511.19024) as a library.

    >>> import lifeiqa
    >>> model = lifeiqa.create_model("lifeiqa_effnet_lite0", pretrained=True)
    >>> scores = lifeiqa.predict_image(model.eval(), images)  # RGB in [0, 1], any size
"""

from .checkpoint import (
    LabelScale,
    load_checkpoint,
    read_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from .config import ABLATIONS, LifeIQAConfig, apply_ablation
from .convert import convert_official_state_dict
from .errors import BackboneError, CheckpointError, LifeIQAError, UnknownModelError, WeightsError
from .inference import predict_image, score_images
from .losses import LifeIQALoss
from .model import BackboneFeatures, LifeIQA, LifeIQAOutput
from .registry import create_model, get_spec, list_models, register_model

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
