"""The batched fine-tuning data path and the speed benchmark (CPU)."""

import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lifeiqa
from harness.data.cache import DecodedImageCache
from harness.data.records import ImageRecord
from harness.engine import features
from harness.engine.batching import BatchCutter, Prefetcher, to_device
from harness.engine.features import CropPlan, cut, image_tensor
from harness.engine.train import predict_records, train_finetune
from harness.errors import InvalidOptionError
from harness.plan.recipes import Recipe
from harness.plan.registry import get_bench_model
from harness.speed import DEFAULT_SECTIONS, SECTIONS, TITLES, SpeedOptions, SpeedReport, run_speed
from harness.speed.flops import conv_backward_flop, peak_bf16_tflops
from harness.speed.inference import PYIQA_METRICS
from harness.speed.scaling import protocol_scaling
from harness.speed.sizes import SIZES, Bench
from lifeiqa.config import ABLATIONS

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tests check results, and on a shared 2-core machine a second
    thread that is descheduled stalls every small op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[DecodedImageCache, list[ImageRecord]]:
    """Real PNG files: three cut directly, one below the crop size (resized up first)."""
    folder = tmp_path_factory.mktemp("speed-images")
    rng = np.random.default_rng(0)
    records = []
    for index, (height, width) in enumerate([(240, 300), (224, 224), (96, 128), (260, 240)]):
        path = folder / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(path.name, path, float(index + 1), path.name))
    return DecodedImageCache(folder / "cache"), records


def reference(cache: DecodedImageCache, record: ImageRecord, boxes) -> torch.Tensor:
    """The per-sample crops the frozen-feature cache and the old fine-tuning path cut."""
    return cut(image_tensor(cache.get(record.path), 224), boxes, 224)


@pytest.mark.parametrize("workers", [0, 2])
def test_cutter_gives_exactly_the_reference_crops(images, workers):
    cache, records = images
    cutter = BatchCutter(cache, [r.path for r in records], "native", 224)
    assert cutter.native.tolist() == [True, True, False, True]
    crops = cutter.random_crops(np.repeat(np.arange(4), 6), True, np.random.default_rng(3))
    assert crops.flip.any() and not crops.flip.all()
    batches = list(Prefetcher(cutter, CPU, workers)(crops.batches(5)))
    assert torch.equal(torch.cat([image for _, image in batches]), torch.from_numpy(crops.image))
    got = torch.cat([x for x, _ in batches])
    assert torch.equal(got[:5], to_device(cutter.cut(crops.take(slice(0, 5))), CPU))
    assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
    expected = torch.cat([reference(cache, records[i], [(int(t), int(s), bool(f))])
                          for i, t, s, f in zip(crops.image, crops.top, crops.left, crops.flip,
                                                strict=True)])
    assert torch.equal(got, expected)

    grid = cutter.grid_crops(4)
    plan = CropPlan(1, 4, 224, "native")
    for index, (height, width) in enumerate(cutter.sizes):
        rows = grid.image == index
        boxes = features.test_boxes(int(height), int(width), plan)
        assert list(zip(grid.top[rows], grid.left[rows], strict=True)) == [(t, s) for t, s, _ in boxes]


def test_batched_test_predictions_match_per_image_scoring(images):
    cache, records = images
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    plan = CropPlan(1, 3, 224, "native")
    with torch.no_grad():
        direct = [float(model(reference(cache, r, features.test_boxes(
            *image_tensor(cache.get(r.path), 224).shape[-2:], plan))).score.mean()) for r in records]
    batched = predict_records(model, records, cache, plan, CPU)  # batches of 64 span the images
    np.testing.assert_allclose(batched, direct, rtol=1e-4, atol=1e-5)


