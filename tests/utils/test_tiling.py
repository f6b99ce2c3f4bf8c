"""pad_to_multiple / crop_padding / translate_any_size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.tiny import TinyGAN
from zoo.utils import Padding, crop_padding, pad_to_multiple, translate_any_size


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (1, 5), (30, 17), (3, 2)])
@pytest.mark.parametrize("multiple", [1, 4, 16])
def test_pad_crop_round_trip(size, multiple):
    x = torch.rand(2, 3, *size)
    padded, padding = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - size[0] < multiple and padded.shape[-1] - size[1] < multiple
    assert torch.equal(crop_padding(padded, padding), x)


def test_padding_is_a_centred_reflection():
    x = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 3, 6).contiguous()
    padded, padding = pad_to_multiple(x, 4)
    assert padding == Padding(top=0, bottom=1, left=1, right=1)
    torch.testing.assert_close(padded, F.pad(x, (1, 1, 0, 1), mode="reflect"))


def test_padding_wider_than_the_image_reflects_repeatedly():
    x = torch.rand(1, 3, 5, 3)
    padded, padding = pad_to_multiple(x, 16)
    assert padded.shape[-2:] == (16, 16)
    # row `padding.top - 1` mirrors row 1 of the image
    torch.testing.assert_close(padded[..., padding.top - 1, padding.left : padding.left + 3], x[..., 1, :])


def test_crop_scales_with_the_model_output():
    x = torch.rand(1, 3, 6, 7)
    padded, padding = pad_to_multiple(x, 4)
    upscaled = F.interpolate(padded, scale_factor=4, mode="nearest")
    cropped = crop_padding(upscaled, padding, scale=4)
    torch.testing.assert_close(cropped, F.interpolate(x, scale_factor=4, mode="nearest"))


def test_translate_any_size_returns_the_input_size():
    model = TinyGAN()
    x = torch.rand(2, 3, 9, 13)
    with pytest.raises(ValueError, match="multiple"):
        model.translate(x)
    out = translate_any_size(model, x, direction="b2a")
    assert out.shape == x.shape
    assert 0 <= out.min() and out.max() <= 1


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="B, C, H, W"):
        pad_to_multiple(torch.rand(3, 8, 8), 4)
    with pytest.raises(ValueError, match="multiple"):
        pad_to_multiple(torch.rand(1, 3, 8, 8), 0)
