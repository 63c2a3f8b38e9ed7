"""Correlation metrics of IQA, their aggregation over splits, and model comparison.

Conventions: correlations are oriented so that higher means better agreement (a model trained
on a lower-is-better DMOS is compared against the negated labels, see :func:`evaluate`). A
constant prediction carries no ranking: its correlations are defined as 0.0 (not NaN), so
aggregation never breaks on a collapsed model.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

# scipy is imported where it is used: importing scipy.stats costs a command that only lists or
# reads results most of a second.


def _constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def _check(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"predictions ({pred.size}) and targets ({target.size}) differ in length")
    if pred.size < 2:
        raise ValueError(f"need at least 2 pairs to correlate, found {pred.size}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(target))):
        raise ValueError("predictions and targets must be finite")
    return pred, target


def srcc(pred: ArrayLike, target: ArrayLike) -> float:
    from scipy import stats

    pred, target = _check(pred, target)
    if _constant(pred) or _constant(target):
        return 0.0
    return float(stats.spearmanr(pred, target).statistic)


def krcc(pred: ArrayLike, target: ArrayLike) -> float:
    from scipy import stats

    pred, target = _check(pred, target)
    if _constant(pred) or _constant(target):
        return 0.0
    return float(stats.kendalltau(pred, target).statistic)


def plcc(pred: ArrayLike, target: ArrayLike) -> float:
    from scipy import stats

    pred, target = _check(pred, target)
    if _constant(pred) or _constant(target):
        return 0.0
    return float(stats.pearsonr(pred, target).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    z = np.clip(-(x - b3) / (abs(b4) + 1e-12), -500, 500)
    return (b1 - b2) / (1 + np.exp(z)) + b2


def fit_logistic(pred: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Predictions mapped onto the target scale by a fitted 4-parameter logistic.

    If the fit does not converge (tiny or degenerate data) a least-squares linear map is used
    instead, which keeps PLCC equal to the raw PLCC.
    """
    from scipy import optimize

    pred, target = _check(pred, target)
    if _constant(pred):
        return np.full_like(target, target.mean())
    initial = [target.max(), target.min(), float(np.mean(pred)), float(np.std(pred)) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # trf steps relative to max(1, |p|), so a near-zero centre still moves (lm would not)
            params, _ = optimize.curve_fit(logistic4, pred, target, p0=initial, method="trf",
                                           maxfev=20000)
        mapped = logistic4(pred, *params)
        if np.all(np.isfinite(mapped)):
            return mapped
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        pass
    slope, intercept = np.polyfit(pred, target, 1)
    linear: np.ndarray = slope * pred + intercept
    return linear


@dataclass(frozen=True)
class Scores:
    srcc: float
    krcc: float
    plcc: float
    plcc_logistic: float
    rmse_logistic: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def evaluate(pred: ArrayLike, target: ArrayLike, higher_is_better: bool = True) -> Scores:
    """All metrics of one evaluation. ``higher_is_better=False`` (DMOS labels) flips the
    targets' sign for the correlations, so a good model scores positive correlations; the
    RMSE is computed on the labels' own scale after the logistic mapping."""
    pred, target = _check(pred, target)
    oriented = target if higher_is_better else -target
    mapped = fit_logistic(pred, target)
    return Scores(
        srcc=srcc(pred, oriented),
        krcc=krcc(pred, oriented),
        plcc=plcc(pred, oriented),
        plcc_logistic=plcc(mapped, target),  # the fit absorbs the direction
        rmse_logistic=float(np.sqrt(np.mean((mapped - target) ** 2))),
        n=int(pred.size),
    )


@dataclass(frozen=True)
class Summary:
    """A metric over units (splits or seeds): the median is the headline, as the field reports.

    ``ci_low``/``ci_high`` are the distribution-free order-statistic interval for the median,
    ``[x(j), x(n + 1 - j)]`` of the sorted values, and ``coverage`` its exact coverage
    (:func:`median_interval`): at least the confidence asked for where ``n >= 6``, else the
    range of the values with the coverage it has (75 % at n = 3, 93.75 % at n = 5; 0 for one
    value, which is no interval)."""

    median: float
    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int
    coverage: float

    @property
    def interval_is_short(self) -> bool:
        """True when too few values reach the confidence asked for: the interval is the range."""
        return self.coverage < CONFIDENCE


CONFIDENCE = 0.95


@functools.cache  # the statistics self-test asks for the same few (n, j) 170,000 times
def order_statistic_coverage(n: int, j: int) -> float:
    """The exact coverage of ``[x(j), x(n + 1 - j)]`` for the median of a continuous
    distribution from ``n`` independent draws: ``P(j <= B <= n - j)``, ``B ~ Binomial(n, 1/2)``."""
    from scipy import stats

    return float(1.0 - 2.0 * stats.binom.cdf(j - 1, n, 0.5))


def median_interval(n: int, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """``(j, coverage)``: the narrowest order-statistic interval ``[x(j), x(n + 1 - j)]`` whose
    coverage reaches ``confidence``; ``j = 1`` (the range) with its smaller coverage when no
    interval reaches it (n < 6 at 95 %)."""
    if n < 1:
        raise ValueError(f"an interval needs at least one value, found {n}")
    for j in range(n // 2, 1, -1):  # coverage falls as j grows: the first hit is the narrowest
        coverage = order_statistic_coverage(n, j)
        if coverage >= confidence:
            return j, coverage
    return 1, order_statistic_coverage(n, 1)


def summarize(values: ArrayLike, confidence: float = CONFIDENCE) -> Summary:
    """Median, mean, std (ddof 1) and the order-statistic interval of the median."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if values.size == 0:
        raise ValueError("no values to summarise")
    j, coverage = median_interval(values.size, confidence)
    return Summary(
        median=float(np.median(values)), mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        ci_low=float(values[j - 1]), ci_high=float(values[values.size - j]),
        n=int(values.size), coverage=coverage,
    )


def holm(p_values: ArrayLike) -> list[float]:
    """Holm's step-down adjustment: ``p`` adjusted for the family of all of ``p_values``
    (monotone in the raw order, capped at 1). Rejecting where the adjusted ``p < alpha`` keeps
    the chance of any false rejection in the family at most ``alpha``, whatever the dependence
    between the tests."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    adjusted_list: list[float] = adjusted.tolist()
    return adjusted_list


# A paired difference at or below this is rounding, not a difference (one prediction's SRCC
# computed twice agrees to ~1e-15); a real SRCC difference on a test part of n images is at least
# 6 / (n (n^2 - 1)), about 7.5e-10 at n = 2000, so no real difference is taken for a tie.
TIE_TOLERANCE = 1e-12


def signed_rank_p(differences: ArrayLike) -> float:
    """The exact two-sided p-value of Wilcoxon's signed-rank test: zero differences (at most
    :data:`TIE_TOLERANCE`) dropped, as Wilcoxon did; tied magnitudes get mid-ranks and the
    null distribution is that of these very ranks under random signs, so the p-value is exact
    with ties too and depends on no library's choice between exact and normal approximations
    (which scipy has changed between versions). 1.0 without a non-zero difference."""
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.abs(d) > TIE_TOLERANCE]
    if d.size == 0:
        return 1.0
    doubled = doubled_midranks(np.abs(d))
    ways = _sign_pattern_counts(tuple(sorted(doubled.tolist())))
    total = ways.size - 1
    centre = total / 2
    observed = abs(int(doubled[d > 0].sum()) - centre)
    extreme = np.abs(np.arange(total + 1) - centre) >= observed - 1e-9
    return min(1.0, float(ways[extreme].sum() / ways.sum()))


def doubled_midranks(values: np.ndarray) -> np.ndarray:
    """Twice the average ranks (1-based) of ``values``: integers, as mid-ranks are halves.
    (scipy's rankdata gives the same ranks; this is ten times faster, which the re-tests under
    rerun noise, thousands of tests per table, need.)"""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (2 * ends - counts + 1)[inverse].astype(np.int64)


@functools.lru_cache(maxsize=256)
def _sign_pattern_counts(doubled: tuple[int, ...]) -> np.ndarray:
    """``ways[s]``: how many of the 2^n sign patterns give the positive ranks the doubled sum
    ``s`` (the exact null distribution of these ranks; cached: without ties it is the same for
    every test with n pairs)."""
    ways = np.zeros(sum(doubled) + 1)
    ways[0] = 1.0
    for rank in doubled:
        ways[rank:] = ways[rank:] + ways[:-rank].copy()
    ways.flags.writeable = False
    return ways


def paired_wilcoxon(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value for per-split scores of two models on the same
    splits (:func:`signed_rank_p` of the differences); 1.0 when every difference is zero (no
    evidence of a difference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same splits: {a.size} vs {b.size} scores")
    return signed_rank_p(a - b)
