"""The statistics' self-test: the harness's own inference run on simulated data whose truth is
known, to say how far a reader can trust an interval and a ▲ (``lifeiqa-bench selftest stats``).

Three figures, seeded:

* **coverage of the median interval** (:func:`harness.results.metrics.summarize`) at n = 3, 5
  and 10 units: a model's SRCC on a random 20 % test part of a fixed population of images
  (predictions = quality + noise) is one unit; the truth is the median of that SRCC over
  very many test parts; the interval of n units covers it as often as its stated exact
  coverage says (or it is wrong).
* **the family-wise false-alarm rate of ▲/▼** under the null for a 15-model x 7-dataset table
  of 10 (and 20) splits: every model is as good as the reference, each split shifts all models alike,
  and each model's per-split score scatters with sd ``sd / sqrt(2)`` (so paired differences
  have sd ``sd``); the rate is the share of tables with any marker, Holm-adjusted as the
  leaderboard does and, for contrast, uncorrected.
* **the power** to mark a true SRCC gain of 0.01 and 0.02 of one model on one dataset, over
  10 (and 20) splits, alone (a family of one) and inside the full table (a family of 98).

The markers use the leaderboard's test (the exact two-sided Wilcoxon signed-rank, here
vectorised: :func:`signed_rank_p_values`, equal to :func:`metrics.paired_wilcoxon` on data
without ties) and its adjustment (:func:`metrics.holm`).

The spread assumed: paired per-split differences between two models with sd 0.01 (close
relatives, e.g. an ablation) and 0.02 (different architectures); 10-split IQA results
typically show per-split SRCC standard deviations of 0.005-0.03, and pairing on the same
splits removes the split effect shared by both models. The simulation treats the splits as
independent; random splits of one dataset overlap, which makes differences positively
correlated across splits and real tests somewhat less conservative than simulated here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from harness.results import metrics

MODELS, DATASETS, SPLITS = 15, 7, 10  # the comparison table the issue names
COVERAGE_SIZES = (3, 5, 10)
GAINS = (0.01, 0.02)
SPREADS = (0.01, 0.02)


@dataclass(frozen=True)
class SelfTestSize:
    """How many simulated draws each figure uses (the test runs a reduced size)."""

    coverage_trials: int = 4000
    null_tables: int = 2000
    power_trials: int = 2000
    population: int = 2000  # images; a unit's test part is 20 % of them
    truth_draws: int = 20000


@dataclass(frozen=True)
class StatsSelfTest:
    """The self-test's figures (see the module doc)."""

    size: SelfTestSize
    seed: int
    coverage: dict[int, tuple[float, float]]  # n -> (stated exact coverage, simulated)
    # splits -> (Holm, uncorrected): the share of null tables with any marker, and the mean
    # number of uncorrected markers per null table
    fwer: dict[int, tuple[float, float, float]]
    power: dict[tuple[float, float, int, int], float] = field(default_factory=dict)
    # (gain, sd, splits, family) -> share of trials that mark the gain ▲

    def text(self) -> str:
        """The figures as the command prints them (and README.md quotes them)."""
        s = self.size
        lines = [f"Statistical self-test (seed {self.seed}).", "",
                 f"Coverage of the median interval (order-statistic, {s.coverage_trials} "
                 f"simulated cells per n; truth: median SRCC over {s.truth_draws} test parts):"]
        for n, (stated, simulated) in self.coverage.items():
            lines.append(f"  n={n:2d}: stated {stated:6.1%}, simulated {simulated:6.1%}")
        lines += ["", f"Family-wise false-alarm rate of ▲/▼ under the null ({MODELS} models x "
                      f"{DATASETS} datasets: {(MODELS - 1) * DATASETS} comparisons, "
                      f"{s.null_tables} tables):"]
        for splits, (holm, raw, spurious) in self.fwer.items():
            lines.append(f"  {splits:2d} splits: Holm over the table {holm:.3f}; uncorrected "
                         f"p < 0.05 {raw:.3f} ({spurious:.1f} spurious markers per table)")
        lines += ["",
                  f"Power to mark a true SRCC gain ▲ ({s.power_trials} trials each; sd: of the "
                  f"paired per-split differences; family: comparisons Holm adjusts over):"]
        for (gain, sd, splits, family), power in self.power.items():
            lines.append(f"  gain {gain:.2f}, sd {sd:.2f}, {splits:2d} splits, family "
                         f"{family:3d}: {power:.3f}")
        return "\n".join(lines)


# --- the exact signed-rank test, vectorised ---------------------------------------------------


@cache
def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(W+ <= w) for w = 0 .. n(n+1)/2 under the null, by counting subsets of ranks 1..n."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return np.cumsum(counts) / 2.0 ** n


