"""Convolutions with few output channels (a generator's last 7x7 conv to RGB) computed as one matrix product.

oneDNN's CPU convolutions are blocked over output channels, so a conv to 3 channels keeps most of the vector units
idle: the 7x7, 64 -> 3 output conv of a ResNet generator at 256x256 runs at about a tenth of the speed of the
generator's other convolutions, and its backward pass is as slow. The same arithmetic can be laid out as one
well-shaped matrix product instead: every kernel tap's 1x1 projection of the input,
``y[tap, o, p] = sum_c W[o, c, tap] x[c, p]``, for all ``k*k*O`` (tap, output) pairs at once, followed by the sum of
the ``k*k`` shifted planes ``out[o, p] = sum_tap y[tap, o, p + tap]``, which costs only ``k*k*O`` additions per pixel
(3-4x faster for a 7x7, 64 -> 3 conv at 256x256).

:func:`conv2d_few_outputs` is exact up to float rounding (the sums run in another order). It is used without
autograd only (inference, and translations made inside a training step without a graph): with gradients the
convolution stays ``F.conv2d``, whose rounding matches the reference implementations', because gradients that are
zero in theory (conv biases followed by instance norm) keep only rounding noise. It also falls back to
``F.conv2d`` off CPU, under autocast, with strides, dilation or groups, and when the per-tap planes would take more
than ``max_buffer_bytes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv2d_few_outputs", "Conv2dFewOutputs", "FEW_OUTPUT_CHANNELS", "conv2d_class"]

#: Output channels up to which :func:`conv2d_class` picks :class:`Conv2dFewOutputs`.
FEW_OUTPUT_CHANNELS = 4

#: Largest per-tap buffer (batch x k*k*O x padded H x padded W) built before falling back to ``F.conv2d``.
MAX_BUFFER_BYTES = 512 * 2**20


def _tap_sum_conv(x: Tensor, weight: Tensor) -> Tensor:
    """Stride-1, unpadded conv of ``x`` (N, C, Hp, Wp) with ``weight`` (O, C, k_h, k_w) as a tap matmul and a sum
    of shifted planes -> (N, O, Hp - k_h + 1, Wp - k_w + 1)."""
    n, c, hp, wp = x.shape
    o, _, kh, kw = weight.shape
    h, w = hp - kh + 1, wp - kw + 1
    taps = weight.permute(2, 3, 0, 1).reshape(kh * kw * o, c)  # rows ordered (i, j, o)
    planes = torch.matmul(taps, x.contiguous().view(n, c, hp * wp)).view(n, kh, kw, o, hp, wp)
    out = planes[:, 0, 0, :, :h, :w].clone()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                out += planes[:, i, j, :, i:i + h, j:j + w]
    return out


def conv2d_few_outputs(x: Tensor, weight: Tensor, bias: Tensor | None = None, padding: int | tuple[int, int] = 0,
                       *, max_buffer_bytes: int = MAX_BUFFER_BYTES) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, zero padding), computed as a tap matmul on CPU.

    Args:
        x: (N, C, H, W).
        weight: (O, C, k_h, k_w), O small (image channels).
        bias: (O,) or None.
        padding: zero padding per side (an int or (pad_h, pad_w)).
        max_buffer_bytes: fall back to ``F.conv2d`` above this size of the (N, k_h*k_w*O, H + 2 pad_h,
            W + 2 pad_w) buffer.

    Returns:
        (N, O, H + 2 pad_h - k_h + 1, W + 2 pad_w - k_w + 1).
    """
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    n, _, height, width = x.shape
    o, _, kh, kw = weight.shape
    buffer_bytes = n * kh * kw * o * (height + 2 * pad_h) * (width + 2 * pad_w) * x.element_size()
    if (torch.is_grad_enabled() or x.device.type != "cpu" or torch.is_autocast_enabled("cpu")
            or x.dtype != weight.dtype or buffer_bytes > max_buffer_bytes or kh * kw == 1):
        return F.conv2d(x, weight, bias, padding=(pad_h, pad_w))
    if pad_h or pad_w:
        x = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
    out = _tap_sum_conv(x, weight)
    return out if bias is None else out.add_(bias.view(1, -1, 1, 1))


class Conv2dFewOutputs(nn.Conv2d):
    """An ``nn.Conv2d`` (same parameters and state-dict keys) for convolutions to a few channels, e.g. RGB outputs.

    Stride-1, undilated, ungrouped, zero-padded convolutions use :func:`conv2d_few_outputs`; any other
    configuration runs ``nn.Conv2d``'s own forward.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (self.stride != (1, 1) or self.dilation != (1, 1) or self.groups != 1 or self.padding_mode != "zeros"
                or isinstance(self.padding, str)):
            return super().forward(x)
        return conv2d_few_outputs(x, self.weight, self.bias, self.padding)


def conv2d_class(out_channels: int) -> type[nn.Conv2d]:
    """:class:`Conv2dFewOutputs` for at most :data:`FEW_OUTPUT_CHANNELS` outputs, else ``nn.Conv2d``."""
    return Conv2dFewOutputs if out_channels <= FEW_OUTPUT_CHANNELS else nn.Conv2d
