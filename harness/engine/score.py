"""Scoring image files and folders into a CSV (``path,score``): ``lifeiqa-bench score``.

Rows are written and flushed batch by batch, so an interrupted run keeps what it scored and
``resume`` continues it. Unreadable files are skipped and returned with the reason (the command
lists them and exits non-zero).
"""

from __future__ import annotations

import csv
import glob
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import lifeiqa
from harness.device import resolve_device
from harness.errors import InvalidOptionError
from lifeiqa.config import DEFAULT_NUM_CROPS
from lifeiqa.inference import extract_crops, unit_scale

log = logging.getLogger(__name__)

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


def registered_name(model_name: str | None) -> str:
    """The registered-weights name (``lifeiqa-bench weights list``) that ``--model`` means: a
    metric name itself (default ``lifeiqa``), or the one whose architecture is the preset's."""
    from lifeiqa import weights

    names = weights.metric_names()
    if model_name is None or model_name in names:
        return model_name or "lifeiqa"
    matching = [name for name in names if weights.metric_preset(name) == model_name]
    if not matching:
        raise InvalidOptionError(
            f"--model {model_name}: no weights can be registered for it (weights are registered "
            f"for {', '.join(names)}: the presets {', '.join(map(weights.metric_preset, names))}); "
            f"pass --checkpoint FILE, or --untrained for a smoke run")
    return matching[0]


def load_model(checkpoint: str | None, model_name: str | None, untrained: bool) -> lifeiqa.LifeIQA:
    """The model to score with: ``checkpoint`` (of preset ``model_name`` for a plain state
    dict), a random decoder with ``untrained``, else the weights registered for ``model_name``
    (a metric name or a preset; by default ``lifeiqa``'s), as ``pyiqa.create_metric`` loads
    them."""
    from lifeiqa import weights

    if checkpoint:
        if model_name:
            return lifeiqa.create_model(model_name, checkpoint=checkpoint)
        return lifeiqa.load_checkpoint(checkpoint)
    if untrained:
        name = model_name or "lifeiqa_effnet_lite0"
        spec = lifeiqa.get_spec(name)
        log.warning("warning: --untrained: %s has a randomly initialised decoder; its scores "
                    "are meaningless", name)
        return lifeiqa.create_model(name, pretrained=spec.pretrained_weights is not None)
    name = registered_name(model_name)
    path = weights.default_weights(name)
    if path is None:
        raise InvalidOptionError(weights.missing_weights_message(name) + "\nFor a smoke run "
                                 "with a random decoder: --untrained.")
    log.info("scoring with the weights of %r: %s", name, path)
    return weights.load_for(weights.metric_preset(name), path, f"metric {name!r}")


def already_scored(out: Path) -> set[str]:
    with open(out, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["path", "score"]:
            raise InvalidOptionError(f"{out}: cannot resume, expected a 'path,score' header, "
                                     f"found {header}")
        return {row[0] for row in reader if len(row) == 2}


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start:start + size]


def score_paths(model: lifeiqa.LifeIQA, paths: list[Path], out: Path, batch_size: int,
                num_crops: int, device: torch.device, append: bool,
                progress: bool = False) -> tuple[int, list[Failure]]:
    """Score ``paths`` into ``out``; return how many were scored and the files that failed.
    ``progress``: a live display on stderr."""
    from rich.progress import Progress

    failures: list[Failure] = []
    scored = 0
    crop = model.config.input_size
    model = model.to(device).eval()
    with open(out, "a" if append else "w", newline="") as handle, \
            Progress(transient=True, disable=not progress) as bars:
        writer = csv.writer(handle)
        if not append:
            writer.writerow(["path", "score"])
        task = bars.add_task("scoring", total=len(paths))
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
            bars.advance(task, len(batch))
    return scored, failures


@dataclass(frozen=True)
class ScoreReport:
    out: Path
    scored: int
    already_there: int
    failures: tuple[Failure, ...]


def score_images(inputs: list[str], out: str | Path, checkpoint: str | None = None,
                 model_name: str | None = None, batch_size: int = 8, device: str = "auto",
                 num_crops: int = DEFAULT_NUM_CROPS, untrained: bool = False,
                 resume: bool = False, overwrite: bool = False,
                 progress: bool = False) -> ScoreReport:
    """Score the images named by ``inputs`` (files, folders, glob patterns) into ``out``."""
    out_path = Path(out)
    if out_path.exists() and not (resume or overwrite):
        raise InvalidOptionError(f"{out_path} exists: pass --resume to continue it or --overwrite")
    for name, value in (("batch_size", batch_size), ("num_crops", num_crops)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidOptionError(f"--{name.replace('_', '-')} {value!r}: expected an "
                                     f"integer >= 1")
    torch_device = resolve_device(device)
    paths, failures = collect_images(inputs)
    done = already_scored(out_path) if resume and out_path.exists() else set()
    todo = [p for p in paths if str(p) not in done]
    model = load_model(checkpoint, model_name, untrained)
    scored, unreadable = score_paths(model, todo, out_path, batch_size, num_crops, torch_device,
                                     append=resume and out_path.exists(), progress=progress)
    return ScoreReport(out_path, scored, len(done), tuple(failures + unreadable))
