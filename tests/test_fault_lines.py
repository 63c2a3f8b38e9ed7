"""Faults met while making data or boards: each is one line naming the path and what to do,
with its exit status, through the real command line; and nothing half-made is left behind."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import commands
import pytest

from harness.data.synth.generate import remove_orphans, synthesize


def bench(*args: str, cwd: Path, file_limit: int | None = None,
          cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in ``cwd``, writing no bytecode; its data cache the session's unless
    ``cache`` names another."""
    return commands.bench(*args, cwd=cwd, cache=cache, file_limit=file_limit,
                          env={"PYTHONDONTWRITEBYTECODE": "1"})


@pytest.mark.slow
def test_synthetic_data_that_cannot_be_written_is_named_with_the_cache_in_one_line(tmp_path):
    ran = bench("run", "--protocol", "comparison", "--synth-size", "tiny", "--splits", "1",
                "--models", "piqe", "--runs", "runs", cwd=tmp_path, file_limit=4096,
                cache=tmp_path / "cache")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert "Traceback" not in ran.stderr and lines[-1].startswith(
        f"lifeiqa-bench run: error: cannot write the synthetic dataset {tmp_path}/cache/synth/")
    assert "File too large (the file is larger than the file system or the process's file-size " \
           "limit (ulimit -f) allows); nothing of it was kept (in the data cache " \
           f"{tmp_path}/cache; LIFEIQA_CACHE moves it)" in lines[-1]
    assert not [p for p in (tmp_path / "cache" / "synth").iterdir() if p.name.startswith(".")]


def test_a_generation_killed_midway_leaves_a_folder_the_next_one_removes(tmp_path):
    out = tmp_path / "synth" / "kadid10k-tiny"
    out.parent.mkdir(parents=True)
    killed, running = out.parent / f".{out.name}.abc123", out.parent / f".{out.name}.live99"
    killed.mkdir()
    (killed / "half.png").write_bytes(b"x")
    running.mkdir()
    holder = os.open(running, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a generation still running in another process
    try:
        assert remove_orphans(out) == [killed]
        assert not killed.exists() and running.is_dir()
    finally:
        os.close(holder)
    synthesize("kadid10k", out, size="tiny")  # the next generation clears what is left
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


@pytest.mark.slow
def test_a_leaderboard_that_cannot_be_written_is_one_line_and_leaves_the_old_one(tmp_path):
    made = bench("run", "--protocol", "comparison", "--synth-size", "tiny", "--splits", "2",
                 "--models", "piqe", "--runs", "runs", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    board = tmp_path / "board"
    first = bench("leaderboard", "comparison", "--runs", "runs", "--out", str(board),
                  cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()}
    assert {Path("leaderboard.md"), Path("leaderboard.json")} <= set(before)
    failed = bench("leaderboard", "comparison", "--runs", "runs", "--out", str(board),
                   "--title", "another", cwd=tmp_path, file_limit=1024)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.strip().splitlines() == [
        line for line in failed.stderr.strip().splitlines() if line.startswith(
            "lifeiqa-bench leaderboard: error: cannot write ")]
    assert "File too large" in failed.stderr
    after = {p.relative_to(board): p.read_bytes() for p in board.rglob("*") if p.is_file()}
    assert after == before  # the old board, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".board.")] == []
    tables = tmp_path / "tables.md"
    summary = bench("summarize", "comparison", "--runs", "runs", "--out", str(tables),
                    cwd=tmp_path, file_limit=256)
    assert summary.returncode == 1 and summary.stderr.strip().splitlines() == [
        f"lifeiqa-bench summarize: error: cannot write {tables}: File too large (the file is "
        f"larger than the file system or the process's file-size limit (ulimit -f) allows); "
        f"nothing was replaced"]
    assert not tables.exists() and summary.stdout == ""


def test_a_feature_cache_entry_that_cannot_be_written_is_named(tmp_path):
    """The entry is made in memory and written whole: a full cache is an OSError naming the
    entry (safetensors' own writer raised its error with no file named) and leaves no part."""
    entry = tmp_path / "features" / "ab" / "ab12.safetensors"
    code = ("import torch\nfrom pathlib import Path\nfrom harness.engine.features import "
            "FeatureCache\ncache = FeatureCache.__new__(FeatureCache)  # only its writer\n"
            f"cache._write(Path({str(entry)!r}), {{'pooled': torch.zeros(4096)}})\n")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                         preexec_fn=commands.file_size_limit(1024))
    assert ran.returncode == 1
    assert f"OSError: [Errno 27] cannot write {entry}: File too large" in ran.stderr
    assert list(entry.parent.iterdir()) == []
