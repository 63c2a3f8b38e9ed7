"""One worker of ``lifeiqa-bench run --executor pool``, started by it (not by hand).

``python -m harness.engine.worker RUN_FOLDER INDEX [--threads N]`` walks the pool run's jobs in order,
runs each one that it takes from the run's queue (see :class:`harness.engine.executors.PoolRun`) and
writes what became of them to ``worker-<INDEX>.json``. Its GPU, if any, is the one
``CUDA_VISIBLE_DEVICES`` (set by the parent before torch is imported) leaves visible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.engine.worker",
                                     description="a worker of lifeiqa-bench run --executor pool")
    parser.add_argument("folder", help="the pool run's folder (holding jobs.json)")
    parser.add_argument("index", type=int, help="this worker's index")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from harness.engine.executors import PoolRun

    pool = PoolRun(Path(args.folder))
    summary = pool.runner().run_all(pool.jobs, force=pool.force,
                                    take=lambda job: pool.take(job, args.index))
    pool.write_report(args.index, summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
