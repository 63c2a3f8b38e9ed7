"""Metrics checked against scipy on fixed vectors, including ties and constant predictions."""

import numpy as np
import pytest
from scipy import stats

from harness.results import metrics

PRED = np.array([0.1, 0.4, 0.35, 0.8, 0.62, 0.9, 0.05, 0.5])
TARGET = np.array([1.2, 2.9, 3.1, 4.4, 3.9, 4.8, 1.0, 3.0])
TIED_PRED = np.array([1, 2, 2, 3, 3, 3, 4, 5], dtype=float)


def test_correlations_equal_scipy():
    assert metrics.srcc(PRED, TARGET) == pytest.approx(stats.spearmanr(PRED, TARGET).statistic)
    assert metrics.krcc(PRED, TARGET) == pytest.approx(stats.kendalltau(PRED, TARGET).statistic)
    assert metrics.plcc(PRED, TARGET) == pytest.approx(stats.pearsonr(PRED, TARGET).statistic)


def test_ties_follow_scipy():
    assert metrics.srcc(TIED_PRED, TARGET) == pytest.approx(stats.spearmanr(TIED_PRED, TARGET).statistic)
    assert metrics.krcc(TIED_PRED, TARGET) == pytest.approx(stats.kendalltau(TIED_PRED, TARGET).statistic)


def test_constant_predictions_are_defined_as_zero():
    constant = np.full(8, 0.3)
    assert metrics.srcc(constant, TARGET) == 0.0
    assert metrics.krcc(constant, TARGET) == 0.0
    assert metrics.plcc(constant, TARGET) == 0.0
    scores = metrics.evaluate(constant, TARGET)
    assert scores.plcc_logistic == 0.0
    assert scores.rmse_logistic == pytest.approx(np.sqrt(np.mean((TARGET - TARGET.mean()) ** 2)))


def test_logistic_mapping_fits_a_logistic_relation():
    x = np.linspace(-3, 3, 40)
    y = metrics.logistic4(x, 5.0, 1.0, 0.5, 0.8)
    mapped = metrics.fit_logistic(x, y)
    np.testing.assert_allclose(mapped, y, atol=1e-4)
    scores = metrics.evaluate(x, y)
    assert scores.plcc_logistic == pytest.approx(1.0, abs=1e-6)
    assert scores.rmse_logistic == pytest.approx(0.0, abs=1e-3)
    assert scores.plcc < scores.plcc_logistic  # the raw relation is not linear


def test_lower_is_better_labels_are_oriented():
    dmos = -TARGET
    scores = metrics.evaluate(PRED, dmos, higher_is_better=False)
    assert scores.srcc == pytest.approx(metrics.srcc(PRED, TARGET))
    assert scores.plcc_logistic > 0.9


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.srcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        metrics.srcc([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.srcc([1], [1])


def test_summary_and_order_statistic_interval():
    values = np.array([0.90, 0.92, 0.91, 0.95, 0.89, 0.93, 0.94, 0.92, 0.90, 0.91])
    summary = metrics.summarize(values)
    assert summary.median == pytest.approx(np.median(values))
    assert summary.mean == pytest.approx(values.mean())
    assert summary.std == pytest.approx(values.std(ddof=1))
    assert (summary.ci_low, summary.ci_high) == (0.90, 0.94)  # x(2) and x(9) of ten
    assert summary.coverage == pytest.approx(1 - 22 / 1024)
    one = metrics.summarize([0.5])
    assert (one.ci_low, one.ci_high, one.coverage, one.std) == (0.5, 0.5, 0.0, 0.0)


def test_paired_wilcoxon_equals_scipy_and_handles_identity():
    a = np.array([0.90, 0.92, 0.91, 0.95, 0.89, 0.93, 0.94, 0.92, 0.90, 0.91])
    b = a - np.array([0.01, 0.02, 0.005, 0.03, 0.0, 0.01, 0.02, 0.015, 0.01, 0.012])
    assert metrics.paired_wilcoxon(a, b) == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert metrics.paired_wilcoxon(a, a) == 1.0
    with pytest.raises(ValueError, match="same splits"):
        metrics.paired_wilcoxon(a, a[:5])


def test_holm_adjustment_matches_its_definition():
    raw = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x, made monotone
    assert metrics.holm(raw) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert metrics.holm([0.5, 0.9]) == [1.0, 1.0]
    assert metrics.holm([]) == []


@pytest.mark.parametrize("n, j, coverage", [(10, 2, 1 - 22 / 1024), (6, 1, 1 - 2 / 64),
                                            (5, 1, 1 - 2 / 32), (3, 1, 0.75), (20, 6, None)])
def test_the_median_interval_is_an_order_statistic_interval_with_its_exact_coverage(n, j, coverage):
    values = np.random.default_rng(n).normal(size=n)
    summary = metrics.summarize(values)
    ordered = np.sort(values)
    assert (summary.ci_low, summary.ci_high) == (ordered[j - 1], ordered[n - j])
    exact = stats.binom.cdf(n - j, n, 0.5) - stats.binom.cdf(j - 1, n, 0.5)
    assert summary.coverage == pytest.approx(exact)
    if coverage is not None:
        assert summary.coverage == pytest.approx(coverage)
    assert summary.interval_is_short == (n < 6)
