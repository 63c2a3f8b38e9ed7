"""Leaderboards: a suite's aggregated cells -> ``leaderboard.json``, the document of every number
and every line shown (tables of models x datasets, notes, figures), and its renderings: the
markdown (:mod:`harness.reporting.board_markdown`) and the page
(:mod:`harness.reporting.html_page`), each made from the document alone.

Each table is one block (protocol, version, selection, suite) and one metric; a column is a
dataset or pair, with the training fraction where it is under 1. A cell is the median over units
with its order-statistic interval and its n (``n=8/10`` when units are missing; the notes list
missing and failed units by name). A marker says whether the model differs from the reference
model (the run's Life-IQA preset unless one is named) on the units both ran, matched on their
split files: paired Wilcoxon signed-rank, Holm-adjusted over every comparison of the table,
adjusted p < 0.05: ``▲`` better, ``▼`` worse. ``leaderboard.json`` beside the markdown holds the
raw and adjusted p-values (a versioned format with a JSON Schema and a reader:
:mod:`harness.reporting.leaderboard_format`). Published numbers sit in their own rows, marked,
with their sources and PLCC rule; zero-shot cells whose metric was fitted on the test data are
flagged. The footer says where and how long it ran.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from harness.errors import InvalidOptionError, unknown_name
from harness.fileio import atomic_write_text, staged_folder
from harness.plan.models import ModelRef
from harness.plan.registry import list_bench_models
from harness.reporting import plots
from harness.reporting.analyses import analyses_document, block_analyses
from harness.reporting.board_markdown import board_markdown
from harness.reporting.leaderboard_format import (
    FORMAT_VERSION,
    read_leaderboard_document,
    row_rank,
)
from harness.reporting.reference import SELECTION_NAMES
from harness.reporting.views import Figure, Section, Table
from harness.results.aggregate import (
    ALPHA,
    PLCC_KIND,
    STABLE,
    Cell,
    Comparison,
    Gap,
    aggregate,
    blocks,
    cell_key,
    compare_block,
    comparison_key,
    comparison_note,
    describe_files,
    expected_units,
    gap_notes,
    gaps,
    interval_note,
    limit_notes,
    row_label,
    verdict_note,
)
from harness.results.schema import UnitResult
from harness.results.stability import (
    DRAWS,
    RerunNoise,
    measure_noise,
    rerun_sd,
    stability,
    stability_note,
    with_stability,
)
from harness.results.store import UnitFailure


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
    plcc_rule: str = "unknown"


# Published numbers of one protocol also belong beside the protocols that run the same units.
SHOWN_WITH = {"splits": {"splits", "comparison", "per-distortion", "layer-probes"},
              "ablation": {"ablation", "comparison"}, "cross-dataset": {"cross-dataset"}}


def load_published_values(path: str | Path | None = None) -> list[PublishedValue]:
    """Published numbers (harness.reporting.published's file; its default when ``path`` is None) as
    leaderboard rows."""
    from harness.reporting.published import load_reference

    values = []
    for entry in load_reference(path).entries:
        # an entry without a pair has a dataset (the reader refuses one with neither)
        dataset = cast(str, entry.dataset) if entry.pair is None else f"{entry.pair[0]} -> {entry.pair[1]}"
        source = entry.source
        cite = ", ".join(f"{k if k != 'arxiv' else 'arXiv'} {source[k]}" if k != "table" else
                         f"table: {source[k]}" for k in ("arxiv", "table") if source.get(k))
        for metric, value in entry.metrics.items():
            values.append(PublishedValue(entry.model, dataset, entry.protocol, metric, value,
                                         f"{cite} ({entry.provenance})", entry.selection,
                                         entry.plcc_text()))
    return values


def model_order(models: Iterable[ModelRef], reference: str | None) -> list[ModelRef]:
    """The models (one per name) in their tables' row order
    (:func:`~harness.reporting.leaderboard_format.row_rank`)."""
    registry = list_bench_models()
    return sorted({m.name: m for m in models}.values(),
                  key=lambda m: row_rank(m.name, m.kind, m.variant, reference, registry))


def row_ordered(block: list[Cell], reference: str | None) -> list[Cell]:
    """``block``'s cells in row order: by model (:func:`model_order`), then config and
    column."""
    rank = {m.name: i for i, m in enumerate(model_order(cell_models(block), reference))}
    return sorted(block, key=lambda c: (rank[c.model], c.config_hash, c.column))


def cell_models(cells: Iterable[Cell]) -> list[ModelRef]:
    """The models of ``cells``, one per name."""
    return list({c.model: c.model_ref for c in cells}.values())


def reference_model(cells: list[Cell]) -> str | None:
    """The run's Life-IQA preset in its full configuration: the ``full`` model of the preset
    most units ran under (a baseline or an ablation never is); None without one."""
    full = sorted({c.model: c.model_ref for c in cells if c.model_ref.kind == "lifeiqa"}.items())
    if not full:
        return None
    presets = Counter(c.model_ref.preset for c in cells for _ in c.units)
    return max(full, key=lambda item: presets[item[1].preset])[0]


def resolve_reference(cells: list[Cell], reference: str | None) -> str | None:
    """``reference`` if the cells have that model (raises UnknownNameError naming the close
    ones if not), else :func:`reference_model`."""
    if reference is None:
        return reference_model(cells)
    names = {c.model for c in cells}
    if reference not in names:
        raise unknown_name("reference model", reference, names, "(--reference names a model of "
                                                                 "the suite)")
    return reference


def per_distortion_tables(block: list[Cell], reference: str | None) -> list[Table]:
    """Per column with a breakdown, the median SRCC of each distortion type (rows) by model."""
    out = []
    for column in sorted({c.column for c in block}):
        cells = [c for c in block if c.column == column and c.per_distortion and c.show_breakdown]
        if not cells:
            continue
        models = [m.name for m in model_order(cell_models(cells), reference)]
        by_model = {c.model: c for c in cells}
        types = sorted({t for c in cells for t in c.per_distortion})
        rows = [[t, *[_num(by_model[m].per_distortion.get(t)) for m in models]] for t in types]
        units = max(c.n for c in cells)
        out.append(Table("Per-distortion SRCC", ["distortion", *models], rows,
                         subtitle=f"on {column} (median over {units} test parts)", heatmap=True))
    return out


def cross_dataset_tables(block: list[Cell], reference: str | None) -> list[Table]:
    """Per row of a block of dataset pairs, its median SRCC as a matrix: training set by row,
    test set by column (for rows with two pairs or more)."""
    pairs = [c for c in block if " -> " in c.dataset and c.train_fraction >= 1]
    out = []
    for model in model_order(cell_models(pairs), reference):
        by_row: dict[str, dict[tuple[str, ...], Cell]] = defaultdict(dict)
        for cell in (c for c in pairs if c.model == model.name):
            by_row[row_label(cell, block)][tuple(cell.dataset.split(" -> "))] = cell
        for label, mine in sorted(by_row.items()):
            if len(mine) < 2:  # one pair is its table's cell already
                continue
            sources = sorted({train for train, _ in mine})
            targets = sorted({test for _, test in mine})
            rows = [[source, *[_num(mine[(source, target)].srcc.median)
                               if (source, target) in mine else "-" for target in targets]]
                    for source in sources]
            out.append(Table("Cross-dataset SRCC", ["training set", *targets], rows,
                             subtitle=f"of {label} (median over units; a row per training set, "
                                      f"a column per test set)", heatmap=True))
    return out


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


@dataclass(frozen=True)
class BoardBlock:
    """One block of a leaderboard: its cells, the comparisons of each metric (each metric's
    table is one family for Holm's adjustment) and the units without a result."""

    key: tuple[str, str, str, str]
    cells: list[Cell]
    comparisons: dict[str, list[Comparison]]
    missing: list[Gap]
    failed_reruns: list[UnitFailure] = field(default_factory=list)  # noise reruns, in no table


def board_blocks(cells: list[Cell], reference: str | None,
                 failures: Iterable[UnitFailure] = (),
                 noise: RerunNoise | None = None) -> list[BoardBlock]:
    """The blocks' comparisons, each marker re-tested under ``noise`` where it is given (a
    fragile one is hollow: :mod:`harness.results.stability`)."""
    failures = list(failures)
    out = []
    for key, block in blocks(cells).items():
        comparisons = {}
        for metric in ("srcc", "plcc"):
            found = compare_block(block, reference, metric)
            if noise is not None:
                found = with_stability(found, stability(block, reference, metric, noise))
            comparisons[metric] = found
        reruns = [f for f in failures if f.rerun_of is not None
                  and (f.protocol, f.protocol_version, f.selection, f.suite) == key]
        out.append(BoardBlock(key, block, comparisons, gaps(block, failures), reruns))
    return out


def noise_table(board: BoardBlock, noise: RerunNoise | None, reference: str | None) -> list[Table]:
    """The rerun sd each cell's verdicts were re-tested under, and where it came from."""
    if noise is None or reference is None:
        return []
    rows = []
    for cell in sorted(board.cells, key=lambda c: (c.column, c.model, c.config_hash)):
        sds = [noise.sd(cell, metric) for metric in METRICS]
        rows.append([cell.model, cell.column,
                     *("-" if sd is None else f"{sd:.4f}" for sd in sds),
                     noise.source_of(comparison_key(cell))])
    failed = [f"{f.model} {f.unit} ({f.kind}: {f.message})" for f in board.failed_reruns]
    return [Table("Rerun noise", ["model", "column", "sd SRCC", "sd PLCC", "measured from"], rows,
                  [f"Noise reruns that failed (their cells' sd uses the others): "
                   f"{'; '.join(failed)}."] if failed else [],
                  "(the sd of one unit's value between runs each verdict was re-tested under)")]



def _orphan_failures(cells: list[Cell], failures: list[UnitFailure]) -> list[UnitFailure]:
    """Failures of blocks that have no cell at all (every unit of the block failed)."""
    shown = {c.block for c in cells}
    return [f for f in failures
            if (f.protocol, f.protocol_version, f.selection, f.suite) not in shown]


@dataclass(frozen=True)
class BlockView:
    """Everything one block shows besides its main tables, made once and written to the
    markdown, to ``leaderboard.json`` and so to the HTML page: the published rows beside it, its
    notes, its further tables (per-distortion, cross-dataset, parameters, analyses) and figures."""

    board: BoardBlock
    published: list[PublishedValue]
    notes: list[str]
    tables: list[Table]
    figures: list[Figure]

    @property
    def slug(self) -> str:
        protocol, version, selection, suite = self.board.key
        return f"{protocol}-v{version}-{selection}-{suite}".replace("/", "_")


def block_view(board: BoardBlock, results: list[UnitResult], published: list[PublishedValue],
               reference: str | None, noise: RerunNoise | None, out_dir: Path | None,
               runs_root: Path | None) -> BlockView:
    """``board``'s view; with ``out_dir``, its figures are written to ``out_dir/figures``."""
    protocol = board.key[0]
    block = board.cells
    units = sorted({u for c in block for u in c.units})
    files = sorted({f for c in block for f in c.split_files})
    datasets = {c.column for c in block}
    shown = [p for p in published if protocol in SHOWN_WITH.get(p.protocol, {p.protocol})
             and p.dataset in datasets]
    notes = [f"Units: {', '.join(units)}. Split files (relative to the runs folder): "
             f"{describe_files(files)}.",
             interval_note(c.n for c in block),
             *(comparison_note(reference, board.comparisons[m], m) for m in METRICS),
             *(stability_note(noise, board.comparisons[m], m) for m in METRICS
               if reference is not None),
             *verdict_note(reference, block, board.comparisons["srcc"], "srcc"),
             *gap_notes(board.missing), *limit_notes(block)]
    mine = [r for r in results if cell_key(r)[:4] == board.key]
    notes_by_model = {r.model.name: r.selection_note for r in mine if r.selection_note}
    for model, note in sorted(notes_by_model.items()):
        notes.append(f"{model}: {note} (the selection mode above does not apply).")
    unknown = sorted({r.model.name for r in mine if "unknown" in
                      r.model_config.get("trained_on", ())})
    if unknown:
        notes.append(f"{', '.join(unknown)}: pyiqa's config does not say what data the "
                     f"weights were fitted on, so 'zero-shot' is unverified.")
    if any(c.not_zero_shot for c in block):
        notes.append("†: a training-free metric whose shipped weights were fitted on this "
                     "dataset: not zero-shot.")
    for value in sorted({(p.model, p.source, p.selection, p.plcc_rule) for p in shown}):
        notes.append(f"{value[0]} (published): {value[1]}; selection: "
                     f"{SELECTION_NAMES.get(value[2], value[2])}; PLCC: {value[3]}.")
    view = BlockView(board, shown, notes, [], [])
    analysis_tables, analysis_figures = block_analyses(mine, out_dir, view.slug)
    tables = [*per_distortion_tables(block, reference), *cross_dataset_tables(block, reference),
              *analysis_tables, *noise_table(board, noise, reference)]
    figures = list(analysis_figures)
    if out_dir is not None:
        order = [m.name for m in model_order(cell_models(block), reference)]
        figures += [Figure(caption, f"figures/{path.name}") for caption, path in
                    plots.block_figures(block, mine, reference, order, out_dir / "figures",
                                        view.slug, runs_root)]
    return BlockView(board, shown, notes, tables, figures)


METRICS = ("srcc", "plcc")


def board_views(results: list[UnitResult], published: Sequence[PublishedValue] = (),
                reference: str | None = None, failures: Iterable[UnitFailure] = (),
                noise: RerunNoise | None = None, out_dir: Path | None = None,
                runs_root: Path | None = None) -> tuple[str | None, list[BlockView]]:
    """The reference model (resolved: :func:`resolve_reference`) and every block's view."""
    cells = aggregate(results)
    reference = resolve_reference(cells, reference)
    boards = board_blocks(cells, reference, list(failures), noise)
    return reference, [block_view(b, results, list(published), reference, noise, out_dir,
                                  runs_root) for b in boards]


def render(results: list[UnitResult], out_dir: Path | None, published: Sequence[PublishedValue] = (),
           title: str = "Leaderboard", reference: str | None = None,
           runs_root: Path | None = None, failures: Iterable[UnitFailure] = (),
           noise: RerunNoise | None = None, views: list[BlockView] | None = None,
           sections: Iterable[Section] = ()) -> str:
    """The markdown leaderboard of ``results``: the rendering of their ``leaderboard.json``
    (:func:`leaderboard_document`, read back as the file holds it). With ``out_dir``, figures
    are written to ``out_dir/figures`` and linked (scatter plots need ``runs_root`` for the
    predictions). ``failures``: the suite's failed units (listed by name in their block's
    notes); ``noise``: the units' rerun noise, under which each marker is re-tested (None: not
    assessed, and the notes say so); ``views``: the blocks already made (:func:`board_views`,
    with the same reference); ``sections``: parts before the blocks."""
    failures = list(failures)
    if views is None:
        reference, views = board_views(results, published, reference, failures, noise, out_dir,
                                       runs_root)
    document = leaderboard_document(results, title, reference, failures, noise, views, sections)
    return board_markdown(json.loads(document_json(document)))


def document_json(document: dict) -> str:
    """``leaderboard.json``'s text."""
    return json.dumps(document, indent=1)


def arithmetic_label(result: UnitResult) -> str:
    """The unit's CPU arithmetic in one line (harness/arithmetic.py)."""
    found = result.environment.arithmetic
    return found.label if found else "not recorded (written before result schema version 5)"


def provenance(results: list[UnitResult]) -> dict:
    """Where the units ran and from which code: the footer's facts as data."""
    machines: dict[str, float] = defaultdict(float)
    for result in results:
        env = result.environment
        machines[f"{env.cuda_device or f'CPU ({env.platform})'}, torch {env.torch}, host "
                 f"{env.host}"] += result.wall_seconds
    return {"units": len(results),
            "code_versions": [{"version": version, "units": count} for version, count in
                              sorted(Counter(r.environment.code_version for r in results).items())],
            "machines": [{"machine": machine, "unit_minutes": round(seconds / 60, 3)}
                         for machine, seconds in machines.items()],
            "arithmetic": [{"arithmetic": label, "units": count} for label, count in sorted(
                Counter(arithmetic_label(r) for r in results).items())],
            "protocols": sorted({f"{r.protocol.name} v{r.protocol.version}" for r in results}),
            "plugins": [{"model": model, "plugin": label, "units": count}
                        for (model, label), count in sorted(Counter(
                            (r.model.name, r.plugin.label) for r in results if r.plugin).items())]}


def leaderboard_document(results: list[UnitResult], title: str = "Leaderboard",
                         reference: str | None = None,
                         failures: Iterable[UnitFailure] = (),
                         noise: RerunNoise | None = None,
                         views: list[BlockView] | None = None,
                         sections: Iterable[Section] = ()) -> dict:
    """Every number behind a leaderboard: per cell its n, medians and intervals with their
    coverage; per table and metric the comparisons with raw and Holm-adjusted p-values (the
    family is the table); the units without a result; and what the markdown shows besides
    (published rows, notes, further tables, figures, sections), so that a page made from it
    shows what the markdown does. Its layout is format version
    :data:`~harness.reporting.leaderboard_format.FORMAT_VERSION` (``leaderboard.schema.json``)."""
    failures = list(failures)
    if views is None:
        reference, views = board_views(results, (), reference, failures, noise)
    else:
        reference = resolve_reference(aggregate(results), reference)

    def summary(cell: Cell, metric: str) -> dict:
        s = getattr(cell, metric)
        return {"median": s.median, "interval": [s.ci_low, s.ci_high], "coverage": s.coverage,
                "mean": s.mean, "std": s.std}

    plugins = {r.model.name: r.plugin.to_dict() for r in results if r.plugin}
    folders = {(*cell_key(r), r.unit): "/".join(r.key.folder_parts()) for r in results}
    out = []
    for view in views:
        board = view.board
        protocol, version, selection, suite = board.key
        block = board.cells
        out.append({
            "protocol": protocol, "protocol_version": version, "selection": selection,
            "suite": suite, "reference": reference,
            "family": "every comparison with the reference in one table (this block, one metric)",
            "test": "Wilcoxon signed-rank, two-sided, over units matched on their split file",
            "adjustment": "Holm", "alpha": ALPHA, "plcc": PLCC_KIND,
            "expected_units": expected_units(block, board.missing),
            "cells": [{"model": c.model, "row": row_label(c, block), "kind": c.model_ref.kind,
                       "limit": c.limit, "plugin": plugins.get(c.model), "column": c.column,
                       "dataset": c.dataset, "train_fraction": c.train_fraction,
                       "config_hash": c.config_hash, "not_zero_shot": c.not_zero_shot,
                       "n": c.n, "units": c.units, "split_files": c.split_files,
                       "per_unit": {u: {"srcc": c.per_unit_srcc[u], "plcc": c.per_unit_plcc[u],
                                        "split_sha256_16": c.unit_hashes.get(u, ""),
                                        "folder": folders.get((*c.key, u))}
                                    for u in c.units},
                       "per_distortion": dict(c.per_distortion) if c.show_breakdown else None,
                       "srcc": summary(c, "srcc"), "plcc": summary(c, "plcc")}
                      for c in row_ordered(block, reference)],
            "comparisons": {m: [c.to_json_dict() for c in comparisons]
                            for m, comparisons in board.comparisons.items()},
            "missing": [{"model": g.model, "column": g.column, "unit": g.unit,
                         "reason": g.reason} for g in board.missing],
            "published": [{"model": p.model, "column": p.dataset, "metric": p.metric,
                           "value": p.value, "source": p.source, "selection": p.selection,
                           "plcc_rule": p.plcc_rule} for p in view.published],
            "notes": view.notes,
            "tables": [t.to_json() for t in view.tables],
            "figures": [f.to_json() for f in view.figures],
            "analyses": analyses_document([r for r in results if cell_key(r)[:4] == board.key]),
        })
    orphans = _orphan_failures([c for v in views for c in v.board.cells], failures)
    return {"format_version": FORMAT_VERSION, "title": title, "reference": reference,
            "sections": [section.to_json() for section in sections],
            "provenance": provenance(results),
            "rerun_noise": None if noise is None else {
                "source": noise.source, "default_sd": noise.default, "stable_share": STABLE,
                "draws": DRAWS,
                "cells": [{"model": model, "column": column, "config_hash": config, **sds,
                           "source": noise.source_of((model, column, config))}
                          for (model, column, config), sds in sorted(noise.by_cell.items())]},
            "blocks": out,
            "failed_without_table": [{"model": f.model, "dataset": f.dataset_label,
                                      "protocol": f.protocol,
                                      "protocol_version": f.protocol_version,
                                      "suite": f.suite, "unit": f.unit, "kind": f.kind,
                                      "message": f.message} for f in orphans]}


def rerun_noise(results: list[UnitResult], rerun: list[UnitResult] | None = None,
                sd: float | None = None, source: str = "") -> RerunNoise | None:
    """The noise markers are re-tested under: measured per cell from ``rerun`` (the same units
    run again), else (and for cells the rerun lacks) the stated ``sd``; None without either."""
    if rerun:
        return measure_noise(aggregate(results), aggregate(rerun), source or "a rerun", sd)
    if sd is not None:
        return RerunNoise({}, sd, source or f"a stated sd of {sd:g}")
    return None


def board_noise(first: str | Path, second: str | Path, default: float | None = None) -> RerunNoise:
    """The rerun sd of each cell two leaderboards hold for the same units (same model, column,
    config and split files), each made under other arithmetic: the noise measured between them
    (:func:`~harness.results.stability.rerun_sd`; zero for a cell they give to the bit)."""
    def per_unit(path: str | Path) -> dict[tuple[str, str, str], dict]:
        return {(c["model"], c["column"], c["config_hash"]): c["per_unit"] or {}
                for block in read_leaderboard_document(path)["blocks"] for c in block["cells"]}

    a, b = per_unit(first), per_unit(second)
    by_cell: dict[tuple[str, str, str], dict[str, float]] = {}
    for key in sorted(a.keys() & b.keys()):
        shared = [u for u in sorted(a[key]) if u in b[key]
                  and a[key][u]["split_sha256_16"] == b[key][u]["split_sha256_16"]]
        if shared:
            by_cell[key] = {m: rerun_sd((a[key][u][m] for u in shared),
                                        (b[key][u][m] for u in shared)) for m in METRICS}
    if not by_cell:
        raise InvalidOptionError(f"--noise-boards {first} {second}: the two leaderboards share "
                                 f"no cell with units on the same split files")
    return RerunNoise(by_cell, default, f"the same units on two boards made under different "
                                        f"arithmetic, {Path(first).name} and {Path(second).name}")


def write_results_leaderboard(results: list[UnitResult], runs: str | Path, out: str | Path,
                              published: Sequence[PublishedValue] = (), reference: str | None = None,
                              title: str = "Leaderboard",
                              failures: Iterable[UnitFailure] = (),
                              noise: RerunNoise | None = None, sections: Iterable[Section] = (),
                              html: str | Path | None = None) -> Path:
    """``out/leaderboard.md`` (and figures) for ``results``, whose predictions are under
    ``runs``, and ``out/leaderboard.json`` (the numbers behind it: p-values raw and adjusted);
    markers re-tested under ``noise`` (:func:`rerun_noise`) where it is given; ``sections``
    before the blocks. With ``html``, also the page ``html/index.html``, made from the
    ``leaderboard.json`` just written (:mod:`harness.reporting.html_page`)."""
    failures, sections = list(failures), list(sections)
    out = Path(out)
    same_page = html is not None and Path(html).resolve() == out.resolve()
    # every file is made in a staging folder and moved into ``out`` only when all are made: a
    # unit found damaged on the way (a predictions file cut short) leaves the old board whole
    with staged_folder(out) as staging:
        # the markers' re-tests under noise are the costly part: made once, for every file
        reference, views = board_views(results, published, reference, failures, noise, staging,
                                       Path(runs))
        document = document_json(leaderboard_document(results, title, reference, failures,
                                                      noise, views, sections))
        atomic_write_text(staging / "leaderboard.json", document)
        # the markdown is the rendering of the file as written, as the page is
        atomic_write_text(staging / "leaderboard.md", board_markdown(json.loads(document)))
        if same_page:
            from harness.reporting.html_page import write_page

            write_page(staging / "leaderboard.json", staging, runs)
    if html is not None and not same_page:
        from harness.reporting.html_page import write_page

        write_page(out / "leaderboard.json", html, runs)
    return out / "leaderboard.md"
