"""pyiqa integration, run against the real pyiqa install (fresh interpreters in subprocesses)."""

import http.server
import json
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

import lifeiqa
import lifeiqa_pyiqa_hook
from lifeiqa import CheckpointError, LabelScale, weights
from lifeiqa.weights import resolve_weights_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_caches(tmp_path, monkeypatch):
    """Every weights location in tmp_path (the data cache is the session's): no test reads or
    writes the user's."""
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(weights.CHECKPOINT_ENV, raising=False)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = lifeiqa.create_model("lifeiqa_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_kadid.safetensors"
    lifeiqa.save_checkpoint(model, path, label_scale=LabelScale("native", 1.0, 5.0, True, "kadid10k"))
    return path


@pytest.fixture(scope="module")
def effnet_checkpoint(tmp_path_factory):
    """A checkpoint on a metric name's own architecture (random weights: no download)."""
    torch.manual_seed(1)
    model = lifeiqa.create_model("lifeiqa_effnet_lite0")
    path = tmp_path_factory.mktemp("ckpt") / "effnet_koniq.safetensors"
    return lifeiqa.save_checkpoint(model, path, label_scale=LabelScale("native", 0.0, 100.0, True,
                                                                      "koniq10k"))


@pytest.mark.slow
def test_fresh_interpreter_with_only_pyiqa_creates_the_metric():
    code = (
        "import sys, pyiqa, torch\n"
        "assert 'lifeiqa' not in sys.modules\n"
        "m = pyiqa.create_metric('lifeiqa_effnet_lite0', pretrained=False, device='cpu')\n"
        "s = m(torch.rand(2, 3, 300, 400))\n"
        "print(list(s.shape), m.lower_better, m.score_range, bool(torch.isfinite(s).all()))\n"
        "print(sorted(n for n in pyiqa.list_models(metric_mode='NR') if n.startswith('lifeiqa')))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first == "[2, 1] False ~0, ~1 True"
    assert eval(second) == ["lifeiqa", "lifeiqa_effnet_lite0", "lifeiqa_swin_t"]


def test_startup_hook_imports_nothing_heavy():
    result = run_python("import sys; print('torch' in sys.modules, 'lifeiqa_pyiqa_hook' in sys.modules)")
    assert result.stdout.strip() == "False True"


@pytest.mark.slow
def test_switch_off_then_import_lifeiqa_brings_it_back():
    code = (
        "import pyiqa\n"
        "print('lifeiqa' in pyiqa.list_models())\n"
        "import lifeiqa\n"
        "print('lifeiqa' in pyiqa.list_models())\n"
    )
    result = run_python(code, LIFEIQA_PYIQA_PLUGIN="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_a_changed_pyiqa_does_not_break_startup(tmp_path):
    fake = tmp_path / "fake" / "pyiqa"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "default_model_configs.py").write_text("CONFIGS = {}\n")
    code = "import pyiqa.default_model_configs as m; print(sorted(vars(m).keys() & {'CONFIGS'}))"
    import os

    path = os.pathsep.join([str(tmp_path / "fake"), os.environ["PYTHONPATH"]])
    result = run_python(code, PYTHONPATH=path)
    assert result.returncode == 0, result.stderr
    assert "['CONFIGS']" in result.stdout
    assert "has no DEFAULT_CONFIGS" in result.stderr


def test_metric_object_behaves_like_pyiqa_metrics(checkpoint):
    import pyiqa

    metric = pyiqa.create_metric("lifeiqa", pretrained_model_path=str(checkpoint), device="cpu",
                                 model_name="lifeiqa_tiny")
    assert metric.lower_better is False and metric.metric_mode == "NR"
    assert metric.score_range == "~0, ~1"
    images = torch.rand(2, 3, 240, 260)
    scores = metric(images)
    assert scores.shape == (2, 1)
    gray = metric(images[:, :1])
    assert gray.shape == (2, 1)

    loss_metric = pyiqa.create_metric("lifeiqa", as_loss=True, device="cpu",
                                      pretrained_model_path=str(checkpoint),
                                      model_name="lifeiqa_tiny")
    x = images.clone().requires_grad_(True)
    loss_metric(x).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_score_through_pyiqa_and_lifeiqa(checkpoint):
    import pyiqa

    images = torch.rand(1, 3, 256, 300)
    metric = pyiqa.create_metric("lifeiqa_swin_t", pretrained_model_path=str(checkpoint),
                                 device="cpu", model_name="lifeiqa_tiny")
    model = lifeiqa.load_checkpoint(checkpoint)
    with torch.no_grad():
        direct = lifeiqa.score_images(model, images)
        raw = lifeiqa.predict_image(model, images)
    torch.testing.assert_close(metric(images).view(-1), direct)
    torch.testing.assert_close(direct, (raw - 1.0) / 4.0)  # native 1-5 mapped to [0, 1]


# --- input conventions: pyiqa checks the range when scoring; the network takes any finite input


@pytest.mark.parametrize("size", [(48, 64), (240, 260)], ids=["resized-up", "cropped"])
def test_as_loss_takes_any_finite_tensor_unclamped_with_gradients_everywhere(checkpoint, size):
    import pyiqa

    loss = pyiqa.create_metric("lifeiqa", as_loss=True, device="cpu", model_name="lifeiqa_tiny",
                               pretrained_model_path=str(checkpoint))
    x = torch.randn(2, 3, *size, requires_grad=True)  # a network's unclamped output
    value = loss(x)
    value.backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad != 0).float().mean() > 0.99  # no clamp: out-of-range pixels get gradients
    with torch.no_grad():  # the model sees the values as given, not clamped to [0, 1]
        assert not torch.allclose(value, loss(x.clamp(0, 1)))
        direct = lifeiqa.score_images(loss.net.model, x, check_range=False).mean()
    torch.testing.assert_close(value.detach(), direct)


def test_scoring_keeps_pyiqa_range_error_and_non_finite_input_fails_in_both_modes(checkpoint):
    import pyiqa

    kwargs = dict(device="cpu", model_name="lifeiqa_tiny", pretrained_model_path=str(checkpoint))
    score = pyiqa.create_metric("lifeiqa", **kwargs)
    with pytest.raises(AssertionError, match=r"normalized to \[0, 1\].*max=25"):
        score(torch.rand(1, 3, 64, 64) * 255)
    unchecked = pyiqa.create_metric("lifeiqa", check_input_range=False, **kwargs)
    loss = pyiqa.create_metric("lifeiqa", as_loss=True, **kwargs)
    for metric in (score, unchecked, loss):
        for bad in (float("nan"), float("inf")):
            x = torch.rand(1, 3, 64, 64)
            x[0, 1, 5, 7] = bad
            with pytest.raises((ValueError, AssertionError), match=r"finite|nan|inf"):
                metric(x)
    x = torch.rand(1, 3, 64, 64)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="expected finite values, found 1 NaN"):
        loss(x)
    brighter = torch.rand(1, 3, 64, 64) * 1.2  # check_input_range=False: scored as given
    with torch.no_grad():
        assert float(unchecked(brighter)) == pytest.approx(float(loss(brighter)), abs=1e-6)


