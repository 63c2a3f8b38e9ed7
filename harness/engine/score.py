"""``lifeiqa-bench score``: score image files and folders into a CSV (``path,score``).

Rows are written and flushed batch by batch, so an interrupted run keeps what it scored and
``--resume`` continues it. Unreadable files are skipped, listed at the end with the reason, and
make the exit status non-zero.
"""

from __future__ import annotations

import csv
import glob
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import lifeiqa
from harness.device import resolve_device
from lifeiqa.inference import DEFAULT_NUM_CROPS, extract_crops, unit_scale

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Failure:
    path: str
    reason: str


def collect_images(inputs: Iterable[str]) -> tuple[list[Path], list[Failure]]:
    """Image files named by ``inputs`` (files, folders searched recursively, glob patterns),
    sorted and de-duplicated; inputs that match nothing are returned as failures."""
    found: dict[str, Path] = {}
    missing: list[Failure] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in glob.glob(item, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not matches:
            missing.append(Failure(item, "no such file, or no images in that folder or pattern"))
        for match in matches:
            found.setdefault(str(match), match)
    return [found[k] for k in sorted(found)], missing


def read_image(path: Path) -> torch.Tensor:
    """(3, H, W) float RGB in [0, 1]: EXIF orientation applied, grayscale/RGBA/palette to RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        rgb = image.convert("RGB")
        array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


def load_model(checkpoint: str | None, model_name: str | None, untrained: bool) -> lifeiqa.LifeIQA:
    if checkpoint:
        if model_name:
            return lifeiqa.create_model(model_name, checkpoint=checkpoint)
        return lifeiqa.load_checkpoint(checkpoint)
    if not untrained:
        raise SystemExit(
            "lifeiqa-bench score: --checkpoint is required (no official Life-IQA weights are "
            "published). For a smoke run with random decoder weights add --untrained."
        )
    name = model_name or "lifeiqa_effnet_lite0"
    spec = lifeiqa.get_spec(name)
    print(f"warning: --untrained: {name} has a randomly initialised decoder; its scores are "
          f"meaningless", file=sys.stderr)
    return lifeiqa.create_model(name, pretrained=spec.pretrained_weights is not None)


def already_scored(out: Path) -> set[str]:
    with open(out, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["path", "score"]:
            raise SystemExit(f"{out}: cannot resume, expected a 'path,score' header, found {header}")
        return {row[0] for row in reader if len(row) == 2}


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start:start + size]


def score_paths(model: lifeiqa.LifeIQA, paths: list[Path], out: Path, batch_size: int,
                num_crops: int, device: torch.device, append: bool) -> tuple[int, list[Failure]]:
    """Score ``paths`` into ``out``; return how many were scored and the files that failed."""
    from rich.progress import Progress

    failures: list[Failure] = []
    scored = 0
    crop = model.config.input_size
    model = model.to(device).eval()
    with open(out, "a" if append else "w", newline="") as handle, \
            Progress(transient=True, console=None) as progress:
        writer = csv.writer(handle)
        if not append:
            writer.writerow(["path", "score"])
        task = progress.add_task("scoring", total=len(paths))
        for batch in _batches(paths, batch_size):
            images, names = [], []
            for path in batch:
                try:
                    image = read_image(path)
                    model.check_range(image)
                    images.append(image)
                    names.append(str(path))
                except Exception as err:  # any decode failure is reported, never fatal
                    failures.append(Failure(str(path), f"{type(err).__name__}: {err}"))
            if images:
                crops = torch.cat([extract_crops(img[None], crop, num_crops) for img in images])
                with torch.no_grad():
                    raw = model(crops.to(device)).score.view(len(images), num_crops).mean(1)
                scores = unit_scale(raw, model.label_scale).cpu().tolist()
                writer.writerows([name, f"{score:.6f}"] for name, score in zip(names, scores,
                                                                              strict=True))
                handle.flush()
                scored += len(scores)
            progress.advance(task, len(batch))
    return scored, failures


def run_score(inputs: list[str], checkpoint: str | None, model_name: str | None, out: str,
              batch_size: int, device: str, num_crops: int = DEFAULT_NUM_CROPS,
              untrained: bool = False, resume: bool = False, overwrite: bool = False) -> int:
    out_path = Path(out)
    if out_path.exists() and not (resume or overwrite):
        raise SystemExit(f"{out_path} exists: pass --resume to continue it or --overwrite")
    paths, failures = collect_images(inputs)
    done = already_scored(out_path) if resume and out_path.exists() else set()
    todo = [p for p in paths if str(p) not in done]
    model = load_model(checkpoint, model_name, untrained)
    scored, unreadable = score_paths(model, todo, out_path, batch_size, num_crops,
                                     resolve_device(device), append=resume and out_path.exists())
    failures += unreadable
    print(f"scored {scored} image(s) into {out_path}" + (f" ({len(done)} already there)" if done else ""))
    if failures:
        print(f"{len(failures)} input(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure.path}: {failure.reason}", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--checkpoint", help="a lifeiqa .safetensors checkpoint (or a .pth with --model)")
    parser.add_argument("--model", dest="model_name", help="preset name (default: the checkpoint's config)")
    parser.add_argument("--out", default="scores.csv", help="CSV to write (path,score); default scores.csv")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--num-crops", type=int, default=DEFAULT_NUM_CROPS,
                        help="crops per image on a uniform grid, averaged")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--untrained", action="store_true",
                        help="allow a smoke run without a checkpoint (scores are meaningless)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="skip paths already in --out")
    group.add_argument("--overwrite", action="store_true", help="replace an existing --out")
