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


class _TinyUpscaler(torch.nn.Module):
    """Two 3x3 convolutions and a x2 pixel shuffle: receptive-field radius 2 input pixels."""

    size_multiple = 1
    scale = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.PixelShuffle(2))
        self.largest_input: tuple[int, int] = (0, 0)

    @torch.inference_mode()
    def translate(self, images, *, direction="a2b", seed=None):
        h, w = images.shape[-2:]
        self.largest_input = (max(self.largest_input[0], h), max(self.largest_input[1], w))
        return self.body(images).clamp(0, 1)


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (20, 9)])
def test_tiled_upscaling_is_seamless_and_bounded(size):
    from zoo.utils import translate_tiled

    model = _TinyUpscaler()
    x = torch.rand(2, 3, *size)
    whole = model.translate(x)
    model.largest_input = (0, 0)
    tiled = translate_tiled(model, x, tile=16, overlap=4)
    assert tiled.shape == (2, 3, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)
    assert max(model.largest_input) <= 16 + 2 * 4


def test_tiling_without_enough_context_shows_the_seams_it_exists_to_avoid():
    from zoo.utils import translate_tiled

    model = _TinyUpscaler()
    x = torch.rand(1, 3, 32, 32)
    assert not torch.allclose(translate_tiled(model, x, tile=8, overlap=0), model.translate(x), atol=1e-4)


def test_tiling_rejects_bad_arguments():
    from zoo.utils import translate_tiled

    with pytest.raises(ValueError, match="tile must be"):
        translate_tiled(_TinyUpscaler(), torch.rand(1, 3, 8, 8), tile=0)
