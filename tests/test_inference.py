import pytest
import torch

import lifeiqa
from lifeiqa.inference import (
    crop_offsets,
    extract_crops,
    grid_shape,
    upscale_to_fit,
    upscaled_size,
)


def test_grid_follows_the_aspect_ratio():
    assert grid_shape(384, 512, 6) == (2, 3)
    assert grid_shape(512, 384, 6) == (3, 2)
    assert grid_shape(500, 500, 9) == (3, 3)
    with pytest.raises(ValueError, match="at least 1"):
        grid_shape(10, 10, 0)


def test_crop_offsets_span_the_image_and_are_deterministic():
    offsets = crop_offsets(384, 512, 224, 6)
    assert offsets == crop_offsets(384, 512, 224, 6)
    assert offsets[0] == (0, 0) and offsets[-1] == (384 - 224, 512 - 224)
    assert crop_offsets(300, 300, 224, 1) == [(38, 38)]


def test_small_images_are_resized_up_keeping_aspect():
    small = torch.rand(1, 3, 100, 150)
    up = upscale_to_fit(small, 224)
    assert up.shape[-2:] == (224, 336)
    assert up.min() >= 0 and up.max() <= 1
    big = torch.rand(1, 3, 300, 400)
    assert upscale_to_fit(big, 224) is big


@pytest.mark.parametrize("size", [(37, 61), (100, 223), (223, 223), (150, 151), (224, 100),
                                  (199, 1000), (300, 400)])
def test_the_planned_size_is_the_size_resizing_gives(size):
    # the batch cutter plans crops from upscaled_size without resizing anything
    assert upscaled_size(*size, 224) == upscale_to_fit(torch.rand(1, 3, *size), 224).shape[-2:]


def test_resizing_up_cuts_overshoot_only_beyond_the_inputs_own_range():
    wide = torch.randn(1, 3, 60, 80, requires_grad=True)  # a loss input, not an image
    up = upscale_to_fit(wide, 224)
    assert wide.min() <= up.min() and up.max() <= wide.max()
    assert (up < 0).any() and (up > 1).any()  # not clamped to [0, 1]
    up.sum().backward()
    assert (wide.grad != 0).all()


def test_crops_are_image_major_and_exact():
    images = torch.rand(2, 3, 250, 300)
    crops = extract_crops(images, 224, 4)
    assert crops.shape == (8, 3, 224, 224)
    top, left = crop_offsets(250, 300, 224, 4)[3]
    assert torch.equal(crops[7], images[1, :, top:top + 224, left:left + 224])


def test_predict_image_averages_crop_scores():
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    images = torch.rand(2, 3, 240, 320)
    with torch.no_grad():
        scores = lifeiqa.predict_image(model, images, num_crops=4)
        per_crop = model(extract_crops(images, 224, 4)).score.view(2, 4)
    torch.testing.assert_close(scores, per_crop.mean(1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lifeiqa.predict_image(model, images * 255)


def test_predict_image_is_differentiable():
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    images = torch.rand(1, 3, 230, 230, requires_grad=True)
    lifeiqa.predict_image(model, images, num_crops=2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
