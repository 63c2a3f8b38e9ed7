"""Noise reruns: which units a plan reruns for its cells' noise, and how a rerun differs from its
unit (seed and training crops, nothing else). The runs
themselves and the board's per-cell noise are tested end to end in tests/test_verdicts.py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from harness.api import plan_options, run_options
from harness.engine import features
from harness.plan.jobs import NOISE_SEED_OFFSET
from harness.results.schema import config_hash


def test_a_plan_reruns_the_first_units_of_each_seeded_cell_under_another_seed():
    jobs = plan_options(run_options(
        "comparison", synthetic=True, synth_size="tiny", model="lifeiqa_tiny",
        models=("full", "probe_stage3", "piqe"), splits=3, noise_units=2)).jobs
    table = {(j.model.name, j.unit): j for j in jobs if j.rerun_of is None}
    reruns = [j for j in jobs if j.rerun_of is not None]
    assert len(table) == 9
    # PIQE has no seed: it reruns to the bit, so it is never rerun
    assert sorted((j.model.name, j.unit) for j in reruns) == [
        (model, f"split_0{k}-rerun") for model in ("lifeiqa_tiny", "probe_stage3") for k in (0, 1)]
    for rerun in reruns:
        first = table[(rerun.model.name, rerun.rerun_of)]
        assert rerun.split_seed == first.split_seed and rerun.crop_draw == 1 != first.crop_draw
        assert rerun.seed == first.seed + NOISE_SEED_OFFSET
        # the same condition: the rerun lands in its unit's cell, never a row of its own
        assert config_hash(rerun.config()) == config_hash(first.config())
        assert rerun.config() == {**first.config(), "unit": rerun.unit, "seed": rerun.seed,
                                  "rerun_of": first.unit}
    # a table unit's config is as it always was: no rerun field
    assert all("rerun_of" not in j.config() for j in table.values())


def test_a_rerun_draws_other_training_crops_and_reads_the_same_test_grid():
    plan, again = features.CropPlan(4, 3, 64, "native"), features.CropPlan(4, 3, 64, "native", draw=1)
    # draw 0 keeps the key every cache entry had before draws existed
    before = {k: v for k, v in asdict(plan).items() if k != "draw"}
    assert plan.key() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert again.key() != plan.key() and again.part_key("train") == again.key()
    assert again.part_key("test") == plan.part_key("test") == plan.key()
    digest = "ab" * 32
    boxes = features.train_boxes(300, 400, plan, digest)
    assert boxes != features.train_boxes(300, 400, again, digest)
    assert boxes == features.train_boxes(300, 400, features.CropPlan(4, 3, 64, "native"), digest)
    assert features.test_boxes(300, 400, plan) == features.test_boxes(300, 400, again)
