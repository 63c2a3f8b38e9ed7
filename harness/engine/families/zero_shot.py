"""Zero-shot scorers: each test image is scored once by an object that needs no training.

The registry entry's factory builds the scorer from the row's model arguments: pyiqa's metric
for the pyiqa rows, or a plug-in's scorer, called on one whole image at a time as a (1, 3, H, W)
batch in [0, 1] at the recipe's resize policy. Scores are cached per (scorer, its code version,
its arguments, resize policy, image content hash), so the ten test parts of a splits protocol
cost one pass over the dataset. Predictions are stored raw; the runner orients them by the
entry's ``lower_better`` before correlating.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import cast

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine.families.base import (
    EngineContext,
    EpochCallback,
    Trained,
    check_finite,
    model_label,
    registry_info,
    scores_of,
)
from harness.engine.parts import JobParts
from harness.engine.train import TrainOutcome
from harness.errors import ExecutionError
from harness.fileio import atomic_write_text
from harness.plan.jobs import Job
from harness.plan.models import ModelRef


def cache_name(model: ModelRef) -> str:
    """The scores' cache folder: what determines them besides the image and resize policy
    (pyiqa's metric and version, or a plug-in's name and version, and the model arguments)."""
    spec = model.spec
    if "metric" in spec.settings:
        import pyiqa

        name = f"{spec.settings['metric']}-pyiqa{pyiqa.__version__}"
    else:
        name = f"{spec.name}-{spec.plugin.version if spec.plugin else 'builtin'}"
    if model.args:
        name += "-args" + hashlib.sha256(model.args.encode()).hexdigest()[:12]
    return name.replace(":", "_").replace("/", "_")


class ZeroShotScorer:
    def __init__(self, model: ModelRef, root: Path, images: DecodedImageCache,
                 resize_policy: str, device: torch.device) -> None:
        self.model = model
        self.lower_better = bool(model.spec.lower_better)
        self.images = images
        self.resize_policy = resize_policy
        self.device = device
        self.folder = root / cache_name(model) / resize_policy.replace(":", "_")

    @cached_property
    def scorer(self) -> Callable[..., object]:
        """The scorer, built only when an image's score is not cached yet: a factory with a
        ``device`` parameter gets the device; a module is moved there and put in eval mode."""
        # every zero-shot entry has a factory (the built-ins do; register_bench_model requires one)
        factory = cast("Callable[..., object]", self.model.spec.factory)
        try:
            takes_device = "device" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_device = False
        try:
            scorer = factory(**self.model.arguments, **({"device": self.device} if takes_device
                                                        else {}))
        except Exception as err:  # pyiqa fails with many types when weights are not cached
            raise ExecutionError(
                f"{model_label(self.model)} could not be built ({type(err).__name__}: {err}). "
                f"It needs {self.model.spec.needs or 'its plug-in'}; lifeiqa never downloads "
                f"weights, so fetch them once on a networked machine.") from err
        if isinstance(scorer, torch.nn.Module):
            scorer = scorer.to(self.device).eval()
        if not callable(scorer):
            raise ExecutionError(f"{model_label(self.model)}: its factory returned a "
                                 f"{type(scorer).__name__}, which cannot be called on images")
        return scorer

    def describe(self) -> dict:
        return {**registry_info(self.model), **self.model.spec.settings,
                "lower_better": self.lower_better, "resize_policy": self.resize_policy}

    @torch.no_grad()
    def score(self, record: ImageRecord) -> float:
        """The scorer's raw score for one image (cached)."""
        digest = self.images.digest(record.path)
        path = self.folder / digest[:2] / f"{digest}.json"
        if path.is_file():
            try:
                return float(json.loads(path.read_text())["score"])
            except (ValueError, KeyError, OSError):
                pass  # a damaged entry is recomputed
        array = self.images.get(record.path, self.resize_policy)
        tensor = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1)[None].float() / 255
        score = scores_of(self.scorer(tensor.to(self.device)), 1, self.model)
        check_finite(score, self.model, f"for {record.source or record.path}")
        value = float(score[0])
        # a cache entry, recomputed when damaged: no fsync (see atomic_write)
        atomic_write_text(path, json.dumps({"score": value, "image": str(record.path)}),
                          durable=False)
        return value

    def predict(self, records: Sequence[ImageRecord]) -> np.ndarray:
        """The raw scores (``lower_better`` says their direction)."""
        return np.array([self.score(r) for r in records], dtype=np.float64)


class ZeroShotFamily:
    """A scorer applied to the test part; nothing is trained."""

    kinds: tuple[str, ...] = ("zero_shot",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        scorer = ZeroShotScorer(job.model, context.cache_root / "zero_shot", context.images,
                                job.recipe.resize_policy, context.device)
        info = {**scorer.describe(), "trained_on": list(job.model.spec.trained_on or ())}
        return Trained(TrainOutcome(scorer.predict(parts.test), 0), None, info,
                       not scorer.lower_better, "zero-shot: no training, no epochs")
