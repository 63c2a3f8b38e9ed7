"""``lifeiqa-bench speed``: the speed benchmark (:mod:`harness.speed`) from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "speed"
HELP = ("measure the harness's speed: decoder overhead, data path, feature cache, inference "
        "against pyiqa, training throughput and MFU, decoder steps, units per loop, protocol "
        "cost against the number of splits")
DESCRIPTION = ("The speed benchmarks (harness/speed), each a ratio or rate measured side by "
               "side in one run on generated images, with random or offline weights (no "
               "network). Prints the tables; --out writes them as JSON.")
EPILOG = "example: lifeiqa-bench speed --device cuda --out speed.json --markdown speed.md"


def section_numbers(text: str) -> tuple[int, ...]:
    """``"1,3"`` -> ``(1, 3)``; an argparse type, so a list that is not numbers is a usage
    error (which numbers exist, :class:`harness.speed.SpeedOptions` checks)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected section numbers like 1,2,5") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sections", type=section_numbers,
                        help="comma-separated sections to run (default: 1-7; 8 runs the gate and "
                             "the demo at several split counts, ~15 min on 2 cores; 9 the gate "
                             "cold under the pinned and the native arithmetic, ~6 min)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes and iterations: a quick check, figures not meaningful")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"],
                        help="autocast precision on CUDA (default bf16; CPU runs fp32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training model")
    parser.add_argument("--workers", type=int,
                        help="crop-cutting threads and authors'-style loader processes (default: "
                             "4 on a GPU, 2 on CPU)")
    parser.add_argument("--out", help="write the report as JSON here")
    parser.add_argument("--markdown", help="write the tables as markdown here")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, writing --out and --markdown after every section (an interrupted run
    keeps what it measured), then print the tables; 1 if a section failed."""
    from harness.speed import SpeedOptions, SpeedReport, run_speed

    chosen = {"sections": args.sections} if args.sections is not None else {}
    options = SpeedOptions(device=args.device, tiny=args.tiny, precision=args.precision,
                           compile=args.compile, workers=args.workers, **chosen)

    def save(report: SpeedReport) -> None:
        if args.out:
            Path(args.out).write_text(report.to_json())
        if args.markdown:
            Path(args.markdown).write_text(report.to_markdown() + "\n")

    report = run_speed(options, on_section=save)
    save(report)
    print(report.to_markdown())
    return 1 if report.failed else 0
