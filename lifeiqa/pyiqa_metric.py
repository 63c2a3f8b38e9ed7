"""Life-IQA as a pyiqa no-reference metric: ``pyiqa.create_metric("lifeiqa")``.

pyiqa looks a metric name up in ``pyiqa.default_model_configs.DEFAULT_CONFIGS`` before it
loads any plugin, so the configuration entries are added by :mod:`lifeiqa_pyiqa_hook` (a
torch-free start-up hook) and the network class is registered here, through pyiqa's
``pyiqa.archs`` entry point or on ``import lifeiqa``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .errors import CheckpointError
from .inference import DEFAULT_NUM_CROPS, score_images
from .registry import create_model

CHECKPOINT_ENV = "LIFEIQA_CHECKPOINT"


def resolve_weights_path(reference: str) -> Path:
    """A local path for ``reference``: a file path, an https URL, or ``hf://owner/repo/file``.

    URLs and hub references download only when asked (here), into the torch/HF caches.
    """
    if reference.startswith("hf://"):
        parts = reference[len("hf://"):].split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise CheckpointError(f"{reference!r}: expected hf://owner/repo/path/to/file")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=f"{parts[0]}/{parts[1]}", filename=parts[2]))
    if reference.startswith(("https://", "http://")):
        from torch.hub import download_url_to_file, get_dir

        # keyed by the whole URL, so two files of the same name from different places differ
        tag = hashlib.sha256(reference.encode()).hexdigest()[:12]
        target = Path(get_dir()) / "lifeiqa" / f"{tag}-{Path(reference.split('?')[0]).name}"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            download_url_to_file(reference, str(target), progress=False)
        return target
    path = Path(os.path.expanduser(reference))
    if not path.is_file():
        raise CheckpointError(f"pretrained_model_path {reference!r}: no such file")
    return path


class LifeIQAMetric(nn.Module):
    """The network pyiqa builds for the ``lifeiqa*`` metrics.

    Weights: ``pretrained_model_path`` (a file, https URL or hf:// reference), else the
    ``LIFEIQA_CHECKPOINT`` environment variable; the checkpoint's embedded config decides the
    architecture. With neither and ``pretrained=True`` there is nothing to load: no official
    Life-IQA weights are published. Scores are mapped to [0, 1], higher is better, using the
    checkpoint's label scale. Images of any size are scored on a uniform grid of ``num_crops``
    crops (images smaller than a crop are resized up).
    """

    def __init__(self, model_name: str = "lifeiqa_swin_b", pretrained: bool = True,
                 pretrained_model_path: str | None = None,
                 num_crops: int = DEFAULT_NUM_CROPS) -> None:
        super().__init__()
        reference = pretrained_model_path or os.environ.get(CHECKPOINT_ENV)
        if reference:
            self.model = load_checkpoint(resolve_weights_path(reference))
        elif pretrained:
            raise CheckpointError(
                f"no Life-IQA weights for {model_name!r}: the authors publish none. Train a "
                f"checkpoint with lifeiqa-bench and pass pretrained_model_path=<file.safetensors> "
                f"(or set {CHECKPOINT_ENV}), or pass pretrained=False for random initialisation."
            )
        else:
            self.model = create_model(model_name, pretrained=False)
        self.model.eval()
        self.num_crops = num_crops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return score_images(self.model, x, num_crops=self.num_crops).unsqueeze(1)


def register() -> None:
    """Register :class:`LifeIQAMetric` with pyiqa's network registry (idempotent)."""
    from pyiqa.utils.registry import ARCH_REGISTRY

    ARCH_REGISTRY.register(LifeIQAMetric, override=True)
