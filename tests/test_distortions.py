"""Distortion library for the synthetic datasets: shapes, determinism, severity order, the type
tables' names and order, the authentic mixture and argument errors."""

from itertools import pairwise

import numpy as np
import pytest
from skimage import data, transform

from harness.data.synth import distortions as D

# KADID-10k readme order; TID2013 readme Table I order and wording
KADID_NAMES = [
    "gaussian blur", "lens blur", "motion blur", "color diffusion", "color shift",
    "color quantization", "color saturation 1", "color saturation 2", "jpeg2000", "jpeg",
    "white noise", "white noise in color component", "impulse noise", "multiplicative noise",
    "denoise", "brighten", "darken", "mean shift", "jitter", "non-eccentricity patch", "pixelate",
    "quantization", "color block", "high sharpen", "contrast change",
]
TID_NAMES = [
    "Additive Gaussian noise",
    "Additive noise in color components is more intensive than additive noise in the luminance "
    "component",
    "Spatially correlated noise", "Masked noise", "High frequency noise", "Impulse noise",
    "Quantization noise", "Gaussian blur", "Image denoising", "JPEG compression",
    "JPEG2000 compression", "JPEG transmission errors", "JPEG2000 transmission errors",
    "Non eccentricity pattern noise", "Local block-wise distortions of different intensity",
    "Mean shift (intensity shift)", "Contrast change", "Change of color saturation",
    "Multiplicative Gaussian noise", "Comfort noise", "Lossy compression of noisy images",
    "Image color quantization with dither", "Chromatic aberrations",
    "Sparse sampling and reconstruction",
]
ALL_TYPES = [pytest.param(t, id=f"{'kadid' if t in D.KADID_TYPES else 'tid'}{t.code:02d}")
             for t in D.KADID_TYPES + D.TID_TYPES]

# Random local damage (patches, blocks, bit errors): the damage's place and size vary with the
# draw, so pixel error grows with the level only on average.
RANDOM_LOCAL = {
    "non-eccentricity patch", "color block", "JPEG transmission errors",
    "JPEG2000 transmission errors", "Non eccentricity pattern noise",
    "Local block-wise distortions of different intensity",
}
# Saturate or alias: a colour shift stops adding error once it exceeds the edges' width, and
# nearest-neighbour pixelation at nearby non-integer factors can swap order on some content.
SATURATING = {"color shift", "pixelate"}
# Ordered by design, not by pixel error; tested for their design below.
BY_DESIGN = {"contrast change", "Mean shift (intensity shift)", "Contrast change",
             "Change of color saturation"}