def test_finetune_is_deterministic_per_seed_whatever_the_workers(images):
    cache, records = images
    recipe = Recipe(name="test", epochs=1, warmup_epochs=0, batch_size=4, lr=1e-3, train_crops=2,
                    test_crops=1, precision="fp32", model="lifeiqa_tiny")
    targets = np.array([r.score for r in records])

    def train(seed: int, workers: int):
        torch.manual_seed(0)
        model = lifeiqa.create_model("lifeiqa_tiny")
        return train_finetune(model, recipe, records, targets, records, targets, cache, seed=seed,
                              workers=workers)

    first, again, other = train(0, 0), train(0, 2), train(1, 0)
    assert [h["loss"] for h in first.history] == [h["loss"] for h in again.history]
    np.testing.assert_array_equal(first.predictions, again.predictions)
    assert not np.array_equal(first.predictions, other.predictions)
    assert np.isfinite(first.predictions).all() and first.predictions.shape == (4,)


# Life-IQA (the ablation "full"), each of the paper's ablations and the DEIQT-style head, as the
# harness's registry configures it
BATCHED_CONFIGS = {**{name: {"ablation": name} for name in ABLATIONS},
                   "deiqt_head": get_bench_model("deiqt_head").settings["config"]}


@pytest.mark.parametrize("config", BATCHED_CONFIGS.values(), ids=BATCHED_CONFIGS.keys())
def test_the_speed_reports_batched_units_train_each_unit_as_alone(config):
    """Section 7 compares like with like: two steps of two units batched (stacked parameters,
    vmap) leave each unit's parameters where its own two steps leave them."""
    from harness.speed.unit_batching import BatchedSteps, one_at_a_time, without_dropout

    models, batches, targets = [], [], []
    for unit in range(2):
        torch.manual_seed(unit)
        model = without_dropout(lifeiqa.create_model("lifeiqa_tiny", **config)).train()
        with torch.no_grad():
            batches.append(model.forward_features(torch.rand(4, 3, 224, 224)))
        models.append(model)
        targets.append(torch.rand(4))
    initial = [{n: p.detach().clone() for n, p in m.named_parameters()} for m in models]
    together = BatchedSteps(models, batches, targets)  # starts from the weights as they are
    alone = one_at_a_time(models, batches, targets)
    for _ in range(2):
        together()
        alone()
    for unit, model in enumerate(models):
        trained = {n: p.detach() for n, p in model.named_parameters() if not n.startswith("backbone.")}
        batched = together.unit_parameters(unit)
        assert batched.keys() == trained.keys()
        for name, param in trained.items():
            expected, found = param, batched[name]
            if name.endswith("in_proj_bias"):
                # the keys' bias has a zero gradient in exact arithmetic (softmax ignores a shift
                # shared by every key), so its float gradient is rounding noise that AdamW scales
                # to a full step of either sign: compared are the queries' and values' biases
                dim = param.shape[0] // 3
                expected, found = (torch.cat([t[:dim], t[2 * dim:]]) for t in (param, found))
            # atol: a tenth of one AdamW step (lr 1e-4). AdamW divides by the gradient's running
            # scale, so where a gradient nearly cancels (a query bias of the self-attention
            # mixer) the float noise of a different summation order moves it by up to ~7 %
            # of a step; a unit trained on another's batch is off by whole steps
            torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-5,
                                       msg=lambda m, name=name, unit=unit: f"unit {unit} {name}: {m}")
        moved = sum(not torch.equal(p, initial[unit][n]) for n, p in trained.items())
        assert moved > len(trained) // 2  # the steps trained the units, not a no-op


def test_peak_table_by_device_name():
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == (989.5, "H100 SXM")
    assert peak_bf16_tflops("NVIDIA H100 PCIe")[0] == 756.5
    assert peak_bf16_tflops("NVIDIA H200")[0] == 989.5
    assert peak_bf16_tflops("NVIDIA A100-SXM4-80GB")[0] == 312.0
    peak, why = peak_bf16_tflops("Tesla T4")
    assert peak is None and "MFU not reported" in why


