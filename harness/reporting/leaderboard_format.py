"""``leaderboard.json`` as a versioned format: its version, its JSON Schema and the reader that
tools built on it (the HTML page, notebooks, other people's scripts) go through.

:func:`harness.reporting.leaderboard.leaderboard_document` writes the document with
``format_version`` :data:`FORMAT_VERSION`; ``leaderboard.schema.json`` beside this module (JSON
Schema draft 2020-12, shipped in the wheel) describes that version field by field.
:func:`read_leaderboard_document` migrates an older file step by step up to the current version
(``MIGRATIONS``) and then validates it against the schema, so a caller always gets a document of
the current version; a newer version, or a document that does not fit, raises
:class:`~harness.errors.ResultSchemaError` naming the file and the field.

Version history:

1. (no ``format_version``) written before model plug-ins and ``--limit``: a cell names its
   model only.
2. ``format_version``; each cell adds ``kind`` (the model's kind, as ``result.json``'s
   ``model_kind``), ``plugin`` (the plug-in that made the model, or null), ``limit`` (the
   images per part of a ``--limit`` run, or null) and ``per_unit`` (each unit's values and split
   hash); each comparison adds the compared and the reference cell's ``config_hash`` and its
   marker's ``stability`` under rerun noise; the document adds ``rerun_noise`` (the noise the
   markers were re-tested under, or null). A migrated version-1 file has null in each.
3. What the markdown shows besides the main tables, so that a page made from this file shows
   the same: the document adds ``sections`` (parts before the blocks) and ``provenance`` (code
   versions, machines, protocols); each block adds ``expected_units``, ``published`` (the
   published rows beside it), ``notes``, ``tables`` (per-distortion, cross-dataset, parameters,
   analyses: formatted as shown) and ``figures``; each cell adds ``row`` (its row label),
   ``not_zero_shot`` and ``per_distortion``, and each unit its ``folder`` under the runs
   folder. A migrated version-2 file has none of the text (empty lists, null provenance and
   folders), and rows and expected units computed from its cells.
4. ``provenance.arithmetic``: the CPU arithmetic the units computed with (harness/arithmetic.py)
   and their counts; every tested comparison's ``stability`` (the share of re-tests that give
   its verdict again, marked or not) and the marker ``◇`` for a fragile unmarked verdict. A
   migrated version-3 file has an empty list there, and its unmarked comparisons no stability.
5. Each ``rerun_noise.cells`` entry adds ``source``: where that cell's sd came from (seed
   reruns in the run, a training-free metric's exact zero, a rerun, two boards). A migrated
   version-4 file gives every cell the document's ``rerun_noise.source``.
6. What the markdown's footer and closing list need, so that ``leaderboard.md`` is a rendering
   of this file (:mod:`harness.reporting.board_markdown`): ``provenance.plugins`` (each model a
   plug-in made, with the plug-in and its units), each ``failed_without_table`` entry's
   ``protocol`` and ``protocol_version``; and a block's cells are listed in row order
   (:func:`row_rank`), so the page shows the rows in the markdown's order. A migrated version-5
   file has its cells put in row order, its plug-ins counted from its cells, and null protocols
   for its failed units.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import lifeiqa
from harness.errors import ResultSchemaError, ResultsError, UnknownNameError
from harness.plan.models import LIFEIQA_KINDS, variant_kind
from harness.results.aggregate import Gap, expected_units, row_label
from harness.results.schema import document_version

FORMAT_VERSION = 6
SCHEMA_FILE = "leaderboard.schema.json"


def leaderboard_json_schema() -> dict[str, Any]:
    """The JSON Schema of :data:`FORMAT_VERSION` (a fresh copy: callers may change it)."""
    text = resources.files("harness.reporting").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def read_leaderboard_document(path: str | Path) -> dict[str, Any]:
    """The ``leaderboard.json`` at ``path``, of any format version this harness reads, as a
    document of the current version, validated against its schema."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ResultsError(f"{path}: cannot read the leaderboard ({err.strerror or err})") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ResultSchemaError(f"{path}: not valid JSON ({err}); write the leaderboard again "
                                f"(lifeiqa-bench leaderboard SUITE)") from err
    return leaderboard_from_json(data, path)


