"""Reference scores: published numbers with their sources, and golden results of this harness.

One schema (``version: 1``) serves ``leaderboards/published.yaml`` (numbers from papers,
``provenance: second-hand`` until checked against the paper, or ``checked``),
``leaderboards/pyiqa/published.yaml`` (pyiqa's own benchmark figures, read from its CSV files)
and the golden files that ``lifeiqa-bench check --write-golden`` writes from a reproduced suite
(``provenance: measured``). Each entry names one model on one dataset (or one train -> test
pair) under one protocol, in the names the results record, so ``check`` can find the
reproduced cell.

Model, protocol and dataset names are free text: a reference row may name any model a suite can
run (a Life-IQA preset, a built-in baseline, ``pyiqa:<metric>``, a plug-in's ``my_net(width=64)``)
under any protocol (a file in ``protocols/`` or one elsewhere), so a golden file written for any
suite loads back, and a row the harness cannot reproduce (a dataset it does not have, a
full-reference metric) is kept with its source and says why (``unreproducible``). What is
validated is what stays meaningful without a registry: types, ranges, required fields,
provenance and its source, unknown keys, and a Life-IQA preset's ``+ablation`` suffix. Every
problem names the file, the entry (or the table file, line and column) and the field.

Which PLCC an entry's number is: ``plcc_kind`` (``raw`` Pearson, ``logistic`` after the VQEG
4-parameter fit, or ``unknown``) and ``plcc_rule``, how it was picked over epochs and units (the
authors' code reports raw Pearson as a running maximum over epochs updated only when test SRCC
improves). A golden entry of a data-efficiency suite carries its ``train_fraction``. Which images
a number was computed on: ``evaluated_on`` (``whole`` dataset, the release's ``official-test``
part, or the ``test-parts`` of random splits; absent when the source does not say), which
``check`` compares with the reproduction's.

``tables`` (top level) loads entries from published CSV files without retyping a figure: each
item names a CSV file (relative to the reference file), its ``format`` (``pyiqa-benchmark``:
``Metric name`` then one ``<dataset>(PLCC/SRCC/KRCC)`` column per dataset, cells
``plcc/srcc/krcc`` or empty), what every row shares (protocol, selection, provenance, source,
...) and what each CSV column is in the harness (``columns``). An empty cell is no entry.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import yaml

from harness.assets import asset_dir
from harness.errors import InvalidOptionError

LEADERBOARDS = asset_dir("leaderboards")  # the repository's, or the wheel's copy
PUBLISHED_FILE = LEADERBOARDS / "published.yaml"
PYIQA_FILE = LEADERBOARDS / "pyiqa" / "published.yaml"
BUNDLED_FILES = (PUBLISHED_FILE, PYIQA_FILE)  # what ``lifeiqa-bench published`` lists by default
FORMAT_VERSION = 1
METRICS = ("srcc", "plcc", "krcc")  # krcc is listed; check compares srcc and plcc
PROVENANCES = ("second-hand", "checked", "measured")
# "none": nothing was trained, so no epoch was selected (a zero-shot metric)
SELECTIONS = ("none", "last", "val", "oracle", "authors", "unknown")
SELECTION_NAMES = {"none": "none (zero-shot: no training)", "last": "last epoch",
                   "val": "validation-selected", "oracle": "test-oracle",
                   "authors": "authors' rule (test-oracle)", "unknown": "unknown"}
PLCC_KINDS = ("raw", "logistic", "unknown")
EVALUATED_ON = {"whole": "the whole dataset",
                "official-test": "the release's official test part",
                "test-parts": "the test parts of random splits"}
# A full-reference metric compares an image with its pristine reference; the harness's units
# score each image alone, so such a row can be listed and cited but never reproduced here.
FULL_REFERENCE_REASON = ("full-reference metric (it scores an image against its pristine "
                         "reference); this harness scores images without a reference")
_REQUIRED = ("model", "protocol", "metrics", "provenance", "selection", "source")
_OPTIONAL = ("harness_models", "dataset", "pair", "protocol_version", "tolerance", "aggregation",
             "backbone", "params", "note", "units", "spread", "split_files", "plcc_kind",
             "plcc_rule", "train_fraction", "unit_tolerance", "rerun_noise", "evaluated_on",
             "full_reference", "unreproducible")
_TOP_LEVEL = ("version", "entries", "tables", "generated")
TABLE_FORMATS = ("pyiqa-benchmark",)
# what a table's rows share: these become fields of every entry it makes
_TABLE_SHARED = ("protocol", "protocol_version", "provenance", "selection", "aggregation",
                 "plcc_kind", "plcc_rule", "full_reference", "note")
_TABLE_REQUIRED = ("file", "format", "protocol", "provenance", "selection", "source", "columns")
_TABLE_OPTIONAL = ("model_prefix", "aliases", "protocol_version", "aggregation", "plcc_kind",
                   "plcc_rule", "full_reference", "note")
_COLUMN_KEYS = ("dataset", "evaluated_on", "note", "unreproducible")
# pyiqa-benchmark headers: "livec(PLCC/SRCC/KRCC)"
_PYIQA_HEADER = re.compile(r"^\s*(?P<name>[^()]+?)\s*\((?P<order>[A-Za-z]+(?:/[A-Za-z]+)*)\)\s*$")
# a figure as tables write one ("0.4505", "-0.1", ".93"); float() alone would also take "1_0",
# "1e-1" or "nan", which no table means
_FIGURE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


class PublishedFileError(InvalidOptionError):
    """A reference file that does not follow the schema."""


@dataclass(frozen=True)
class PublishedEntry:
    """One reference row. ``tolerance`` maps a metric to its own allowed shortfall (empty: use
    the checker's default); ``split_files`` (golden files) lists ``{unit, file, sha256_16}``;
    ``unreproducible`` says why the harness cannot reproduce the row (None: it can);
    ``origin`` where in the reference file (or its table) the row came from."""

    index: int
    model: str
    harness_models: tuple[str, ...]
    protocol: str
    metrics: dict[str, float]
    provenance: str
    selection: str
    source: dict[str, Any]
    dataset: str | None = None
    pair: tuple[str, str] | None = None
    protocol_version: str | None = None
    tolerance: dict[str, float] = field(default_factory=dict)
    aggregation: str = "unknown"
    backbone: str | None = None
    params: str | None = None
    note: str | None = None
    units: int | None = None
    spread: dict[str, Any] | None = None
    split_files: tuple[dict[str, str], ...] = ()
    plcc_kind: str = "unknown"
    plcc_rule: str | None = None
    train_fraction: float = 1.0
    # golden files measured with reruns: each unit's own allowed difference per metric (the
    # split_files items then carry each unit's values), and the rerun noise it came from
    unit_tolerance: dict[str, float] = field(default_factory=dict)
    rerun_noise: dict[str, Any] | None = None
    evaluated_on: str | None = None  # a key of EVALUATED_ON; None: the source does not say
    full_reference: bool = False
    unreproducible: str | None = None
    origin: str = ""

    def unit_values(self, metric: str) -> dict[str, tuple[str, float]]:
        """Unit -> (split-file hash, value of ``metric``) where the entry records per-unit values."""
        return {f["unit"]: (f["sha256_16"], float(f[metric])) for f in self.split_files
                if metric in f}

    def plcc_text(self) -> str:
        """Which PLCC the entry's number is, in words."""
        kind = {"raw": "raw Pearson", "logistic": "Pearson after a 4-parameter logistic fit",
                "unknown": "raw or logistic unknown"}[self.plcc_kind]
        return f"{kind} ({self.plcc_rule})" if self.plcc_rule else kind

    @property
    def label(self) -> str:
        """The dataset as the harness labels a cell: ``csiq`` or ``koniq10k -> csiq`` (a pair
        of one dataset with itself is labelled by the dataset, as results label it)."""
        if self.pair is None:
            return str(self.dataset)
        return self.pair[0] if self.pair[0] == self.pair[1] else f"{self.pair[0]} -> {self.pair[1]}"

    @property
    def datasets(self) -> tuple[str, ...]:
        """The dataset, or both sides of the pair."""
        return (str(self.dataset),) if self.pair is None else self.pair

    @property
    def candidates(self) -> tuple[str, ...]:
        """Harness model names that reproduce this row (the display name if none is given)."""
        return self.harness_models or (self.model,)

    def source_text(self) -> str:
        """A one-line citation."""
        s = self.source
        if self.provenance == "measured":
            commit = s.get("git_commit")
            commit = ", ".join(commit) if isinstance(commit, list) else commit
            return f"suite {s.get('suite')} @ {str(commit)[:12] if commit else 'unknown commit'}"
        if _text(s.get("repository")):
            where = f", row {s['row']}, column {s['column']}" if s.get("row") else ""
            return f"{s['repository']} {s.get('path')} @ {str(s.get('commit'))[:12]}{where}"
        where = f"arXiv {s['arxiv']}" if s.get("arxiv") else s.get("url", "")
        return f"{where}, table: {s.get('table') or 'unknown'}"

    def citation(self) -> str:
        """The source in full, as a reference list gives it."""
        s = self.source
        if _text(s.get("repository")):
            date = f" ({s['date']})" if s.get("date") else ""
            return (f"{s['repository']}, {s.get('path')} at commit {s.get('commit')}{date}: "
                    f"{s.get('url') or '-'}; bundled copy {s.get('copy') or '-'}")
        return f"{s.get('paper')} ({s.get('url')}); via {s.get('via') or '-'}"


@dataclass(frozen=True)
class PublishedFile:
    path: str
    entries: tuple[PublishedEntry, ...]
    generated: dict[str, Any] | None = None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _presets() -> set[str]:
    """Life-IQA's presets: the one family whose ``+suffix`` has a fixed meaning (an ablation)."""
    import lifeiqa

    return set(lifeiqa.list_models())


class _EntryParser:
    def __init__(self, path: str, index: int, raw: Any, presets: set[str],
                 where: str | None = None) -> None:
        self.path, self.index, self.raw, self.presets = path, index, raw, presets
        self.where = where or f"entries[{index}]"

    def fail(self, name: str, problem: str) -> NoReturn:
        model = self.raw.get("model") if isinstance(self.raw, dict) else None
        what = f" ({model})" if isinstance(model, str) else ""
        raise PublishedFileError(f"{self.path}: {self.where}{what}: {name}: {problem}")

    def parse(self) -> PublishedEntry:
        raw = self.raw
        if not isinstance(raw, dict):
            self.fail("entry", f"expected a mapping, found {type(raw).__name__}")
        for name in _REQUIRED:
            if name not in raw:
                self.fail(name, "missing (required: " + ", ".join(_REQUIRED) + ")")
        unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL), key=str)
        if unknown:
            self.fail(str(unknown[0]), f"unknown field; known: {sorted(_REQUIRED + _OPTIONAL)}")
        if not _text(raw["model"]):
            self.fail("model", f"expected a non-empty model name, found {raw['model']!r}")
        if not _text(raw["protocol"]):
            self.fail("protocol", f"expected a non-empty protocol name (the name results "
                                  f"record), found {raw['protocol']!r}")
        metrics = self.metrics(raw["metrics"])
        provenance = self.choice("provenance", raw["provenance"], PROVENANCES)
        dataset, pair = self.target(raw)
        version = raw.get("protocol_version")
        units = raw.get("units")
        if units is not None and not (isinstance(units, int) and not isinstance(units, bool)
                                      and units > 0):
            self.fail("units", f"expected a positive integer, found {units!r}")
        full_reference = raw.get("full_reference", False)
        if not isinstance(full_reference, bool):
            self.fail("full_reference", f"expected true or false, found {full_reference!r}")
        unreproducible = self.optional_text(raw, "unreproducible")
        if full_reference and FULL_REFERENCE_REASON not in (unreproducible or ""):
            # a row may have a second reason (its dataset): both are said
            unreproducible = FULL_REFERENCE_REASON + (f"; {unreproducible}" if unreproducible
                                                      else "")
        evaluated_on = raw.get("evaluated_on")
        if evaluated_on is not None:
            self.choice("evaluated_on", evaluated_on, tuple(EVALUATED_ON))
        return PublishedEntry(
            index=self.index, model=raw["model"].strip(), harness_models=self.harness_models(raw),
            protocol=raw["protocol"].strip(), metrics=metrics, provenance=provenance,
            selection=self.choice("selection", raw["selection"], SELECTIONS),
            source=self.source(raw["source"], provenance), dataset=dataset, pair=pair,
            protocol_version=None if version is None else str(version),
            tolerance=self.tolerance(raw.get("tolerance"), metrics),
            aggregation=self.optional_text(raw, "aggregation") or "unknown",
            backbone=self.optional_text(raw, "backbone"), params=self.optional_text(raw, "params"),
            note=self.optional_text(raw, "note"), units=units, spread=self.mapping(raw, "spread"),
            split_files=self.split_files(raw.get("split_files", [])),
            plcc_kind=self.choice("plcc_kind", raw.get("plcc_kind", "unknown"), PLCC_KINDS),
            plcc_rule=self.optional_text(raw, "plcc_rule"),
            train_fraction=self.fraction(raw.get("train_fraction", 1.0)),
            unit_tolerance=self.unit_tolerance(raw.get("unit_tolerance"), metrics),
            rerun_noise=self.mapping(raw, "rerun_noise"), evaluated_on=evaluated_on,
            full_reference=full_reference, unreproducible=unreproducible, origin=self.where,
        )

    def unit_tolerance(self, value: Any, metrics: dict[str, float]) -> dict[str, float]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
                name in metrics and _number(v) and 0 <= v <= 2 for name, v in value.items()):
            self.fail("unit_tolerance", f"expected a mapping of this entry's metrics "
                                        f"{list(metrics)} to numbers in [0, 2], found {value!r}")
        return {name: float(v) for name, v in value.items()}

    def fraction(self, value: Any) -> float:
        if not _number(value) or not 0 < value <= 1:
            self.fail("train_fraction", f"{value!r}: expected a number in (0, 1]")
        return float(value)

    def choice(self, name: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.fail(name, f"{value!r}: expected one of {list(allowed)}")
        return cast(str, value)

    def optional_text(self, raw: dict, name: str) -> str | None:
        value = raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(name, f"expected text, found {value!r}")
        return str(value)

    def mapping(self, raw: dict, name: str) -> dict | None:
        value = raw.get(name)
        if value is not None and not isinstance(value, dict):
            self.fail(name, f"expected a mapping, found {value!r}")
        return value

    def metrics(self, value: Any) -> dict[str, float]:
        if not isinstance(value, dict) or not value:
            self.fail("metrics", f"expected a mapping of {list(METRICS)} to values, found {value!r}")
        out = {}
        for name, number in value.items():
            if name not in METRICS:
                self.fail(f"metrics.{name}", f"unknown metric; expected one of {list(METRICS)}")
            if not _number(number) or not -1 <= number <= 1:
                self.fail(f"metrics.{name}", f"{number!r}: expected a number in [-1, 1]")
            out[name] = float(number)
        return out

    def tolerance(self, value: Any, metrics: dict[str, float]) -> dict[str, float]:
        if value is None:
            return {}
        values = value if isinstance(value, dict) else dict.fromkeys(metrics, value)
        for name, number in values.items():
            if name not in metrics:
                self.fail(f"tolerance.{name}", f"no such metric in this entry's metrics {list(metrics)}")
            if not _number(number) or not 0 <= number <= 2:
                self.fail(f"tolerance.{name}" if isinstance(value, dict) else "tolerance",
                          f"{number!r}: expected a number in [0, 2]")
        return {name: float(number) for name, number in values.items()}

    def target(self, raw: dict) -> tuple[str | None, tuple[str, str] | None]:
        # Either form, whatever the protocol's kind: a protocol outside protocols/ can reuse a
        # name, and a cross-dataset pair of a dataset with itself is labelled by the dataset
        # (results and golden files write ``dataset`` then), so the kind decides nothing here.
        given = [name for name in ("dataset", "pair") if name in raw]
        if len(given) != 1:
            self.fail("pair" if len(given) == 2 else "dataset",
                      "give either 'dataset' (one dataset) or 'pair' ([train, test])"
                      + (", not both" if given else ""))
        if given == ["dataset"]:
            if not _text(raw["dataset"]):
                self.fail("dataset", f"expected a dataset name, found {raw['dataset']!r}")
            return raw["dataset"].strip(), None
        names = raw["pair"]
        if not (isinstance(names, list) and len(names) == 2 and all(_text(n) for n in names)):
            self.fail("pair", f"expected [train, test] dataset names, found {names!r}")
        return None, (names[0].strip(), names[1].strip())

    def harness_models(self, raw: dict) -> tuple[str, ...]:
        from lifeiqa.config import ABLATIONS

        value = raw.get("harness_models", [])
        if not isinstance(value, list) or not all(_text(name) for name in value):
            self.fail("harness_models", f"expected a list of model names as results record "
                                        f"them, found {value!r}")
        for name in value:
            # any name may be a plug-in's or pyiqa's (``pyiqa:clipiqa+`` has a '+'); only a
            # Life-IQA preset's suffix has a fixed meaning, so only it is checked
            base, plus, variant = name.partition("+")
            if plus and base in self.presets and (variant == "full" or variant not in ABLATIONS):
                self.fail("harness_models", f"{name!r}: unknown ablation {variant!r} of preset "
                                            f"{base}; expected one of "
                                            f"{sorted(set(ABLATIONS) - {'full'})}")
        return tuple(name.strip() for name in value)

    def source(self, value: Any, provenance: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail("source", f"expected a mapping, found {value!r}")
        if provenance == "measured":
            if not _text(value.get("suite")) or "git_commit" not in value:
                self.fail("source", "a measured entry needs 'suite' and 'git_commit' (null if unknown)")
        elif not ((_text(value.get("paper")) and (_text(value.get("arxiv")) or _text(value.get("url"))))
                  or all(_text(value.get(k)) for k in ("repository", "path", "commit"))):
            self.fail("source", f"a {provenance} entry needs 'paper' and one of 'arxiv' or 'url' "
                                f"(a publication), or 'repository', 'path' and 'commit' (a file "
                                f"in a repository)")
        return value

    def split_files(self, value: Any) -> tuple[dict[str, Any], ...]:
        if not isinstance(value, list) or not all(
                isinstance(item, dict) and {"unit", "sha256_16"} <= set(item)
                and all(_number(item[m]) for m in METRICS if m in item) for item in value):
            self.fail("split_files", "expected a list of {unit, file, sha256_16[, srcc, plcc]} "
                                     "mappings (per-unit values are numbers)")
        return tuple(value)


class _TableReader:
    """The entries of one ``tables`` item: a published CSV file read cell by cell, every
    figure as written (``float`` of the cell's text), every row with the table's source."""

    def __init__(self, path: str, index: int, spec: Any, base: Path) -> None:
        self.path, self.index, self.spec, self.base = path, index, spec, base

    def fail(self, name: str, problem: str) -> NoReturn:
        raise PublishedFileError(f"{self.path}: tables[{self.index}]: {name}: {problem}")

    def fail_at(self, where: str, problem: str) -> NoReturn:
        raise PublishedFileError(f"{self.path}: tables[{self.index}]: {where}: {problem}")

    def check_spec(self) -> dict:
        spec = self.spec
        if not isinstance(spec, dict):
            self.fail("table", f"expected a mapping, found {type(spec).__name__}")
        for name in _TABLE_REQUIRED:
            if name not in spec:
                self.fail(name, "missing (required: " + ", ".join(_TABLE_REQUIRED) + ")")
        unknown = sorted(set(spec) - set(_TABLE_REQUIRED) - set(_TABLE_OPTIONAL), key=str)
        if unknown:
            self.fail(str(unknown[0]), f"unknown field; known: "
                                       f"{sorted(_TABLE_REQUIRED + _TABLE_OPTIONAL)}")
        if spec["format"] not in TABLE_FORMATS:
            self.fail("format", f"{spec['format']!r}: expected one of {list(TABLE_FORMATS)}")
        if not _text(spec["file"]):
            self.fail("file", f"expected a CSV file name, found {spec['file']!r}")
        if not isinstance(spec["columns"], dict) or not spec["columns"]:
            self.fail("columns", "expected a mapping of each CSV column's dataset name to "
                                 "{dataset, evaluated_on, note, unreproducible}")
        for name, column in spec["columns"].items():
            if not isinstance(column, dict) or not _text(column.get("dataset")) \
                    or set(column) - set(_COLUMN_KEYS):
                self.fail(f"columns.{name}", f"expected a mapping with 'dataset' (the harness's "
                                             f"name, or the table's where the harness has none) "
                                             f"and optionally {list(_COLUMN_KEYS[1:])}, found "
                                             f"{column!r}")
        aliases = spec.get("aliases", {})
        if not isinstance(aliases, dict) or not all(
                isinstance(v, list) and all(_text(n) for n in v) for v in aliases.values()):
            self.fail("aliases", f"expected a mapping of a row's name to a list of harness model "
                                 f"names, found {aliases!r}")
        prefix = spec.get("model_prefix", "")
        if not isinstance(prefix, str):
            self.fail("model_prefix", f"expected text, found {prefix!r}")
        return spec

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

    def raw_entries(self) -> list[tuple[str, dict]]:
        """(where, raw entry) for every non-empty cell, in the file's order."""
        spec = self.check_spec()
        rows = self.read()
        name = Path(spec["file"]).name
        header = [h.strip() for h in rows[0]]
        if not header or header[0].lower() != "metric name":
            self.fail_at(f"{name}:1", f"first column {header[0] if header else ''!r}: expected "
                                      f"'Metric name' (format {spec['format']})")
        columns: list[tuple[str, dict, list[str]]] = []  # (header, dataset column spec, metric order)
        for text in header[1:]:
            match = _PYIQA_HEADER.match(text)
            if match is None:
                self.fail_at(f"{name}:1", f"column {text!r}: expected DATASET(PLCC/SRCC/KRCC)")
            order = [m.lower() for m in match["order"].split("/")]
            unknown = [m for m in order if m not in METRICS]
            if unknown:
                self.fail_at(f"{name}:1", f"column {text!r}: unknown metric {unknown[0]!r}; "
                                          f"expected some of {list(METRICS)}")
            dataset = match["name"]
            if any(cast(re.Match[str], _PYIQA_HEADER.match(t))["name"] == dataset for t, _, _ in columns):
                self.fail_at(f"{name}:1", f"column {text!r}: dataset {dataset!r} twice")
            if dataset not in spec["columns"]:
                self.fail("columns", f"{name} has a column {text!r} that 'columns' does not "
                                     f"declare (declared: {sorted(spec['columns'])}); a column "
                                     f"is never dropped silently")
            columns.append((text, spec["columns"][dataset], order))
        stale = sorted(set(spec["columns"])
                       - {cast(re.Match[str], _PYIQA_HEADER.match(t))["name"] for t, _, _ in columns})
        if stale:
            self.fail("columns", f"{stale} declared but not columns of {name}")
        aliases = spec.get("aliases", {})
        names = [row[0].strip() for row in rows[1:] if row]
        stale = sorted(set(aliases) - set(names))
        if stale:
            self.fail("aliases", f"{stale}: no such row in {name}")
        shared = {key: spec[key] for key in _TABLE_SHARED if key in spec}
        copy = (self.base / spec["file"]).resolve()
        # the bundled copy as the repository names it (a reference file elsewhere: as given)
        copy = str(copy.relative_to(LEADERBOARDS.parent)) if copy.is_relative_to(
            LEADERBOARDS.parent) else spec["file"]
        source = {**spec["source"], "copy": copy} if isinstance(spec["source"], dict) \
            else spec["source"]
        out, seen = [], set()
        for line, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                self.fail_at(f"{name}:{line}", f"{len(row)} field(s), expected {len(header)} as "
                                               f"in the header")
            metric = row[0].strip()
            if not metric or metric in seen:
                self.fail_at(f"{name}:{line}", f"row name {metric!r}: expected a unique, "
                                               f"non-empty metric name")
            seen.add(metric)
            model = spec.get("model_prefix", "") + metric
            for text, (title, column, order) in zip(row[1:], columns, strict=True):
                where = f"{name}:{line} column {title!r}"
                if not text.strip():
                    continue  # no figure published: no entry
                figures = self.figures(text, order, where)
                entry = {"model": model,
                         "harness_models": [model, *aliases.get(metric, [])],
                         "dataset": column["dataset"], "metrics": figures,
                         **shared,
                         "source": {**source, "row": metric, "column": title, "line": line}
                         if isinstance(source, dict) else source,
                         **{k: column[k] for k in _COLUMN_KEYS[1:] if k in column}}
                if "note" in column and "note" in shared:
                    entry["note"] = f"{shared['note']} {column['note']}"
                out.append((f"tables[{self.index}] {where}", entry))
        return out

    def figures(self, text: str, order: list[str], where: str) -> dict[str, float]:
        parts = text.strip().split("/")
        if len(parts) != len(order):
            self.fail_at(where, f"{text!r}: expected {len(order)} figures "
                                f"{'/'.join(m.upper() for m in order)}")
        figures = {}
        for metric, part in zip(order, parts, strict=True):
            if not _FIGURE.match(part.strip()):
                self.fail_at(where, f"{text!r}: {metric.upper()} {part!r} is not a number")
            figures[metric] = float(part)
        return figures


def parse_published(data: Any, path: str = "<reference>", base: str | Path | None = None
                    ) -> PublishedFile:
    """Validate a parsed reference document; raises :class:`PublishedFileError`. ``base``: the
    folder its ``tables`` files are relative to (default: ``path``'s folder)."""
    if not isinstance(data, dict):
        raise PublishedFileError(f"{path}: expected a YAML mapping with 'version' and 'entries'")
    unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL and not str(k).startswith("_"))
    if unknown:
        raise PublishedFileError(f"{path}: unknown top-level key(s) {unknown}; known: {list(_TOP_LEVEL)} "
                                 f"(keys starting with '_' hold YAML anchors)")
    if data.get("version") != FORMAT_VERSION:
        raise PublishedFileError(f"{path}: version: expected {FORMAT_VERSION}, found "
                                 f"{data.get('version')!r}")
    tables = data.get("tables", [])
    if not isinstance(tables, list):
        raise PublishedFileError(f"{path}: tables: expected a list of CSV tables")
    entries = data.get("entries", [] if tables else None)
    if not isinstance(entries, list) or not (entries or tables):
        raise PublishedFileError(f"{path}: entries: expected a non-empty list (or 'tables')")
    presets = _presets()
    parsed = [_EntryParser(path, i, raw, presets).parse() for i, raw in enumerate(entries)]
    folder = Path(base) if base is not None else Path(path).parent
    for t, spec in enumerate(tables):
        for where, raw in _TableReader(path, t, spec, folder).raw_entries():
            parsed.append(_EntryParser(path, len(parsed), raw, presets, where).parse())
    if not parsed:
        raise PublishedFileError(f"{path}: tables: no figures in any table")
    return PublishedFile(path, tuple(parsed), data.get("generated"))


def load_published(path: str | Path | None = None) -> PublishedFile:
    """Read and validate a reference file (default: ``leaderboards/published.yaml``)."""
    path = Path(path) if path else PUBLISHED_FILE
    try:
        text = path.read_text()
    except OSError as err:
        raise PublishedFileError(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PublishedFileError(f"{path}: not valid YAML ({err})") from err
    return parse_published(data, str(path), path.parent)


def select(entries: tuple[PublishedEntry, ...] | list[PublishedEntry], dataset: str | None = None,
           model: str | None = None) -> list[PublishedEntry]:
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


def _value(entry: PublishedEntry, metric: str) -> str:
    """A figure with as many decimals as it has (at least three): papers give three, pyiqa four."""
    if metric not in entry.metrics:
        return "-"
    value = entry.metrics[metric]
    decimals = next((d for d in range(3, 7) if round(value, d) == value), 6)
    return f"{value:.{decimals}f}"


def markdown(entries: list[PublishedEntry]) -> str:
    """One github table per protocol (KRCC, evaluated-on and reproducibility columns where an
    entry has them; the reasons a row cannot be reproduced as numbered notes), then the
    sources in full."""
    from tabulate import tabulate

    out = []
    for protocol in dict.fromkeys(e.protocol for e in entries):
        chosen = [e for e in entries if e.protocol == protocol]
        reasons = list(dict.fromkeys(e.unreproducible for e in chosen if e.unreproducible))
        # optional columns only where an entry of the table has them
        krcc = any("krcc" in e.metrics for e in chosen)
        evaluated = any(e.evaluated_on for e in chosen)
        backbone, params = any(e.backbone for e in chosen), any(e.params for e in chosen)
        rows = []
        for e in chosen:
            row = {"model": e.model, "dataset": e.label, "SRCC": _value(e, "srcc"),
                   "PLCC": _value(e, "plcc"), **({"KRCC": _value(e, "krcc")} if krcc else {}),
                   "PLCC kind": e.plcc_kind,
                   **({"evaluated on": e.evaluated_on or "-"} if evaluated else {}),
                   **({"backbone": e.backbone or "-"} if backbone else {}),
                   **({"params": e.params or "-"} if params else {}),
                   "selection": SELECTION_NAMES[e.selection], "aggregation": e.aggregation,
                   "provenance": e.provenance, "source": e.source_text()}
            if reasons:
                row["reproducible here"] = (f"no [{reasons.index(e.unreproducible) + 1}]"
                                            if e.unreproducible else "yes")
            rows.append(row)
        out += [f"### {protocol}\n",
                tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True), ""]
        out += [f"[{k}] {reason}" for k, reason in enumerate(reasons, start=1)]
        out += [""] if reasons else []
    sources = sorted({e.citation() for e in entries if e.provenance != "measured"})
    if sources:
        out.append("Sources:")
        out += [f"* {source}" for source in sources]
    return "\n".join(out)


def csv_text(entries: list[PublishedEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "harness_models", "dataset", "train", "test", "protocol", "srcc", "plcc",
                     "backbone", "params", "selection", "aggregation", "provenance", "paper", "arxiv",
                     "table", "url", "via", "plcc_kind", "plcc_rule", "krcc", "evaluated_on",
                     "full_reference", "unreproducible", "repository", "path", "commit",
                     "source_row", "source_column"])
    for e in entries:
        pair = e.pair if e.pair and e.pair[0] != e.pair[1] else None
        writer.writerow([e.model, ";".join(e.harness_models), e.label if pair is None else "",
                         pair[0] if pair else "", pair[1] if pair else "", e.protocol,
                         e.metrics.get("srcc", ""), e.metrics.get("plcc", ""), e.backbone or "",
                         e.params or "", e.selection, e.aggregation, e.provenance,
                         *(e.source.get(k) or "" for k in ("paper", "arxiv", "table", "url", "via")),
                         e.plcc_kind, e.plcc_rule or "", e.metrics.get("krcc", ""),
                         e.evaluated_on or "", "yes" if e.full_reference else "",
                         e.unreproducible or "",
                         *(e.source.get(k) or "" for k in ("repository", "path", "commit", "row",
                                                           "column"))])
    return buffer.getvalue()
