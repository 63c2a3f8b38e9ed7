"""The embedded default: the benchmark end to end with no data and no network.

Synthetic KADID-, TID2013- and KonIQ-like datasets are generated (in the real layouts) from
images that ship with installed packages; the ``splits`` protocol runs on the KADID-like set
with the offline EfficientNet-Lite0 backbone frozen and its features cached; the ``comparison``
protocol puts Life-IQA, its ablations and the baselines (layer probes, the DEIQT-style head,
CNNIQA and WaDIQaM-NR trained under the same splits, PIQE zero-shot) on the same splits; then
cross-dataset transfer between the synthetic sets. The leaderboard (tables, per-distortion
breakdown, figures) is printed and written to ``runs/demo/leaderboard/``.

To stay near 10 minutes on 2 CPU cores the demo uses the ``cpu_demo`` recipe (the half-width
``lifeiqa_effnet_lite0_small`` preset, 3 epochs, one crop per image), the comparison on the
first 3 of the 10 splits, and one seed per cross-dataset pair; the commands it prints run the
full versions.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.reporting.leaderboard import write_leaderboard

STEPS = (
    ("splits", []),
    ("comparison", ["--splits", "3"]),
    ("cross-dataset", ["--seeds", "1"]),
)


SMOKE = ["--synth-size", "tiny", "--model", "lifeiqa_tiny", "--splits", "2"]


def run_demo(runs: str = "runs", seed: int = 0, smoke: bool = False,
             leaderboard_out: str | None = None) -> int:
    """Run the demo; ``smoke`` swaps in tiny data and the random-weight tiny model (seconds,
    for tests), so its numbers mean nothing."""
    from harness.cli import build_parser
    from harness.cli.commands import run_protocol

    start = time.perf_counter()
    parser = build_parser()
    failures = 0
    for protocol, extra in STEPS:
        argv = ["run", "--protocol", protocol, "--recipe", "cpu_demo", "--suite",
                f"demo/{protocol}", "--runs", runs, "--seed", str(seed), *extra,
                *(SMOKE if smoke else [])]
        print(f"\n$ lifeiqa-bench {' '.join(argv)}")
        failures += run_protocol(parser.parse_args(argv)) != 0
    out = Path(leaderboard_out) if leaderboard_out else Path(runs) / "demo" / "leaderboard"
    elapsed = time.perf_counter() - start
    title = ("lifeiqa demo leaderboard (synthetic data: these numbers test the harness, not "
             "Life-IQA's published accuracy)")
    path = write_leaderboard("demo", runs, out, title=title)
    print("\n" + "=" * 80 + "\n" + path.read_text())
    print(f"Demo wall time {elapsed / 60:.1f} min. Leaderboard written to {path} (figures in "
          f"{path.parent / 'figures'}); one folder per unit under {Path(runs) / 'demo'}/.")
    return 1 if failures else 0
