"""The analyses' tables (issue 17): stored ``UnitResult.analyses`` of one leaderboard block,
aggregated over its units (splits) per model and dataset like every metric: the median with its
order-statistic interval, n per row."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from harness.reporting import plots
from harness.reporting.views import Figure, Table
from harness.results import metrics
from harness.results.aggregate import column_label, format_interval
from harness.results.schema import UnitResult

ALPHA = 0.05
# the permutation scheme of a unit stored before issue 24, which recorded none: types shuffled
# over the whole test part
OLD_PERMUTATION = "over all test images"


def _groups(results: list[UnitResult], analysis: str) -> dict[tuple[str, str], list[UnitResult]]:
    """The results holding ``analysis``, by (column, model), units sorted."""
    out: dict[tuple[str, str], list[UnitResult]] = defaultdict(list)
    for result in results:
        if analysis in result.analyses:
            out[(column_label(result.dataset_label, result.train_fraction),
                 result.model.name)].append(result)
    return {key: sorted(items, key=lambda r: r.unit) for key, items in sorted(out.items())}


def _summary(values: list[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    return format_interval(metrics.summarize(values)) if values else "-"


@dataclass(frozen=True)
class RoutingCell:
    """One model's routing on one dataset over its units."""

    column: str
    model: str
    units: list[str]
    distortions: list[str]
    frequency: np.ndarray  # (types, experts): the mean over units of each unit's frequencies
    mutual_information: metrics.Summary
    p_values: list[float | None]  # None: the unit's test could not run (see ``untestable``)
    normalized_entropy: metrics.Summary
    final_load_cv: metrics.Summary | None  # the last training epoch's load imbalance
    load_by_epoch: np.ndarray | None  # (epochs, experts): the mean over units
    schemes: list[str] = field(default_factory=list)  # per unit: how its p shuffled the types
    untestable: dict[str, str] = field(default_factory=dict)  # unit -> why it has no p

    @property
    def tested(self) -> list[float]:
        """The p-values of the units whose test could run."""
        return [p for p in self.p_values if p is not None]

    @property
    def p_median(self) -> float | None:
        """The median p of the tested splits; None when no split could be tested."""
        return float(np.median(self.tested)) if self.tested else None

    @property
    def p_values_holm(self) -> list[float | None]:
        """The splits' p-values adjusted together (Holm): the splits share training images, so
        their tests are dependent, and Holm holds under any dependence. The family is the tests
        that ran: an untestable split is no test, and stays None."""
        adjusted = iter(metrics.holm(self.tested))
        return [None if p is None else next(adjusted) for p in self.p_values]

    @property
    def significant(self) -> int:
        """Splits whose routing depends on distortion type after Holm's correction; one or more
        rejects "routing ignores the type" for the cell at ``ALPHA``."""
        return sum(p < ALPHA for p in self.p_values_holm if p is not None)

    @property
    def permutation(self) -> str:
        """The schemes its units' p-values permuted by ("-" when none is known)."""
        return " + ".join(sorted(set(self.schemes))) or "-"


def _load_imbalance(load: list[float]) -> float:
    shares = np.asarray(load, dtype=float)
    return float(shares.std() / shares.mean())


def routing_cells(results: list[UnitResult]) -> list[RoutingCell]:
    cells = []
    for (column, model), items in _groups(results, "routing").items():
        routing = [r.analyses["routing"] for r in items]
        types = routing[0]["distortions"]
        if any(r["distortions"] != types for r in routing):
            raise ValueError(f"{model} on {column}: units route different distortion types")
        loads = [[e["expert_load"] for e in r.history if "expert_load" in e] for r in items]
        epochs = min(len(load) for load in loads)
        cells.append(RoutingCell(
            column, model, [r.unit for r in items], types,
            np.mean([r["frequency"] for r in routing], axis=0),
            metrics.summarize([r["mutual_information"] for r in routing]),
            [r["p_value"] for r in routing],
            metrics.summarize([r["normalized_entropy"] for r in routing]),
            metrics.summarize([_load_imbalance(load[epochs - 1]) for load in loads])
            if epochs else None,
            np.mean([load[:epochs] for load in loads], axis=0) if epochs else None,
            # units stored before issue 24 name no scheme: they shuffled over all test images
            [r.get("permutation", OLD_PERMUTATION) for r in routing],
            {unit.unit: r.get("p_value_reason") or "no p-value"
             for unit, r in zip(items, routing, strict=True) if r["p_value"] is None},
        ))
    return cells


