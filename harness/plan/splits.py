"""Split plans: which content groups train and which test, as a pure function of the data.

A split is a deterministic function of (the sorted unit ids, the seed k): units are ordered by
SHA-256 of "<seed>/<unit>" and the first share becomes the test set. The algorithm depends on
no library's random stream, so a split file can be regenerated and verified anywhere, forever.
Units are content groups (reference images on synthetic-distortion datasets, images on
authentic ones), so no content crosses train and test.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.fileio import atomic_write_text

ALGORITHM = "sha256-order-v1"


def unit_list_hash(units: list[str]) -> str:
    """SHA-256 of the sorted, newline-joined unit ids: identifies the data a split is for."""
    return hashlib.sha256("\n".join(sorted(set(units))).encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    dataset: str
    seed: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    validation: tuple[str, ...] = ()
    units_hash: str = ""
    algorithm: str = ALGORITHM

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Split:
        data = json.loads(text)
        for key in ("train", "test", "validation"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def _order(units: list[str], seed: int) -> list[str]:
    return sorted(units, key=lambda u: hashlib.sha256(f"{seed}/{u}".encode()).hexdigest())


def plan_split(dataset: str, units: list[str], seed: int, test_fraction: float = 0.2,
               validation_fraction: float = 0.0) -> Split:
    """Split ``units`` (content groups) for ``seed``.

    ``test_fraction`` of the units (at least one) test; of the rest, ``validation_fraction``
    (at least one when asked for) forms a content-disjoint validation part; the remainder
    trains.
    """
    unique = sorted(set(units))
    if len(unique) < 2:
        raise ValueError(f"{dataset}: need at least 2 content groups to split, found {len(unique)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction}: expected a value in (0, 1)")
    ordered = _order(unique, seed)
    n_test = min(len(unique) - 1, max(1, round(len(unique) * test_fraction)))
    test, rest = ordered[:n_test], ordered[n_test:]
    validation: list[str] = []
    if validation_fraction > 0:
        n_val = min(len(rest) - 1, max(1, round(len(rest) * validation_fraction)))
        if n_val < 1:
            raise ValueError(f"{dataset}: too few content groups for a validation part")
        validation, rest = rest[:n_val], rest[n_val:]
    return Split(dataset, seed, tuple(sorted(rest)), tuple(sorted(test)), tuple(sorted(validation)),
                 unit_list_hash(unique))


def subsample_train(split: Split, fraction: float) -> Split:
    """The split with only ``fraction`` of its training units (data-efficiency protocol);
    nested: a smaller fraction's units are a subset of a larger one's."""
    if not 0 < fraction <= 1:
        raise ValueError(f"train fraction {fraction}: expected a value in (0, 1]")
    ordered = _order(list(split.train), split.seed + 1_000_003)
    keep = max(1, round(len(ordered) * fraction))
    return Split(split.dataset, split.seed, tuple(sorted(ordered[:keep])), split.test,
                 split.validation, split.units_hash, split.algorithm)


def freeze_splits(dataset: str, units: list[str], directory: Path, count: int = 10,
                  test_fraction: float = 0.2, validation_fraction: float = 0.1) -> list[Path]:
    """Write the ``count`` standard splits of a dataset whose group ids are known, with and
    without a validation part, as ``<directory>/<dataset>/split_KK[-val].json``."""
    paths = []
    for k in range(count):
        for fraction, suffix in ((0.0, ""), (validation_fraction, "-val")):
            path = Path(directory) / dataset / f"split_{k:02d}{suffix}.json"
            write_split(plan_split(dataset, units, k, test_fraction, fraction), path)
            paths.append(path)
    return paths


def write_split(split: Split, path: Path) -> None:
    """Write atomically (a reader never sees half a file)."""
    atomic_write_text(Path(path), split.to_json())


def read_split(path: Path, units: list[str] | None = None) -> Split:
    """Read a split file; with ``units``, check it was made for exactly those content groups.
    A file that is not a split raises ValueError naming it."""
    try:
        split = Split.from_json(Path(path).read_text())
    except (ValueError, TypeError, AttributeError) as err:  # not JSON, or not a split's fields
        raise ValueError(f"{path}: not a split file ({err})") from err
    if units is not None and split.units_hash != unit_list_hash(units):
        listed = set(split.train) | set(split.test) | set(split.validation)
        have = set(units)
        raise ValueError(
            f"{path}: split file was made for other data (units hash differs); "
            f"{len(have - listed)} group(s) not in the file (e.g. {sorted(have - listed)[:3]}), "
            f"{len(listed - have)} in the file but not in the data (e.g. {sorted(listed - have)[:3]})"
        )
    return split
