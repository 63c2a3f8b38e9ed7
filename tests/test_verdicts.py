"""Verdicts found by the cell they are about: a model that holds a column under two configs gets
one comparison (and marker) per config, and a reference under two configs is an error rather
than an arbitrary pick."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from commands import bench_here
from unit_results import SIX_SPLITS, series, stored, suite_folder, unit

import harness
from harness import cli
from harness.errors import AmbiguousReferenceError, UnknownNameError
from harness.plan.models import ModelRef
from harness.reporting.leaderboard import reference_model, render, write_results_leaderboard
from harness.results import metrics
from harness.results.aggregate import (
    Cell,
    aggregate,
    compare_block,
    comparison_key,
    gaps,
    markdown_tables,
    verdict_note,
)
from harness.results.store import ResultsStore, UnitFailure

UNITS = [f"split_{k:02d}" for k in range(10)]
REFERENCE = [0.80, 0.82, 0.79, 0.85, 0.81, 0.83, 0.80, 0.84, 0.78, 0.86]


def cell(variant: str, values: list[float], config: str, units: list[str] = UNITS) -> Cell:
    summary = metrics.summarize(values)
    per_unit = dict(zip(units, values, strict=True))
    return Cell(protocol="comparison", version="1.0", selection="last",
                model_ref=ModelRef("lifeiqa_x", variant), dataset="synth", units=list(units),
                srcc=summary, plcc=summary, per_unit_srcc=per_unit, per_unit_plcc=dict(per_unit),
                suite="s", config_hash=config, unit_hashes=dict.fromkeys(units, "abc"))


def test_each_config_of_a_model_gets_its_own_comparison_and_marker():
    same = cell("cnniqa", [v + 0.0005 * (-1) ** k for k, v in enumerate(REFERENCE)], "aaaaaa111111")
    worse = cell("cnniqa", [v - 0.2 for v in REFERENCE], "bbbbbb222222")
    block = [cell("full", REFERENCE, "ffffff000000"), same, worse]
    comparisons = {c.key: c for c in compare_block(block, "lifeiqa_x")}
    assert set(comparisons) == {comparison_key(same), comparison_key(worse)}
    assert comparisons[comparison_key(worse)].marker == "▼"
    assert comparisons[comparison_key(same)].marker == ""
    assert comparisons[comparison_key(same)].reference_config_hash == "ffffff000000"
    table = markdown_tables(block, "lifeiqa_x")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| cnniqa")}
    assert "▼" in rows["cnniqa [config bbbbbb]"] and "▼" not in rows["cnniqa [config aaaaaa]"]
    (verdict,) = verdict_note("lifeiqa_x", block, list(comparisons.values()), "srcc")
    assert "Worse than lifeiqa_x (Holm-adjusted): 1 (cnniqa [config bbbbbb])" in verdict
    assert "Not distinguishable from lifeiqa_x (Holm-adjusted): 1 (cnniqa [config aaaaaa])" in verdict


def test_a_reference_under_two_configs_is_an_error_naming_them():
    block = [cell("full", REFERENCE, "ffffff000000"),
             cell("full", [v + 0.01 for v in REFERENCE], "eeeeee999999"),
             cell("cnniqa", [v - 0.2 for v in REFERENCE], "bbbbbb222222")]
    with pytest.raises(AmbiguousReferenceError, match="the reference lifeiqa_x holds column synth "
                                                      "of table 'comparison .*' under 2 configs "
                                                      r"\(ffffff000000, eeeeee999999\)"):
        compare_block(block, "lifeiqa_x")


def test_missing_units_are_counted_per_config():
    full = cell("full", REFERENCE, "ffffff000000")
    complete = cell("cnniqa", REFERENCE, "aaaaaa111111")
    partial = cell("cnniqa", REFERENCE[:8], "bbbbbb222222", UNITS[:8])
    config = {"protocol": "comparison", "protocol_version": "1.0", "selection": "last",
              "train_dataset": "synth", "test_dataset": "synth", "unit": "split_08", "seed": 8,
              "split_seed": 8}
    failure = UnitFailure("s", "cnniqa", "split_08", "diverged", "non-finite loss", config)
    found = gaps([full, complete, partial], [failure])
    # the failure's own config is neither cell's: it is a row of its own, not a hole in either
    assert {(g.config_hash, g.unit) for g in found} >= {("bbbbbb222222", "split_08"),
                                                        ("bbbbbb222222", "split_09")}
    assert not [g for g in found if g.config_hash == "aaaaaa111111"]


def test_the_signed_rank_p_is_exact_with_ties_and_takes_rounding_for_a_tie():
    from scipy import stats

    from harness.results.metrics import paired_wilcoxon, signed_rank_p

    rng = np.random.default_rng(0)
    for n in (3, 6, 10, 20):  # without ties it is scipy's exact p
        for _ in range(20):
            d = rng.normal(size=n) + 0.4
            assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d, method="exact").pvalue,
                                                     abs=1e-12)
    # with ties: the exact distribution of the mid-ranks, counted by hand for 3 differences
    # (ranks 1.5, 1.5, 3; all 8 sign patterns; |W+ - 3| >= 1.5 for 6 of them)
    assert signed_rank_p([0.1, -0.1, 0.2]) == pytest.approx(6 / 8)
    # differences that are rounding are no difference, whatever else is in the pair
    assert paired_wilcoxon([0.8] * 6, [0.8 + 1e-15] * 6) == 1.0
    noisy = [0.01, 0.02, 0.015, 0.03, 0.012, 0.018]
    assert signed_rank_p([*noisy, 1e-14, -1e-14]) == signed_rank_p(noisy)


# --- markers re-tested under rerun noise --------------------------------------------------------

MARGINAL = [0.012, 0.015, 0.009, 0.011, -0.010, 0.013, 0.010, -0.009, 0.014, 0.008]  # p = 0.037


def test_a_marginal_marker_is_fragile_and_a_clear_one_is_not():
    from harness.results.stability import RerunNoise, stability, stability_note, with_stability

    reference = cell("full", REFERENCE, "ffffff000000")
    marginal = cell("no_moe", [r + d for r, d in zip(REFERENCE, MARGINAL, strict=True)],
                    "aaaaaa111111")
    clear = cell("cnniqa", [r - 0.2 for r in REFERENCE], "bbbbbb222222")
    block = [reference, marginal, clear]
    plain = {c.key: c for c in compare_block(block, "lifeiqa_x")}
    assert plain[comparison_key(marginal)].marker == "▲" and plain[comparison_key(clear)].marker == "▼"
    noise = RerunNoise({}, 0.006, "a stated sd of 0.006")  # the gate's largest rerun |difference|
    shares = stability(block, "lifeiqa_x", "srcc", noise)
    assert shares[comparison_key(clear)] == 1.0
    assert 0.2 < shares[comparison_key(marginal)] < 0.95
    assert stability(block, "lifeiqa_x", "srcc", noise) == shares  # seeded
    tested = {c.key: c for c in with_stability(list(plain.values()), shares)}
    assert tested[comparison_key(marginal)].marker == "△"  # hollow: a rerun may lose it
    assert tested[comparison_key(clear)].marker == "▼"
    note = stability_note(noise, list(tested.values()), "srcc")
    assert "△/▽/◇: a SRCC verdict given again in fewer than 95% of 2000 re-tests" in note
    assert "here 1 of 2 marker(s) and 0 of 0 unmarked comparison(s)" in note
    assert "not re-tested under rerun noise" in stability_note(None, [], "srcc")
    # no noise at all (zero-shot metrics, say): every re-test is the table itself
    assert set(stability(block, "lifeiqa_x", "srcc", RerunNoise({}, 0.0, "none")).values()) == {1.0}


EDGE = [0.012, 0.015, 0.009, 0.011, -0.012, 0.013, 0.010, -0.009, 0.014, 0.008]  # p = 0.064


def test_an_unmarked_comparison_near_alpha_is_fragile_too():
    """Fragile in the other direction: a "not distinguishable" that re-tests often mark."""
    from harness.results.stability import RerunNoise, stability, stability_note, with_stability

    reference = cell("full", REFERENCE, "ffffff000000")
    edge = cell("no_moe", [r + d for r, d in zip(REFERENCE, EDGE, strict=True)], "aaaaaa111111")
    same = cell("cnniqa", [v + 0.0005 * (-1) ** k for k, v in enumerate(REFERENCE)], "cccccc333333")
    for block, expected in (([reference, edge], "◇"), ([reference, same], "")):
        plain = compare_block(block, "lifeiqa_x")
        assert plain[0].marker == "" and plain[0].verdict == 0
        shares = stability(block, "lifeiqa_x", "srcc", RerunNoise({}, 0.006, "a stated sd"))
        [tested] = with_stability(plain, shares)
        assert tested.marker == expected, (tested.stability, expected)
        assert (tested.stability < 0.95) == bool(expected)
    note = stability_note(RerunNoise({}, 0.006, "a stated sd"), [tested], "srcc")
    assert "here 0 of 0 marker(s) and 0 of 1 unmarked comparison(s)" in note
    (verdict,) = verdict_note("lifeiqa_x", [reference, edge], with_stability(
        compare_block([reference, edge], "lifeiqa_x"), stability(
            [reference, edge], "lifeiqa_x", "srcc", RerunNoise({}, 0.006, "a stated sd"))), "srcc")
    assert "Not distinguishable from lifeiqa_x (Holm-adjusted): 1 (lifeiqa_x+no_moe (fragile))" in verdict


def test_rerun_noise_is_measured_per_cell_from_the_units_of_a_rerun():
    from harness.results.stability import measure_noise

    first = [cell("full", REFERENCE, "ffffff000000"), cell("cnniqa", REFERENCE, "bbbbbb222222")]
    shifts = [0.002, -0.002] * 5
    again = [cell("full", [r + s for r, s in zip(REFERENCE, shifts, strict=True)], "ffffff000000"),
             cell("cnniqa", REFERENCE, "bbbbbb222222")]
    noise = measure_noise(first, again, "a rerun")
    assert noise.by_cell[comparison_key(first[0])]["srcc"] == pytest.approx(0.002 / np.sqrt(2))
    assert noise.by_cell[comparison_key(first[1])]["srcc"] == 0.0
    assert noise.sd(cell("piqe", REFERENCE, "cccccc333333"), "srcc") is None


@pytest.mark.slow
def test_the_leaderboard_re_tests_its_markers_under_a_rerun_and_records_the_noise(tmp_path,
                                                                                   capsys):
    """``leaderboard --rerun``: the noise measured per cell goes into leaderboard.json (which
    still validates), every comparison carries its stability, and the notes say how. (The
    commands run in this process: ``tests/commands.py bench_here``.)"""
    import shutil

    from harness.reporting.leaderboard_format import read_leaderboard_document

    def bench(*args: str) -> subprocess.CompletedProcess[str]:
        return bench_here(capsys, *args)

    ran = bench("run", "--protocol", "comparison", "--synth-size", "tiny", "--splits", "3",
                "--models", "full,probe_stage3,piqe", "--model", "lifeiqa_tiny", "--set",
                "epochs=1", "--runs", str(tmp_path / "runs"), "--noise-units", "2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shutil.copytree(tmp_path / "runs", tmp_path / "again")  # a rerun that reproduced every bit
    board = tmp_path / "board"
    made = bench("leaderboard", "comparison", "--runs", str(tmp_path / "runs"), "--out", str(board),
                 "--rerun", str(tmp_path / "again" / "comparison"))
    assert made.returncode == 0, made.stderr
    document = read_leaderboard_document(board / "leaderboard.json")  # validates the schema
    noise = document["rerun_noise"]
    assert noise["source"].startswith("a rerun in") and len(noise["cells"]) == 3
    assert all(c["srcc"] == 0.0 and c["plcc"] == 0.0 for c in noise["cells"])
    for comparison in document["blocks"][0]["comparisons"]["srcc"]:
        assert comparison["stability"] in (None, 1.0)  # no noise: every marker is kept
        assert comparison["config_hash"] and comparison["reference_config_hash"]
    cells = document["blocks"][0]["cells"]
    assert all(set(c["per_unit"]) == set(c["units"]) for c in cells)
    text = (board / "leaderboard.md").read_text()
    assert "△/▽/◇: a SRCC verdict given again in fewer than 95% of 2000 re-tests" in text
    # the same noise from two boards of these units (here one board twice: zero everywhere)
    both = bench("leaderboard", "comparison", "--runs", str(tmp_path / "runs"), "--out",
                 str(tmp_path / "boards"), "--noise-boards", str(board / "leaderboard.json"),
                 str(board / "leaderboard.json"))
    assert both.returncode == 0, both.stderr
    from_boards = json.loads((tmp_path / "boards" / "leaderboard.json").read_text())["rerun_noise"]
    assert from_boards["source"].startswith("the same units on two boards") and \
        len(from_boards["cells"]) == 3 and all(c["srcc"] == 0.0 for c in from_boards["cells"])
    twice = bench("leaderboard", "comparison", "--runs", str(tmp_path / "runs"), "--out",
                  str(tmp_path / "x"), "--rerun", str(tmp_path / "again" / "comparison"),
                  "--noise-boards", str(board / "leaderboard.json"), str(board / "leaderboard.json"))
    assert twice.returncode == 2 and twice.stderr.strip().splitlines() == [
        "lifeiqa-bench leaderboard: error: --rerun and --noise-boards: give one source of rerun "
        "noise"]
    # without a rerun, the run's own noise reruns measure each cell (PIQE's, training-free, is
    # exact); every rerun repeats its unit on its split file under another seed and crops
    from harness.api import load_results
    from harness.plan.jobs import NOISE_SEED_OFFSET
    from harness.results.stability import rerun_sd

    results = load_results("comparison", tmp_path / "runs")
    assert len(results.units) == 9 and all(c.n == 3 for c in results.cells())
    primary = {(u.model.name, u.unit): u for u in results.units}
    assert sorted((r.model.name, r.unit) for r in results.noise_reruns) == [
        (model, f"split_0{k}-rerun") for model in ("lifeiqa_tiny", "probe_stage3") for k in (0, 1)]
    for rerun in results.noise_reruns:
        first = primary[(rerun.model.name, rerun.rerun_of)]
        assert rerun.config_hash == first.config_hash and rerun.split == first.split
        assert rerun.seeds.training == first.seeds.training + NOISE_SEED_OFFSET
    plain = bench("leaderboard", "comparison", "--runs", str(tmp_path / "runs"), "--out",
                  str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr
    measured = {c["model"]: c for c in read_leaderboard_document(
        tmp_path / "plain" / "leaderboard.json")["rerun_noise"]["cells"]}
    assert measured["piqe"]["source"] == "training-free: exact" and measured["piqe"]["srcc"] == 0
    for model in ("lifeiqa_tiny", "probe_stage3"):
        pairs = [(primary[(model, r.rerun_of)], r) for r in results.noise_reruns
                 if r.model.name == model]
        assert measured[model]["source"] == "2 seed reruns in the run"
        assert measured[model]["srcc"] == pytest.approx(rerun_sd(
            (a.metrics.srcc for a, _ in pairs), (b.metrics.srcc for _, b in pairs)))
    # the closed-form probe moves too: its rerun's training crops are another draw
    assert measured["probe_stage3"]["srcc"] > 0
    assert "| probe_stage3 | synth-kadid10k | " in plain.stdout and "**Rerun noise**" in plain.stdout
    # with no reruns at all, the notes say the verdicts were not re-tested
    shutil.copytree(tmp_path / "runs", tmp_path / "bare",
                    ignore=shutil.ignore_patterns("*-rerun"))
    bare = bench("leaderboard", "comparison", "--runs", str(tmp_path / "bare"), "--out",
                 str(tmp_path / "bare-board"))
    assert "verdicts were not re-tested under rerun noise" in bare.stdout
    assert json.loads((tmp_path / "bare-board" / "leaderboard.json").read_text())[
        "rerun_noise"] is None


def test_a_unit_that_failed_for_every_model_still_counts_in_its_column():
    """Every model's split_09 failed: the column should still have 10 units, so its cells read
    n=9/10, not a complete-looking n=9."""
    from harness.reporting.leaderboard import expected_units
    from harness.results.aggregate import cell_display, format_interval
    from harness.results.schema import config_hash

    nine = UNITS[:9]
    config = {"protocol": "comparison", "protocol_version": "1.0", "selection": "last",
              "train_dataset": "synth", "test_dataset": "synth"}
    conditions = {variant: {**config, "variant": variant} for variant in ("full", "cnniqa")}
    block = [cell(variant, REFERENCE[:9], config_hash(condition), nine)
             for variant, condition in conditions.items()]
    failures = [UnitFailure("s", c.model, "split_09", "failed", "out of memory",
                            {**conditions[c.model_ref.variant], "unit": "split_09",
                             "split_seed": 9, "seed": 9})
                for c in block]
    missing = gaps(block, failures)
    assert {g.unit for g in missing} == {"split_09"}
    assert expected_units(block, missing) == {"synth": 10}
    assert "n=9/10" in cell_display(format_interval(block[1].srcc), block[1].n,
                                    expected_units(block, missing)["synth"], "", False)
    assert expected_units(block) == {"synth": 9}  # without the failures: looks complete


def test_the_noise_between_the_two_hosts_boards_is_zero_where_they_agree_and_per_cell_elsewhere(
        tmp_path):
    """leaderboards/noise/: the demo's units on an AVX-512 and an AVX2-only host, unpinned."""
    from pathlib import Path

    from harness.errors import InvalidOptionError
    from harness.reporting.leaderboard import board_noise

    folder = Path(__file__).resolve().parent.parent / "leaderboards" / "noise"
    noise = board_noise(folder / "avx512-native.json", folder / "avx2-native.json")
    by_model: dict[str, list[float]] = {}
    for (model, _, _), sds in noise.by_cell.items():
        by_model.setdefault(model, []).append(sds["srcc"])
    assert by_model["piqe"] == [0.0]  # computed without the backbone: the same on both hosts
    assert 0.015 < max(by_model["lifeiqa_effnet_lite0_small"]) < 0.03  # trained: ~0.02
    assert 0 < max(by_model["probe_stage2"]) < 0.005  # closed form: small, not zero
    same = board_noise(folder / "avx2-native.json", folder / "avx2-native.json")
    assert set(same.by_cell) == set(noise.by_cell)
    assert all(sds == {"srcc": 0.0, "plcc": 0.0} for sds in same.by_cell.values())
    other = json.loads((folder / "avx2-native.json").read_text())
    for block in other["blocks"]:
        for cell in block["cells"]:
            for values in (cell["per_unit"] or {}).values():
                values["split_sha256_16"] = "0" * 16  # other split files: nothing to pair
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(InvalidOptionError, match="share no cell with units on the same split"):
        board_noise(folder / "avx2-native.json", tmp_path / "other.json")


