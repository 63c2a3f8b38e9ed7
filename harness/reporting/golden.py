"""Golden files: a suite's own numbers, which ``check`` compares a rerun of the suite with.

``lifeiqa-bench check RESULTS --write-golden OUT.yaml`` writes one (:func:`golden_document`),
``check RESULTS --against OUT.yaml`` reads it back (:func:`parse_golden`). A golden file has the
top-level ``generated`` (how it was written: by what, from which suite, under which arithmetic
and tolerance rule), by which a reader tells it from a published reference file; its entries
are :class:`GoldenEntry`: the fields every reference row has (:mod:`harness.reporting.reference`)
plus what only a measurement here has: the spread over units, the split files (and, written with
reruns, each unit's values and allowed difference) and the rerun noise. Every entry says
``provenance: measured``; ``golden.schema.json`` beside this module is the file's JSON Schema.

``check RESULTS --write-golden OUT.yaml`` writes the suite's medians as a golden file, each entry
with a tolerance from its measured spread:

    tolerance = max(min_tolerance, k * sqrt(2) * sqrt(pi / 2) * s / sqrt(n))

``s`` is the standard deviation of the metric over the cell's ``n`` units (splits or seeds) and
``sqrt(pi / 2) * s / sqrt(n)`` the large-sample standard error of a median of ``n`` values. A
rerun uses the same split files and seeds, so its per-unit scores move only through numerical
differences (another GPU, BLAS or library version), which training can amplify up to, at worst,
a fresh training seed. In that worst case the golden median and the rerun's are two independent
medians, so their difference has ``sqrt(2)`` standard errors, and the check is two-sided: ``k =
3`` would leave 0.3 % false alarms per entry with ``s`` known; estimated from the golden units
it leaves, simulated with normal scores (seed 0, 20,000 trials), 2.7 % at 5 units, 0.8 % at 10
and 0.4 % at 20, where the earlier rule (``k = 2`` without the ``sqrt(2)``) alarmed on 21 %,
16 % and 16 % (tests/test_published_check.py keeps the 10-unit case). A real
degradation, a drop of the median by more than that, fails; for a tighter gate, rerun the suite
(below). ``min_tolerance`` (0.005) keeps cells with near-identical units from failing on float
noise; with one unit there is no spread and the floor alone applies. Tolerances are rounded up
to 0.001.

With ``--rerun RUNS/SUITE`` (repeatable: the same suite run again, e.g. at another thread count)
the golden file becomes a per-unit regression gate: every unit's values are recorded with its
split file, the rerun noise is measured as the largest per-unit difference between the suite and
its reruns, and each entry's tolerance, for every unit and for the median alike, is

    tolerance = max(min_tolerance, noise_k * max |rerun - run|)

A check against such an entry compares each unit with its golden value (matched on unit and
split-file hash), two-sided: any unit beyond the tolerance fails, so does a median beyond it.
Reruns on the same machine type are deterministic up to that noise, so a clean rerun passes
while any change that moves a unit's numbers by more than the tolerance (a regression, or a
deliberate change that then rewrites the golden file) fails.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from harness.errors import InvalidOptionError
from harness.reporting.reference import (
    FORMAT_VERSION,
    ReferenceEntry,
    entry_fields,
    metric_values,
    read_yaml,
    validate,
)
from harness.results.aggregate import Cell, aggregate, cell_key
from harness.results.schema import UnitResult

SCHEMA_FILE = "golden.schema.json"
DEFAULT_SPREAD_K = 3.0
DEFAULT_NOISE_K = 3.0  # rerun tolerance: three times the largest rerun difference seen
MIN_TOLERANCE = 0.005
MEDIAN_SE = math.sqrt(math.pi / 2)  # standard error of a median / that of a mean (normal data)


@dataclass(frozen=True, kw_only=True)
class GoldenEntry(ReferenceEntry):
    """A cell of a suite as measured here. ``split_files`` lists ``{unit, file, sha256_16}``
    (with each unit's ``srcc`` and ``plcc`` when written with reruns, and then
    ``unit_tolerance``, each unit's allowed difference per metric, and ``rerun_noise``)."""

    spread: dict[str, Any] | None = None
    split_files: tuple[dict[str, Any], ...] = ()
    unit_tolerance: dict[str, float] = field(default_factory=dict)
    rerun_noise: dict[str, Any] | None = None

    @property
    def provenance(self) -> str:
        """What every golden entry is: measured by this harness."""
        return "measured"

    def unit_values(self, metric: str) -> dict[str, tuple[str, float]]:
        """Unit -> (split-file hash, value of ``metric``) where the entry records per-unit values."""
        return {f["unit"]: (f["sha256_16"], float(f[metric])) for f in self.split_files
                if metric in f}

    def source_text(self) -> str:
        """A one-line citation: the suite and the code's commit."""
        commit = self.source.get("git_commit")
        commit = ", ".join(commit) if isinstance(commit, list) else commit
        return f"suite {self.source.get('suite')} @ {str(commit)[:12] if commit else 'unknown commit'}"


@dataclass(frozen=True)
class GoldenFile:
    path: str
    entries: tuple[GoldenEntry, ...]
    generated: dict[str, Any]


def parse_golden(data: Any, path: str = "<golden>") -> GoldenFile:
    """Validate a parsed golden document; raises
    :class:`~harness.reporting.reference.PublishedFileError`."""
    validate(data, SCHEMA_FILE, path)
    entries = []
    for index, raw in enumerate(data["entries"]):
        where = f"entries[{index}]"
        common = entry_fields(path, raw, index, where)
        entries.append(GoldenEntry(
            **common, spread=raw.get("spread"), split_files=tuple(raw.get("split_files", [])),
            unit_tolerance=metric_values(path, raw, where, "unit_tolerance",
                                         raw.get("unit_tolerance", {}), common["metrics"]),
            rerun_noise=raw.get("rerun_noise")))
    return GoldenFile(path, tuple(entries), data["generated"])


def load_golden(path: str | Path) -> GoldenFile:
    """Read and validate a golden file."""
    return parse_golden(read_yaml(Path(path)), str(path))


def cell_results(results: list[UnitResult], cell: Cell) -> dict[str, UnitResult]:
    """The results behind an aggregated cell, by unit."""
    return {r.unit: r for r in results if cell_key(r) == cell.key}


def arithmetic_labels(results: list[UnitResult]) -> list[str]:
    """The arithmetic each unit computed with (harness/arithmetic.py), one label each, sorted."""
    return sorted({r.environment.arithmetic.label if r.environment.arithmetic else
                   "not recorded (written before schema version 5)" for r in results})


def golden_tolerance(std: float, units: int, k: float = DEFAULT_SPREAD_K,
                     floor: float = MIN_TOLERANCE) -> float:
    """``max(floor, k * sqrt(2) * sqrt(pi/2) * std / sqrt(units))``: ``k`` standard errors of
    the difference of two medians of ``units`` values, rounded up to 0.001 (see module doc)."""
    spread = k * math.sqrt(2) * MEDIAN_SE * std / math.sqrt(units) if units > 1 else 0.0
    return _round_up(max(floor, spread))


def _round_up(value: float) -> float:
    """Up to the next 0.001 (a tolerance is never smaller than what it was computed from)."""
    return math.ceil(round(value * 1000, 6)) / 1000


def rerun_noise(cell: Cell, reruns: list[list[Cell]], metric: str) -> float:
    """The largest per-unit difference of ``metric`` between ``cell`` and the same cell in each
    rerun (same condition, unit and split file); a rerun missing a unit is an error."""
    worst = 0.0
    mine = getattr(cell, f"per_unit_{metric}")
    for rerun in reruns:
        twin = next((c for c in rerun if c.key == cell.key), None)
        theirs = {} if twin is None else getattr(twin, f"per_unit_{metric}")
        missing = sorted(u for u in mine if u not in theirs
                         # twin is None only with no units in theirs, never reached
                         or cast(Cell, twin).unit_hashes.get(u) != cell.unit_hashes.get(u))
        if missing:
            raise InvalidOptionError(f"--rerun: {cell.model} on {cell.dataset} lacks unit(s) "
                                     f"{missing[:3]} (or ran them on other split files); a rerun "
                                     f"must repeat the suite unit for unit")
        worst = max(worst, *(abs(mine[u] - theirs[u]) for u in mine))
    return worst


def golden_document(results: list[UnitResult], suite: str, k: float = DEFAULT_SPREAD_K,
                    floor: float = MIN_TOLERANCE, reruns: tuple[list[UnitResult], ...] = (),
                    noise_k: float = DEFAULT_NOISE_K) -> dict:
    """A reference document (``provenance: measured``) of the suite's medians; split files and
    the suite are named relative to the runs folder. With ``reruns`` the entries record every
    unit's values and per-unit tolerances from the measured rerun noise (see the module doc)."""
    cells = aggregate(results)
    rerun_cells = [aggregate(rerun) for rerun in reruns]
    commits: dict[str, int] = defaultdict(int)
    dirty = False
    for r in results:
        commits[str(r.environment.git_commit)] += 1
        dirty = dirty or bool(r.environment.git_dirty)
    commit_list = sorted(c for c in commits if c != "None")
    source = {"suite": suite, "results": suite,  # relative to the runs folder
              "git_commit": commit_list[0] if len(commit_list) == 1 else (commit_list or None),
              "git_dirty": dirty}
    entries = []
    for cell in cells:
        pair = cell.dataset.split(" -> ")
        units = cell_results(results, cell)
        n = len(cell.units)
        gate = {}
        if reruns:
            noise = {m: rerun_noise(cell, rerun_cells, m) for m in ("srcc", "plcc")}
            allowed = {m: _round_up(max(floor, noise_k * noise[m])) for m in noise}
            gate = {"tolerance": allowed, "unit_tolerance": allowed,
                    "rerun_noise": {"srcc_max_abs": float(f"{noise['srcc']:.3g}"),
                                    "plcc_max_abs": float(f"{noise['plcc']:.3g}"),
                                    "reruns": len(reruns)}}
        entries.append({
            "model": cell.model, "harness_models": [cell.model],
            **({"pair": pair} if len(pair) == 2 else {"dataset": cell.dataset}),
            "protocol": cell.protocol, "protocol_version": cell.version,
            "metrics": {"srcc": round(cell.srcc.median, 6), "plcc": round(cell.plcc.median, 6)},
            "tolerance": {"srcc": golden_tolerance(cell.srcc.std, n, k, floor),
                          "plcc": golden_tolerance(cell.plcc.std, n, k, floor)},
            "spread": {"srcc_std": round(cell.srcc.std, 6), "plcc_std": round(cell.plcc.std, 6),
                       "units": n},
            "units": n, "selection": cell.selection, "aggregation": f"median over {n} unit(s)",
            **({"train_fraction": cell.train_fraction} if cell.train_fraction < 1 else {}),
            "plcc_kind": "raw", "plcc_rule": "raw Pearson at the selected epoch, median over units",
            "provenance": "measured", "source": dict(source),  # a copy: no YAML aliases
            "split_files": [{"unit": u, "file": units[u].split_name,
                             "sha256_16": units[u].split.sha256_16,
                             **({"srcc": round(units[u].metrics.srcc, 6),
                                 "plcc": round(units[u].metrics.plcc, 6)} if reruns else {})}
                            for u in cell.units],
            **gate,
        })
    return {"version": FORMAT_VERSION,
            "generated": {"by": "lifeiqa-bench check --write-golden", "suite": suite,
                          "results": suite, "spread_k": k, "min_tolerance": floor,
                          "arithmetic": arithmetic_labels(results),
                          **({"rerun_arithmetic": sorted({label for rerun in reruns
                                                          for label in arithmetic_labels(rerun)})}
                             if reruns else {}),
                          "tolerance_rule": (
                              f"per unit and median: max(min_tolerance, noise_k * largest "
                              f"per-unit difference over {len(reruns)} rerun(s)), noise_k "
                              f"{noise_k:g}, rounded up to 0.001" if reruns else
                              "max(min_tolerance, spread_k * sqrt(2) * sqrt(pi/2) * std / "
                              "sqrt(units)), rounded up to 0.001")},
            "entries": entries}
