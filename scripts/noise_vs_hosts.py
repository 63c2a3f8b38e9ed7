"""Does the noise a board measures from its own seed reruns match what another host changes?

Sets each cell's rerun sd from a board's noise reruns (``rerun_noise.cells`` of its
``leaderboard.json``) beside the sd between two boards of the same units made under different
arithmetic (:func:`harness.reporting.leaderboard.board_noise`), per cell and pooled by model
kind (root mean square over cells: one sd per kind, with more degrees of freedom than any one
cell's). Prints markdown.

    python scripts/noise_vs_hosts.py leaderboards/synthetic/leaderboard.json \\
        leaderboards/noise/avx512-native.json leaderboards/noise/avx2-native.json
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from harness.reporting.leaderboard import board_noise
from harness.reporting.leaderboard_format import read_leaderboard_document


def kinds_of(board: dict) -> dict[tuple[str, str, str], str]:
    """Each cell's model kind, by (model, column, config hash)."""
    return {(c["model"], c["column"], c["config_hash"]): c["kind"]
            for block in board["blocks"] for c in block["cells"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("board", type=Path, help="leaderboard.json whose noise came from reruns")
    parser.add_argument("hosts", type=Path, nargs=2, help="two boards of the same units")
    parser.add_argument("--metric", default="srcc", choices=["srcc", "plcc"])
    args = parser.parse_args()
    board = read_leaderboard_document(args.board)
    if board["rerun_noise"] is None:
        parser.error(f"{args.board}: its verdicts were not re-tested under rerun noise")
    seeds = {(c["model"], c["column"], c["config_hash"]): c for c in board["rerun_noise"]["cells"]}
    hosts = board_noise(*args.hosts).by_cell
    kinds = kinds_of(board)
    shared = sorted(seeds.keys() & hosts.keys())
    if not shared:
        parser.error("the board and the two host boards share no cell")
    metric = args.metric
    print(f"| model | column | kind | seed sd {metric.upper()} | from | host sd | seed / host |")
    print("|---|---|---|---|---|---|---|")
    pooled: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for key in shared:
        seed, host = seeds[key][metric], hosts[key][metric]
        pooled[kinds[key]].append((seed, host))
        ratio = f"{seed / host:.2f}" if host else ("-" if not seed else "inf")
        print(f"| {key[0]} | {key[1]} | {kinds[key]} | {seed:.4f} | {seeds[key]['source']} | "
              f"{host:.4f} | {ratio} |")
    print("\n| kind | cells | seed sd (rms over cells) | host sd (rms over cells) | seed / host |")
    print("|---|---|---|---|---|")
    for kind, pairs in sorted(pooled.items()):
        seed = math.sqrt(sum(s * s for s, _ in pairs) / len(pairs))
        host = math.sqrt(sum(h * h for _, h in pairs) / len(pairs))
        ratio = f"{seed / host:.2f}" if host else "-"
        print(f"| {kind} | {len(pairs)} | {seed:.4f} | {host:.4f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
