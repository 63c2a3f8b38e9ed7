"""Benchmark datasets: one record type for all, loaders for the release and pyiqa layouts,
validation before training, and a decoded-image cache."""

from harness.data.records import Dataset, ImageRecord, Problem, ScoreScale

__all__ = ["Dataset", "ImageRecord", "Problem", "ScoreScale"]
