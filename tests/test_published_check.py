"""Published scores and regression checks: the shipped reference files (the papers' numbers, and
pyiqa's own benchmark figures read from its CSV files), schema errors, reference rows for any
model and protocol, and golden files written from real tiny suites (a trained one that passes its
own rerun and fails a degraded one; a zero-shot pyiqa one under a protocol file outside
protocols/) that load back."""

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from commands import bench, start_bench
from dataset_fixtures import write_noise_koniq
from unit_results import SIX_SPLITS, series, suite_folder

from harness import cli
from harness.reporting.check import check_suite, write_golden
from harness.reporting.golden import golden_tolerance, load_golden
from harness.reporting.published import (
    PUBLISHED_FILE,
    PYIQA_FILE,
    load_published,
    parse_published,
)
from harness.reporting.reference import PublishedFileError

IMAGES = 80
# A recipe the tiny random-backbone model learns on the noise-level data below in seconds; the
# auxiliary losses stay at the authors' weights. OMP_NUM_THREADS=1 (below) keeps torch from
# oversubscribing a small shared CPU, which otherwise slows these runs tenfold.
RUN = ["run", "--protocol", "splits", "--datasets", "koniq10k", "--recipe", "cpu_demo",
       "--device", "cpu", "--splits", "3", "--model", "lifeiqa_tiny", "--set", "batch_size=8",
       "--set", "lr=3e-3", "--set", "label_scale='unit'"]
