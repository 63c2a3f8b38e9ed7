"""A job's data as the engine hands it to a model family: the training, test and validation
records, their targets on the recipe's label scale, and where they came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.data.records import Dataset, ImageRecord, Problem


@dataclass(frozen=True)
class LoadedDataset:
    """A validated dataset and the records validation left out of it (``--exclude-bad``)."""

    dataset: Dataset
    exclusions: list[Problem]


def targets_of(records: Sequence[ImageRecord], dataset: Dataset, label_scale: str,
               like: Dataset | None = None) -> np.ndarray:
    """The records' scores as training targets: native, or mapped to [0, 1] higher-is-better
    (``label_scale="unit"``). ``like``: the dataset whose labels the model trains on; native
    scores of a dataset scored the other way round (MOS vs DMOS) are negated, so that
    correlating predictions with these targets (epoch selection) rewards agreement."""
    scores = np.array([r.score for r in records], dtype=np.float64)
    if label_scale == "unit":
        return np.array([dataset.scale.to_unit(s) for s in scores])
    if like is not None and like.scale.higher_is_better != dataset.scale.higher_is_better:
        return -scores
    return scores


@dataclass(frozen=True)
class JobParts:
    """The records of one job and their targets. Training and validation records come from
    ``source``, test records from ``target`` (the same dataset unless the job is cross-dataset);
    ``val_y`` is None when there is no validation part. ``test_y`` is oriented like ``train_y``
    (a cross-dataset target scored the other way round is negated): the engine correlates it
    with predictions only to select epochs; the final evaluation reads the records' native
    scores."""

    source: LoadedDataset
    target: LoadedDataset
    train: list[ImageRecord]
    test: list[ImageRecord]
    val: list[ImageRecord]
    train_y: np.ndarray
    test_y: np.ndarray
    val_y: np.ndarray | None
    split_file: str  # the split file, or "whole datasets" (cross-dataset)
    split_sha256_16: str = ""

    @classmethod
    def with_targets(cls, source: LoadedDataset, target: LoadedDataset,
                     train: list[ImageRecord], test: list[ImageRecord], val: list[ImageRecord],
                     label_scale: str, split_file: str, split_sha256_16: str = "") -> JobParts:
        """The parts with their targets on ``label_scale`` (a recipe's ``label_scale``); test
        targets are oriented like the training labels (they select epochs, never score)."""
        return cls(source, target, train, test, val,
                   targets_of(train, source.dataset, label_scale),
                   targets_of(test, target.dataset, label_scale, like=source.dataset),
                   targets_of(val, source.dataset, label_scale) if val else None,
                   split_file, split_sha256_16)
