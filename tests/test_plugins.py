"""Models as plug-ins: the public registry, model arguments, the three plug-in families, and bad
plug-ins named before (or as) they fail.

The example package (examples/lifeiqa-example-plugin) is used as a user would: included from
its file here, installed with pip into a folder of its own in tests/test_plugin_package.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import harness
from harness.data.cache import DecodedImageCache
from harness.data.registry import load_dataset
from harness.data.synth.generate import synthesize
from harness.engine.families import EngineContext, family_for
from harness.engine.parts import JobParts, LoadedDataset
from harness.errors import InvalidOptionError, ModelContractError, PluginError, UnknownNameError
from harness.plan.jobs import Job, plan_jobs
from harness.plan.models import ModelRef, parse_row, split_rows
from harness.plan.protocols import parse_protocol
from harness.plan.recipes import get_recipe
from harness.plugins import include
from harness.results.schema import config_hash

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lifeiqa-example-plugin" / "src" / "lifeiqa_example_plugin"
TINY = get_recipe("cpu_demo").override(model="lifeiqa_tiny", epochs=2, train_crops=2,
                                       test_crops=2, batch_size=16)


@pytest.fixture(scope="module")
def example():
    """The example's models, included from their file (not installed)."""
    return include(str(EXAMPLE / "models.py"))


def test_include_registers_one_model_of_each_kind_with_its_provenance(example):
    assert example.name == "lifeiqa_example_plugin.models" and example.origin == "module"
    assert example.version.startswith("sha256:") and len(example.version) == 19
    assert include(str(EXAMPLE / "models.py")) is example  # once per process
    families = {name: harness.get_bench_model(name).family for name in
                ("example_sharpness", "example_tiny_cnn", "example_mlp_head")}
    assert families == {"example_sharpness": "zero_shot", "example_tiny_cnn": "image_model",
                        "example_mlp_head": "feature_head"}
    cnn = harness.get_bench_model("example_tiny_cnn")
    assert cnn.plugin == example and cnn.recipe == {"crop_size": 64, "label_scale": "unit",
                                                    "mode": "finetune"}
    assert harness.get_bench_model("example_mlp_head").recipe == {"mode": "frozen"}
    assert harness.get_bench_model("example_sharpness").lower_better is False
    assert "example_tiny_cnn" in harness.list_bench_models()


def test_rows_carry_model_arguments_into_the_config_and_the_unit_name(example):
    assert parse_row("example_tiny_cnn( width = 8 )") == ("example_tiny_cnn", '{"width":8}')
    assert split_rows("piqe, a(x=1, y=[1, 2]), b(s='p,q')") == ["piqe", "a(x=1, y=[1, 2])",
                                                                "b(s='p,q')"]
    protocol = parse_protocol({"name": "x", "version": 1, "kind": "splits", "splits": 1,
                               "synthetic_datasets": ["synth-koniq10k"], "variants": ["full"],
                               "baselines": ["example_tiny_cnn( width=8 )",
                                             {"name": "example_tiny_cnn", "args": {"width": 4}},
                                             "example_tiny_cnn"]}, "x.yaml")
    assert protocol.baselines == ("example_tiny_cnn(width=8)", "example_tiny_cnn(width=4)",
                                  "example_tiny_cnn")
    jobs = plan_jobs(protocol, "s", "lifeiqa_tiny", {"synth-koniq10k": TINY}, synthetic=True)
    by_name = {job.model.name: job for job in jobs}
    wide, narrow, default = (by_name[f"example_tiny_cnn{a}"] for a in ("(width=8)", "(width=4)", ""))
    assert wide.config()["model_args"] == {"width": 8} and "model_args" not in default.config()
    assert wide.config()["plugin"] == example.label
    assert "plugin" not in by_name["lifeiqa_tiny"].config()  # the harness's own models: as before
    assert len({config_hash(j.config()) for j in (wide, narrow, default)}) == 3
    assert wide.key.model == "example_tiny_cnn(width=8)" and wide.recipe.crop_size == 64
    assert Job.from_dict(json.loads(json.dumps(wide.to_dict()))) == wide


