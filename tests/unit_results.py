"""Unit results as the runner writes them, with chosen scores: what the tests of aggregation,
verdicts, tables and ``check`` build their suites from (no training, milliseconds each)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from harness.results import metrics
from harness.results.schema import Environment, ProtocolRef, Seeds, SplitInfo, UnitResult
from harness.results.store import ResultsStore

ENVIRONMENT = Environment("abc", False, "3.11", "2.x", "1.0", "2.0", "0.1", "h", "Linux", None)
# six splits' SRCC of a reference model: the exact two-sided Wilcoxon p of a model worse on
# every one is 2 / 2**6
SIX_SPLITS = [0.80, 0.82, 0.79, 0.85, 0.81, 0.83]


def unit(variant: str, k: int, srcc: float, *, dataset: str = "synth-kadid10k",
         fraction: float = 1.0, suite: str = "s", protocol: str = "splits",
         selection: str = "last", epochs: int = 3, split_hash: str | None = None,
         preset: str = "lifeiqa_tiny", plcc: float | None = None) -> UnitResult:
    """A unit result as the runner writes one (config included), with chosen scores."""
    name = f"split_{k:02d}" + (f"-frac{fraction:g}" if fraction < 1 else "")
    config = {"protocol": protocol, "protocol_version": "1.0", "kind": "splits",
              "preset": preset, "variant": variant, "train_dataset": dataset,
              "test_dataset": dataset, "unit": name, "split_seed": k, "seed": k,
              "train_fraction": fraction, "test_fraction": 0.2, "validation_fraction": 0.0,
              "selection": selection, "breakdown": "none", "recipe": {"epochs": epochs}}
    plcc = srcc if plcc is None else plcc
    return UnitResult(
        suite=suite, protocol=ProtocolRef(protocol, "1.0"), preset=preset, variant=variant,
        train_dataset=dataset, test_dataset=dataset, unit=name, selection=selection,
        selected_epoch=epochs, selection_note="",
        metrics=metrics.Scores(srcc, srcc, plcc, plcc, 0.1, 50), per_distortion={},
        split=SplitInfo(f"/home/someone/runs/{suite}/splits/{dataset}/split_{k:02d}.json",
                        split_hash or f"{k:016x}", 100, 25, 0),
        seeds=Seeds(k, k), config=config, model_config={}, data={}, exclusions=(), history=(),
        device="cpu", world_size=1, environment=ENVIRONMENT, wall_seconds=1.0)


def series(variant: str, values: list[float], **kwargs: object) -> list[UnitResult]:
    """One unit per value, split k scoring ``values[k]``."""
    return [unit(variant, k, v, **kwargs) for k, v in enumerate(values)]  # type: ignore[arg-type]


def stored(store: ResultsStore, result: UnitResult) -> UnitResult:
    """``result`` written to ``store`` with files that agree with it, as the runner leaves
    them: a split file (one per suite, dataset and split, whatever the model) with the hash the
    unit records, and a prediction for each of its ``metrics.n`` test images."""
    split = store.root / result.split_name
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text(json.dumps({"stands_for": result.split_name}))
    digest = hashlib.sha256(split.read_bytes()).hexdigest()[:16]
    result = replace(result, split=replace(result.split, sha256_16=digest))
    rows = [{"image_id": f"i{i}.png", "group": f"g{i}", "distortion": "", "level": "",
             "score": i, "prediction": i} for i in range(result.metrics.n)]
    store.write(result.key, result, rows)
    return result


def suite_folder(root: Path, name: str, results: list[UnitResult]) -> Path:
    """``results`` stored as the suite ``name`` under the runs folder ``root``; its folder."""
    store = ResultsStore(root)
    for result in results:
        file = result.split.file.replace(f"/{result.suite}/splits/", f"/{name}/splits/")
        stored(store, replace(result, suite=name, split=replace(result.split, file=file)))
    return root / name