def leaderboard_from_json(data: Any, source: str | Path) -> dict[str, Any]:
    """:func:`read_leaderboard_document` for a parsed document (``source`` names it in errors);
    ``data`` itself is left unchanged."""
    version = document_version(data, "format_version", FORMAT_VERSION, source,
                               "leaderboard format versions",
                               "write the leaderboard again with this one")
    for step in range(version, FORMAT_VERSION):
        data = MIGRATIONS[step](data, source)
    try:
        validate_leaderboard_document(data, source)
    except ResultSchemaError as err:
        if version == FORMAT_VERSION:
            raise
        raise ResultSchemaError(f"{err}; the file is of version {version}, migrated on reading") \
            from err
    return cast(dict[str, Any], data)  # an object: document_version refuses anything else


def validate_leaderboard_document(document: Any, source: str | Path) -> None:
    """Raise :class:`ResultSchemaError` naming the field when ``document`` does not fit the
    schema of :data:`FORMAT_VERSION`."""
    # jsonschema (a dependency of the harness extra) is imported here so that writing
    # leaderboards, which never validates, does not load it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(leaderboard_json_schema()).iter_errors(document))
    if error is None:
        return
    field = error.json_path.removeprefix("$").removeprefix(".")
    problem = error.message
    if error.validator == "required":  # name the missing field itself, not its parent
        missing = next(name for name in error.validator_value if name not in error.instance)
        field, problem = f"{field}.{missing}".removeprefix("."), "missing"
    if len(problem) > 200:  # a message quotes the offending value, which may be a whole block
        problem = problem[:197] + "..."
    raise ResultSchemaError(f"{source}: field {field or '(the document)'!r}: {problem}; expected "
                            f"leaderboard.json format version {FORMAT_VERSION} "
                            f"(harness/reporting/{SCHEMA_FILE})")


