"""Test session set-up: no network, offline hubs, small deterministic thread use."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

NETBLOCK = Path(__file__).parent / "netblock"

# Before anything imports timm or huggingface_hub: offline mode, and sockets blocked here and in
# every subprocess (via sitecustomize on PYTHONPATH).
os.environ["LIFEIQA_TEST_NETBLOCK"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(NETBLOCK), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(NETBLOCK))
import lifeiqa_netblock  # noqa: E402

lifeiqa_netblock.install()

# Under pytest-xdist each worker gets its share of the cores, it and the commands it starts: two
# workers whose torch each spun two OpenMP threads on 2 cores ran the demo 8 times slower.
# A share the caller set (OMP_NUM_THREADS) is kept.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "OMP_NUM_THREADS" not in os.environ:
    _workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))
# Commands that choose their own threads (the speed benchmark's cold runs, Slurm tasks, the
# gate's copies) share the cores with the other worker: OpenMP threads that wait then sleep
# instead of spinning. Spinning doubled the CPU time of the speed tests' cold runs (62 CPU-s
# against 30 alone), and a 2-CPU Slurm task's took 98 s over a unit sized for 15. The policy
# changes no result, only who gets the core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The arithmetic the command line pins (harness/arithmetic.py), here too and before torch loads:
# tests that run the CLI in a subprocess and those that call the API in this process compute
# alike, and share synthetic sets and features (both are keyed by the kernels).
from harness import arithmetic  # noqa: E402

if not arithmetic.pin():
    raise RuntimeError("tests/conftest.py: torch, numpy or scipy loaded before the arithmetic "
                       "was pinned; a plug-in imported them first")

# One data cache for the session, the user's never: synthetic sets, decoded images and features
# are made once and read by every test, worker (pytest-xdist) and command that does not set its
# own (the cache is safe for concurrent use: entries are locked and replaced whole). A test that
# needs a cold cache, or damages one, sets LIFEIQA_CACHE itself. The main process chooses; the
# workers it starts inherit the choice. LIFEIQA_TEST_CACHE names a folder to keep between sessions.
if "PYTEST_XDIST_WORKER" not in os.environ:
    _kept = os.environ.get("LIFEIQA_TEST_CACHE")
    os.environ["LIFEIQA_CACHE"] = _kept or tempfile.mkdtemp(prefix="lifeiqa-test-cache-")
    if not _kept:
        atexit.register(shutil.rmtree, os.environ["LIFEIQA_CACHE"], ignore_errors=True)
SESSION_CACHE = Path(os.environ["LIFEIQA_CACHE"])

# No test reads or writes the user's installed Life-IQA weights (lifeiqa.weights) or picks up a
# checkpoint named in the user's environment; tests that register weights use their own folder.
_WEIGHTS = tempfile.mkdtemp(prefix="lifeiqa-test-weights-")
os.environ["LIFEIQA_WEIGHTS_DIR"] = _WEIGHTS
os.environ.pop("LIFEIQA_CHECKPOINT", None)
atexit.register(shutil.rmtree, _WEIGHTS, ignore_errors=True)


@pytest.fixture
def session_cache() -> Path:
    """The session's shared data cache (above), for a test that moves LIFEIQA_CACHE elsewhere
    for part of its work."""
    return SESSION_CACHE


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _unconfigured_logging():
    """Each test starts with the ``harness`` loggers as a library user finds them: a test that
    runs the command line in-process leaves handlers on streams pytest closes afterwards."""
    import logging

    yield
    logger = logging.getLogger("harness")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


# The files that hold the longest chains of work. Under ``--dist loadfile`` a file runs whole on
# one worker, and xdist hands files out most tests first, so these (few tests, minutes each: the
# Slurm file alone takes five) started last and ran on while the other worker sat idle. They
# are handed out first; the rest follow in xdist's order.
LONG_FILES = ("tests/test_slurm_cluster.py", "tests/test_docs_blocks.py", "tests/test_speed.py",
              "tests/test_plugin_package.py", "tests/test_harness_runs.py")
_missing = [name for name in LONG_FILES if not (Path(__file__).parents[1] / name).is_file()]
assert not _missing, f"tests/conftest.py: LONG_FILES names files that do not exist: {_missing}"


@pytest.hookimpl(optionalhook=True)  # a run without xdist (-p no:xdist) has no such hook
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler for the mode asked for
    from collections import OrderedDict

    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        reordered = False

        def _assign_work_unit(self, node):
            # the queue is complete at the first assignment (xdist fills it, then assigns)
            if not self.reordered:
                rank = {name: i for i, name in enumerate(LONG_FILES)}
                self.workqueue = OrderedDict(sorted(
                    self.workqueue.items(), key=lambda item: rank.get(item[0], len(rank))))
                self.reordered = True
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)
