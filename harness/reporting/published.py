"""Published reference scores: numbers from papers (``leaderboards/published.yaml``) and from
published tables (pyiqa's own benchmark figures, read from its CSV files by
``leaderboards/pyiqa/published.yaml``), and the listing ``lifeiqa-bench published`` prints of
any reference file, golden files (:mod:`harness.reporting.golden`) included.

Each entry names one model on one dataset (or one train -> test pair) under one protocol, in
the names the results record, so ``check`` can find the reproduced cell; its ``provenance`` is
``second-hand`` until checked against the source, then ``checked``. Model, protocol and dataset
names are free text: a row may name any model a suite can run (a Life-IQA preset, a built-in
baseline, ``pyiqa:<metric>``, a plug-in's ``my_net(width=64)``) under any protocol, and a row
the harness cannot reproduce (a dataset it does not have, a full-reference metric) is kept with
its source and says why (``unreproducible``). ``published.schema.json`` beside this module says
the types, ranges, required fields and known keys; what no schema can say is checked here: a
Life-IQA preset's ``+ablation`` suffix, a tolerance only of metrics the row has, and the CSV
cells. Every problem names the file, the entry (or the table file, line and column) and the
field.

Which PLCC an entry's number is: ``plcc_kind`` (``raw`` Pearson, ``logistic`` after the VQEG
4-parameter fit, or ``unknown``) and ``plcc_rule``, how it was picked over epochs and units (the
authors' code reports raw Pearson as a running maximum over epochs updated only when test SRCC
improves). Which images a number was computed on: ``evaluated_on`` (``whole`` dataset, the
release's ``official-test`` part, or the ``test-parts`` of random splits; absent when the source
does not say), which ``check`` compares with the reproduction's.

``tables`` (top level) loads entries from published CSV files without retyping a figure: each
item names a CSV file (relative to the reference file), its ``format`` (``TABLE_FORMATS``), what
every row shares (protocol, selection, provenance, source, ...) and what each CSV column is in
the harness (``columns``). An empty cell is no entry.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from harness.assets import asset_dir
from harness.reporting.golden import GoldenEntry, GoldenFile, parse_golden
from harness.reporting.reference import (
    FORMAT_VERSION,
    METRICS,
    SELECTION_NAMES,
    PublishedFileError,
    ReferenceEntry,
    entry_error,
    entry_fields,
    is_golden,
    optional_text,
    read_yaml,
    validate,
)

LEADERBOARDS = asset_dir("leaderboards")  # the repository's, or the wheel's copy
PUBLISHED_FILE = LEADERBOARDS / "published.yaml"
PYIQA_FILE = LEADERBOARDS / "pyiqa" / "published.yaml"
BUNDLED_FILES = (PUBLISHED_FILE, PYIQA_FILE)  # what ``lifeiqa-bench published`` lists by default
SCHEMA_FILE = "published.schema.json"
# A full-reference metric compares an image with its pristine reference; the harness's units
# score each image alone, so such a row can be listed and cited but never reproduced here.
FULL_REFERENCE_REASON = ("full-reference metric (it scores an image against its pristine "
                         "reference); this harness scores images without a reference")
# what a table's rows share: these become fields of every entry it makes
_TABLE_SHARED = ("protocol", "protocol_version", "provenance", "selection", "aggregation",
                 "plcc_kind", "plcc_rule", "full_reference", "note")
_COLUMN_FIELDS = ("evaluated_on", "note", "unreproducible")  # what a column gives its entries
# a figure as tables write one ("0.4505", "-0.1", ".93"); float() alone would also take "1_0",
# "1e-1" or "nan", which no table means
_FIGURE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class TableFormat:
    """How a published table's CSV file is laid out: the header of its first column (the
    rows' names), and the header of each figures column (its dataset's name, then the order of
    the figures in its cells), as a pattern and in words."""

    first_column: str
    column: re.Pattern[str]
    column_text: str


TABLE_FORMATS = {  # the published schema's tables[].format lists the same names
    # pyiqa's benchmark results: "Metric name", then "livec(PLCC/SRCC/KRCC)" columns of
    # "plcc/srcc/krcc" cells
    "pyiqa-benchmark": TableFormat(
        "Metric name", re.compile(r"^\s*(?P<name>[^()]+?)\s*\((?P<order>[A-Za-z]+(?:/[A-Za-z]+)*)\)\s*$"),
        "DATASET(PLCC/SRCC/KRCC)"),
}


@dataclass(frozen=True, kw_only=True)
class PublishedRef(ReferenceEntry):
    """A published row: a paper's or a published table's number with its source. A
    ``full_reference`` row (and any other the harness cannot reproduce) says why in
    ``unreproducible`` (None: it can be reproduced)."""

    provenance: str  # second-hand or checked
    backbone: str | None = None
    params: str | None = None
    note: str | None = None
    evaluated_on: str | None = None  # a key of EVALUATED_ON; None: the source does not say
    full_reference: bool = False
    unreproducible: str | None = None

    def source_text(self) -> str:
        """A one-line citation."""
        s = self.source
        if s.get("repository"):
            where = f", row {s['row']}, column {s['column']}" if s.get("row") else ""
            return f"{s['repository']} {s.get('path')} @ {str(s.get('commit'))[:12]}{where}"
        where = f"arXiv {s['arxiv']}" if s.get("arxiv") else s.get("url", "")
        return f"{where}, table: {s.get('table') or 'unknown'}"

    def citation(self) -> str:
        """The source in full, as a reference list gives it."""
        s = self.source
        if s.get("repository"):
            date = f" ({s['date']})" if s.get("date") else ""
            return (f"{s['repository']}, {s.get('path')} at commit {s.get('commit')}{date}: "
                    f"{s.get('url') or '-'}; bundled copy {s.get('copy') or '-'}")
        return f"{s.get('paper')} ({s.get('url')}); via {s.get('via') or '-'}"


Reference = PublishedRef | GoldenEntry  # a row of either kind of reference file


@dataclass(frozen=True)
class PublishedFile:
    path: str
    entries: tuple[PublishedRef, ...]


def _presets() -> set[str]:
    """Life-IQA's presets: the one family whose ``+suffix`` has a fixed meaning (an ablation)."""
    from lifeiqa.presets import list_models  # not lifeiqa.list_models: that one loads torch

    return set(list_models())