GOOD = ["--set", "epochs=20"]
DEGRADED = ["--set", "epochs=1", "--set", "lr=0.0"]  # the model as initialised: never trained


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two suites on the same splits: ``good`` (trained) and ``degraded`` (untrained), run
    side by side as a user would."""
    base = tmp_path_factory.mktemp("check")
    data = write_noise_koniq(base / "koniq", IMAGES)
    common = [*RUN, "--runs", str(base / "runs"), "--dataset-root", f"koniq10k={data}"]
    processes = [start_bench(*common, "--suite", suite, *extra, env={"OMP_NUM_THREADS": "1"})
                 for suite, extra in (("good", GOOD), ("degraded", DEGRADED))]
    for process in processes:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output[-3000:]
    return base / "runs"


def test_shipped_published_file_validates_and_every_row_has_a_source(capsys):
    reference = load_published()
    assert reference.path == str(PUBLISHED_FILE)
    entries = reference.entries
    assert len(entries) == 29  # every number of docs/design.md section 6, no more
    for entry in entries:
        assert entry.provenance == "second-hand"
        assert entry.source["arxiv"] == "2511.19024" and entry.source["url"].startswith("https://arxiv")
        assert entry.source["paper"].startswith("Life-IQA") and entry.source["table"]
    by_key = {(e.model, e.label, e.protocol): e for e in entries}
    assert by_key["Life-IQA", "csiq", "splits"].metrics == {"srcc": 0.966, "plcc": 0.971}
    # the authors' reporting rule (best test-SRCC epoch, running-maximum PLCC): docs/design.md section 3
    assert by_key["Life-IQA", "csiq", "splits"].selection == "authors"
    assert by_key["Life-IQA", "koniq10k -> tid2013", "cross-dataset"].metrics == {"srcc": 0.453,
                                                                                  "plcc": 0.578}
    assert by_key["Life-IQA, no MoE", "kadid10k", "ablation"].metrics == {"srcc": 0.920}
    assert "lifeiqa_swin_b_csiq+no_moe" in by_key["Life-IQA, no MoE", "csiq", "ablation"].harness_models
    deiqt = [e for e in entries if e.model == "DEIQT"]
    assert len(deiqt) == 7 and all(e.params == "24M" and not e.harness_models for e in deiqt)
    assert sum(e.protocol == "ablation" for e in entries) == 14

    assert cli.main(["published"]) == 0
    text = capsys.readouterr().out
    assert "### cross-dataset" in text and "| Life-IQA | koniq10k -> live" in text
    assert "second-hand" in text and "arXiv 2511.19024" in text and "test-oracle" in text
    assert cli.main(["published", "--dataset", "csiq", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert {r["dataset"] or r["test"] for r in rows} == {"csiq"}
    papers = [r for r in rows if r["paper"]]
    assert {r["model"] for r in papers} >= {"Life-IQA", "DEIQT", "Life-IQA, GCN -> MHA"}
    assert all(r["provenance"] == "second-hand" for r in rows)
    # the rest are pyiqa's full-reference figures on CSIQ, each with its repository source
    others = [r for r in rows if not r["paper"]]
    assert others and all(r["model"].startswith("pyiqa:") and r["full_reference"] == "yes"
                          and r["repository"] == "chaofengc/IQA-PyTorch" for r in others)
    assert len(papers) == sum("csiq" in e.datasets for e in entries)


VALID = {"model": "Life-IQA", "harness_models": ["lifeiqa_swin_b"], "dataset": "csiq",
         "protocol": "splits", "metrics": {"srcc": 0.9}, "selection": "oracle",
         "provenance": "second-hand", "source": {"paper": "P", "arxiv": "1"}}


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("source"), "entries[1] (Life-IQA): source: missing"),
    (lambda e: e["source"].pop("arxiv"), "entries[1] (Life-IQA): source: expected 'paper' and one of"),
    (lambda e: e["metrics"].update(srcc=1.2), "entries[1] (Life-IQA): metrics.srcc: 1.2: expected a "
                                              "number in [-1, 1]"),
    (lambda e: e["metrics"].update(rmse=0.5), "metrics.rmse: unknown metric"),
    (lambda e: e["metrics"].update(krcc="high"), "metrics.krcc: 'high': expected a number in [-1, 1]"),
    (lambda e: e.update(dataset=7), "dataset: expected a dataset name, found 7"),
    (lambda e: e.pop("dataset"), "dataset, pair: give either 'dataset' (one dataset) or 'pair'"),
    (lambda e: e.update(protocol=""), "protocol: expected a non-empty protocol name"),
    (lambda e: e.update(model="  "), "model: expected a non-empty model name"),
    (lambda e: e.update(pair=["koniq10k", "csiq"]), "pair: give either 'dataset' (one dataset) or "
                                                    "'pair' ([train, test]), not both"),
    (lambda e: (e.pop("dataset"), e.update(pair=["koniq10k"])), "pair: expected [train, test]"),
    (lambda e: e.update(harness_models=["lifeiqa_swin_b+no_attention"]), "unknown ablation 'no_attention'"),
    (lambda e: e.update(harness_models="pyiqa:niqe"), "harness_models: expected a list"),
    (lambda e: e.update(evaluated_on="half"), "evaluated_on: 'half': expected one of"),
    (lambda e: e.update(full_reference="yes"), "full_reference: expected true or false"),
    (lambda e: e.update(source={"repository": "r", "path": "p"}),
     "source: expected 'paper' and one of 'arxiv' or 'url' (a publication), "
     "or 'repository', 'path' and 'commit'"),
    (lambda e: e.update(selection="best"), "selection: 'best': expected one of"),
    (lambda e: e.update(tolerance=-0.1), "tolerance: -0.1: expected a number in [0, 2]"),
    (lambda e: e.update(colour="red"), "colour: unknown field"),
])
def test_bad_entries_name_the_entry_and_field(change, message):
    broken = copy.deepcopy(VALID)
    change(broken)
    with pytest.raises(PublishedFileError) as error:
        parse_published({"version": 1, "entries": [VALID, broken]}, "ref.yaml")
    assert str(error.value).startswith("ref.yaml: ")
    assert message in str(error.value)


def test_bad_files_are_reported_and_the_check_cannot_run(tmp_path, capsys):
    with pytest.raises(PublishedFileError, match="version: expected 1, found 2"):
        parse_published({"version": 2, "entries": [VALID]}, "ref.yaml")
    with pytest.raises(PublishedFileError, match="entries: expected a non-empty list"):
        parse_published({"version": 1, "entries": []}, "ref.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nentries: [ {model: x\n")
    with pytest.raises(PublishedFileError, match=f"{broken}: not valid YAML"):
        load_published(broken)
    assert cli.main(["published", "--file", str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    assert cli.main(["check", str(tmp_path / "runs" / "empty"), "--against", str(PUBLISHED_FILE)]) == 2
    assert "no result.json under this folder" in capsys.readouterr().err
    assert cli.main(["check", str(tmp_path), "--against", str(PUBLISHED_FILE), "--tolerance", "-1"]) == 2
    assert "--tolerance -1: expected a value in [0, 2]" in capsys.readouterr().err


def test_golden_tolerance_rule():
    assert golden_tolerance(0.0, 10) == 0.005  # identical units: the float-noise floor
    assert golden_tolerance(0.05, 1) == 0.005  # one unit: no spread measured
    # 3 * sqrt(2) * sqrt(pi/2) * 0.02 / sqrt(10) = 0.03363..., rounded up to 0.034
    assert golden_tolerance(0.02, 10) == 0.034
    assert golden_tolerance(0.02, 10, k=2.0) == 0.023


def test_the_spread_rule_alarms_rarely_on_a_clean_rerun_that_came_out_like_a_fresh_seed():
    """The worst clean rerun the rule allows for: every unit as if trained with a fresh seed, so
    the golden median and the rerun's are two independent medians of n noisy units; the check
    is two-sided. The rule's false-alarm rate is about 0.3 % per row (s estimated from the
    golden units); the earlier rule (2 standard errors of ONE median) alarmed on ~16 %."""
    rng = np.random.default_rng(0)
    trials, units, sd = 20000, 10, 0.02
    golden = rng.normal(0.8, sd, (trials, units))
    rerun = rng.normal(0.8, sd, (trials, units))
    shift = np.abs(np.median(rerun, axis=1) - np.median(golden, axis=1))
    spread = golden.std(axis=1, ddof=1)

    def alarms(tolerance) -> float:
        return float(np.mean(shift > np.vectorize(tolerance)(spread)))

    assert alarms(lambda s: golden_tolerance(s, units)) < 0.01
    old = lambda s: max(0.005, 2 * np.sqrt(np.pi / 2) * s / np.sqrt(units))  # noqa: E731
    assert alarms(old) > 0.10


@pytest.mark.slow
def test_golden_passes_its_rerun_and_a_degraded_run_fails(runs, tmp_path, capsys):
    golden = tmp_path / "golden.yaml"
    assert cli.main(["check", str(runs / "good"), "--write-golden", str(golden)]) == 0
    reference = load_golden(golden)
    (entry,) = reference.entries
    assert (entry.model, entry.dataset, entry.protocol, entry.protocol_version) == \
        ("lifeiqa_tiny", "koniq10k", "splits", "1.0")
    assert entry.provenance == "measured" and entry.selection == "last" and entry.units == 3
    assert "git_commit" in entry.source and entry.source["suite"] == "good"
    assert [f["unit"] for f in entry.split_files] == ["split_00", "split_01", "split_02"]
    # split files are named relative to the runs folder
    assert all(len(f["sha256_16"]) == 16 and (runs / f["file"]).is_file() for f in entry.split_files)
    assert entry.tolerance["srcc"] == golden_tolerance(entry.spread["srcc_std"], 3)
    assert entry.metrics["srcc"] > 0.6, "the tiny model should learn the noise level"
    capsys.readouterr()

    report = tmp_path / "rerun.json"
    assert cli.main(["check", str(runs / "good"), "--against", str(golden), "--metric", "both",
                     "--require-all", "--report", str(report)]) == 0
    rerun = json.loads(report.read_text())
    assert rerun["passed"] and rerun["counts"] == {"PASS": 2, "FAIL": 0, "MISSING": 0, "N/A": 0}
    assert all(r["delta"] == pytest.approx(0, abs=1e-6) and r["note"] == "" for r in rerun["rows"])
    assert rerun["warnings"] == []

    # per-unit golden rows note each comparison, which is no sign of other splits; a changed
    # split file is, and draws the warning
    per_unit = tmp_path / "per-unit.yaml"
    assert cli.main(["check", str(runs / "good"), "--write-golden", str(per_unit),
                     "--rerun", str(runs / "good")]) == 0
    assert cli.main(["check", str(runs / "good"), "--against", str(per_unit),
                     "--report", str(report)]) == 0
    rerun = json.loads(report.read_text())
    assert "3 units within" in rerun["rows"][0]["note"] and rerun["warnings"] == []
    assert rerun["rows"][0]["failed_by"] == []
    moved = yaml.safe_load(per_unit.read_text())
    moved["entries"][0]["split_files"][1]["srcc"] += 0.5  # one unit's golden value far off
    shifted = tmp_path / "shifted.yaml"
    shifted.write_text(yaml.safe_dump(moved))
    assert cli.main(["check", str(runs / "good"), "--against", str(shifted), "--report",
                     str(report)]) == 1
    (row,) = json.loads(report.read_text())["rows"]
    assert row["verdict"] == "FAIL" and row["failed_by"] == ["unit_moved"], row
    assert row["note"].startswith("unit split_01 moved -0.5")
    moved["entries"][0]["split_files"][1]["srcc"] -= 0.5
    moved["entries"][0]["split_files"][0]["sha256_16"] = "0" * 16
    per_unit.write_text(yaml.safe_dump(moved))
    cli.main(["check", str(runs / "good"), "--against", str(per_unit), "--report", str(report)])
    rerun = json.loads(report.read_text())
    assert rerun["rows"][0]["split_mismatch"] == "split file differs on 1 unit(s), e.g. split_00"
    assert any("other units or split files" in w for w in rerun["warnings"])

    report = tmp_path / "degraded.json"
    degraded = bench("check", str(runs / "degraded"), "--against", str(golden), "--report", str(report))
    assert degraded.returncode == 1, degraded.stdout + degraded.stderr
    assert "FAIL" in degraded.stdout and "-> FAILED" in degraded.stdout
    failed = json.loads(report.read_text())
    assert not failed["passed"] and failed["counts"]["FAIL"] == 1
    (row,) = failed["rows"]
    assert row["verdict"] == "FAIL" and row["reproduced_as"] == "lifeiqa_tiny"
    assert "shortfall" in row["failed_by"]
    assert row["reproduced"] < entry.metrics["srcc"] - entry.tolerance["srcc"]  # a real drop

    # A row's own tolerance overrides the default; an oracle reference fails unless the
    # mismatch is allowed, and then draws the bias warning.
    lenient = yaml.safe_load(golden.read_text())
    lenient["entries"][0].update(tolerance=2.0, selection="oracle")
    lenient_path = tmp_path / "lenient.yaml"
    lenient_path.write_text(yaml.safe_dump(lenient))
    assert cli.main(["check", str(runs / "degraded"), "--against", str(lenient_path)]) == 1
    capsys.readouterr()
    assert cli.main(["check", str(runs / "degraded"), "--against", str(lenient_path),
                     "--allow-selection-mismatch"]) == 0
    out = capsys.readouterr().out
    assert "test-oracle / last epoch" in out and "biased towards the reference" in out


@pytest.mark.slow
def test_published_rows_without_a_reproduction_are_missing(runs, tmp_path, capsys):
    report = tmp_path / "published.json"
    assert cli.main(["check", str(runs / "good"), "--against", str(PUBLISHED_FILE),
                     "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    # every row has an SRCC
    assert result["counts"] == {"PASS": 0, "FAIL": 0, "MISSING": 29, "N/A": 0}
    assert "no reference entry matched" in capsys.readouterr().out
    assert cli.main(["check", str(runs / "good"), "--against", str(PUBLISHED_FILE),
                     "--require-all"]) == 1



# --- reference rows for any model and protocol; pyiqa's own figures -------------------------------

PYIQA_FOLDER = PYIQA_FILE.parent
PYIQA_SOURCE = {"repository": "chaofengc/IQA-PyTorch",
                "commit": "01ae427f9afd66842031d3a7cb694dcad5b5cbb8"}


def csv_cells(path: Path) -> dict[tuple[str, str], list[str]]:
    """(metric, dataset column) -> the cell's figures as written, for every non-empty cell."""
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return {(row[0], title.split("(")[0]): cell.split("/")
            for row in rows for title, cell in zip(header[1:], row[1:], strict=True) if cell}


