"""What a user takes away from a run: ``result.json`` and ``leaderboard.json`` fit the JSON
Schemas shipped in the package (old files after migration, fresh ones as written, and the
committed demo leaderboard), documents that do not fit are rejected by the schemas and by the
harness's readers alike, and the per-image predictions and per-distortion SRCC come back as
typed tables that agree with the files."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import stats

import harness
from harness.errors import ResultSchemaError, ResultsError
from harness.plan.models import KINDS
from harness.plan.options import SELECTIONS
from harness.plugins import ORIGINS
from harness.reporting.leaderboard import write_results_leaderboard
from harness.reporting.leaderboard_format import (
    FORMAT_VERSION,
    leaderboard_from_json,
    leaderboard_json_schema,
    read_leaderboard_document,
)
from harness.results.schema import SCHEMA_VERSION, UnitResult, result_json_schema
from harness.results.store import (
    FAILURE_KINDS,
    PREDICTIONS,
    RESULT,
    ResultsStore,
    read_predictions,
)

ROOT = Path(__file__).resolve().parent.parent
V1 = Path(__file__).parent / "fixtures" / "results-v1"
COMMITTED = ROOT / "leaderboards" / "synthetic" / "leaderboard.json"
# the committed demo leaderboard as written before leaderboard.json had a version (format 1)
V1_BOARD = ROOT / "tests" / "fixtures" / "leaderboard-v1.json"
# the committed demo board as format 2 wrote it (commit 7d6b3e3), before the page's fields
V2_BOARD = ROOT / "tests" / "fixtures" / "leaderboard-v2.json"
# what format 3 added: a migrated older file has them empty, null or computed from its cells
V3_CELL = ("row", "not_zero_shot", "per_distortion")
V3_BLOCK = ("expected_units", "published", "notes", "tables", "figures")
CNNIQA = "demo/comparison/cnniqa/synth-kadid10k/split_00"


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def schema_errors(schema: dict, document) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(schema).iter_errors(document)]


@pytest.fixture(scope="module")
def v1_results() -> list[UnitResult]:
    return ResultsStore(V1).results("demo")


@pytest.fixture(scope="module")
def v1_board(v1_results, tmp_path_factory) -> dict:
    """leaderboard.json as the harness writes it now, for the v1 fixture's units."""
    out = tmp_path_factory.mktemp("board")
    write_results_leaderboard(v1_results, V1, out, title="v1 fixture")
    return json.loads((out / "leaderboard.json").read_text())


# --- the schemas themselves ------------------------------------------------------------------------


def _properties_without_description(schema: dict) -> list[str]:
    """Every property (at any depth, $defs included) with no description of its own or of the
    definition it refers to."""
    definitions = schema.get("$defs", {})
    missing = []

    def described(node: dict) -> bool:
        if "description" in node:
            return True
        ref = node.get("$ref", "")
        return ref.startswith("#/$defs/") and "description" in definitions[ref.split("/")[-1]]

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for name, child in node.get("properties", {}).items():
                if not described(child):
                    missing.append(f"{path}.{name}")
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[{index}]")

    walk(schema, "$")
    return missing


@pytest.mark.parametrize("schema, version_field, version", [
    (result_json_schema(), "schema_version", SCHEMA_VERSION),
    (leaderboard_json_schema(), "format_version", FORMAT_VERSION),
])
def test_each_schema_is_a_described_draft_2020_12_schema_of_the_current_version(
        schema, version_field, version):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f":{version}")
    assert str(version) in schema["title"] and len(schema["description"]) > 100
    assert schema["properties"][version_field]["const"] == version
    assert version_field in schema["required"]
    assert _properties_without_description(schema) == []


def test_the_schemas_name_the_values_the_code_allows():
    """Closed sets in the schemas are the code's own (a new kind or selection mode must be
    added to the schema too)."""
    result, board = result_json_schema(), leaderboard_json_schema()
    assert result["properties"]["model_kind"]["enum"] == list(KINDS)
    assert board["$defs"]["cell"]["properties"]["kind"]["enum"] == list(KINDS)
    assert result["properties"]["selection"]["enum"] == list(SELECTIONS)
    assert board["$defs"]["block"]["properties"]["selection"]["enum"] == list(SELECTIONS)
    assert result["properties"]["plugin"]["properties"]["origin"]["enum"] == list(ORIGINS)
    assert board["$defs"]["plugin"]["properties"]["origin"]["enum"] == list(ORIGINS)
    failed = board["properties"]["failed_without_table"]["items"]["properties"]["kind"]
    assert failed["enum"] == list(FAILURE_KINDS)


# --- result.json ---------------------------------------------------------------------------------


