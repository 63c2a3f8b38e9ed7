"""Quick looks and discovery: ``--limit N`` (recorded, marked in every table, refused by check)
and ``lifeiqa-bench list``."""

from __future__ import annotations

import json

import pytest
from commands import bench, bench_here


@pytest.mark.slow
def test_limit_caps_each_part_is_recorded_marked_and_refused_by_check(tmp_path, capsys):
    runs = tmp_path / "runs"
    result = bench_here(capsys, "run", "--protocol", "comparison", "--synth-size", "tiny",
                        "--splits", "2", "--models", "piqe", "--add-models", "probe_stage3",
                        "--model", "lifeiqa_tiny", "--limit", "7", "--runs", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    units = [json.loads(p.read_text()) for p in sorted(runs.rglob("result.json"))]
    assert len(units) == 4
    for unit in units:
        assert unit["config"]["limit"] == 7
        assert unit["split"]["train_images"] == unit["split"]["test_images"] == 7
    # the images kept differ by unit (each unit's own seed), and are spread over the part
    tested = {u["unit"]: (runs / "comparison" / "piqe" / "synth-kadid10k" / u["unit"] /
                          "predictions.csv").read_text() for u in units if u["model"] == "piqe"}
    assert tested["split_00"] != tested["split_01"]
    assert "| piqe [--limit 7]" in result.stdout
    assert "[--limit N]: a quick look at most N (7) images" in result.stdout
    for args in (("--write-golden", str(tmp_path / "g.yaml")),
                 ("--against", "leaderboards/published.yaml")):
        refused = bench("check", str(runs / "comparison"), *args)
        assert refused.returncode == 2
        assert "4 unit(s) ran with --limit [7]" in refused.stderr
    assert not (tmp_path / "g.yaml").exists()
    bad = bench_here(capsys, "run", "--protocol", "splits", "--limit", "0")
    assert bad.returncode == 2 and "--limit 0: expected an integer >= 1" in bad.stderr


def listed(capsys, *args: str) -> tuple[int, str, str]:
    """``lifeiqa-bench list ...`` in this process: listing imports nothing a fresh interpreter
    would import differently, and ten interpreters cost half a minute."""
    done = bench_here(capsys, "list", *args)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("what,expected", [
    ("protocols", {"splits", "comparison", "cross-dataset", "pyiqa-zero-shot"}),
    ("recipes", {"cpu_demo", "cpu_bench", "authors_koniq10k", "finetune_short"}),
    ("presets", {"lifeiqa_swin_b", "lifeiqa_effnet_lite0", "lifeiqa_tiny"}),
    ("models", {"full", "no_gcn", "deiqt_head", "probe_stage3", "cnniqa", "piqe"}),
    ("datasets", {"kadid10k", "tid2013", "koniq10k", "spaq", "live", "csiq", "livec"}),
])
def test_list_names_what_a_run_can_name(capsys, what, expected):
    code, out, err = listed(capsys, what, "--json")
    assert code == 0, err
    assert expected <= {row["name"] for row in json.loads(out)}
    code, out, _ = listed(capsys, what)
    assert code == 0 and all(name in out for name in expected)


def test_list_refuses_an_unknown_catalog(capsys):
    code, _, err = listed(capsys, "modles")
    assert code == 2 and "unknown catalog 'modles'; did you mean models?" in err
