"""Pristine content with no download: scikit-image's bundled photographs and textures, and
procedural dead-leaves images (whose statistics resemble natural images)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Colour photographs whose files ship inside scikit-image (no fetch). One reference per photo:
# crops of one photo would be one content group spread over several references.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field",
          "immunohistochemistry", "retina")
TEXTURES = ("brick", "grass", "gravel")


@dataclass(frozen=True)
class Pristine:
    """A reference image (H x W x 3 uint8) and where it came from."""

    name: str
    image: np.ndarray


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def fit_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (Lanczos, aspect kept) to cover height x width, then centre-crop to it."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


def dead_leaves(height: int, width: int, rng: np.random.Generator,
                r_min: float = 2.0, r_max: float = 120.0, discs: int = 4000) -> np.ndarray:
    """A colour dead-leaves image: opaque discs with power-law radii (density ~ r^-3) dropped
    in sequence, so later discs occlude earlier ones; a gentle blur removes aliasing."""
    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = rng.uniform(0, 255, size=3)
    # inverse-CDF sampling of p(r) ~ r^-3 on [r_min, r_max]
    u = rng.uniform(size=discs)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
    centres_y = rng.uniform(-r_max / 2, height + r_max / 2, size=discs)
    centres_x = rng.uniform(-r_max / 2, width + r_max / 2, size=discs)
    base = rng.uniform(30, 225, size=(discs, 3))
    shade = rng.normal(0, 25, size=(discs, 3))  # a per-disc colour cast keeps palettes varied
    colours = np.clip(base + shade, 0, 255)
    for r, cy, cx, colour in zip(radii, centres_y, centres_x, colours, strict=True):
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        canvas[y0:y1, x0:x1][inside] = colour
    image = Image.fromarray(canvas.round().astype(np.uint8))
    from PIL import ImageFilter

    return np.asarray(image.filter(ImageFilter.GaussianBlur(0.7)))


def tinted_texture(name: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A grey scikit-image texture, resized and given a random colour tint."""
    import skimage.data

    grey = fit_crop(getattr(skimage.data, name)(), height, width).astype(np.float32)
    tint = rng.uniform(0.6, 1.0, size=3)
    return np.clip(grey * tint + rng.uniform(0, 40, size=3), 0, 255).astype(np.uint8)


def pristine_images(count: int, height: int, width: int, seed: int) -> Iterator[Pristine]:
    """``count`` distinct references: photos first, then textures, then dead leaves."""
    rng = np.random.default_rng(seed)
    produced = 0
    for name in PHOTOS:
        if produced == count:
            return
        yield Pristine(f"photo:{name}", fit_crop(_load_photo(name), height, width))
        produced += 1
    if count - produced > 4:  # textures only once the set is large enough to afford them
        for name in TEXTURES:
            if produced == count:
                return
            yield Pristine(f"texture:{name}", tinted_texture(name, height, width, rng))
            produced += 1
    index = 0
    while produced < count:
        yield Pristine(f"dead_leaves:{seed}:{index}", dead_leaves(height, width, rng))
        produced += 1
        index += 1
