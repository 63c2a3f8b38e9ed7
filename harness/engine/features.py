"""Crop plans and the frozen-backbone feature cache.

In frozen mode the backbone's output for a fixed set of crops per image is computed once and
stored, keyed by (backbone weights hash, CPU kernels, crop plan, image content hash), then reused across
splits, seeds, ablations and selection modes: only the decoder and head train.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from harness.arithmetic import current as current_arithmetic
from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.fileio import atomic_write_bytes
from lifeiqa import BackboneFeatures, LifeIQA
from lifeiqa.backbone import stage_index
from lifeiqa.inference import crop_offsets

if TYPE_CHECKING:
    from timm.models import FeatureInfo
    from typing_extensions import Buffer


@dataclass(frozen=True)
class CropPlan:
    """Which crops of an image are used: ``train`` random positions (every other one flipped)
    seeded by the image's content hash and the ``draw``, and a uniform ``test`` grid. Draw 0 is
    every table unit's; a noise rerun (:attr:`harness.plan.jobs.Job.crop_draw`) draws its
    training crops afresh, as a one-pixel change of the data would move them elsewhere."""

    train_crops: int
    test_crops: int
    crop_size: int
    resize_policy: str
    hflip: bool = True
    draw: int = 0

    def key(self) -> str:
        fields = asdict(self)
        if not self.draw:  # the key every draw-0 entry has always had: caches stay valid
            del fields["draw"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def part_key(self, part: str) -> str:
        """The key of ``part``'s crops: the test grid does not depend on the draw, so every
        draw reads one copy of it."""
        return CropPlan(**{**asdict(self), "draw": 0}).key() if part == "test" else self.key()


Box = tuple[int, int, bool]  # top, left, horizontal flip


def train_boxes(height: int, width: int, plan: CropPlan, image_digest: str) -> list[Box]:
    content = int(image_digest[:16], 16)
    rng = np.random.default_rng((content, plan.draw) if plan.draw else content)
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


PARTS = ("train", "test")


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """A checksum of named tensors (names, dtypes, shapes, bytes), stored in each cache entry."""
    digest = hashlib.blake2b()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(cast("Buffer", tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


SHALLOW_STAGES = (1, 2)  # strides 4 and 8: the stages an ablation adds to the keys/values


class BackbonePass:
    """Everything the frozen-backbone consumers read of a crop, from one backbone pass: the
    penultimate stage partition-averaged (``pooled``) and the deepest map (``deepest``) that
    Life-IQA's decoder reads, each shallow stage partition-averaged (``shallow1``,
    ``shallow2``: the keys/values the stage-1/2 ablations add) and the global average of every
    feature level (``s<stride>``: the layer probes). Views of it (:class:`LifeIQAExtractor`,
    the probes' ``StageExtractor``) share its key, so every model and probe on one backbone
    reads one cache entry per image, written by whichever runs first. (With a pass per consumer
    the demo ran the backbone four times over the same crops.)

    The backbone is a features_only body of every level with the model's backbone weights,
    built on first use: a run whose features are all cached never builds it."""

    def __init__(self, model: LifeIQA) -> None:
        self.model = model
        # features computed under other kernels differ in their last bits, and a unit must be
        # made under one arithmetic throughout (harness/arithmetic.py): keyed apart
        kernels = current_arithmetic().kernels
        self.key = hashlib.sha256(f"all-stages:{backbone_key(model)}:{kernels}".encode()
                                  ).hexdigest()[:16]
        self._body: torch.nn.Module | None = None

    def _built(self, device: torch.device) -> torch.nn.Module:
        if self._body is None:
            import timm

            config = self.model.config
            body = timm.create_model(config.backbone, pretrained=False, features_only=True,
                                     **config.backbone_kwargs)
            # the same modules whatever the levels selected, so the model's weights fit
            body.load_state_dict(self.model.backbone.body.state_dict(), strict=True)
            # frozen: no dropout or drop-path; channels-last roughly doubles CNN throughput on CPU
            # torch's Module.to overloads omit a device with a memory_format (call-overload)
            self._body = body.eval().requires_grad_(False).to(device,  # type: ignore[call-overload]
                                                              memory_format=torch.channels_last)
        return self._body

    def __call__(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        body = self._built(crops.device)
        model = self.model
        maps = body((crops - model.input_mean.to(crops.device)) / model.input_std.to(crops.device))
        channels_last = model.backbone.channels_last_output  # same timm body: Swin's are NHWC
        strides = cast("FeatureInfo", body.feature_info).reduction()
        out = {f"s{stride}": m.mean(dim=(1, 2) if channels_last else (2, 3))
               for stride, m in zip(strides, maps, strict=True)}
        maps = [m.permute(0, 3, 1, 2) for m in maps] if channels_last else list(maps)
        out["pooled"], out["deepest"] = model.pool(maps[-2]), maps[-1]
        for stage in SHALLOW_STAGES:  # counted from the deepest level, as lifeiqa.backbone does
            level = stage_index(stage)
            if len(maps) >= -level and strides[level] == 2 ** (stage + 1):
                out[f"shallow{stage}"] = model.pool(maps[level])
        return out


class LifeIQAExtractor(BackbonePass):
    """What the frozen Life-IQA decoder consumes: the pooled penultimate and the deepest stage,
    and the pooled shallow stages of a configuration that adds them to the keys/values."""

    def wrap(self, tensors: dict[str, torch.Tensor]) -> BackboneFeatures:
        stages = self.model.config.extra_kv_stages
        # the order of lifeiqa's forward_features: shallow stages concatenated, shallow first
        shallow = torch.cat([tensors[f"shallow{s}"] for s in stages], dim=-1) if stages else None
        return BackboneFeatures(tensors["pooled"], tensors["deepest"], shallow)


class StageExtractor(BackbonePass):
    """Global average of every feature stage of the model's backbone, keyed by stride
    (``s4``, ``s8``, ...): the layer probes' view of the shared backbone pass."""

    @staticmethod
    def wrap(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: t for name, t in tensors.items() if name[0] == "s" and name[1:].isdigit()}


class FeatureCache:
    """Frozen-backbone outputs for each image's train or test crops, computed once, stored as
    safetensors (one file per image and part, so a test-only dataset costs no train crops).

    The ``extractor`` is a view of one :class:`BackbonePass` (Life-IQA's decoder inputs by
    default; the layer probes read per-stage pooled vectors): every view of one backbone
    stores the same tensors under the same key, and reads the ones it needs."""

    def __init__(self, root: str | Path, model: LifeIQA, plan: CropPlan,
                 images: DecodedImageCache, device: torch.device | str = "cpu",
                 extractor: LifeIQAExtractor | StageExtractor | None = None) -> None:
        self.model = model
        self.extractor = extractor or LifeIQAExtractor(model)
        self.plan = plan
        self.images = images
        self.device = torch.device(device)
        self.folder = Path(root) / self.extractor.key
        model.to(self.device)
        self.rebuilt: list[str] = []

    def _path(self, digest: str, part: str) -> Path:
        return self.folder / self.plan.part_key(part) / part / digest[:2] / f"{digest}.safetensors"

    def _expected(self, part: str) -> int:
        return self.plan.train_crops if part == "train" else self.plan.test_crops

    def _read(self, path: Path, part: str) -> BackboneFeatures | dict[str, torch.Tensor] | None:
        from safetensors import SafetensorError, safe_open

        if not path.exists():
            return None
        try:
            with safe_open(str(path), "pt") as handle:
                checksum = (handle.metadata() or {}).get("blake2b")
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not iterable)
            if checksum == tensor_checksum(tensors) and \
                    all(t.shape[0] == self._expected(part) for t in tensors.values()):
                return self.extractor.wrap(tensors)
        except (SafetensorError, OSError, KeyError, ValueError):
            pass
        # truncated, damaged (checksum), stale or from an older format: recomputed, never trusted
        self.rebuilt.append(str(path))
        return None

    def crops(self, record: ImageRecord, part: str) -> torch.Tensor:
        """An image's train or test crops as float tensors in [0, 1]."""
        if part not in PARTS:
            raise ValueError(f"part {part!r}: expected one of {PARTS}")
        array = self.images.get(record.path, self.plan.resize_policy)
        image = image_tensor(array, self.plan.crop_size)
        height, width = image.shape[-2:]
        boxes = (train_boxes(height, width, self.plan, self.images.digest(record.path))
                 if part == "train" else test_boxes(height, width, self.plan))
        return cut(image, boxes, self.plan.crop_size)

    @torch.no_grad()
    def _compute(self, record: ImageRecord, part: str) -> dict[str, torch.Tensor]:
        crops = self.crops(record, part).to(self.device, memory_format=torch.channels_last)
        # contiguous, as when read back from disk, so both paths run the same kernels
        return {name: value.float().cpu().contiguous()
                for name, value in self.extractor(crops).items()}

    def get(self, record: ImageRecord, part: str) -> BackboneFeatures | dict[str, torch.Tensor]:
        """The record's features for ``part`` (the extractor's type: BackboneFeatures by
        default), from the cache or computed and stored."""
        return self._get_at(self._path(self.images.digest(record.path), part), record, part)

    def _get_at(self, path: Path, record: ImageRecord, part: str
                ) -> BackboneFeatures | dict[str, torch.Tensor]:
        cached = self._read(path, part)
        if cached is not None:
            return cached
        tensors = self._compute(record, part)
        self._write(path, tensors)
        return self.extractor.wrap(tensors)

    def _write(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        # made in memory and written by atomic_write: a full disk is then an OSError naming
        # the entry (safetensors' own writer raises its SafetensorError, naming nothing)
        data = save(tensors, metadata={"blake2b": tensor_checksum(tensors)})
        atomic_write_bytes(path, data, durable=False)  # checked on reading: no fsync

    def get_all(self, records: Sequence[ImageRecord], part: str,
                progress: Callable[[int], None] | None = None) -> list:
        """Every record's features. Processes sharing the cache (pool workers, Slurm tasks)
        split what is missing: each claims one shard folder at a time (an ``flock`` on its
        ``.lock``) and fills it, passing over shards another process holds; then it waits for
        those in turn and reads what the other wrote (or computes it, if that one died). Two
        workers that start on the same images fill the cache together, instead of one
        computing while the other waits."""
        import fcntl

        out: list = [None] * len(records)
        paths = [self._path(self.images.digest(record.path), part) for record in records]
        shards: dict[Path, list[int]] = {}
        for index, path in enumerate(paths):
            shards.setdefault(path.parent, []).append(index)

        def fill(shard: Path, indices: list[int], wait: bool) -> bool:
            shard.mkdir(parents=True, exist_ok=True)
            with open(shard / ".lock", "a") as lock:  # the flock goes when the file closes
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    return False
                for index in indices:
                    out[index] = self._get_at(paths[index], records[index], part)
                    if progress:
                        progress(1)
            return True

        held = [(shard, indices) for shard, indices in shards.items()
                if not fill(shard, indices, wait=False)]
        for shard, indices in held:
            fill(shard, indices, wait=True)
        return out
