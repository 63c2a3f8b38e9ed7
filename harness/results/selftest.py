"""The statistics' self-test: the leaderboard's own code run on simulated results whose truth is
known, with a bound for every figure (``lifeiqa-bench selftest stats``; it fails when one is out).

Everything goes through the production path: simulated :class:`UnitResult` objects (one per
model, dataset and split, as the runner writes them) are grouped into cells by
:func:`harness.results.aggregate.aggregate` (whose intervals are
:func:`harness.results.metrics.summarize`'s), compared with :func:`aggregate.compare_block`
(:func:`metrics.paired_wilcoxon`, then :func:`metrics.holm` over the table) and read off
:attr:`aggregate.Comparison.marker`, the ``▲``/``▼`` a table shows. Nothing here re-implements
a statistic the tables use; the only statistics computed here are the truth they are judged by.

The figures, each with its bound (:class:`Figure`):

* **coverage of the median interval** at n = 3, 5 and 10 units: cells of n units whose per-split
  SRCC is ``tanh(atanh(rho) + N(0, 0.1^2))`` (skewed, as a correlation near 1 is, and with median
  exactly ``rho``); the share of cells whose interval holds ``rho`` must lie within the binomial
  band of the coverage the cell states (:attr:`metrics.Summary.coverage`).
* **the family-wise false-alarm rate** of markers under the null in a comparison-sized table (15
  models x 7 datasets: 98 comparisons) of 10 and of 20 splits: every model is as good as the
  reference, a split shifts all models alike, and paired differences scatter with sd 0.01; the
  share of tables with any marker must be at most :data:`ALPHA` plus a binomial margin.
* **the power** to mark a real gain where the design gives power: a gain of 0.02 over 10 splits
  with paired sd 0.01, alone (a family of one); the share of trials marked ``▲`` must be at least
  :data:`POWER_FLOOR` less a binomial margin.
* **Holm against Bonferroni** on a one-dataset table of 15 models over 10 splits (a family of
  14) in which 5 models are better than the reference by 0.015 (paired sd 0.01) and 9 are as
  good: Holm must mark more of the real gains than Bonferroni (``p x 14 < 0.05``, computed here
  from the comparisons' raw p) in at least :data:`HOLM_GAIN_FLOOR` of the tables less a margin,
  fewer in none; mark a null comparison (or a real gain ``▼``) in at most :data:`ALPHA` of them
  plus a margin; and never leave a comparison unmarked whose raw p is at most that of a marked
  one (the markers follow the p-values, as a step-down procedure's do).

* **two-sidedness**: alone (a family of one) under the null, 10 splits, the share of tables
  marked must be at most :data:`ALPHA` plus a margin over :data:`DIRECTION_TRIALS` tables (a
  one-sided test in the observed direction, its p halved, marks about 0.084); a real loss of
  0.02 must be marked ``▼`` as often as the power figure's gain ``▲`` (a test one-sided towards
  gains never marks it; one towards losses fails the gain's power figure).
* **PLCC on its own**: simulated PLCC is not a copy of SRCC (:data:`PLCC_OFFSET` above it, or
  drawn apart); a cell's PLCC median must be its units' PLCC median exactly, a model better in
  PLCC only must be marked ``▲`` in PLCC (power) and in SRCC at most :data:`ALPHA` of the time.
  PLCC compared or aggregated as SRCC fails these.
* **re-tests under rerun noise** (:mod:`harness.results.stability`): the reference's units are
  perturbed like every other cell's, so a verdict's stability with both cells at sd ``s`` equals
  (within two binomial margins) its stability with the reference fixed and the model at
  ``s * sqrt(2)`` (a re-test that leaves the reference alone halves the noise of the
  differences and fails it); and the threshold draws four verdicts right: a clear marker solid,
  a marginal one hollow, an unmarked comparison near alpha ``◇``, a clear "no difference" plain
  (a threshold applied the wrong way fails it).

The permutation test of the routing analysis is not here: it lives in the engine
(``harness/engine/analyses.py``), which this layer may not import; tests/test_analyses.py checks
its exactness.

Bounds and false failures: a simulated figure is a binomial count, so each stochastic bound is
the stated figure widened by the binomial quantile that a correct harness crosses with
probability at most :data:`FALSE_FAILURE` (two-sided for the coverage, split evenly); the
exact bounds (Holm never marks fewer than Bonferroni, markers follow the p-values, PLCC
summarised as itself, verdicts drawn right) hold without a margin. With thirteen stochastic
bounds a correct harness fails a run with probability under 2e-3 over random seeds (a
seeded run is deterministic: it passes or fails every time). The
floors sit well below what the design gives (power 1.00 in 500 trials, Holm ahead in 44 % of
the tables), so the margins decide nothing about a correct harness and everything about a broken
one: Holm replaced by Bonferroni marks exactly what Bonferroni marks (Holm ahead in no table);
an off-by-one order statistic (``[x(j+1), x(n-j)]``) covers 0 % at n = 3 and 89 % at n = 10
where 75 % and 97.9 % are stated; an uncorrected p < 0.05 marks nearly every null table; a
non-monotone Holm (no running maximum) breaks the markers' order in about 7 % of the mixed
tables; and the faults named under each figure above (tests/test_stats_selftest.py injects
each).

Sizes: :data:`DEFAULT_SIZE` (about two minutes on one core) also prints, without bounds, the
power for gains of 0.01 and 0.02 with paired sd 0.01 and 0.02 over 10 and 20 splits, alone and
inside the 15 x 7 table of 20 splits; :data:`QUICK_SIZE` (``--quick``, what CI runs: about 10 s)
has the bounded figures only, at sizes that keep it there, with bounds set for those sizes: wider
(a null false-alarm rate up to 0.225 over 40 tables, coverage within about 5 points at n = 3),
yet the faults above miss them by far.

The spread assumed: paired per-split differences with sd 0.01 (close relatives, e.g. an
ablation) and 0.02 (different architectures); 10-split IQA results typically show per-split
SRCC standard deviations of 0.005-0.03, and pairing on the same splits removes the split effect
shared by both models. The simulation treats splits as independent; random splits of one
dataset overlap, which correlates paired differences across splits and makes real tests
somewhat less conservative than simulated here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from scipy import stats

from harness.plan.models import FULL, ModelRef
from harness.plan.registry import list_bench_models
from harness.results import metrics
from harness.results.aggregate import (
    ALPHA,
    FRAGILE_UNMARKED,
    Cell,
    Comparison,
    aggregate,
    compare_block,
    comparison_key,
    smallest_adjusted_p,
)
from harness.results.schema import Environment, ProtocolRef, Seeds, SplitInfo, UnitResult
from harness.results.stability import DRAWS, RerunNoise, stability, with_stability
from lifeiqa.config import ABLATIONS

MODELS, DATASETS = 15, 7  # the comparison table the issue names: 98 comparisons
NULL_SPLITS = (10, 20)
COVERAGE_SIZES = (3, 5, 10)
FALSE_FAILURE = 1e-4  # per stochastic bound: how often a correct harness may cross it
POWER_FLOOR = 0.90  # gain 0.02, paired sd 0.01, 10 splits, family of one (the design gives 1.00)
HOLM_GAIN_FLOOR = 0.25  # share of mixed tables where Holm marks more than Bonferroni (0.44)
MIXED_GAINS, MIXED_GAIN, MIXED_SPLITS = 5, 0.015, 10  # of the 14 comparisons of one column
SPLIT_SD = 0.02  # the split effect every model shares (pairing removes it)
Z_SD = 0.1  # per-split scatter of a cell's SRCC on Fisher's z scale (coverage cells)
POWER_TABLE = [(gain, sd) for gain in (0.01, 0.02) for sd in (0.01, 0.02)]
REFERENCE_PRESET = "lifeiqa_tiny"
PLCC_OFFSET = 0.03  # simulated PLCC sits above SRCC, so a PLCC read as SRCC is seen
DIRECTION_TRIALS = 3000  # family-of-one null trials: a halved p's ~0.084 misses 0.05 + margin
RETEST_SD = 0.006  # the rerun sd of the re-test figures (the gate's largest rerun difference)
# paired differences of 10 splits: p = 0.037 (marked, near alpha), p = 0.064 (unmarked, near it)
MARGINAL = (0.012, 0.015, 0.009, 0.011, -0.010, 0.013, 0.010, -0.009, 0.014, 0.008)
EDGE = (0.012, 0.015, 0.009, 0.011, -0.012, 0.013, 0.010, -0.009, 0.014, 0.008)
_ENVIRONMENT = Environment(None, None, "-", "-", "-", "-", "-", "simulated", "-", None)


@dataclass(frozen=True)
class SelfTestSize:
    """How many simulated cells or tables each figure uses."""

    coverage_cells: int = 4000  # per n
    null_tables: int = 200  # 15 x 7 tables, per split count
    power_trials: int = 500  # family-of-one trials, per configuration
    mixed_tables: int = 1000  # one-dataset tables with real gains (Holm against Bonferroni)
    table_power_tables: int = 100  # 15 x 7 tables of 20 splits per configuration; 0: skip
    power_grid: bool = True  # the unbounded power figures for every gain, sd and split count


DEFAULT_SIZE = SelfTestSize()
# CI's size: about 10 s on one core (the 80 tables of 15 x 7 are most of it); its binomial
# margins are wider but the faults it must catch miss its bounds by far (see the module doc)
QUICK_SIZE = SelfTestSize(coverage_cells=1000, null_tables=40, power_trials=200, mixed_tables=200,
                          table_power_tables=0, power_grid=False)


@dataclass(frozen=True)
class Figure:
    """A simulated figure and the bound it must meet: ``low <= value <= high``."""

    group: str  # the section it is printed in
    label: str
    value: float
    low: float = -math.inf
    high: float = math.inf
    bound: str = ""  # where the bound comes from, in words
    percent: bool = False  # printed as a percentage (coverage), else as a rate
    exact: bool = False  # the bound holds exactly (no binomial margin, no false failure)

    @property
    def passed(self) -> bool:
        return self.low <= self.value <= self.high

    def _format(self, x: float) -> str:
        return f"{x:.1%}" if self.percent else f"{x:.3f}"

    def line(self) -> str:
        if math.isinf(self.low):
            limits = f"<= {self._format(self.high)}"
        elif math.isinf(self.high):
            limits = f">= {self._format(self.low)}"
        else:
            limits = f"in [{self._format(self.low)}, {self._format(self.high)}]"
        verdict = "PASS" if self.passed else "FAIL"
        return f"  {verdict}  {self.label}: {self._format(self.value)} (bound {limits}; {self.bound})"


@dataclass(frozen=True)
class StatsSelfTest:
    """The self-test's figures (see the module doc) and the unbounded ones it prints beside."""

    seed: int
    size: SelfTestSize
    figures: tuple[Figure, ...]
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> extra lines

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.figures)

    @property
    def failed(self) -> list[Figure]:
        return [f for f in self.figures if not f.passed]

    def text(self) -> str:
        """The report as the command prints it (and README.md quotes it)."""
        s = self.size
        lines = [f"Statistical self-test of the leaderboard's code (seed {self.seed}; "
                 f"{s.coverage_cells} cells per n, {s.null_tables} null tables per split count, "
                 f"{s.power_trials} power trials, {s.mixed_tables} mixed tables).",
                 f"Each stochastic bound is crossed by a correct harness with probability at most "
                 f"{FALSE_FAILURE:g} (binomial margin); bounds without a margin hold exactly."]
        for group in dict.fromkeys([f.group for f in self.figures] + list(self.notes)):
            lines += ["", f"{group}:"]
            lines += [f.line() for f in self.figures if f.group == group]
            lines += [f"  {note}" for note in self.notes.get(group, ())]
        stochastic = sum(1 for f in self.figures if not f.exact)
        lines.append("")
        if self.passed:
            lines.append(f"PASS: all {len(self.figures)} figures within their bounds "
                         f"({stochastic} with a binomial margin: a correct harness fails a run "
                         f"with probability under {stochastic * FALSE_FAILURE:.0e}).")
        else:
            names = "; ".join(f"{f.group}: {f.label}" for f in self.failed)
            lines.append(f"FAIL: {len(self.failed)} of {len(self.figures)} figures outside their "
                         f"bounds: {names}.")
        return "\n".join(lines)


