"""Regression checks: a reproduced suite against reference scores, and golden files from a suite.

``check RESULTS --against REF.yaml`` finds, for every reference entry, the reproduced cell (same
protocol, a model named in ``harness_models`` or the display name, same dataset or train -> test
pair, same training fraction) and compares its median over units with the reference, within
the tolerance (the entry's own, else ``--tolerance``):

* a published row (:class:`~harness.reporting.published.PublishedRef`: a paper's or a published
  table's number) is checked one-sided: a reproduction may beat a paper by any margin and fails
  only when it falls short;
* a golden row (:class:`~harness.reporting.golden.GoldenEntry`: this harness's own earlier
  numbers on the same splits, ``provenance: measured``) is checked two-sided: a gain beyond the
  tolerance fails too, since a rerun that suddenly scores better (test images leaking into
  training, a changed split) is as suspect as a drop;
* a row whose epoch selection differs from the reproduction's fails unless
  ``--allow-selection-mismatch`` (then it is compared and warned about); a reference of unknown
  selection is compared with a warning;
* a reproduction over fewer units than the reference's ``units`` (or ``--min-units``) fails;
* both sides' aggregation is stated (the reproduction's is always the median over its units).

Entries with no reproduction are MISSING, which fails only with ``--require-all``. Entries the
harness cannot reproduce at all (``unreproducible``: a full-reference metric, a dataset it does
not have) are N/A with their reason, and never fail: listing them says what was not checked.

A published row says which images its number was computed on (``evaluated_on``: the whole
dataset, the release's official test part, or random splits' test parts); when the reproduced
cell was computed on others (a cross-dataset unit scores the whole dataset, a splits unit one
random test part, and the cell is their median), the row is still compared, and its note and a
warning state the difference (e.g. pyiqa's KonIQ-10k figures are of the official test part, the
``pyiqa-zero-shot`` protocol's of the whole dataset). A reference with ``selection: none`` (a
zero-shot figure: nothing trained) matches a reproduction that trained nothing (every unit's
recipe mode ``zero_shot``); one that trained is a selection mismatch.

``check RESULTS --write-golden OUT.yaml`` writes the suite's medians as a golden file, each entry
with a tolerance from its measured spread, or with ``--rerun`` from the rerun noise, per unit
too (the rules: :mod:`harness.reporting.golden`).
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import DataNotFoundError, HarnessError, InvalidOptionError
from harness.fileio import atomic_write_text
from harness.reporting.golden import (
    DEFAULT_NOISE_K,
    DEFAULT_SPREAD_K,
    MIN_TOLERANCE,
    GoldenEntry,
    GoldenFile,
    arithmetic_labels,
    cell_results,
    golden_document,
    parse_golden,
)
from harness.reporting.published import PublishedFile, PublishedRef, Reference, load_reference
from harness.reporting.reference import EVALUATED_ON, SELECTION_NAMES
from harness.results.aggregate import Cell, aggregate
from harness.results.schema import UnitResult
from harness.results.stability import split_reruns
from harness.results.store import ResultsStore

DEFAULT_TOLERANCE = 0.01
ORACLES = ("oracle", "authors")  # selections that look at the test set
EPSILON = 1e-9  # a shortfall exactly equal to the tolerance passes despite binary rounding
VERDICTS = ("PASS", "FAIL", "MISSING", "N/A")
# what fails a compared row (CheckRow.failed_by): a median below the reference beyond the
# tolerance; a median above a golden value beyond it; a unit beyond a golden entry's unit
# tolerance; fewer units than required; another epoch selection than the reference's
FAILURES = ("shortfall", "gain", "unit_moved", "too_few_units", "selection")
WHOLE = "whole datasets"  # SplitInfo.file of units that ran on whole datasets


@dataclass
class CheckRow:
    """One (reference entry, reproduced cell, metric) comparison."""

    entry: int
    model: str
    reproduced_as: str | None
    dataset: str
    protocol: str
    metric: str
    reference: float
    reproduced: float | None
    tolerance: float
    units: int
    reference_selection: str
    reproduced_selection: str | None
    provenance: str
    source: str
    verdict: str
    note: str = ""
    split_mismatch: str = ""  # how its units or split files differ from the reference's
    reference_aggregation: str = "unknown"
    reproduced_aggregation: str | None = None
    reference_units: int | None = None
    two_sided: bool = False
    reference_plcc_kind: str = "unknown"  # the reference's; reproduced PLCC is raw Pearson
    reproduced_zero_shot: bool = False  # every unit trained nothing (recipe mode zero_shot)
    # how the images the reference and the reproduction were computed on differ ("": the same,
    # or the reference does not say)
    evaluation_mismatch: str = ""
    failed_by: tuple[str, ...] = ()  # FAILURES that make the verdict FAIL (empty otherwise)
    unreproducible: str = ""  # why an N/A row cannot be reproduced here (the entry's reason)

    @property
    def delta(self) -> float | None:
        return None if self.reproduced is None else self.reproduced - self.reference


def load_suite(results_dir: str | Path) -> tuple[list[UnitResult], str]:
    """Every complete result of a suite folder (``runs/<suite>``), and the suite's name."""
    path = Path(results_dir)
    if not path.is_dir():
        raise DataNotFoundError(f"{path}: no such results folder (expected RUNS/SUITE, e.g. "
                                f"runs/splits)")
    # the noise reruns are in no table, so no check or golden file counts them
    store, suite = ResultsStore.of_folder(path)
    results, _ = split_reruns(store.results(suite))
    if not results:
        raise DataNotFoundError(f"{path}: no result.json under this folder (has the suite run?)")
    limited = sorted({r.config["limit"] for r in results if r.config.get("limit") is not None})
    if limited:  # a quick look is no reproduction, and no golden file may be made of one
        count = sum(r.config.get("limit") is not None for r in results)
        raise InvalidOptionError(f"{path}: {count} unit(s) ran with --limit {limited} (at most "
                                 f"that many images per part): checks and golden files need "
                                 f"full runs; rerun those units without --limit (another "
                                 f"--suite)")
    return results, path.name


