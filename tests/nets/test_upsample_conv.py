"""Nearest x2 up-sampling + convolution computed at the input resolution equals the direct computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo.nets import lomit, munit
from zoo.nets.upsample_conv import upsample2x_conv2d, upsample2x_conv2d_reference


def _grads(fn, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad_out_seed: int = 3):
    x, weight, bias = (t.detach().clone().requires_grad_() for t in (x, weight, bias))
    out = fn(x, weight, bias)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed), dtype=out.dtype))
    return out, x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7])
@pytest.mark.parametrize("pad_mode", ["zeros", "reflect", "replicate"])
@pytest.mark.parametrize("size", [(5, 7), (9, 6)])
def test_matches_direct_computation_values_and_gradients(kernel_size: int, pad_mode: str, size: tuple) -> None:
    g = torch.Generator().manual_seed(kernel_size)
    x = torch.randn(2, 3, *size, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, kernel_size, kernel_size, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64)
    padding = (kernel_size - 1) // 2
    fast = _grads(lambda *a: upsample2x_conv2d(*a, padding, pad_mode), x, weight, bias)
    direct = _grads(lambda *a: upsample2x_conv2d_reference(*a, padding, pad_mode), x, weight, bias)
    assert fast[0].shape == (2, 4, 2 * size[0], 2 * size[1])
    for a, b in zip(fast, direct, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_small_inputs_and_other_paddings_take_the_direct_path() -> None:
    x = torch.randn(1, 2, 2, 3, dtype=torch.float64)
    weight = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    for padding in (2, 1):  # too small for the reflected borders; padding other than (K - 1) / 2
        torch.testing.assert_close(upsample2x_conv2d(x, weight, None, padding, "reflect"),
                                   upsample2x_conv2d_reference(x, weight, None, padding, "reflect"))


def test_keeps_channels_last() -> None:
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    out = upsample2x_conv2d(x, torch.randn(4, 8, 5, 5), torch.randn(4), 2, "reflect")
    assert out.is_contiguous(memory_format=torch.channels_last)


def _plain_sequential(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


@pytest.mark.parametrize("pad_type", ["reflect", "zero", "replicate"])
def test_munit_decoder_equals_its_layer_sequence(pad_type: str) -> None:
    torch.manual_seed(0)
    decoder = munit.Decoder(2, 1, 16, 3, res_norm="in", pad_type=pad_type).double()
    assert sum(isinstance(m, nn.Upsample) for m in decoder.model) == 2
    x = torch.randn(2, 16, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(decoder(x), _plain_sequential(decoder.model, x), rtol=1e-12, atol=1e-12)


def test_lomit_decoder_equals_its_layer_sequence() -> None:
    torch.manual_seed(0)
    decoder = lomit.Decoder(16, 8, 32, repeat_num=4).double()
    content = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    mask = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    s_fg, s_bg = torch.randn(2, 8, 1, 1, dtype=torch.float64), torch.randn(2, 8, 1, 1, dtype=torch.float64)
    h = lomit.highway_adain(content, mask, decoder.f_mlp(s_fg), decoder.b_mlp(s_bg), sigma_mode=decoder.sigma_mode)
    torch.testing.assert_close(decoder(content, mask, s_fg, s_bg), _plain_sequential(decoder.main, h),
                               rtol=1e-12, atol=1e-12)