def test_markers_are_holm_corrected_over_the_table_and_the_json_has_both_p_values(tmp_path):
    worse = [v - 0.2 for v in SIX_SPLITS]  # every split worse: exact two-sided p = 2 / 2**6
    results = series("full", SIX_SPLITS) + series("cnniqa", worse) + series("piqe", worse) \
        + series("no_moe", [v + 0.001 * (-1) ** k for k, v in enumerate(SIX_SPLITS)])
    comparisons = compare_block(aggregate(results), "lifeiqa_tiny")
    by_model = {c.model: c for c in comparisons}
    assert by_model["cnniqa"].p_raw == pytest.approx(0.03125)  # < 0.05: marked before Holm
    assert by_model["cnniqa"].p_holm == pytest.approx(3 * 0.03125)
    assert by_model["cnniqa"].family_size == 3 and by_model["cnniqa"].marker == ""
    text = render(results, None, [], "t")
    assert not [line for line in text.splitlines() if line.startswith("|") and "▼" in line]
    assert "family of the 3 comparison(s) of this table" in text

    path = write_results_leaderboard(results, tmp_path, tmp_path / "board", title="t")
    document = json.loads((path.parent / "leaderboard.json").read_text())
    (block,) = document["blocks"]
    assert block["adjustment"] == "Holm" and "one table" in block["family"]
    rows = {r["model"]: r for r in block["comparisons"]["srcc"]}
    assert rows["cnniqa"]["p_raw"] == pytest.approx(0.03125)
    assert rows["cnniqa"]["p_holm"] == pytest.approx(0.09375)

    alone = series("full", SIX_SPLITS) + series("cnniqa", worse)  # a family of one: marked
    row = next(line for line in render(alone, None, [], "t").splitlines()
               if line.startswith("| cnniqa"))
    assert row.rstrip(" |").endswith("n=6 ▼")