# --- binomial bounds --------------------------------------------------------------------------


def _at_most(trials: int, rate: float, eps: float = FALSE_FAILURE) -> float:
    """The largest share a count of Binomial(trials, rate) exceeds with probability <= eps."""
    return float(stats.binom.isf(eps, trials, rate)) / trials


def _at_least(trials: int, rate: float, eps: float = FALSE_FAILURE) -> float:
    """The smallest share a count of Binomial(trials, rate) falls below with probability < eps."""
    return float(stats.binom.ppf(eps, trials, rate)) / trials


# --- simulated unit results, as the runner writes them ----------------------------------------


def model_refs(count: int = MODELS) -> list[ModelRef]:
    """The reference (the full Life-IQA preset) and ``count - 1`` other rows: its ablations,
    then registry models; names only, nothing is built."""
    variants = [FULL, *sorted(a for a in ABLATIONS if a != FULL), *list_bench_models()]
    return [ModelRef(REFERENCE_PRESET, v) for v in variants[:count]]


def _units(suite: str, scores: np.ndarray, datasets: list[str], refs: list[ModelRef],
           plcc: np.ndarray | None = None) -> list[UnitResult]:
    """One unit result per model, dataset and split of ``scores`` (datasets x models x splits,
    the test SRCC) and ``plcc`` (the same shape; default: the SRCC plus :data:`PLCC_OFFSET`,
    never a copy of it), paired on per-dataset split files."""
    plcc = scores + PLCC_OFFSET if plcc is None else plcc
    out = []
    for d, dataset in enumerate(datasets):
        for m, ref in enumerate(refs):
            condition = {"protocol": "selftest", "protocol_version": "1", "kind": "splits",
                         "preset": ref.preset, "variant": ref.variant, "train_dataset": dataset,
                         "test_dataset": dataset, "train_fraction": 1.0, "test_fraction": 0.2,
                         "validation_fraction": 0.0, "selection": "last", "breakdown": "none"}
            for k, (value, linear) in enumerate(zip(scores[d, m], plcc[d, m], strict=True)):
                unit = f"split_{k:02d}"
                value, linear = float(value), float(linear)
                out.append(UnitResult(
                    suite=suite, protocol=ProtocolRef("selftest", "1"), preset=ref.preset,
                    variant=ref.variant, train_dataset=dataset, test_dataset=dataset, unit=unit,
                    selection="last", selected_epoch=None, selection_note="simulated",
                    metrics=metrics.Scores(value, linear, linear, value, 0.0, 100),
                    per_distortion={},
                    split=SplitInfo(f"{suite}/splits/{dataset}/{unit}.json", f"{d:08x}{k:08x}",
                                    400, 100, 0),
                    seeds=Seeds(k, k), config={**condition, "unit": unit, "split_seed": k, "seed": k},
                    model_config={}, data={}, exclusions=(), history=(), device="cpu",
                    world_size=1, environment=_ENVIRONMENT, wall_seconds=0.0,
                    model_kind=ref.kind))
    return out


