"""Weak labels for synthetic images: a consensus of offline full-reference metrics.

Training on full-reference proxy scores is published practice (KADIS-700k with DeepFL-IQA,
Lin, Hosu & Saupe 2019/2020). Here several pyiqa full-reference metrics are computed between
each distorted image and its pristine reference; each metric's scores are rank-normalised over
the whole dataset (so no metric's units dominate) and averaged into a quality in [0, 1], higher
is better, which is then mapped to the target dataset's native scale and direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# Offline, in close rank agreement on mixed distortions (docs/design.md section 5), and from three
# families (gradient similarity, normalised Laplacian pyramid, phase congruency). VSI agrees as
# well but costs ~60 ms per image at any size on 2 CPU cores (it resizes internally to 256x256).
DEFAULT_METRICS = ("gmsd", "nlpd", "fsim")
# Labels are computed at this fraction of the image size, a cost/fidelity trade-off.
DEFAULT_LABEL_SCALE = 0.5


def _to_tensor(images: Sequence[np.ndarray], scale: float) -> torch.Tensor:
    import torch  # here, as in full_reference_scores: commands that never label start faster
    import torch.nn.functional as F

    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    if scale != 1.0:
        batch = F.interpolate(batch, scale_factor=scale, mode="bilinear", antialias=True,
                              align_corners=False).clamp(0, 1)
    return batch


def full_reference_scores(distorted: Sequence[np.ndarray], references: Sequence[np.ndarray],
                          metrics: Sequence[str] = DEFAULT_METRICS,
                          scale: float = DEFAULT_LABEL_SCALE, batch_size: int = 16
                          ) -> dict[str, np.ndarray]:
    """Raw scores of each metric for each (distorted, reference) pair, oriented so that higher
    is better (metrics where lower is better are negated)."""
    import pyiqa
    import torch

    if len(distorted) != len(references):
        raise ValueError(f"{len(distorted)} distorted images but {len(references)} references")
    results: dict[str, np.ndarray] = {}
    for name in metrics:
        metric = pyiqa.create_metric(name, device="cpu")
        sign = -1.0 if metric.lower_better else 1.0
        values = []
        with torch.no_grad():
            for start in range(0, len(distorted), batch_size):
                dist = _to_tensor(distorted[start:start + batch_size], scale)
                ref = _to_tensor(references[start:start + batch_size], scale)
                values.append(metric(dist, ref).reshape(-1).double().numpy())
        results[name] = sign * np.concatenate(values)
    return results


def consensus_quality(scores: dict[str, np.ndarray]) -> np.ndarray:
    """Mean over metrics of rank-normalised scores: a quality in [0, 1], higher is better."""
    from scipy.stats import rankdata  # here: scipy.stats costs every command most of a second

    if not scores:
        raise ValueError("no metric scores to combine")
    ranks = []
    for name, values in scores.items():
        if not np.all(np.isfinite(values)):
            bad = int(np.sum(~np.isfinite(values)))
            raise ValueError(f"metric {name} gave {bad} non-finite score(s)")
        n = len(values)
        ranks.append((rankdata(values) - 1) / max(n - 1, 1))
    quality: np.ndarray = np.mean(ranks, axis=0)
    return quality


def to_native_scale(quality: np.ndarray, low: float, high: float, higher_is_better: bool,
                    rater_noise: float = 0.0, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
    """Map [0, 1] qualities onto a dataset's scale; ``rater_noise`` adds Gaussian noise with
    that standard deviation in units of the scale's range (clipped to the scale), imitating
    the disagreement of human raters."""
    quality = np.asarray(quality, dtype=np.float64)
    if rater_noise > 0:
        if rng is None:
            raise ValueError("rater_noise needs an explicit rng so labels stay reproducible")
        quality = np.clip(quality + rng.normal(0, rater_noise, size=quality.shape), 0, 1)
    oriented = quality if higher_is_better else 1 - quality
    return low + oriented * (high - low)