def test_bundled_pyiqa_rows_carry_their_source_and_the_csv_figures_unaltered(capsys):
    reference = load_published(PYIQA_FILE)
    entries = reference.entries
    for kind, path in (("NR", "tests/NR_benchmark_results.csv"),
                       ("FR", "tests/FR_benchmark_results.csv")):
        copy = PYIQA_FOLDER / f"pyiqa_{kind}_benchmark_results.csv"
        cells = csv_cells(copy)
        rows = [e for e in entries if e.source["path"] == path]
        # one entry per non-empty cell: an empty cell is no entry, and no cell is left out
        assert len(rows) == len(cells) and len(cells) > 50
        for entry in rows:
            assert entry.source["repository"] == PYIQA_SOURCE["repository"]
            assert entry.source["commit"] == PYIQA_SOURCE["commit"]
            assert entry.source["url"].endswith(f"/{PYIQA_SOURCE['commit']}/{path}")
            assert entry.source["copy"] == f"leaderboards/pyiqa/{copy.name}"
            assert entry.provenance == "second-hand" and entry.selection == "none"
            assert entry.plcc_kind == "raw" and entry.model == "pyiqa:" + entry.source["row"]
            plcc, srcc, krcc = cells[entry.source["row"], entry.source["column"].split("(")[0]]
            assert entry.metrics == {"plcc": float(plcc), "srcc": float(srcc), "krcc": float(krcc)}
            assert entry.full_reference == (kind == "FR")
    by_key = {(e.model, e.dataset): e for e in entries}
    # a few cells read here by hand from the CSV files, as a user would check them
    nr = csv_cells(PYIQA_FOLDER / "pyiqa_NR_benchmark_results.csv")
    assert by_key["pyiqa:niqe", "livec"].metrics["srcc"] == float(nr["niqe", "livec"][1])
    assert by_key["pyiqa:dbcnn", "koniq10k"].metrics["plcc"] == float(nr["dbcnn", "koniq10k"][0])
    fr = csv_cells(PYIQA_FOLDER / "pyiqa_FR_benchmark_results.csv")
    assert by_key["pyiqa:ssim", "tid2013"].metrics["krcc"] == float(fr["ssim", "tid2013"][2])
    assert ("pyiqa:wadiqam_nr", "spaq") not in by_key  # an empty cell
    # what can and cannot be reproduced here, and which images pyiqa scored
    assert by_key["pyiqa:niqe", "livec"].unreproducible is None
    assert by_key["pyiqa:niqe", "livec"].evaluated_on == "whole"
    assert by_key["pyiqa:niqe", "koniq10k"].evaluated_on == "official-test"
    assert by_key["pyiqa:niqe", "livec"].protocol == "pyiqa-zero-shot"
    for dataset in ("flive", "koniq10k-1024"):
        assert "not a dataset of this harness" in by_key["pyiqa:qalign_8bit", dataset].unreproducible
    assert "full-reference" in by_key["pyiqa:ssim", "csiq"].unreproducible
    assert "full-reference" in by_key["pyiqa:ssim", "tid2008"].unreproducible
    assert "tid2008 is not a dataset" in by_key["pyiqa:ssim", "tid2008"].unreproducible
    assert "pyiqa:musiq" in by_key["pyiqa:musiq-koniq", "livec"].harness_models

    assert cli.main(["published", "--model", "pyiqa:niqe"]) == 0
    text = capsys.readouterr().out
    assert "| pyiqa:niqe | livec" in text and "| pyiqa:niqe | flive" in text
    assert "pyiqa:ilniqe" not in text and "chaofengc/IQA-PyTorch" in text
    assert f"at commit {PYIQA_SOURCE['commit']}" in text and "no [1]" in text
    assert "Life-IQA" not in text


