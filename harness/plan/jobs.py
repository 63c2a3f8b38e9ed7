"""The job plan: a protocol expanded into units of work (one training and evaluation each)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.plan.baselines import get_baseline, is_baseline
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


@dataclass(frozen=True)
class Job:
    suite: str
    protocol: str
    protocol_version: str
    kind: str
    preset: str
    variant: str  # "full", an ablation name or a baseline name (harness.plan.baselines)
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

    @property
    def model_name(self) -> str:
        if is_baseline(self.variant):
            return self.variant
        return self.preset if self.variant == "full" else f"{self.preset}+{self.variant}"

    @property
    def dataset_label(self) -> str:
        return dataset_folder(self.train_dataset, self.test_dataset)

    @property
    def key(self) -> UnitKey:
        return UnitKey(self.suite, self.model_name, self.dataset_label, self.unit)

    def config(self) -> dict:
        """Everything that determines the result (compared on reruns)."""
        data = asdict(self)
        data.pop("suite")
        data["recipe"] = self.recipe.to_dict()
        return data


def plan_jobs(protocol: Protocol, suite: str, preset: str, recipe_for: dict[str, Recipe],
              synthetic: bool, selection: str = "last", seed: int = 0,
              splits: int | None = None, seeds: int | None = None) -> list[Job]:
    """Expand ``protocol``. ``recipe_for`` maps a training dataset name to its recipe."""
    jobs: list[Job] = []
    for train, test in protocol.targets(synthetic):
        for variant in (*protocol.variants, *protocol.baselines):
            # a baseline fixes the recipe fields its design needs (recorded with the job)
            recipe = recipe_for[train].override(**get_baseline(variant).recipe) \
                if is_baseline(variant) else recipe_for[train]
            common = dict(suite=suite, protocol=protocol.name, protocol_version=protocol.version,
                          kind=protocol.kind, preset=preset, variant=variant, train_dataset=train,
                          test_dataset=test, test_fraction=protocol.test_fraction,
                          validation_fraction=protocol.validation_fraction if selection == "val" else 0.0,
                          selection=selection, breakdown=protocol.breakdown, recipe=recipe)
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
    return jobs
