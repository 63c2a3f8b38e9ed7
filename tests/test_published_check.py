"""Published scores and regression checks: the shipped reference file, schema errors, and a
golden file written from a real tiny suite that passes its own rerun and fails a degraded one."""

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from harness import cli
from harness.reporting.check import golden_tolerance
from harness.reporting.published import PUBLISHED_FILE, PublishedFileError, load_published, parse_published

IMAGES = 80
# A recipe the tiny random-backbone model learns on the noise-level data below in seconds; the
# auxiliary losses stay at the authors' weights. OMP_NUM_THREADS=1 (below) keeps torch from
# oversubscribing a small shared CPU, which otherwise slows these runs tenfold.
RUN = ["run", "--protocol", "splits", "--datasets", "koniq10k", "--recipe", "cpu_demo",
       "--device", "cpu", "--splits", "3", "--model", "lifeiqa_tiny", "--set", "batch_size=8",
       "--set", "lr=3e-3", "--set", "label_scale='unit'"]
GOOD = ["--set", "epochs=20"]
DEGRADED = ["--set", "epochs=1", "--set", "lr=0.0"]  # the model as initialised: never trained


def write_noise_koniq(root: Path, count: int = IMAGES) -> Path:
    """A KonIQ-10k release layout whose quality is learnable: blocky content plus Gaussian noise
    of a strength that rises over the images; MOS_zscore falls with it."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        content = np.kron(rng.uniform(40, 215, (4, 4, 3)), np.ones((56, 56, 1)))
        sigma = 60.0 * k / (count - 1)
        pixels = np.clip(content + rng.normal(0, sigma, content.shape), 0, 255).astype(np.uint8)
        name = f"{k:04d}.png"
        (root / "1024x768").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "1024x768" / name)
        zscore = round(100 - 1.5 * sigma, 3)
        rows.append([name, 0, 0, 0, 0, 0, 0, round(1 + zscore / 25, 3), 0.5, zscore])
    with open(root / "koniq10k_scores_and_distributions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"])
        writer.writerows(rows)
    return root


def bench(*args: str, wait: bool = True, env: dict | None = None):
    script = shutil.which("lifeiqa-bench") or str(Path(sys.executable).parent / "lifeiqa-bench")
    if not wait:
        return subprocess.Popen([script, *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two suites on the same splits: ``good`` (trained) and ``degraded`` (untrained), run
    side by side as a user would."""
    base = tmp_path_factory.mktemp("check")
    data = write_noise_koniq(base / "koniq")
    env = {**os.environ, "LIFEIQA_CACHE": str(base / "cache"), "OMP_NUM_THREADS": "1"}
    common = [*RUN, "--runs", str(base / "runs"), "--dataset-root", f"koniq10k={data}"]
    processes = [bench(*common, "--suite", suite, *extra, wait=False, env=env)
                 for suite, extra in (("good", GOOD), ("degraded", DEGRADED))]
    for process in processes:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output[-3000:]
    return base / "runs"


def test_shipped_published_file_validates_and_every_row_has_a_source(capsys):
    reference = load_published()
    assert reference.path == str(PUBLISHED_FILE)
    entries = reference.entries
    assert len(entries) == 29  # every number of DESIGN.md section 6, no more
    for entry in entries:
        assert entry.provenance == "second-hand"
        assert entry.source["arxiv"] == "2511.19024" and entry.source["url"].startswith("https://arxiv")
        assert entry.source["paper"].startswith("Life-IQA") and entry.source["table"]
    by_key = {(e.model, e.label, e.protocol): e for e in entries}
    assert by_key["Life-IQA", "csiq", "splits"].metrics == {"srcc": 0.966, "plcc": 0.971}
    # the authors' reporting rule (best test-SRCC epoch, running-maximum PLCC): DESIGN.md sec. 3
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
    assert {r["model"] for r in rows} >= {"Life-IQA", "DEIQT", "Life-IQA, GCN -> MHA"}
    assert all(r["paper"] and r["provenance"] == "second-hand" for r in rows)


VALID = {"model": "Life-IQA", "harness_models": ["lifeiqa_swin_b"], "dataset": "csiq",
         "protocol": "splits", "metrics": {"srcc": 0.9}, "selection": "oracle",
         "provenance": "second-hand", "source": {"paper": "P", "arxiv": "1"}}


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("source"), "entries[1] (Life-IQA): source: missing"),
    (lambda e: e["source"].pop("arxiv"), "entries[1] (Life-IQA): source: a second-hand entry needs"),
    (lambda e: e["metrics"].update(srcc=1.2), "entries[1] (Life-IQA): metrics.srcc: 1.2: expected a "
                                              "number in [-1, 1]"),
    (lambda e: e["metrics"].update(krcc=0.5), "metrics.krcc: unknown metric"),
    (lambda e: e.update(dataset="imagenet"), "dataset: unknown dataset 'imagenet'"),
    (lambda e: e.update(protocol="leave-one-out"), "protocol: unknown protocol 'leave-one-out'"),
    (lambda e: e.update(pair=["koniq10k", "csiq"]), "pair: protocol splits is splits: give 'dataset'"),
    (lambda e: e.update(protocol="cross-dataset"), "protocol cross-dataset is cross-dataset: give 'pair'"),
    (lambda e: e.update(harness_models=["lifeiqa_swin_b+no_attention"]), "unknown ablation 'no_attention'"),
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
    # 2 * sqrt(pi/2) * 0.02 / sqrt(10) = 0.01585..., rounded up to 0.016
    assert golden_tolerance(0.02, 10) == 0.016
    assert golden_tolerance(0.02, 10, k=3.0) == 0.024


def test_golden_passes_its_rerun_and_a_degraded_run_fails(runs, tmp_path, capsys):
    golden = tmp_path / "golden.yaml"
    assert cli.main(["check", str(runs / "good"), "--write-golden", str(golden)]) == 0
    reference = load_published(golden)  # the golden file is itself a valid reference file
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
    assert rerun["passed"] and rerun["counts"] == {"PASS": 2, "FAIL": 0, "MISSING": 0}
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
    moved = yaml.safe_load(per_unit.read_text())
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


def test_published_rows_without_a_reproduction_are_missing(runs, tmp_path, capsys):
    report = tmp_path / "published.json"
    assert cli.main(["check", str(runs / "good"), "--against", str(PUBLISHED_FILE),
                     "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["counts"] == {"PASS": 0, "FAIL": 0, "MISSING": 29}  # every row has an SRCC
    assert "no reference entry matched" in capsys.readouterr().out
    assert cli.main(["check", str(runs / "good"), "--against", str(PUBLISHED_FILE),
                     "--require-all"]) == 1