ANY = {"model": "my_net(width=64)", "harness_models": ["my_net(width=64)", "myplugin_net",
                                                        "pyiqa:clipiqa+_vitL14_512"],
       "dataset": "my_dataset", "protocol": "leave-one-out", "metrics": {"srcc": 0.5, "krcc": 0.4},
       "selection": "none", "provenance": "checked",
       "source": {"repository": "me/it", "path": "results.csv", "commit": "abc"}}


def test_reference_rows_accept_any_model_protocol_and_dataset_name():
    pair = dict(ANY, protocol="splits", pair=["koniq10k", "livec"], model="pyiqa:musiq")
    pair.pop("dataset")
    # a cross-dataset pair of one dataset with itself is labelled as results label it
    self_pair = dict(pair, pair=["livec", "livec"], protocol="cross-dataset")
    # a hand-written FR row: its reason is implied
    fr = dict(ANY, full_reference=True, unreproducible="and no such dataset here")
    reference = parse_published({"version": 1, "entries": [ANY, pair, self_pair, fr]}, "ref.yaml")
    mine, other, same, full = reference.entries
    assert mine.candidates == ("my_net(width=64)", "myplugin_net", "pyiqa:clipiqa+_vitL14_512")
    assert (mine.label, mine.protocol, mine.metrics) == ("my_dataset", "leave-one-out",
                                                         {"srcc": 0.5, "krcc": 0.4})
    assert other.label == "koniq10k -> livec" and same.label == "livec"
    assert full.unreproducible.startswith("full-reference metric")
    assert full.unreproducible.endswith("; and no such dataset here")
    assert "me/it results.csv @ abc" in mine.source_text()


