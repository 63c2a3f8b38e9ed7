"""One worker of ``lifeiqa-bench run --executor pool`` (started as ``python -m harness.cli.worker``
by the pool, not by hand).

It walks the pool run's jobs in order, runs each one that it takes from the run's queue (see
:class:`harness.engine.executors.PoolRun`) and writes what became of them to
``worker-<INDEX>.json``. Its GPU, if any, is the one ``CUDA_VISIBLE_DEVICES`` (set by the parent
before torch is imported) leaves visible.
"""

from __future__ import annotations

from pathlib import Path


def run_worker(folder: str | Path, index: int, threads: int | None = None) -> int:
    """Run this worker's share of the pool run in ``folder``; 1 if any of its units failed."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from harness.engine.executors import PoolRun

    pool = PoolRun(Path(folder))
    summary = pool.runner().run_all(pool.jobs, force=pool.force,
                                    take=lambda job: pool.take(job, index))
    pool.write_report(index, summary)
    return 1 if summary.failed else 0