def _p_text(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _significant_text(cell: RoutingCell) -> str:
    """Significant of tested splits, and the untestable ones named apart: they are no test, so
    neither count holds them."""
    text = f"{cell.significant}/{len(cell.tested)}"
    return f"{text} ({len(cell.untestable)} untestable)" if cell.untestable else text


def routing_table(cells: list[RoutingCell]) -> Table:
    rows = [[c.column, c.model, str(len(c.units)), format_interval(c.mutual_information, 4),
             _p_text(c.p_median), _significant_text(c), c.permutation,
             format_interval(c.normalized_entropy),
             format_interval(c.final_load_cv) if c.final_load_cv else "-"] for c in cells]
    return Table("Expert routing by distortion type", [
        "dataset", "model", "n", "I(type; expert) bits", "p median", f"splits p_Holm < {ALPHA}",
        "types permuted", "router entropy / log E", "load CV, last epoch"], rows,
        [ROUTING_NOTE.format(alpha=ALPHA), *untestable_notes(cells)],
        "(median [interval] over splits)")


def untestable_notes(cells: list[RoutingCell]) -> list[str]:
    """One line per split whose permutation test could not run, with the reason stored."""
    return [f"{c.model} on {c.column}, {unit}: no p-value: {reason}"
            for c in cells for unit, reason in sorted(c.untestable.items())]


ROUTING_NOTE = (
    "Routing on each split's test part: I(type; expert) is the mutual information between an "
    "image's distortion type and the experts its tokens select (top-k), in bits; p is a "
    "permutation test of it, one per split, the image being the unit, with distortion types "
    "shuffled as 'types permuted' says: 'within content group and level' shuffles them only "
    "among the test images of one reference image at one distortion level, so the null keeps "
    "the effect of content and severity on routing and p tests the type's effect beyond them "
    "(a stratum with one image or one type adds nothing to the null; a split where no stratum "
    "holds two types has no p and is counted as untestable); 'over all test images' (units "
    "stored before this was fixed) shuffles across references, where a content effect on "
    "routing inflates the null and the test has almost no power on reference-based datasets. p "
    "is shown as the median and the count of splits under {alpha} after Holm's adjustment over "
    "the row's tested splits (they share training images, and Holm holds under any dependence; "
    "one such split rejects 'routing ignores the type' for the row); router "
    "entropy is the mean per-token entropy of the router's softmax over log E (1: uniform); "
    "load CV is the coefficient of variation of the experts' shares of the training selections "
    "in the last epoch (0: even). no_balance_loss trains without L_aux and the z-loss.")


def separability_table(results: list[UnitResult]) -> Table:
    rows = []
    for (column, model), items in _groups(results, "separability").items():
        stored = [r.analyses["separability"] for r in items]
        rows.append([column, str(stored[0]["stage"]), str(stored[0]["stride"]), model,
                     str(len(items)), _summary([s["silhouette"] for s in stored]),
                     _summary([s["knn_accuracy"] for s in stored]),
                     _summary([r.metrics.srcc for r in items])])
    rows.sort(key=lambda row: (row[0], int(row[1])))
    k = results[0].analyses["separability"]["knn_neighbours"]
    return Table("Stage-feature separability by distortion type",
                 ["dataset", "stage", "stride", "model", "n", "silhouette", "k-NN accuracy",
                  "probe SRCC"], rows, [SEPARABILITY_NOTE.format(k=k)],
                 "(median [interval] over splits)")


SEPARABILITY_NOTE = (
    "Separability by distortion type of each stage's globally averaged features (the mean over "
    "an image's crops, standardised with the training part's statistics): the silhouette score "
    "of the test part (-1..1, Euclidean) and the accuracy of a {k}-nearest-neighbour classifier "
    "fitted on the training part (content-disjoint) and applied to the test part; probe SRCC is "
    "the stage's ridge probe of quality on the same split.")


def parameter_table(results: list[UnitResult]) -> Table | None:
    """Each Life-IQA configuration's parameter count, when a block's configurations differ in it
    (the ablation rows); None otherwise."""
    counts = {r.model.name: (r.model_config["parameters"], r.model_config["head_parameters"])
              for r in results if "parameters" in r.model_config}
    if len({total for total, _ in counts.values()}) < 2:
        return None
    rows = [[model, f"{total:,}", f"{head:,}"] for model, (total, head) in sorted(counts.items())]
    return Table("Parameters", ["model", "parameters", "without the backbone"], rows,
                 subtitle="of each Life-IQA configuration")


def _figure_name(*parts: str) -> str:
    return "-".join(parts).replace(" ", "_").replace("/", "_")


def block_analyses(results: list[UnitResult], out_dir: Path | None,
                   slug: str) -> tuple[list[Table], list[Figure]]:
    """One block's analyses and parameter counts as tables (with their notes), and their
    figures, written to ``out_dir/figures`` (none without ``out_dir``)."""
    tables = [t for t in (parameter_table(results),) if t is not None]
    figures: list[Figure] = []
    folder = out_dir / "figures" if out_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    routing = routing_cells(results)
    if routing:
        tables.append(routing_table(routing))
        if folder is not None:
            for cell in routing:
                title = (f"{cell.model} on {cell.column}: expert selection frequency\n"
                         f"(mean over {len(cell.units)} test parts), I = "
                         f"{cell.mutual_information.median:.3f} bits, p median "
                         f"{_p_text(cell.p_median)}")
                heat = plots.routing_heatmap(
                    cell.frequency, cell.distortions, title,
                    folder / f"{_figure_name(slug, cell.column, cell.model)}-routing.png")
                figures.append(Figure(f"expert selection by distortion, {cell.model} on "
                                      f"{cell.column}, p median {_p_text(cell.p_median)}",
                                      f"figures/{heat.name}"))
            for column in sorted({c.column for c in routing}):
                loads = [c for c in routing if c.column == column and c.load_by_epoch is not None]
                if loads:
                    path = plots.expert_load_plot(
                        {c.model: cast(np.ndarray, c.load_by_epoch) for c in loads}, column,
                        folder / f"{_figure_name(slug, column)}-load.png")
                    figures.append(Figure(f"expert load per epoch on {column}",
                                          f"figures/{path.name}"))
    separable = [r for r in results if "separability" in r.analyses]
    if separable:
        tables.append(separability_table(separable))
        if folder is not None:
            for column in sorted({column_label(r.dataset_label, r.train_fraction)
                                  for r in separable}):
                first = [r for r in separable
                         if column_label(r.dataset_label, r.train_fraction) == column]
                unit = min(r.unit for r in first)
                stages = sorted((r.analyses["separability"] for r in first if r.unit == unit),
                                key=lambda s: s["stage"])
                path = plots.stage_embeddings(stages, f"{column}, {unit}",
                                              folder / f"{_figure_name(slug, column)}-embedding.png")
                figures.append(Figure(f"2-D PCA of each stage's test features on {column}, "
                                      f"{unit}, by distortion type", f"figures/{path.name}"))
    return tables, figures


def analyses_document(results: list[UnitResult]) -> dict:
    """The numbers behind one block's analyses tables, per unit and summarised ({} without)."""
    def summary(s: metrics.Summary) -> dict:
        return {"median": s.median, "interval": [s.ci_low, s.ci_high], "coverage": s.coverage,
                "n": s.n}

    def of(values: list[float]) -> dict | None:
        values = [v for v in values if not np.isnan(v)]
        return summary(metrics.summarize(values)) if values else None

    out: dict = {}
    routing = routing_cells(results)
    if routing:
        out["routing"] = [{"column": c.column, "model": c.model, "units": c.units,
                           "mutual_information_bits": summary(c.mutual_information),
                           "p_values": c.p_values, "p_values_holm": c.p_values_holm,
                           "significant_splits_holm": c.significant,
                           "permutation": c.schemes, "untestable": c.untestable,
                           "alpha": ALPHA, "distortions": c.distortions,
                           "frequency": c.frequency.round(6).tolist()} for c in routing]
    separability = _groups(results, "separability")
    if separability:
        out["separability"] = [
            {"column": column, "model": model, "stage": items[0].analyses["separability"]["stage"],
             "units": [r.unit for r in items],
             **{name: of([r.analyses["separability"][name] for r in items])
                for name in ("silhouette", "knn_accuracy")}}
            for (column, model), items in separability.items()]
    return out
