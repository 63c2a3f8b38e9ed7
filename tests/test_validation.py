"""Bad data is found before any training starts, all of it, with file and row."""

import csv
from pathlib import Path

import pytest
from commands import bench
from dataset_fixtures import write_kadid10k_release

from harness.data.registry import get_dataset_spec, load_dataset
from harness.data.validate import DatasetValidationError, require_valid, validate_dataset
from harness.results.store import read_result


@pytest.fixture
def damaged(tmp_path):
    """A clean KADID-layout fixture, then one truncated image and one NaN score."""
    root = tmp_path / "kadid"
    written = write_kadid10k_release(root, bad_rows=False)
    with open(root / "dmos.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    victim = rows[3][0]
    rows[5][2] = "nan"
    with open(root / "dmos.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    image = root / "images" / victim
    image.write_bytes(image.read_bytes()[:60])
    return root, victim, written


@pytest.mark.slow
def test_check_reports_corrupt_image_and_nan_row(damaged):
    root, victim, _ = damaged
    result = bench("datasets", "check", str(root), "--dataset", "kadid10k", "--quick")
    assert result.returncode == 1
    assert "dmos.csv:6" in result.stdout  # the NaN row (header is line 1)
    assert victim in result.stdout and "unreadable image" in result.stdout
    assert "problems (2)" in result.stdout


def test_validation_collects_everything_and_exclusion_is_explicit(damaged):
    root, victim, written = damaged
    dataset = load_dataset("kadid10k", root)
    spec = get_dataset_spec("kadid10k")
    report = validate_dataset(dataset, spec)
    assert len(report.problems) == 2
    assert any("expected 10125 images" in w for w in report.warnings)
    with pytest.raises(DatasetValidationError, match="--exclude-bad"):
        require_valid(dataset, spec)
    cleaned, _, excluded = require_valid(dataset, spec, exclude_bad=True)
    assert len(excluded) == 2
    assert victim not in {Path(r.image_id).name for r in cleaned.records}
    assert len(cleaned.records) == written.images - 2


@pytest.mark.slow
def test_a_run_refuses_to_start_then_records_exclusions(damaged, tmp_path):
    root, victim, _ = damaged
    runs = tmp_path / "runs"
    common = ["run", "--protocol", "splits", "--dataset-root", f"kadid10k={root}",
              "--model", "lifeiqa_tiny", "--splits", "1", "--runs", str(runs),
              "--set", "epochs=1", "--set", "train_crops=1", "--set", "test_crops=1"]
    env = {"LIFEIQA_CACHE": str(tmp_path / "cache")}
    refused = bench(*common, env=env)
    assert refused.returncode != 0
    assert "dmos.csv:6" in refused.stdout + refused.stderr
    assert not list(runs.rglob("result.json"))
    allowed = bench(*common, "--exclude-bad", env=env)
    assert allowed.returncode == 0, allowed.stderr
    result = read_result(next(runs.rglob("result.json")))
    assert len(result.exclusions) == 2 and any(victim in e for e in result.exclusions)
