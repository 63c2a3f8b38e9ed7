"""How a harness process shows the library's log: information on stdout as plain lines,
warnings and errors on stderr. The command line and the processes the executors start (pool
workers, Slurm tasks) configure it; the API configures nothing, so a program or notebook that
calls it sees only what its own logging setup shows."""

from __future__ import annotations

import logging
import sys


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def configure_logging(verbose: bool = False, stdout_is_data: bool = False) -> None:
    """Route the ``harness`` loggers to the terminal (idempotent: handlers are replaced).
    ``stdout_is_data``: the command prints a document for programs there (``--json``), so
    information goes to stderr with the warnings."""
    logger = logging.getLogger("harness")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    out = logging.StreamHandler(sys.stderr if stdout_is_data else sys.stdout)
    out.addFilter(_Below(logging.WARNING))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
