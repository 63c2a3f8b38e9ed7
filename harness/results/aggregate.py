"""Aggregation: per-unit results -> cells (one per condition) -> comparisons and summary tables.

A cell holds every replicate (split or seed) of one condition: the protocol and its version, the
selection mode, the suite, the model, the train and test datasets, the training fraction and the
config hash (the job's config without its replicate fields); two results of one unit in a cell
are an error. Its summary is the median over units with the distribution-free order-statistic
interval (:func:`harness.results.metrics.summarize`), and every table shows each cell's n.

A comparison pairs a cell's units with the reference model's in the same column, matched on the
unit *and* its split file (a unit of the same name on another split file is an error), tests
them with the Wilcoxon signed-rank test and adjusts the p-values with Holm's method over the
family of every comparison in one table (one block, one metric): ``▲``/``▼`` keep the chance of
any false marker in a table at most :data:`ALPHA`.

Every table states the protocol version, the selection mode of its numbers (test-oracle
numbers are labelled as such), which PLCC it shows, which split files the numbers came from
(named relative to the runs folder), and which units are missing or failed.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from harness.errors import AmbiguousReferenceError, DuplicateUnitError, PairingError
from harness.plan.models import ModelRef
from harness.results import metrics
from harness.results.schema import UnitResult
from harness.results.store import UnitFailure

SELECTION_LABELS = {"last": "last epoch", "val": "validation-selected",
                    "oracle": "test-oracle (best epoch on the test set)",
                    "authors": "authors' rule, test-oracle (best test-SRCC epoch; PLCC the running "
                               "maximum at SRCC improvements)"}
ALPHA = 0.05
# a verdict (a marker, or none) given again in at least this share of re-tests under rerun
# noise is settled, else fragile: hollow markers, and ◇ where a rerun may add one
# (harness/results/stability.py)
STABLE = 0.95
FRAGILE_UNMARKED = "◇"
PLCC_KIND = "raw Pearson, no logistic fit"  # Scores.plcc; plcc_logistic is not tabulated
SHORT_MARK = "‡"  # an interval that is the range of too few units to reach 95 %


@dataclass(kw_only=True)  # 19 fields: a positional call is unreadable
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
    split_files: list[str] = field(default_factory=list)  # relative to the runs folder
    show_breakdown: bool = False
    not_zero_shot: bool = False  # a training-free metric fitted on the test dataset
    suite: str = ""
    train_fraction: float = 1.0
    config_hash: str = ""
    unit_hashes: dict[str, str] = field(default_factory=dict)  # unit -> split file's sha256_16
    limit: int | None = None  # run with --limit: at most this many images per part

    @property
    def model(self) -> str:
        """The model's name (rows, references and published entries are matched on it)."""
        return self.model_ref.name

    @property
    def n(self) -> int:
        return len(self.units)

    @property
    def column(self) -> str:
        """The table column: the dataset or pair, with the training fraction when under 1."""
        return column_label(self.dataset, self.train_fraction)

    @property
    def key(self) -> tuple:
        """The cell's condition, as :func:`cell_key` gives it for each of its results."""
        return (self.protocol, self.version, self.selection, self.suite, self.model, self.dataset,
                self.train_fraction, self.config_hash)

    @property
    def block(self) -> tuple[str, str, str, str]:
        """The table the cell belongs in: (protocol, version, selection, suite)."""
        return (self.protocol, self.version, self.selection, self.suite)


def column_label(dataset: str, train_fraction: float) -> str:
    """A table column: ``csiq``, ``koniq10k -> csiq``, or ``csiq, 20% of train``."""
    return dataset if train_fraction >= 1 else f"{dataset}, {train_fraction:.0%} of train"


def cell_key(result: UnitResult) -> tuple:
    """The condition a result measures: every factor but the replicate (split or seed)."""
    return (result.protocol.name, result.protocol.version, result.selection, result.suite,
            result.model.name, result.dataset_label, result.train_fraction, result.config_hash)