def _unit_hashes(results: list[UnitResult], cell: Cell) -> dict[str, str]:
    return {unit: r.split.sha256_16 for unit, r in cell_results(results, cell).items()}


def _split_note(entry: Reference, hashes: dict[str, str]) -> str:
    """How the reproduction's units differ from those a golden entry was measured on."""
    if not isinstance(entry, GoldenEntry) or not entry.split_files:
        return ""
    golden = {f["unit"]: f["sha256_16"] for f in entry.split_files}
    problems = []
    missing = sorted(set(golden) - set(hashes))
    if missing:
        problems.append(f"{len(missing)} of {len(golden)} reference unit(s) not reproduced")
    extra = sorted(set(hashes) - set(golden))
    if extra:
        problems.append(f"{len(extra)} unit(s) not in the reference")
    changed = sorted(u for u in set(golden) & set(hashes) if golden[u] != hashes[u])
    if changed:
        problems.append(f"split file differs on {len(changed)} unit(s), e.g. {changed[0]}")
    return "; ".join(problems)


def _zero_shot(units: list[UnitResult]) -> bool:
    """Whether every unit trained nothing: its recipe's mode is ``zero_shot``."""
    modes = {(r.config.get("recipe") or {}).get("mode") for r in units}
    return bool(units) and modes == {"zero_shot"}


def _selection_mismatch(entry: Reference, cell: Cell, zero_shot: bool) -> str | None:
    """Why the reference's epoch selection differs from the reproduction's (None: it does not)."""
    if entry.selection == "unknown":
        return None
    if entry.selection == "none":  # a zero-shot figure: the reproduction must train nothing
        return None if zero_shot else (f"the reference trained nothing (zero-shot) but the "
                                       f"reproduction trained ({SELECTION_NAMES[cell.selection]})")
    if entry.selection == cell.selection:
        return None
    mine = SELECTION_NAMES.get(cell.selection, cell.selection)
    return f"selection {mine} vs the reference's {SELECTION_NAMES[entry.selection]}"


def _evaluated_on(units: list[UnitResult]) -> tuple[str, str]:
    """Which images a cell's number was computed on: (an ``EVALUATED_ON`` key, in words)."""
    sizes = sorted({r.split.test_images for r in units})
    counted = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    if all(r.split.file == WHOLE or r.config.get("kind") == "cross-dataset" for r in units):
        return "whole", f"the whole dataset ({counted} images)" + (
            f", median over {len(units)} units" if len(units) > 1 else "")
    return "test-parts", f"the median over {len(units)} random test part(s) of {counted} images"


def _evaluation_mismatch(entry: Reference, units: list[UnitResult], cell: Cell) -> str:
    """How a published row's images differ from the reproduction's ("" when they do not, or the
    row does not say; a golden row was computed as its rerun is)."""
    if not isinstance(entry, PublishedRef) or not entry.evaluated_on or not units:
        return ""
    mine, text = _evaluated_on(units)
    if mine == entry.evaluated_on:
        return ""
    mismatch = f"reference: {EVALUATED_ON[entry.evaluated_on]}; here: {text}"
    if cell.not_zero_shot:
        mismatch += " (including images the metric's weights were fitted on)"
    return mismatch


