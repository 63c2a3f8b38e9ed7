"""Where each dataset named in a protocol comes from: a real copy on disk, or a synthetic one.

Real datasets are found under ``--data-root`` (a folder holding ``<name>/`` for each dataset,
any letter case) or given one by one (``--dataset-root kadid10k=/data/KADID``); a dataset of
one's own is declared (:mod:`harness.data.declared`: a CSV and its images). Synthetic ones
(``synth-kadid10k``, ``synth-tid2013``, ``synth-koniq10k``) are generated on first use into the
cache and reused; they are read by the real loaders, and their names keep them apart from real
results in every table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.layout import find_child
from harness.data.records import SYNTH_PREFIX, Dataset
from harness.data.registry import get_dataset_spec, load_dataset
from harness.data.specs import DatasetSpec

if TYPE_CHECKING:
    from harness.data.declared import DatasetDeclaration

def cache_root() -> Path:
    return Path(os.environ.get("LIFEIQA_CACHE", Path.home() / ".cache" / "lifeiqa")).expanduser()


@dataclass(frozen=True)
class DataSources:
    data_root: Path | None = None
    roots: tuple[tuple[str, str], ...] = ()  # explicit name=path overrides
    synth_size: str = "small"
    synth_seed: int = 0
    declared: tuple[DatasetDeclaration, ...] = ()  # datasets of one's own, by name

    def declaration(self, name: str) -> DatasetDeclaration | None:
        return next((d for d in self.declared if d.name == name), None)

    def spec(self, name: str) -> DatasetSpec | None:
        """The registered spec of dataset ``name``, whose expected sizes validation checks;
        None for a synthetic or declared one (nothing is expected of them)."""
        if name.startswith(SYNTH_PREFIX) or self.declaration(name) is not None:
            return None
        return get_dataset_spec(name)

    def root_for(self, name: str) -> Path:
        """The folder of dataset ``name``; synthesises it first if it is a synthetic one."""
        declared = self.declaration(name)
        if declared is not None:
            return Path(declared.images)
        explicit = dict(self.roots)
        if name in explicit:
            return Path(explicit[name]).expanduser()
        if name.startswith(SYNTH_PREFIX):
            from harness.data.synth.generate import synthesize

            return synthesize(*self._generated(name), self.synth_size, self.synth_seed)
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

    def synthesize_all(self, names: Sequence[str],
                       processes: int | None = None) -> list[tuple[str, float]]:
        """Generate (or find in the cache) the synthetic datasets among ``names``, several at
        once (``processes``; default one per core: each generator runs on one); returns each
        one's name and the seconds it took. Real datasets are left to their loaders."""
        try:
            return self._synthesize_all(names, processes)
        except OSError as err:  # the message names the set; this says where it lives
            raise OSError(err.errno, f"{err.strerror or err} (in the data cache {cache_root()}; "
                                     f"LIFEIQA_CACHE moves it)") from err

    def _synthesize_all(self, names: Sequence[str],
                        processes: int | None) -> list[tuple[str, float]]:
        from harness.data.synth.generate import is_synthesized

        names = sorted({name for name in names if name.startswith(SYNTH_PREFIX)})
        # those already made (or given a folder) are found here: no process started for them
        missing = [name for name in names if not self.declaration(name)
                   and name not in dict(self.roots)
                   and not is_synthesized(*self._generated(name), self.synth_size, self.synth_seed)]
        timings = [_timed_root(self, name) for name in names if name not in missing]
        cores = len(os.sched_getaffinity(0))
        processes = min(len(missing), processes or cores)
        if processes <= 1:
            return timings + [_timed_root(self, name) for name in missing]
        # spawned, not forked: the caller may hold torch's thread pool; each with its share of
        # the cores for the labels' torch metrics (two spinning 2-thread pools on 2 cores ran
        # 3x slower than one generator after another)
        import multiprocessing

        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_share_cores, initargs=(max(1, cores // processes),)) as pool:
            return timings + list(pool.map(_timed_root, [self] * len(missing), missing))

    def _generated(self, name: str) -> tuple[str, Path]:
        """The dataset a synthetic name imitates and the cache folder it is generated into."""
        like = name[len(SYNTH_PREFIX):]
        return like, cache_root() / "synth" / f"{like}-{self.synth_size}-seed{self.synth_seed}"

    def has(self, name: str) -> bool:
        """Whether a real dataset's folder is known (synthetic ones always are)."""
        if name.startswith(SYNTH_PREFIX) or name in dict(self.roots) or self.declaration(name):
            return True
        return self.data_root is not None and \
            find_child(Path(self.data_root).expanduser(), name, required=False) is not None

    def load(self, name: str) -> Dataset:
        declared = self.declaration(name)
        if declared is not None:
            return declared.load()
        loader = name[len(SYNTH_PREFIX):] if name.startswith(SYNTH_PREFIX) else name
        dataset = load_dataset(loader, self.root_for(name))
        dataset.name = name
        return dataset

    def describe(self, name: str) -> dict[str, Any]:
        """Where dataset ``name`` was read from, as a result records it: a declared dataset's
        CSV and its SHA-256, a plug-in dataset's distribution and version."""
        synthetic = name.startswith(SYNTH_PREFIX)
        described: dict[str, Any] = {"name": name, "root": str(self.root_for(name)),
                                     "synthetic": synthetic}
        declared = self.declaration(name)
        if synthetic:
            described.update(synth_size=self.synth_size, synth_seed=self.synth_seed)
        elif declared is not None:
            described["declared"] = declared.describe()
        elif (plugin := get_dataset_spec(name).plugin) is not None:
            described["plugin"] = plugin.to_dict()
        return described


def _share_cores(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed_root(sources: DataSources, name: str) -> tuple[str, float]:
    start = time.perf_counter()
    sources.root_for(name)
    return name, time.perf_counter() - start
