"""The official preprocessing: random draws, every preprocess option, grayscale, flips and value ranges."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data.transforms import PREPROCESS_OPTIONS, TransformParams, get_params, get_transform, item_rng


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _normalised(image: Image.Image) -> torch.Tensor:
    """Reference conversion: uint8 PIL -> (C, H, W) float in [-1, 1] (mean 0.5, std 0.5)."""
    array = np.asarray(image, dtype=np.float32) / 255
    tensor = torch.from_numpy(array)
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return (tensor - 0.5) / 0.5


def _transform(preprocess, *, load=40, crop=32, no_flip=True, params=None, grayscale=False, rng=None):
    return get_transform(
        preprocess=preprocess,
        load_size=load,
        crop_size=crop,
        no_flip=no_flip,
        params=params,
        grayscale=grayscale,
        rng=rng,
    )


# --------------------------------------------------------------------------------------------------------------------
# get_params
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preprocess", "size", "span"),
    [
        ("resize_and_crop", (100, 60), (40 - 32, 40 - 32)),
        ("scale_width_and_crop", (100, 60), (40 - 32, max(0, 40 * 60 // 100 - 32))),
        ("scale_width_and_crop", (50, 100), (40 - 32, 40 * 100 // 50 - 32)),
        ("crop", (100, 60), (100 - 32, 60 - 32)),
        ("none", (20, 10), (0, 0)),
    ],
)
def test_get_params_draw_order_and_ranges(preprocess, size, span):
    for seed in range(20):
        params = get_params(preprocess=preprocess, load_size=40, crop_size=32, size=size, rng=random.Random(seed))
        reference = random.Random(seed)
        x = reference.randint(0, span[0])
        y = reference.randint(0, span[1])
        flip = reference.random() > 0.5
        assert params == TransformParams(crop_pos=(x, y), flip=flip)


# --------------------------------------------------------------------------------------------------------------------
# Every preprocess option
# --------------------------------------------------------------------------------------------------------------------


def test_resize_and_crop_is_pil_bicubic_then_crop():
    image = _image(70, 50)
    params = TransformParams(crop_pos=(5, 3), flip=False)
    out = _transform("resize_and_crop", params=params)(image)
    resized = image.resize((40, 40), Image.BICUBIC)
    assert out.shape == (3, 32, 32)
    assert torch.equal(out, _normalised(resized)[:, 3:35, 5:37])


def test_crop_without_resize():
    image = _image(50, 45)
    out = _transform("crop", params=TransformParams(crop_pos=(7, 2), flip=False))(image)
    assert torch.equal(out, _normalised(image)[:, 2:34, 7:39])


def test_crop_skipped_when_image_not_larger():
    image = _image(32, 32)
    out = _transform("crop", params=TransformParams(crop_pos=(0, 0), flip=False))(image)
    assert torch.equal(out, _normalised(image))


@pytest.mark.parametrize(("size", "expected_hw"), [((80, 60), (32, 40)), ((80, 100), (50, 40)), ((40, 36), (36, 40))])
def test_scale_width(size, expected_hw):
    image = _image(*size)
    out = _transform("scale_width")(image)
    assert tuple(out.shape[1:]) == expected_hw  # height = int(max(load * h / w, crop)), width = load
    if size[0] == 40 and size[1] >= 32:
        assert torch.equal(out, _normalised(image))  # already the right width: untouched
    else:
        assert torch.equal(out, _normalised(image.resize(expected_hw[::-1], Image.BICUBIC)))


def test_scale_width_and_crop():
    image = _image(80, 120)
    params = TransformParams(crop_pos=(4, 20), flip=False)
    out = _transform("scale_width_and_crop", params=params)(image)
    scaled = image.resize((40, 60), Image.BICUBIC)
    assert torch.equal(out, _normalised(scaled)[:, 20:52, 4:36])


@pytest.mark.parametrize(
    ("size", "expected_wh"), [((146, 90), (144, 88)), ((150, 101), (152, 100)), ((64, 32), (64, 32))]
)
def test_none_makes_multiples_of_four_with_bankers_rounding(size, expected_wh):
    image = _image(*size)
    out = _transform("none")(image)
    assert tuple(out.shape[1:]) == expected_wh[::-1]
    expected = image if expected_wh == size else image.resize(expected_wh, Image.BICUBIC)
    assert torch.equal(out, _normalised(expected))


@pytest.mark.parametrize("preprocess", PREPROCESS_OPTIONS)
def test_values_in_range(preprocess):
    out = _transform(preprocess, no_flip=False, rng=random.Random(0))(_image(60, 44))
    assert out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    assert out.min() < -0.9 and out.max() > 0.9  # uses the whole range on random pixels


def test_flip_mirrors():
    image = _image(50, 50)
    plain = _transform("resize_and_crop", no_flip=False, params=TransformParams((3, 4), flip=False))(image)
    flipped = _transform("resize_and_crop", no_flip=False, params=TransformParams((3, 4), flip=True))(image)
    assert torch.equal(flipped, plain.flip(-1))
    ignored = _transform("resize_and_crop", no_flip=True, params=TransformParams((3, 4), flip=True))(image)
    assert torch.equal(ignored, plain)


def test_grayscale_before_resize():
    image = _image(50, 40)
    out = _transform("resize", grayscale=True)(image)
    assert out.shape == (1, 40, 40)
    assert torch.equal(out, _normalised(image.convert("L").resize((40, 40), Image.BICUBIC)))


def test_grayscale_input_made_rgb():
    gray = _image(40, 40).convert("L")
    out = _transform("resize")(gray)
    assert out.shape == (3, 40, 40) and torch.equal(out[0], out[2])


# --------------------------------------------------------------------------------------------------------------------
# Randomness without params
# --------------------------------------------------------------------------------------------------------------------


def test_random_crop_and_flip_follow_rng_only():
    image = _image(64, 64)
    torch.manual_seed(0)
    first = _transform("crop", no_flip=False, rng=random.Random(11))(image)
    torch.manual_seed(1)  # torch's global generator must not matter
    second = _transform("crop", no_flip=False, rng=random.Random(11))(image)
    assert torch.equal(first, second)
    outputs = {_transform("crop", no_flip=False, rng=random.Random(s))(image).sum().item() for s in range(8)}
    assert len(outputs) > 1


def test_random_crop_matches_drawn_position():
    image = _image(64, 48)
    reference = random.Random(5)
    x, y = reference.randint(0, 64 - 32), reference.randint(0, 48 - 32)
    flip = reference.random() < 0.5
    out = _transform("crop", no_flip=False, rng=random.Random(5))(image)
    expected = _normalised(image)[:, y : y + 32, x : x + 32]
    assert torch.equal(out, expected.flip(-1) if flip else expected)


def test_random_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        _transform("resize_and_crop", no_flip=False)
    assert _transform("resize", no_flip=True)(_image(20, 20)).shape == (3, 40, 40)  # nothing random: no rng needed


def test_random_crop_too_large():
    with pytest.raises(ValueError, match="32x32 crop of a 20x50"):
        _transform("crop", rng=random.Random(0))(_image(20, 50))


def test_unknown_preprocess():
    with pytest.raises(ValueError, match="Unknown preprocess 'zoom'"):
        _transform("zoom")


def test_item_rng_is_pure_function():
    def draws(*key):
        return [item_rng(*key).random() for _ in range(3)]

    assert draws(1, 2, 3) == draws(1, 2, 3)
    assert len({tuple(draws(*key)) for key in [(1, 2, 3), (0, 2, 3), (1, 0, 3), (1, 2, 0)]}) == 4
