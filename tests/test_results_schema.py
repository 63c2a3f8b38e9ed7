"""Typed, versioned unit results: results written before versioning (schema 1, by commit
ba55094's code) still load and aggregate as they did; the current schema round-trips; files of a
newer schema or damaged files are refused with the file, the field and what to do."""

import csv
import json
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ResultSchemaError, ResultsError
from harness.plan.models import ModelRef
from harness.reporting.board_markdown import footer
from harness.reporting.leaderboard import model_order, provenance, render
from harness.results.aggregate import aggregate, kind_label, markdown_tables
from harness.results.metrics import Scores
from harness.results.schema import SCHEMA_VERSION, ProtocolRef, SplitInfo, UnitResult
from harness.results.store import (
    PREDICTIONS,
    RESULT,
    ConfigMismatchError,
    ResultsStore,
    UnitBusyError,
)

V1 = Path(__file__).parent / "fixtures" / "results-v1"
COMPARISON = "demo/comparison/{}/synth-kadid10k/split_00/result.json"


@pytest.fixture(scope="module")
def v1_results() -> list[UnitResult]:
    return ResultsStore(V1).results("demo")


def test_v1_results_load_through_the_store(v1_results):
    assert len(v1_results) == 9
    assert all(r.schema_version == SCHEMA_VERSION for r in v1_results)  # migrated on reading
    by_name = {(r.model.name, r.dataset_label, r.unit): r for r in v1_results}
    piqe = by_name[("piqe", "synth-kadid10k", "split_00")]
    assert piqe.model == ModelRef("lifeiqa_tiny", "piqe") and piqe.model.kind == "zero_shot"
    assert piqe.selected_epoch is None and piqe.selection_note.startswith("zero-shot")
    assert piqe.protocol == ProtocolRef("comparison", "1.0")
    assert len(piqe.per_distortion) == 25 and piqe.model_config["trained_on"] == []
    cross = by_name[("lifeiqa_tiny", "synth-koniq10k -> synth-kadid10k", "seed_00")]
    assert cross.split.file == "whole datasets" and cross.split.sha256_16 == ""
    assert cross.seeds.split is None and cross.split.train_images == 24
    assert cross.environment.git_commit.startswith("ba55094")
    ablation = by_name[("lifeiqa_tiny+no_moe", "synth-kadid10k", "split_01")]
    assert ablation.model.kind == "ablation" and ablation.history[-1]["epoch"] == 3
    # the key rebuilt from the typed fields is the folder the old code wrote it in
    assert (V1 / Path(*ablation.key.parts()) / RESULT).is_file()
    assert ResultsStore(V1).load(ablation.key) == ablation


def test_v1_results_aggregate_into_the_medians_of_the_raw_files(v1_results):
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for path in V1.rglob(RESULT):
        raw = json.loads(path.read_text())
        assert "schema_version" not in raw  # written before versioning
        by_cell[(raw["protocol"]["name"], raw["model"], raw["train_dataset"],
                 raw["test_dataset"])].append(raw)
    cells = aggregate(v1_results)
    assert len(cells) == len(by_cell) == 5
    for cell in cells:
        train, _, test = cell.dataset.partition(" -> ")
        raw = by_cell[(cell.protocol, cell.model, train, test or train)]
        assert cell.srcc.median == pytest.approx(np.median([r["metrics"]["srcc"] for r in raw]))
        assert cell.plcc.median == pytest.approx(np.median([r["metrics"]["plcc"] for r in raw]))
        assert cell.units == sorted(r["unit"] for r in raw)
        assert cell.model_ref == ModelRef(raw[0]["preset"], raw[0]["variant"])
    assert {c.model: kind_label(c.model_ref.kind) for c in cells} == {
        "lifeiqa_tiny": "Life-IQA", "lifeiqa_tiny+no_moe": "Life-IQA ablation",
        "cnniqa": "image model", "piqe": "zero shot"}
    order = model_order([c.model_ref for c in cells], "lifeiqa_tiny")
    assert [m.name for m in order] == ["lifeiqa_tiny", "lifeiqa_tiny+no_moe", "cnniqa", "piqe"]


def test_v1_results_render_the_text_the_code_that_wrote_them_rendered(v1_results):
    """tests/fixtures/results-v1/*.md: the tables of these units, as rendered by commit ba55094
    and regenerated for issue 13's statistics (see the fixture README)."""
    text = render(v1_results, None, [], "Results written by commit ba55094")
    assert text == (V1 / "leaderboard.md").read_text()
    tables = markdown_tables(aggregate(v1_results), "lifeiqa_tiny", breakdown=True)
    assert tables + "\n" == (V1 / "tables.md").read_text()


def test_current_schema_round_trips_through_the_store(v1_results, tmp_path):
    shutil.copytree(V1, tmp_path, dirs_exist_ok=True)  # split files and predictions: a unit
    store = ResultsStore(tmp_path)                     # is read only with files that agree
    for result in v1_results:
        with (store.unit_dir(result.key) / PREDICTIONS).open() as handle:
            predictions = list(csv.DictReader(handle))
        folder = store.write(result.key, result, predictions)
        written = json.loads((folder / RESULT).read_text())
        assert written["schema_version"] == SCHEMA_VERSION and written["model"] == result.model.name
        assert store.load(result.key) == result
        assert UnitResult.from_json_dict(result.to_json_dict(), "memory") == result
    assert store.results("demo") == v1_results
    changed = replace(v1_results[0], wall_seconds=1.0, split=SplitInfo("f.json", "ab", 1, 2, 0),
                      metrics=Scores(0.5, 0.4, 0.6, 0.6, 0.1, 2))
    store.write(changed.key, changed, [])
    assert store.load(changed.key) == changed != v1_results[0]