def test_every_v1_result_fits_the_schema_once_migrated_and_not_before():
    schema = result_json_schema()
    paths = sorted(V1.rglob(RESULT))
    assert len(paths) == 9
    for path in paths:
        raw = json.loads(path.read_text())
        assert any("'schema_version' is a required property" in e
                   for e in schema_errors(schema, raw))  # version 1 is not this schema
        migrated = UnitResult.from_json_dict(raw, path).to_json_dict()
        assert schema_errors(schema, migrated) == [], path


def _cnniqa_document() -> dict:
    raw = json.loads((V1 / CNNIQA / RESULT).read_text())
    return UnitResult.from_json_dict(raw, "fixture").to_json_dict()


@pytest.mark.parametrize("edit, error", [
    (lambda d: d["metrics"].update(srcc="high"), "$.metrics.srcc: 'high' is not of type 'number'"),
    (lambda d: d["split"].update(test_images=12.5), "$.split.test_images: 12.5 is not of type"),
    (lambda d: d.pop("wall_seconds"), "$: 'wall_seconds' is a required property"),
    (lambda d: d["environment"].pop("git_commit"), "'git_commit' is a required property"),
    (lambda d: d.update(model_kind="baseline"), "$.model_kind: 'baseline' is not one of"),
    (lambda d: d.update(selected_epoch=True), "$.selected_epoch: True is not of type"),
    (lambda d: d.update(gpu="x"), "Additional properties are not allowed ('gpu' was unexpected)"),
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1),
     f"$.schema_version: {SCHEMA_VERSION} was expected"),
])
def test_a_result_that_does_not_fit_is_rejected_by_the_schema_and_the_reader(edit, error):
    document = _cnniqa_document()
    assert schema_errors(result_json_schema(), document) == []
    edit(document)
    assert any(error in e for e in schema_errors(result_json_schema(), document))
    with pytest.raises(ResultSchemaError, match=r"^memory: "):
        UnitResult.from_json_dict(document, "memory")


# --- leaderboard.json ----------------------------------------------------------------------------


def test_a_fresh_leaderboard_fits_the_schema_and_reads_back_unchanged(v1_board, tmp_path):
    assert v1_board["format_version"] == FORMAT_VERSION
    assert schema_errors(leaderboard_json_schema(), v1_board) == []
    cells = {c["model"]: c for block in v1_board["blocks"] for c in block["cells"]}
    assert cells["piqe"]["kind"] == "zero_shot" and cells["piqe"]["plugin"] is None
    assert cells["lifeiqa_tiny+no_moe"]["kind"] == "ablation" and cells["cnniqa"]["limit"] is None
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(v1_board))
    assert read_leaderboard_document(path) == v1_board


def test_the_committed_leaderboard_is_of_the_current_format():
    document = json.loads(COMMITTED.read_text())
    assert document["format_version"] == FORMAT_VERSION
    assert schema_errors(leaderboard_json_schema(), document) == []
    assert read_leaderboard_document(COMMITTED) == document


def _by_cell(cells: Iterable[dict]) -> list[dict]:
    """Cells in one order whatever the file's (version 6 lists them in row order)."""
    return sorted(cells, key=lambda c: (c["model"], c["column"], c.get("config_hash") or ""))


