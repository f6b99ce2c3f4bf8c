"""Nearest x2 up-sampling followed by a padded stride-1 convolution, computed at the input resolution.

MUNIT's and LOMIT's decoders up-sample by repeating every pixel 2x2 and then run a 5x5 convolution. Each output pixel
of a given phase (row parity, column parity) sees the same input pixels with the same summed weights, so the pair is
four 3x3 convolutions of the small input (one per phase, as 4x output channels) interleaved by ``pixel_shuffle``:
36 instead of 100 multiply-adds per input pixel and channel pair. Zero and replicate padding of the up-sampled image
are zero and replicate padding of the input; reflection padding is not (the reflected border rows of the up-sampled
image are not whole input rows), so the ``padding`` outermost output rows and columns are recomputed directly from
up-sampled border strips.

The result equals ``conv2d(pad(interpolate(x, scale_factor=2, mode="nearest")), weight, bias)`` up to float rounding
(the phase weights are sums of the original weights).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.padding import reflection_pad2d, replication_pad2d

PadMode = Literal["zeros", "reflect", "replicate"]

__all__ = ["PadMode", "phase_weights", "upsample2x_conv2d", "upsample2x_conv2d_reference", "upsampled_sequential"]


def upsample2x_conv2d_reference(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int,
                                pad_mode: PadMode = "zeros") -> Tensor:
    """The direct computation: nearest x2 up-sampling, padding, convolution. (B, C, H, W) -> (B, O, 2H, 2W)."""
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    if padding:
        up = F.pad(up, [padding] * 4, mode="constant" if pad_mode == "zeros" else pad_mode)
    return F.conv2d(up, weight, bias)


def _phase_taps(kernel_size: int, padding: int) -> tuple[int, Tensor]:
    """(lowest input offset, (2, T, K) 0/1 matrices): tap k of output phase r reads input offset floor((r+k-p)/2)."""
    offsets = [[(r + k - padding) // 2 for k in range(kernel_size)] for r in (0, 1)]
    low = min(min(o) for o in offsets)
    span = max(max(o) for o in offsets) - low + 1
    taps = torch.zeros(2, span, kernel_size)
    for r in (0, 1):
        for k, offset in enumerate(offsets[r]):
            taps[r, offset - low, k] = 1.0
    return low, taps


def phase_weights(weight: Tensor, padding: int) -> tuple[int, Tensor]:
    """The four per-phase kernels of ``weight`` (O, C, K, K) as one (4 O, C, T, T) kernel in ``pixel_shuffle`` order.

    Returns the lowest input offset a phase kernel reads (its top-left tap) and the kernel.
    """
    out_channels, in_channels, k, _ = weight.shape
    low, taps = _phase_taps(k, padding)
    taps = taps.to(weight.device, weight.dtype)
    # (ry, rx, O, C, T, T) -> (O, ry, rx, C, T, T): channel o * 4 + ry * 2 + rx becomes output pixel (2i+ry, 2j+rx)
    phases = torch.einsum("yak,xbl,ockl->oyxcab", taps, taps, weight)
    span = taps.shape[1]
    return low, phases.reshape(out_channels * 4, in_channels, span, span)


def upsample2x_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int,
                      pad_mode: PadMode = "zeros") -> Tensor:
    """``conv2d(pad(nearest_x2(x)), weight, bias)`` for an odd square kernel with ``padding = (K - 1) // 2``.

    Args:
        x: (B, C, H, W).
        weight: (O, C, K, K).
        bias: (O,) or None.
        padding: padding of the up-sampled image, ``(K - 1) // 2`` (other values take the direct path).
        pad_mode: ``zeros``, ``reflect`` or ``replicate``.

    Returns:
        (B, O, 2H, 2W), in the memory format of ``x``.
    """
    k = weight.shape[-1]
    if weight.shape[-2] != k or k % 2 == 0 or padding != (k - 1) // 2 or min(x.shape[-2:]) <= padding + 1:
        return upsample2x_conv2d_reference(x, weight, bias, padding, pad_mode)
    low, kernel = phase_weights(weight, padding)
    span = kernel.shape[-1]
    before, after = -low, span - 1 + low  # input padding so that every phase reads offsets low .. low + span - 1
    pads = [before, after, before, after]
    padded = F.pad(x, pads) if pad_mode == "zeros" else replication_pad2d(x, pads)
    phases = F.conv2d(padded, kernel, None if bias is None else bias.repeat_interleave(4))
    out = F.pixel_shuffle(phases, 2)
    if pad_mode != "reflect" or padding == 0:
        return out
    # reflection: recompute the outermost `padding` rows and columns directly, each from the k - 1 up-sampled rows
    # (columns) it reads, padded by reflection on three sides
    p, rows = padding, padding + 1  # input rows whose up-sampled copies those outputs read (with the reflection)
    up = partial(F.interpolate, scale_factor=2, mode="nearest")
    top = F.conv2d(reflection_pad2d(up(x[..., :rows, :])[..., : k - 1, :], [p, p, p, 0]), weight, bias)
    bottom = F.conv2d(reflection_pad2d(up(x[..., -rows:, :])[..., 1 - k:, :], [p, p, 0, p]), weight, bias)
    left = F.conv2d(reflection_pad2d(up(x[..., :, :rows])[..., : k - 1], [p, 0, p, p]), weight, bias)
    right = F.conv2d(reflection_pad2d(up(x[..., :, -rows:])[..., 1 - k:], [0, p, p, p]), weight, bias)
    middle = torch.cat([left[..., p:-p, :], out[..., p:-p, p:-p], right[..., p:-p, :]], dim=-1)
    return torch.cat([top, middle, bottom], dim=-2)


def upsampled_sequential(layers: nn.Sequential, x: Tensor) -> Tensor:
    """Run ``layers`` on ``x``, folding each nearest x2 ``nn.Upsample`` into the block after it.

    The block must offer ``forward_upsampled(x)`` (= ``forward(nearest_x2(x))``); the ``nn.Upsample`` modules stay in
    the container, so layer indices and state-dict keys are those of the plain sequence.
    """
    modules = iter(layers)
    for module in modules:
        if (isinstance(module, nn.Upsample) and module.scale_factor in (2, 2.0, (2.0, 2.0))
                and module.mode == "nearest" and module.size is None):
            x = next(modules).forward_upsampled(x)
        else:
            x = module(x)
    return x