def _objects(parent: Any, name: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects in the list ``parent[name]``, with their indexes; a document of another
    shape yields none and is left to the schema check, which names what is wrong."""
    value = parent.get(name) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def _v1_model_kind(name: str) -> str:
    """A version-1 cell's model kind. Version 1 predates model arguments and plug-ins, so the
    name is a Life-IQA preset, ``preset+ablation`` or a built-in registry model."""
    _, plus, variant = name.partition("+")
    if plus:
        return variant_kind(variant)
    return "lifeiqa" if name in lifeiqa.list_models() else variant_kind(name)


def _v1_to_v2(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Version 1 -> 2: every model was the harness's own (no plug-in) and ran in full (no
    ``--limit``); a cell's kind follows from its model's name (an unknown name raises); per-unit
    values and the comparisons' config hashes were not recorded (null)."""
    document = copy.deepcopy(data)
    for b, block in _objects(document, "blocks"):
        for c, cell in _objects(block, "cells"):
            if "kind" not in cell and isinstance(cell.get("model"), str):
                try:
                    cell["kind"] = _v1_model_kind(cell["model"])
                except UnknownNameError as err:
                    raise ResultSchemaError(f"{source}: field 'blocks[{b}].cells[{c}].model': "
                                            f"{err}") from err
            cell.setdefault("plugin", None)
            cell.setdefault("limit", None)
            cell.setdefault("per_unit", None)  # not recorded then
        comparisons = block.get("comparisons")
        for listed in comparisons.values() if isinstance(comparisons, dict) else ():
            for comparison in listed if isinstance(listed, list) else ():
                if isinstance(comparison, dict):
                    comparison.setdefault("config_hash", None)
                    comparison.setdefault("reference_config_hash", None)
                    comparison.setdefault("stability", None)
    document.setdefault("rerun_noise", None)  # markers were not re-tested then
    document["format_version"] = 2
    return document


def _v2_to_v3(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Version 2 -> 3: the markdown's text (notes, further tables, figures, published rows,
    sections, provenance) was not recorded (empty or null); rows and expected units follow from
    the cells as the leaderboard computes them."""
    document = copy.deepcopy(data)
    for _, block in _objects(document, "blocks"):
        # stand-ins for aggregate.Cell with the fields row_label and expected_units read
        cells: list[Any] = [SimpleNamespace(model=c.get("model"), column=c.get("column"),
                                            config_hash=str(c.get("config_hash") or ""),
                                            limit=c.get("limit"), units=c.get("units") or [])
                            for _, c in _objects(block, "cells")]
        for view, (_, cell) in zip(cells, _objects(block, "cells"), strict=True):
            if isinstance(view.model, str):  # else the schema check names what is wrong
                cell.setdefault("row", row_label(view, cells))
            cell.setdefault("not_zero_shot", False)
            cell.setdefault("per_distortion", None)
            for unit in (cell.get("per_unit") or {}).values():
                if isinstance(unit, dict):
                    unit.setdefault("folder", None)
        missing = [Gap(cast(str, g.get("model")), cast(str, g.get("column")),
                       cast(str, g.get("unit")), cast(str, g.get("reason")))
                   for _, g in _objects(block, "missing")]
        block.setdefault("expected_units", expected_units(cells, missing))
        for name in ("published", "notes", "tables", "figures"):
            block.setdefault(name, [])
    document.setdefault("sections", [])
    document.setdefault("provenance", None)
    document["format_version"] = 3
    return document


def _v3_to_v4(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Version 3 -> 4: the units' arithmetic was not recorded (an empty list)."""
    document = copy.deepcopy(data)
    if isinstance(document.get("provenance"), dict):
        document["provenance"].setdefault("arithmetic", [])
    document["format_version"] = 4
    return document


def _v4_to_v5(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Version 4 -> 5: every cell's noise came from the one source the document names."""
    document = copy.deepcopy(data)
    noise = document.get("rerun_noise")
    if isinstance(noise, dict):
        for cell in noise.get("cells") or []:
            if isinstance(cell, dict):
                cell.setdefault("source", noise.get("source", ""))
    document["format_version"] = 5
    return document


def row_rank(model: str, kind: str, variant: str, reference: str | None,
             registry: list[str]) -> tuple[int, int, str]:
    """Where a model's rows stand in its table: the reference first, then the other full
    Life-IQA models, then the ablations (each by name), then registry models in registration
    order (``registry``: Life-IQA configs, probes, trained, zero-shot, then plug-ins)."""
    if model == reference:
        return (0, 0, "")
    if kind in LIFEIQA_KINDS:
        return (1 if kind == "lifeiqa" else 2, 0, model)
    return (3, registry.index(variant) if variant in registry else len(registry), model)


def _row_order(cell: dict[str, Any], reference: str | None,
               registry: list[str]) -> tuple[tuple[int, int, str], str, str]:
    """A version-5 cell's place in row order (model, then config and column)."""
    # a registry model's name is its variant with its arguments: "my_net(width=64)"
    name, kind = cell["model"], cell["kind"]
    return (row_rank(name, kind, name.partition("(")[0], reference, registry),
            str(cell.get("config_hash") or ""), cell["column"])


def _v5_to_v6(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Version 5 -> 6: cells in row order; the plug-ins' units counted from the cells (every
    unit of a table is in one cell); failed units without a table name no protocol."""
    from harness.plan.registry import list_bench_models

    document = copy.deepcopy(data)
    registry = list_bench_models()
    plugins: dict[tuple[str, str], int] = {}
    for _, block in _objects(document, "blocks"):
        cells = [cell for _, cell in _objects(block, "cells")]
        if len(cells) != len(block.get("cells") or []) or not all(
                isinstance(c.get(k), str) for c in cells for k in ("model", "kind", "column")):
            continue  # the schema check names what is wrong
        reference = block.get("reference")
        block["cells"] = sorted(cells, key=lambda cell: _row_order(cell, reference, registry))
        for cell in cells:
            plugin = cell.get("plugin")
            if isinstance(plugin, dict):
                key = (cell["model"], f"{plugin.get('name')} {plugin.get('version')}")
                plugins[key] = plugins.get(key, 0) + len(cell.get("units") or [])
    if isinstance(document.get("provenance"), dict):
        document["provenance"].setdefault("plugins", [
            {"model": model, "plugin": label, "units": units}
            for (model, label), units in sorted(plugins.items())])
    for _, failure in _objects(document, "failed_without_table"):
        failure.setdefault("protocol", None)
        failure.setdefault("protocol_version", None)
    document["format_version"] = 6
    return document


# MIGRATIONS[k] turns a version-k document into a version-(k + 1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any], str | Path], dict[str, Any]]] = {
    1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}