def _scores(rng: np.random.Generator, splits: int, gains: np.ndarray, sd: float) -> np.ndarray:
    """Per-split scores (datasets x models x splits): a true value per dataset plus each
    model's gain (``gains``, datasets x models), a split effect shared by every model and
    per-model noise of sd ``sd / sqrt(2)`` (paired differences: sd ``sd``)."""
    shape = (gains.shape[0], gains.shape[1], splits)
    truth = rng.uniform(0.80, 0.95, (gains.shape[0], 1, 1)) + gains[:, :, None]
    split_effect = rng.normal(scale=SPLIT_SD, size=(gains.shape[0], 1, splits))
    scores: np.ndarray = truth + split_effect + rng.normal(scale=sd / math.sqrt(2), size=shape)
    return scores


def _compare_table(rng: np.random.Generator, splits: int, gains: np.ndarray, sd: float,
                   refs: list[ModelRef], metric: str = "srcc",
                   plcc_gains: np.ndarray | None = None) -> list[Comparison]:
    """A simulated table through aggregate and compare_block, in ``metric``. ``gains``
    (datasets x models) is each model's true SRCC gain over the reference (model 0) per
    dataset, ``plcc_gains`` its PLCC gain (default: the same); see :func:`_scores`."""
    datasets = [f"sim-{d}" for d in range(gains.shape[0])]
    scores = _scores(rng, splits, gains, sd)
    plcc = None if plcc_gains is None else _scores(rng, splits, plcc_gains, sd)
    return compare_block(aggregate(_units("selftest", scores, datasets, refs, plcc)),
                         refs[0].name, metric)


