"""Numbers a reviewer would sign (issue 13): one cell per condition, selection oriented like the
training labels, multiplicity-corrected markers, intervals with their exact coverage, every
missing or failed unit named, a strict `check`, the Life-IQA reference, which PLCC, and tables
that name no machine's paths."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

import harness
from harness import cli
from harness.api import Results
from harness.errors import DuplicateUnitError, PairingError, UnknownNameError
from harness.plan.jobs import Job
from harness.reporting.check import check_suite, write_golden
from harness.reporting.golden import load_golden
from harness.reporting.leaderboard import reference_model, render, write_results_leaderboard
from harness.reporting.published import load_published
from harness.results import metrics
from harness.results.aggregate import aggregate, compare_block, markdown_tables
from harness.results.schema import Environment, ProtocolRef, Seeds, SplitInfo, UnitResult
from harness.results.store import ResultsStore

V1 = Path(__file__).parent / "fixtures" / "results-v1"
ENVIRONMENT = Environment("abc", False, "3.11", "2.x", "1.0", "2.0", "0.1", "h", "Linux", None)


def unit(variant: str, k: int, srcc: float, *, dataset: str = "synth-kadid10k",
         fraction: float = 1.0, suite: str = "s", protocol: str = "splits",
         selection: str = "last", epochs: int = 3, split_hash: str | None = None,
         preset: str = "lifeiqa_tiny", plcc: float | None = None) -> UnitResult:
    """A unit result as the runner writes one (config included), with chosen scores."""
    name = f"split_{k:02d}" + (f"-frac{fraction:g}" if fraction < 1 else "")
    config = {"protocol": protocol, "protocol_version": "1.0", "kind": "splits",
              "preset": preset, "variant": variant, "train_dataset": dataset,
              "test_dataset": dataset, "unit": name, "split_seed": k, "seed": k,
              "train_fraction": fraction, "test_fraction": 0.2, "validation_fraction": 0.0,
              "selection": selection, "breakdown": "none", "recipe": {"epochs": epochs}}
    plcc = srcc if plcc is None else plcc
    return UnitResult(
        suite=suite, protocol=ProtocolRef(protocol, "1.0"), preset=preset, variant=variant,
        train_dataset=dataset, test_dataset=dataset, unit=name, selection=selection,
        selected_epoch=epochs, selection_note="",
        metrics=metrics.Scores(srcc, srcc, plcc, plcc, 0.1, 50), per_distortion={},
        split=SplitInfo(f"/home/someone/runs/{suite}/splits/{dataset}/split_{k:02d}.json",
                        split_hash or f"{k:016x}", 100, 25, 0),
        seeds=Seeds(k, k), config=config, model_config={}, data={}, exclusions=(), history=(),
        device="cpu", world_size=1, environment=ENVIRONMENT, wall_seconds=1.0)


def stored(store: ResultsStore, result: UnitResult) -> UnitResult:
    """``result`` written to ``store`` with files that agree with it, as the runner leaves
    them: a split file (one per suite, dataset and split, whatever the model) with the hash the
    unit records, and a prediction for each of its ``metrics.n`` test images."""
    import hashlib
    import json

    split = store.root / result.split_name
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text(json.dumps({"stands_for": result.split_name}))
    digest = hashlib.sha256(split.read_bytes()).hexdigest()[:16]
    result = replace(result, split=replace(result.split, sha256_16=digest))
    rows = [{"image_id": f"i{i}.png", "group": f"g{i}", "distortion": "", "level": "",
             "score": i, "prediction": i} for i in range(result.metrics.n)]
    store.write(result.key, result, rows)
    return result


def series(variant: str, values, **kwargs) -> list[UnitResult]:
    return [unit(variant, k, v, **kwargs) for k, v in enumerate(values)]


REFERENCE = [0.80, 0.82, 0.79, 0.85, 0.81, 0.83]


# --- 1. the aggregation key ---------------------------------------------------------------------


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


# --- 2. selection oriented like the training labels ---------------------------------------------


def _noise_images(folder: Path, count: int, name=lambda k: f"{k:04d}.png") -> list[tuple[str, float]]:
    """Blocky content plus Gaussian noise of rising strength: (file name, noise sigma)."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(count):
        content = np.kron(rng.uniform(40, 215, (4, 4, 3)), np.ones((56, 56, 1)))
        sigma = 60.0 * k / (count - 1)
        pixels = np.clip(content + rng.normal(0, sigma, content.shape), 0, 255).astype(np.uint8)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name(k))
        out.append((name(k), sigma))
    return out