def test_a_version_1_leaderboard_reads_through_the_migration():
    raw = json.loads(V1_BOARD.read_text())
    assert "format_version" not in raw  # written before leaderboard.json had a version
    assert any("'format_version' is a required property" in e
               for e in schema_errors(leaderboard_json_schema(), raw))
    document = read_leaderboard_document(V1_BOARD)
    assert schema_errors(leaderboard_json_schema(), document) == []
    assert document["format_version"] == FORMAT_VERSION
    assert json.loads(V1_BOARD.read_text()) == raw  # the file and its parse are left as they were
    kinds = {c["model"]: c["kind"] for block in document["blocks"] for c in block["cells"]}
    assert {name: kinds[name] for name in ("lifeiqa_effnet_lite0_small", "probe_stage1", "piqe",
                                           "lifeiqa_effnet_lite0_small+no_moe", "deiqt_head",
                                           "no_balance_loss")} == {
        "lifeiqa_effnet_lite0_small": "lifeiqa", "probe_stage1": "probe", "piqe": "zero_shot",
        "lifeiqa_effnet_lite0_small+no_moe": "ablation", "deiqt_head": "lifeiqa_config",
        "no_balance_loss": "lifeiqa_config"}
    cells = [c for block in document["blocks"] for c in block["cells"]]
    assert all(c["plugin"] is None and c["limit"] is None and c["per_unit"] is None
               and c["row"] == c["model"] and c["not_zero_shot"] is False
               and c["per_distortion"] is None for c in cells)
    assert document["sections"] == [] and document["provenance"] is None
    comparisons = [c for block in document["blocks"] for listed in block["comparisons"].values()
                   for c in listed]
    assert comparisons and all(c["config_hash"] is None and c["stability"] is None
                               for c in comparisons)
    assert document["rerun_noise"] is None
    # everything else is the version-1 file's
    added = ("config_hash", "reference_config_hash", "stability")
    for block, old in zip(document["blocks"], raw["blocks"], strict=True):
        assert _by_cell({k: v for k, v in c.items()
                         if k not in ("kind", "plugin", "limit", "per_unit", *V3_CELL)}
                        for c in block["cells"]) == _by_cell(old["cells"])
        if any(c["model"] == document["reference"] for c in old["cells"]):  # in row order
            assert block["cells"][0]["model"] == document["reference"]
        assert {m: [{k: v for k, v in c.items() if k not in added} for c in listed]
                for m, listed in block["comparisons"].items()} == old["comparisons"]
        assert {k: v for k, v in block.items() if k not in ("cells", "comparisons", *V3_BLOCK)} \
            == {k: v for k, v in old.items() if k not in ("cells", "comparisons")}
        assert all(block[k] == [] for k in V3_BLOCK[1:])
        assert block["expected_units"] == {c["column"]: len(c["units"]) for c in old["cells"]}


def test_a_version_2_leaderboard_reads_through_the_migration():
    raw = json.loads(V2_BOARD.read_text())
    assert raw["format_version"] == 2
    document = read_leaderboard_document(V2_BOARD)
    assert document["format_version"] == FORMAT_VERSION
    assert schema_errors(leaderboard_json_schema(), document) == []
    for block, old in zip(document["blocks"], raw["blocks"], strict=True):
        # computed as the leaderboard computes them: a model under one config is its own row
        assert [c["row"] for c in _by_cell(block["cells"])] == \
            [c["model"] for c in _by_cell(old["cells"])]
        assert block["expected_units"] == {
            column: len({u for c in old["cells"] if c["column"] == column for u in c["units"]}
                        | {g["unit"] for g in old["missing"] if g["column"] == column})
            for column in {c["column"] for c in old["cells"]}}
        assert all(u["folder"] is None for c in block["cells"] for u in c["per_unit"].values())
        assert _by_cell({k: v for k, v in c.items() if k not in (*V3_CELL, "per_unit")}
                        for c in block["cells"]) == \
            _by_cell({k: v for k, v in c.items() if k != "per_unit"} for c in old["cells"])
    assert json.loads(V2_BOARD.read_text()) == raw


def _first_cell(document: dict) -> dict:
    return document["blocks"][0]["cells"][0]