def aggregate(results: list[UnitResult]) -> list[Cell]:
    """One cell per condition (:func:`cell_key`), sorted by it. Raises
    :class:`~harness.errors.DuplicateUnitError` when a cell would hold one unit twice."""
    groups: dict[tuple, list[UnitResult]] = defaultdict(list)
    for result in results:
        groups[cell_key(result)].append(result)
    cells = []
    for key, items in sorted(groups.items()):
        items.sort(key=lambda r: r.unit)
        for first, second in itertools.pairwise(items):
            if first.unit == second.unit:
                raise DuplicateUnitError(
                    f"unit {first.unit} of {first.model.name} on {first.dataset_label} (suite "
                    f"{first.suite}, protocol {first.protocol.name} v{first.protocol.version}, "
                    f"selection {first.selection}) appears twice: split files "
                    f"{first.split_name} and {second.split_name}; aggregate one copy only")
        by_type: dict[str, list[float]] = defaultdict(list)
        for r in items:
            for name, value in r.per_distortion.items():
                by_type[name].append(value)
        protocol, version, selection, suite, _, dataset, fraction, config = key
        cells.append(Cell(
            protocol=protocol, version=version, selection=selection, model_ref=items[0].model,
            dataset=dataset, units=[r.unit for r in items],
            srcc=metrics.summarize([r.metrics.srcc for r in items]),
            plcc=metrics.summarize([r.metrics.plcc for r in items]),
            per_unit_srcc={r.unit: r.metrics.srcc for r in items},
            per_unit_plcc={r.unit: r.metrics.plcc for r in items},
            per_distortion={name: float(np.median(v)) for name, v in sorted(by_type.items())},
            split_files=sorted({r.split_name for r in items}),
            show_breakdown=any(r.config.get("breakdown") == "distortion" for r in items),
            not_zero_shot=any(r.test_dataset in r.model_config.get("trained_on", ())
                              for r in items),
            suite=suite, train_fraction=fraction, config_hash=config,
            unit_hashes={r.unit: r.split.sha256_16 for r in items},
            limit=items[0].config.get("limit"),
        ))
    return cells


