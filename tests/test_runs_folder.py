"""Nothing a user names leaves the runs folder: a suite is a checked name, and every model,
dataset and unit name becomes one encoded folder name (harness.fileio). Driven through the real
command line where a user would meet it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from commands import bench, bench_here

from harness.errors import InvalidOptionError
from harness.fileio import FOLDER_NAME_BYTES, check_suite, folder_name
from harness.plan.jobs import UnitKey
from harness.plan.registry import list_bench_models

HOSTILE = ["..", ".", "../escape", "/etc", "a/b", "a\\b", "x\x00y", "é", "%2F", ".hidden",
           "piqe(loss_reduction='/../../../ESCAPED_MODEL')", "z" * 300, "é" * 200, "a%2Fb"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_one_folder_name_that_stays_put(name, tmp_path):
    encoded = folder_name(name)
    assert "/" not in encoded and "\\" not in encoded and "\x00" not in encoded
    assert encoded not in (".", "..") and not encoded.startswith(".")
    assert len(encoded.encode()) <= FOLDER_NAME_BYTES and encoded.isascii()
    folder = tmp_path.joinpath(encoded)
    folder.mkdir()
    assert folder.resolve().parent == tmp_path.resolve()


def test_names_the_harness_writes_keep_their_folders_and_no_two_names_share_one():
    ordinary = [*list_bench_models(), "lifeiqa_tiny+moe_to_ffn", "pyiqa:musiq", "my_net(width=64)",
                "synth-kadid10k__to__synth-tid2013", "split_03-frac0.4", "seed_01",
                "split_00-rerun", "net(mode='a b', k=[1, 2])"]
    assert [folder_name(n) for n in ordinary] == ordinary
    names = ordinary + HOSTILE + ["a%2Fb", "a/b", "a%252Fb", "z" * 301]
    assert len({folder_name(n) for n in set(names)}) == len(set(names))


def test_a_suite_is_checked_and_its_unit_folders_nest_under_it():
    assert check_suite("demo/comparison") == "demo/comparison"
    key = UnitKey("demo/comparison", "piqe(x='/../..')", "a__to__b", "split_00")
    assert key.folder_parts() == ("demo", "comparison", "piqe(x='%2F..%2F..')", "a__to__b",
                                  "split_00")
    for suite in ("", "/abs", "../x", "a/../b", "a//b", "a/", ".x", "-x", "a b", "é", "x" * 65):
        with pytest.raises(InvalidOptionError, match="a suite names folders under the runs"):
            check_suite(suite)


def outside(root: Path, runs: Path) -> list[Path]:
    """Every file under ``root`` outside ``runs`` and the cache."""
    return [p for p in root.rglob("*") if p.is_file()
            and not p.is_relative_to(runs) and not p.is_relative_to(root / "cache")]


@pytest.mark.parametrize("suite", ["../escape", "/tmp/absolute-suite", "a\\b", "x" * 80])
def test_run_refuses_a_suite_outside_the_runs_folder_in_one_line(suite, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = bench_here(capsys, "run", "--protocol", "comparison", "--synth-size", "tiny",
                     "--splits", "1", "--models", "piqe", "--runs", "runs", "--suite", suite)
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [
        f"lifeiqa-bench run: error: --suite {suite!r}: a suite names folders under the runs "
        f"folder: parts of letters, digits, '_', '.', '+' or '-' (at most 64 each, not starting "
        f"with '.', '+' or '-') joined by '/', e.g. demo/comparison"]
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_a_protocol_named_outside_the_runs_folder_is_refused_as_the_default_suite(tmp_path):
    protocol = tmp_path / "mine.yaml"
    protocol.write_text("name: ../../escape\nversion: 1\nkind: splits\n"
                        "synthetic_datasets: [synth-kadid10k]\nbaselines: [piqe]\n")
    ran = bench("run", "--protocol", str(protocol), "--synth-size", "tiny", "--splits", "1",
                "--runs", "runs", cwd=tmp_path)
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1
    assert f"protocol {protocol}: name (the default suite; or pass --suite) '../../escape'" \
        in ran.stderr


@pytest.mark.slow
def test_a_model_argument_with_a_path_stays_in_its_folder_and_its_row_is_shown(tmp_path):
    hostile = "piqe(loss_reduction='/../../../ESCAPED_MODEL')"
    ran = bench("run", "--protocol", "comparison", "--synth-size", "tiny", "--splits", "1",
                "--models", "piqe", "--add-models", hostile, "--runs", "runs", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    runs = tmp_path / "runs"
    assert outside(tmp_path, runs) == []
    results = sorted(runs.rglob("result.json"))
    assert [p.relative_to(runs).parts[1] for p in results] == [
        "piqe", "piqe(loss_reduction='%2F..%2F..%2F..%2FESCAPED_MODEL')"]
    # the true name and arguments are in the unit's config
    stored = json.loads(results[1].read_text())
    assert stored["config"]["model_args"] == {"loss_reduction": "/../../../ESCAPED_MODEL"}
    shown = bench("summarize", "comparison", "--runs", "runs", cwd=tmp_path)
    assert shown.returncode == 0 and "| piqe(loss_reduction='/../../../ESCAPED_MODEL')" in \
        shown.stdout