def _stored(tmp_path: Path, edit) -> tuple[ResultsStore, Path]:
    """A store holding one v1 result, its document changed by ``edit`` (a dict -> dict)."""
    source = V1 / COMPARISON.format("cnniqa")
    path = tmp_path / COMPARISON.format("cnniqa")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(edit(json.loads(source.read_text()))))
    return ResultsStore(tmp_path), path


def _without(name: str):
    return lambda d: {k: v for k, v in d.items() if k != name}


@pytest.mark.parametrize("edit,expected", [
    (lambda d: {**d, "schema_version": SCHEMA_VERSION + 1},
     f"'schema_version' is {SCHEMA_VERSION + 1}, but this harness reads result schema versions "
     f"up to {SCHEMA_VERSION}: it was written by a newer harness; upgrade lifeiqa-bench"),
    (lambda d: {**d, "schema_version": "2"}, "'schema_version': expected a whole number"),
    (_without("metrics"), "field 'metrics': missing; the file is damaged"),
    (lambda d: {**d, "metrics": {**d["metrics"], "srcc": "high"}},
     "field 'metrics.srcc': expected float, found 'high'"),
    (lambda d: {**d, "split": {**d["split"], "test_images": 12.5}},
     "field 'split.test_images': expected int, found 12.5"),
    (lambda d: {**d, "selected_epoch": True}, "field 'selected_epoch': expected int or null"),
    (lambda d: {**d, "variant": "cnn_iqa"}, "field 'variant': unknown model 'cnn_iqa'; "
                                            "did you mean cnniqa"),
    (lambda d: {**d, "model": "wadiqam_nr"}, "field 'model': 'wadiqam_nr' is not the name of "
                                             "preset 'lifeiqa_tiny' with variant 'cnniqa'"),
    (lambda d: {**d, "history": [1.0]}, "field 'history': expected a list of dict"),
    (lambda d: {**d, "environment": {**d["environment"], "gpu": "x"}},
     "field 'environment.gpu': unknown field"),
    (lambda d: [d], "expected a JSON object, found list"),
])
def test_a_newer_or_damaged_result_names_the_file_the_field_and_the_fix(tmp_path, edit, expected):
    store, path = _stored(tmp_path, edit)
    key = UnitResult.from_json_dict(json.loads((V1 / COMPARISON.format("cnniqa")).read_text()),
                                    "fixture").key
    with pytest.raises(ResultSchemaError) as raised:
        store.load(key)
    assert str(raised.value).startswith(f"{path}: ") and expected in str(raised.value)
    with pytest.raises(ResultSchemaError, match=str(path)):
        store.results("demo")


def test_a_file_that_is_not_json_is_refused_with_its_path(tmp_path):
    store, path = _stored(tmp_path, lambda d: d)
    path.write_text(path.read_text()[:-40])  # cut short
    with pytest.raises(ResultSchemaError, match=f"{path}: not valid JSON .*delete its unit folder"):
        store.results("demo")


def test_store_errors_are_results_errors():
    assert issubclass(ConfigMismatchError, ResultsError)
    assert issubclass(UnitBusyError, ResultsError)
    assert issubclass(ResultSchemaError, ResultsError)


def test_rows_are_flat_typed_columns_one_per_unit(v1_results):
    import pandas

    types = {"suite": str, "protocol": str, "protocol_version": str, "selection": str,
             "model": str, "preset": str, "variant": str, "kind": str,
             "plugin": (str, type(None)), "train_dataset": str,
             "test_dataset": str, "unit": str, "split_file": str, "split_sha256_16": str,
             "train_images": int, "test_images": int, "validation_images": int, "srcc": float,
             "krcc": float, "plcc": float, "plcc_logistic": float, "rmse_logistic": float,
             "n": int, "training_seed": int, "split_seed": (int, type(None)),
             "selected_epoch": (int, type(None)), "wall_seconds": float, "device": str,
             "world_size": int, "cuda_device": (str, type(None)),
             "git_commit": (str, type(None))}
    rows = [r.row() for r in v1_results]
    for row in rows:
        assert list(row) == list(types)
        for column, value in row.items():
            assert isinstance(value, types[column]) and not isinstance(value, bool), column
    table = pandas.DataFrame(rows)
    assert len(table) == 9 and table["srcc"].dtype == np.float64 and table["n"].dtype == np.int64
    assert table.loc[table["model"] == "piqe", "kind"].tolist() == ["zero_shot"] * 2
    assert table.loc[table["model"] == "piqe", "selected_epoch"].isna().all()


def test_footer_names_each_code_version_and_says_when_the_units_mix_them(v1_results):
    one = v1_results[0]
    other = replace(one, environment=replace(
        one.environment, git_commit="f" * 40, git_dirty=True))
    mixed = footer(provenance([one, other]))
    assert "code: ba55094aad (1 unit), ffffffffff with uncommitted changes (1 unit)" in mixed
    assert "more than one code version" in mixed
    assert "more than one" not in footer(provenance(v1_results))
    assert not one.environment.same_code(other.environment)
    assert not other.environment.same_code(other.environment)  # uncommitted: never known same
    assert one.environment.same_code(v1_results[1].environment)
