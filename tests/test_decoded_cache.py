import multiprocessing
import os

import numpy as np
import pytest
from PIL import Image

from harness.data.cache import DecodedImageCache, decode_image, parse_policy


@pytest.fixture
def landscape(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "land.png"
    Image.fromarray(rng.integers(0, 255, (600, 1000, 3), dtype=np.uint8)).save(path)
    return path


def test_policies_resize_as_named(landscape, tmp_path):
    assert decode_image(landscape).shape == (600, 1000, 3)
    assert decode_image(landscape, "fit:512x384").shape == (307, 512, 3)  # aspect kept
    assert decode_image(landscape, "squeeze:384x512").shape == (512, 384, 3)  # authors' squeeze
    portrait = tmp_path / "portrait.png"
    Image.fromarray(np.zeros((1000, 600, 3), dtype=np.uint8)).save(portrait)
    assert decode_image(portrait, "fit:512x384").shape == (512, 307, 3)
    with pytest.raises(ValueError, match="expected 'native'"):
        parse_policy("resize:512")


def test_cache_returns_the_decoded_pixels_and_reuses_entries(landscape, tmp_path):
    cache = DecodedImageCache(tmp_path / "cache")
    first = cache.get(landscape, "fit:512x384")
    assert isinstance(first, np.memmap) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, decode_image(landscape, "fit:512x384"))
    entry = cache.entry_path(landscape, "fit:512x384")
    stamp = entry.stat().st_mtime_ns
    again = DecodedImageCache(tmp_path / "cache").get(landscape, "fit:512x384")
    np.testing.assert_array_equal(again, first)
    assert entry.stat().st_mtime_ns == stamp  # not rewritten
    assert cache.entry_path(landscape, "native") != entry  # the policy is part of the key


def test_changed_file_gets_a_new_entry(landscape, tmp_path):
    cache = DecodedImageCache(tmp_path / "cache")
    before = cache.entry_path(landscape, "native")
    cache.get(landscape)
    Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8)).save(landscape)
    os.utime(landscape, ns=(1, 1))
    assert cache.entry_path(landscape, "native") != before
    assert cache.get(landscape).shape == (10, 20, 3)


def test_corrupt_entry_is_rebuilt_not_trusted(landscape, tmp_path):
    cache = DecodedImageCache(tmp_path / "cache")
    cache.get(landscape)
    entry = cache.entry_path(landscape, "native")
    entry.write_bytes(entry.read_bytes()[:200])  # an interrupted copy
    rebuilt = cache.get(landscape)
    np.testing.assert_array_equal(rebuilt, decode_image(landscape))
    assert cache.rebuilt == [str(entry)]


def _fill(args):
    root, path = args
    return DecodedImageCache(root).get(path).sum(dtype=np.int64)


def test_concurrent_writers_agree(landscape, tmp_path):
    root = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sums = pool.map(_fill, [(root, landscape)] * 4)
    assert len(set(sums)) == 1
    leftovers = [p for p in root.rglob("*.tmp")]
    assert leftovers == []


def test_an_image_too_large_for_a_native_entry_is_refused_by_name_and_fits_when_resized(tmp_path):
    from harness.data.cache import MAX_NATIVE_PIXELS, ImageReadError

    path = tmp_path / "huge.png"
    Image.new("RGB", (7000, 6000), (90, 120, 30)).save(path)
    assert MAX_NATIVE_PIXELS < 7000 * 6000
    cache = DecodedImageCache(tmp_path / "cache")
    with pytest.raises(ImageReadError, match=rf"^{path}: 7000x6000 \(42 MP\) is over the 40 MP"):
        cache.get(path)
    assert not list((tmp_path / "cache" / "entries").rglob("*.npy"))  # nothing stored
    assert cache.get(path, "fit:1024x768").shape == (768, 896, 3)
