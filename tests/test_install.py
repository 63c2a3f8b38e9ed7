"""The package as a user gets it: an sdist built from the tracked files, a wheel built from that
sdist, both passing ``twine check``, the wheel installed into a fresh venv, and the commands run
from an empty folder, offline. The fresh venv takes its dependencies from this test venv (a
path line, so none of this venv's .pth files, the editable checkout's included, apply there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    ran = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                         timeout=900, env={**os.environ, **env})
    assert ran.returncode == 0, f"{args}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    return ran


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, an empty folder to run in)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    tracked = run("git", "ls-files", "-z", cwd=ROOT).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = root / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", dist, source,
        cwd=root)
    (sdist,) = dist.glob("lifeiqa-*.tar.gz")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", dist, sdist, cwd=root)
    (wheel,) = dist.glob("lifeiqa-*.whl")
    checked = run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, cwd=root)
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=root).stdout.strip()
    Path(purelib, "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        wheel, cwd=root)
    empty = root / "empty"
    empty.mkdir()
    return venv / "bin", empty


@pytest.mark.slow
def test_the_wheel_carries_its_data_and_runs_from_an_empty_folder(installed):
    bin_dir, empty = installed
    env = {"LIFEIQA_CACHE": str(empty.parent / "cache")}
    where = run(bin_dir / "python", "-c", "import harness, lifeiqa; print(harness.__file__)",
                cwd=empty)
    assert where.stdout.startswith(str(bin_dir.parent)), where.stdout  # not the checkout
    bench = bin_dir / "lifeiqa-bench"
    protocols = run(bench, "list", "protocols", cwd=empty, **env).stdout
    for name in ("splits", "comparison", "cross-dataset", "ci-golden"):
        assert f"\n{name} " in protocols
    assert "\nprobe_stage3 " in run(bench, "list", "models", cwd=empty, **env).stdout
    assert "\nlifeiqa_tiny " in run(bench, "list", "presets", cwd=empty, **env).stdout
    assert "kadid10k" in run(bench, "list", "datasets", cwd=empty, **env).stdout
    assert "| Life-IQA" in run(bench, "published", cwd=empty, **env).stdout
    ran = run(bench, "run", "--protocol", "splits", "--synth-size", "tiny", "--splits", "1",
              "--model", "lifeiqa_tiny", "--set", "epochs=1", "--runs", "runs", cwd=empty, **env)
    assert "1 run, 0 already done, 0 failed" in ran.stdout
    # (the demo runs the same packaged protocols; tests/test_demo_cli.py runs it from the
    # checkout, and a third demo here would cost CI a minute)
    image = empty / "photo.png"
    run(bin_dir / "python", "-c", "from PIL import Image; Image.new('RGB', (256, 200), "
        f"(120, 80, 40)).save({str(image)!r})", cwd=empty)
    run(bench, "score", image, "--model", "lifeiqa_tiny", "--untrained", "--out", "scores.csv",
        cwd=empty, **env)
    assert (empty / "scores.csv").read_text().count("\n") == 2
    # pyiqa finds the metric through the start-up hook the wheel installs, no import needed
    metric = run(bin_dir / "python", "-c",
                 "import pyiqa; m = pyiqa.create_metric('lifeiqa_effnet_lite0', pretrained=False, "
                 "device='cpu'); print(type(m.net).__name__, m.lower_better)", cwd=empty, **env)
    assert metric.stdout.split() == ["LifeIQAMetric", "False"], metric.stdout
    assert not [p for p in empty.iterdir() if p.name not in ("runs", "photo.png", "scores.csv")]


@pytest.mark.slow
def test_a_protocol_name_not_found_lists_the_packaged_ones(installed):
    bin_dir, empty = installed
    missing = subprocess.run([bin_dir / "lifeiqa-bench", "run", "--protocol", "splitz"],
                             capture_output=True, text=True, cwd=empty, timeout=300)
    assert missing.returncode == 2
    assert "unknown protocol 'splitz'; did you mean splits" in missing.stderr
    assert "harness/_assets/protocols" in missing.stderr  # where it looked: the wheel's copy