def _marked(comparisons: Iterable[Comparison], refs: list[ModelRef], gains: np.ndarray
            ) -> tuple[list[bool], list[bool]]:
    """Per comparison (in order): whether it is a real gain, and whether it is marked ``▲``
    where it is one or marked at all where it is not (a false marker)."""
    index = {ref.name: m for m, ref in enumerate(refs)}
    real, right = [], []
    for c in comparisons:
        gain = gains[int(c.column.removeprefix("sim-")), index[c.model]]
        real.append(gain > 0)
        right.append(c.marker == "▲" if gain > 0 else c.marker != "")
    return real, right


# --- the figures ------------------------------------------------------------------------------


def coverage_figures(seed: int, size: SelfTestSize) -> list[Figure]:
    """The median interval's coverage at each n against the coverage its cells state."""
    rng = np.random.default_rng([seed, 1])
    ref = model_refs(1)
    figures = []
    for n in COVERAGE_SIZES:
        hits, stated, done = 0, set(), 0
        while done < size.coverage_cells:
            chunk = min(500, size.coverage_cells - done)
            rho = rng.uniform(0.70, 0.95, chunk)
            scores = np.tanh(np.arctanh(rho)[:, None, None]
                             + rng.normal(scale=Z_SD, size=(chunk, 1, n)))
            datasets = [f"sim-{t}" for t in range(chunk)]
            for cell in aggregate(_units("coverage", scores, datasets, ref)):
                truth = rho[int(cell.dataset.removeprefix("sim-"))]
                hits += cell.srcc.ci_low <= truth <= cell.srcc.ci_high
                stated.add(cell.srcc.coverage)
            done += chunk
        (claim,) = stated  # every cell of n units states the same coverage
        j = metrics.median_interval(n)[0]
        order = "the range" if j == 1 else f"x({j}) to x({n + 1 - j})"
        figures.append(Figure(
            "Coverage of the median interval (cells of n units; the truth: the median)",
            f"n={n:2d} ({order}), stated {claim:.1%}", hits / size.coverage_cells,
            _at_least(size.coverage_cells, claim, FALSE_FAILURE / 2),
            _at_most(size.coverage_cells, claim, FALSE_FAILURE / 2),
            f"the stated coverage with a two-sided binomial margin over "
            f"{size.coverage_cells} cells", percent=True))
    return figures


