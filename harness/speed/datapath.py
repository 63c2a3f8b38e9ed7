"""Section 2, data path: the authors'-style per-sample pipeline against crops cut in batches
from the decoded cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.engine.batching import BatchCutter, Prefetcher
from harness.speed.report import Table
from harness.speed.sizes import Bench


class AuthorsStyleDataset(torch.utils.data.Dataset):
    """The authors' training set as their code builds it: each image listed PATCH_NUM times;
    per sample the file is decoded with PIL, then a torchvision random flip, random 224 crop,
    ToTensor and ImageNet normalisation."""

    def __init__(self, paths: list[Path], patch_num: int, crop: int) -> None:
        from torchvision import transforms

        self.samples = [path for path in paths for _ in range(patch_num)]
        self.transform = transforms.Compose([
            transforms.RandomHorizontalFlip(), transforms.RandomCrop(crop), transforms.ToTensor(),
            transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.samples[index]) as image:
            return cast(torch.Tensor, self.transform(image.convert("RGB")))


def data_path(bench: Bench) -> Table:
    sizes, device = bench.sizes, bench.device
    records = bench.images[:sizes.loader_images]
    samples = sizes.loader_images * sizes.patch_num
    mean = torch.tensor((0.485, 0.456, 0.406), device=device).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), device=device).view(1, 3, 1, 1)
    authors = torch.utils.data.DataLoader(
        AuthorsStyleDataset([r.path for r in records], sizes.patch_num, 224),
        batch_size=sizes.loader_batch, shuffle=True, num_workers=bench.workers,
        pin_memory=device.type == "cuda")

    def authors_epoch() -> None:
        for batch in authors:
            batch.to(device, non_blocking=True)

    start = time.perf_counter()
    cache = DecodedImageCache(bench.folder / "data-path-cache")
    cutter = BatchCutter(cache, [r.path for r in records], "native", 224)
    decode_seconds = time.perf_counter() - start
    prefetch = Prefetcher(cutter, device, bench.workers)
    listing = np.repeat(np.arange(len(records)), sizes.patch_num)
    rng = np.random.default_rng(0)

    def cached_epoch() -> None:
        crops = cutter.random_crops(listing, True, rng)
        for x, _ in prefetch(crops.batches(sizes.loader_batch)):
            x.sub_(mean).div_(std)  # the model does this in forward(); here both paths end alike

    times = bench.median_times({"authors": authors_epoch, "cached": cached_epoch},
                               warmup=1, repeats=max(2, min(sizes.repeats, 3)))
    speedup = times["authors"] / times["cached"]
    target = 10.0 if device.type == "cpu" else None
    return Table(({
        "images": len(records), "image_size": "x".join(map(str, sizes.image_size[::-1])) + " PNG",
        "patch_num": sizes.patch_num, "samples": samples, "batch": sizes.loader_batch,
        "workers": bench.workers,
        "authors_samples_per_s": samples / times["authors"],
        "cached_samples_per_s": samples / times["cached"], "speedup": speedup,
        "cache_fill_s": decode_seconds,
        "target": f">= {target:g}x" if target else "", "met": speedup >= target if target else None,
    },), (
        f"both deliver normalised float batches of 224 crops on {device}; authors'-style: a "
        f"DataLoader with {bench.workers} worker process(es) decoding each sample's PNG with PIL "
        f"(torchvision flip, crop, ToTensor, Normalize); cached: uint8 crops cut from the "
        f"memory-mapped decoded cache by {bench.workers} thread(s), converted on the device",
        "cache_fill_s: decoding the images into the cache once (per dataset, not per epoch)"))
