"""The authors' recipe, exactly: timm's schedules step for step against their yaml values, the head
and loss in fp32 under autocast, random test crops per seed, their reporting rule, their image
handling, and ``lifeiqa-bench reproduce`` end to end on the embedded default."""

import copy
import logging
import math
import os
import shlex

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from docs_blocks import ROOT, blocks
from PIL import Image
from timm.scheduler import CosineLRScheduler, StepLRScheduler

import lifeiqa
from harness.cli import main
from harness.data.cache import DecodedImageCache, decode_image
from harness.data.records import ImageRecord
from harness.engine.features import CropPlan
from harness.engine.schedules import LearningRate
from harness.engine.train import _select, authors_rule, make_optimizer, predict_records, train_frozen
from harness.errors import InvalidOptionError
from harness.plan.options import RunOptions, plan_run
from harness.plan.recipes import RECIPES, Recipe, authors_image_policy, get_recipe, lr_factor
from harness.results.store import read_result
from lifeiqa import BackboneFeatures, LifeIQALoss

CPU = torch.device("cpu")

# configs/swin/swin_<dataset>.yaml of the authors' repository (TANGLONG2/Life-IQA), transcribed
# by hand; DECAY_RATE is config.py's default (no yaml sets it). Their batch is per GPU, on 4 GPUs.
YAML = {
    "live": dict(BATCH_SIZE=16, PATCH_NUM=35, BASE_LR=2e-5, WARMUP_LR=2e-7, MIN_LR=2e-6,
                 NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=8, DEPTH=4),
    "csiq": dict(BATCH_SIZE=128, PATCH_NUM=35, BASE_LR=2e-4, WARMUP_LR=2e-4, MIN_LR=2e-6,
                 NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=8, DEPTH=4),
    "tid2013": dict(BATCH_SIZE=128, PATCH_NUM=25, BASE_LR=2e-4, WARMUP_LR=2e-4, MIN_LR=2e-6,
                    NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=8, DEPTH=4),
    "kadid10k": dict(BATCH_SIZE=128, PATCH_NUM=35, BASE_LR=2e-5, WARMUP_LR=2e-4, MIN_LR=2e-6,
                     NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=8, DEPTH=4),
    "livec": dict(BATCH_SIZE=64, PATCH_NUM=50, BASE_LR=3e-5, WARMUP_LR=2e-7, MIN_LR=1e-6,
                  NAME="cosine", DECAY_EPOCHS=20, NUM_EXPERTS=2, DEPTH=2),
    "koniq10k": dict(BATCH_SIZE=128, PATCH_NUM=40, BASE_LR=2e-5, WARMUP_LR=2e-7, MIN_LR=2e-6,
                     NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=2, DEPTH=4),
    "spaq": dict(BATCH_SIZE=128, PATCH_NUM=40, BASE_LR=2e-5, WARMUP_LR=2e-7, MIN_LR=2e-6,
                 NAME="step", DECAY_EPOCHS=10, NUM_EXPERTS=8, DEPTH=4),
}
EPOCHS, WARMUP_EPOCHS, DECAY_RATE, GPUS = 30, 2, 0.1, 4


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def authors_rates(yaml: dict, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimiser step of their run: their build_scheduler's timm
    scheduler, stepped as their main.py steps it (step_update(g) after optimiser step g)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=yaml["BASE_LR"])
    n = steps_per_epoch
    if yaml["NAME"] == "cosine":
        scheduler = CosineLRScheduler(optimizer, t_initial=int(EPOCHS * n), lr_min=yaml["MIN_LR"],
                                      warmup_lr_init=yaml["WARMUP_LR"],
                                      warmup_t=int(WARMUP_EPOCHS * n), cycle_limit=1,
                                      t_in_epochs=False)
    else:
        scheduler = StepLRScheduler(optimizer, decay_t=int(yaml["DECAY_EPOCHS"] * n),
                                    decay_rate=DECAY_RATE, warmup_lr_init=yaml["WARMUP_LR"],
                                    warmup_t=int(WARMUP_EPOCHS * n), t_in_epochs=False)
    rates = []
    for epoch in range(EPOCHS):
        for idx in range(n):
            rates.append(optimizer.param_groups[0]["lr"])
            scheduler.step_update(epoch * n + idx)
    return rates