def _published_ref(path: str, raw: dict[str, Any], index: int, origin: str,
                   presets: set[str]) -> PublishedRef:
    """The row of an entry its schema has validated."""
    from lifeiqa.config import ABLATIONS

    for name in raw.get("harness_models", []):
        # any name may be a plug-in's or pyiqa's (``pyiqa:clipiqa+`` has a '+'); only a
        # Life-IQA preset's suffix has a fixed meaning, so only it is checked
        base, plus, variant = name.partition("+")
        if plus and base in presets and (variant == "full" or variant not in ABLATIONS):
            raise entry_error(path, origin, raw["model"], "harness_models",
                              f"{name!r}: unknown ablation {variant!r} of preset {base}; "
                              f"expected one of {sorted(set(ABLATIONS) - {'full'})}")
    unreproducible = optional_text(raw, "unreproducible")
    full_reference = raw.get("full_reference", False)
    if full_reference and FULL_REFERENCE_REASON not in (unreproducible or ""):
        # a row may have a second reason (its dataset): both are said
        unreproducible = FULL_REFERENCE_REASON + (f"; {unreproducible}" if unreproducible else "")
    return PublishedRef(**entry_fields(path, raw, index, origin), provenance=raw["provenance"],
                        backbone=optional_text(raw, "backbone"),
                        params=optional_text(raw, "params"), note=optional_text(raw, "note"),
                        evaluated_on=raw.get("evaluated_on"), full_reference=full_reference,
                        unreproducible=unreproducible)


