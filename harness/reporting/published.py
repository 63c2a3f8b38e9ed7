"""Reference scores: published numbers with their sources, and golden results of this harness.

One schema (``version: 1``) serves both ``leaderboards/published.yaml`` (numbers from papers,
``provenance: second-hand`` until checked against the paper, or ``checked``) and the golden
files that ``lifeiqa-bench check --write-golden`` writes from a reproduced suite
(``provenance: measured``). Each entry names one model on one dataset (or one train -> test
pair) under one protocol, in the harness's names, so ``check`` can find the reproduced cell.
Loading validates everything and names the entry and field of every problem.

Which PLCC an entry's number is: ``plcc_kind`` (``raw`` Pearson, ``logistic`` after the VQEG
4-parameter fit, or ``unknown``) and ``plcc_rule``, how it was picked over epochs and units (the
authors' code reports raw Pearson as a running maximum over epochs updated only when test SRCC
improves). A golden entry of a data-efficiency suite carries its ``train_fraction``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from harness.errors import InvalidOptionError

PUBLISHED_FILE = Path(__file__).resolve().parents[2] / "leaderboards" / "published.yaml"
FORMAT_VERSION = 1
METRICS = ("srcc", "plcc")
PROVENANCES = ("second-hand", "checked", "measured")
SELECTIONS = ("last", "val", "oracle", "authors", "unknown")
SELECTION_NAMES = {"last": "last epoch", "val": "validation-selected", "oracle": "test-oracle",
                   "authors": "authors' rule (test-oracle)", "unknown": "unknown"}
PLCC_KINDS = ("raw", "logistic", "unknown")
_REQUIRED = ("model", "protocol", "metrics", "provenance", "selection", "source")
_OPTIONAL = ("harness_models", "dataset", "pair", "protocol_version", "tolerance", "aggregation",
             "backbone", "params", "note", "units", "spread", "split_files", "plcc_kind",
             "plcc_rule", "train_fraction", "unit_tolerance", "rerun_noise")
_TOP_LEVEL = ("version", "entries", "generated")


class PublishedFileError(InvalidOptionError):
    """A reference file that does not follow the schema."""


@dataclass(frozen=True)
class PublishedEntry:
    """One reference row. ``tolerance`` maps a metric to its own allowed shortfall (empty: use
    the checker's default); ``split_files`` (golden files) lists ``{unit, file, sha256_16}``."""

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
        """The dataset as the harness labels a cell: ``csiq`` or ``koniq10k -> csiq``."""
        return self.dataset if self.pair is None else f"{self.pair[0]} -> {self.pair[1]}"

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
        where = f"arXiv {s['arxiv']}" if s.get("arxiv") else s.get("url", "")
        return f"{where}, table: {s.get('table') or 'unknown'}"


@dataclass(frozen=True)
class PublishedFile:
    path: str
    entries: tuple[PublishedEntry, ...]
    generated: dict[str, Any] | None = None


def _known_names() -> tuple[set[str], set[str], dict[str, str]]:
    """(datasets, model presets and baselines, protocol name -> kind), from the registries."""
    import lifeiqa
    from harness.data.registry import list_datasets
    from harness.data.sources import SYNTH_PREFIX
    from harness.plan.baselines import list_baselines
    from harness.plan.protocols import list_protocols, load_protocol

    datasets = set(list_datasets())
    datasets |= {SYNTH_PREFIX + name for name in datasets}
    protocols = {name: load_protocol(name).kind for name in list_protocols()}
    return datasets, set(lifeiqa.list_models()) | set(list_baselines()), protocols


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class _EntryParser:
    def __init__(self, path: str, index: int, raw: Any, known: tuple) -> None:
        self.path, self.index, self.raw = path, index, raw
        self.datasets, self.models, self.protocols = known

    def fail(self, name: str, problem: str) -> NoReturn:
        model = self.raw.get("model") if isinstance(self.raw, dict) else None
        what = f" ({model})" if isinstance(model, str) else ""
        raise PublishedFileError(f"{self.path}: entries[{self.index}]{what}: {name}: {problem}")

    def parse(self) -> PublishedEntry:
        raw = self.raw
        if not isinstance(raw, dict):
            self.fail("entry", f"expected a mapping, found {type(raw).__name__}")
        for name in _REQUIRED:
            if name not in raw:
                self.fail(name, "missing (required: " + ", ".join(_REQUIRED) + ")")
        unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            self.fail(unknown[0], f"unknown field; known: {sorted(_REQUIRED + _OPTIONAL)}")
        if not _text(raw["model"]):
            self.fail("model", "expected a non-empty name")
        metrics = self.metrics(raw["metrics"])
        provenance = self.choice("provenance", raw["provenance"], PROVENANCES)
        dataset, pair = self.target(raw)
        version = raw.get("protocol_version")
        units = raw.get("units")
        if units is not None and not (isinstance(units, int) and not isinstance(units, bool)
                                      and units > 0):
            self.fail("units", f"expected a positive integer, found {units!r}")
        return PublishedEntry(
            index=self.index, model=raw["model"].strip(), harness_models=self.harness_models(raw),
            protocol=raw["protocol"], metrics=metrics, provenance=provenance,
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
            rerun_noise=self.mapping(raw, "rerun_noise"),
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
        return value

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
        protocol = raw["protocol"]
        if protocol not in self.protocols:
            self.fail("protocol", f"unknown protocol {protocol!r}; expected one of {sorted(self.protocols)}")
        want = "pair" if self.protocols[protocol] == "cross-dataset" else "dataset"
        other = "dataset" if want == "pair" else "pair"
        if other in raw:
            self.fail(other, f"protocol {protocol} is {self.protocols[protocol]}: "
                             f"give '{want}', not '{other}'")
        if want not in raw:
            self.fail(want, f"missing (protocol {protocol} needs '{want}')")
        names = raw[want] if want == "pair" else [raw[want]]
        if want == "pair" and not (isinstance(names, list) and len(names) == 2):
            self.fail("pair", f"expected [train, test], found {names!r}")
        for name in names:
            if name not in self.datasets:
                self.fail(want, f"unknown dataset {name!r}; expected one of {sorted(self.datasets)}")
        return (None, (names[0], names[1])) if want == "pair" else (names[0], None)

    def harness_models(self, raw: dict) -> tuple[str, ...]:
        from lifeiqa.config import ABLATIONS

        value = raw.get("harness_models", [])
        if not isinstance(value, list):
            self.fail("harness_models", f"expected a list of harness model names, found {value!r}")
        for name in value:
            base, _, variant = str(name).partition("+")
            if base not in self.models:
                self.fail("harness_models", f"unknown model {name!r}; expected a preset or baseline "
                                            f"({sorted(self.models)}), optionally +<ablation>")
            if variant and (variant == "full" or variant not in ABLATIONS):
                self.fail("harness_models", f"{name!r}: unknown ablation {variant!r}; expected one "
                                            f"of {sorted(set(ABLATIONS) - {'full'})}")
        return tuple(str(name) for name in value)

    def source(self, value: Any, provenance: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail("source", f"expected a mapping, found {value!r}")
        if provenance == "measured":
            if not _text(value.get("suite")) or "git_commit" not in value:
                self.fail("source", "a measured entry needs 'suite' and 'git_commit' (null if unknown)")
        elif not _text(value.get("paper")) or not (_text(value.get("arxiv")) or _text(value.get("url"))):
            self.fail("source", f"a {provenance} entry needs 'paper' and one of 'arxiv' or 'url'")
        return value

    def split_files(self, value: Any) -> tuple[dict[str, Any], ...]:
        if not isinstance(value, list) or not all(
                isinstance(item, dict) and {"unit", "sha256_16"} <= set(item)
                and all(_number(item[m]) for m in METRICS if m in item) for item in value):
            self.fail("split_files", "expected a list of {unit, file, sha256_16[, srcc, plcc]} "
                                     "mappings (per-unit values are numbers)")
        return tuple(value)


def parse_published(data: Any, path: str = "<reference>") -> PublishedFile:
    """Validate a parsed reference document; raises :class:`PublishedFileError`."""
    if not isinstance(data, dict):
        raise PublishedFileError(f"{path}: expected a YAML mapping with 'version' and 'entries'")
    unknown = sorted(k for k in data if k not in _TOP_LEVEL and not str(k).startswith("_"))
    if unknown:
        raise PublishedFileError(f"{path}: unknown top-level key(s) {unknown}; known: {list(_TOP_LEVEL)} "
                                 f"(keys starting with '_' hold YAML anchors)")
    if data.get("version") != FORMAT_VERSION:
        raise PublishedFileError(f"{path}: version: expected {FORMAT_VERSION}, found "
                                 f"{data.get('version')!r}")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise PublishedFileError(f"{path}: entries: expected a non-empty list")
    known = _known_names()
    return PublishedFile(path, tuple(_EntryParser(path, i, raw, known).parse()
                                     for i, raw in enumerate(entries)), data.get("generated"))


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
    return parse_published(data, str(path))


def select(entries: tuple[PublishedEntry, ...] | list[PublishedEntry], dataset: str | None = None,
           model: str | None = None) -> list[PublishedEntry]:
    """Entries on ``dataset`` (either side of a pair counts) and of ``model`` (a case-insensitive
    part of the display name, or one of the harness names)."""
    out = []
    for entry in entries:
        names = {entry.dataset} if entry.pair is None else set(entry.pair)
        if dataset and dataset not in names:
            continue
        if model and model.lower() not in entry.model.lower() and model not in entry.harness_models:
            continue
        out.append(entry)
    return out


def _value(entry: PublishedEntry, metric: str) -> str:
    return f"{entry.metrics[metric]:.3f}" if metric in entry.metrics else "-"


def markdown(entries: list[PublishedEntry]) -> str:
    """One github table per protocol, then the sources in full."""
    from tabulate import tabulate

    out = []
    for protocol in dict.fromkeys(e.protocol for e in entries):
        rows = [{"model": e.model, "dataset": e.label, "SRCC": _value(e, "srcc"),
                 "PLCC": _value(e, "plcc"), "PLCC kind": e.plcc_kind,
                 "backbone": e.backbone or "-", "params": e.params or "-",
                 "selection": SELECTION_NAMES[e.selection], "aggregation": e.aggregation,
                 "provenance": e.provenance, "source": e.source_text()}
                for e in entries if e.protocol == protocol]
        out += [f"### {protocol}\n",
                tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True), ""]
    papers = {(e.source.get("paper"), e.source.get("url"), e.source.get("via")) for e in entries
              if e.provenance != "measured"}
    if papers:
        out.append("Sources:")
        out += [f"* {paper} ({url}); via {via or '-'}" for paper, url, via in sorted(papers, key=str)]
    return "\n".join(out)


def csv_text(entries: list[PublishedEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "harness_models", "dataset", "train", "test", "protocol", "srcc", "plcc",
                     "backbone", "params", "selection", "aggregation", "provenance", "paper", "arxiv",
                     "table", "url", "via", "plcc_kind", "plcc_rule"])
    for e in entries:
        writer.writerow([e.model, ";".join(e.harness_models), e.dataset or "",
                         e.pair[0] if e.pair else "", e.pair[1] if e.pair else "", e.protocol,
                         e.metrics.get("srcc", ""), e.metrics.get("plcc", ""), e.backbone or "",
                         e.params or "", e.selection, e.aggregation, e.provenance,
                         *(e.source.get(k) or "" for k in ("paper", "arxiv", "table", "url", "via")),
                         e.plcc_kind, e.plcc_rule or ""])
    return buffer.getvalue()
