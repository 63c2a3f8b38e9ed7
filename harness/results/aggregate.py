"""Aggregation: per-unit results -> per (protocol, model, dataset) summaries and tables.

Every table states the protocol version and the selection mode of its numbers, and which split
files they came from; test-oracle numbers are labelled as such.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from harness.plan.models import ModelRef
from harness.results import metrics
from harness.results.schema import UnitResult

SELECTION_LABELS = {"last": "last epoch", "val": "validation-selected",
                    "oracle": "test-oracle (best epoch on the test set)"}


@dataclass
class Cell:
    protocol: str
    version: str
    selection: str
    model_ref: ModelRef
    dataset: str
    units: list[str]
    srcc: metrics.Summary
    plcc: metrics.Summary
    per_unit_srcc: dict[str, float]
    per_unit_plcc: dict[str, float] = field(default_factory=dict)
    per_distortion: dict[str, float] = field(default_factory=dict)
    split_files: list[str] = field(default_factory=list)
    show_breakdown: bool = False
    not_zero_shot: bool = False  # a training-free metric fitted on the test dataset

    @property
    def model(self) -> str:
        """The model's name (rows, references and published entries are matched on it)."""
        return self.model_ref.name


def aggregate(results: list[UnitResult]) -> list[Cell]:
    """One cell per (protocol, version, selection, model, dataset), sorted by that key."""
    groups: dict[tuple, list[UnitResult]] = defaultdict(list)
    for result in results:
        key = (result.protocol.name, result.protocol.version, result.selection,
               result.model.name, result.dataset_label)
        groups[key].append(result)
    cells = []
    for (protocol, version, selection, _, dataset), items in sorted(groups.items()):
        items.sort(key=lambda r: r.unit)
        by_type: dict[str, list[float]] = defaultdict(list)
        for r in items:
            for name, value in r.per_distortion.items():
                by_type[name].append(value)
        cells.append(Cell(
            protocol, version, selection, items[0].model, dataset, [r.unit for r in items],
            metrics.summarize([r.metrics.srcc for r in items]),
            metrics.summarize([r.metrics.plcc for r in items]),
            {r.unit: r.metrics.srcc for r in items},
            {r.unit: r.metrics.plcc for r in items},
            {name: float(np.median(v)) for name, v in sorted(by_type.items())},
            sorted({r.split.file for r in items}),
            any(r.config.get("breakdown") == "distortion" for r in items),
            any(r.test_dataset in r.model_config.get("trained_on", ()) for r in items),
        ))
    return cells


def shared_units(cell: Cell, reference: Cell, metric: str = "srcc") -> tuple[list[float], list[float]]:
    """Per-unit values of ``metric`` on the units both cells ran, paired."""
    mine, theirs = getattr(cell, f"per_unit_{metric}"), getattr(reference, f"per_unit_{metric}")
    shared = sorted(set(mine) & set(theirs))
    return [mine[u] for u in shared], [theirs[u] for u in shared]


def paired_p_value(cell: Cell, reference: Cell, metric: str = "srcc") -> float | None:
    """Wilcoxon signed-rank p-value over the units both cells share (None if under 2)."""
    mine, theirs = shared_units(cell, reference, metric)
    if len(mine) < 2:
        return None
    return metrics.paired_wilcoxon(mine, theirs)


def _fmt(summary: metrics.Summary) -> str:
    if summary.n == 1:
        return f"{summary.median:.4f}"
    return f"{summary.median:.4f} [{summary.ci_low:.3f}, {summary.ci_high:.3f}]"


def markdown_tables(cells: list[Cell], reference_model: str | None = None,
                    breakdown: bool = False) -> str:
    """One markdown table per (protocol, version, selection); per-distortion tables where the
    protocol asks for them, or everywhere with ``breakdown``."""
    from tabulate import tabulate

    out = []
    blocks: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in cells:
        blocks[(cell.protocol, cell.version, cell.selection)].append(cell)
    for (protocol, version, selection), block in blocks.items():
        reference = {c.dataset: c for c in block if c.model == reference_model}
        rows = []
        for cell in block:
            p = paired_p_value(cell, reference[cell.dataset]) \
                if cell.dataset in reference and cell.model != reference_model else None
            rows.append({
                "model": cell.model, "dataset": cell.dataset,
                "SRCC median [95% CI]": _fmt(cell.srcc),
                "PLCC median [95% CI]": _fmt(cell.plcc),
                "SRCC mean ± std": f"{cell.srcc.mean:.4f} ± {cell.srcc.std:.4f}",
                "units": len(cell.units),
                f"p vs {reference_model}" if reference_model else "p": "" if p is None else f"{p:.3g}",
            })
        out.append(f"### {protocol} (protocol v{version}), selection: "
                   f"{SELECTION_LABELS.get(selection, selection)}\n")
        out.append(tabulate(rows, headers="keys", tablefmt="github"))
        files = sorted({f for c in block for f in c.split_files})
        out.append(f"\nSplit files: {describe_files(files)}. Interval: percentile bootstrap of "
                   f"the median over units; p: paired Wilcoxon signed-rank over shared units.\n")
        for cell in (c for c in block if c.per_distortion and (c.show_breakdown or breakdown)):
            out.append(f"\nPer-distortion SRCC, median over {len(cell.units)} test sets "
                       f"({cell.model}, {cell.dataset}):\n")
            out.append(tabulate(sorted(cell.per_distortion.items()),
                                headers=["distortion", "SRCC"], tablefmt="github", floatfmt=".4f"))
            out.append("")
    return "\n".join(out)


def describe_files(files: list[str]) -> str:
    if not files:
        return "-"
    if len(files) <= 3:
        return ", ".join(files)
    common = files[0].rsplit("/", 1)[0]
    return f"{len(files)} files under {common}/" if all(f.startswith(common) for f in files) \
        else f"{len(files)} files"