def _verdict(entry: Reference, metric: str, value: float, tolerance: float, cell: Cell,
             allow_selection_mismatch: bool, min_units: int | None,
             zero_shot: bool = False) -> tuple[tuple[str, ...], list[str]]:
    """What fails one compared row (``FAILURES``; none: it passes), and the notes that say why
    (see the module doc)."""
    failed, notes = [], []
    delta = value - entry.metrics[metric]
    if delta < -(tolerance + EPSILON):
        failed.append("shortfall")
    if isinstance(entry, GoldenEntry):  # two-sided, and per unit where it records units
        if delta > tolerance + EPSILON:
            failed.append("gain")
            notes.append(f"gain of {delta:+.4f} beyond the tolerance: suspicious on the same "
                         f"splits (test images in training? another split?)")
        if metric in entry.unit_tolerance:
            moved, unit_notes = _unit_differences(entry, metric, cell)
            notes += unit_notes
            if moved:
                failed.append("unit_moved")
    required = max(entry.units or 0, min_units or 0)
    if cell.n < required:
        failed.append("too_few_units")
        notes.append(f"{cell.n} unit(s), fewer than the {required} required")
    mismatch = _selection_mismatch(entry, cell, zero_shot)
    if mismatch and not allow_selection_mismatch:
        failed.append("selection")
        notes.append(f"{mismatch} (--allow-selection-mismatch to compare)")
    return tuple(failed), notes


def _unit_differences(entry: GoldenEntry, metric: str, cell: Cell) -> tuple[list[str], list[str]]:
    """The units beyond a golden entry's unit tolerance (the worst first) and the notes of the
    per-unit comparison (one per such unit, else how close they all came); units whose split
    file differs are not compared (the split note says so)."""
    tolerance = entry.unit_tolerance[metric]
    golden = entry.unit_values(metric)
    mine = getattr(cell, f"per_unit_{metric}")
    hashes = cell.unit_hashes
    deltas = {u: mine[u] - value for u, (sha, value) in golden.items()
              if u in mine and hashes.get(u) == sha}
    beyond = sorted((u for u, d in deltas.items() if abs(d) > tolerance + EPSILON),
                    key=lambda u: -abs(deltas[u]))
    notes = [f"unit {u} moved {deltas[u]:+.4f}" for u in beyond]
    if deltas and not beyond:
        worst = max(deltas, key=lambda u: abs(deltas[u]))
        notes.append(f"{len(deltas)} units within ±{tolerance:g} (largest {deltas[worst]:+.2g})")
    return beyond, notes


def _known_datasets() -> set[str]:
    """The harness's dataset names (and their synthetic counterparts), to explain a reference
    row on a name the harness does not have; empty if the registry cannot say."""
    from harness.data.records import SYNTH_PREFIX
    from harness.data.registry import list_datasets

    try:
        names = set(list_datasets())
    except HarnessError:  # e.g. a broken dataset plug-in: only this note is lost, not the check
        return set()
    return names | {SYNTH_PREFIX + name for name in names}


def _missing_note(entry: Reference, known: set[str]) -> str:
    """Why a row has no reproduction when its dataset is none of the harness's (a typo, or a
    plug-in's dataset this process did not load)."""
    unknown = [name for name in entry.datasets if name not in known]
    if not known or not unknown:
        return ""
    close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
    return (f"{unknown[0]!r} is not a dataset of this harness"
            + (f" (did you mean {', '.join(close)}?)" if close else ""))


