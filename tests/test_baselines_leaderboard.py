"""The registry's built-in models (probes, pyiqa architectures, zero-shot metrics) and
leaderboards."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from commands import bench_here
from dataset_fixtures import write_kadid10k_release

import lifeiqa
from harness.engine.families.image_model import build
from harness.engine.families.probe import fit_ridge, predict_ridge
from harness.engine.features import StageExtractor
from harness.plan.builtin_models import pyiqa_trained_on
from harness.plan.models import ModelRef
from harness.plan.protocols import load_protocol, parse_protocol
from harness.plan.registry import get_bench_model, list_bench_models
from harness.reporting.leaderboard import model_order
from harness.results import metrics
from harness.results.aggregate import Cell, compare_block
from harness.results.schema import Environment, ProtocolRef, Seeds, SplitInfo, UnitResult
from harness.results.store import ResultsStore


def test_registry_names_needs_and_data_seen():
    names = list_bench_models()
    for name in ("deiqt_head", "probe_stage1", "probe_stage4", "cnniqa", "wadiqam_nr", "musiq",
                 "topiq_nr", "piqe"):
        assert name in names
    for name in names:
        spec = get_bench_model(name)
        # the harness's own say what they need (a plug-in's may leave it to its docs)
        assert spec.description and (spec.needs or spec.plugin is not None)
    assert get_bench_model("piqe").trained_on == ()
    assert get_bench_model("brisque").trained_on == ("live",)
    # read from pyiqa's own config: its default musiq / dbcnn weights were fitted on KonIQ-10k
    assert pyiqa_trained_on("musiq") == ("koniq10k",)
    assert pyiqa_trained_on("musiq-spaq") == ("spaq",)
    assert get_bench_model("pyiqa:dbcnn").trained_on == ("koniq10k",)
    with pytest.raises(KeyError, match="did you mean"):
        get_bench_model("cnn_iqa")
    with pytest.raises(KeyError, match="pyiqa has no metric"):
        get_bench_model("pyiqa:no_such_metric")
    with pytest.raises(KeyError, match="pyiqa has no network class 'DBCN'; did you mean DBCNN"):
        get_bench_model("pyiqa-arch:DBCN")


def test_pyiqa_metric_table_read_without_pyiqa_is_the_one_pyiqa_loads():
    """``pyiqa:`` names are checked against pyiqa's table read from its file (no torch for a
    listing command): in a fresh interpreter, that table is the one importing pyiqa gives,
    lifeiqa's metrics included, and reading it loads neither pyiqa nor torch."""
    script = ("import sys\nfrom harness.plan.builtin_models import _pyiqa_configs\n"
              "read = _pyiqa_configs()\n"
              "print('LOADED', sorted(m for m in ('pyiqa', 'torch') if m in sys.modules))\n"
              "from pyiqa.default_model_configs import DEFAULT_CONFIGS\n"
              "assert 'lifeiqa' in read and len(read) > 50, sorted(read)\n"
              "assert read == dict(DEFAULT_CONFIGS), set(read) ^ set(DEFAULT_CONFIGS)\n"
              "assert _pyiqa_configs() is DEFAULT_CONFIGS  # pyiqa loaded: its own table\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "LOADED []" in done.stdout


def test_protocols_declare_baselines_and_unknown_ones_are_named():
    comparison = load_protocol("comparison")
    assert {"deiqt_head", "cnniqa", "wadiqam_nr", "piqe"} <= set(comparison.baselines)
    assert len(comparison.variants) == 7
    assert load_protocol("layer-probes").baselines == tuple(f"probe_stage{k}" for k in range(1, 5))
    with pytest.raises(ValueError, match="baseline 'vgg_probe'"):
        parse_protocol({"name": "x", "version": 1, "kind": "splits", "baselines": ["vgg_probe"]},
                       "x.yaml")


def test_ridge_recovers_a_linear_relation_and_picks_little_shrinkage():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12)) * rng.uniform(0.1, 10, size=12) + 3
    w = rng.normal(size=12)
    y = x @ w + 1.5 + rng.normal(scale=0.01, size=400)
    weights, alpha, _ = fit_ridge(x, y)
    assert np.allclose(predict_ridge(weights, x), y, atol=0.05)
    assert alpha <= 1.0


