"""How far a ▲/▼ survives a rerun: markers re-tested under the units' measured rerun noise.

A rerun of the same code does not give every unit to the bit on another machine or thread
count (a cold feature cache rounds differently, and training amplifies it), and a marker whose
Holm-adjusted p sits near alpha can flip. So each unit value of every cell of a table, the
reference's included, is perturbed by independent normal noise of its cell's rerun sd, the
table's comparisons are made again exactly as the leaderboard makes them
(:func:`~harness.results.aggregate.compare_block`: the paired signed-rank test and Holm's
adjustment), and a marker's **stability** is the share of such re-tests that give it again. A
marker kept in fewer than :data:`STABLE` of them is fragile: tables show it hollow (△/▽),
never as a plain ▲/▼.

The noise: from a rerun of the same units (another run of the suite: each unit's difference
between the runs carries both runs' noise, so a cell's sd is the root mean square of its
differences over sqrt(2)), or one stated sd for every cell (``--rerun-noise``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.results.aggregate import STABLE, Cell, Comparison, compare_block, comparison_key

DRAWS = 200  # re-tests per table and metric (a stability of 0.95 is then within about +-0.03)
METRICS = ("srcc", "plcc")

CellKey = tuple[str, str, str]  # (model, column, config hash): comparison_key


@dataclass(frozen=True)
class RerunNoise:
    """The rerun sd of each metric per cell (``by_cell``), else ``default`` (None: unknown),
    and what it was measured from (for the tables' notes)."""

    by_cell: Mapping[CellKey, Mapping[str, float]] = field(default_factory=dict)
    default: float | None = None
    source: str = ""

    def sd(self, cell: Cell, metric: str) -> float | None:
        measured = self.by_cell.get(comparison_key(cell))
        return measured[metric] if measured is not None else self.default


def measure_noise(cells: Iterable[Cell], rerun: Iterable[Cell], source: str,
                  default: float | None = None) -> RerunNoise:
    """The rerun sd of each cell that both runs have (over the units both have):
    ``sqrt(mean(difference^2) / 2)`` per metric."""
    again = {(c.block, comparison_key(c)): c for c in rerun}
    by_cell: dict[CellKey, dict[str, float]] = {}
    for cell in cells:
        other = again.get((cell.block, comparison_key(cell)))
        shared = sorted(set(cell.units) & set(other.units)) if other is not None else []
        if not shared:
            continue
        by_cell[comparison_key(cell)] = {
            metric: math.sqrt(np.mean([(getattr(cell, f"per_unit_{metric}")[u]
                                        - getattr(other, f"per_unit_{metric}")[u]) ** 2
                                       for u in shared]) / 2)
            for metric in METRICS}
    return RerunNoise(by_cell, default, source)


def _perturbed(cell: Cell, metric: str, sd: float | None, rng: np.random.Generator) -> Cell:
    if not sd:
        return cell
    values = getattr(cell, f"per_unit_{metric}")
    noise = rng.normal(scale=sd, size=len(values))
    return dataclasses.replace(cell, **{f"per_unit_{metric}": {
        unit: value + shift for (unit, value), shift in zip(values.items(), noise, strict=True)}})


def stability(block: list[Cell], reference: str | None, metric: str, noise: RerunNoise,
              draws: int = DRAWS, seed: int = 0) -> dict[CellKey, float]:
    """Each marked comparison's share of ``draws`` re-tests, under ``noise``, that give its
    marker again (seeded: the same table gives the same shares)."""
    marked = {c.key: c.marker for c in compare_block(block, reference, metric) if c.marker}
    if not marked:
        return {}
    rng = np.random.default_rng(seed)
    sds = [noise.sd(cell, metric) for cell in block]
    if not any(sds):  # no noise: every re-test is the table itself
        return dict.fromkeys(marked, 1.0)
    kept = dict.fromkeys(marked, 0)
    for _ in range(draws):
        again = [_perturbed(cell, metric, sd, rng) for cell, sd in zip(block, sds, strict=True)]
        for comparison in compare_block(again, reference, metric):
            if comparison.key in kept and comparison.marker == marked[comparison.key]:
                kept[comparison.key] += 1
    return {key: count / draws for key, count in kept.items()}


def with_stability(comparisons: list[Comparison], shares: Mapping[CellKey, float]) -> list[Comparison]:
    """The comparisons with their markers' stability (None where unmarked or unassessed)."""
    return [dataclasses.replace(c, stability=shares.get(c.key)) for c in comparisons]


def stability_note(noise: RerunNoise | None, comparisons: list[Comparison], metric: str) -> str:
    """What a hollow marker means, how the noise was measured, and how many markers it hit."""
    if noise is None:
        return (f"{metric.upper()} markers were not re-tested under rerun noise (no rerun of "
                f"these units and no --rerun-noise given): one near p = 0.05 may flip on a rerun")
    marked = [c for c in comparisons if c.stability is not None]
    fragile = [c for c in marked if c.stability < STABLE]
    measured = "" if not noise.by_cell else f"; {len(noise.by_cell)} cell(s) measured" + (
        f", others sd {noise.default:g}" if noise.default is not None else "")
    return (f"△/▽: a {metric.upper()} marker kept in fewer than {STABLE:.0%} of {DRAWS} "
            f"re-tests with every unit perturbed by its cell's rerun noise ({noise.source}"
            f"{measured}): fragile, a rerun may lose it; {len(fragile)} of {len(marked)} "
            f"marker(s) here")
