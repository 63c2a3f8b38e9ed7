"""Model families behind one interface, and jobs that carry a typed model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.data.synth.generate import synthesize
from harness.engine.families import (
    FAMILIES,
    EngineContext,
    ModelFamily,
    family_for,
    get_family,
)
from harness.engine.parts import JobParts, LoadedDataset
from harness.errors import InvalidOptionError, UnknownNameError
from harness.plan.jobs import Job, plan_jobs
from harness.plan.models import KINDS, ModelRef
from harness.plan.protocols import load_protocol, parse_protocol
from harness.plan.recipes import get_recipe

ROOT = Path(__file__).resolve().parents[1]
# One of each model kind (the full model trains twice: frozen and fine-tuned).
VARIANTS = ("full", "no_moe")
BASELINES = ("deiqt_head", "probe_stage3", "cnniqa", "piqe")
TINY = get_recipe("cpu_demo").override(model="lifeiqa_tiny", epochs=2, train_crops=2,
                                       test_crops=2, batch_size=16)


def tiny_jobs(**recipe_changes) -> list[Job]:
    """One job per variant and baseline, planned as a protocol file would plan them."""
    protocol = parse_protocol({"name": "tiny", "version": 1, "kind": "splits", "splits": 1,
                               "synthetic_datasets": ["synth-koniq10k"],
                               "variants": list(VARIANTS), "baselines": list(BASELINES)},
                              "tiny.yaml")
    recipes = {"synth-koniq10k": TINY.override(**recipe_changes)}
    return plan_jobs(protocol, "tiny", "lifeiqa_tiny", recipes, synthetic=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A small synthetic dataset (24 authentic images, 96x128) split 16/8, and a CPU engine
    context whose caches live in a temporary folder."""
    root = tmp_path_factory.mktemp("families")
    dataset = load_dataset("koniq10k", synthesize("koniq10k", root / "synth", "tiny", 0))
    loaded = LoadedDataset(dataset, [])
    records = dataset.records
    context = EngineContext(torch.device("cpu"), DecodedImageCache(root / "images"), root)

    def parts(job: Job) -> JobParts:
        return JobParts.with_targets(loaded, loaded, records[:16], records[16:24], [],
                                     job.recipe.label_scale, "first 16 / next 8")

    return parts, context


def test_every_model_kind_has_a_family_and_unknown_kinds_are_named():
    assert set(FAMILIES) == set(KINDS)
    for kind, family in FAMILIES.items():
        assert isinstance(family, ModelFamily)
        assert kind in family.kinds
    assert family_for(ModelRef("lifeiqa_tiny", "probe_stage2")) is get_family("probe")
    assert family_for(ModelRef("lifeiqa_tiny", "no_gcn")) is family_for(ModelRef("lifeiqa_tiny"))
    with pytest.raises(UnknownNameError, match="unknown model kind 'prob'; did you mean probe"):
        get_family("prob")


def test_variant_names_follow_one_rule_for_models_and_protocols():
    # every kind but the feature heads, which only plug-ins bring (tests/test_plugins.py)
    assert [ModelRef("p", v).kind for v in ("full", "no_moe", "deiqt_head", "probe_stage1",
                                            "cnniqa", "piqe")] == [k for k in KINDS
                                                                   if k != "feature_head"]
    with pytest.raises(UnknownNameError, match="unknown model 'no_mo'; did you mean no_moe"):
        ModelRef("p", "no_mo")
    protocol = {"name": "x", "version": 1, "kind": "splits"}
    with pytest.raises(InvalidOptionError, match="variant 'no_mo': unknown model 'no_mo'"):
        parse_protocol({**protocol, "variants": ["no_mo"]}, "x.yaml")
    with pytest.raises(InvalidOptionError, match="variant 'cnniqa' is a registry model"):
        parse_protocol({**protocol, "variants": ["cnniqa"]}, "x.yaml")
    with pytest.raises(InvalidOptionError, match="baseline 'no_moe' is a Life-IQA variant"):
        parse_protocol({**protocol, "baselines": ["no_moe"]}, "x.yaml")


def test_jobs_carry_a_model_and_round_trip_through_json():
    protocol = load_protocol("comparison")
    recipes = {train: TINY for train, _ in protocol.targets(True)}
    jobs = plan_jobs(protocol, "s", "lifeiqa_tiny", recipes, synthetic=True, splits=1)
    assert {job.model.kind for job in jobs} == set(KINDS) - {"feature_head"}
    for job in jobs:
        data = json.loads(json.dumps(job.to_dict()))
        assert Job.from_dict(data) == job
        assert job.key.model == job.model.name
    by_name = {job.model.name: job for job in jobs}
    assert by_name["lifeiqa_tiny+no_gcn"].model == ModelRef("lifeiqa_tiny", "no_gcn")
    assert by_name["cnniqa"].recipe.crop_size == 32  # the baseline's own recipe fields


def test_config_keeps_the_flat_form_stored_results_were_compared_on():
    stored = json.loads((ROOT / "leaderboards/gpu-check/h200-2026-11-26/e2e_result.json").read_text())
    job = Job.from_dict({**stored["config"], "suite": stored["suite"]})
    assert job.model == ModelRef(stored["preset"], stored["variant"])
    assert job.key.model == stored["model"]
    assert job.config() == stored["config"]
    # the key order of configs written before models were typed (results files hold it)
    assert list(job.config())[:6] == ["protocol", "protocol_version", "kind", "preset", "variant",
                                      "train_dataset"]


@pytest.mark.parametrize("name", [*VARIANTS, *BASELINES, "full-finetune"])
def test_each_family_fits_and_predicts_on_a_tiny_synthetic_set(engine, name):
    parts_of, context = engine
    finetune = name.endswith("-finetune")
    jobs = tiny_jobs(mode="finetune") if finetune else tiny_jobs()
    job = next(j for j in jobs if j.model.variant == name.removesuffix("-finetune"))
    parts = parts_of(job)
    epochs = []
    trained = family_for(job.model).fit_predict(job, parts, context, on_epoch=epochs.append)
    predictions = trained.outcome.predictions
    assert predictions.shape == (len(parts.test),) and np.all(np.isfinite(predictions))
    assert np.ptp(predictions) > 0  # a real model tells the images apart
    kind = job.model.kind
    if kind in ("probe", "zero_shot"):  # fitted in closed form, or not at all
        assert trained.model is None and trained.selection_note and not epochs
    else:
        assert isinstance(trained.model, torch.nn.Module)
        assert [e["epoch"] for e in epochs] == [1, 2] and len(trained.outcome.history) == 2
    info = trained.info
    if kind in ("lifeiqa", "ablation", "lifeiqa_config"):
        expected = {"full": {"head": "moe", "decoder_layer": "gcn_cross"},
                    "no_moe": {"head": "none"},
                    "deiqt_head": {"decoder_layer": "vanilla", "head": "ffn", "num_queries": 1}}
        assert expected[job.model.variant].items() <= info.items()
    elif kind == "probe":
        assert info["probe_stride"] == 16 and info["features"] > 0
    elif kind == "image_model":
        assert info["pyiqa_class"] == "CNNIQA" and info["model"] == "cnniqa"
    else:
        assert info["metric"] == "piqe" and trained.higher_is_better is False


def test_a_life_iqa_model_refuses_a_zero_shot_recipe(engine):
    parts_of, context = engine
    job = next(j for j in tiny_jobs(mode="zero_shot") if j.model.kind == "lifeiqa")
    with pytest.raises(InvalidOptionError, match="needs a training-free baseline, not lifeiqa_tiny"):
        family_for(job.model).fit_predict(job, parts_of(job), context)