def test_stage_extractor_reuses_the_life_iqa_backbone_weights():
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    extractor = StageExtractor(model)
    crops = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        stored = extractor(crops)
        stages = extractor.wrap(stored)
        penultimate, deepest = model.backbone((crops - model.input_mean) / model.input_std)
        features = model.forward_features(crops)
    # the one pass also holds what Life-IQA's decoder reads, the model's own up to rounding: the
    # pass runs its own channels-last copy of the body, whose kernels round apart from the
    # model's by ~1e-7 under AVX2 (bit-equal under AVX-512; the tests run pinned to AVX2)
    assert torch.allclose(stored["pooled"], features.pooled, rtol=1e-5, atol=1e-6)
    assert torch.allclose(stored["deepest"], features.deepest, rtol=1e-5, atol=1e-6)
    assert sorted(stages) == ["s16", "s32", "s4", "s8"]
    assert torch.allclose(stages["s16"], penultimate.mean((2, 3)), atol=1e-5)
    assert torch.allclose(stages["s32"], deepest.mean((2, 3)), atol=1e-5)


@pytest.mark.parametrize("name,size", [("cnniqa", 32), ("wadiqam_nr", 96)])
def test_pyiqa_architectures_build_offline_and_train_through_the_adapter(name, size):
    torch.manual_seed(0)
    model = build(ModelRef("lifeiqa_tiny", name))
    assert sum(p.numel() for p in model.parameters()) > 1000
    x = torch.rand(4, 3, size, size)
    out = model(x)
    assert out.score.shape == (4,) and float(out.aux_loss) == 0.0
    out.score.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        assert model(x).score.shape == (4,)


def _cell(variant: str, values: list[float]) -> Cell:
    units = [f"split_{k:02d}" for k in range(len(values))]
    summary = metrics.summarize(values)
    return Cell(protocol="comparison", version="1.0", selection="last",
                model_ref=ModelRef("lifeiqa_x", variant), dataset="synth", units=units,
                srcc=summary, plcc=summary, per_unit_srcc=dict(zip(units, values, strict=True)))


def test_markers_follow_the_paired_test_and_order_puts_the_reference_first():
    reference = _cell("full", [0.80, 0.82, 0.79, 0.85, 0.81, 0.83, 0.80, 0.84])
    worse = _cell("cnniqa", [0.60, 0.61, 0.58, 0.66, 0.62, 0.64, 0.61, 0.63])
    mixed = _cell("piqe", [0.81, 0.80, 0.80, 0.84, 0.82, 0.82, 0.81, 0.83])
    # p = 2 / 2**8 for 8 of 8 splits worse, times 2 (Holm over the two comparisons) < 0.05
    markers = {c.model: c.marker for c in compare_block([reference, worse, mixed], "lifeiqa_x")}
    assert markers == {"cnniqa": "▼", "piqe": ""}  # the reference is not compared with itself
    models = [ModelRef("lifeiqa_x", v) for v in ("piqe", "no_gcn", "cnniqa", "full", "probe_stage2")]
    order = [m.name for m in model_order(models, "lifeiqa_x")]
    assert order[:2] == ["lifeiqa_x", "lifeiqa_x+no_gcn"]
    assert order.index("probe_stage2") < order.index("cnniqa") < order.index("piqe")


