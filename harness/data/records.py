"""The record type every loader produces, and the dataset that holds them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# the name of a generated stand-in for a dataset: synth-kadid10k for kadid10k
SYNTH_PREFIX = "synth-"


@dataclass(frozen=True)
class ScoreScale:
    """A dataset's native score scale: its name (MOS, DMOS), range and direction."""

    name: str
    low: float
    high: float
    higher_is_better: bool

    def to_unit(self, score: float) -> float:
        """The score mapped to [0, 1], higher is better."""
        unit = (score - self.low) / (self.high - self.low)
        return unit if self.higher_is_better else 1.0 - unit

    def describe(self) -> str:
        """``MOS 1-5 (higher is better)``: the scale as listings show it."""
        return (f"{self.name} {self.low:g}-{self.high:g} "
                f"({'higher' if self.higher_is_better else 'lower'} is better)")

    def contains(self, score: float, slack: float = 0.0) -> bool:
        span = (self.high - self.low) * slack
        return math.isfinite(score) and self.low - span <= score <= self.high + span


@dataclass(frozen=True)
class ImageRecord:
    """One scored image.

    ``image_id``: stable id, the image's path relative to the dataset root (POSIX form).
    ``score``: on the dataset's native scale. ``group``: the content group that splits must keep
    together (the reference image for synthetic distortions, the image itself for authentic
    ones). ``distortion``/``level``: where the dataset defines them. ``source``: the metadata
    file and row the record came from, for error messages.
    """

    image_id: str
    path: Path
    score: float
    group: str
    distortion: str | None = None
    level: int | None = None
    source: str = ""


@dataclass(frozen=True)
class Problem:
    """Something wrong with a dataset, located (``file`` or ``file:row``) and explained."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass
class Dataset:
    """A loaded dataset: its records plus what is known about it."""

    name: str
    root: Path
    records: list[ImageRecord]
    scale: ScoreScale
    kind: str  # "synthetic" (reference-based distortions) or "authentic"
    layout: str  # "release", "pyiqa", "hf", "csv"
    distortion_types: tuple[str, ...] = ()
    # Problems found while parsing metadata (bad rows etc.); validation adds file checks.
    problems: list[Problem] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return sorted({r.group for r in self.records})

    def __len__(self) -> int:
        return len(self.records)