@pytest.mark.slow
def test_cpu_scores_in_a_fresh_pyiqa_process_match_lifeiqa_within_tolerance(tmp_path):
    """The CPU half of the device check (scripts/gpu_check.sh runs it with cuda as well)."""
    out = tmp_path / "parity.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "pyiqa_device_parity.py"),
                             "--devices", "cpu", "--out", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["ok"] and report["max_abs_difference"]["cpu"] <= 1e-2
    assert len(report["scores"]["cpu"]) == 3


# --- weights: the environment variable, registered weights, architecture checks


def test_environment_checkpoint_serves_only_the_names_it_fits(effnet_checkpoint, monkeypatch):
    import pyiqa

    monkeypatch.setenv(weights.CHECKPOINT_ENV, str(effnet_checkpoint))
    metric = pyiqa.create_metric("lifeiqa_effnet_lite0", device="cpu")
    assert metric.net.model.label_scale["dataset"] == "koniq10k"
    with pytest.warns(UserWarning, match="LIFEIQA_CHECKPOINT=.*tf_efficientnet_lite0.*swin_tiny"), \
            pytest.raises(CheckpointError, match="no Life-IQA weights for 'lifeiqa_swin_t'"):
        pyiqa.create_metric("lifeiqa_swin_t", device="cpu")