@pytest.mark.slow
def test_baselines_run_on_the_same_splits_and_the_leaderboard_shows_them(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_kadid10k_release(tmp_path / "kadid", bad_rows=False)  # 12 images, 3 references
    protocol = tmp_path / "mini.yaml"
    protocol.write_text(
        "name: mini\nversion: '1'\nkind: splits\nsplits: 2\ntest_fraction: 0.34\n"
        "datasets: [kadid10k]\nvariants: [full, no_moe]\n"
        "baselines: [deiqt_head, probe_stage3, cnniqa, piqe]\nbreakdown: distortion\n")
    run = bench_here(capsys, "run", "--protocol", str(protocol), "--runs", str(runs), "--model",
                     "lifeiqa_tiny", "--recipe", "cpu_demo", "--dataset-root",
                     f"kadid10k={tmp_path / 'kadid'}", "--set", "epochs=1", "--set",
                     "train_crops=2", "--set", "test_crops=2")
    assert run.returncode == 0, run.stdout + run.stderr
    by_model = {}
    for result in ResultsStore(runs).results("mini"):
        by_model.setdefault(result.model.name, []).append(result)
    assert sorted(by_model) == ["cnniqa", "deiqt_head", "lifeiqa_tiny", "lifeiqa_tiny+no_moe",
                                "piqe", "probe_stage3"]
    split_files = {m: sorted(r.split.sha256_16 for r in rs) for m, rs in by_model.items()}
    assert len({tuple(v) for v in split_files.values()}) == 1  # every model, the same splits
    piqe = by_model["piqe"][0]
    assert piqe.selection_note.startswith("zero-shot") and piqe.model_config["trained_on"] == []
    assert by_model["cnniqa"][0].config["recipe"]["crop_size"] == 32
    assert by_model["deiqt_head"][0].model_config["num_queries"] == 1
    assert by_model["probe_stage3"][0].model_config["probe_stride"] == 16

    board = bench_here(capsys, "leaderboard", "mini", "--runs", str(runs), "--out",
                       str(tmp_path / "board"), "--published", "none")
    assert board.returncode == 0, board.stdout + board.stderr
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    for model in by_model:
        assert f"| {model} " in text
    assert "selection: last epoch" in text and "Hardware" in text
    assert "Split files (relative to the runs folder): mini/splits/kadid10k/split_00.json" in text
    figures = sorted(p.name for p in (tmp_path / "board" / "figures").iterdir())
    assert any(f.endswith("-srcc.png") for f in figures)
    assert any(f.endswith("-distortions.png") for f in figures)
    assert any(f.endswith("-scatter.png") for f in figures)
    for name in figures:
        assert f"figures/{name}" in text


def _result(variant: str, unit: str, srcc: float, dataset: str = "csiq") -> UnitResult:
    scores = metrics.Scores(srcc, srcc, srcc + 0.01, srcc + 0.01, 0.1, 100)
    environment = Environment(None, None, "3.11", "2.x", "1.0", "2.0", "0.1", "h", "Linux", None)
    return UnitResult(
        suite="s", protocol=ProtocolRef("splits", "1.0"), preset="lifeiqa_swin_b_csiq",
        variant=variant, train_dataset=dataset, test_dataset=dataset, unit=unit,
        selection="last", selected_epoch=9, selection_note="", metrics=scores, per_distortion={},
        split=SplitInfo(f"protocols/splits/{dataset}/{unit}.json", "0" * 16, 400, 100, 0),
        seeds=Seeds(0, 0), config={"breakdown": "none"}, model_config={}, data={},
        exclusions=(), history=(), device="cuda", world_size=1, environment=environment,
        wall_seconds=60.0)


def test_published_rows_sit_beside_reproductions_with_their_source():
    from harness.reporting.leaderboard import load_published_values, render

    results = [_result("full", f"split_{k:02d}", 0.95 + k / 1000) for k in range(6)]
    results += [_result("cnniqa", f"split_{k:02d}", 0.70 + k / 1000) for k in range(6)]
    text = render(results, None, load_published_values(), "t")
    row = next(line for line in text.splitlines() if line.startswith("| Life-IQA (published)"))
    assert "0.966" in row  # docs/design.md section 6, second-hand
    assert "arXiv 2511.19024" in text and "second-hand" in text \
        and "selection: authors' rule (test-oracle)" in text
    cnniqa = next(line for line in text.splitlines() if line.startswith("| cnniqa"))
    assert cnniqa.rstrip(" |").endswith("▼")  # 6 of 6 splits worse: p = 0.03125
    assert "6.0 min of unit wall time" in text or "12.0 min" in text
