"""Layer probes: one backbone stage, globally average-pooled, and a ridge-regression head.

The features are the probes' view of the shared frozen-backbone pass (one cache entry per image
and part, the Life-IQA units' own: :class:`harness.engine.features.BackbonePass`); the head is
closed-form ridge regression with the regularisation chosen by generalised cross-validation on
the training crops, so a probe is deterministic and, once the features are cached, takes
seconds per split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch

from harness.data.records import ImageRecord
from harness.engine import analyses
from harness.engine.families.base import EngineContext, EpochCallback, Trained
from harness.engine.families.lifeiqa import build_model
from harness.engine.features import StageExtractor
from harness.engine.parts import JobParts
from harness.engine.train import TrainOutcome
from harness.errors import InvalidOptionError
from harness.plan.jobs import Job

ALPHAS = np.logspace(-3, 4, 15)


def stage_matrix(features: Sequence[dict[str, torch.Tensor]], stride: int) -> np.ndarray:
    """(images * crops, channels) pooled features of one stage."""
    key = f"s{stride}"
    if features and key not in features[0]:
        available = sorted(int(k[1:]) for k in features[0])
        raise ValueError(f"the backbone has no feature stage at stride {stride}; it has strides "
                         f"{available}")
    return torch.cat([f[key] for f in features]).double().numpy()


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray = ALPHAS) -> tuple[np.ndarray, float, float]:
    """Ridge regression on standardised features with alpha chosen by generalised
    cross-validation; returns (weights over raw features incl. bias as last entry, alpha,
    GCV score). Works through the channels x channels Gram matrix, so memory stays at the size
    of ``x`` however many crops there are."""
    mean, std = x.mean(0), x.std(0) + 1e-8
    z = (x - mean) / std
    y_mean = y.mean()
    centred = y - y_mean
    eigenvalues, vectors = np.linalg.eigh(z.T @ z)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    projected = vectors.T @ (z.T @ centred)
    n = len(y)
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in alphas:
        beta = vectors @ (projected / (eigenvalues + alpha))
        dof = float(np.sum(eigenvalues / (eigenvalues + alpha)))
        gcv = float(np.sum((centred - z @ beta) ** 2)) / max(n - dof, 1e-9) ** 2
        if best is None or gcv < best[1]:
            best = (alpha, gcv, beta)
    assert best is not None  # alphas is never empty
    alpha, gcv, beta = best
    weights = beta / std
    bias = y_mean - float(mean @ weights)
    return np.append(weights, bias), float(alpha), gcv


def predict_ridge(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, x @ weights[:-1] + weights[-1])


def per_image(predictions: np.ndarray, crops: int) -> np.ndarray:
    return cast(np.ndarray, predictions.reshape(-1, crops).mean(1))


def stage_separability(x_train: np.ndarray, train: Sequence[ImageRecord], train_crops: int,
                       x_test: np.ndarray, test: Sequence[ImageRecord], test_crops: int,
                       stride: int) -> dict:
    """The separability of one stage's per-image features (the mean over each image's crops)
    by distortion type; images without a type are left out."""
    def typed(x: np.ndarray, records: Sequence[ImageRecord], crops: int) -> tuple[np.ndarray, list[str]]:
        images = x.reshape(len(records), crops, -1).mean(1)
        keep = [i for i, r in enumerate(records) if r.distortion]
        return images[keep], cast("list[str]", [records[i].distortion for i in keep])

    train_x, train_labels = typed(x_train, train, train_crops)
    test_x, test_labels = typed(x_test, test, test_crops)
    if len(set(test_labels)) < 2 or not train_labels:
        raise InvalidOptionError(
            f"the separability analysis needs distortion types: the test part has "
            f"{len(set(test_labels))} type(s) and the training part {len(train_labels)} typed "
            f"image(s); use a dataset with distortion types (tid2013, kadid10k, their synthetic "
            f"twins)")
    return {"stage": int(np.log2(stride)) - 1, "stride": stride,
            **analyses.separability(train_x, train_labels, test_x, test_labels)}


class ProbeFamily:
    """A ridge head on one pooled stage of the preset's frozen backbone."""

    kinds: tuple[str, ...] = ("probe",)

    def fit_predict(self, job: Job, parts: JobParts, context: EngineContext,
                    on_epoch: EpochCallback | None = None) -> Trained:
        recipe = job.recipe
        stride = job.model.spec.settings["stride"]
        model = build_model(job.model, job.seed)
        features = context.feature_cache(model, recipe, StageExtractor(model), job.crop_draw)
        x_train = stage_matrix(features.get_all(parts.train, "train"), stride)
        weights, alpha, gcv = fit_ridge(x_train, np.repeat(parts.train_y, recipe.train_crops))
        x_test = stage_matrix(features.get_all(parts.test, "test"), stride)
        predictions = per_image(predict_ridge(weights, x_test), recipe.test_crops)
        info = {"probe_stride": stride, "backbone": model.config.backbone,
                "features": int(x_train.shape[1]), "ridge_alpha": alpha, "gcv": gcv}
        found = {"separability": stage_separability(
            x_train, parts.train, recipe.train_crops, x_test, parts.test, recipe.test_crops,
            stride)} if job.analysis == "separability" else {}
        return Trained(TrainOutcome(predictions, 0, [{"ridge_alpha": alpha, "gcv": gcv}]),
                       None, info, None,
                       "closed form: ridge alpha by generalised cross-validation on the "
                       "training crops, no epochs", found)