class _TableReader:
    """The entries of one ``tables`` item (its schema validated): a published CSV file read
    cell by cell, every figure as written (``float`` of the cell's text), every row with the
    table's source."""

    def __init__(self, path: str, index: int, spec: dict[str, Any], base: Path) -> None:
        self.path, self.index, self.spec, self.base = path, index, spec, base
        self.format = TABLE_FORMATS[spec["format"]]
        self.name = Path(spec["file"]).name

    def fail(self, where: str, problem: str) -> NoReturn:
        raise PublishedFileError(f"{self.path}: tables[{self.index}]: {where}: {problem}")

    def read(self) -> list[list[str]]:
        file = self.base / self.spec["file"]
        try:
            with open(file, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.reader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            self.fail("file", f"{file}: cannot read as CSV ({getattr(err, 'strerror', None) or err})")
        if len(rows) < 2:
            self.fail("file", f"{file}: expected a header and at least one row")
        return rows

    def columns(self, header: list[str]) -> list[tuple[str, dict, list[str]]]:
        """(header, the column's spec, its metric order) of each figures column."""
        first, declared = self.format.first_column, self.spec["columns"]
        where = f"{self.name}:1"
        if not header or header[0].lower() != first.lower():
            self.fail(where, f"first column {header[0] if header else ''!r}: expected {first!r} "
                             f"(format {self.spec['format']})")
        columns, datasets = [], []
        for text in header[1:]:
            match = self.format.column.match(text)
            if match is None:
                self.fail(where, f"column {text!r}: expected {self.format.column_text}")
            order = [m.lower() for m in match["order"].split("/")]
            unknown = [m for m in order if m not in METRICS]
            if unknown:
                self.fail(where, f"column {text!r}: unknown metric {unknown[0]!r}; expected some "
                                 f"of {list(METRICS)}")
            dataset = match["name"]
            if dataset in datasets:
                self.fail(where, f"column {text!r}: dataset {dataset!r} twice")
            if dataset not in declared:
                self.fail("columns", f"{self.name} has a column {text!r} that 'columns' does not "
                                     f"declare (declared: {sorted(declared)}); a column is never "
                                     f"dropped silently")
            datasets.append(dataset)
            columns.append((text, declared[dataset], order))
        stale = sorted(set(declared) - set(datasets))
        if stale:
            self.fail("columns", f"{stale} declared but not columns of {self.name}")
        return columns

    def source(self) -> dict[str, Any]:
        """The table's source, with the bundled copy as the repository names it (a reference
        file elsewhere: as given)."""
        copy = (self.base / self.spec["file"]).resolve()
        shown = (str(copy.relative_to(LEADERBOARDS.parent))
                 if copy.is_relative_to(LEADERBOARDS.parent) else self.spec["file"])
        return {**self.spec["source"], "copy": shown}

    def raw_entries(self) -> list[tuple[str, dict]]:
        """(where, raw entry) for every non-empty cell, in the file's order."""
        spec, rows = self.spec, self.read()
        header = [h.strip() for h in rows[0]]
        columns = self.columns(header)
        aliases = spec.get("aliases", {})
        stale = sorted(set(aliases) - {row[0].strip() for row in rows[1:] if row})
        if stale:
            self.fail("aliases", f"{stale}: no such row in {self.name}")
        shared = {key: spec[key] for key in _TABLE_SHARED if key in spec}
        source = self.source()
        out, seen = [], set()
        for line, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                self.fail(f"{self.name}:{line}", f"{len(row)} field(s), expected {len(header)} as "
                                                 f"in the header")
            metric = row[0].strip()
            if not metric or metric in seen:
                self.fail(f"{self.name}:{line}", f"row name {metric!r}: expected a unique, "
                                                 f"non-empty metric name")
            seen.add(metric)
            model = spec.get("model_prefix", "") + metric
            for text, (title, column, order) in zip(row[1:], columns, strict=True):
                where = f"{self.name}:{line} column {title!r}"
                if not text.strip():
                    continue  # no figure published: no entry
                entry = {"model": model, "harness_models": [model, *aliases.get(metric, [])],
                         "dataset": column["dataset"], "metrics": self.figures(text, order, where),
                         **shared, "source": {**source, "row": metric, "column": title, "line": line},
                         **{k: column[k] for k in _COLUMN_FIELDS if k in column}}
                if "note" in column and "note" in shared:
                    entry["note"] = f"{shared['note']} {column['note']}"
                out.append((f"tables[{self.index}] {where}", entry))
        return out

    def figures(self, text: str, order: list[str], where: str) -> dict[str, float]:
        parts = text.strip().split("/")
        if len(parts) != len(order):
            self.fail(where, f"{text!r}: expected {len(order)} figures "
                             f"{'/'.join(m.upper() for m in order)}")
        figures = {}
        for metric, part in zip(order, parts, strict=True):
            if not _FIGURE.match(part.strip()):
                self.fail(where, f"{text!r}: {metric.upper()} {part!r} is not a number")
            figures[metric] = float(part)
        return figures


def parse_published(data: Any, path: str = "<reference>", base: str | Path | None = None
                    ) -> PublishedFile:
    """Validate a parsed published reference document; raises :class:`PublishedFileError`.
    ``base``: the folder its ``tables`` files are relative to (default: ``path``'s folder)."""
    if is_golden(data):
        raise PublishedFileError(f"{path}: a golden file (it has 'generated'), not a published "
                                 f"reference file: read it with load_reference or load_golden")
    validate(data, SCHEMA_FILE, path)
    folder = Path(base) if base is not None else Path(path).parent
    raws = [(f"entries[{index}]", raw) for index, raw in enumerate(data.get("entries", []))]
    made = [item for index, spec in enumerate(data.get("tables", []))
            for item in _TableReader(path, index, spec, folder).raw_entries()]
    if not raws and not made:
        raise PublishedFileError(f"{path}: tables: no figures in any table")
    if made:  # a table's rows are entries like the file's: the same schema, named by their cells
        validate({"version": FORMAT_VERSION, "entries": [raw for _, raw in made]}, SCHEMA_FILE,
                 path, [where for where, _ in made])
    presets = _presets()
    return PublishedFile(path, tuple(_published_ref(path, raw, index, where, presets)
                                     for index, (where, raw) in enumerate(raws + made)))


def load_published(path: str | Path | None = None) -> PublishedFile:
    """Read and validate a published reference file (default: ``leaderboards/published.yaml``)."""
    path = Path(path) if path else PUBLISHED_FILE
    return parse_published(read_yaml(path), str(path), path.parent)


def load_reference(path: str | Path | None = None) -> PublishedFile | GoldenFile:
    """Read and validate a reference file of either kind, as its data says
    (:func:`~harness.reporting.reference.is_golden`); default: ``leaderboards/published.yaml``."""
    path = Path(path) if path else PUBLISHED_FILE
    data = read_yaml(path)
    return parse_golden(data, str(path)) if is_golden(data) else parse_published(data, str(path),
                                                                                path.parent)


def select(entries: Sequence[Reference], dataset: str | None = None,
           model: str | None = None) -> list[Reference]:
    """Entries on ``dataset`` (either side of a pair counts) and of ``model`` (a case-insensitive
    part of the display name, or one of the harness names)."""
    out = []
    for entry in entries:
        if dataset and dataset not in entry.datasets:
            continue
        if model and model.lower() not in entry.model.lower() and model not in entry.harness_models:
            continue
        out.append(entry)
    return out


# the fields only a published row has, as a golden row (measured here) leaves them
_NOT_PUBLISHED: dict[str, Any] = {"evaluated_on": None, "backbone": None, "params": None,
                                  "full_reference": False, "unreproducible": None}


def _published_fields(entry: Reference) -> dict[str, Any]:
    return ({name: getattr(entry, name) for name in _NOT_PUBLISHED}
            if isinstance(entry, PublishedRef) else _NOT_PUBLISHED)


def _value(entry: Reference, metric: str) -> str:
    """A figure with as many decimals as it has (at least three): papers give three, pyiqa four."""
    if metric not in entry.metrics:
        return "-"
    value = entry.metrics[metric]
    decimals = next((d for d in range(3, 7) if round(value, d) == value), 6)
    return f"{value:.{decimals}f}"


def markdown(entries: list[Reference]) -> str:
    """One github table per protocol (KRCC, evaluated-on and reproducibility columns where an
    entry has them; the reasons a row cannot be reproduced as numbered notes), then the
    sources in full."""
    from tabulate import tabulate

    out = []
    for protocol in dict.fromkeys(e.protocol for e in entries):
        chosen = [e for e in entries if e.protocol == protocol]
        extra = {id(e): _published_fields(e) for e in chosen}
        reasons = list(dict.fromkeys(x["unreproducible"] for x in extra.values()
                                     if x["unreproducible"]))
        # optional columns only where an entry of the table has them
        krcc = any("krcc" in e.metrics for e in chosen)
        evaluated = any(x["evaluated_on"] for x in extra.values())
        backbone = any(x["backbone"] for x in extra.values())
        params = any(x["params"] for x in extra.values())
        rows = []
        for e in chosen:
            x = extra[id(e)]
            row = {"model": e.model, "dataset": e.label, "SRCC": _value(e, "srcc"),
                   "PLCC": _value(e, "plcc"), **({"KRCC": _value(e, "krcc")} if krcc else {}),
                   "PLCC kind": e.plcc_kind,
                   **({"evaluated on": x["evaluated_on"] or "-"} if evaluated else {}),
                   **({"backbone": x["backbone"] or "-"} if backbone else {}),
                   **({"params": x["params"] or "-"} if params else {}),
                   "selection": SELECTION_NAMES[e.selection], "aggregation": e.aggregation,
                   "provenance": e.provenance, "source": e.source_text()}
            if reasons:
                row["reproducible here"] = (f"no [{reasons.index(x['unreproducible']) + 1}]"
                                            if x["unreproducible"] else "yes")
            rows.append(row)
        out += [f"### {protocol}\n",
                tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True), ""]
        out += [f"[{k}] {reason}" for k, reason in enumerate(reasons, start=1)]
        out += [""] if reasons else []
    sources = sorted({e.citation() for e in entries if isinstance(e, PublishedRef)})
    if sources:
        out.append("Sources:")
        out += [f"* {source}" for source in sources]
    return "\n".join(out)