def null_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """The share of null 15 x 7 tables with any marker, at 10 and 20 splits, and (unbounded,
    for contrast) how often uncorrected p < 0.05 would mark one."""
    rng = np.random.default_rng([seed, 2])
    refs = model_refs()
    gains = np.zeros((DATASETS, MODELS))
    figures, notes = [], []
    for splits in NULL_SPLITS:
        alarms, raw_any, raw_count = 0, 0, 0
        for _ in range(size.null_tables):
            comparisons = _compare_table(rng, splits, gains, 0.01, refs)
            alarms += any(c.marker for c in comparisons)
            raw = sum(c.p_raw is not None and c.p_raw < ALPHA for c in comparisons)
            raw_any += raw > 0
            raw_count += raw
        floor = smallest_adjusted_p(splits, (MODELS - 1) * DATASETS)
        figures.append(Figure(
            f"Family-wise false-alarm rate of ▲/▼ under the null ({MODELS} models x {DATASETS} "
            f"datasets: {(MODELS - 1) * DATASETS} comparisons; share of tables with any marker)",
            f"{splits} splits", alarms / size.null_tables,
            high=_at_most(size.null_tables, ALPHA),
            bound=f"{ALPHA} with a binomial margin over {size.null_tables} tables"))
        notes.append(f"{splits} splits: uncorrected p < {ALPHA} would mark "
                     f"{raw_any / size.null_tables:.0%} of the tables "
                     f"({raw_count / size.null_tables:.1f} spurious markers per table); the "
                     f"smallest Holm-adjusted p this table can show is "
                     f"{floor:.3g}"
                     + (" (no marker possible)" if floor >= ALPHA else ""))
    return figures, notes


