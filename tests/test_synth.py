"""Synthetic datasets in the real layouts, read by the real loaders."""

import csv
import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.data.registry import load_dataset
from harness.data.synth.generate import MANIFEST, synthesize


@pytest.fixture(scope="module")
def kadid_like(tmp_path_factory):
    return synthesize("kadid10k", tmp_path_factory.mktemp("synth") / "kadid", "tiny", seed=5)


def test_check_command_reads_the_kadid_like_set(kadid_like):
    script = shutil.which("lifeiqa-bench") or str(Path(sys.executable).parent / "lifeiqa-bench")
    result = subprocess.run([script, "datasets", "check", str(kadid_like), "--dataset",
                             "kadid10k"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "images: 250   content groups: 2" in result.stdout
    assert "distortion types (25)" in result.stdout
    assert "no problems found" in result.stdout


def test_labels_carry_the_distortion_severity(kadid_like):
    dataset = load_dataset("kadid10k", kadid_like)
    by_level = {level: np.mean([r.score for r in dataset.records if r.level == level])
                for level in range(1, 6)}
    means = [by_level[level] for level in range(1, 6)]
    assert all(a > b for a, b in itertools.pairwise(means)), means  # KADID DMOS: higher is better
    assert min(r.score for r in dataset.records) >= 1.0 and max(r.score for r in dataset.records) <= 5.0


def test_generation_is_deterministic_and_reused(kadid_like, tmp_path):
    again = synthesize("kadid10k", tmp_path / "kadid", "tiny", seed=5)
    files = sorted(p.relative_to(kadid_like) for p in kadid_like.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for relative in files:
        if relative.name != MANIFEST:  # the manifest records the wall time
            assert (kadid_like / relative).read_bytes() == (again / relative).read_bytes(), relative
    stamp = (again / "dmos.csv").stat().st_mtime_ns
    synthesize("kadid10k", tmp_path / "kadid", "tiny", seed=5)
    assert (again / "dmos.csv").stat().st_mtime_ns == stamp  # up to date: not regenerated


def test_tid_and_koniq_like_sets_load_with_the_real_loaders(tmp_path):
    tid = load_dataset("tid2013", synthesize("tid2013", tmp_path / "tid", "tiny", seed=1))
    assert len(tid.records) == 2 * 24 * 5 and len(tid.groups) == 2
    assert len({r.distortion for r in tid.records}) == 24
    assert all(0 <= r.score <= 9 for r in tid.records)
    koniq_root = synthesize("koniq10k", tmp_path / "koniq", "tiny", seed=1)
    koniq = load_dataset("koniq10k", koniq_root)
    assert len(koniq.records) == 24 and len(koniq.groups) == 24
    with open(koniq_root / "koniq10k_scores_and_distributions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = [sum(int(row[f"c{i}"]) for i in range(1, 6)) for row in rows]
    assert all(c == int(row["c_total"]) for c, row in zip(counts, rows, strict=True))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        synthesize("kadid10k", tmp_path / "precious", "tiny")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "keep me"
