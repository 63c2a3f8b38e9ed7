"""``lifeiqa-bench check``: a suite's medians against reference scores, or a golden file."""

from __future__ import annotations

import argparse

NAME = "check"
HELP = "check a suite's medians against reference scores, or write a golden file"
DESCRIPTION = ("Match each reference row to the suite's cell (model, dataset or pair, protocol, "
               "training fraction) and fail (exit 1) when a median falls short of a published "
               "row by more than the tolerance (better is fine), or differs from a golden "
               "(measured) row by more than it either way; when the epoch selection differs "
               "(unless --allow-selection-mismatch); or when the cell has fewer units than the "
               "reference (or --min-units). Rows without a reproduction are MISSING; rows "
               "the harness cannot reproduce (full-reference metrics, datasets it does not "
               "have) are N/A with the reason and never fail. A row computed on other images "
               "than its reference (e.g. pyiqa's KonIQ-10k official test part vs a whole "
               "dataset here) is compared and the difference stated. Reference files may name "
               "any model and protocol the results record. --write-golden writes the suite's "
               "medians as a reference file with per-row tolerances from the measured spread "
               "over units.")
EPILOG = ("examples:\n  lifeiqa-bench check runs/splits --against leaderboards/published.yaml"
          "\n  lifeiqa-bench check runs/pyiqa-zero-shot --against "
          "leaderboards/pyiqa/published.yaml"
          "\n  lifeiqa-bench check runs/ci --write-golden leaderboards/golden-ci.yaml"
          "\n  lifeiqa-bench check runs/ci --against leaderboards/golden-ci.yaml --require-all "
          "--report check.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="a suite folder of the results store, e.g. runs/splits")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--against", metavar="REF.yaml", help="reference file to check against")
    mode.add_argument("--write-golden", metavar="OUT.yaml",
                      help="write the suite's medians as a reference file (provenance: measured)")
    parser.add_argument("--metric", default="srcc", choices=["srcc", "plcc", "both"])
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="allowed shortfall where a row gives none (default 0.01)")
    parser.add_argument("--report", metavar="check.json", help="also write the comparison as JSON")
    parser.add_argument("--require-all", action="store_true",
                        help="reference rows without a reproduction fail the check")
    parser.add_argument("--allow-selection-mismatch", action="store_true",
                        help="compare rows whose epoch selection differs from the reproduction's "
                             "(with a warning) instead of failing them")
    parser.add_argument("--min-units", type=int, metavar="N",
                        help="a reproduced cell needs at least N units (besides the reference's "
                             "own unit count, where it gives one)")
    parser.add_argument("--spread-k", type=float, default=3.0,
                        help="golden: tolerance = max(min, k * sqrt(2) * sqrt(pi/2) * std / "
                             "sqrt(units)): k standard errors of the difference of two medians "
                             "(default k = 3)")
    parser.add_argument("--min-tolerance", type=float, default=0.005,
                        help="golden: the smallest tolerance written (default 0.005)")
    parser.add_argument("--rerun", action="append", default=[], metavar="RUNS/SUITE",
                        help="golden: the same suite run again (repeatable); the golden file then "
                             "records every unit and tolerances from the rerun noise")
    parser.add_argument("--noise-k", type=float, default=3.0,
                        help="golden with --rerun: tolerance = max(min, k * the largest per-unit "
                             "rerun difference) (default k = 3)")


def run(args: argparse.Namespace) -> int:
    from harness.reporting.check import check_suite, write_golden
    from harness.reporting.reference import SELECTION_NAMES

    if args.write_golden:
        document = write_golden(args.results, args.write_golden, args.spread_k,
                                args.min_tolerance, tuple(args.rerun), args.noise_k)
        for entry in document["entries"]:
            noise = entry.get("rerun_noise")
            print(f"{entry['model']:32s} {entry.get('dataset') or ' -> '.join(entry['pair']):28s} "
                  f"SRCC {entry['metrics']['srcc']:.4f} (tolerance "
                  f"{entry['tolerance']['srcc']:.3f}"
                  + (f" per unit, rerun noise {noise['srcc_max_abs']:.2g}" if noise else "")
                  + f", {entry['units']} units, {SELECTION_NAMES[entry['selection']]})")
        print(f"golden file written to {args.write_golden} ({len(document['entries'])} entries)")
        return 0
    report = check_suite(args.results, args.against, args.metric, args.tolerance,
                         args.require_all, args.allow_selection_mismatch, args.min_units)
    print(report.text())
    if args.report:
        report.write_json(args.report)
        print(f"report written to {args.report}")
    return 0 if report.passed else 1
