"""Training-free metrics used zero-shot: each test image is scored once with a pyiqa metric.

Scores are cached per (metric, pyiqa version, resize policy, image content hash), so the ten
test parts of a splits protocol cost one pass over the dataset. Predictions are stored raw; the
runner orients them by the metric's ``lower_better`` before correlating.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine.families.base import EngineContext, EpochCallback, Trained
from harness.engine.parts import JobParts
from harness.engine.train import TrainOutcome
from harness.fileio import atomic_write_text
from harness.plan.baselines import Baseline, get_baseline
from harness.plan.jobs import Job


class ZeroShotScorer:
    def __init__(self, baseline: Baseline, root: Path, images: DecodedImageCache,
                 resize_policy: str, device: torch.device) -> None:
        import pyiqa
        from pyiqa.default_model_configs import DEFAULT_CONFIGS

        self.baseline = baseline
        self.metric_name = baseline.settings["metric"]
        if self.metric_name not in DEFAULT_CONFIGS:
            raise RuntimeError(f"baseline {baseline.name}: pyiqa has no metric {self.metric_name!r}")
        self.lower_better = bool(DEFAULT_CONFIGS[self.metric_name].get("lower_better", False))
        self.images = images
        self.resize_policy = resize_policy
        self.device = device
        self.folder = root / f"{self.metric_name}-pyiqa{pyiqa.__version__}" / resize_policy.replace(":", "_")

    @cached_property
    def metric(self):
        """The pyiqa metric, built only when an image's score is not cached yet."""
        import pyiqa

        try:
            return pyiqa.create_metric(self.metric_name, device=self.device)
        except Exception as err:  # pyiqa fails with many types when weights are not cached
            raise RuntimeError(
                f"baseline {self.baseline.name}: pyiqa could not build {self.metric_name!r} "
                f"({type(err).__name__}: {err}). It needs {self.baseline.needs}; lifeiqa never "
                f"downloads weights, so fetch them once with pyiqa on a networked machine."
            ) from err

    def describe(self) -> dict:
        return {"metric": self.metric_name, "lower_better": self.lower_better,
                "resize_policy": self.resize_policy}

    @torch.no_grad()
    def score(self, record: ImageRecord) -> float:
        """The metric's raw score for one image (cached)."""
        digest = self.images.digest(record.path)
        path = self.folder / digest[:2] / f"{digest}.json"
        if path.is_file():
            try:
                return float(json.loads(path.read_text())["score"])
            except (ValueError, KeyError, OSError):
                pass  # a damaged entry is recomputed
        array = self.images.get(record.path, self.resize_policy)
        tensor = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1)[None].float() / 255
        value = float(self.metric(tensor.to(self.device)).flatten()[0])
        if not np.isfinite(value):
            raise ValueError(f"{record.source or record.path}: {self.metric_name} gave a "
                             f"non-finite score {value}")
        atomic_write_text(path, json.dumps({"score": value, "image": str(record.path)}))
        return value

    def predict(self, records: Sequence[ImageRecord]) -> np.ndarray:
        """The metric's raw scores (``lower_better`` says their direction)."""
        return np.array([self.score(r) for r in records], dtype=np.float64)


class TrainingFreeFamily:
    """A pyiqa metric applied zero-shot to the test part; nothing is trained."""

    kinds = ("training_free",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        baseline = get_baseline(job.model.variant)
        scorer = ZeroShotScorer(baseline, context.cache_root / "zero_shot", context.images,
                                job.recipe.resize_policy, context.device)
        info = {**scorer.describe(), "trained_on": list(baseline.trained_on or ())}
        return Trained(TrainOutcome(scorer.predict(parts.test), 0), None, info,
                       not scorer.lower_better, "zero-shot: no training, no epochs")
