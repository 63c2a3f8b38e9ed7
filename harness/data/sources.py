"""Where each dataset named in a protocol comes from: a real copy on disk, or a synthetic one.

Real datasets are found under ``--data-root`` (a folder holding ``<name>/`` for each dataset,
any letter case) or given one by one (``--dataset-root kadid10k=/data/KADID``). Synthetic ones
(``synth-kadid10k``, ``synth-tid2013``, ``synth-koniq10k``) are generated on first use into the
cache and reused; they are read by the real loaders, and their names keep them apart from real
results in every table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.data.layout import find_child
from harness.data.records import Dataset
from harness.data.registry import get_dataset_spec, load_dataset

SYNTH_PREFIX = "synth-"


def cache_root() -> Path:
    return Path(os.environ.get("LIFEIQA_CACHE", Path.home() / ".cache" / "lifeiqa")).expanduser()


@dataclass(frozen=True)
class DataSources:
    data_root: Path | None = None
    roots: tuple[tuple[str, str], ...] = ()  # explicit name=path overrides
    synth_size: str = "small"
    synth_seed: int = 0

    def root_for(self, name: str) -> Path:
        """The folder of dataset ``name``; synthesises it first if it is a synthetic one."""
        explicit = dict(self.roots)
        if name in explicit:
            return Path(explicit[name]).expanduser()
        if name.startswith(SYNTH_PREFIX):
            from harness.data.synth.generate import synthesize

            like = name[len(SYNTH_PREFIX):]
            out = cache_root() / "synth" / f"{like}-{self.synth_size}-seed{self.synth_seed}"
            return synthesize(like, out, self.synth_size, self.synth_seed)
        if self.data_root is None:
            raise ValueError(
                f"dataset {name!r}: no location given; pass --data-root DIR (holding {name}/) or "
                f"--dataset-root {name}=PATH, or run on the synthetic default (no data options)")
        found = find_child(Path(self.data_root).expanduser(), name, required=False)
        if found is None:
            spec = get_dataset_spec(name)
            raise ValueError(f"dataset {name!r} ({spec.title}): no folder named {name!r} under "
                             f"{self.data_root}; use --dataset-root {name}=PATH")
        return found

    def has(self, name: str) -> bool:
        """Whether a real dataset's folder is known (synthetic ones always are)."""
        if name.startswith(SYNTH_PREFIX) or name in dict(self.roots):
            return True
        return self.data_root is not None and \
            find_child(Path(self.data_root).expanduser(), name, required=False) is not None

    def load(self, name: str) -> Dataset:
        loader = name[len(SYNTH_PREFIX):] if name.startswith(SYNTH_PREFIX) else name
        dataset = load_dataset(loader, self.root_for(name))
        dataset.name = name
        return dataset

    def describe(self, name: str) -> dict:
        return {"name": name, "root": str(self.root_for(name)),
                "synthetic": name.startswith(SYNTH_PREFIX),
                **({"synth_size": self.synth_size, "synth_seed": self.synth_seed}
                   if name.startswith(SYNTH_PREFIX) else {})}