def write_mos_and_dmos_sets(root: Path) -> tuple[Path, Path]:
    """A KonIQ-10k release (MOS, higher is better) and a CSIQ pyiqa layout (DMOS in [0, 1],
    lower is better) of noise images whose quality falls with the noise."""
    koniq = root / "koniq"
    rows = [[name, 0, 0, 0, 0, 0, 0, round(1 + (100 - 1.5 * s) / 25, 3), 0.5, round(100 - 1.5 * s, 3)]
            for name, s in _noise_images(koniq / "1024x768", 48)]
    with open(koniq / "koniq10k_scores_and_distributions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                         "MOS_zscore"])
        writer.writerows(rows)
    csiq = root / "csiq"
    images = _noise_images(csiq / "CSIQ" / "dst_imgs", 24, lambda k: f"ref{k % 6}.AWGN.{k // 6 + 1}.png")
    (csiq / "meta_info").mkdir(parents=True)
    with open(csiq / "meta_info" / "meta_info_CSIQDataset.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref_name", "dist_name", "dmos"])
        writer.writerows([[f"ref{k % 6}.png", name, round(s / 60, 4)]
                          for k, (name, s) in enumerate(images)])
    return koniq, csiq


def test_oracle_selection_on_a_mos_to_dmos_pair_selects_the_best_epoch(tmp_path):
    koniq, csiq = write_mos_and_dmos_sets(tmp_path / "data")
    protocol = tmp_path / "pair.yaml"
    protocol.write_text("name: pair\nversion: '1'\nkind: cross-dataset\nseeds: 1\n"
                        "pairs: [[koniq10k, csiq]]\nvariants: [full]\n")
    results = harness.evaluate(
        str(protocol), runs=str(tmp_path / "runs"), model="lifeiqa_tiny", recipe="cpu_demo",
        dataset_roots={"koniq10k": str(koniq), "csiq": str(csiq)}, device="cpu",
        selection="oracle", allow_oracle=True,
        overrides={"epochs": 4, "label_scale": "native", "batch_size": 8, "lr": 3e-3})
    assert not results.failed, results.failed
    (result,) = results.units
    history = [entry["test_srcc"] for entry in result.history]
    assert len(set(np.round(history, 6))) > 1, "the epochs should differ"
    # the selected epoch is the one that agrees best with the DMOS labels, oriented as quality
    assert result.selected_epoch == int(np.argmax(history)) + 1
    assert result.metrics.srcc == pytest.approx(history[result.selected_epoch - 1], abs=1e-9)
    assert result.metrics.srcc == pytest.approx(max(history), abs=1e-9)


# --- 3. multiplicity ------------------------------------------------------------------------------


def test_holm_adjustment_matches_its_definition():
    raw = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x, made monotone
    assert metrics.holm(raw) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert metrics.holm([0.5, 0.9]) == [1.0, 1.0]
    assert metrics.holm([]) == []


def test_markers_are_holm_corrected_over_the_table_and_the_json_has_both_p_values(tmp_path):
    worse = [v - 0.2 for v in REFERENCE]  # every split worse: exact two-sided p = 2 / 2**6
    results = series("full", REFERENCE) + series("cnniqa", worse) + series("piqe", worse) \
        + series("no_moe", [v + 0.001 * (-1) ** k for k, v in enumerate(REFERENCE)])
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

    alone = series("full", REFERENCE) + series("cnniqa", worse)  # a family of one: marked
    row = next(line for line in render(alone, None, [], "t").splitlines()
               if line.startswith("| cnniqa"))
    assert row.rstrip(" |").endswith("n=6 ▼")


# --- 4. intervals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n, j, coverage", [(10, 2, 1 - 22 / 1024), (6, 1, 1 - 2 / 64),
                                            (5, 1, 1 - 2 / 32), (3, 1, 0.75), (20, 6, None)])
