"""The embedded default: the benchmark end to end with no data and no network.

Synthetic KADID-, TID2013- and KonIQ-like datasets are generated (in the real layouts) from
images that ship with installed packages; the ``splits`` protocol runs on the KADID-like set
with the offline EfficientNet-Lite0 backbone frozen and its features cached, then the paper's
ablations, then cross-dataset transfer between the synthetic sets; the tables (with the
per-distortion breakdown) are printed and written to ``runs/demo/leaderboard.md``.

To fit in 10 minutes on 2 CPU cores the demo uses the ``cpu_demo`` recipe (the half-width
``lifeiqa_effnet_lite0_small`` preset, 3 epochs, one crop per image), the ablations on 2 of the
10 splits, and one seed per cross-dataset pair; the commands it prints run the full versions.
"""

from __future__ import annotations

import time
from pathlib import Path

from .aggregate import aggregate, markdown_tables
from .store import ResultsStore

STEPS = (
    ("splits", []),
    ("ablation", ["--splits", "2"]),
    ("cross-dataset", ["--seeds", "1"]),
)


SMOKE = ["--synth-size", "tiny", "--model", "lifeiqa_tiny"]


def run_demo(runs: str = "runs", seed: int = 0, smoke: bool = False) -> int:
    """Run the demo; ``smoke`` swaps in tiny data and the random-weight tiny model (seconds,
    for tests), so its numbers mean nothing."""
    from .cli import build_parser
    from .commands import run_protocol

    start = time.perf_counter()
    parser = build_parser()
    failures = 0
    for protocol, extra in STEPS:
        argv = ["run", "--protocol", protocol, "--recipe", "cpu_demo", "--suite",
                f"demo/{protocol}", "--runs", runs, "--seed", str(seed), *extra,
                *(SMOKE if smoke else [])]
        print(f"\n$ lifeiqa-bench {' '.join(argv)}")
        failures += run_protocol(parser.parse_args(argv)) != 0
    store = ResultsStore(runs)
    cells = {protocol: aggregate(store.results(f"demo/{protocol}")) for protocol, _ in STEPS}
    reference = min((c.model for block in cells.values() for c in block if "+" not in c.model),
                    default=None)
    # the per-distortion breakdown of the 10-split run stands for the per-distortion protocol
    text = "\n".join(markdown_tables(block, reference, breakdown=protocol == "splits")
                     for protocol, block in cells.items())
    elapsed = time.perf_counter() - start
    footer = (f"\nSynthetic data only: these numbers test the harness, not Life-IQA's published "
              f"accuracy. Recipe cpu_demo ({reference}, frozen backbone). "
              f"Wall time {elapsed / 60:.1f} min.")
    path = Path(runs) / "demo" / "leaderboard.md"
    path.write_text("# lifeiqa demo leaderboard\n\n" + text + footer + "\n")
    print("\n" + "=" * 80 + "\n" + text + footer)
    print(f"\nTables written to {path}; one folder per unit under {Path(runs) / 'demo'}/.")
    return 1 if failures else 0
