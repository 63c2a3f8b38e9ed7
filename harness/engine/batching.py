"""Fine-tuning batches cut from the decoded uint8 image cache.

Each crop is a window of a memory-mapped H x W x 3 uint8 array (:mod:`harness.data.cache`),
so cutting a batch is one gather of bytes into an (N, c, c, 3) uint8 tensor: no decode and no
float work on the host, and a quarter of the bytes a float batch would move. Background threads
cut the next batches while the device computes (numpy copies run without the GIL; threads need
no shared memory and no fork), straight into pinned memory for non-blocking copies. On the
device one pass turns them into floats in [0, 1] with channels-last strides (the model
normalises its input itself, as for any other caller); on a CPU device the threads do that too.

Crop positions and flips are drawn in the main process from a seeded generator, so a seed gives
the same batches whatever the number of workers. Images with a side below the crop size are
resized up in float exactly as :func:`harness.engine.features.image_tensor` does, and their crops
travel as floats beside the uint8 batch (of the supported data, only the tiny and small
synthetic sets have such images).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.engine.features import image_tensor
from lifeiqa.inference import crop_offsets, upscaled_size

# Memory maps a cutter keeps open; each holds a file descriptor.
_OPEN_LIMIT = 256


@dataclass(frozen=True)
class Crops:
    """Where to cut: for each crop its image index, top, left and horizontal flip."""

    image: np.ndarray
    top: np.ndarray
    left: np.ndarray
    flip: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    def take(self, rows: np.ndarray | slice) -> Crops:
        return Crops(self.image[rows], self.top[rows], self.left[rows], self.flip[rows])

    def batches(self, size: int) -> list[Crops]:
        return [self.take(slice(i, i + size)) for i in range(0, len(self), size)]


class CutBatch(NamedTuple):
    """A cut batch on the host: what :func:`to_device` turns into model input."""

    pixels: torch.Tensor  # (N, c, c, 3) uint8; rows in ``upscaled_rows`` are left unset
    image: torch.Tensor  # (N,) int64: the image index of each crop
    upscaled_rows: torch.Tensor  # (k,) int64: crops of images resized up
    upscaled: torch.Tensor  # (k, 3, c, c) float in [0, 1]


class BatchCutter:
    """The images of one part (train, test, ...) as decoded-cache entries, cut into
    :class:`CutBatch` es by :meth:`cut`. Decodes any image not yet in the cache on construction."""

    def __init__(self, images: DecodedImageCache, paths: Sequence[str | Path], policy: str,
                 crop: int) -> None:
        self.crop = crop
        self.policy = policy
        self.entries: list[str] = []
        sizes = []
        for path in paths:
            array = images.get(path, policy)
            self.entries.append(str(images.entry_path(Path(path), policy)))
            sizes.append(array.shape[:2])
        self.native = np.array([min(s) >= crop for s in sizes], dtype=bool)
        # the size crops are cut from: images below the crop size are resized up first
        self.sizes = np.array([upscaled_size(height, width, crop) for height, width in sizes],
                              dtype=np.int64).reshape(-1, 2)
        self._open: dict[int, np.ndarray] = {}

    def _array(self, index: int) -> np.ndarray:
        array = self._open.get(index)
        if array is None:
            if len(self._open) >= _OPEN_LIMIT:
                self._open.clear()
            array = self._open[index] = np.load(self.entries[index], mmap_mode="r")
        return array

    def random_crops(self, listing: np.ndarray, hflip: bool, rng: np.random.Generator) -> Crops:
        """``listing`` (image indices, each image as often as it is to be cut) shuffled, with a
        uniform random position per crop and a flip with probability 1/2 when ``hflip``."""
        order = rng.permutation(np.asarray(listing, dtype=np.int64))
        height, width = self.sizes[order].T
        top = rng.integers(0, height - self.crop + 1)
        left = rng.integers(0, width - self.crop + 1)
        flip = rng.random(len(order)) < 0.5 if hflip else np.zeros(len(order), dtype=bool)
        return Crops(order, top, left, flip)

    def grid_crops(self, count: int) -> Crops:
        """``count`` crops per image on the uniform test grid, image-major."""
        rows = np.array([(i, t, s) for i, (h, w) in enumerate(self.sizes)
                         for t, s in crop_offsets(int(h), int(w), self.crop, count)],
                        dtype=np.int64).reshape(-1, 3)
        return Crops(rows[:, 0], rows[:, 1], rows[:, 2], np.zeros(len(rows), dtype=bool))

    def cut(self, crops: Crops, pin: bool = False) -> CutBatch:
        c = self.crop
        pixels = torch.empty((len(crops), c, c, 3), dtype=torch.uint8, pin_memory=pin)
        out = pixels.numpy()
        upscaled_rows, upscaled = [], []
        resized: dict[int, torch.Tensor] = {}  # each small image resized once per batch
        for row, (i, top, left, flip) in enumerate(zip(crops.image, crops.top, crops.left,
                                                       crops.flip, strict=True)):
            if self.native[i]:
                window = self._array(i)[top:top + c, left:left + c]
                if flip:  # plane by plane: numpy then copies along rows, not 3 bytes at a time
                    for channel in range(3):
                        out[row, :, :, channel] = window[:, ::-1, channel]
                else:
                    out[row] = window
            else:
                if i not in resized:
                    resized[i] = image_tensor(self._array(i), c)
                patch = resized[i][:, top:top + c, left:left + c]
                upscaled_rows.append(row)
                upscaled.append(patch.flip(-1) if flip else patch)
        image = torch.from_numpy(crops.image.astype(np.int64))
        return CutBatch(pixels, image.pin_memory() if pin else image,
                        torch.tensor(upscaled_rows, dtype=torch.int64),
                        torch.stack(upscaled) if upscaled else torch.empty(0, 3, c, c))


def to_device(batch: CutBatch, device: torch.device) -> torch.Tensor:
    """(N, 3, c, c) float in [0, 1] on ``device``, channels-last: uint8 crosses the bus and the
    conversion runs there (the permuted NHWC bytes are channels-last NCHW as they stand)."""
    x = batch.pixels.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    if batch.upscaled_rows.numel():
        x[batch.upscaled_rows.to(device, non_blocking=True)] = batch.upscaled.to(device,
                                                                                 non_blocking=True)
    return x


def default_workers(device: torch.device) -> int:
    """Cutting threads: enough to keep an accelerator fed; one on CPU, where cutting costs well
    under 1% of a training step and only needs to overlap it."""
    if device.type == "cpu":
        return 1
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class Prefetcher:
    """``prefetcher(batches)`` yields, for each :class:`Crops` in order, the model input on the
    device (:func:`to_device`) and each crop's image index. ``workers`` threads (0: none, no
    overlap) cut up to ``2 * workers`` batches ahead: into pinned memory for a CUDA device,
    converted there by the caller's stream; on CPU the threads convert too, off the main thread."""

    def __init__(self, cutter: BatchCutter, device: torch.device, workers: int | None = None) -> None:
        self.cutter = cutter
        self.device = device
        self.workers = default_workers(device) if workers is None else workers
        self.pin = device.type == "cuda"
        self.host = device.type == "cpu"

    def _cut(self, crops: Crops) -> CutBatch | tuple[torch.Tensor, torch.Tensor]:
        batch = self.cutter.cut(crops, self.pin)
        return (to_device(batch, self.device), batch.image) if self.host else batch

    def _ready(self, item: CutBatch | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.host:  # _cut converted it already
            return cast("tuple[torch.Tensor, torch.Tensor]", item)
        item = cast(CutBatch, item)
        return to_device(item, self.device), item.image.to(self.device, non_blocking=True)

    def __call__(self, batches: Sequence[Crops]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.workers == 0:
            for crops in batches:
                yield self._ready(self._cut(crops))
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="cut") as pool:
            waiting = iter(batches)
            ahead = deque(pool.submit(self._cut, crops) for crops in islice(waiting, 2 * self.workers))
            while ahead:
                item = ahead.popleft().result()
                following = next(waiting, None)
                if following is not None:
                    ahead.append(pool.submit(self._cut, following))
                yield self._ready(item)


@torch.no_grad()
def predict_crops(forward: Callable[[torch.Tensor], torch.Tensor], prefetcher: Prefetcher,
                  crops: Crops, count: int, batch_size: int, device: torch.device) -> np.ndarray:
    """Per-image mean of ``forward``'s per-crop scores, for ``count`` crops per image; batches
    span images, and the scores stay on the device until the end (one host sync)."""
    images = len(crops) // count
    sums = torch.zeros(images, device=device)
    for x, image in prefetcher(crops.batches(batch_size)):
        sums.index_add_(0, image, forward(x).float())
    return (sums / count).cpu().numpy()