def test_the_median_interval_is_an_order_statistic_interval_with_its_exact_coverage(n, j, coverage):
    values = np.random.default_rng(n).normal(size=n)
    summary = metrics.summarize(values)
    ordered = np.sort(values)
    assert (summary.ci_low, summary.ci_high) == (ordered[j - 1], ordered[n - j])
    exact = stats.binom.cdf(n - j, n, 0.5) - stats.binom.cdf(j - 1, n, 0.5)
    assert summary.coverage == pytest.approx(exact)
    if coverage is not None:
        assert summary.coverage == pytest.approx(coverage)
    assert summary.interval_is_short == (n < 6)


def test_tables_print_the_coverage_and_flag_intervals_under_95_percent():
    results = series("full", REFERENCE[:3]) + series("cnniqa", REFERENCE[:3])
    text = render(results, None, [], "t")
    assert "‡ n=3" in text and "n=3: the range, 75.0% ‡" in text
    ten = series("full", np.linspace(0.8, 0.9, 10))
    assert "n=10: x(2) to x(9), 97.9%" in render(ten, None, [], "t")


# --- 5. n, missing and failed units, pairing -------------------------------------------------------


def test_every_cell_shows_n_and_missing_and_failed_units_are_named(tmp_path):
    store = ResultsStore(tmp_path)
    results = series("full", REFERENCE[:3]) + series("no_moe", [0.7, 0.71])
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


def test_the_runner_records_a_diverged_unit(tmp_path):
    from harness.data.sources import DataSources
    from harness.engine.runner import JobRunner
    from harness.engine.train import NonFiniteLossError
    from harness.plan.models import ModelRef
    from harness.plan.recipes import get_recipe
    from harness.results.schema import config_hash

    job = Job("s", "splits", "1.0", "splits", ModelRef("lifeiqa_tiny", "full"), "synth-kadid10k",
              "synth-kadid10k", "split_00", 0, 0, 1.0, 0.2, 0.0, "last", "none",
              get_recipe("cpu_demo"))
    runner = JobRunner(ResultsStore(tmp_path / "runs"), DataSources(), device="cpu",
                       log=lambda _: None)
    runner.record_failure(job, NonFiniteLossError("non-finite training loss in epoch 1"), "boom")
    runner.record_failure(job.__class__(**{**job.__dict__, "unit": "split_01", "split_seed": 1}),
                          ValueError("bad file"), "ValueError: bad file")
    failures = ResultsStore(tmp_path / "runs").failures("s")
    assert [(f.kind, f.model, f.unit, f.message) for f in failures] == [
        ("diverged", "lifeiqa_tiny", "split_00", "boom"),
        ("failed", "lifeiqa_tiny", "split_01", "ValueError: bad file")]
    assert failures[0].config_hash == failures[1].config_hash == config_hash(job.config())


def test_pairs_are_matched_on_the_split_file_too():
    results = series("full", REFERENCE) + [unit("cnniqa", k, v, split_hash="e" * 16 if k == 3 else None)
                                           for k, v in enumerate(REFERENCE)]
    with pytest.raises(PairingError, match="unit split_03, but on different split files"):
        compare_block(aggregate(results), "lifeiqa_tiny")


# --- 6. check ---------------------------------------------------------------------------------------


def _suite(root: Path, name: str, results: list[UnitResult]) -> Path:
    store = ResultsStore(root)
    for result in results:
        file = result.split.file.replace(f"/{result.suite}/splits/", f"/{name}/splits/")
        stored(store, replace(result, suite=name, split=replace(result.split, file=file)))
    return root / name


def test_check_is_two_sided_for_golden_rows_and_one_sided_for_published_rows(tmp_path):
    golden = tmp_path / "golden.yaml"
    write_golden(_suite(tmp_path / "runs", "ref", series("full", REFERENCE)), golden)
    entry = load_golden(golden).entries[0]
    assert entry.units == 6 and entry.plcc_kind == "raw"
    assert entry.split_files[0]["file"] == "ref/splits/synth-kadid10k/split_00.json"
    better = _suite(tmp_path / "runs", "better", series("full", [v + 0.1 for v in REFERENCE]))
    report = check_suite(better, golden)
    (row,) = report.rows
    assert row.verdict == "FAIL" and "suspicious" in row.note and row.two_sided
    assert not report.passed and "golden (measured) rows two-sided" in report.text()
    assert "| PLCC (raw / raw) " in check_suite(better, golden, metric="both").text()
    published = yaml_file(tmp_path / "published.yaml", entry_from(entry))
    assert check_suite(better, published).passed  # beating a paper is fine
    worse = _suite(tmp_path / "runs", "worse", series("full", [v - 0.1 for v in REFERENCE]))
    assert not check_suite(worse, published).passed