def compare(reference: PublishedFile | GoldenFile, cells: list[Cell], results: list[UnitResult],
            metrics: list[str], default_tolerance: float, allow_selection_mismatch: bool = False,
            min_units: int | None = None) -> list[CheckRow]:
    """Every reference entry (and each metric it has of ``metrics``) against its reproduction."""
    rows = []
    known = _known_datasets()
    for entry in reference.entries:
        # a golden entry was measured here, so only a published one may be unreproducible
        unreproducible = entry.unreproducible if isinstance(entry, PublishedRef) else None
        matched = [] if unreproducible else [
            c for c in cells if c.protocol == entry.protocol and c.model in entry.candidates
            and c.dataset == entry.label and c.train_fraction == entry.train_fraction]
        for metric in (m for m in metrics if m in entry.metrics):
            base: dict[str, Any] = dict(
                entry=entry.index, model=entry.model, dataset=entry.label,
                protocol=entry.protocol, metric=metric, reference=entry.metrics[metric],
                tolerance=entry.tolerance.get(metric, default_tolerance),
                reference_selection=entry.selection, provenance=entry.provenance,
                source=entry.source_text(), reference_aggregation=entry.aggregation,
                reference_units=entry.units, two_sided=isinstance(entry, GoldenEntry),
                reference_plcc_kind=entry.plcc_kind)
            if unreproducible:
                rows.append(CheckRow(**base, reproduced_as=None, reproduced=None, units=0,
                                     reproduced_selection=None, verdict="N/A",
                                     note=f"not reproducible here: {unreproducible}",
                                     unreproducible=unreproducible))
                continue
            if not matched:
                rows.append(CheckRow(**base, reproduced_as=None, reproduced=None, units=0,
                                     reproduced_selection=None, verdict="MISSING",
                                     note=_missing_note(entry, known)))
            for cell in matched:
                units = list(cell_results(results, cell).values())
                zero_shot = _zero_shot(units)
                common: dict[str, Any] = dict(base, reproduced_as=cell.model, units=cell.n,
                                              reproduced_selection=cell.selection,
                                              reproduced_aggregation=f"median over {cell.n} unit(s)",
                                              reproduced_zero_shot=zero_shot)
                if entry.protocol_version is not None and cell.version != entry.protocol_version:
                    rows.append(CheckRow(**common, reproduced=None, verdict="MISSING",
                                         note=f"reproduced under protocol v{cell.version}, reference "
                                              f"v{entry.protocol_version}: not comparable"))
                    continue
                value = getattr(cell, metric).median
                failed, notes = _verdict(entry, metric, value, common["tolerance"], cell,
                                         allow_selection_mismatch, min_units, zero_shot)
                split_note = _split_note(entry, _unit_hashes(results, cell))
                evaluation = _evaluation_mismatch(entry, units, cell)
                if split_note:
                    notes.append(split_note)
                if evaluation:
                    notes.append(f"not like for like: {evaluation}")
                rows.append(CheckRow(**common, reproduced=value,
                                     verdict="FAIL" if failed else "PASS", note="; ".join(notes),
                                     split_mismatch=split_note, evaluation_mismatch=evaluation,
                                     failed_by=failed))
    return rows


def selection_warnings(rows: list[CheckRow]) -> list[str]:
    """Comparisons whose epoch selection differs between reference and reproduction."""
    warnings = []
    honest = sorted({r.reproduced_selection for r in rows if r.reference_selection in ORACLES
                     and r.reproduced_selection in ("last", "val")})
    if honest:
        count = sum(r.reference_selection in ORACLES and r.reproduced_selection in ("last", "val")
                    for r in rows)
        warnings.append(
            f"{count} row(s) compare a {' / '.join(SELECTION_NAMES[s] for s in honest)} reproduction "
            f"with a test-oracle reference (best epoch measured on the test set): the comparison is "
            f"biased towards the reference; rerun with --selection oracle --allow-oracle to compare "
            f"like with like")
    flattering = sum(r.reproduced_selection in ORACLES and r.reference_selection in ("last", "val")
                     for r in rows)
    if flattering:
        warnings.append(f"{flattering} row(s) compare a test-oracle reproduction with a last-epoch "
                        f"or validation-selected reference: biased in the reproduction's favour, a "
                        f"PASS says little")
    unknown = sum(r.reference_selection == "unknown" and r.reproduced is not None for r in rows)
    if unknown:
        warnings.append(f"{unknown} compared row(s) have a reference whose epoch selection is unknown")
    return warnings


