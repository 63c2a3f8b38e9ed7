"""Crop plans and the frozen-backbone feature cache.

In frozen mode the backbone's output for a fixed set of crops per image is computed once and
stored, keyed by (backbone weights hash, crop plan, image content hash), then reused across
splits, seeds, ablations and selection modes: only the decoder and head train.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lifeiqa import BackboneFeatures, LifeIQA
from lifeiqa.inference import crop_offsets

from .datasets.cache import DecodedImageCache
from .datasets.records import ImageRecord


@dataclass(frozen=True)
class CropPlan:
    """Which crops of an image are used: ``train`` random positions (every other one flipped)
    seeded by the image's content hash, and a uniform ``test`` grid."""

    train_crops: int
    test_crops: int
    crop_size: int
    resize_policy: str
    hflip: bool = True

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


Box = tuple[int, int, bool]  # top, left, horizontal flip


def train_boxes(height: int, width: int, plan: CropPlan, image_digest: str) -> list[Box]:
    rng = np.random.default_rng(int(image_digest[:16], 16))
    crop = plan.crop_size
    tops = rng.integers(0, max(height - crop, 0) + 1, size=plan.train_crops)
    lefts = rng.integers(0, max(width - crop, 0) + 1, size=plan.train_crops)
    return [(int(t), int(s), plan.hflip and i % 2 == 1)
            for i, (t, s) in enumerate(zip(tops, lefts, strict=True))]


def test_boxes(height: int, width: int, plan: CropPlan) -> list[Box]:
    return [(t, s, False) for t, s in crop_offsets(height, width, plan.crop_size, plan.test_crops)]


def image_tensor(array: np.ndarray, crop: int) -> torch.Tensor:
    """(3, H, W) float in [0, 1], resized up (aspect kept) if a side is below ``crop``."""
    from lifeiqa.inference import upscale_to_fit

    tensor = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float().div_(255)
    return upscale_to_fit(tensor[None], crop)[0]


def cut(image: torch.Tensor, boxes: Sequence[Box], crop: int) -> torch.Tensor:
    crops = [image[:, t:t + crop, s:s + crop] for t, s, _ in boxes]
    return torch.stack([c.flip(-1) if flip else c for c, (_, _, flip) in zip(crops, boxes,
                                                                           strict=True)])


def backbone_key(model: LifeIQA) -> str:
    """Hash of everything that determines the backbone's output: weights, name, normalisation."""
    digest = hashlib.sha256()
    digest.update(json.dumps([model.config.backbone, model.config.backbone_kwargs,
                              model.config.input_mean, model.config.input_std,
                              model.config.pool_grid]).encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class ImageFeatures:
    train: BackboneFeatures  # (train_crops, ...)
    test: BackboneFeatures  # (test_crops, ...)


class FeatureCache:
    """Backbone features of each image's crops, computed once and stored as safetensors."""

    def __init__(self, root: str | Path, model: LifeIQA, plan: CropPlan,
                 images: DecodedImageCache, device: torch.device | str = "cpu") -> None:
        self.model = model
        self.plan = plan
        self.images = images
        self.device = torch.device(device)
        self.folder = Path(root) / backbone_key(model) / plan.key()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rebuilt: list[str] = []

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.safetensors"

    def _read(self, path: Path) -> ImageFeatures | None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.exists():
            return None
        try:
            t = load_file(str(path))
            features = ImageFeatures(BackboneFeatures(t["train_pooled"], t["train_deepest"]),
                                     BackboneFeatures(t["test_pooled"], t["test_deepest"]))
            if (features.train.pooled.shape[0] == self.plan.train_crops
                    and features.test.pooled.shape[0] == self.plan.test_crops):
                return features
        except (SafetensorError, OSError, KeyError, ValueError):
            pass
        self.rebuilt.append(str(path))  # corrupt or stale: recomputed, never trusted
        return None

    def crops(self, record: ImageRecord) -> tuple[torch.Tensor, torch.Tensor]:
        """The (train, test) crops of an image as float tensors in [0, 1]."""
        array = self.images.get(record.path, self.plan.resize_policy)
        image = image_tensor(array, self.plan.crop_size)
        height, width = image.shape[-2:]
        digest = self.images.digest(record.path)
        return (cut(image, train_boxes(height, width, self.plan, digest), self.plan.crop_size),
                cut(image, test_boxes(height, width, self.plan), self.plan.crop_size))

    @torch.no_grad()
    def _compute(self, record: ImageRecord) -> ImageFeatures:
        train, test = self.crops(record)
        self.model.eval()
        both = self.model.forward_features(torch.cat([train, test]).to(self.device))
        n = train.shape[0]
        # contiguous, as when read back from disk, so both paths run the same kernels
        pooled = both.pooled.float().cpu().contiguous()
        deepest = both.deepest.float().cpu().contiguous()
        return ImageFeatures(BackboneFeatures(pooled[:n], deepest[:n]),
                             BackboneFeatures(pooled[n:], deepest[n:]))

    def get(self, record: ImageRecord) -> ImageFeatures:
        path = self._path(self.images.digest(record.path))
        cached = self._read(path)
        if cached is not None:
            return cached
        features = self._compute(record)
        self._write(path, features)
        return features

    def _write(self, path: Path, features: ImageFeatures) -> None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        try:
            save_file({"train_pooled": features.train.pooled.contiguous(),
                       "train_deepest": features.train.deepest.contiguous(),
                       "test_pooled": features.test.pooled.contiguous(),
                       "test_deepest": features.test.deepest.contiguous()}, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def get_all(self, records: Sequence[ImageRecord],
                progress: Callable[[int], None] | None = None) -> list[ImageFeatures]:
        out = []
        for record in records:
            out.append(self.get(record))
            if progress:
                progress(1)
        return out