def schedule_rates(recipe: Recipe, steps_per_epoch: int) -> list[float]:
    """Ours, without training: LearningRate over a bare optimiser."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
    rate = LearningRate(recipe, optimizer, steps_per_epoch)
    rates = []
    for step in range(recipe.epochs * steps_per_epoch):
        rates.append(rate.before_step(step))
        rate.after_step(step)
    return rates


@pytest.fixture(scope="module")
def tiny_features():
    """Backbone features of lifeiqa_tiny for 8 training and 4 test images (one crop each)."""
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    with torch.no_grad():
        features = model.forward_features(torch.rand(12, 3, 224, 224))
    split = [BackboneFeatures(features.pooled[i:i + 1], features.deepest[i:i + 1]) for i in range(12)]
    scores = np.linspace(20.0, 90.0, 12)
    return split[:8], scores[:8], split[8:], scores[8:]


def short_run(recipe: Recipe, tiny_features, selection: str = "last"):
    """A real training of lifeiqa_tiny's decoder: 8 samples, batch 4, so 2 steps an epoch."""
    train_x, train_y, test_x, test_y = tiny_features
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny")
    recipe = recipe.override(mode="frozen", batch_size=4, train_crops=1, test_crops=1)
    return train_frozen(model, recipe, train_x, train_y, test_x, test_y, selection=selection,
                        seed=0)


def recorded_rates(history: list[dict]) -> list[float]:
    return [rate for entry in history for rate in (entry["lr_first"], entry["lr_last"])]


@pytest.mark.parametrize("dataset", sorted(YAML))
def test_recipe_is_the_yaml_and_its_steps_run_at_timms_rates(dataset, tiny_features):
    yaml, recipe = YAML[dataset], get_recipe(f"authors_{dataset}")
    assert (recipe.lr, recipe.warmup_lr, recipe.schedule) == (yaml["BASE_LR"], yaml["WARMUP_LR"],
                                                              yaml["NAME"])
    assert (recipe.epochs, recipe.warmup_epochs, recipe.decay_rate) == (EPOCHS, WARMUP_EPOCHS,
                                                                        DECAY_RATE)
    assert recipe.batch_size == GPUS * yaml["BATCH_SIZE"]
    assert recipe.train_crops == recipe.test_crops == yaml["PATCH_NUM"]
    assert (recipe.scheduler, recipe.precision, recipe.drop_last) == ("timm", "fp16", True)
    if yaml["NAME"] == "step":
        assert recipe.step_every == yaml["DECAY_EPOCHS"]
    else:  # the floor reaches only the cosine scheduler (timm's StepLRScheduler has none)
        assert recipe.min_lr == yaml["MIN_LR"]
    config = lifeiqa.get_spec(recipe.model).config  # experts and depth: the yaml's, not --num_experts
    assert (config.num_experts, config.depth) == (yaml["NUM_EXPERTS"], yaml["DEPTH"])

    outcome = short_run(recipe, tiny_features)
    assert [entry["steps"] for entry in outcome.history] == [2] * EPOCHS
    # two steps an epoch: the first and last step of each are every step of the run
    assert recorded_rates(outcome.history) == authors_rates(yaml, 2)


def test_step_decay_waits_for_the_warmup_and_warmup_lr_is_the_yamls():
    csiq, kadid, live = (authors_rates(YAML[d], 1) for d in ("csiq", "kadid10k", "live"))
    assert csiq[:3] == [2e-4] * 3  # WARMUP_LR = BASE_LR: no effective warmup
    # one step an epoch; their loop uses each rate one step late, so the base arrives at step 3
    assert kadid[:4] == pytest.approx([2e-4, 2e-4, 1.1e-4, 2e-5])  # falls during "warmup"
    assert live[:4] == pytest.approx([2e-7, 2e-7, 1.01e-5, 2e-5])
    # warmup_prefix: x0.1 after epoch 12 and 22, used from the step after (their loop's lag)
    assert csiq[12] == pytest.approx(2e-4) and csiq[13] == pytest.approx(2e-5)
    assert csiq[23] == pytest.approx(2e-6)


@pytest.mark.parametrize("dataset", sorted(YAML))
def test_a_shorter_run_keeps_the_schedule_shape(dataset):
    recipe = get_recipe(f"authors_{dataset}")
    full = schedule_rates(recipe, 2)  # 60 steps
    assert schedule_rates(recipe.with_epochs(15), 4) == full
    assert schedule_rates(recipe.with_epochs(3), 20) == full


@pytest.mark.parametrize("name", ["cpu_demo", "cpu_frozen"])
def test_cpu_recipes_keep_the_harness_schedule(name, tiny_features):
    recipe = get_recipe(name)
    assert recipe.scheduler == "harness" and not recipe.drop_last
    outcome = short_run(recipe, tiny_features)
    expected = [recipe.lr * lr_factor(recipe, step / 2) for step in range(2 * recipe.epochs)]
    assert recorded_rates(outcome.history) == expected


