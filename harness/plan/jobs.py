"""The job plan: a protocol expanded into units of work (one training and evaluation each)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from harness.fileio import check_suite, folder_name
from harness.plan.models import ModelRef, canonical_args
from harness.plan.protocols import Protocol
from harness.plan.recipes import Recipe


def dataset_folder(train: str, test: str) -> str:
    """A unit's dataset folder: the dataset, or ``SOURCE__to__TARGET`` for a pair."""
    return train if train == test else f"{train}__to__{test}"


@dataclass(frozen=True)
class UnitKey:
    suite: str
    model: str
    dataset: str
    unit: str

    def parts(self) -> tuple[str, ...]:
        return (self.suite, self.model, self.dataset, self.unit)

    def folder_parts(self) -> tuple[str, ...]:
        """The unit's folder under the runs folder, one name per level: the suite's folders
        (a checked name), then the model, dataset and unit, each encoded so that no name leaves
        its level (:func:`harness.fileio.folder_name`; the true names are in the unit's
        config)."""
        return (*check_suite(self.suite).split("/"), *map(folder_name, self.parts()[1:]))


@dataclass(frozen=True)
class Job:
    suite: str
    protocol: str
    protocol_version: str
    kind: str
    model: ModelRef
    train_dataset: str
    test_dataset: str
    unit: str  # "split_03", "split_03-frac0.4", "seed_01"
    split_seed: int | None  # the split index k (splits protocols)
    seed: int  # training seed
    train_fraction: float
    test_fraction: float
    validation_fraction: float
    selection: str
    breakdown: str
    recipe: Recipe
    analysis: str = "none"  # harness.plan.protocols.ANALYSES
    # (name, SHA-256 of its CSV) of each declared dataset the job reads: scores edited since a
    # unit ran make another config, so resuming never reuses a unit of the old scores
    data_versions: tuple[tuple[str, str], ...] = ()
    # at most this many images of each part (train, validation, test): a quick look, which
    # tables mark and checks refuse; None: every image
    limit: int | None = None
    # set on a noise rerun: the table unit it runs again under another training seed and a new
    # draw of training crops; its difference from that unit measures the cell's rerun noise
    # (harness/results/stability.py) and it is in no table
    rerun_of: str | None = None

    @property
    def crop_draw(self) -> int:
        """Which draw of training crops the cached-feature families use (a noise rerun's
        differs from its unit's: :class:`harness.engine.features.CropPlan`)."""
        return 0 if self.rerun_of is None else 1

    @property
    def dataset_label(self) -> str:
        return dataset_folder(self.train_dataset, self.test_dataset)

    @property
    def key(self) -> UnitKey:
        return UnitKey(self.suite, self.model.name, self.dataset_label, self.unit)

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON values, its model as ``preset`` and ``variant`` in the model's place
        (the flat form stored results' configs have always had), with ``model_args`` and the
        ``plugin`` (name and version) of a plug-in's model: a unit of other arguments or other
        plug-in code is another condition, and resuming never mixes them."""
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if (item.name, value) in (("analysis", "none"), ("data_versions", ()), ("limit", None),
                                      ("rerun_of", None)):
                continue  # jobs without one keep the config they always had (stored units resume)
            if item.name == "data_versions":
                data[item.name] = dict(value)
                continue
            if item.name == "model":
                data.update(preset=value.preset, variant=value.variant)
                if value.args:
                    data["model_args"] = value.arguments
                plugin = value.spec.plugin if value.from_registry else None
                if plugin is not None:
                    data["plugin"] = plugin.label
            else:
                data[item.name] = value.to_dict() if item.name == "recipe" else value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """The job :meth:`to_dict` wrote (its model resolved in this process's registry)."""
        values = dict(data)
        values.pop("plugin", None)  # derived from the registry
        model = ModelRef(values.pop("preset"), values.pop("variant"),
                         canonical_args(values.pop("model_args", {})))
        recipe = Recipe(**values.pop("recipe"))
        versions = tuple(values.pop("data_versions", {}).items())
        return cls(**values, model=model, recipe=recipe, data_versions=versions)

    def config(self) -> dict[str, Any]:
        """Everything that determines the result (compared on reruns): :meth:`to_dict` without
        the suite, which only names where results go."""
        data = self.to_dict()
        data.pop("suite")
        return data


# A noise rerun's training seed: its unit's plus this, far from any unit's own seed
NOISE_SEED_OFFSET = 1_000_000
NOISE_SUFFIX = "-rerun"


def noise_reruns(jobs: list[Job], count: int) -> list[Job]:
    """A noise rerun of each of the first ``count`` units of every cell whose score depends on
    a seed (all but the training-free metrics, which rerun to the bit), right after its unit."""
    out: list[Job] = []
    taken: dict[tuple, int] = {}
    for job in jobs:
        out.append(job)
        cell = (job.model, job.train_dataset, job.test_dataset, job.train_fraction)
        if job.model.kind == "zero_shot" or taken.get(cell, 0) >= count:
            continue
        taken[cell] = taken.get(cell, 0) + 1
        out.append(replace(job, unit=job.unit + NOISE_SUFFIX, seed=job.seed + NOISE_SEED_OFFSET,
                           rerun_of=job.unit))
    return out


def plan_jobs(protocol: Protocol, suite: str, preset: str, recipe_for: dict[str, Recipe],
              synthetic: bool, selection: str = "last", seed: int = 0,
              splits: int | None = None, seeds: int | None = None,
              noise_units: int | None = None) -> list[Job]:
    """Expand ``protocol``. ``recipe_for`` maps a training dataset name to its recipe;
    ``noise_units`` (default: the protocol's) units of each seeded cell are rerun for its noise
    (:func:`noise_reruns`)."""
    jobs: list[Job] = []
    for train, test in protocol.targets(synthetic):
        for row in (*protocol.variants, *protocol.baselines):
            model = ModelRef.parse(preset, row)
            # a registry model fixes the recipe fields its design needs (recorded with the job)
            recipe = recipe_for[train].override(**model.spec.recipe) \
                if model.from_registry else recipe_for[train]
            common: dict[str, Any] = dict(
                suite=suite, protocol=protocol.name, protocol_version=protocol.version,
                kind=protocol.kind, model=model, train_dataset=train,
                test_dataset=test, test_fraction=protocol.test_fraction,
                validation_fraction=protocol.validation_fraction if selection == "val" else 0.0,
                selection=selection, breakdown=protocol.breakdown, recipe=recipe,
                analysis=protocol.analysis)
            if protocol.kind == "splits":
                for fraction in protocol.train_fractions:
                    for k in range(splits or protocol.splits):
                        unit = f"split_{k:02d}" + (f"-frac{fraction:g}" if fraction < 1 else "")
                        jobs.append(Job(**common, unit=unit, split_seed=k, seed=seed + k,
                                        train_fraction=fraction))
            else:
                for s in range(seeds or protocol.seeds):
                    jobs.append(Job(**common, unit=f"seed_{s:02d}", split_seed=None, seed=seed + s,
                                    train_fraction=1.0))
    return noise_reruns(jobs, protocol.noise_units if noise_units is None else noise_units)
