"""The example plug-in package (examples/lifeiqa-example-plugin) installed with pip, as a
researcher installs theirs, and run through every process the harness starts: pool workers,
submitit tasks, and later commands (``summarize``, ``leaderboard``, ``check``) in a process
where the plug-in is not installed at all.

pip installs it offline (no index, no build isolation) into a folder of its own, which the
subprocesses get on ``PYTHONPATH``: the project's environment is left as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from commands import bench, counts

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lifeiqa-example-plugin"
ROWS = ("lifeiqa_tiny", "example_sharpness", "example_tiny_cnn(width=8)",
        "example_mlp_head(hidden=32)", "pyiqa:piqe")


def environment(*paths: Path) -> dict:
    """The test session's environment (sockets blocked, its data cache) with ``paths``
    importable."""
    python_path = os.pathsep.join([os.environ["PYTHONPATH"], *map(str, paths)])
    return {**os.environ, "PYTHONPATH": python_path}


def pip_install(source: Path, target: Path) -> None:
    """``pip install`` a copy of ``source`` (its build files stay out of the repository)."""
    copy = target.parent / f"{source.name}-src"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--no-index", "--target", str(target),
                           str(copy)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The installed example, its data folder, and the environments with and without it."""
    root = tmp_path_factory.mktemp("plugin-package")
    pip_install(EXAMPLE, root / "site")
    with_plugin, without = environment(root / "site"), environment()
    made = subprocess.run([sys.executable, "-m", "lifeiqa_example_plugin.make_data",
                           str(root / "photos"), "--size", "tiny"], capture_output=True, text=True,
                          env=with_plugin, timeout=600)
    assert made.returncode == 0, made.stderr
    return root, with_plugin, without


def run_args(root: Path, suite: str, splits: int) -> list[str]:
    return ["run", "--protocol", str(EXAMPLE / "protocol.yaml"), "--dataset-root",
            f"example_photos={root / 'photos'}", "--model", "lifeiqa_tiny", "--recipe",
            "cpu_demo", "--set", "epochs=2", "--splits", str(splits), "--runs", str(root / "runs"),
            "--suite", suite]


