"""Few-output convolutions: the tap-matmul layout equals F.conv2d, and is used only where it applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo.nets.few_output_conv as few
from zoo.nets.few_output_conv import Conv2dFewOutputs, conv2d_few_outputs


@pytest.mark.parametrize(("batch", "channels", "outputs", "kernel", "padding", "size"), [
    (1, 8, 3, 7, 0, (20, 20)), (2, 5, 1, 3, 1, (9, 13)), (3, 4, 4, (5, 3), (2, 1), (11, 7)), (1, 6, 3, 7, 3, (8, 8)),
])
def test_tap_matmul_equals_conv2d(batch, channels, outputs, kernel, padding, size) -> None:
    g = torch.Generator().manual_seed(0)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(batch, channels, *size, generator=g, dtype=torch.float64)
    weight = torch.randn(outputs, channels, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(outputs, generator=g, dtype=torch.float64)
    with torch.no_grad():
        got = conv2d_few_outputs(x, weight, bias, padding)
        expected = F.conv2d(x, weight, bias, padding=padding)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # channels-last input, no bias
        torch.testing.assert_close(conv2d_few_outputs(x.contiguous(memory_format=torch.channels_last), weight),
                                   F.conv2d(x, weight), rtol=1e-12, atol=1e-12)


def _forbid_tap_matmul(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("the tap-matmul path should not run here")

    monkeypatch.setattr(few, "_tap_sum_conv", fail)


def test_with_gradients_the_convolution_stays_conv2d(monkeypatch) -> None:
    _forbid_tap_matmul(monkeypatch)
    conv = Conv2dFewOutputs(4, 3, 7, padding=3)
    x = torch.randn(1, 4, 10, 10, requires_grad=True)
    out = conv(x)
    out.sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
    torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, padding=3))


@pytest.mark.parametrize("kwargs", [{"stride": 2}, {"dilation": 2}, {"padding_mode": "reflect", "padding": 1},
                                    {"padding": "same"}])
def test_other_configurations_run_conv2d(monkeypatch, kwargs) -> None:
    _forbid_tap_matmul(monkeypatch)
    conv = Conv2dFewOutputs(4, 3, 3, **kwargs)
    reference = nn.Conv2d(4, 3, 3, **kwargs)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(1, 4, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), reference(x))


def test_large_buffers_and_autocast_fall_back(monkeypatch) -> None:
    _forbid_tap_matmul(monkeypatch)
    x, weight = torch.randn(1, 4, 12, 12), torch.randn(3, 4, 7, 7)
    with torch.no_grad():
        expected = F.conv2d(x, weight)
        torch.testing.assert_close(conv2d_few_outputs(x, weight, max_buffer_bytes=1000), expected)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv2d_few_outputs(x, weight).dtype == torch.bfloat16


def test_state_dict_and_name_are_those_of_a_conv() -> None:
    # the official init functions pick their layers by class name: name.startswith("Conv") or "Conv" in name
    assert Conv2dFewOutputs.__name__.startswith("Conv")
    conv, reference = Conv2dFewOutputs(8, 3, 7), nn.Conv2d(8, 3, 7)
    assert conv.state_dict().keys() == reference.state_dict().keys()
    conv.load_state_dict(reference.state_dict())
    assert isinstance(conv, nn.Conv2d)


def _last_conv(net: nn.Module) -> nn.Module:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]


def test_generators_convolve_to_images_with_few_output_convs() -> None:
    from zoo.nets.cut import build_cut_generator
    from zoo.nets.lomit import Decoder as LomitDecoder
    from zoo.nets.munit import Decoder as MunitDecoder
    from zoo.nets.resnet_generator import ResnetGenerator
    from zoo.nets.vsait import VSAITGenerator

    nets = [build_cut_generator(input_nc=3, output_nc=3, ngf=4),
            ResnetGenerator(input_nc=3, output_nc=3, ngf=4, n_blocks=1), VSAITGenerator(n_channels=4, res_blocks=1),
            MunitDecoder(2, 1, 16, 3), LomitDecoder(16, 8, 8)]
    for net in nets:
        conv = _last_conv(net)
        assert type(conv) is Conv2dFewOutputs and conv.out_channels in (1, 3), type(net).__name__
