"""``python -m harness.cli.worker RUN_FOLDER INDEX [--threads N]``: a process of the pool executor
(:mod:`harness.engine.worker`); the pool starts it, a user does not."""

from __future__ import annotations

import argparse
import sys

from harness.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.worker",
                                     description="a worker of lifeiqa-bench run --executor pool")
    parser.add_argument("folder", help="the pool run's folder (holding jobs.json)")
    parser.add_argument("index", type=int, help="this worker's index")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    configure_logging()
    from harness.engine.worker import run_worker
    from harness.errors import RunInterruptedError

    try:
        return run_worker(args.folder, args.index, args.threads)
    except (KeyboardInterrupt, RunInterruptedError) as err:
        # Ctrl-C reaches every worker of the terminal's process group: the pool says once, for
        # all of them, what finished and how to resume
        return getattr(err, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
