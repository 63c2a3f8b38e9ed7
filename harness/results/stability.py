"""How far a verdict survives a rerun: every comparison re-tested under the units' rerun noise.

A rerun of the same code does not give every unit to the bit under other arithmetic (another
instruction set, architecture, thread count or library version: harness/arithmetic.py), since
training amplifies rounding, and a verdict whose Holm-adjusted p sits near alpha can flip either
way: a marker can go, and a "not distinguishable" can gain one. So each unit value of every cell
of a table, the reference's included, is perturbed by independent normal noise of its cell's
rerun sd, the table's comparisons are made again exactly as the leaderboard makes them
(:func:`~harness.results.aggregate.compare_block`: the paired signed-rank test and Holm's
adjustment), and a comparison's **stability** is the share of such re-tests that give its
verdict (better, worse, or neither) again. A verdict given again in fewer than :data:`STABLE` of
them is fragile: a marker is drawn hollow (△/▽), an unmarked comparison gets ◇.

:data:`DRAWS` re-tests put a stability within about +-0.01 of its limit near :data:`STABLE`
(the binomial 95 % half-width there is 1.96 * sqrt(0.95 * 0.05 / 2000) = 0.0096), so the line
between settled and fragile does not move with the seed; 200 re-tests moved it by +-0.04.

The noise is one quantity everywhere, the sd of one unit's value between runs: each unit's
difference between two runs carries both runs' noise, so the sd is the root mean square of the
differences over sqrt(2) (:func:`rerun_sd`). It is measured per cell from

- the run itself (:func:`seed_noise`, the default): a protocol's ``noise_units`` units of each
  seeded cell run again under another training seed and a new draw of training crops
  (:func:`harness.plan.jobs.noise_reruns`), the chaos another machine's rounding also sets off
  (a one-pixel change of the data moves an image's crops, and training amplifies the last bits);
  a training-free metric's cell has no seed, reruns to the bit and gets zero;
- or a second run of the same units (``--rerun``) or two boards of them (``--noise-boards``),
  made under other arithmetic, which take precedence for the cells they hold;
- or one stated sd for the cells nothing else measures (``--rerun-noise``).

The board lists each cell's sd and where it came from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.results.aggregate import (
    FRAGILE_UNMARKED,
    STABLE,
    Cell,
    Comparison,
    cell_key,
    column_label,
    compare_block,
    comparison_key,
)
from harness.results.schema import UnitResult

DRAWS = 2000  # re-tests per table and metric (see the module doc)
METRICS = ("srcc", "plcc")

CellKey = tuple[str, str, str]  # (model, column, config hash): comparison_key


@dataclass(frozen=True)
class RerunNoise:
    """The rerun sd of each metric per cell (``by_cell``), else ``default`` (None: unknown),
    what it was measured from (``source``, for the tables' notes) and, where a cell's came from
    elsewhere, that cell's own source (``origin``)."""

    by_cell: Mapping[CellKey, Mapping[str, float]] = field(default_factory=dict)
    default: float | None = None
    source: str = ""
    origin: Mapping[CellKey, str] = field(default_factory=dict)

    def sd(self, cell: Cell, metric: str) -> float | None:
        measured = self.by_cell.get(comparison_key(cell))
        return measured[metric] if measured is not None else self.default

    def source_of(self, key: CellKey) -> str:
        """Where the sd of the cell ``key`` came from."""
        if key in self.by_cell:
            return self.origin.get(key, self.source)
        return "not measured" if self.default is None else f"the stated sd {self.default:g}"

    def filled_from(self, other: RerunNoise | None) -> RerunNoise:
        """These cells' noise, and ``other``'s for the cells this lacks."""
        if other is None:
            return self
        added = {key: sds for key, sds in other.by_cell.items() if key not in self.by_cell}
        origin = {**{key: self.source_of(key) for key in self.by_cell},
                  **{key: other.source_of(key) for key in added}}
        return RerunNoise({**self.by_cell, **added},
                          self.default if self.default is not None else other.default,
                          f"{self.source}; for other cells, {other.source}" if added
                          else self.source, origin)


def split_reruns(units: Iterable[UnitResult]) -> tuple[list[UnitResult], list[UnitResult]]:
    """``units`` as the tables' units and the noise reruns (which are in no table)."""
    units = list(units)
    return ([u for u in units if u.rerun_of is None],
            [u for u in units if u.rerun_of is not None])


def seed_noise(units: Iterable[UnitResult], reruns: Iterable[UnitResult]) -> RerunNoise | None:
    """Each cell's rerun sd from its noise reruns (each against the unit it repeats, on the
    same split file), zero for a training-free metric's cell (no seed enters its score); None
    when there are no reruns at all."""
    units, reruns = list(units), list(reruns)
    if not reruns:
        return None
    table: dict[tuple[tuple, str | None], UnitResult] = {(cell_key(u), u.unit): u for u in units}
    paired: dict[CellKey, list[tuple[UnitResult, UnitResult]]] = {}
    for rerun in reruns:
        first = table.get((cell_key(rerun), rerun.rerun_of))
        if first is not None and first.split.sha256_16 == rerun.split.sha256_16:
            paired.setdefault(_cell_of(rerun), []).append((first, rerun))
    by_cell: dict[CellKey, dict[str, float]] = {
        key: {metric: rerun_sd((getattr(a.metrics, metric) for a, _ in pairs),
                               (getattr(b.metrics, metric) for _, b in pairs))
              for metric in METRICS} for key, pairs in paired.items()}
    origin = {key: f"{len(pairs)} seed rerun{'s' if len(pairs) > 1 else ''} in the run"
              for key, pairs in paired.items()}
    for unit in units:
        if unit.model.kind == "zero_shot":
            by_cell[_cell_of(unit)] = dict.fromkeys(METRICS, 0.0)
            origin[_cell_of(unit)] = "training-free: exact"
    return RerunNoise(by_cell, None, "seed reruns in the run (a second training seed and draw "
                                     "of training crops for some units of each cell)", origin)


def _cell_of(unit: UnitResult) -> CellKey:
    return (unit.model.name, column_label(unit.dataset_label, unit.train_fraction),
            unit.config_hash)


def rerun_sd(first: Iterable[float], second: Iterable[float]) -> float:
    """The sd of one unit's value between runs, from the same units' values in two runs:
    ``sqrt(mean(difference^2) / 2)`` (each difference carries both runs' noise)."""
    differences = np.subtract(list(first), list(second))
    return math.sqrt(float(np.mean(differences ** 2)) / 2)


def measure_noise(cells: Iterable[Cell], rerun: Iterable[Cell], source: str,
                  default: float | None = None) -> RerunNoise:
    """The rerun sd of each cell that both runs have (over the units both have)."""
    again = {(c.block, comparison_key(c)): c for c in rerun}
    by_cell: dict[CellKey, dict[str, float]] = {}
    for cell in cells:
        other = again.get((cell.block, comparison_key(cell)))
        shared = sorted(set(cell.units) & set(other.units)) if other is not None else []
        if not shared:
            continue
        by_cell[comparison_key(cell)] = {
            metric: rerun_sd((getattr(cell, f"per_unit_{metric}")[u] for u in shared),
                             (getattr(other, f"per_unit_{metric}")[u] for u in shared))
            for metric in METRICS}
    return RerunNoise(by_cell, default, source)


def _perturbed(cell: Cell, metric: str, sd: float | None, rng: np.random.Generator) -> Cell:
    if not sd:
        return cell
    values = getattr(cell, f"per_unit_{metric}")
    noise = rng.normal(scale=sd, size=len(values))
    changes: dict[str, Any] = {f"per_unit_{metric}": {
        unit: value + shift for (unit, value), shift in zip(values.items(), noise, strict=True)}}
    return dataclasses.replace(cell, **changes)


def stability(block: list[Cell], reference: str | None, metric: str, noise: RerunNoise,
              draws: int = DRAWS, seed: int = 0) -> dict[CellKey, float]:
    """Each tested comparison's share of ``draws`` re-tests, under ``noise``, that give its
    verdict again, marked or not (seeded: the same table gives the same shares)."""
    verdicts = {c.key: c.verdict for c in compare_block(block, reference, metric)
                if c.p_raw is not None}
    if not verdicts:
        return {}
    rng = np.random.default_rng(seed)
    sds = [noise.sd(cell, metric) for cell in block]
    if not any(sds):  # no noise: every re-test is the table itself
        return dict.fromkeys(verdicts, 1.0)
    kept = dict.fromkeys(verdicts, 0)
    for _ in range(draws):
        again = [_perturbed(cell, metric, sd, rng) for cell, sd in zip(block, sds, strict=True)]
        for comparison in compare_block(again, reference, metric):
            if comparison.key in kept and comparison.verdict == verdicts[comparison.key]:
                kept[comparison.key] += 1
    return {key: count / draws for key, count in kept.items()}


def with_stability(comparisons: list[Comparison], shares: Mapping[CellKey, float]) -> list[Comparison]:
    """The comparisons with their verdicts' stability (None where untested or unassessed)."""
    return [dataclasses.replace(c, stability=shares.get(c.key)) for c in comparisons]


def stability_note(noise: RerunNoise | None, comparisons: list[Comparison], metric: str) -> str:
    """What hollow markers and ◇ mean, how the noise was measured, and how many verdicts are
    fragile in each direction."""
    if noise is None:
        return (f"{metric.upper()} verdicts were not re-tested under rerun noise (no rerun of "
                f"these units and no --rerun-noise given): one near p = 0.05 may flip on a rerun")
    assessed = [c for c in comparisons if c.stability is not None]
    lost = sum(1 for c in assessed if c.fragile and c.verdict)
    gained = sum(1 for c in assessed if c.fragile and not c.verdict)
    measured = "" if not noise.by_cell else "; each cell's sd in the Rerun noise table" + (
        f", sd {noise.default:g} where none was measured" if noise.default is not None else "")
    return (f"△/▽/{FRAGILE_UNMARKED}: a {metric.upper()} verdict given again in fewer than "
            f"{STABLE:.0%} of {DRAWS} re-tests with every unit perturbed by its cell's rerun "
            f"noise ({noise.source}{measured}) is fragile: a rerun under other arithmetic may "
            f"lose a hollow marker (△/▽) or mark a {FRAGILE_UNMARKED}; here {lost} of "
            f"{sum(1 for c in assessed if c.verdict)} marker(s) and {gained} of "
            f"{sum(1 for c in assessed if not c.verdict)} unmarked comparison(s)")