@pytest.mark.parametrize("row,message", [
    ("example_tiny_cnn(depth=3)", "unknown model argument(s) depth; its factory takes width"),
    ("example_mlp_head(features=1)", "unknown model argument(s) features; its factory takes "
                                     "hidden"),
    ("probe_stage3(alpha=1)", "model 'probe_stage3' takes no model arguments"),
    ("no_moe(x=1)", "Life-IQA variants take no model arguments"),
    ("cnniqa(no_such=1)", "unknown model argument(s) no_such; its factory takes"),
    ("example_tiny_cnn(8)", "model arguments are keywords only"),
    ("example_tiny_cnn(width=int('8'))", "argument width=int('8') is not a Python literal"),
    ("example_tiny_cnn(width=8", "expected NAME or NAME(key=value, ...)"),
    ("example_tiny_cn", "unknown model 'example_tiny_cn'; did you mean example_tiny_cnn"),
])
def test_a_bad_row_is_named_before_any_work(example, row, message):
    with pytest.raises(InvalidOptionError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        ModelRef.parse("lifeiqa_tiny", row)


@pytest.mark.slow
def test_a_plugin_may_not_shadow_a_builtin_or_another_plugins_model(example):
    with pytest.raises(PluginError, match="model name 'piqe' shadows the harness's own model"):
        harness.register_scorer("piqe", lower_better=True)(lambda: None)
    with pytest.raises(PluginError, match="shadows"):
        harness.register_image_model("pyiqa-arch:Mine")(nn.Identity)
    with pytest.raises(PluginError, match=r"'example_tiny_cnn' is already registered by plug-in "
                                          r"lifeiqa_example_plugin\.models sha256:"):
        harness.register_image_model("example_tiny_cnn")(nn.Identity)
    with pytest.raises(PluginError, match="trains in recipe mode 'finetune', not 'frozen'"):
        harness.register_image_model("frozen_cnn", recipe={"mode": "frozen"})(nn.Identity)
    with pytest.raises(PluginError, match="unknown recipe field 'epoch'"):
        harness.register_image_model("typo_cnn", recipe={"epoch": 3})(nn.Identity)
    with pytest.raises(InvalidOptionError, match="say whether its scores are lower_better"):
        harness.register_bench_model(harness.BenchModelSpec("s", "zero_shot", "d", factory=lambda: None))
    with pytest.raises(InvalidOptionError, match="model name 'a/b'"):
        harness.register_scorer("a/b", lower_better=True)(lambda: None)
    with pytest.raises(UnknownNameError):
        harness.get_bench_model("typo_cnn")  # nothing was registered by the refused calls


# --- the families, on a tiny synthetic set ----------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    dataset = load_dataset("koniq10k", synthesize("koniq10k", root / "synth", "tiny", 0))
    loaded, records = LoadedDataset(dataset, []), dataset.records
    context = EngineContext(torch.device("cpu"), DecodedImageCache(root / "images"), root)

    def run(row: str) -> tuple[Job, object]:
        protocol = parse_protocol({"name": "t", "version": 1, "kind": "splits", "splits": 1,
                                   "synthetic_datasets": ["synth-koniq10k"], "variants": [],
                                   "baselines": [row]}, "t.yaml")
        job = plan_jobs(protocol, "t", "lifeiqa_tiny", {"synth-koniq10k": TINY}, True)[0]
        parts = JobParts.with_targets(loaded, loaded, records[:16], records[16:24], [],
                                      job.recipe.label_scale, "first 16 / next 8")
        return job, family_for(job.model).fit_predict(job, parts, context)

    return run


@pytest.mark.parametrize("row", ["example_sharpness(blur=3)", "example_tiny_cnn(width=4)",
                                 "example_mlp_head(hidden=8)"])
def test_each_plugin_family_fits_and_predicts(example, engine, row):
    job, trained = engine(row)
    predictions = trained.outcome.predictions
    assert predictions.shape == (8,) and np.all(np.isfinite(predictions)) and np.ptp(predictions) > 0
    info = trained.info
    assert info["plugin"] == example.to_dict() and info["model_args"] == job.model.arguments
    if job.model.kind == "zero_shot":
        assert trained.model is None and trained.higher_is_better is True
    else:
        assert len(trained.outcome.history) == 2 and info["trainable_parameters"] > 0
    if job.model.kind == "feature_head":
        # the head was built for the preset's features, read from the frozen Life-IQA cache
        assert info["features"]["pooled_tokens"] == 49 and info["features"]["deepest_channels"] > 0


@harness.register_image_model("test_wide_output")
class WideOutput(nn.Module):
    """An image model that breaks the contract: three scores per crop."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.linear(crops.mean(dim=(2, 3)))


@harness.register_scorer("test_nan_scorer", lower_better=False)
def nan_scorer():
    return lambda images: torch.full((images.shape[0],), float("nan"))


@harness.register_feature_head("test_list_head")
def list_head(features):
    class Head(nn.Module):
        def forward(self, f):
            return [0.0] * f.pooled.shape[0]
    return Head()


@pytest.mark.parametrize("row,message", [
    ("test_wide_output", r"model test_wide_output \(plug-in test_plugins sha256:[0-9a-f]{12}\): "
                         r"its output for a batch of 2 is a tensor of shape \(2, 3\); expected a "
                         r"tensor of shape \(2,\) or \(2, 1\)"),
    ("test_nan_scorer", r"model test_nan_scorer \(plug-in test_plugins .*\): non-finite scores "
                        r"for .*\[nan\]"),
    ("test_list_head", "its output for a batch of 2 is list"),
])
def test_a_model_that_breaks_its_contract_fails_naming_it(engine, row, message):
    with pytest.raises(ModelContractError, match=message):
        engine(row)
