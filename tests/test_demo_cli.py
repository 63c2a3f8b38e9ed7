"""The README's main command, run as a user runs it, in its seconds-long smoke form."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_every_step_and_writes_the_leaderboard(tmp_path):
    script = shutil.which("lifeiqa-bench") or str(Path(sys.executable).parent / "lifeiqa-bench")
    runs = tmp_path / "runs"
    result = subprocess.run([script, "demo", "--smoke", "--runs", str(runs)], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    board = (runs / "demo" / "leaderboard" / "leaderboard.md").read_text()
    for heading in ("## comparison (protocol v1.0) · selection: last epoch",
                    "## cross-dataset (protocol v1.0)"):
        assert heading in board
    assert "Per-distortion SRCC" in board
    for model in ("lifeiqa_tiny+vanilla_decoder", "deiqt_head", "probe_stage1", "probe_stage4",
                  "piqe", "lifeiqa_tiny+stage2_kv", "no_balance_loss"):
        assert f"| {model} " in board
    # the rows trained from pixels are left out for time, and the board says so
    assert "| cnniqa " not in board and "leaves out for time: cnniqa, wadiqam_nr" in board
    assert "Expert routing by distortion type" in board
    assert "Stage-feature separability by distortion type" in board
    assert "## How well this data separates models" in board
    assert "synth-koniq10k -> synth-kadid10k" in board
    assert "![SRCC by model" in board
    # the page beside it, made from its leaderboard.json, with every block of the markdown
    page = (runs / "demo" / "leaderboard" / "index.html").read_text()
    assert page.count('<section class="block"') == board.count("(protocol v")
    assert "How well this data separates models" in page and "index.html" in result.stdout
    # 2 splits: comparison 13 rows, shallow-stage ablation 4, separability 4, routing 2; then
    # 3 cross-dataset pairs; and a noise rerun of one unit of each seeded cell of the comparison
    # (all but PIQE's), each cell's sd in the board's noise tables
    reruns = sorted(p.parent.relative_to(runs) for p in runs.rglob("*-rerun/result.json"))
    assert len(reruns) == 12 and all(p.name == "split_00-rerun" for p in reruns)
    assert len(list(runs.rglob("result.json"))) == (13 + 4 + 4 + 2) * 2 + 3 + len(reruns)
    assert board.count("**Rerun noise**") == 5 and "| 1 seed rerun in the run" in board
    assert "| training-free: exact" in board
    # where the time went, stage by stage
    timing = next(line for line in result.stdout.splitlines() if line.startswith("Demo wall time"))
    for stage in ("data synth-kadid10k", "data synth-tid2013", "data synth-koniq10k",
                  "comparison", "ablation", "feature-separability", "routing", "cross-dataset",
                  "leaderboard"):
        assert f"{stage} " in timing, timing


def test_demo_splits_caps_every_step_that_has_splits():
    from harness.demo import demo_steps

    def splits(**kwargs) -> dict:
        return {step.protocol: step.splits for step in demo_steps(**kwargs)}

    assert splits() == {"comparison": None, "ablation": 5, "feature-separability": None,
                        "routing": 5, "cross-dataset": None}  # the protocols' own (10) where None
    assert splits(splits=3) == {"comparison": 3, "ablation": 3, "feature-separability": 3,
                                "routing": 3, "cross-dataset": None}
    assert splits(splits=7) == {"comparison": 7, "ablation": 5, "feature-separability": 7,
                                "routing": 5, "cross-dataset": None}


def test_the_demo_reruns_units_of_each_split_step_for_their_noise():
    from harness.demo import NOISE_UNITS, demo_steps

    assert {step.protocol: step.noise_units for step in demo_steps()} == {
        "comparison": NOISE_UNITS, "ablation": NOISE_UNITS, "feature-separability": NOISE_UNITS,
        "routing": NOISE_UNITS, "cross-dataset": None}  # one seed per pair: nothing to re-test
    assert {step.protocol: step.noise_units for step in demo_steps(smoke=True)} == {
        "comparison": 1, "ablation": 0, "feature-separability": 0, "routing": 0,
        "cross-dataset": None}


def test_a_one_split_board_says_it_has_no_interval(tmp_path):
    """``demo --splits 1``: the resolution table names one split and gives no interval (one
    unit's "interval" is a point), and a goal whose step did not run says so."""
    from unit_results import unit

    from harness.api import Results
    from harness.demo import resolution_table

    one = unit("full", 0, 0.61, suite="demo/comparison", protocol="comparison")
    table = resolution_table(Results("demo", tmp_path, (one,)), "lifeiqa_tiny")
    median, width, transfer = table.rows
    assert median[0].endswith("over one split") and median[2] == "0.610 (one split)"
    assert median[3] == "NO"  # below the 0.85 target
    assert width[2] == "no interval from one split" and width[3] == "NO"
    assert transfer[2:] == ["not run", ""]
