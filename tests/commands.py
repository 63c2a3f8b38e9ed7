"""The command line run as a user runs it, in a subprocess: one helper for every test file, so
each runs the same program in the same environment and only says what its test changes."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import pytest


def command(*args: str) -> list[str]:
    """``lifeiqa-bench ARGS`` as this interpreter's ``python -m harness.cli``: a script found on
    PATH could belong to another installation, and then another copy of the harness is tested."""
    return [sys.executable, "-m", "harness.cli", *args]


def environment(cache: Path | None = None, env: Mapping[str, str] | None = None,
                unset: Collection[str] = ()) -> dict[str, str]:
    """This process's environment less ``unset``, ``env`` over it, and ``LIFEIQA_CACHE`` at
    ``cache`` where given (else the session's shared cache). Inherited, because it carries what
    conftest.py set for every command (the socket block, the pinned arithmetic, the thread share,
    the data cache)."""
    inherited = {k: v for k, v in os.environ.items() if k not in unset}
    return {**inherited, **(env or {}), **({} if cache is None else {"LIFEIQA_CACHE": str(cache)})}


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the bytes a process may write to one file (``ulimit -f``):
    a full disk met on purpose."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def bench(*args: str, cache: Path | None = None, cwd: Path | None = None,
          env: Mapping[str, str] | None = None, unset: Collection[str] = (),
          file_limit: int | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``lifeiqa-bench ARGS`` to the end and return its exit status and output.

    ``cache``, ``env`` and ``unset`` make its environment (:func:`environment`); ``file_limit``
    caps the bytes it may write to one file (:func:`file_size_limit`). The timeout is generous
    for 2 cores: it is there to end a hung command, not to time a slow one."""
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=environment(cache, env, unset),
                          preexec_fn=None if file_limit is None else file_size_limit(file_limit))


def counts(stdout: str) -> tuple[int, int, int]:
    """(run, already done, failed) from the stdout of ``run --json`` (``Results.outcome``): the
    counts as data, whatever the human summary's wording."""
    try:
        outcome = json.loads(stdout)
    except ValueError as err:
        raise AssertionError(f"run --json printed no JSON document ({err}):\n{stdout[-2000:]}") \
            from err
    return outcome["run"], outcome["already_done"], len(outcome["failed"])


def bench_here(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``lifeiqa-bench ARGS`` in this process (``harness.cli.main``), for a command that is
    refused or done in moments: its exit status and what it printed, as :func:`bench` returns
    them, without the seconds a fresh interpreter spends importing torch. Its environment is
    this process's (``monkeypatch.setenv`` for a test's own)."""
    from harness.cli import main

    capsys.readouterr()  # what the test printed before is not the command's
    try:
        code = main(list(args))
    except SystemExit as end:  # argparse's own refusals
        code = end.code if isinstance(end.code, int) else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(command(*args), code, out, err)


def start_bench(*args: str, cache: Path | None = None, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, stdout: int = subprocess.PIPE,
                stderr: int = subprocess.STDOUT) -> subprocess.Popen[str]:
    """Start ``lifeiqa-bench ARGS`` and return at once, for a test that kills it midway or runs
    several side by side. By default its output (stderr merged into stdout) is read with
    ``communicate()``; ``subprocess.DEVNULL`` drops it."""
    return subprocess.Popen(command(*args), stdout=stdout, stderr=stderr, text=True, cwd=cwd,
                            env=environment(cache, env))
