"""The README's main command, run as a user runs it (the installed console script)."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_lifeiqa_bench_demo_scores_skimage_photos_offline():
    script = shutil.which("lifeiqa-bench") or str(Path(sys.executable).parent / "lifeiqa-bench")
    result = subprocess.run([script, "demo"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "image" not in line]
    assert len(rows) == 6
    assert any("chelsea" in row and "cat" in row for row in rows)
    assert any("coffee" in row and "espresso" in row for row in rows)
    assert "randomly initialised" in result.stdout