def test_registered_weights_are_the_default_and_other_backbones_are_refused(effnet_checkpoint):
    import pyiqa

    weights.add_weights(effnet_checkpoint, "lifeiqa_effnet_lite0")
    metric = pyiqa.create_metric("lifeiqa_effnet_lite0", device="cpu")
    images = torch.rand(1, 3, 230, 250)
    with torch.no_grad():
        expected = lifeiqa.score_images(lifeiqa.load_checkpoint(effnet_checkpoint), images)
    torch.testing.assert_close(metric(images).view(-1), expected)
    for refuse in (lambda: weights.add_weights(effnet_checkpoint, "lifeiqa"),
                   lambda: pyiqa.create_metric("lifeiqa_swin_t", device="cpu",
                                               pretrained_model_path=str(effnet_checkpoint))):
        with pytest.raises(CheckpointError) as info:
            refuse()
        assert "tf_efficientnet_lite0" in str(info.value)
        assert "swin_base" in str(info.value) or "swin_tiny" in str(info.value)


def test_no_weights_names_the_two_commands_that_make_them():
    import pyiqa

    with pytest.raises(CheckpointError, match="pretrained=False") as info:
        pyiqa.create_metric("lifeiqa_swin_t", device="cpu")
    lines = str(info.value).splitlines()
    train = [line.strip() for line in lines if "lifeiqa-bench train" in line]
    add = [line.strip() for line in lines if "lifeiqa-bench weights add" in line]
    assert train == ["lifeiqa-bench train --dataset koniq10k --split official --data-root DIR "
                     "--model lifeiqa_swin_t --out lifeiqa_swin_t-koniq10k.safetensors"]
    assert add == ["lifeiqa-bench weights add lifeiqa_swin_t-koniq10k.safetensors --name "
                   "lifeiqa_swin_t"]
    assert str(weights.weights_dir()) in str(info.value)


@pytest.mark.slow
def test_every_name_with_registered_weights_works_in_a_fresh_interpreter(tmp_path):
    """Default construction, a forward pass on [0, 1] input and an ``as_loss`` backward pass on
    a standard-normal input, for each lifeiqa* name, as a pyiqa user runs them."""
    for name, preset in lifeiqa_pyiqa_hook.PRESETS.items():
        torch.manual_seed(0)
        path = lifeiqa.save_checkpoint(lifeiqa.create_model(preset), tmp_path / f"{name}.safetensors",
                                       label_scale=LabelScale("native", 0.0, 100.0, True, "koniq10k"))
        weights.add_weights(path, name)
        path.unlink()
    code = (
        "import pyiqa, torch\n"
        "torch.manual_seed(0)\n"
        "for name in sorted(pyiqa.list_models(metric_mode='NR', filter='lifeiqa*')):\n"
        "    score = pyiqa.create_metric(name, device='cpu')\n"
        "    s = score(torch.rand(1, 3, 224, 224))\n"
        "    loss = pyiqa.create_metric(name, device='cpu', as_loss=True)\n"
        "    x = torch.randn(1, 3, 224, 224, requires_grad=True)\n"
        "    loss(x).backward()\n"
        "    print(name, list(s.shape), bool(torch.isfinite(s).all()), score.lower_better,\n"
        "          score.metric_mode, bool(torch.isfinite(x.grad).all()), bool(x.grad.abs().sum() > 0))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{name} [1, 1] True False NR True True"
                                          for name in sorted(lifeiqa_pyiqa_hook.PRESETS)]


def test_url_weights_download_once_into_the_cache(checkpoint, tmp_path):
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{checkpoint.name}"
        local = resolve_weights_path(url)
        assert local.read_bytes() == checkpoint.read_bytes()
        server.shutdown()
        assert resolve_weights_path(url) == local  # served from the cache, server gone
    finally:
        server.server_close()


def test_bad_weights_references_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="hf://owner/repo"):
        resolve_weights_path("hf://just-owner")
    with pytest.raises(CheckpointError, match="no such file"):
        resolve_weights_path(str(tmp_path / "absent.safetensors"))


def test_hook_config_entries_are_well_formed():
    import lifeiqa_pyiqa_hook

    for name, entry in lifeiqa_pyiqa_hook.METRICS.items():
        assert entry["metric_mode"] == "NR" and entry["lower_better"] is False, name
        assert entry["score_range"] == "~0, ~1"
        assert entry["metric_opts"]["metric_name"] == name
        assert lifeiqa.get_spec(entry["metric_opts"]["model_name"])
    json.dumps(lifeiqa_pyiqa_hook.METRICS)
