"""Leaderboards: a suite's aggregated cells -> markdown tables (models x datasets) and figures.

Each table is one (protocol, version, selection) block and one metric. A cell is the median over
units with its 95% bootstrap interval; a marker says whether the model differs from the reference
model on the units both ran (paired Wilcoxon signed-rank, p < 0.05: ``▲`` better, ``▼`` worse).
Published numbers sit in their own rows, marked, with their sources; zero-shot cells whose
metric was fitted on the test data are flagged. The footer says where and how long it ran.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import NoResultsError
from harness.plan.baselines import BASELINES
from harness.plan.models import ModelRef
from harness.reporting import plots
from harness.results.aggregate import (
    SELECTION_LABELS,
    Cell,
    aggregate,
    describe_files,
    paired_p_value,
    shared_units,
)
from harness.results.schema import UnitResult
from harness.results.store import ResultsStore

ALPHA = 0.05


@dataclass(frozen=True)
class PublishedValue:
    """One published number for a leaderboard row (see harness.reporting.published)."""

    model: str
    dataset: str
    protocol: str
    metric: str
    value: float
    source: str
    selection: str


# Published numbers of one protocol also belong beside the protocols that run the same units.
SHOWN_WITH = {"splits": {"splits", "comparison", "per-distortion", "layer-probes"},
              "ablation": {"ablation", "comparison"}, "cross-dataset": {"cross-dataset"}}


def load_published_values(path: str | Path | None = None) -> list[PublishedValue]:
    """Published numbers (harness.reporting.published's file; its default when ``path`` is None) as
    leaderboard rows."""
    from harness.reporting.published import load_published

    values = []
    for entry in load_published(path).entries:
        dataset = entry.dataset if entry.pair is None else f"{entry.pair[0]} -> {entry.pair[1]}"
        source = entry.source
        cite = ", ".join(f"{k if k != 'arxiv' else 'arXiv'} {source[k]}" if k != "table" else
                         f"table: {source[k]}" for k in ("arxiv", "table") if source.get(k))
        for metric, value in entry.metrics.items():
            values.append(PublishedValue(entry.model, dataset, entry.protocol, metric, value,
                                         f"{cite} ({entry.provenance})", entry.selection))
    return values


def family(model: ModelRef) -> str:
    """The leaderboard's "kind" column: Life-IQA, its ablation, or the baseline's family."""
    kind = model.kind
    if kind == "lifeiqa":
        return "Life-IQA"
    return "Life-IQA ablation" if kind == "ablation" else kind.replace("_", " ")


def model_order(models: Iterable[ModelRef], reference: str | None) -> list[ModelRef]:
    """The models (one per name) with the reference first, then other full Life-IQA models,
    then ablations, then baselines in registry order."""
    registry = list(BASELINES)  # registration order: Life-IQA configs, probes, trained, free

    def rank(model: ModelRef) -> tuple:
        if model.name == reference:
            return (0, "")
        kind = model.kind
        if kind in ("lifeiqa", "ablation"):
            return (1 if kind == "ablation" else 0.5, model.name)
        return (2, registry.index(model.name) if model.name in registry else len(registry),
                model.name)

    return sorted({m.name: m for m in models}.values(), key=rank)


def cell_models(cells: Iterable[Cell]) -> list[ModelRef]:
    """The models of ``cells``, one per name."""
    return list({c.model: c.model_ref for c in cells}.values())


def _interval(cell: Cell, metric: str) -> str:
    summary = getattr(cell, metric)
    if summary.n == 1:
        return f"{summary.median:.3f}"
    return f"{summary.median:.3f} [{summary.ci_low:.3f}, {summary.ci_high:.3f}]"


def marker(cell: Cell, reference: Cell | None, metric: str = "srcc") -> str:
    """▲/▼ when the paired test over shared units gives p < ALPHA; the direction is the sign of
    the median paired difference."""
    if reference is None or cell is reference:
        return ""
    p = paired_p_value(cell, reference, metric)
    if p is None or not p < ALPHA:
        return ""
    mine, theirs = shared_units(cell, reference, metric)
    return " ▲" if float(np.median(np.subtract(mine, theirs))) > 0 else " ▼"


def reference_model(cells: list[Cell]) -> str | None:
    """The Life-IQA preset of the suite (its full configuration), if there is one."""
    full = sorted({c.model for c in cells if c.model_ref.kind == "lifeiqa"})
    return full[0] if full else None


def _published_cell(values: list[PublishedValue], model: str, dataset: str, metric: str) -> str:
    for value in values:
        if value.model == model and value.dataset == dataset and value.metric == metric:
            return f"{value.value:.3f}"
    return ""


def block_tables(block: list[Cell], reference: str | None, published: list[PublishedValue],
                 metric: str) -> str:
    from tabulate import tabulate

    datasets = sorted({c.dataset for c in block})
    by_key = {(c.model, c.dataset): c for c in block}
    rows = []
    for model in model_order(cell_models(block), reference):
        row = {"model": model.name, "kind": family(model)}
        for dataset in datasets:
            cell = by_key.get((model.name, dataset))
            if cell is None:
                row[dataset] = "-"
                continue
            text = _interval(cell, metric) + marker(cell, by_key.get((reference, dataset)), metric)
            row[dataset] = text + (" †" if cell.not_zero_shot else "")
        rows.append(row)
    for name in sorted({v.model for v in published}):
        row = {"model": f"{name} (published)", "kind": "published"}
        row.update({d: _published_cell(published, name, d, metric) or "-" for d in datasets})
        if any(row[d] != "-" for d in datasets):
            rows.append(row)
    return tabulate(rows, headers="keys", tablefmt="github")


def per_distortion_table(block: list[Cell], reference: str | None) -> str:
    from tabulate import tabulate

    out = []
    for dataset in sorted({c.dataset for c in block}):
        cells = [c for c in block if c.dataset == dataset and c.per_distortion and c.show_breakdown]
        if not cells:
            continue
        models = [m.name for m in model_order(cell_models(cells), reference)]
        by_model = {c.model: c for c in cells}
        types = sorted({t for c in cells for t in c.per_distortion})
        rows = [[t, *[_num(by_model[m].per_distortion.get(t)) for m in models]] for t in types]
        units = max(len(c.units) for c in cells)
        out.append(f"Per-distortion SRCC on {dataset} (median over {units} test parts):\n")
        out.append(tabulate(rows, headers=["distortion", *models], tablefmt="github"))
        out.append("")
    return "\n".join(out)


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def footer(results: list[UnitResult]) -> str:
    machines = defaultdict(float)
    for result in results:
        env = result.environment
        device = env.cuda_device or f"CPU ({env.platform})"
        machines[f"{device}, torch {env.torch}, host {env.host}"] += result.wall_seconds
    commits = sorted({(r.environment.git_commit or "?")[:10] for r in results})
    lines = [f"- {key}: {seconds / 60:.1f} min of unit wall time" for key, seconds in machines.items()]
    return ("Hardware and wall time (sum over units; units run one after another unless an "
            "executor ran them in parallel):\n\n" + "\n".join(lines)
            + f"\n\n{len(results)} units; git commit(s) {', '.join(commits)}.")


def render(results: list[UnitResult], out_dir: Path | None, published: list[PublishedValue] = (),
           title: str = "Leaderboard", reference: str | None = None,
           runs_root: Path | None = None) -> str:
    """The markdown leaderboard of ``results``; with ``out_dir``, figures are written to
    ``out_dir/figures`` and linked (scatter plots need ``runs_root`` for the predictions)."""
    cells = aggregate(results)
    reference = reference or reference_model(cells)
    blocks: dict[tuple, list[Cell]] = defaultdict(list)
    for cell in cells:
        blocks[(cell.protocol, cell.version, cell.selection)].append(cell)
    parts = [f"# {title}\n"]
    for (protocol, version, selection), block in sorted(blocks.items()):
        units = sorted({u for c in block for u in c.units})
        parts.append(f"## {protocol} (protocol v{version}) · selection: "
                     f"{SELECTION_LABELS.get(selection, selection)}\n")
        files = sorted({f for c in block for f in c.split_files})
        datasets = {c.dataset for c in block}
        shown = [p for p in published if protocol in SHOWN_WITH.get(p.protocol, {p.protocol})
                 and p.dataset in datasets]
        for metric in ("srcc", "plcc"):
            parts.append(f"**{metric.upper()}**, median over {len(units)} unit(s) "
                         f"[95% bootstrap interval]; reference: {reference or '-'}\n")
            parts.append(block_tables(block, reference, [p for p in shown if p.metric == metric],
                                      metric))
            parts.append("")
        notes = [f"Units: {', '.join(units)}. Split files: {describe_files(files)}.",
                 f"▲/▼: better/worse than {reference} (paired Wilcoxon signed-rank over shared "
                 f"units, p < {ALPHA}); with n units the smallest attainable two-sided p is "
                 f"{2 / 2 ** len(units):.3g}."]
        notes_by_model = {r.model.name: r.selection_note for r in results
                          if r.selection_note and r.protocol.name == protocol}
        for model, note in sorted(notes_by_model.items()):
            notes.append(f"{model}: {note} (the selection mode above does not apply).")
        unknown = sorted({r.model.name for r in results if "unknown" in
                          r.model_config.get("trained_on", ())})
        if unknown:
            notes.append(f"{', '.join(unknown)}: pyiqa's config does not say what data the "
                         f"weights were fitted on, so 'zero-shot' is unverified.")
        if any(c.not_zero_shot for c in block):
            notes.append("†: a training-free metric whose shipped weights were fitted on this "
                         "dataset: not zero-shot.")
        for value in sorted({(p.model, p.source, p.selection) for p in shown}):
            notes.append(f"{value[0]} (published): {value[1]}; selected by {value[2]}.")
        parts.append("\n".join(f"- {n}" for n in notes) + "\n")
        breakdown = per_distortion_table(block, reference)
        if breakdown:
            parts.append(breakdown)
        if out_dir is not None:
            slug = f"{protocol}-v{version}-{selection}".replace("/", "_")
            order = [m.name for m in model_order(cell_models(block), reference)]
            for caption, path in plots.block_figures(block, results, reference, order,
                                                     out_dir / "figures", slug, runs_root):
                parts.append(f"![{caption}](figures/{path.name})\n")
    parts.append(footer(results))
    return "\n".join(parts) + "\n"


def write_leaderboard(suite: str, runs: str | Path, out: str | Path,
                      published: list[PublishedValue] = (), reference: str | None = None,
                      title: str | None = None) -> Path:
    """The leaderboard of every complete unit under ``runs/suite``."""
    results = ResultsStore(runs).results(suite)
    if not results:
        raise NoResultsError(f"no results under {Path(runs) / suite}")
    return write_results_leaderboard(results, runs, out, published, reference,
                                     title or f"Leaderboard: {suite}")


def write_results_leaderboard(results: list[UnitResult], runs: str | Path, out: str | Path,
                              published: list[PublishedValue] = (), reference: str | None = None,
                              title: str = "Leaderboard") -> Path:
    """``out/leaderboard.md`` (and figures) for ``results``, whose predictions are under ``runs``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render(results, out_dir, published, title, reference, Path(runs))
    path = out_dir / "leaderboard.md"
    path.write_text(text)
    return path