def evaluation_warnings(rows: list[CheckRow]) -> list[str]:
    """Compared rows whose reference was computed on other images than the reproduction."""
    differing = [r for r in rows if r.evaluation_mismatch]
    if not differing:
        return []
    return [f"{len(differing)} compared row(s) were computed on other images than their "
            f"reference (e.g. {differing[0].model} on {differing[0].dataset}: "
            f"{differing[0].evaluation_mismatch}): the "
            f"difference is more than rerun noise, and a metric trained on the dataset may "
            f"score its own training images here"]


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def table(rows: list[CheckRow]) -> str:
    from tabulate import tabulate

    body = [{"model": r.model, "reproduced as": r.reproduced_as or "-", "dataset": r.dataset,
             "protocol": r.protocol,
             "metric": r.metric.upper() + (f" ({r.reference_plcc_kind} / raw)"
                                           if r.metric == "plcc" else ""),
             "reference": f"{r.reference:.4f}",
             "reproduced median": _fmt(r.reproduced), "delta": _fmt(r.delta, signed=True),
             "tolerance": f"{r.tolerance:.3f}" + (" (±)" if r.two_sided else " (-)"),
             "units (ref / repro)": f"{r.reference_units or '-'} / {r.units or '-'}",
             "aggregation (ref / repro)": f"{r.reference_aggregation} / "
                                          f"{r.reproduced_aggregation or '-'}",
             "selection (ref / repro)": f"{SELECTION_NAMES[r.reference_selection]} / "
                                        f"{_reproduced_selection(r)}",
             "verdict": r.verdict + (f" ({r.note})" if r.note else "")}
            for r in rows if r.verdict != "N/A"]
    return tabulate(body, headers="keys", tablefmt="github", disable_numparse=True)


def _reproduced_selection(row: CheckRow) -> str:
    if row.reproduced_zero_shot:
        return SELECTION_NAMES["none"]
    return SELECTION_NAMES.get(row.reproduced_selection or "", "-")


def unreproducible_summary(rows: list[CheckRow]) -> list[str]:
    """One line per reason the N/A rows give: how many, which models and datasets."""
    by_reason: dict[str, list[CheckRow]] = defaultdict(list)
    for r in rows:
        if r.verdict == "N/A":
            by_reason[r.unreproducible].append(r)
    lines = []
    for reason, group in by_reason.items():
        models = sorted({r.model for r in group})
        shown = ", ".join(models[:4]) + (f" and {len(models) - 4} more" if len(models) > 4 else "")
        lines.append(f"N/A: {len(group)} row(s) not reproducible here ({shown} on "
                     f"{', '.join(sorted({r.dataset for r in group}))}): {reason}")
    return lines


@dataclass(frozen=True)
class CheckReport:
    """The outcome of checking a suite against a reference file."""

    results: str
    suite: str
    reference: str
    metrics: tuple[str, ...]
    default_tolerance: float
    require_all: bool
    allow_selection_mismatch: bool
    min_units: int | None
    rows: tuple[CheckRow, ...]
    warnings: tuple[str, ...]
    selections: tuple[str, ...]  # the reproduced cells' selection modes

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    @property
    def passed(self) -> bool:
        counts = self.counts
        return counts["FAIL"] == 0 and not (self.require_all and counts["MISSING"] > 0)

    def text(self) -> str:
        """The report as the command prints it."""
        counts = self.counts
        lines = [f"check {self.results} against {self.reference}: metric "
                 f"{', '.join(m.upper() for m in self.metrics)}; golden (measured) rows "
                 f"two-sided (±: a gain beyond the tolerance fails too), published rows "
                 f"one-sided (-: only a shortfall fails); default tolerance "
                 f"{self.default_tolerance:g}; PLCC (ref / repro): the reference's kind / raw "
                 f"Pearson",
                 f"reproduced selection: {', '.join(self.selections)}; a selection mismatch "
                 f"{'is compared (--allow-selection-mismatch)' if self.allow_selection_mismatch else 'fails'}"
                 f"; fewer units than the reference"
                 f"{f' or {self.min_units}' if self.min_units else ''} fail\n",
                 table(list(self.rows))]
        unreproducible = unreproducible_summary(list(self.rows))
        if unreproducible:
            lines += ["", *unreproducible]
        lines += [f"\nwarning: {warning}" for warning in self.warnings]
        missing_fails = self.require_all and counts["MISSING"]
        lines.append(f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['MISSING']} MISSING"
                     f"{' (--require-all: MISSING fails)' if missing_fails else ''}"
                     + (f", {counts['N/A']} N/A (not reproducible here)" if counts["N/A"] else "")
                     + f" -> {'passed' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def to_json_dict(self) -> dict:
        return {"results": self.results, "suite": self.suite, "reference": self.reference,
                "metrics": list(self.metrics), "default_tolerance": self.default_tolerance,
                "require_all": self.require_all,
                "allow_selection_mismatch": self.allow_selection_mismatch,
                "min_units": self.min_units, "passed": self.passed, "counts": self.counts,
                "warnings": list(self.warnings),
                "rows": [dict(asdict(r), delta=r.delta) for r in self.rows]}

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_json_dict(), indent=1))