def test_head_and_loss_run_in_fp32_under_autocast():
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny").train()
    dtypes = {}
    for name, module in (("memory_proj", model.memory_proj), ("router", model.head.mixture.router),
                         ("fc", model.head.fc)):
        module.register_forward_hook(lambda m, i, out, name=name: dtypes.__setitem__(
            name, (out[0] if isinstance(out, tuple) else out).dtype))
    targets = torch.tensor([64.3, 97.1], dtype=torch.float32)  # bf16 steps are 0.5 here
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(torch.rand(2, 3, 224, 224))
        loss = LifeIQALoss()(output, targets)
    assert dtypes["memory_proj"] == torch.bfloat16  # autocast is on for the decoder
    assert dtypes["router"] == dtypes["fc"] == torch.float32
    assert output.score.dtype == output.aux_loss.dtype == output.z_loss.dtype == torch.float32
    assert loss.dtype == torch.float32
    expected = F.smooth_l1_loss(output.score.double(), targets.double()) \
        + 0.01 * output.aux_loss.double() + 0.001 * output.z_loss.double()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("authors-images")
    rng = np.random.default_rng(0)
    records = []
    for index, (height, width) in enumerate([(240, 300), (300, 260), (256, 256)]):
        path = folder / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(path.name, path, float(index), path.name))
    return DecodedImageCache(folder / "cache"), records


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_the_optimiser_steps_as_torchs_reference_adamw_in_either_layout(layout):
    """make_optimizer's AdamW (the fused kernel on CPU where it is exact) moves every parameter
    as torch's per-tensor reference does, channels-last conv weights given contiguous gradients
    (what DDP's gradient buckets hand back) included: there the fused CPU kernel would apply
    other elements' updates."""
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny")
    if layout == "channels_last":
        model.to(memory_format=torch.channels_last)
    reference_model = copy.deepcopy(model)
    optimizer = make_optimizer(model, get_recipe("cpu_demo"), lambda name: True)
    twin = dict(zip(model.parameters(), reference_model.parameters(), strict=True))
    reference = torch.optim.AdamW(
        [{**group, "params": [twin[p] for p in group["params"]], "fused": None, "foreach": False}
         for group in optimizer.param_groups])
    for _ in range(3):
        for param, twin_param in twin.items():
            grad = torch.randn(param.shape)  # contiguous whatever the parameter's layout
            param.grad, twin_param.grad = grad, grad.clone()
        optimizer.step()
        reference.step()
    for (name, param), twin_param in zip(model.named_parameters(), reference_model.parameters(),
                                         strict=True):
        torch.testing.assert_close(param, twin_param, rtol=1e-5, atol=1e-6, msg=name)
    assert bool(optimizer.defaults["fused"]) == (layout == "contiguous")  # fast where exact


def test_random_test_crops_are_reproducible_per_seed(images):
    cache, records = images
    torch.manual_seed(0)
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    plan = CropPlan(1, 4, 224, "native")

    def predict(rng=None):
        return predict_records(model, records, cache, plan, CPU, workers=0, rng=rng)

    first = predict(np.random.default_rng((3, 1)))
    assert np.array_equal(first, predict(np.random.default_rng((3, 1))))
    assert not np.allclose(first, predict(np.random.default_rng((4, 1))))
    stream = np.random.default_rng((3, 1))
    assert np.array_equal(predict(stream), first)
    assert not np.allclose(predict(stream), first)  # each evaluation draws fresh crops
    assert np.array_equal(predict(), predict())  # the grid: fixed


def test_reporting_rule_on_a_recorded_history():
    history = [{"epoch": 1, "test_srcc": 0.90, "test_plcc": 0.93},
               {"epoch": 2, "test_srcc": 0.92, "test_plcc": 0.91},
               {"epoch": 3, "test_srcc": 0.91, "test_plcc": 0.95},
               {"epoch": 4, "test_srcc": 0.92, "test_plcc": 0.92},
               {"epoch": 5, "test_srcc": 0.89, "test_plcc": 0.96}]
    # their main.py, transcribed
    max_srcc = max_plcc = 0.0
    for entry in history:
        srcc, plcc = entry["test_srcc"], entry["test_plcc"]
        if srcc >= max_srcc:
            max_plcc = max(max_plcc, plcc)
            max_srcc = max(max_srcc, srcc)
    report = authors_rule(history)
    assert (report.srcc, report.plcc) == (max_srcc, max_plcc) == (0.92, 0.93)
    assert report.epoch == 4 and _select(history, "authors") == 3  # ties go to the later epoch
    assert _select(history, "oracle") == 1  # the oracle keeps the first best
    never = authors_rule([{"test_srcc": -0.1, "test_plcc": 0.2}])
    assert (never.epoch, never.srcc, never.plcc) == (None, 0.0, 0.0)