def power(seed: int, trials: int, gain: float, sd: float, splits: int, family: int) -> float:
    """The share of ``trials`` simulated tables in which one model's true ``gain`` on one
    dataset is marked ``▲``: a table of 2 models x 1 dataset (``family`` 1) or the full 15 x 7
    table (``family`` 98, the others null)."""
    rng = np.random.default_rng([seed, 3, int(gain * 1e4), int(sd * 1e4), splits, family])
    refs = model_refs(2 if family == 1 else MODELS)
    gains = np.zeros((1 if family == 1 else DATASETS, len(refs)))
    gains[0, 1] = gain
    marked = 0
    for _ in range(trials):
        comparisons = _compare_table(rng, splits, gains, sd, refs)
        marked += next(c.marker == "▲" for c in comparisons
                       if c.model == refs[1].name and c.column == "sim-0")
    return marked / trials


def power_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """The bounded power (gain 0.02, sd 0.01, 10 splits, alone), and the unbounded grid."""
    value = power(seed, size.power_trials, 0.02, 0.01, 10, 1)
    figures = [Figure(
        "Power to mark a real SRCC gain ▲ (sd: of the paired per-split differences)",
        "gain 0.02, sd 0.01, 10 splits, family of one", value,
        low=_at_least(size.power_trials, POWER_FLOOR),
        bound=f"{POWER_FLOOR} with a binomial margin over {size.power_trials} trials")]
    notes = []
    if size.power_grid:
        notes.append("Unbounded (gain, sd: alone at 10 and 20 splits"
                     + (f"; in the {MODELS} x {DATASETS} table at 20 splits" if
                        size.table_power_tables else "") + "):")
        for gain, sd in POWER_TABLE:
            alone = [power(seed, size.power_trials, gain, sd, s, 1) for s in NULL_SPLITS]
            text = f"  gain {gain:.2f}, sd {sd:.2f}: " + ", ".join(f"{p:.2f}" for p in alone)
            if size.table_power_tables:
                family = (MODELS - 1) * DATASETS
                text += f"; {power(seed, size.table_power_tables, gain, sd, 20, family):.2f}"
            notes.append(text)
    return figures, notes


def holm_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """Holm against Bonferroni on one-dataset tables with real gains and nulls."""
    rng = np.random.default_rng([seed, 4])
    refs = model_refs()
    gains = np.zeros((1, MODELS))
    gains[0, 1:1 + MIXED_GAINS] = MIXED_GAIN
    ahead = behind = false_alarm = disorder = 0
    holm_total = bonferroni_total = 0
    for _ in range(size.mixed_tables):
        comparisons = _compare_table(rng, MIXED_SPLITS, gains, 0.01, refs)
        real, right = _marked(comparisons, refs, gains)
        family = len(comparisons)
        # every comparison here is tested (MIXED_SPLITS pairs): p_raw and the median difference
        # are never None
        bonferroni = [r and cast(float, c.p_raw) * family < ALPHA
                      and cast(float, c.median_difference) > 0
                      for r, c in zip(real, comparisons, strict=True)]
        holm = [r and ok for r, ok in zip(real, right, strict=True)]
        ahead += sum(holm) > sum(bonferroni)
        behind += sum(holm) < sum(bonferroni)
        holm_total += sum(holm)
        bonferroni_total += sum(bonferroni)
        false_alarm += any(not r and ok for r, ok in zip(real, right, strict=True)) \
            or any(r and c.marker == "▼" for r, c in zip(real, comparisons, strict=True))
        marked = [cast(float, c.p_raw) for c in comparisons if c.marker]
        unmarked = [cast(float, c.p_raw) for c in comparisons if not c.marker]
        disorder += bool(marked and unmarked and min(unmarked) <= max(marked))
    t = size.mixed_tables
    group = (f"Holm against Bonferroni ({MODELS} models x 1 dataset, {MIXED_SPLITS} splits: "
             f"{MIXED_GAINS} of {MODELS - 1} models better by {MIXED_GAIN}, sd 0.01; "
             f"{t} tables)")
    figures = [
        Figure(group, "share of tables where Holm marks more real gains than Bonferroni",
               ahead / t, low=_at_least(t, HOLM_GAIN_FLOOR),
               bound=f"{HOLM_GAIN_FLOOR} with a binomial margin; Bonferroni itself: 0"),
        Figure(group, "share of tables where Holm marks fewer real gains than Bonferroni",
               behind / t, high=0.0, bound="exact: Holm rejects whatever Bonferroni does",
               exact=True),
        Figure(group, "share of tables with a false marker (a null marked, or a gain ▼)",
               false_alarm / t, high=_at_most(t, ALPHA),
               bound=f"{ALPHA} with a binomial margin: Holm's bound, whatever the gains"),
        Figure(group, "share of tables with an unmarked p at most a marked one",
               disorder / t, high=0.0, bound="exact: a step-down procedure marks the smallest p",
               exact=True),
    ]
    notes = [f"real gains marked per table: Holm {holm_total / t:.2f}, Bonferroni "
             f"{bonferroni_total / t:.2f} of {MIXED_GAINS}"]
    return figures, notes


