"""pyiqa integration, run against the real pyiqa install (fresh interpreters in subprocesses)."""

import http.server
import json
import subprocess
import sys
import threading
from functools import partial

import pytest
import torch

import lifeiqa
from lifeiqa import CheckpointError, LabelScale


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = lifeiqa.create_model("lifeiqa_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_kadid.safetensors"
    lifeiqa.save_checkpoint(model, path, label_scale=LabelScale("native", 1.0, 5.0, True, "kadid10k"))
    return path


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

    metric = pyiqa.create_metric("lifeiqa", pretrained_model_path=str(checkpoint), device="cpu")
    assert metric.lower_better is False and metric.metric_mode == "NR"
    images = torch.rand(2, 3, 240, 260)
    scores = metric(images)
    assert scores.shape == (2, 1)
    gray = metric(images[:, :1])
    assert gray.shape == (2, 1)

    loss_metric = pyiqa.create_metric("lifeiqa", as_loss=True, device="cpu",
                                      pretrained_model_path=str(checkpoint))
    x = images.clone().requires_grad_(True)
    loss_metric(x).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_score_through_pyiqa_and_lifeiqa(checkpoint):
    import pyiqa

    images = torch.rand(1, 3, 256, 300)
    metric = pyiqa.create_metric("lifeiqa_effnet_lite0", pretrained_model_path=str(checkpoint),
                                 device="cpu")  # the checkpoint's config decides: a tiny Swin
    model = lifeiqa.load_checkpoint(checkpoint)
    with torch.no_grad():
        direct = lifeiqa.score_images(model, images)
        raw = lifeiqa.predict_image(model, images)
    torch.testing.assert_close(metric(images).view(-1), direct)
    torch.testing.assert_close(direct, (raw - 1.0) / 4.0)  # native 1-5 mapped to [0, 1]


def test_checkpoint_from_the_environment(checkpoint):
    code = (
        "import pyiqa, torch\n"
        "m = pyiqa.create_metric('lifeiqa', device='cpu')\n"
        "print(type(m.net.model.backbone.body).__name__, m.net.model.label_scale['dataset'])\n"
    )
    result = run_python(code, LIFEIQA_CHECKPOINT=str(checkpoint))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FeatureListNet", "kadid10k"]


def test_no_weights_gives_guidance():
    import pyiqa

    with pytest.raises(CheckpointError, match="pretrained=False") as info:
        pyiqa.create_metric("lifeiqa", device="cpu")
    assert "lifeiqa-bench" in str(info.value)


def test_url_weights_download_once_into_the_cache(checkpoint, tmp_path, monkeypatch):
    from lifeiqa.pyiqa_metric import resolve_weights_path

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{checkpoint.name}"
        local = resolve_weights_path(url)
        assert local.read_bytes() == checkpoint.read_bytes()
        server.shutdown()
        assert resolve_weights_path(url) == local  # served from the cache, server gone
    finally:
        server.server_close()


def test_bad_weights_references_are_named(tmp_path):
    from lifeiqa.pyiqa_metric import resolve_weights_path

    with pytest.raises(CheckpointError, match="hf://owner/repo"):
        resolve_weights_path("hf://just-owner")
    with pytest.raises(CheckpointError, match="no such file"):
        resolve_weights_path(str(tmp_path / "absent.safetensors"))


def test_hook_config_entries_are_well_formed():
    import lifeiqa_pyiqa_hook

    for name, entry in lifeiqa_pyiqa_hook.METRICS.items():
        assert entry["metric_mode"] == "NR" and entry["lower_better"] is False, name
        assert lifeiqa.get_spec(entry["metric_opts"]["model_name"])
    json.dumps(lifeiqa_pyiqa_hook.METRICS)