@pytest.mark.parametrize("edit, schema_error, message", [
    (lambda d: _first_cell(d).pop("kind"), "'kind' is a required property",
     "field 'blocks[0].cells[0].kind': missing"),
    (lambda d: _first_cell(d).update(n="5"), "'5' is not of type 'integer'",
     "field 'blocks[0].cells[0].n': '5' is not of type 'integer'"),
    (lambda d: _first_cell(d)["srcc"].update(interval=[0.1]), "is too short",
     "field 'blocks[0].cells[0].srcc.interval': [0.1] is too short"),
    (lambda d: d["blocks"][0]["comparisons"].pop("plcc"), "'plcc' is a required property",
     "field 'blocks[0].comparisons.plcc': missing"),
    (lambda d: d.pop("title"), "'title' is a required property", "field 'title': missing"),
    (lambda d: d.update(blocks={}), "{} is not of type 'array'", "field 'blocks': {} is not of"),
])
def test_a_leaderboard_that_does_not_fit_is_rejected_naming_the_file_and_field(
        v1_board, tmp_path, edit, schema_error, message):
    document = copy.deepcopy(v1_board)
    edit(document)
    assert any(schema_error in e for e in schema_errors(leaderboard_json_schema(), document))
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResultSchemaError) as raised:
        read_leaderboard_document(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    assert f"expected leaderboard.json format version {FORMAT_VERSION}" in str(raised.value)


@pytest.mark.parametrize("version, message", [
    (FORMAT_VERSION + 1, f"field 'format_version' is {FORMAT_VERSION + 1}, but this harness "
                         f"reads leaderboard format versions up to {FORMAT_VERSION}: it was "
                         f"written by a newer harness; upgrade"),
    ("2", "field 'format_version': expected a whole number >= 1, found '2'"),
    (0, "field 'format_version': expected a whole number >= 1, found 0"),
])
def test_an_unknown_leaderboard_version_is_refused(v1_board, version, message):
    with pytest.raises(ResultSchemaError, match=f"^board.json: {message}"):
        leaderboard_from_json({**v1_board, "format_version": version}, "board.json")


def test_a_version_1_leaderboard_naming_an_unknown_model_is_refused_naming_the_cell():
    raw = json.loads(V1_BOARD.read_text())
    raw["blocks"][1]["cells"][2]["model"] = "cnn_iqa"
    with pytest.raises(ResultSchemaError, match=r"^old.json: field 'blocks\[1\].cells\[2\].model': "
                                                r"unknown model 'cnn_iqa'; did you mean cnniqa"):
        leaderboard_from_json(raw, "old.json")


def test_a_version_1_leaderboard_that_does_not_fit_says_it_was_migrated():
    raw = json.loads(V1_BOARD.read_text())
    del raw["blocks"][0]["cells"][0]["model"]
    with pytest.raises(ResultSchemaError) as raised:
        leaderboard_from_json(raw, "old.json")
    assert str(raised.value).startswith("old.json: field 'blocks[0].cells[0].model': missing; ")
    assert str(raised.value).endswith("the file is of version 1, migrated on reading")


def test_a_leaderboard_file_that_is_not_a_document_is_refused_with_its_path(tmp_path):
    with pytest.raises(ResultsError, match=f"^{re.escape(str(tmp_path / 'none.json'))}: cannot read"):
        read_leaderboard_document(tmp_path / "none.json")
    cut = tmp_path / "cut.json"
    cut.write_text(V1_BOARD.read_text()[:-30])
    with pytest.raises(ResultSchemaError, match=f"^{re.escape(str(cut))}: not valid JSON"):
        read_leaderboard_document(cut)
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ResultSchemaError,
                       match=f"^{re.escape(str(listed))}: expected a JSON object, found list"):
        read_leaderboard_document(listed)


# --- predictions and per-distortion tables ---------------------------------------------------------


UNIT_KEYS = ["suite", "protocol", "protocol_version", "selection", "model", "kind",
             "train_dataset", "test_dataset", "unit", "split_file", "config_hash"]


def test_predictions_are_every_units_csv_with_the_units_key_and_typed_columns(v1_results):
    results = harness.load_results("demo", runs=V1)
    table = results.predictions()
    assert list(table.columns) == [*UNIT_KEYS, "image_id", "group", "distortion", "level",
                                   "score", "prediction"]
    assert len(table) == sum(r.metrics.n for r in v1_results) == 1250
    assert table["score"].dtype == np.float64 and table["prediction"].dtype == np.float64
    assert str(table["level"].dtype) == "Int64" and table["level"].between(1, 5).all()
    assert table["image_id"].map(type).eq(str).all() and table[UNIT_KEYS].notna().all().all()
    # the unit keys are the values table() shows, so the two merge on them
    per_unit = results.table()
    merged = table.merge(per_unit[[*UNIT_KEYS[:-1], "srcc"]], on=UNIT_KEYS[:-1], how="left")
    assert merged["srcc"].notna().all()
    for unit in v1_results:
        rows = table[(table["model"] == unit.model.name) & (table["unit"] == unit.unit)
                     & (table["test_dataset"] == unit.test_dataset)]
        assert len(rows) == unit.metrics.n and set(rows["config_hash"]) == {unit.config_hash}
        raw = (V1 / Path(*unit.key.parts()) / PREDICTIONS).read_text().splitlines()[1:]
        assert rows["prediction"].tolist() == [float(line.rsplit(",", 1)[1]) for line in raw]
        if unit.train_dataset == unit.test_dataset:  # one label direction
            # up to the sign: the runner orients scores that fall with quality (PIQE's)
            srcc = stats.spearmanr(rows["prediction"], rows["score"]).statistic
            assert abs(srcc) == pytest.approx(abs(unit.metrics.srcc), abs=1e-9)