def direction_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """The test is two-sided: alone under the null it marks at most ALPHA of the tables (a
    one-sided test in the observed direction, p halved, marks about 0.084), and a real loss is
    marked ▼ as often as a gain ▲ (a one-sided test for gains never marks it)."""
    rng = np.random.default_rng([seed, 5])
    refs = model_refs(2)
    group = "Two-sided: each direction alone (2 models x 1 dataset, 10 splits, sd 0.01)"
    marked = sum(bool(_compare_table(rng, 10, np.zeros((1, 2)), 0.01, refs)[0].marker)
                 for _ in range(DIRECTION_TRIALS))
    loss = np.array([[0.0, -0.02]])
    worse = sum(_compare_table(rng, 10, loss, 0.01, refs)[0].marker == "▼"
                for _ in range(size.power_trials))
    figures = [
        Figure(group, "share of null tables marked (family of one)", marked / DIRECTION_TRIALS,
               high=_at_most(DIRECTION_TRIALS, ALPHA),
               bound=f"{ALPHA} with a binomial margin over {DIRECTION_TRIALS} tables"),
        Figure(group, "power to mark a real loss ▼ (loss 0.02)", worse / size.power_trials,
               low=_at_least(size.power_trials, POWER_FLOOR),
               bound=f"{POWER_FLOOR} with a binomial margin over {size.power_trials} trials"),
    ]
    return figures, []


def plcc_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """PLCC is a metric of its own: a cell's PLCC summary is of the units' PLCC (exact), and a
    model better only in PLCC is marked in PLCC (power) and not in SRCC (false alarm)."""
    rng = np.random.default_rng([seed, 6])
    refs = model_refs(2)
    scores, plcc = _scores(rng, 10, np.zeros((1, 2)), 0.01), _scores(rng, 10, np.zeros((1, 2)), 0.01)
    cells = aggregate(_units("selftest", scores, ["sim-0"], refs, plcc))
    deviation = max(abs(c.plcc.median - float(np.median(plcc[0, m])))
                    for m, c in enumerate(sorted(cells, key=lambda c: c.model != refs[0].name)))
    gain = np.array([[0.0, 0.02]])
    in_plcc = in_srcc = 0
    for _ in range(size.power_trials):
        in_plcc += _compare_table(rng, 10, np.zeros((1, 2)), 0.01, refs, "plcc",
                                  plcc_gains=gain)[0].marker == "▲"
        in_srcc += bool(_compare_table(rng, 10, np.zeros((1, 2)), 0.01, refs, "srcc",
                                       plcc_gains=gain)[0].marker)
    group = "PLCC on its own (2 models x 1 dataset, 10 splits, sd 0.01)"
    t = size.power_trials
    figures = [
        Figure(group, "largest |cell PLCC median - median of its units' PLCC|", deviation,
               high=0.0, bound="exact: the cell summarises its units' PLCC", exact=True),
        Figure(group, "power to mark ▲ in PLCC a gain of 0.02 in PLCC only", in_plcc / t,
               low=_at_least(t, POWER_FLOOR),
               bound=f"{POWER_FLOOR} with a binomial margin over {t} trials"),
        Figure(group, "share marked in SRCC, where only PLCC differs", in_srcc / t,
               high=_at_most(t, ALPHA), bound=f"{ALPHA} with a binomial margin over {t} trials"),
    ]
    return figures, []


