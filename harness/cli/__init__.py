"""``lifeiqa-bench``: the harness's command line, a thin layer over :mod:`harness.api`.

Each subcommand is a module here with ``NAME``, ``HELP`` (and optionally ``DESCRIPTION``,
``EPILOG``), ``add_arguments(parser)`` and ``run(args) -> int``. This package is the only place
that parses arguments, prints for the user, or turns an error into an exit status: a
:class:`~harness.errors.HarnessError` (or a model-library error) becomes one line on stderr and
its exit status (2 for bad input, found before any work; 130 for Ctrl-C, saying what finished
and how to resume; 1 otherwise), and so does an OSError (a full disk, a read-only folder: its
message names the path). A traceback is a bug.

Before anything imports torch or numpy, :func:`main` pins the CPU arithmetic
(:mod:`harness.arithmetic`: AVX2 kernels on x86-64 unless ``LIFEIQA_ARITHMETIC=native``), so a
run gives the same numbers on every x86 host; so nothing at this module's top may import them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType
from typing import cast

from harness import arithmetic
from harness.errors import HarnessError
from harness.logs import configure_logging

COMMANDS = ("demo", "run", "reproduce", "summarize", "leaderboard", "listing", "score", "synth",
            "datasets", "speed", "published", "check", "train", "weights", "selftest")


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"harness.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeiqa-bench",
        description="Benchmark harness for Life-IQA and blind image quality assessment.",
        epilog="example: lifeiqa-bench demo",
    )
    parser.add_argument("--protocol", help="shorthand: 'lifeiqa-bench --protocol NAME [run "
                                           "options]' is 'lifeiqa-bench run --protocol NAME ...'")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command_module(name)
        epilog = getattr(module, "EPILOG", None)
        sub = commands.add_parser(
            module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", None),
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter if epilog and "\n" in epilog
            else argparse.HelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        arithmetic.pin()
    except HarnessError as err:
        print(f"lifeiqa-bench: error: {err}", file=sys.stderr)
        return err.exit_code
    from lifeiqa.errors import LifeIQAError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--protocol"):  # the shorthand for 'run --protocol ...'
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # a command's --json makes its stdout one document for programs: nothing else goes there
    configure_logging(stdout_is_data=getattr(args, "json", False))
    try:
        return cast(int, args.handler(args))
    except KeyboardInterrupt:  # between units, or outside a run (data, a leaderboard)
        print(f"lifeiqa-bench {args.command}: interrupted (Ctrl-C): every file is written whole "
              f"or not at all, so what finished is kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (interpreter exit flushes it)
        return 0
    except (HarnessError, LifeIQAError) as err:
        code = getattr(err, "exit_code", 2)  # the model library's errors are all about input
        print(f"lifeiqa-bench {args.command}: error: {err}", file=sys.stderr)
        return code
    except OSError as err:  # a full disk, a read-only folder: the message names the path
        # the harness's own OSErrors carry their whole text as strerror ("[Errno 28]" aside);
        # the system's name the file in str()
        text = err.strerror if err.strerror and not err.filename else str(err)
        print(f"lifeiqa-bench {args.command}: error: {text}", file=sys.stderr)
        return 1
