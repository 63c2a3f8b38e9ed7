"""The CPU arithmetic (harness/arithmetic.py): pinned by the command line before torch loads,
recorded with every unit, keyed into the caches, and the golden file made under it equal to an
AVX2-only host's units."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import commands
import pytest
import yaml

from harness import arithmetic
from harness.results.store import read_result

ROOT = Path(__file__).resolve().parent.parent
X86 = platform.machine().lower() in ("x86_64", "amd64")
PIN = (*arithmetic.SETTINGS, arithmetic.VARIABLE)  # the variables conftest.py's pin set


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the pin (conftest.py set it), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PIN}
    return {**env, **extra}


def host_capability() -> str:
    return subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu."
                           "get_cpu_capability())"], env=clean_environment(), capture_output=True,
                          text=True, check=True).stdout.strip()


def recorded(env: dict[str, str]) -> dict:
    """What a process that pins first (as the command line does) records."""
    script = ("from harness import arithmetic; arithmetic.pin(); import numpy, scipy, torch, json, "
              "dataclasses; print(json.dumps(dataclasses.asdict(arithmetic.current())))")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def bench(*args: str, cache: Path | None = None, env: Mapping[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    """The command line from the repository root in :func:`clean_environment` with ``env``."""
    return commands.bench(*args, cache=cache, cwd=ROOT, env=env, unset=PIN)


@pytest.mark.slow
@pytest.mark.skipif(not X86, reason="the x86-avx2 profile is the default on x86-64 only")
def test_units_record_the_pinned_arithmetic_and_native_runs_keep_apart(tmp_path):
    cache = tmp_path / "cache"
    run = ("run", "--protocol", "ci-golden", "--synth-size", "tiny", "--datasets", "synth-csiq",
           "--models", "probe_stage4", "--splits", "1", "--suite", "golden")
    pinned = bench(*run, "--runs", str(tmp_path / "pinned"), cache=cache)
    assert pinned.returncode == 0, pinned.stderr
    native = bench(*run, "--runs", str(tmp_path / "native"), cache=cache,
                   env={"LIFEIQA_ARITHMETIC": "native"})
    assert native.returncode == 0, native.stderr
    [a] = [read_result(p).environment.arithmetic for p in (tmp_path / "pinned").rglob("result.json")]
    [b] = [read_result(p).environment.arithmetic for p in (tmp_path / "native").rglob("result.json")]
    assert (a.profile, a.torch_capability, a.onednn_max_isa, a.mkl_instructions,
            a.openblas_coretype) == ("x86-avx2", "AVX2", "AVX2", "AVX2", "Haswell")
    assert "X86_V4" in a.numpy_disabled and a.threads >= 1 and a.machine == platform.machine()
    assert (b.profile, b.torch_capability, b.openblas_coretype) == \
        ("native", host_capability(), None)
    # one backbone, two feature folders and two generations of the synthetic set: nothing
    # computed under one arithmetic is read under the other
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2
    manifest = json.loads(next((tmp_path / "cache" / "synth").glob("csiq-tiny-*/synth.json"))
                          .read_text())
    assert manifest["arithmetic"] == b.kernels
    # a reference made under one arithmetic says so when checked against units of another
    golden = tmp_path / "golden.yaml"
    written = bench("check", str(tmp_path / "pinned" / "golden"), "--write-golden", str(golden))
    assert written.returncode == 0, written.stderr
    assert yaml.safe_load(golden.read_text())["generated"]["arithmetic"] == [a.label]
    checked = bench("check", str(tmp_path / "native" / "golden"), "--against", str(golden))
    assert f"the reference's units computed under {a.label}, these under {b.label}" in \
        checked.stdout + checked.stderr


@pytest.mark.slow
def test_a_setting_the_host_made_is_kept_and_the_record_says_custom():
    env = clean_environment(OPENBLAS_CORETYPE="Sandybridge")
    record = recorded(env)
    assert record["openblas_coretype"] == "Sandybridge"
    assert record["profile"] == ("custom" if X86 else "native")
    assert recorded(clean_environment(LIFEIQA_ARITHMETIC="native"))["profile"] == "native"
    if X86:
        assert recorded(clean_environment())["profile"] == "x86-avx2"


def test_pinning_after_torch_loaded_changes_nothing():
    import torch  # noqa: F401 (loaded, as in any test)

    before = dict(os.environ)
    assert arithmetic.pin("native") is False
    assert dict(os.environ) == before


def test_an_unknown_profile_is_one_line_naming_the_variable():
    out = bench("list", env={"LIFEIQA_ARITHMETIC": "x86_avx2"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "lifeiqa-bench: error: unknown arithmetic profile (LIFEIQA_ARITHMETIC) 'x86_avx2'; did "
        "you mean x86-avx2? Known: native, x86-avx2"]


def test_the_golden_file_equals_an_avx2_only_hosts_units():
    """The committed golden was made under the pinned arithmetic on an AVX-512 host; every unit
    equals (to the golden's 6 decimals) what an unpinned run on a host without AVX-512 gave
    (tests/fixtures/avx2-host-gate-units.json, 2026-12-06). After a deliberate change of the
    gate's numbers this evidence must be made again on such a host."""
    golden = yaml.safe_load((ROOT / "leaderboards" / "golden-synthetic.yaml").read_text())
    host = json.loads((ROOT / "tests" / "fixtures" / "avx2-host-gate-units.json").read_text())
    theirs = {(u["model"], u["dataset"], u["unit"]): (round(u["srcc"], 6), round(u["plcc"], 6))
              for u in host["units"]}
    ours = {(e["model"], e["dataset"], s["unit"]): (s["srcc"], s["plcc"])
            for e in golden["entries"] for s in e["split_files"]}
    assert len(ours) == len(theirs) == 60
    differing = sorted(k for k in ours if ours[k] != theirs.get(k))
    assert not differing, f"{len(differing)} unit(s) differ, e.g. {differing[:3]}"
    assert [label.split(" (")[0] for label in golden["generated"]["arithmetic"]] == ["x86-avx2"]