def _pair(differences: Iterable[float], refs: list[ModelRef], seed: int) -> list[Cell]:
    """A reference and a model whose per-split SRCC differ by ``differences``."""
    base = 0.8 + np.random.default_rng([seed, 7]).normal(scale=SPLIT_SD, size=10)
    scores = np.stack([base, base + np.asarray(list(differences))])[None]
    return aggregate(_units("selftest", scores, ["sim-0"], refs))


def retest_figures(seed: int, size: SelfTestSize) -> tuple[list[Figure], list[str]]:
    """The re-tests under rerun noise (harness/results/stability.py): every cell, the
    reference's included, is perturbed (the paired differences' noise is the same whether both
    cells get sd s or the reference none and the model s * sqrt(2)), and the stability
    threshold draws each verdict right: a clear marker solid, a marginal one hollow, an unmarked
    comparison near alpha ◇ and a clear "no difference" plain."""
    refs = model_refs(2)
    block = _pair(MARGINAL, refs, seed)
    both = stability(block, refs[0].name, "srcc", RerunNoise({}, RETEST_SD, "both cells"),
                     seed=seed)
    keys = [comparison_key(c) for c in block]
    one = RerunNoise({k: {"srcc": 0.0 if c.model == refs[0].name else RETEST_SD * math.sqrt(2),
                          "plcc": 0.0} for k, c in zip(keys, block, strict=True)}, None, "one")
    alone = stability(block, refs[0].name, "srcc", one, seed=seed + 1)
    [share_both], [share_alone] = both.values(), alone.values()
    margin = 3.9 * math.sqrt(0.5 / DRAWS)  # two shares of DRAWS re-tests each, two-sided 1e-4
    expected = {"clear": "▲", "marginal": "△", "edge": FRAGILE_UNMARKED, "none": ""}
    shown = {}
    for name, differences in (("clear", [0.2] * 10), ("marginal", MARGINAL), ("edge", EDGE),
                              ("none", [0.0005 * (-1) ** k for k in range(10)])):
        pair = _pair(differences, refs, seed)
        [comparison] = with_stability(compare_block(pair, refs[0].name), stability(
            pair, refs[0].name, "srcc", RerunNoise({}, RETEST_SD, "stated"), seed=seed))
        shown[name] = comparison.marker
    wrong = [name for name in expected if shown[name] != expected[name]]
    group = (f"Re-tests under rerun noise ({DRAWS} draws, sd {RETEST_SD}; 2 models x 1 dataset, "
             f"10 splits)")
    figures = [
        Figure(group, "|stability, both cells perturbed - reference fixed, model sd x sqrt(2)|",
               abs(share_both - share_alone), high=margin,
               bound=f"equal in law: {margin:.3f}, two binomial shares' margin"),
        Figure(group, "verdicts drawn wrong of clear ▲, marginal △, near-alpha ◇, none",
               float(len(wrong)), high=0.0, bound="exact for this seed", exact=True),
    ]
    notes = [f"stabilities: {share_both:.3f} and {share_alone:.3f}; drawn "
             + ", ".join(f"{name} {shown[name] or 'plain'}" for name in expected)]
    return figures, notes


def run_stats_selftest(seed: int = 0, size: SelfTestSize = DEFAULT_SIZE) -> StatsSelfTest:
    """Every figure, seeded (each group draws from its own stream, so a group run alone gives
    the figures it gives here)."""
    figures = coverage_figures(seed, size)
    notes: dict[str, tuple[str, ...]] = {}
    for make in (null_figures, power_figures, holm_figures, direction_figures, plcc_figures,
                 retest_figures):
        found, extra = make(seed, size)
        figures += found
        if extra:
            notes[found[0].group] = tuple(extra)
    return StatsSelfTest(seed, size, tuple(figures), notes)