def test_per_distortion_tables_are_the_units_values_and_their_medians(v1_results):
    results = harness.load_results("demo", runs=V1)
    table = results.per_distortion()
    assert list(table.columns) == [*UNIT_KEYS, "distortion", "srcc"]
    assert len(table) == sum(len(r.per_distortion) for r in v1_results) == 9 * 25
    for unit in v1_results:
        rows = table[(table["model"] == unit.model.name) & (table["unit"] == unit.unit)
                     & (table["test_dataset"] == unit.test_dataset)]
        assert dict(zip(rows["distortion"], rows["srcc"], strict=True)) == unit.per_distortion

    summary = results.per_distortion_summary()
    assert list(summary.columns) == ["protocol", "protocol_version", "selection", "suite", "model",
                                     "dataset", "train_fraction", "config_hash", "distortion",
                                     "units", "srcc_median"]
    assert summary["units"].dtype == np.int64 and summary["srcc_median"].dtype == np.float64
    recomputed = table.groupby(["suite", "model", "config_hash", "distortion"])["srcc"] \
        .agg(["median", "size"])
    assert len(summary) == len(recomputed) == 5 * 25
    for row in summary.itertuples():
        expected = recomputed.loc[(row.suite, row.model, row.config_hash, row.distortion)]
        assert (row.srcc_median, row.units) == (pytest.approx(expected["median"]), expected["size"])
    by_cell = {(c.model, c.dataset): c.per_distortion for c in results.cells()}
    for row in summary.itertuples():  # the numbers the leaderboard's per-distortion tables show
        assert by_cell[(row.model, row.dataset)][row.distortion] == row.srcc_median


def test_predictions_without_distortion_types_have_them_missing(tmp_path):
    path = tmp_path / PREDICTIONS
    path.write_text("image_id,group,distortion,level,score,prediction\n"
                    "a.jpg,a.jpg,,,55.5,0.25\nb.jpg,b.jpg,,,60,-1e-3\n")
    table = read_predictions(path, rows=2)
    assert table["distortion"].isna().all() and table["level"].isna().all()
    assert str(table["level"].dtype) == "Int64"
    assert table["score"].tolist() == [55.5, 60.0] and table["prediction"].tolist() == [0.25, -1e-3]


def _copy_v1(tmp_path: Path) -> Path:
    shutil.copytree(V1 / "demo", tmp_path / "demo")
    return tmp_path / CNNIQA / PREDICTIONS


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.unlink(), "missing: a complete unit has its predictions beside its result.json"),
    (lambda p: p.write_text("\n".join(p.read_text().splitlines()[:-3]) + "\n"),
     "122 rows, but the unit's result.json says it scored 125 test images"),
    (lambda p: p.write_text(p.read_text().replace(",0.2822809", ",oops", 1)),
     ":2: column 'prediction': expected a number, found 'oops"),
    (lambda p: p.write_text(p.read_text().replace("Gaussian blur,1,", "Gaussian blur,one,", 1)),
     ":2: column 'level': expected a whole number, found 'one'"),
    (lambda p: p.write_text(p.read_text().replace("prediction", "pred", 1)),
     "expected the columns image_id, group, distortion, level, score, prediction, found"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "not a predictions CSV"),
])
def test_a_missing_or_damaged_predictions_file_is_refused_naming_it(tmp_path, damage, message):
    path = _copy_v1(tmp_path)
    damage(path)
    # the suite is not read at all: no table, board or predictions of part of a unit
    with pytest.raises(ResultSchemaError) as raised:
        harness.load_results("demo", runs=tmp_path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)
    assert str(raised.value).endswith(f"delete the unit's folder {path.parent} and rerun the unit")


# --- a fresh run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> harness.Results:
    """A tiny real run: one split of the splits protocol on a tiny synthetic KADID-10k."""
    root = tmp_path_factory.mktemp("fresh")
    return harness.evaluate("splits", runs=str(root / "runs"), datasets=["synth-kadid10k"],
                            model="lifeiqa_tiny", synth_size="tiny", splits=1,
                            overrides={"epochs": 1, "train_crops": 1, "test_crops": 1,
                                       "batch_size": 32})


@pytest.mark.slow
def test_a_fresh_run_writes_files_that_fit_the_schemas_and_tables_that_agree(fresh, tmp_path):
    (unit,) = fresh.units
    written = json.loads((ResultsStore(fresh.runs).unit_dir(unit.key) / RESULT).read_text())
    assert written["schema_version"] == SCHEMA_VERSION
    assert schema_errors(result_json_schema(), written) == []

    predictions = fresh.predictions()
    assert len(predictions) == unit.metrics.n == unit.split.test_images
    assert set(unit.per_distortion) <= set(predictions["distortion"].dropna())
    assert stats.spearmanr(predictions["prediction"], predictions["score"]).statistic == \
        pytest.approx(unit.metrics.srcc, abs=1e-9)
    assert len(fresh.per_distortion()) == len(fresh.per_distortion_summary()) == \
        len(unit.per_distortion)

    harness.leaderboard(fresh, tmp_path / "board", published=None)
    board = read_leaderboard_document(tmp_path / "board" / "leaderboard.json")
    assert board == json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert _first_cell(board)["kind"] == "lifeiqa" and _first_cell(board)["limit"] is None
