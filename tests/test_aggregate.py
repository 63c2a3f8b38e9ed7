"""Units -> cells: one cell per condition (protocol and version, selection, suite, model, data,
training fraction, config), a unit twice is an error, and pairs are matched on their split file."""

from __future__ import annotations

from pathlib import Path

import pytest
from unit_results import SIX_SPLITS, series, unit

import harness
from harness import cli
from harness.api import Results
from harness.errors import DuplicateUnitError, PairingError
from harness.reporting.leaderboard import render
from harness.results.aggregate import aggregate, compare_block, markdown_tables


def test_data_efficiency_fractions_are_cells_of_their_own():
    results = [r for fraction, base in ((0.2, 0.5), (0.4, 0.6), (1.0, 0.7))
               for r in series("full", [base, base + 0.01, base + 0.02], fraction=fraction,
                               protocol="data-efficiency")]
    cells = aggregate(results)
    assert [(c.train_fraction, c.n, round(c.srcc.median, 3)) for c in cells] == \
        [(0.2, 3, 0.51), (0.4, 3, 0.61), (1.0, 3, 0.71)]
    text = render(results, None, [], "t")
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert "synth-kadid10k, 20% of train" in header and "synth-kadid10k, 40% of train" in header
    frame = Results("s", Path("."), tuple(results)).summary()
    assert frame["train_fraction"].tolist() == [0.2, 0.4, 1.0]


@pytest.mark.slow
def test_a_data_efficiency_run_then_summarize_shows_one_cell_per_fraction(tmp_path, capsys):
    runs = tmp_path / "runs"
    results = harness.evaluate(
        "data-efficiency", runs=str(runs), model="lifeiqa_tiny", synth_size="tiny", splits=1,
        overrides={"epochs": 1, "train_crops": 1, "test_crops": 1, "batch_size": 32})
    assert results.done == 4 and not results.failed
    assert cli.main(["summarize", "data-efficiency", "--runs", str(runs)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| lifeiqa")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "synth-kadid10k, 20% of train", "synth-kadid10k, 40% of train",
        "synth-kadid10k, 60% of train", "synth-kadid10k, 80% of train"]
    assert all(row.split("|")[3].strip() == "1" for row in rows)  # n = 1 split each


def test_suites_and_configs_are_cells_of_their_own_and_a_unit_twice_is_an_error():
    results = series("full", [0.5, 0.6], suite="a") + series("full", [0.7, 0.8], suite="b") \
        + series("full", [0.1, 0.2], suite="c", epochs=3) + [unit("full", 2, 0.9, suite="c", epochs=5)]
    cells = aggregate(results)
    assert [(c.suite, c.n) for c in cells] == [("a", 2), ("b", 2), ("c", 2), ("c", 1)]
    assert len({c.config_hash for c in cells}) == 2  # a, b and c's first share a condition
    assert cells[0].config_hash == results[0].config_hash == results[1].config_hash
    labels = [line.split("|")[1].strip() for line in
              markdown_tables([c for c in cells if c.suite == "c"]).splitlines()
              if line.startswith("| lifeiqa_tiny")]
    assert len(labels) == 2 and all(label.startswith("lifeiqa_tiny [config ") for label in labels)
    twice = [*series("full", [0.5, 0.6]), unit("full", 1, 0.61, split_hash="f" * 16)]
    with pytest.raises(DuplicateUnitError, match=r"unit split_01 of lifeiqa_tiny .* appears twice"):
        aggregate(twice)


def test_pairs_are_matched_on_the_split_file_too():
    results = series("full", SIX_SPLITS) + [unit("cnniqa", k, v, split_hash="e" * 16 if k == 3 else None)
                                           for k, v in enumerate(SIX_SPLITS)]
    with pytest.raises(PairingError, match="unit split_03, but on different split files"):
        compare_block(aggregate(results), "lifeiqa_tiny")