def blocks(cells: Iterable[Cell]) -> dict[tuple[str, str, str, str], list[Cell]]:
    """The cells by table (:attr:`Cell.block`), in sorted order."""
    out: dict[tuple[str, str, str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        out[cell.block].append(cell)
    return dict(sorted(out.items()))


def paired_values(cell: Cell, reference: Cell, metric: str = "srcc") -> tuple[list[float], list[float]]:
    """Per-unit values of ``metric`` on the units both cells ran, paired on the unit and its
    split file. Raises :class:`~harness.errors.PairingError` when a shared unit ran on
    different split files in the two cells."""
    mine, theirs = getattr(cell, f"per_unit_{metric}"), getattr(reference, f"per_unit_{metric}")
    shared = sorted(set(mine) & set(theirs))
    for unit in shared:
        a, b = cell.unit_hashes.get(unit, ""), reference.unit_hashes.get(unit, "")
        if a != b:
            raise PairingError(
                f"{cell.model} and {reference.model} on {cell.column} both have unit {unit}, "
                f"but on different split files (sha256 {a or '-'} vs {b or '-'}): the paired "
                f"test needs the same test images; rerun one of them on the other's split files")
    return [mine[u] for u in shared], [theirs[u] for u in shared]


@dataclass(frozen=True)
class Comparison:
    """One cell against the reference model's cell of its column, in one metric. A model may
    hold a column under several configs (rows of their own), so a comparison is found by the
    cell's full key (:attr:`key`), never by model and column alone."""

    model: str
    column: str
    metric: str
    reference: str
    pairs: int
    median_difference: float | None  # of (model - reference) over the pairs
    p_raw: float | None  # Wilcoxon signed-rank, two-sided; None with under 2 pairs
    p_holm: float | None  # adjusted over the family (every comparison of its table)
    family_size: int
    config_hash: str = ""  # the compared cell's
    reference_config_hash: str = ""  # the reference cell's
    # the share of re-tests under rerun noise that give this verdict again, marked or not
    # (None: not assessed)
    stability: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(model, column, config hash): :func:`comparison_key` of the compared cell."""
        return (self.model, self.column, self.config_hash)

    @property
    def verdict(self) -> int:
        """+1 better, -1 worse (the Holm-adjusted p under ALPHA; the sign of the median
        difference says which), 0 not distinguishable."""
        if self.p_holm is None or not self.p_holm < ALPHA or not self.median_difference:
            return 0
        return 1 if self.median_difference > 0 else -1

    @property
    def fragile(self) -> bool:
        """Re-tested, and given again in fewer than STABLE of the re-tests."""
        return self.stability is not None and self.stability < STABLE

    @property
    def marker(self) -> str:
        """``▲``/``▼`` for a verdict of better/worse, hollow (``△``/``▽``) when it is fragile;
        ``◇`` for a fragile "not distinguishable" (a rerun may mark it); else ``""``."""
        if not self.verdict:
            return FRAGILE_UNMARKED if self.fragile else ""
        if self.fragile:
            return "△" if self.verdict > 0 else "▽"
        return "▲" if self.verdict > 0 else "▼"

    def to_json_dict(self) -> dict:
        return {"model": self.model, "column": self.column, "config_hash": self.config_hash,
                "metric": self.metric, "reference": self.reference,
                "reference_config_hash": self.reference_config_hash, "pairs": self.pairs,
                "median_difference": self.median_difference, "p_raw": self.p_raw,
                "p_holm": self.p_holm, "family_size": self.family_size,
                "stability": self.stability, "marker": self.marker}


def comparison_key(cell: Cell) -> tuple[str, str, str]:
    """What a cell's comparison is found by: its model, column and config hash."""
    return (cell.model, cell.column, cell.config_hash)


def reference_cells(block: list[Cell], reference: str | None) -> dict[str, Cell]:
    """The reference model's cell of each column; a column holding the reference under several
    configs raises :class:`~harness.errors.AmbiguousReferenceError` naming them (picking one
    would compare against an arbitrary config)."""
    references: dict[str, list[Cell]] = defaultdict(list)
    for cell in block:
        if cell.model == reference:
            references[cell.column].append(cell)
    for column, cells in references.items():
        if len(cells) > 1:
            raise AmbiguousReferenceError(
                f"the reference {reference} holds column {column} of table "
                f"'{block_title(cells[0].block)}' under {len(cells)} configs "
                f"({', '.join(c.config_hash for c in cells)}): a ▲ against one of them would be "
                f"arbitrary; aggregate one config (put the other's units in another suite) or "
                f"name another reference")
    return {column: cells[0] for column, cells in references.items()}


def compare_block(block: list[Cell], reference: str | None, metric: str = "srcc") -> list[Comparison]:
    """Every cell of a table against the reference model's cell of its column; the p-values
    are Holm-adjusted over all of them (cells with under 2 shared units have no p)."""
    references = reference_cells(block, reference)
    raw = []
    for cell in block:
        ref = references.get(cell.column)
        if ref is None or cell.model == reference:
            continue
        mine, theirs = paired_values(cell, ref, metric)
        difference = float(np.median(np.subtract(mine, theirs))) if mine else None
        p = metrics.paired_wilcoxon(mine, theirs) if len(mine) >= 2 else None
        raw.append((cell, len(mine), difference, p))
    tested = [p for *_, p in raw if p is not None]
    adjusted = iter(metrics.holm(tested))
    return [Comparison(cell.model, cell.column, metric, str(reference), pairs, difference, p,
                       None if p is None else next(adjusted), len(tested), cell.config_hash,
                       references[cell.column].config_hash)
            for cell, pairs, difference, p in raw]


def smallest_adjusted_p(pairs: int, family: int) -> float:
    """The smallest Holm-adjusted p a table can show: ``family`` times the smallest exact
    two-sided Wilcoxon p with ``pairs`` pairs (``2 / 2 ** pairs``), capped at 1."""
    return min(1.0, max(family, 1) * 2.0 / 2.0 ** pairs)


def format_interval(summary: metrics.Summary, digits: int = 3) -> str:
    """``median [low, high]`` (``‡`` when the interval is the range of fewer than 6 units);
    the median alone for one unit."""
    return interval_text(summary.median, summary.ci_low, summary.ci_high, summary.n,
                         summary.coverage, digits)


def interval_text(median: float, low: float, high: float, n: int, coverage: float,
                  digits: int = 3) -> str:
    """:func:`format_interval` from the numbers (as ``leaderboard.json`` holds them)."""
    if n == 1:
        return f"{median:.{digits}f}"
    mark = SHORT_MARK if coverage < metrics.CONFIDENCE else ""
    return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]{mark}"


def kind_label(kind: str) -> str:
    """A model kind as the leaderboard's "kind" column shows it."""
    return {"lifeiqa": "Life-IQA", "ablation": "Life-IQA ablation"}.get(kind,
                                                                     kind.replace("_", " "))


def cell_display(interval: str, n: int, expected: int, marker: str, not_zero_shot: bool) -> str:
    """A leaderboard cell: ``median [interval] n=8/10 ▲ †``: the summary, the units (of those
    its column has), the marker, and the flag of a metric fitted on the test data."""
    count = f"n={n}" if n >= expected else f"n={n}/{expected}"
    return " ".join(part for part in (interval, count, marker, "†" if not_zero_shot else "")
                    if part)


def interval_note(counts: Iterable[int]) -> str:
    """What the intervals of a table are, with their exact coverage at each n it shows."""
    parts, short = [], False
    for n in sorted(set(counts), reverse=True):
        if n == 1:
            parts.append("n=1: no interval")
            continue
        j, coverage = metrics.median_interval(n)
        order = "the range" if j == 1 else f"x({j}) to x({n + 1 - j})"
        short = short or coverage < metrics.CONFIDENCE
        mark = f" {SHORT_MARK}" if coverage < metrics.CONFIDENCE else ""
        parts.append(f"n={n}: {order}, {coverage:.1%}{mark}")
    why = (f"; {SHORT_MARK}: fewer than 6 units are too few for 95 %: the interval is the range "
           f"of the units, and covers the median only as often as stated") if short else ""
    return ("Intervals: distribution-free order-statistic interval for the median over units "
            f"(sorted values x(1)..x(n)), exact coverage by n: {'; '.join(parts)}{why}.")


@dataclass(frozen=True)
class Gap:
    """A unit a cell lacks that its column has elsewhere or that failed: a failure."""

    model: str
    column: str
    unit: str
    reason: str  # "missing (no result)", "failed: ...", "diverged: ..."
    config_hash: str = ""  # the condition's (a model may hold a column under several)


def gaps(block: list[Cell], failures: Iterable[UnitFailure] = ()) -> list[Gap]:
    """Every unit missing from a cell of ``block``: units other cells of its column have, and
    units recorded as failed (also of models with no cell at all), by model, column and unit."""
    failed = {(f.model, column_label(f.dataset_label, f.train_fraction), f.config_hash, f.unit): f
              for f in failures if (f.protocol, f.protocol_version, f.selection, f.suite)
              == block[0].block and f.rerun_of is None}  # a noise rerun is in no table
    expected: dict[str, set[str]] = defaultdict(set)
    for cell in block:
        expected[cell.column] |= set(cell.units)
    for _, column, _, unit in failed:
        expected[column].add(unit)
    # by the cell's full key: a model under two configs in one column is two rows, each with
    # its own missing units
    have = {comparison_key(c): set(c.units) for c in block}
    out = []
    for key in sorted(set(have) | {k[:3] for k in failed}):
        model, column, config = key
        for unit in sorted(expected[column] - have.get(key, set())):
            failure = failed.get((*key, unit))
            reason = f"{failure.kind}: {failure.message}" if failure else "missing (no result)"
            out.append(Gap(model, column, unit, reason, config))
    return out


def expected_units(block: list[Cell], missing: Iterable[Gap] = ()) -> dict[str, int]:
    """The number of distinct units each column of a block has over all its models, counting
    the units without a result (``missing``): a unit that failed for every model is still one
    the column should have (``n=9/10``, not ``n=9``)."""
    units: dict[str, set[str]] = defaultdict(set)
    for cell in block:
        units[cell.column] |= set(cell.units)
    for gap in missing:
        units[gap.column].add(gap.unit)
    return {column: len(names) for column, names in units.items()}


def limit_notes(block: list[Cell]) -> list[str]:
    """What a ``[--limit N]`` row is: a quick look, never a reproduction."""
    limits = sorted({c.limit for c in block if c.limit is not None})
    if not limits:
        return []
    return [f"[--limit N]: a quick look at most N ({', '.join(map(str, limits))}) images of each "
            f"part (train, validation, test) per unit, drawn under the unit's seed: not "
            f"comparable with full runs, and refused by check"]


def gap_notes(found: list[Gap]) -> list[str]:
    """One note per model and column listing its missing and failed units by name."""
    by_cell: dict[tuple[str, str], list[Gap]] = defaultdict(list)
    for gap in found:
        by_cell[(gap.model, gap.column)].append(gap)
    return [f"{model} on {column}: {len(items)} unit(s) without a result, counted as failures: "
            + "; ".join(f"{g.unit} ({g.reason})" for g in items)
            for (model, column), items in by_cell.items()]


def block_title(block: tuple[str, str, str, str]) -> str:
    protocol, version, selection, suite = block
    return (f"{protocol} (protocol v{version}), selection: "
            f"{SELECTION_LABELS.get(selection, selection)}, suite: {suite or '-'}")


def row_label(cell: Cell, block: list[Cell]) -> str:
    """The model's name, with its config hash when a column of the table holds it under several
    configs (configs that differ only between columns, as a recipe fitted to each source dataset
    does, share one row)."""
    configs: dict[str, set[str]] = defaultdict(set)
    for c in block:
        if c.model == cell.model:
            configs[c.column].add(c.config_hash)
    shared = all(len(hashes) < 2 for hashes in configs.values())
    label = cell.model if shared else f"{cell.model} [config {cell.config_hash[:6]}]"
    return label + (f" [--limit {cell.limit}]" if cell.limit is not None else "")


def comparison_note(reference: str | None, comparisons: list[Comparison], metric: str) -> str:
    """What the markers and p-values of one table mean, and the family they are adjusted over."""
    if reference is None:
        return "No reference model (no Life-IQA preset among the models): no paired tests."
    tested = [c for c in comparisons if c.p_raw is not None]
    if not tested:
        return (f"{metric.upper()} vs {reference}: no model shares 2 or more units with it here: "
                f"no paired tests.")
    pairs = max(c.pairs for c in tested)
    floor = smallest_adjusted_p(pairs, len(tested))
    reach = " (so no marker can appear in this table)" if floor >= ALPHA else ""
    return (f"▲/▼: better/worse than {reference} in {metric.upper()}: paired Wilcoxon "
            f"signed-rank over units matched on their split file, Holm-adjusted over the "
            f"family of the {len(tested)} comparison(s) of this table, adjusted p < {ALPHA}; "
            f"with {pairs} pairs the smallest adjusted p here is {floor:.3g}{reach}.")


def verdict_note(reference: str | None, block: list[Cell], comparisons: list[Comparison],
                 metric: str) -> list[str]:
    """Per column, in words: where the reference's median ranks, and which rows are better,
    worse or not distinguishable from it after Holm's adjustment (so that a reference that
    does not win is said plainly, not left to be read off the markers)."""
    if reference is None:
        return []
    lines = []
    references = reference_cells(block, reference)
    labels = {comparison_key(c): row_label(c, block) for c in block}
    for column in sorted({c.column for c in block}):
        cells = [c for c in block if c.column == column]
        ref = references.get(column)
        tested = [c for c in comparisons if c.column == column and c.p_raw is not None]
        if ref is None or not tested:
            continue
        # rows by their table labels: a model under two configs is two rows here too
        medians = {labels[comparison_key(c)]: getattr(c, metric).median for c in cells}
        mine = labels[comparison_key(ref)]
        above = sorted(m for m, v in medians.items() if m != mine and v > medians[mine])
        groups: dict[str, list[str]] = {"better than": [], "worse than": [],
                                        "not distinguishable from": []}
        for c in tested:
            groups[{1: "better than", -1: "worse than"}.get(
                c.verdict, "not distinguishable from")].append(
                labels[c.key] + (" (fragile)" if c.fragile else ""))
        text = (f"{metric.upper()} on {column}: {reference} has the "
                f"{'highest median' if not above else f'median ranked {len(above) + 1} of {len(medians)}'}"
                f" ({medians[mine]:.3f}).")
        if above:
            text += f" Higher medians: {', '.join(f'{m} ({medians[m]:.3f})' for m in above)}."
        for label, models in groups.items():
            if models:
                text += (f" {label.capitalize()} {reference} (Holm-adjusted): "
                         f"{len(models)} ({', '.join(sorted(models))}).")
        lines.append(text)
    return lines


def markdown_tables(cells: list[Cell], reference_model: str | None = None,
                    breakdown: bool = False, failures: Iterable[UnitFailure] = ()) -> str:
    """One markdown table per block (protocol, version, selection, suite); per-distortion
    tables where the protocol asks for them, or everywhere with ``breakdown``."""
    from tabulate import tabulate

    failures = list(failures)
    out = []
    for key, block in blocks(cells).items():
        comparisons = {c.key: c for c in compare_block(block, reference_model)}
        rows = []
        for cell in block:
            comparison = comparisons.get(comparison_key(cell))
            p = comparison.p_raw if comparison else None
            rows.append({
                "model": row_label(cell, block), "dataset": cell.column, "n": cell.n,
                "SRCC median [interval]": format_interval(cell.srcc, 4),
                "PLCC (raw) median [interval]": format_interval(cell.plcc, 4),
                "SRCC mean ± std": f"{cell.srcc.mean:.4f} ± {cell.srcc.std:.4f}",
                f"p vs {reference_model or '-'}": "" if p is None else f"{p:.3g}",
                "p (Holm)": "" if p is None or comparison is None
                else f"{comparison.p_holm:.3g}{comparison.marker}",
            })
        out.append(f"### {block_title(key)}\n")
        out.append(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
        files = sorted({f for c in block for f in c.split_files})
        notes = [f"Split files (relative to the runs folder): {describe_files(files)}.",
                 f"PLCC: {PLCC_KIND}.", interval_note(c.n for c in block),
                 comparison_note(reference_model, list(comparisons.values()), "srcc"),
                 *gap_notes(gaps(block, failures)), *limit_notes(block)]
        out.append("\n" + "\n".join(f"- {note}" for note in notes) + "\n")
        for cell in (c for c in block if c.per_distortion and (c.show_breakdown or breakdown)):
            out.append(f"\nPer-distortion SRCC, median over {cell.n} test sets "
                       f"({cell.model}, {cell.column}):\n")
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