def write_table(folder: Path, csv_text: str, **table) -> Path:
    """A reference file whose entries come from a pyiqa-benchmark CSV beside it."""
    (folder / "figures.csv").write_text(csv_text)
    spec = {"file": "figures.csv", "format": "pyiqa-benchmark", "model_prefix": "pyiqa:",
            "protocol": "my-zero-shot", "selection": "none", "provenance": "second-hand",
            "plcc_kind": "raw", "source": {"repository": "me/it", "path": "t.csv", "commit": "c0"},
            "columns": {"synth-koniq10k": {"dataset": "synth-koniq10k", "evaluated_on": "whole"}}}
    spec.update(table)
    path = folder / "reference.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tables": [spec]}))
    return path


@pytest.mark.parametrize(("text", "table", "message"), [
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4\n", {},
     "tables[0]: figures.csv:2 column 'synth-koniq10k(PLCC/SRCC/KRCC)': '0.5/0.4': expected 3 "
     "figures PLCC/SRCC/KRCC"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/x/0.3\n", {}, "SRCC 'x' is not a number"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/nan\n", {}, "KRCC 'nan' is not a number"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/RMSE)\npiqe,0.5/0.4/3\n", {}, "unknown metric 'rmse'"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/1.4/0.3\n", {},
     "tables[0] figures.csv:2 column 'synth-koniq10k(PLCC/SRCC/KRCC)' (pyiqa:piqe): metrics.srcc: "
     "1.4: expected a number in [-1, 1]"),
    ("Metric name,flive(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/0.3\n", {},
     "columns: figures.csv has a column 'flive(PLCC/SRCC/KRCC)' that 'columns' does not declare"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/0.3,9\n", {},
     "figures.csv:2: 3 field(s), expected 2"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/0.3\n", {"source": {"url": "u"}},
     "source: expected 'paper' and one of 'arxiv' or 'url'"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/0.3\n",
     {"aliases": {"musiq-koniq": ["pyiqa:musiq"]}}, "aliases: ['musiq-koniq']: no such row"),
    ("Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\npiqe,0.5/0.4/0.3\n", {"colour": "red"},
     "tables[0]: colour: unknown field"),
])
def test_bad_tables_name_the_file_line_column_and_field(tmp_path, text, table, message):
    path = write_table(tmp_path, text, **table)
    with pytest.raises(PublishedFileError) as error:
        load_published(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


@pytest.fixture(scope="module")
def zero_shot_runs(tmp_path_factory) -> Path:
    """A real zero-shot suite: pyiqa's PIQE (no weights to fetch) scored once on a whole
    synthetic dataset, under a protocol file outside protocols/ whose name protocols/ lacks."""
    base = tmp_path_factory.mktemp("zero-shot")
    protocol = base / "elsewhere" / "my-zero-shot.yaml"
    protocol.parent.mkdir()
    protocol.write_text(yaml.safe_dump({
        "name": "my-zero-shot", "version": "0.3", "kind": "cross-dataset", "seeds": 1,
        "validation_fraction": 0.0, "synthetic_pairs": [["synth-koniq10k", "synth-koniq10k"]],
        "variants": [], "baselines": ["pyiqa:piqe"]}))
    assert cli.main(["run", "--protocol", str(protocol), "--synth-size", "tiny", "--device",
                     "cpu", "--runs", str(base / "runs")]) == 0
    return base / "runs" / "my-zero-shot"


PLUGIN = """
import harness


@harness.register_scorer("myplugin_net", lower_better=False)
class Brightness:
    def __call__(self, images):
        return images.mean(dim=(1, 2, 3))


@harness.register_scorer("my_net", lower_better=True)
class Flatness:
    def __init__(self, width: int = 1):
        self.width = width

    def __call__(self, images):
        return -images.std(dim=(1, 2, 3)) * self.width
"""


@pytest.fixture(scope="module")
def plugin_runs(tmp_path_factory) -> Path:
    """A real suite of a pyiqa metric and two plug-in models (one with model arguments), run in
    its own process with the plug-in included, under a protocol file outside protocols/: this
    test process never loads the plug-in, as a later ``check`` would not."""
    base = tmp_path_factory.mktemp("plugin")
    (base / "plugin.py").write_text(PLUGIN)
    protocol = base / "elsewhere.yaml"
    protocol.write_text(yaml.safe_dump({
        "name": "my-zero-shot", "version": "0.3", "kind": "cross-dataset", "seeds": 1,
        "validation_fraction": 0.0, "synthetic_pairs": [["synth-koniq10k", "synth-koniq10k"]],
        "variants": [], "baselines": ["pyiqa:piqe", "myplugin_net", "my_net(width=64)"]}))
    done = bench("run", "--protocol", str(protocol), "--include", str(base / "plugin.py"),
                 "--synth-size", "tiny", "--device", "cpu", "--runs", str(base / "runs"),
                 env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "runs" / "my-zero-shot"


@pytest.mark.slow
def test_a_golden_file_of_any_suite_loads_back(plugin_runs, tmp_path, capsys):
    golden = tmp_path / "golden.yaml"
    assert cli.main(["check", str(plugin_runs), "--write-golden", str(golden)]) == 0
    entries = load_golden(golden).entries
    assert sorted(e.model for e in entries) == ["my_net(width=64)", "myplugin_net", "pyiqa:piqe"]
    assert {(e.label, e.protocol, e.protocol_version) for e in entries} == \
        {("synth-koniq10k", "my-zero-shot", "0.3")}
    capsys.readouterr()
    report = tmp_path / "check.json"
    assert cli.main(["check", str(plugin_runs), "--against", str(golden), "--require-all",
                     "--metric", "both", "--report", str(report)]) == 0
    checked = json.loads(report.read_text())
    assert checked["counts"] == {"PASS": 6, "FAIL": 0, "MISSING": 0, "N/A": 0}
    assert all(r["reproduced_zero_shot"] for r in checked["rows"])
    # a row of a plug-in model this suite did not run is MISSING, never a load error
    document = yaml.safe_load(golden.read_text())
    document["entries"].append(dict(document["entries"][0], model="other_plugin_net(depth=3)",
                                    harness_models=["other_plugin_net(depth=3)"]))
    golden.write_text(yaml.safe_dump(document, sort_keys=False))
    assert cli.main(["check", str(plugin_runs), "--against", str(golden), "--report",
                     str(report)]) == 0
    assert json.loads(report.read_text())["counts"] == {"PASS": 3, "FAIL": 0, "MISSING": 1, "N/A": 0}


@pytest.mark.slow
def test_a_pyiqa_zero_shot_result_is_checked_against_published_figures(zero_shot_runs, tmp_path,
                                                                       runs, capsys):
    """Figures given as pyiqa gives them (a CSV of PLCC/SRCC/KRCC cells): within the tolerance
    of the stored result passes; one moved far above it fails; one computed on other images is
    compared with the difference said; a trained reproduction of a zero-shot figure fails."""
    golden = tmp_path / "golden.yaml"
    assert cli.main(["check", str(zero_shot_runs), "--write-golden", str(golden)]) == 0
    measured = load_golden(golden).entries[0].metrics
    capsys.readouterr()

    def figures(srcc: float) -> str:
        # four decimals, as pyiqa publishes; PLCC and KRCC as measured
        return (f"Metric name,synth-koniq10k(PLCC/SRCC/KRCC)\n"
                f"piqe,{measured['plcc']:.4f}/{srcc:.4f}/0.1\n")

    close = write_table(tmp_path, figures(measured["srcc"] + 0.004))
    report = check_suite(zero_shot_runs, close, metric="both")
    assert report.passed and [r.verdict for r in report.rows] == ["PASS", "PASS"]
    row = report.rows[0]
    assert row.reproduced_as == "pyiqa:piqe" and row.reproduced_zero_shot and row.note == ""
    assert "none (zero-shot: no training) / none (zero-shot: no training)" in report.text()
    assert report.warnings == ()

    far = write_table(tmp_path, figures(min(1.0, measured["srcc"] + 0.3)))
    assert cli.main(["check", str(zero_shot_runs), "--against", str(far)]) == 1
    assert "-> FAILED" in capsys.readouterr().out
    (row,) = check_suite(zero_shot_runs, far).rows
    assert row.verdict == "FAIL" and row.delta == pytest.approx(-0.3, abs=1e-4)
    assert row.failed_by == ("shortfall",)

    other_images = write_table(tmp_path, figures(measured["srcc"]), columns={
        "synth-koniq10k": {"dataset": "synth-koniq10k", "evaluated_on": "official-test"}})
    report = check_suite(zero_shot_runs, other_images)
    (row,) = report.rows
    assert row.verdict == "PASS"
    assert row.evaluation_mismatch == ("reference: the release's official test part; here: the "
                                       "whole dataset (24 images)")
    assert row.note == f"not like for like: {row.evaluation_mismatch}" and row.failed_by == ()
    assert any("computed on other images than their reference" in w for w in report.warnings)

    # a zero-shot figure against a model that trained: a selection mismatch
    trained = write_table(tmp_path, "Metric name,koniq10k(PLCC/SRCC/KRCC)\n"
                                    "lifeiqa_tiny,0.1/0.1/0.1\n", model_prefix="",
                          protocol="splits", columns={"koniq10k": {"dataset": "koniq10k"}})
    (row,) = check_suite(runs / "good", trained).rows
    assert row.verdict == "FAIL" and "the reference trained nothing (zero-shot) but the " \
                                      "reproduction trained (last epoch)" in row.note
    assert "selection" in row.failed_by


def test_the_bundled_pyiqa_file_checks_a_suite_and_explains_what_it_cannot_reproduce(
        zero_shot_runs, tmp_path, capsys):
    report = tmp_path / "pyiqa.json"
    assert cli.main(["check", str(zero_shot_runs), "--against", str(PYIQA_FILE), "--report",
                     str(report)]) == 0
    out = capsys.readouterr().out
    checked = json.loads(report.read_text())
    counts = checked["counts"]
    entries = load_published(PYIQA_FILE).entries
    assert counts["N/A"] == sum(e.unreproducible is not None for e in entries)
    # each N/A row carries its entry's reason as a field, which the summary groups by
    assert sorted(r["unreproducible"] for r in checked["rows"] if r["verdict"] == "N/A") == sorted(
        e.unreproducible for e in entries if e.unreproducible and "srcc" in e.metrics)
    assert counts["MISSING"] == sum(e.unreproducible is None for e in entries)
    assert "N/A (not reproducible here)" in out
    assert "row(s) not reproducible here" in out and "full-reference metric" in out
    assert "pyiqa's flive (FLIVE) is not a dataset of this harness" in out
    # N/A rows are summarised, not tabled; MISSING rows are tabled, and --require-all fails them
    assert "| pyiqa:ssim" not in out and "| pyiqa:niqe" in out
    assert cli.main(["check", str(zero_shot_runs), "--against", str(PYIQA_FILE),
                     "--require-all"]) == 1


# --- the JSON Schemas ------------------------------------------------------------------------------

COMMITTED_PUBLISHED = (PUBLISHED_FILE, PYIQA_FILE)


@pytest.mark.parametrize("name", ["published.schema.json", "golden.schema.json"])
def test_the_reference_schemas_are_valid_json_schemas(name):
    from jsonschema import Draft202012Validator

    from harness.reporting.reference import json_schema

    Draft202012Validator.check_schema(json_schema(name))


@pytest.mark.parametrize("path", COMMITTED_PUBLISHED, ids=lambda p: p.parent.name)
def test_every_committed_published_file_fits_its_schema(path):
    from jsonschema import Draft202012Validator

    from harness.reporting.published import SCHEMA_FILE
    from harness.reporting.reference import is_golden, json_schema

    document = yaml.safe_load(path.read_text())
    assert not is_golden(document)
    Draft202012Validator(json_schema(SCHEMA_FILE)).validate(document)


def test_the_schema_lists_the_table_formats_the_reader_has():
    from harness.reporting.published import SCHEMA_FILE, TABLE_FORMATS
    from harness.reporting.reference import json_schema

    assert json_schema(SCHEMA_FILE)["$defs"]["table"]["properties"]["format"]["enum"] == list(TABLE_FORMATS)


def test_a_golden_file_is_no_published_file_and_a_measured_row_says_where_it_belongs():
    golden = yaml.safe_load((PUBLISHED_FILE.parent / "golden-synthetic.yaml").read_text())
    with pytest.raises(PublishedFileError, match=r"ref.yaml: a golden file \(it has 'generated'\)"):
        parse_published(golden, "ref.yaml")
    measured = dict(VALID, provenance="measured")
    with pytest.raises(PublishedFileError, match=r"entries\[0\] \(Life-IQA\): provenance: 'measured': "
                                                 r"expected one of .* a golden file's"):
        parse_published({"version": 1, "entries": [measured]}, "ref.yaml")


def test_check_is_two_sided_for_golden_rows_and_one_sided_for_published_rows(tmp_path):
    golden = tmp_path / "golden.yaml"
    write_golden(suite_folder(tmp_path / "runs", "ref", series("full", SIX_SPLITS)), golden)
    entry = load_golden(golden).entries[0]
    assert entry.units == 6 and entry.plcc_kind == "raw"
    assert entry.split_files[0]["file"] == "ref/splits/synth-kadid10k/split_00.json"
    better = suite_folder(tmp_path / "runs", "better", series("full", [v + 0.1 for v in SIX_SPLITS]))
    report = check_suite(better, golden)
    (row,) = report.rows
    assert row.verdict == "FAIL" and "suspicious" in row.note and row.two_sided
    assert not report.passed and "golden (measured) rows two-sided" in report.text()
    assert "| PLCC (raw / raw) " in check_suite(better, golden, metric="both").text()
    published = yaml_file(tmp_path / "published.yaml", entry_from(entry))
    assert check_suite(better, published).passed  # beating a paper is fine
    worse = suite_folder(tmp_path / "runs", "worse", series("full", [v - 0.1 for v in SIX_SPLITS]))
    assert not check_suite(worse, published).passed


def test_check_fails_a_selection_mismatch_and_too_few_units(tmp_path):
    golden = tmp_path / "golden.yaml"
    write_golden(suite_folder(tmp_path / "runs", "ref", series("full", SIX_SPLITS)), golden)
    oracle = golden_with(golden, tmp_path / "oracle.yaml", selection="oracle")
    same = tmp_path / "runs" / "ref"
    report = check_suite(same, oracle)
    assert not report.passed and "selection last epoch vs the reference's test-oracle" in report.rows[0].note
    allowed = check_suite(same, oracle, allow_selection_mismatch=True)
    assert allowed.passed and any("biased towards the reference" in w for w in allowed.warnings)
    fewer = suite_folder(tmp_path / "runs", "fewer", series("full", SIX_SPLITS[:4]))
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