def test_check_fails_a_selection_mismatch_and_too_few_units(tmp_path):
    golden = tmp_path / "golden.yaml"
    write_golden(_suite(tmp_path / "runs", "ref", series("full", REFERENCE)), golden)
    oracle = golden_with(golden, tmp_path / "oracle.yaml", selection="oracle")
    same = tmp_path / "runs" / "ref"
    report = check_suite(same, oracle)
    assert not report.passed and "selection last epoch vs the reference's test-oracle" in report.rows[0].note
    allowed = check_suite(same, oracle, allow_selection_mismatch=True)
    assert allowed.passed and any("biased towards the reference" in w for w in allowed.warnings)
    fewer = _suite(tmp_path / "runs", "fewer", series("full", REFERENCE[:4]))
    (row,) = check_suite(fewer, golden).rows
    assert row.verdict == "FAIL" and "4 unit(s), fewer than the 6 required" in row.note
    assert "median over 6 unit(s) / median over 4 unit(s)" in check_suite(fewer, golden).text()
    assert not check_suite(same, golden, min_units=8).passed
    assert check_suite(same, golden).passed
    assert cli.main(["check", str(same), "--against", str(oracle)]) == 1
    assert cli.main(["check", str(same), "--against", str(oracle), "--allow-selection-mismatch"]) == 0
    assert cli.main(["check", str(same), "--against", str(golden), "--min-units", "7"]) == 1


def entry_from(entry) -> dict:
    """A published row (checked against a paper) of a golden entry's cell and figures."""
    return {"model": entry.model, "harness_models": list(entry.harness_models),
            "dataset": entry.dataset, "protocol": entry.protocol,
            "protocol_version": entry.protocol_version, "metrics": dict(entry.metrics),
            "tolerance": dict(entry.tolerance), "units": entry.units, "selection": entry.selection,
            "aggregation": entry.aggregation, "provenance": "checked",
            "source": {"paper": "P", "arxiv": "1"}}


def golden_with(golden: Path, path: Path, **changes) -> Path:
    """A copy of a golden file with its first entry changed."""
    import yaml

    document = yaml.safe_load(golden.read_text())
    document["entries"][0].update(changes)
    path.write_text(yaml.safe_dump(document))
    return path


def yaml_file(path: Path, *entries: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, "entries": list(entries)}))
    return path


# --- 7. the reference --------------------------------------------------------------------------------


def test_the_reference_is_the_runs_life_iqa_preset_never_a_baseline(tmp_path, capsys):
    results = series("cnniqa", REFERENCE) + series("full", REFERENCE) + series("no_moe", REFERENCE)
    cells = aggregate(results)
    assert reference_model(cells) == "lifeiqa_tiny"
    assert reference_model(aggregate(series("cnniqa", REFERENCE))) is None
    two = cells + aggregate(series("full", REFERENCE[:2], preset="lifeiqa_effnet_lite0"))
    assert reference_model(two) == "lifeiqa_tiny"  # the preset most units ran under
    _suite(tmp_path, "s", results)
    loaded = harness.load_results("s", tmp_path)
    assert "p vs lifeiqa_tiny" in loaded.markdown()
    with pytest.raises(UnknownNameError, match="unknown reference model 'lifeiqa'"):
        loaded.markdown("lifeiqa")
    assert cli.main(["summarize", "s", "--runs", str(tmp_path), "--reference", "cnn"]) == 2
    assert "did you mean cnniqa" in capsys.readouterr().err


# --- 8 and 9. which PLCC; no absolute paths ---------------------------------------------------------


def test_tables_say_which_plcc_and_published_rows_record_the_authors_rule():
    results = series("full", REFERENCE)
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
    assert "/home/" not in render(series("full", REFERENCE), None, [], "t")


# --- 10. the statistical self-test --------------------------------------------------------------
# In tests/test_stats_selftest.py. The self-test used to run a vectorised copy of the signed-rank
# test (checked against paired_wilcoxon here) and pinned its own figures at a reduced size; it
# now runs the leaderboard's own path (aggregate, compare_block, paired_wilcoxon, holm, the
# markers) with a bound per figure and an exit status, so its tests are that it passes at CI's
# size and fails when Holm is replaced by Bonferroni or the interval is off by one.