def test_authors_selection_reports_the_rule_from_one_run(tiny_features):
    outcome = short_run(get_recipe("authors_csiq").with_epochs(5), tiny_features, "authors")
    report = authors_rule(outcome.history)
    assert outcome.reported == {"srcc": report.srcc, "plcc": report.plcc}
    assert outcome.selected_epoch == report.epoch
    chosen = outcome.history[report.epoch - 1]
    from harness.results import metrics

    assert metrics.srcc(outcome.predictions, tiny_features[3]) == chosen["test_srcc"]
    assert all("test_plcc" in entry for entry in outcome.history)  # the last epoch's, too


def test_image_policy_and_test_crops_switches(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees for display
    Image.new("RGB", (64, 48), "red").save(path, exif=exif)
    assert decode_image(path, "native").shape == (64, 48, 3)
    assert decode_image(path, "native-noexif").shape == (48, 64, 3)
    assert decode_image(path, "squeeze-noexif:384x512").shape == (512, 384, 3)
    assert authors_image_policy("koniq10k") == authors_image_policy("synth-spaq") == \
        "squeeze-noexif:384x512"
    assert authors_image_policy("csiq") == "native-noexif"

    options = RunOptions("splits", datasets=("synth-koniq10k",), recipe="authors_koniq10k",
                         selection="authors", allow_oracle=True, test_crops="random",
                         image_policy="authors", model="lifeiqa_tiny")
    recipe = plan_run(options, on_cpu=True).jobs[0].recipe
    assert (recipe.resize_policy, recipe.test_crop_layout) == ("squeeze-noexif:384x512", "random")
    with pytest.raises(InvalidOptionError, match="--allow-oracle"):
        RunOptions("splits", selection="authors")
    with pytest.raises(InvalidOptionError, match="mode=finetune"):
        plan_run(RunOptions("splits", recipe="cpu_demo", test_crops="random"), on_cpu=True)
    with pytest.raises(InvalidOptionError, match="drop --set resize_policy"):
        RunOptions("splits", image_policy="authors", overrides={"resize_policy": "native"})
    with pytest.raises(InvalidOptionError, match="set scheduler=timm"):
        RECIPES["cpu_demo"].override(warmup_lr=1e-6)


def _documented_smoke_test() -> list[str]:
    """The arguments of the CPU smoke test that docs/tutorials/reproduce-paper.md gives, read
    from the page (its block is marked as run here)."""
    page = ROOT / "docs" / "tutorials" / "reproduce-paper.md"
    (block,) = [b for b in blocks(page) if b.skip and "tests/test_authors_recipe.py" in b.skip]
    (line,) = block.code.strip().splitlines()
    words = shlex.split(line)
    assert words[0] == "lifeiqa-bench" and "--tiny" in words, line
    return words[1:]


@pytest.mark.slow
def test_reproduce_runs_end_to_end_on_the_embedded_default(tmp_path, monkeypatch, capsys):
    """The documented smoke test, in a fresh folder as a reader runs it (in this process: the
    command line's own process is tested by the other pages' blocks)."""
    # the command configures the harness loggers onto this test's captured streams: undo after
    logger = logging.getLogger("harness")
    for name, value in (("handlers", []), ("propagate", logger.propagate), ("level", logger.level)):
        monkeypatch.setattr(logger, name, value)
    monkeypatch.chdir(tmp_path)
    assert main(_documented_smoke_test()) == 0
    out = capsys.readouterr().out
    assert "published (paper; their rule)" in out and "0.966" in out
    assert "reproduced, authors' rule (test-oracle)" in out and "last epoch (same runs)" in out
    paths = sorted((tmp_path / "runs").rglob("result.json"))
    assert [p.parent.name for p in paths] == ["split_00", "split_01"]  # --tiny: 2 splits
    path = paths[0]
    assert os.sep.join(("reproduce-tiny", "synth-csiq")) in str(path)
    result = read_result(path)
    assert result.selection == "authors"
    recipe = result.config["recipe"]
    assert (recipe["scheduler"], recipe["test_crop_layout"], recipe["resize_policy"]) == \
        ("timm", "random", "native-noexif")
    # shrunk in data and epochs only: 3 epochs, warmup and decay scaled by 3/30
    assert (recipe["epochs"], recipe["warmup_epochs"], recipe["step_every"]) == (3, 0.2, 1.0)
    assert (recipe["lr"], recipe["warmup_lr"], Recipe(**recipe).decay_rate) == (2e-4, 2e-4, 0.1)
    report = authors_rule(result.history)
    assert (result.metrics.srcc, result.metrics.plcc) == (report.srcc, report.plcc)
    assert all(math.isfinite(entry["test_plcc"]) and entry["lr_first"] > 0
               for entry in result.history)