def test_training_flops_count_depthwise_convolutions_once():
    """A convolution's backward (input and weight gradients) costs twice its forward; torch's own
    counter reports (1 + groups)x for a grouped one (33x here, ~30x for EfficientNet)."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64)
    x = torch.rand(2, 64, 28, 28, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        y = conv(x)
    forward = counter.get_total_flops()
    mapping = {torch.ops.aten.convolution_backward: conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        y.sum().backward()
    assert counter.get_total_flops() == 2 * forward


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("sections", (10,), "unknown section(s) 10"),
    ("sections", (0, 2), "unknown section(s) 0"),
    ("sections", (), "empty"),
    ("sections", "1,3", "expected a sequence of section numbers"),
    ("sections", (1, 3, 1), "given more than once"),
    ("sections", (True,), "unknown section(s) True"),
    ("device", "gpu", "expected 'auto', a torch device name"),
    ("precision", "fp8", "expected one of bf16, fp16, fp32"),
    ("workers", -1, "0 or more"),
    ("tiny", "yes", "expected True or False"),
])
def test_speed_options_reject_bad_input_naming_the_field(field, value, expected):
    with pytest.raises(InvalidOptionError) as raised:
        SpeedOptions(**{field: value})
    assert f"SpeedOptions.{field}=" in str(raised.value) and expected in str(raised.value)
    assert raised.value.exit_code == 2


def test_speed_options_defaults_and_normal_form():
    assert SpeedOptions().sections == (1, 2, 3, 4, 5, 6, 7)
    options = SpeedOptions(sections=[3, 1], device=CPU, workers=0)
    assert options.sections == (3, 1) and hash(options) == hash(SpeedOptions((3, 1), CPU, workers=0))


def test_every_size_set_measures_metrics_it_can_build_offline():
    for sizes in SIZES.values():
        assert set(sizes.inference_metrics) <= set(PYIQA_METRICS)


def test_feature_cache_section_without_the_cache_trains_to_the_same_predictions():
    """Section 3 through the API: the uncached variant runs the frozen backbone per batch inside
    ``train_frozen``'s own loop, so its predictions equal the cached ones."""
    partial: list[SpeedReport] = []
    report = run_speed(SpeedOptions(sections=(3,), device="cpu", tiny=True),
                       on_section=partial.append)
    assert report.failed == {} and [s.name for s in report.sections] == ["feature_cache"]
    assert [p.wall_seconds for p in partial] == [None] and report.wall_seconds > 0
    (row,) = report.section("feature_cache").table.rows
    assert row["equal_within_tolerance"] and row["splits"] == 3
    assert row["with_cache_s"] > 0 and row["without_cache_s"] > 0
    data = json.loads(report.to_json())
    assert data["sections"]["feature_cache"]["rows"] == [row] and data["settings"]["tiny"]
    assert TITLES["feature_cache"] in report.to_markdown()