def test_tables_print_the_coverage_and_flag_intervals_under_95_percent():
    results = series("full", SIX_SPLITS[:3]) + series("cnniqa", SIX_SPLITS[:3])
    text = render(results, None, [], "t")
    assert "‡ n=3" in text and "n=3: the range, 75.0% ‡" in text
    ten = series("full", np.linspace(0.8, 0.9, 10))
    assert "n=10: x(2) to x(9), 97.9%" in render(ten, None, [], "t")


def test_every_cell_shows_n_and_missing_and_failed_units_are_named(tmp_path):
    store = ResultsStore(tmp_path)
    results = series("full", SIX_SPLITS[:3]) + series("no_moe", [0.7, 0.71])
    for result in results:
        stored(store, result)
    failed = unit("cnniqa", 0, 0.0)
    store.write_failure(failed.key, failed.config, "diverged",
                        "NonFiniteLossError: non-finite training loss in epoch 2")
    loaded = harness.load_results("s", tmp_path)
    assert [(f.model, f.unit, f.kind) for f in loaded.unit_failures] == [("cnniqa", "split_00", "diverged")]
    board = harness.leaderboard(loaded, tmp_path / "board", published=None).read_text()
    row = next(line for line in board.splitlines() if line.startswith("| lifeiqa_tiny+no_moe"))
    assert "n=2/3" in row
    assert "lifeiqa_tiny+no_moe on synth-kadid10k: 1 unit(s) without a result, counted as " \
           "failures: split_02 (missing (no result))" in board
    assert "cnniqa on synth-kadid10k: 3 unit(s) without a result" in board
    assert "split_00 (diverged: NonFiniteLossError: non-finite training loss in epoch 2)" in board
    assert "split_01 (missing (no result))" in board
    assert "(diverged: NonFiniteLossError" in loaded.markdown()
    stored(store, failed)  # a later success clears the record
    assert store.failures("s") == []


def test_the_reference_is_the_runs_life_iqa_preset_never_a_baseline(tmp_path, capsys):
    results = series("cnniqa", SIX_SPLITS) + series("full", SIX_SPLITS) + series("no_moe", SIX_SPLITS)
    cells = aggregate(results)
    assert reference_model(cells) == "lifeiqa_tiny"
    assert reference_model(aggregate(series("cnniqa", SIX_SPLITS))) is None
    two = cells + aggregate(series("full", SIX_SPLITS[:2], preset="lifeiqa_effnet_lite0"))
    assert reference_model(two) == "lifeiqa_tiny"  # the preset most units ran under
    suite_folder(tmp_path, "s", results)
    loaded = harness.load_results("s", tmp_path)
    assert "p vs lifeiqa_tiny" in loaded.markdown()
    with pytest.raises(UnknownNameError, match="unknown reference model 'lifeiqa'"):
        loaded.markdown("lifeiqa")
    assert cli.main(["summarize", "s", "--runs", str(tmp_path), "--reference", "cnn"]) == 2
    assert "did you mean cnniqa" in capsys.readouterr().err