def check_suite(results_dir: str | Path, against: str | Path, metric: str = "srcc",
                tolerance: float = DEFAULT_TOLERANCE, require_all: bool = False,
                allow_selection_mismatch: bool = False, min_units: int | None = None) -> CheckReport:
    """Compare the suite in ``results_dir`` with the reference file ``against``. Raises
    InvalidOptionError (an unreadable reference, no results, a bad argument) when the check
    cannot run."""
    if not 0 <= tolerance <= 2:
        raise InvalidOptionError(f"--tolerance {tolerance:g}: expected a value in [0, 2]")
    if min_units is not None and min_units < 1:
        raise InvalidOptionError(f"--min-units {min_units}: expected an integer >= 1")
    if metric not in ("srcc", "plcc", "both"):
        raise InvalidOptionError(f"--metric {metric!r}: expected srcc, plcc or both")
    reference = load_reference(against)
    results, suite = load_suite(results_dir)
    metrics = ["srcc", "plcc"] if metric == "both" else [metric]
    cells = aggregate(results)
    rows = compare(reference, cells, results, metrics, tolerance, allow_selection_mismatch,
                   min_units)
    warnings = selection_warnings(rows) + evaluation_warnings(rows)
    comparable = [r for r in rows if r.verdict != "N/A"]
    if comparable and all(r.verdict == "MISSING" for r in comparable):
        warnings.append(f"no reference entry matched a reproduced cell of suite {suite} (models "
                        f"{sorted({c.model for c in cells})}, datasets "
                        f"{sorted({c.dataset for c in cells})})")
    if any(r.split_mismatch for r in rows):
        warnings.append("some reproductions ran on other units or split files than the reference "
                        "(see the verdict notes): the tolerance assumes the same splits")
    warnings += arithmetic_warnings(reference, results)
    return CheckReport(str(results_dir), suite, str(against), tuple(metrics), tolerance,
                       require_all, allow_selection_mismatch, min_units, tuple(rows),
                       tuple(warnings),
                       tuple(sorted({SELECTION_NAMES["none" if _zero_shot(list(
                           cell_results(results, c).values())) else c.selection] for c in cells})))


def arithmetic_warnings(reference: PublishedFile | GoldenFile, results: list[UnitResult]
                        ) -> list[str]:
    """A warning when a golden file was measured under other arithmetic than these units: its
    tolerances hold for the arithmetic (and thread counts) they were measured under."""
    if not isinstance(reference, GoldenFile):
        return []
    theirs = reference.generated.get("arithmetic")
    mine = arithmetic_labels(results)
    if not theirs or sorted(theirs) == mine:
        return []
    return [f"the reference's units computed under {'; '.join(theirs)}, these under "
            f"{'; '.join(mine)}: its tolerances were measured under its own arithmetic, so a "
            f"failure here may be arithmetic rather than a regression (rerun with the "
            f"reference's: harness/arithmetic.py)"]


def write_golden(results_dir: str | Path, out: str | Path, k: float = DEFAULT_SPREAD_K,
                 floor: float = MIN_TOLERANCE, reruns: tuple[str | Path, ...] = (),
                 noise_k: float = DEFAULT_NOISE_K) -> dict:
    """``check RESULTS --write-golden OUT [--rerun RERUN ...]``: write the suite's medians (and,
    with reruns, its per-unit values and tolerances) as a golden file (the document is
    validated before it is written) and return the document."""
    if not (k > 0 and noise_k > 0 and 0 <= floor <= 2):
        raise InvalidOptionError(f"--spread-k {k:g} / --noise-k {noise_k:g} / --min-tolerance "
                                 f"{floor:g}: expected k > 0, noise k > 0 and a minimum in [0, 2]")
    results, suite = load_suite(results_dir)
    rerun_results = tuple(load_suite(path)[0] for path in reruns)
    document = golden_document(results, suite, k, floor, rerun_results, noise_k)
    parse_golden(document, str(out))
    # the path as seen from the working folder when inside it: a committed golden file must not
    # name the folders of the machine that wrote it
    shown = Path(out).resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    header = (f"# Golden results of suite {suite}, written by lifeiqa-bench check --write-golden.\n"
              f"# Check a rerun with: lifeiqa-bench check RUNS/{suite} --against {shown}\n"
              f"# Per-entry tolerance: {document['generated']['tolerance_rule']} "
              f"(spread_k {k:g}, min_tolerance {floor:g}); see harness/reporting/golden.py.\n")
    atomic_write_text(Path(out), header + yaml.safe_dump(document, sort_keys=False, width=100))
    return document
