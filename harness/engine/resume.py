"""A unit's training state after each finished epoch, so that a unit cut short resumes there.

A Slurm task that reaches its time limit is requeued (:mod:`harness.engine.slurm`); without
this it would start its unit again from epoch 0 under the same limit, and burn every retry. The
state (``<unit>/resume.pt``) holds the weights, the optimiser and the step count, the epoch log,
the epoch selection's best state so far, and every random stream the loop draws from (torch's,
and the generators of the training order, the crops and the random test crops), so a resumed
unit ends with the numbers of an uninterrupted one. It is written whole or not at all after each
epoch, read only when it was made for the same unit config, and removed once the unit's result
is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"

RandomStream = torch.Generator | np.random.Generator


def stream_states(streams: Sequence[RandomStream]) -> list[Any]:
    """The state of each random stream (torch's global one first, then ``streams``)."""
    states: list[Any] = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states.append(torch.cuda.get_rng_state_all())
    for stream in streams:
        states.append(stream.get_state() if isinstance(stream, torch.Generator)
                      else stream.bit_generator.state)
    return states


def restore_streams(streams: Sequence[RandomStream], states: list[Any]) -> None:
    """Put the streams back in the states :func:`stream_states` returned."""
    states = list(states)
    torch.set_rng_state(states.pop(0))
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states.pop(0))
    for stream, state in zip(streams, states, strict=True):
        if isinstance(stream, torch.Generator):
            stream.set_state(state)
        else:
            stream.bit_generator.state = state


class EpochResume:
    """The resume state of one unit: ``path`` (in its folder), valid for ``config`` only."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path, self.config = Path(path), config

    def load(self) -> dict[str, Any] | None:
        """The state saved after the unit's last finished epoch; None when there is none, or
        when it was made for another config or cannot be read (then the unit starts over)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # a damaged file costs the epochs it held, nothing else
            log.warning("%s cannot be read (%s): the unit starts from its first epoch",
                        self.path, err)
            return None
        if not isinstance(state, dict) or state.get("config") != self.config:
            log.warning("%s was saved for another config: the unit starts from its first "
                        "epoch", self.path)
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state (written beside it, then renamed: whole or not at all)."""
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save({**state, "config": self.config}, partial)
        os.replace(partial, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".partial").unlink(missing_ok=True)