@pytest.mark.slow
def test_gpu_check_tiny_runs_the_speed_benchmark_and_a_run_on_cpu(tmp_path):
    """``scripts/gpu_check.sh --tiny``: ``lifeiqa-bench speed --tiny --device cpu --out ...`` as
    a user types it (the default sections, JSON written), the training section again compiled,
    then a fine-tuning run end to end. The compiled section's graphs run on Dynamo's
    ``aot_eager`` backend (torch's own override variable, as in tests/test_compile.py): the
    script's step and the section's torch.compile call run as on a GPU, but not inductor's C++
    compilation on a CPU, which took 73 of this test's 124 s alone (on CUDA, inductor emits
    Triton, not C++)."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "CUDA_VISIBLE_DEVICES": "",
           "TORCH_COMPILE_OVERRIDE_BACKENDS": ">=0:aot_eager"}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--tiny"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    default = {SECTIONS[number] for number in DEFAULT_SECTIONS}  # section 8 only when asked
    for name in default:
        assert TITLES[name] in result.stdout
    report = json.loads((out / "speed.json").read_text())
    assert report["machine"]["device"] == "cpu" and report["failed"] == {}
    assert set(report["sections"]) == default
    for name, section in report["sections"].items():
        assert section["rows"], name
    assert report["sections"]["feature_cache"]["rows"][0]["equal_within_tolerance"]
    assert {r["metric"] for r in report["sections"]["inference"]["rows"]} >= {"topiq_nr", "musiq"}
    assert "Decoder overhead" in (out / "speed.md").read_text()
    compiled = json.loads((out / "speed_compiled.json").read_text())  # the training, compiled
    assert compiled["settings"]["compile"] and compiled["failed"] == {}
    assert list(compiled["sections"]) == ["training"] and compiled["sections"]["training"]["rows"]
    assert any("backends '>=0:aot_eager'" in note for note in compiled["sections"]["training"]["notes"])
    e2e = json.loads((out / "e2e_result.json").read_text())
    assert e2e["config"]["recipe"]["mode"] == "finetune" and e2e["device"] == "cpu"
    assert "1 run, 0 already done, 0 failed" in (out / "e2e.txt").read_text()
    assert json.loads((out / "pyiqa_parity.json").read_text())["ok"]
    assert "test part (5 images)" in (out / "train.txt").read_text()


@pytest.mark.slow
def test_gpu_check_resumes_from_a_named_step_and_refuses_an_unknown_one(tmp_path):
    """``--from train`` runs the release training alone (a lease too short to redo what passed);
    an unknown step name is refused before anything runs."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "CUDA_VISIBLE_DEVICES": ""}
    script = str(ROOT / "scripts" / "gpu_check.sh")
    bad = subprocess.run(["bash", script, "--tiny", "--from", "spede"], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "--from takes one of: speed compile e2e parity train" in bad.stderr
    assert not out.exists()
    result = subprocess.run(["bash", script, "--tiny", "--from", "train"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["train.txt"]
    assert "test part (5 images)" in (out / "train.txt").read_text()


@pytest.mark.slow
def test_protocol_scaling_runs_a_command_cold_and_counts_its_units(tmp_path):
    """Section 8 at the tiny sizes: ``lifeiqa-bench run --protocol splits --synth-size tiny
    --model lifeiqa_tiny --set epochs=1 --splits 1`` in a fresh process with an empty cache: its
    wall time and its one unit (what a one-split board says is tested in
    tests/test_demo_cli.py)."""
    sizes = SIZES[("cpu", True)]
    bench = Bench(CPU, sizes, Recipe(name="speed"), 0, tmp_path, [], DecodedImageCache(tmp_path / "d"))
    (row,) = protocol_scaling(bench).rows
    assert (row["command"], row["splits"], row["units"]) == (
        "lifeiqa-bench run --protocol splits --synth-size tiny --model lifeiqa_tiny --set epochs=1",
        1, 1)
    assert row["unit_s_summed"] > 0 and row["wall_s"] > 0
    assert row["fixed_s_fit"] is None  # one split count: no line to fit
    run = tmp_path / "scaling-splits-1"
    assert len(list((run / "cache" / "synth").glob("*/synth.json"))) == 1  # made by this run
    [unit] = list((run / "runs" / "splits").rglob("result.json"))
    assert unit.parent.name == "split_00"


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the pinned profile is x86-64's")
def test_arithmetic_cost_runs_each_profile_cold_and_says_what_ran(tmp_path):
    """Section 9 at the tiny sizes: one unit of ``splits`` once pinned, once native; each
    row carries the arithmetic its units recorded, and native is the ratios' base."""
    from harness.speed.arithmetic import arithmetic_cost

    sizes = SIZES[("cpu", True)]
    bench = Bench(CPU, sizes, Recipe(name="speed"), 0, tmp_path, [], DecodedImageCache(tmp_path / "d"))
    pinned, native = arithmetic_cost(bench).rows
    assert (pinned["profile"], native["profile"]) == ("x86-avx2", "native")
    assert pinned["arithmetic"].startswith("x86-avx2 (torch AVX2")
    assert native["arithmetic"].startswith("native (torch ")
    assert native["wall_vs_native"] == 1.0 and pinned["wall_vs_native"] > 0
    assert pinned["runs"] == native["runs"] == 1 and pinned["unit_s_summed_median"] > 0
