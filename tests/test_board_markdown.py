"""leaderboard.md is the rendering of leaderboard.json (harness/reporting/board_markdown.py): the
committed board and fresh ones re-render to the byte, the page shows the rows in the markdown's
order, and what the markdown says beyond the tables (plug-ins, failed units) is in the file."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
from unit_results import SIX_SPLITS, series

from harness.plugins import PluginInfo
from harness.reporting.board_markdown import board_markdown
from harness.reporting.html_page import page_html
from harness.reporting.leaderboard import render, write_results_leaderboard
from harness.reporting.leaderboard_format import leaderboard_from_json, read_leaderboard_document
from harness.reporting.published import load_published
from harness.results.aggregate import aggregate, markdown_tables
from harness.results.store import ResultsStore, UnitFailure

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "leaderboards" / "synthetic"
V1 = ROOT / "tests" / "fixtures" / "results-v1"
PLUGIN = PluginInfo("acme-iqa", "0.3.1", "entry_point")
# every unit of a cross-dataset table failed: the table has no cell, its failures a list
ORPHAN = UnitFailure("demo", "lifeiqa_effnet_lite0_small", "seed_0", "diverged", "loss is nan",
                     {"protocol": "cross-dataset", "protocol_version": "1.0", "selection": "last",
                      "train_dataset": "synth-kadid10k", "test_dataset": "synth-tid2013",
                      "unit": "seed_0", "seed": 0})


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    """A fresh board of the v1 fixture's units, one model of them made by a plug-in, with a
    table whose every unit failed."""
    results = ResultsStore(V1).results("demo")
    results = [replace(r, plugin=PLUGIN) if r.model.name == "piqe" else r for r in results]
    out = tmp_path_factory.mktemp("board")
    write_results_leaderboard(results, V1, out, title="fixture", failures=[ORPHAN])
    return out


def table_rows(markdown: str) -> list[list[str]]:
    """The first column of each table in ``markdown`` (its header and rule left out)."""
    tables: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|--"):
            continue
        if line.startswith("|"):
            tables[-1].append(line.split("|")[1].strip())
        elif tables[-1]:
            tables.append([])
    return [rows[1:] for rows in tables if rows]


def test_the_committed_markdown_is_the_rendering_of_the_committed_json():
    document = read_leaderboard_document(COMMITTED / "leaderboard.json")
    assert board_markdown(document) == (COMMITTED / "leaderboard.md").read_text()


def test_a_fresh_markdown_is_its_json_rendered(board):
    text = (board / "leaderboard.md").read_text()
    assert text == board_markdown(read_leaderboard_document(board / "leaderboard.json"))


def test_the_rendering_reads_every_number_from_the_document(board):
    """A number changed in the file changes that cell of the markdown, and nothing else."""
    document = read_leaderboard_document(board / "leaderboard.json")
    cell = document["blocks"][0]["cells"][0]
    before = board_markdown(document)
    cell["srcc"]["median"] = 0.123456
    after = board_markdown(document)
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 1 and "0.123" in changed[0][1] and cell["row"] in changed[0][1]


def test_the_page_shows_the_rows_in_the_markdowns_order(board):
    """The reference first, then ablations, then baselines: one order in both renderings."""
    document = read_leaderboard_document(board / "leaderboard.json")
    tables = table_rows((board / "leaderboard.md").read_text())
    html = page_html(document, None)
    compared = [b for b in document["blocks"] if b["comparisons"]["srcc"]]
    assert compared
    for block in compared:
        rows = list(dict.fromkeys(c["row"] for c in block["cells"]))
        assert rows[0] == document["reference"]
        assert tables.count(rows) >= 2  # the SRCC and PLCC tables
        positions = [html.index(f'data-row="{row}"') for row in rows]
        assert positions == sorted(positions)


def test_plug_ins_and_failed_tables_are_in_the_file_and_the_markdown(board):
    document = json.loads((board / "leaderboard.json").read_text())
    units = sum(c["n"] for b in document["blocks"] for c in b["cells"] if c["model"] == "piqe")
    assert document["provenance"]["plugins"] == [
        {"model": "piqe", "plugin": "acme-iqa 0.3.1", "units": units}]
    assert document["failed_without_table"] == [{
        "model": ORPHAN.model, "dataset": "synth-kadid10k -> synth-tid2013",
        "protocol": "cross-dataset", "protocol_version": "1.0", "suite": "demo",
        "unit": "seed_0", "kind": "diverged", "message": "loss is nan"}]
    text = (board / "leaderboard.md").read_text()
    assert f"- piqe: plug-in acme-iqa 0.3.1 ({units} units)" in text
    assert "(cross-dataset v1.0, suite demo): seed_0 (diverged: loss is nan)" in text


def test_a_version_5_file_migrates_to_the_same_markdown(board):
    """Version 5 listed cells in aggregation order and had no plug-in counts or failed units'
    protocols: the migration puts the rows in order and counts the plug-in's units from its
    cells, and the markdown says what was not recorded."""
    current = json.loads((board / "leaderboard.json").read_text())
    old = copy.deepcopy(current)
    old["format_version"] = 5
    for block in old["blocks"]:
        block["cells"].reverse()
    del old["provenance"]["plugins"]
    for failure in old["failed_without_table"]:
        del failure["protocol"], failure["protocol_version"]
    migrated = leaderboard_from_json(old, "v5.json")
    assert migrated["provenance"]["plugins"] == current["provenance"]["plugins"]
    assert [b["cells"] for b in migrated["blocks"]] == [b["cells"] for b in current["blocks"]]
    assert board_markdown(migrated) == (board / "leaderboard.md").read_text().replace(
        "(cross-dataset v1.0, suite demo)", "(protocol not recorded, suite demo)")


def test_tables_say_which_plcc_and_published_rows_record_the_authors_rule():
    results = series("full", SIX_SPLITS)
    assert "**PLCC** (raw Pearson, no logistic fit)" in render(results, None, [], "t")
    assert "PLCC: raw Pearson, no logistic fit." in markdown_tables(aggregate(results))
    rows = [e for e in load_published().entries if e.model == "Life-IQA" and e.protocol == "splits"]
    assert len(rows) == 5
    for entry in rows:
        assert entry.plcc_kind == "raw"
        assert "torchmetrics" in entry.plcc_rule and "running maximum" in entry.plcc_rule
        assert "test SRCC" in entry.plcc_rule
    assert {e.plcc_kind for e in load_published().entries if e.model == "DEIQT"} == {"unknown"}


def test_tables_name_split_files_relative_to_the_runs_folder():
    v1 = ResultsStore(V1).results("demo")
    assert v1[0].split.file.startswith("/tmp/oldruns/")  # as the old code recorded it
    for text in (render(v1, None, [], "t"), markdown_tables(aggregate(v1))):
        assert "/tmp/" not in text
        assert "demo/comparison/splits/synth-kadid10k/split_00.json" in text
    assert "/home/" not in render(series("full", SIX_SPLITS), None, [], "t")