def csv_text(entries: list[Reference]) -> str:
    """The entries as CSV, one row each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "harness_models", "dataset", "train", "test", "protocol", "srcc", "plcc",
                     "backbone", "params", "selection", "aggregation", "provenance", "paper", "arxiv",
                     "table", "url", "via", "plcc_kind", "plcc_rule", "krcc", "evaluated_on",
                     "full_reference", "unreproducible", "repository", "path", "commit",
                     "source_row", "source_column"])
    for e in entries:
        x = _published_fields(e)
        pair = e.pair if e.pair and e.pair[0] != e.pair[1] else None
        writer.writerow([e.model, ";".join(e.harness_models), e.label if pair is None else "",
                         pair[0] if pair else "", pair[1] if pair else "", e.protocol,
                         e.metrics.get("srcc", ""), e.metrics.get("plcc", ""), x["backbone"] or "",
                         x["params"] or "", e.selection, e.aggregation, e.provenance,
                         *(e.source.get(k) or "" for k in ("paper", "arxiv", "table", "url", "via")),
                         e.plcc_kind, e.plcc_rule or "", e.metrics.get("krcc", ""),
                         x["evaluated_on"] or "", "yes" if x["full_reference"] else "",
                         x["unreproducible"] or "",
                         *(e.source.get(k) or "" for k in ("repository", "path", "commit", "row",
                                                           "column"))])
    return buffer.getvalue()