def signed_rank_p_values(differences: np.ndarray) -> np.ndarray:
    """Exact two-sided Wilcoxon signed-rank p-values of each row of ``differences`` (rows of
    n paired differences without zeros or ties, as continuous simulated data has)."""
    d = np.asarray(differences, dtype=np.float64)
    n = d.shape[-1]
    ranks = np.argsort(np.argsort(np.abs(d), axis=-1), axis=-1) + 1
    w = np.where(d > 0, ranks, 0).sum(axis=-1)
    cdf = _signed_rank_cdf(n)
    total = n * (n + 1) // 2
    lower = cdf[w]  # P(W+ <= w)
    upper = cdf[total - w]  # P(W+ >= w) by symmetry
    return np.minimum(1.0, 2.0 * np.minimum(lower, upper))


def _holm_marks(p: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Which of each row's p-values Holm's procedure rejects (rows are families)."""
    return np.array([np.asarray(metrics.holm(row)) < alpha for row in p])


# --- the three figures -----------------------------------------------------------------------


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SRCC of each row pair (continuous data: no ties)."""
    rx = np.argsort(np.argsort(x, axis=1), axis=1).astype(np.float64)
    ry = np.argsort(np.argsort(y, axis=1), axis=1).astype(np.float64)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    return (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))


def _unit_srccs(rng: np.random.Generator, quality: np.ndarray, prediction: np.ndarray,
                draws: int, chunk: int = 2000) -> np.ndarray:
    """A model's SRCC on ``draws`` random 20 % test parts of the population."""
    part = quality.size // 5
    out = []
    for start in range(0, draws, chunk):
        rows = min(chunk, draws - start)
        index = np.argsort(rng.random((rows, quality.size)), axis=1)[:, :part]
        out.append(_spearman_rows(prediction[index], quality[index]))
    return np.concatenate(out)


def coverage(rng: np.random.Generator, size: SelfTestSize) -> dict[int, tuple[float, float]]:
    """n -> (stated exact coverage, simulated coverage) of :func:`metrics.summarize`'s interval."""
    quality = rng.normal(size=size.population)
    prediction = quality + rng.normal(scale=0.5, size=size.population)
    truth = float(np.median(_unit_srccs(rng, quality, prediction, size.truth_draws)))
    out = {}
    for n in COVERAGE_SIZES:
        values = _unit_srccs(rng, quality, prediction, size.coverage_trials * n)
        hits = [(s.ci_low <= truth <= s.ci_high, s.coverage)
                for s in (metrics.summarize(row) for row in values.reshape(-1, n))]
        out[n] = (hits[0][1], float(np.mean([hit for hit, _ in hits])))
    return out


def _table_scores(rng: np.random.Generator, tables: int, splits: int, sd: float) -> np.ndarray:
    """Per-split scores, shape (tables, datasets, models, splits): a true SRCC per dataset, a
    split effect shared by every model, and per-model noise of sd ``sd / sqrt(2)``."""
    truth = rng.uniform(0.80, 0.95, (tables, DATASETS, 1, 1))
    split_effect = rng.normal(scale=0.02, size=(tables, DATASETS, 1, splits))
    noise = rng.normal(scale=sd / math.sqrt(2), size=(tables, DATASETS, MODELS, splits))
    return truth + split_effect + noise


def false_alarms(rng: np.random.Generator, size: SelfTestSize, splits: int,
                 sd: float = 0.01) -> tuple[float, float, float]:
    """Under the null: the share of tables with any marker (Holm; uncorrected) and the mean
    number of uncorrected markers per table."""
    scores = _table_scores(rng, size.null_tables, splits, sd)
    differences = scores[:, :, 1:, :] - scores[:, :, :1, :]  # model 0 is the reference
    p = signed_rank_p_values(differences).reshape(size.null_tables, -1)
    raw = p < 0.05
    return (float(_holm_marks(p).any(axis=1).mean()), float(raw.any(axis=1).mean()),
            float(raw.sum(axis=1).mean()))


def power(rng: np.random.Generator, size: SelfTestSize, gain: float, sd: float, splits: int,
          family: int) -> float:
    """The share of trials in which a true ``gain`` of one model on one dataset is marked ▲,
    Holm-adjusted over a family of ``family`` comparisons (the others null)."""
    differences = rng.normal(scale=sd, size=(size.power_trials, family, splits))
    differences[:, 0, :] += gain
    p = signed_rank_p_values(differences)
    marked = _holm_marks(p)[:, 0]
    better = np.median(differences[:, 0, :], axis=1) > 0
    return float((marked & better).mean())


def run_stats_selftest(seed: int = 0, size: SelfTestSize | None = None) -> StatsSelfTest:
    """All three figures, seeded (about half a minute at the default size on one core)."""
    size = size or SelfTestSize()
    rng = np.random.default_rng(seed)
    covered = coverage(rng, size)
    fwer = {splits: false_alarms(rng, size, splits) for splits in (SPLITS, 2 * SPLITS)}
    family = (MODELS - 1) * DATASETS
    figures = {(gain, sd, splits, k): power(rng, size, gain, sd, splits, k)
               for gain in GAINS for sd in SPREADS for splits in (SPLITS, 2 * SPLITS)
               for k in (1, family)}
    return StatsSelfTest(size, seed, covered, fwer, figures)
