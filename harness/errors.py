"""Exceptions raised by the harness; each message names the value, what was expected, and close
names where there are some.

The API raises these and never ends the process; only ``harness.cli.main`` turns them into exit
statuses: :class:`InvalidOptionError` (bad input, found before any work starts) exits 2, every
other :class:`HarnessError` exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable


class HarnessError(Exception):
    """Base class of the harness's errors."""

    exit_code = 1


class InvalidOptionError(HarnessError, ValueError):
    """An option, argument or input value that cannot be used (checked before any work)."""

    exit_code = 2


class UnknownNameError(InvalidOptionError, KeyError):
    """A name (protocol, recipe, model, dataset, baseline, ...) that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetError(InvalidOptionError):
    """A dataset folder that cannot be read as the dataset it is named as."""


class DataNotFoundError(DatasetError):
    """A dataset or input folder that does not exist or holds no usable data."""


class PluginError(InvalidOptionError):
    """A plug-in (an installed entry point or an included module) that cannot be loaded, or
    that registers something it may not (a name the harness already has)."""


class ResultsError(HarnessError):
    """A results store that cannot be read or written as asked."""


class NoResultsError(ResultsError):
    """A suite with no complete results."""


class ResultSchemaError(ResultsError):
    """A result file (``result.json``, ``predictions.csv``, ``leaderboard.json``) whose version
    or content cannot be read."""


class DuplicateUnitError(ResultsError):
    """Two results of the same unit in one aggregation cell (the same condition and unit)."""


class AmbiguousReferenceError(ResultsError):
    """A reference model that holds one table column under several configs: markers against
    it would compare with an arbitrary one."""


class PairingError(ResultsError):
    """Two results to be compared pairwise whose units ran on different split files."""


class ModelContractError(HarnessError, ValueError):
    """A model that breaks its family's contract while it runs (a plug-in's, usually): an
    output of the wrong type or shape, or scores that are not finite."""


class ExecutionError(HarnessError):
    """Jobs could not be run where they were sent (an executor, device or process failure)."""


class RunInterruptedError(HarnessError):
    """The user stopped a run (Ctrl-C): the message says what finished, what was cut short and
    how to resume. The exit status is a shell's for SIGINT."""

    exit_code = 130


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> UnknownNameError:
    """``UnknownNameError`` for ``name`` naming the close registered names and all of them
    (worded as every registry words it: :func:`lifeiqa.naming.unknown_message`)."""
    from lifeiqa.naming import unknown_message

    return UnknownNameError(unknown_message(kind, name, known) + (f" {hint}" if hint else ""))
