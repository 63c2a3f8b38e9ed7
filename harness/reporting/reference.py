"""What the two kinds of reference file share: the entry fields both have, the names of their
choices, reading the YAML, and validating a document against its JSON Schema.

The kinds are published references (:mod:`harness.reporting.published`: papers' numbers and
published tables) and golden files (:mod:`harness.reporting.golden`: a suite's own numbers,
written by ``lifeiqa-bench check --write-golden``). Which kind a file is, its data says: a
golden file has a top-level ``generated`` (how it was written), which every writer of golden
files has put there and a published file never has (:func:`is_golden`).

Each kind's JSON Schema (draft 2020-12, a package file beside its module) says the types,
ranges, required fields and known keys; :func:`validate` turns the first violation into a
:class:`PublishedFileError` naming the file, the entry (its index or table cell, and its model)
and the field. Three annotations of this project in the schemas word the problem:
``x-expected`` (what a value should be), ``x-problem`` (the whole problem of a rule of several
keywords, such as "a publication or a file in a repository") and ``x-key`` (what an unknown key
of a mapping is: a field, a metric).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InvalidOptionError

FORMAT_VERSION = 1
METRICS = ("srcc", "plcc", "krcc")  # krcc is listed; check compares srcc and plcc
SELECTION_NAMES = {"none": "none (zero-shot: no training)", "last": "last epoch",
                   "val": "validation-selected", "oracle": "test-oracle",
                   "authors": "authors' rule (test-oracle)", "unknown": "unknown"}
EVALUATED_ON = {"whole": "the whole dataset",
                "official-test": "the release's official test part",
                "test-parts": "the test parts of random splits"}
_PLCC_KINDS = {"raw": "raw Pearson", "logistic": "Pearson after a 4-parameter logistic fit",
               "unknown": "raw or logistic unknown"}
# JSON Schema type names in words
_TYPE_NAMES = {"string": "text", "number": "a number", "integer": "an integer",
               "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null"}
# keywords whose problem is the value itself (out of range, not a choice): "V: expected X";
# for the others the value has the wrong shape: "expected X, found V"
_VALUE_FIRST = ("enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


class PublishedFileError(InvalidOptionError):
    """A reference file (published or golden) that does not follow its schema."""


@dataclass(frozen=True, kw_only=True)
class ReferenceEntry:
    """What a reference row of either kind has: one model on one dataset (or train -> test
    pair) under one protocol, with its figures and how they were selected. ``tolerance`` maps a
    metric to its own allowed difference (empty: the checker's default); ``origin`` is where
    in the file (or its table) the row came from."""

    index: int
    model: str
    harness_models: tuple[str, ...]
    protocol: str
    metrics: dict[str, float]
    selection: str
    source: dict[str, Any]
    dataset: str | None = None
    pair: tuple[str, str] | None = None
    protocol_version: str | None = None
    tolerance: dict[str, float] = field(default_factory=dict)
    aggregation: str = "unknown"
    units: int | None = None
    plcc_kind: str = "unknown"
    plcc_rule: str | None = None
    train_fraction: float = 1.0
    origin: str = ""

    def plcc_text(self) -> str:
        """Which PLCC the entry's number is, in words."""
        kind = _PLCC_KINDS[self.plcc_kind]
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


def is_golden(data: Any) -> bool:
    """Whether a parsed reference document is a golden file (see the module doc)."""
    return isinstance(data, dict) and "generated" in data


def entry_fields(path: str, raw: dict[str, Any], index: int, origin: str) -> dict[str, Any]:
    """The :class:`ReferenceEntry` fields of an entry its schema has validated."""
    metrics = {name: float(value) for name, value in raw["metrics"].items()}
    tolerance = raw.get("tolerance")
    # a single number is every metric's tolerance
    tolerance = (tolerance if isinstance(tolerance, dict)
                 else {} if tolerance is None else dict.fromkeys(metrics, tolerance))
    pair = raw.get("pair")
    return dict(index=index, model=raw["model"].strip(), protocol=raw["protocol"].strip(),
                harness_models=tuple(n.strip() for n in raw.get("harness_models", [])),
                metrics=metrics, selection=raw["selection"], source=raw["source"],
                dataset=raw["dataset"].strip() if "dataset" in raw else None,
                pair=None if pair is None else (pair[0].strip(), pair[1].strip()),
                protocol_version=optional_text(raw, "protocol_version"),
                tolerance=metric_values(path, raw, origin, "tolerance", tolerance, metrics),
                aggregation=optional_text(raw, "aggregation") or "unknown", units=raw.get("units"),
                plcc_kind=raw.get("plcc_kind", "unknown"), plcc_rule=optional_text(raw, "plcc_rule"),
                train_fraction=float(raw.get("train_fraction", 1.0)), origin=origin)


def optional_text(raw: dict[str, Any], name: str) -> str | None:
    """A text field that may be written as a number (``protocol_version: 1.0``), as text."""
    return None if raw.get(name) is None else str(raw[name])


def metric_values(path: str, raw: dict[str, Any], origin: str, name: str,
                  values: dict[str, Any], metrics: dict[str, float]) -> dict[str, float]:
    """``values`` (a mapping of metrics to numbers, field ``name``) as floats; a metric the
    entry has no figure of is an error (what a schema cannot compare)."""
    stray = next((metric for metric in values if metric not in metrics), None)
    if stray is not None:
        raise entry_error(path, origin, raw.get("model"), f"{name}.{stray}",
                          f"no such metric in this entry's metrics {list(metrics)}")
    return {metric: float(value) for metric, value in values.items()}


def entry_error(path: str, where: str, model: Any, field_name: str, problem: str
                ) -> PublishedFileError:
    """The error of ``field_name`` of the entry (or table) at ``where`` of the file ``path``."""
    place = where + (f" ({model})" if isinstance(model, str) else "")
    return PublishedFileError(": ".join(part for part in (path, place, field_name, problem) if part))


def read_yaml(path: Path) -> Any:
    """The parsed YAML of a reference file."""
    try:
        text = path.read_text()
    except OSError as err:
        raise PublishedFileError(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PublishedFileError(f"{path}: not valid YAML ({err})") from err


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` of this package (a fresh copy: callers may change it)."""
    text = resources.files("harness.reporting").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator(name: str) -> Any:
    # jsonschema is imported here so that importing the reference modules (the leaderboard,
    # the command line) does not load it
    from jsonschema import Draft202012Validator, validators

    def finite(checker: Any, value: Any) -> bool:  # YAML has .nan and .inf, JSON has neither
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    checker = Draft202012Validator.TYPE_CHECKER.redefine("number", finite)
    return validators.extend(Draft202012Validator, type_checker=checker)(json_schema(name))


def validate(document: Any, schema: str, path: str, origins: Sequence[str] = ()) -> None:
    """Raise :class:`PublishedFileError` for the first place where ``document`` does not fit
    the schema file ``schema``; ``origins``: where each of its entries came from (default:
    ``entries[i]``)."""
    from jsonschema.exceptions import best_match, by_relevance

    relevance = by_relevance()

    def first_entry_first(error: Any) -> tuple:
        # best_match prefers the shallowest error; among entries, the first in the file
        place = list(error.absolute_path)[:2]
        return (-place[1] if len(place) == 2 and isinstance(place[1], int) else 1,
                *relevance(error))

    error = best_match(_validator(schema).iter_errors(document), key=first_entry_first)
    if error is not None:
        raise _error(error, document, path, origins)


def _error(error: Any, document: Any, path: str, origins: Sequence[str]) -> PublishedFileError:
    explained = error  # the innermost error (or its parent: anyOf, oneOf) whose schema words it
    while explained is not None and not (isinstance(explained.schema, dict)
                                         and "x-problem" in explained.schema):
        explained = explained.parent
    if explained is not None:
        problem, error = explained.schema["x-problem"], explained
    parts = list(error.absolute_path)
    where, model = "", None
    if len(parts) >= 2 and parts[0] in ("entries", "tables") and isinstance(parts[1], int):
        item = document[parts[0]][parts[1]]
        where = origins[parts[1]] if origins and parts[0] == "entries" else f"{parts[0]}[{parts[1]}]"
        model = item.get("model") if parts[0] == "entries" and isinstance(item, dict) else None
        parts = parts[2:]
    if explained is None:
        key, problem = _problem(error)
        parts += [key] if key is not None else []
    field_name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return entry_error(path, where, model, field_name, problem)


def _problem(error: Any) -> tuple[str | None, str]:
    """(the key the problem is of, when it is a key of the failing mapping; the problem)."""
    schema, value = error.schema, error.instance
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in value)
        return missing, "missing (required: " + ", ".join(error.validator_value) + ")"
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        unknown = next(str(k) for k in value if k not in known and not any(
            re.search(pattern, str(k)) for pattern in schema.get("patternProperties", {})))
        return unknown, f"unknown {schema.get('x-key', 'field')}; known: {known}"
    if error.validator in _VALUE_FIRST or "maximum" in schema:  # a bounded number: its value
        return None, f"{_short(value)}: expected {_expected(schema)}"
    return None, f"expected {_expected(schema)}, found {_short(value)}"


def _expected(schema: dict[str, Any]) -> str:
    """What a value of ``schema`` is, in words."""
    if "x-expected" in schema:
        return str(schema["x-expected"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return f"one of {schema['enum']}"
    if "maximum" in schema:  # every bounded number of the schemas has both bounds
        low = f"[{schema['minimum']}" if "minimum" in schema else f"({schema['exclusiveMinimum']}"
        return f"a number in {low}, {schema['maximum']}]"
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return " or ".join(_TYPE_NAMES[kind] for kind in kinds) or "a value of another form"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
