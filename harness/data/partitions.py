"""A dataset's records divided into training, validation and test parts for one release model:
the partition the dataset's release defines (KonIQ-10k's ``set`` column), or a split file.

A release partition is read by the dataset's loader (:attr:`DatasetSpec.official_partition`)
as image file name -> part; every record must be listed (a record the release does not place
is an error, never a silent drop). Datasets whose release defines none are divided by content
groups (a split file's parts, :func:`group_partition`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NamedTuple, Protocol

from harness.data.records import Dataset, ImageRecord
from harness.errors import DatasetError

PARTS = ("train", "val", "test")
# the names releases use for their parts: KonIQ-10k's ``set`` column, pyiqa's ``official_split``
_PART_NAMES = {"training": "train", "train": "train", "validation": "val", "val": "val",
               "test": "test"}


def part_name(value: str, location: str) -> str:
    """``train``, ``val`` or ``test`` for a release's name of a part; DatasetError otherwise."""
    name = _PART_NAMES.get(value.strip().lower())
    if name is None:
        raise DatasetError(f"{location}: part {value!r} is not one of "
                           f"{', '.join(sorted(_PART_NAMES))}")
    return name


class Assignment(NamedTuple):
    """What a release says: image file name -> ``train``/``val``/``test``, and where it says it
    (``file:column``)."""

    parts: dict[str, str]
    source: str


class ReleaseSpec(Protocol):
    """What :func:`official_partition` reads of a dataset's spec (``DatasetSpec`` is one)."""

    @property
    def title(self) -> str: ...

    @property
    def official_partition(self) -> Callable[[Dataset], Assignment | None] | None: ...


@dataclass(frozen=True)
class Partition:
    """The records of each part and where the division came from."""

    train: tuple[ImageRecord, ...]
    val: tuple[ImageRecord, ...]
    test: tuple[ImageRecord, ...]
    source: str  # "koniq10k_distributions_sets.csv:set", or the split file

    def sizes(self) -> dict[str, int]:
        return {part: len(getattr(self, part)) for part in PARTS}


def _divide(records: Iterable[ImageRecord], part_of: dict[str, str], source: str) -> Partition:
    parts: dict[str, list[ImageRecord]] = {part: [] for part in PARTS}
    for record in records:
        parts[part_of[record.image_id]].append(record)
    if not parts["train"] or not parts["test"]:
        raise DatasetError(f"{source}: the partition leaves {len(parts['train'])} training and "
                           f"{len(parts['test'])} test image(s); both parts need some")
    return Partition(tuple(parts["train"]), tuple(parts["val"]), tuple(parts["test"]), source)


def official_partition(dataset: Dataset, spec: ReleaseSpec) -> Partition:
    """The partition ``dataset``'s release defines; DatasetError if it defines none or leaves
    records out."""
    found = spec.official_partition(dataset) if spec.official_partition else None
    if found is None:
        where = "" if spec.official_partition is None else f" in {dataset.root}"
        raise DatasetError(f"{spec.title}: no official train/validation/test partition{where} "
                           f"(its release defines none, or the file that holds it is missing); "
                           f"pass --split FILE, a split file with a validation part")
    by_name = {PurePosixPath(r.image_id).name: r.image_id for r in dataset.records}
    unplaced = sorted(name for name in by_name if name not in found.parts)
    if unplaced:
        raise DatasetError(f"{found.source}: {len(unplaced)} image(s) of {dataset.name} are in "
                           f"no part (e.g. {', '.join(unplaced[:3])})")
    part_of = {image: found.parts[name] for name, image in by_name.items()}
    return _divide(dataset.records, part_of, found.source)


def group_partition(dataset: Dataset, groups: dict[str, Iterable[str]], source: str) -> Partition:
    """The partition that places content groups (a split file's ``train``/``val``/``test``);
    every group of ``dataset`` must be placed."""
    group_part = {g: part for part, names in groups.items() for g in names}
    unplaced = sorted(set(dataset.groups) - set(group_part))
    if unplaced:
        raise DatasetError(f"{source}: {len(unplaced)} content group(s) of {dataset.name} are in "
                           f"no part (e.g. {', '.join(unplaced[:3])})")
    return _divide(dataset.records, {r.image_id: group_part[r.group] for r in dataset.records},
                   source)
