"""Pristine content with no download: photographs that installed packages ship (scikit-image's
bundled photos and textures, matplotlib's sample photo, the photos inside the pyiqa wheel) and
procedural dead-leaves images (whose statistics resemble natural images: occlusion, a power-law
size distribution, a 1/f^a power spectrum; :func:`spectral_exponent` measures it).

Content comes in *content groups*: one source (a photo, a texture, a procedural image) and one
or more references cut from it. Several crops of one large photo stay one group, so splits
never put two views of the same scene on both sides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageFilter, ImageOps

log = logging.getLogger(__name__)

# Colour photographs whose files ship inside scikit-image (no fetch).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field",
          "immunohistochemistry", "retina")
TEXTURES = ("brick", "grass", "gravel")
# Grey scikit-image photographs, given a colour tone (colour distortions need colour).
TONED_PHOTOS = ("camera", "coins")
# Photographs inside other installed distributions: (distribution, path in its file list). The
# pyiqa wheel ships five Kodak-style 512x384 references (ResultsCalibra/) and four large photos
# (tests/); matplotlib ships one sample photo.
PACKAGE_PHOTOS = (
    ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    ("pyiqa", "ResultsCalibra/ref_dir/I03.bmp"),
    ("pyiqa", "ResultsCalibra/ref_dir/I04.bmp"),
    ("pyiqa", "ResultsCalibra/ref_dir/I06.bmp"),
    ("pyiqa", "ResultsCalibra/ref_dir/I08.bmp"),
    ("pyiqa", "ResultsCalibra/ref_dir/I19.bmp"),
    ("pyiqa", "tests/test_efficiency_img_dir/SPAQ_10241.jpg"),
    ("pyiqa", "tests/test_efficiency_img_dir/frame_4wrwr48cdk6rbcjl.jpg"),
    ("pyiqa", "tests/test_efficiency_img_dir/frame_7gzdcz9sif0ekg31.jpg"),
    ("pyiqa", "tests/test_efficiency_img_dir/frame_9ogwhvvy7gfj6jzh.jpg"),
)
# "skimage": scikit-image's photos, its textures once the set can afford them, plain dead
# leaves (the tiny, gate and default sizes). "installed": every photo above, several crops of
# the large ones, toned grey photos, textures, then textured dead leaves (the demo's set).
CATALOGUES = ("skimage", "installed")


@dataclass(frozen=True)
class Pristine:
    """A reference image (H x W x 3 uint8), where it came from and its content group."""

    name: str
    image: np.ndarray
    group: str = ""  # the source it was cut from; "" means the reference is its own group

    @property
    def content_group(self) -> str:
        return self.group or self.name


@dataclass(frozen=True)
class ContentGroup:
    """One source and the references cut from it (a crop of the whole, then zoomed tiles)."""

    name: str
    references: tuple[Pristine, ...]


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        # scikit-image leaves this loader unannotated; it returns (left, right, disparity) arrays
        stereo = cast(Callable[[], tuple[np.ndarray, ...]], skimage.data.stereo_motorcycle)
        return stereo()[0]
    photo: np.ndarray = getattr(skimage.data, name)()
    return photo


def _package_file(distribution: str, relative: str) -> Path | None:
    """An installed distribution's file, found through its file list (no network, no guess
    about site-packages); None if the distribution or the file is absent."""
    import importlib.metadata

    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry) == relative:
            path = Path(str(entry.locate()))
            return path if path.is_file() else None
    return None


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def fit_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (Lanczos, aspect kept) to cover height x width, then centre-crop to it."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


# Zoomed tiles of a 2 x 2 grid, in the order they are used: opposite corners first.
_TILES = ((1, 1), (0, 0), (0, 1), (1, 0))


def photo_crops(image: np.ndarray, height: int, width: int, count: int) -> list[np.ndarray]:
    """Up to ``count`` references from one photo: the whole photo fitted to height x width,
    then tiles of a 2 x 2 grid over it (each a zoomed view), only where the photo has the
    pixels for them (it covers 2*height x 2*width without upscaling)."""
    crops = [fit_crop(image, height, width)]
    if count > 1 and image.shape[0] >= 2 * height and image.shape[1] >= 2 * width:
        grid = fit_crop(image, 2 * height, 2 * width)
        for row, col in _TILES[:count - 1]:
            crops.append(np.ascontiguousarray(
                grid[row * height:(row + 1) * height, col * width:(col + 1) * width]))
    return crops


def _fractal_noise(height: int, width: int, exponent: float, rng: np.random.Generator
                   ) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise whose power spectrum falls as 1/f^exponent."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal((height, width))) * radius ** (-exponent / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return cast(np.ndarray, field / field.std())


def dead_leaves(height: int, width: int, rng: np.random.Generator,
                r_min: float = 2.0, r_max: float = 120.0, discs: int = 4000,
                texture: float = 0.0, palette: int = 0) -> np.ndarray:
    """A colour dead-leaves image: opaque discs with power-law radii (density ~ r^-3) dropped
    in sequence, so later discs occlude earlier ones; a gentle blur removes aliasing.

    ``texture`` > 0 makes each disc a surface rather than a flat colour: a shading gradient
    across it and a 1/f grain of that relative strength (natural surfaces are rarely flat).
    ``palette`` > 0 draws the discs' colours around that many mostly unsaturated hues, as a
    scene's objects share a few materials and one illuminant; 0 draws each colour freely."""
    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = rng.uniform(0, 255, size=3)
    # inverse-CDF sampling of p(r) ~ r^-3 on [r_min, r_max]
    u = rng.uniform(size=discs)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
    centres_y = rng.uniform(-r_max / 2, height + r_max / 2, size=discs)
    centres_x = rng.uniform(-r_max / 2, width + r_max / 2, size=discs)
    base = rng.uniform(30, 225, size=(discs, 3)) if not palette else \
        _palette_colours(palette, discs, rng)
    shade = rng.normal(0, 25, size=(discs, 3))  # a per-disc colour cast keeps palettes varied
    colours = np.clip(base + shade, 0, 255)
    if palette:
        canvas[:] = colours[0]
    owner = np.full((height, width), -1, dtype=np.int32) if texture else None
    for index, (r, cy, cx, colour) in enumerate(zip(radii, centres_y, centres_x, colours,
                                                    strict=True)):
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        canvas[y0:y1, x0:x1][inside] = colour
        if owner is not None:
            owner[y0:y1, x0:x1][inside] = index
    if owner is not None:
        canvas = _surface(canvas, owner, radii, centres_y, centres_x, texture, rng)
    image = Image.fromarray(np.clip(canvas, 0, 255).round().astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(0.7)))