STRICT = [p for p in ALL_TYPES if p.values[0].name not in RANDOM_LOCAL | SATURATING | BY_DESIGN]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A small natural photo, not square, so that a height/width mix-up shows."""
    photo = transform.resize(data.astronaut(), (96, 128), anti_aliasing=True)
    return np.round(photo * 255).astype(np.uint8)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def _increasing(values: list[float]) -> bool:
    return all(a < b for a, b in pairwise(values))


def _levels(image: np.ndarray, dtype: D.DistortionType, seed: int = 0) -> list[np.ndarray]:
    return [D.distort(image, dtype, level, np.random.default_rng(seed)) for level in range(1, 6)]


def test_type_tables_have_the_datasets_names_and_order():
    assert [t.name for t in D.KADID_TYPES] == KADID_NAMES
    assert [t.name for t in D.TID_TYPES] == TID_NAMES
    for types in (D.KADID_TYPES, D.TID_TYPES):
        assert [t.code for t in types] == list(range(1, len(types) + 1))
        assert all(len(t.params) == D.LEVELS for t in types)


@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_every_level_returns_uint8_rgb_of_the_same_size(image, dtype):
    before = image.copy()
    for out in _levels(image, dtype):
        assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(image, before)  # the input is left alone


@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_same_seed_same_image(image, dtype):
    first = D.distort(image, dtype, 4, np.random.default_rng(7))
    np.testing.assert_array_equal(first, D.distort(image, dtype, 4, np.random.default_rng(7)))


@pytest.mark.parametrize("dtype", STRICT)
def test_pixel_error_grows_strictly_with_the_level(image, dtype):
    errors = [_mse(out, image) for out in _levels(image, dtype)]
    assert _increasing(errors), errors


@pytest.mark.parametrize("dtype", [p for p in ALL_TYPES
                                   if p.values[0].name in RANDOM_LOCAL | SATURATING])
def test_pixel_error_is_larger_at_level_5_than_at_level_1(image, dtype):
    for seed in range(3):
        errors = [_mse(out, image) for out in _levels(image, dtype, seed)]
        assert errors[0] > 0 and errors[4] > errors[0], errors


def test_kadid_contrast_change_raises_then_lowers_contrast(image):
    # KADID's order: S-curves of decreasing strength (levels 1-3), then flattening (4-5)
    kadid = D.KADID_TYPES[KADID_NAMES.index("contrast change")]
    spread = [float(D._luma(D._to_float(out)).std()) for out in _levels(image, kadid)]
    pristine = float(D._luma(D._to_float(image)).std())
    assert spread[0] > spread[1] > spread[2] > pristine > spread[3] > spread[4]


def _luma_mean(u: np.ndarray) -> float:
    return float(D._luma(D._to_float(u)).mean())


def _log_luma_std(u: np.ndarray) -> float:
    return float(np.log(D._luma(D._to_float(u)).std()))


def _log_chroma(u: np.ndarray) -> float:
    return float(np.log(np.abs(D._to_ycc(D._to_float(u))[..., 1:]).mean()))


@pytest.mark.parametrize(("name", "measure"), [
    ("Mean shift (intensity shift)", _luma_mean),
    ("Contrast change", _log_luma_std),
    ("Change of color saturation", _log_chroma),
])
def test_tid_alternating_types_alternate_and_grow(image, name, measure):
    # TID2013 has both directions of these changes; ours alternate, each direction growing
    dtype = D.TID_TYPES[TID_NAMES.index(name)]
    change = [measure(out) - measure(image) for out in _levels(image, dtype)]
    assert all(a * b < 0 for a, b in pairwise(change)), change
    size = np.abs(change)
    assert size[0] < size[2] < size[4] and size[1] < size[3], change


@pytest.mark.parametrize(("name", "sign"), [("brighten", 1), ("darken", -1)])
def test_brighten_and_darken_move_the_mean_monotonically(image, name, sign):
    dtype = D.KADID_TYPES[KADID_NAMES.index(name)]
    means = [sign * _luma_mean(out) for out in _levels(image, dtype)]
    assert _increasing([sign * _luma_mean(image), *means]), means


def test_shared_ideas_differ_between_datasets(image):
    pairs = [("gaussian blur", "Gaussian blur"), ("jpeg", "JPEG compression"),
             ("jpeg2000", "JPEG2000 compression"), ("impulse noise", "Impulse noise")]
    for kadid, tid in pairs:
        for level in range(1, 6):
            a = D.distort(image, D.KADID_TYPES[KADID_NAMES.index(kadid)], level,
                          np.random.default_rng(0))
            b = D.distort(image, D.TID_TYPES[TID_NAMES.index(tid)], level, np.random.default_rng(0))
            assert not np.array_equal(a, b), (kadid, level)


def test_authentic_mixture_applies_one_to_three_capture_defects(image):
    names = {d.name for d in D._DEFECTS}
    counts = set()
    for seed in range(30):
        out, applied = D.authentic_mixture(image, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert 1 <= len(applied) <= 3
        counts.add(len(applied))
        applied_names = [n for n, _ in applied]
        assert set(applied_names) <= names and len(set(applied_names)) == len(applied_names)
        assert not {"underexposure", "overexposure"} <= set(applied_names)
        assert all(0.2 <= strength <= 1.0 for _, strength in applied)
        assert _mse(out, image) > 0
    assert counts == {1, 2, 3}
    again, applied_again = D.authentic_mixture(image, np.random.default_rng(29))
    np.testing.assert_array_equal(out, again)
    assert applied == applied_again


@pytest.mark.parametrize(("bad", "error", "message"), [
    ({"level": 0}, ValueError, r"level: expected an int in 1\.\.5; found 0"),
    ({"level": 6}, ValueError, r"found 6"),
    ({"level": 2.0}, TypeError, r"level: expected an int .* found float"),
    ({"level": True}, TypeError, r"found bool"),
    ({"image": np.zeros((64, 64, 3))}, ValueError, r"expected a numpy uint8 .* found dtype float64"),
    ({"image": np.zeros((64, 64), np.uint8)}, ValueError, r"found dtype uint8, shape \(64, 64\)"),
    ({"image": np.zeros((64, 64, 4), np.uint8)}, ValueError, r"shape \(64, 64, 4\)"),
    ({"image": np.zeros((16, 64, 3), np.uint8)}, ValueError, r"height and width >= 32"),
    ({"image": [[0, 0, 0]]}, TypeError, r"found list"),
    ({"rng": 0}, TypeError, r"rng: expected a numpy\.random\.Generator.*found int"),
])
def test_bad_arguments_raise_errors_naming_expected_and_found(image, bad, error, message):
    args = {"image": image, "level": 3, "rng": np.random.default_rng(0), **bad}
    with pytest.raises(error, match=message):
        D.distort(args["image"], D.KADID_TYPES[0], args["level"], args["rng"])
    if "level" not in bad:
        with pytest.raises(error, match=message):
            D.authentic_mixture(args["image"], args["rng"])


def test_jpeg2000_without_the_codec_is_a_clear_error(image, monkeypatch):
    monkeypatch.setattr(D.features, "check", lambda name: False)
    with pytest.raises(RuntimeError, match="JPEG 2000"):
        D.distort(image, D.KADID_TYPES[KADID_NAMES.index("jpeg2000")], 1, np.random.default_rng(0))