@pytest.mark.slow
def test_the_installed_plugin_lists_its_models_and_dataset(world):
    _, env, without = world
    listed = bench("list", "models", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    models = {row["name"]: row for row in json.loads(listed.stdout)}
    for name, family in (("example_sharpness", "zero_shot"), ("example_tiny_cnn", "image_model"),
                         ("example_mlp_head", "feature_head")):
        assert models[name]["family"] == family
        assert models[name]["plugin"] == "lifeiqa-example-plugin 0.1.0"
    assert models["piqe"]["plugin"] == ""
    datasets = bench("list", "datasets", "--json", env=env)
    assert "example_photos" in {row["name"] for row in json.loads(datasets.stdout)}
    assert "example_photos" not in bench("list", "datasets", env=without).stdout


@pytest.mark.slow
def test_pool_and_submitit_runs_then_any_process_reads_summarises_and_checks(world):
    root, env, without = world
    pooled = bench(*run_args(root, "pool", 2), "--executor", "pool", "--workers", "2", "--json",
                   env=env)
    assert pooled.returncode == 0, pooled.stdout[-3000:] + pooled.stderr[-3000:]
    assert counts(pooled.stdout) == (10, 0, 0)
    assert "[worker 0]" in pooled.stderr and "[worker 1]" in pooled.stderr
    submitted = bench(*run_args(root, "submitit", 1), "--executor", "slurm",
                      "--slurm-cluster", "local", "--json", env=env)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert counts(submitted.stdout) == (5, 0, 0)

    for suite, splits in (("pool", 2), ("submitit", 1)):
        for row in ROWS:
            for k in range(splits):
                unit = root / "runs" / suite / row / "example_photos" / f"split_{k:02d}"
                result = json.loads((unit / "result.json").read_text())
                assert result["model"] == row and (unit / "predictions.csv").is_file()
                plugin = result["plugin"]
                if row.startswith("example_"):
                    assert plugin["name"] == "lifeiqa-example-plugin"
                    assert plugin["version"] == "0.1.0" and plugin["origin"] == "entry_point"
                    assert result["config"]["plugin"] == "lifeiqa-example-plugin 0.1.0"
                else:
                    assert plugin is None and "plugin" not in result["config"]
                # the dataset came from the plug-in too, and says so
                assert result["data"]["test"]["plugin"]["name"] == "lifeiqa-example-plugin"
                assert result["per_distortion"]  # the CSV's distortion column

    # a rerun resumes: every unit is there, nothing runs again
    again = bench(*run_args(root, "pool", 2), "--executor", "pool", "--workers", "2", env=env)
    assert "0 run, 10 already done, 0 failed" in again.stdout  # the summary people read

    # where the plug-in is not installed, its units still load, summarise and render
    summary = bench("summarize", "pool", "--runs", str(root / "runs"), env=without)
    assert summary.returncode == 0, summary.stderr
    table = [line for line in summary.stdout.splitlines() if line.startswith("| ")]
    assert {line.split("|")[1].strip() for line in table} >= set(ROWS)
    board = root / "board"
    rendered = bench("leaderboard", "pool", "--runs", str(root / "runs"), "--out",
                     str(board), env=without)
    assert rendered.returncode == 0, rendered.stderr
    text = (board / "leaderboard.md").read_text()
    assert "example_tiny_cnn(width=8): plug-in lifeiqa-example-plugin 0.1.0 (2 units)" in text
    document = json.loads((board / "leaderboard.json").read_text())
    cells = {c["model"]: c for block in document["blocks"] for c in block["cells"]}
    assert set(cells) == set(ROWS) and cells["example_mlp_head(hidden=32)"]["kind"] == "feature_head"
    assert cells["example_sharpness"]["plugin"]["version"] == "0.1.0"

    # a reference file written for the suite checks the plug-in and pyiqa rows, and catches a
    # reproduction that falls short of it
    golden = root / "golden.yaml"
    written = bench("check", str(root / "runs" / "pool"), "--write-golden", str(golden), env=without)
    assert written.returncode == 0, written.stderr
    passed = bench("check", str(root / "runs" / "pool"), "--against", str(golden), env=without)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    reference = yaml.safe_load(golden.read_text())
    checked = {entry["model"] for entry in reference["entries"]}
    assert {"example_tiny_cnn(width=8)", "pyiqa:piqe"} <= checked
    for entry in reference["entries"]:
        if entry["model"] in ("example_tiny_cnn(width=8)", "pyiqa:piqe"):
            entry["metrics"]["srcc"] = 0.99  # far above what the units reached
    golden.write_text(yaml.safe_dump(reference, sort_keys=False))
    failed = bench("check", str(root / "runs" / "pool"), "--against", str(golden), env=without)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    for model in ("example_tiny_cnn(width=8)", "pyiqa:piqe"):
        assert any(model in line and "FAIL" in line for line in failed.stdout.splitlines())


@pytest.mark.slow
def test_a_plugin_that_fails_to_load_is_named_and_nothing_runs(tmp_path):
    """An installed entry point whose module raises: every command that resolves a model name
    stops with one line naming the plug-in, before any unit runs."""
    package = tmp_path / "broken"
    (package / "src" / "broken_plugin").mkdir(parents=True)
    (package / "src" / "broken_plugin" / "__init__.py").write_text(
        "raise ImportError('needs torchvision>=99')\n")
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "broken-plugin"\nversion = "2.0"\n'
        '[project.entry-points."lifeiqa_bench.models"]\nbroken = "broken_plugin"\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n')
    pip_install(package, tmp_path / "site")
    env = environment(tmp_path / "site")
    result = bench("run", "--protocol", "splits", "--add-models", "my_model", "--runs",
                   str(tmp_path / "runs"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lifeiqa-bench run: error: plug-in broken-plugin 2.0 (entry point broken = broken_plugin, "
        "group lifeiqa_bench.models) failed to load: ImportError: needs torchvision>=99")
    assert not (tmp_path / "runs").exists()