def _palette_colours(hues: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` RGB colours (0-255) around ``hues`` random hues of low saturation (Beta(1.5,
    4)), each colour's brightness drawn afresh."""
    from skimage.color import hsv2rgb

    hsv = np.stack([rng.uniform(0, 1, hues), rng.beta(1.5, 4, hues), np.ones(hues)], axis=-1)
    choice = rng.integers(0, hues, size=count)
    colours = hsv[choice]
    colours[:, 2] = rng.uniform(0.15, 0.95, size=count)
    return cast(np.ndarray, hsv2rgb(colours[None])[0] * 255)


def _surface(canvas: np.ndarray, owner: np.ndarray, radii: np.ndarray, centres_y: np.ndarray,
             centres_x: np.ndarray, texture: float, rng: np.random.Generator) -> np.ndarray:
    """Shade each disc with a linear gradient (light from a random side) and modulate it with a
    1/f grain of random strength; pixels no disc covers keep the background."""
    height, width = owner.shape
    count = len(radii)
    tilt = rng.normal(0, 0.25, size=(count, 2))  # relative brightness change per radius
    grain = rng.uniform(0, texture, size=count)
    noise = _fractal_noise(height, width, 2.0, rng)
    covered = owner >= 0
    index = owner[covered]
    yy, xx = np.nonzero(covered)
    gain = 1 + (tilt[index, 0] * (yy - centres_y[index]) + tilt[index, 1] * (xx - centres_x[index])
                ) / radii[index] + grain[index] * noise[covered]
    out: np.ndarray = canvas.copy()
    out[covered] *= np.clip(gain, 0.2, 2.0)[:, None].astype(np.float32)
    return out


def spectral_exponent(image: np.ndarray, low: float = 1 / 64, high: float = 1 / 4) -> float:
    """The exponent a of a 1/f^a fit to the radially averaged power spectrum of the image's
    luminance (Hann-windowed), between ``low`` and ``high`` cycles per pixel. Natural images
    give about 2 (1.6-2.6; van der Schaaf and van Hateren 1996)."""
    grey = np.asarray(image, dtype=np.float64)
    if grey.ndim == 3:
        grey = grey[..., :3] @ np.array([0.299, 0.587, 0.114])
    height, width = grey.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2((grey - grey.mean()) * window)) ** 2
    radius = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    edges = np.geomspace(low, high, 13)
    which = np.digitize(radius.ravel(), edges)
    flat = power.ravel()
    averages = np.array([flat[which == i].mean() for i in range(1, len(edges))])
    centres = np.sqrt(edges[1:] * edges[:-1])
    slope = np.polyfit(np.log(centres), np.log(averages), 1)[0]
    return float(-slope)


def tinted_texture(name: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A grey scikit-image texture or photo, resized and given a random colour tint."""
    import skimage.data

    grey = fit_crop(getattr(skimage.data, name)(), height, width).astype(np.float32)
    tint = rng.uniform(0.6, 1.0, size=3)
    return np.clip(grey * tint + rng.uniform(0, 40, size=3), 0, 255).astype(np.uint8)


def _single(name: str, image: np.ndarray) -> ContentGroup:
    return ContentGroup(name, (Pristine(name, image),))


def _photo_group(name: str, load: Callable[[], np.ndarray], height: int, width: int,
                 crops: int) -> ContentGroup:
    images = photo_crops(load(), height, width, crops)
    if len(images) == 1:
        return _single(name, images[0])
    return ContentGroup(name, tuple(Pristine(name if k == 0 else f"{name}#tile{k}", image, name)
                                    for k, image in enumerate(images)))


def _installed_photos() -> Iterator[tuple[str, Callable[[], np.ndarray]]]:
    for name in PHOTOS:
        yield f"photo:{name}", cast(Callable[[], np.ndarray], lambda name=name: _load_photo(name))
    for distribution, relative in PACKAGE_PHOTOS:
        path = _package_file(distribution, relative)
        if path is None:  # another version of the package: the set is smaller, and says so
            log.warning("%s: not in the installed %s; that photo is left out of the synthetic "
                        "set (procedural content takes its place)", relative, distribution)
            continue
        yield (f"photo:{distribution}/{Path(relative).stem}",
               cast(Callable[[], np.ndarray], lambda path=path: _read_rgb(path)))


def _installed(height: int, width: int, seed: int, crops: int) -> Iterator[ContentGroup]:
    rng = np.random.default_rng(seed)
    for name, load in _installed_photos():
        yield _photo_group(name, load, height, width, crops)
    for name in TONED_PHOTOS:
        yield _single(f"photo:{name}", tinted_texture(name, height, width, rng))
    for name in TEXTURES:
        yield _single(f"texture:{name}", tinted_texture(name, height, width, rng))
    index = 0
    while True:
        # sizes and texture vary between images, as between natural scenes
        yield _single(f"dead_leaves:{seed}:{index}", dead_leaves(
            height, width, rng, r_max=float(rng.uniform(0.25, 0.6) * max(height, width)),
            texture=float(rng.uniform(0.05, 0.3)), palette=int(rng.integers(2, 6))))
        index += 1


def _skimage(height: int, width: int, seed: int, count: int) -> Iterator[ContentGroup]:
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        yield _single(f"photo:{name}", fit_crop(_load_photo(name), height, width))
    if count - len(PHOTOS) > 4:  # textures only once the set is large enough to afford them
        for name in TEXTURES:
            yield _single(f"texture:{name}", tinted_texture(name, height, width, rng))
    index = 0
    while True:
        yield _single(f"dead_leaves:{seed}:{index}", dead_leaves(height, width, rng))
        index += 1


def content_groups(count: int, height: int, width: int, seed: int,
                   catalogue: str = "skimage", crops: int = 1) -> Iterator[ContentGroup]:
    """``count`` distinct content groups from ``catalogue`` (see CATALOGUES), each with up to
    ``crops`` references of height x width."""
    if catalogue not in CATALOGUES:
        raise ValueError(f"catalogue {catalogue!r}: expected one of {CATALOGUES}")
    source = (_installed(height, width, seed, crops) if catalogue == "installed"
              else _skimage(height, width, seed, count))
    for _, group in zip(range(count), source, strict=False):
        yield group


def pristine_images(count: int, height: int, width: int, seed: int) -> Iterator[Pristine]:
    """``count`` distinct references, one per content group: scikit-image's photos first, then
    textures, then dead leaves."""
    for group in content_groups(count, height, width, seed):
        yield group.references[0]
