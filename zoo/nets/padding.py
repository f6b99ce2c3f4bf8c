"""Reflection padding that keeps only the input's shape for the backward pass.

PyTorch's ``reflection_pad2d`` saves its whole input tensor for autograd, although its backward only reads the
input's shape. In conv nets the padded tensor is then held twice until the backward pass: the input, by the pad,
and the padded copy, by the convolution that follows. When nothing else keeps the input (a residual stream, the
output of a LeakyReLU, whose backward keeps its own input instead), that is a whole activation kept for nothing:
about 1 GB of LOMIT's 7 GB generator graph at its CelebA setting.

:func:`reflection_pad2d` and :class:`ReflectionPad2d` compute the same values and gradients (the same ATen
kernels), first and second order, and keep only a zero-stride stand-in of the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ReflectionPad2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, padding: tuple[int, int, int, int]) -> Tensor:
        ctx.padding = list(padding)
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        return F.pad(x, padding, mode="reflect")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        # the ATen backward reads only the sizes of ``self``: a zero-stride view of one element stands in for it.
        # Under autocast the incoming gradient may have another dtype than the input had.
        stand_in = grad.new_zeros(()).expand(ctx.input_shape)
        return torch.ops.aten.reflection_pad2d_backward(grad, stand_in, ctx.padding).to(ctx.input_dtype), None


def reflection_pad2d(x: Tensor, padding: int | Sequence[int]) -> Tensor:
    """``F.pad(x, padding, mode="reflect")`` for (B, C, H, W) or (C, H, W) ``x``; ``padding`` an int or
    (left, right, top, bottom). Same result and gradients, without keeping ``x`` for the backward pass."""
    pads = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(pads) != 4:
        raise ValueError(f"padding must be an int or (left, right, top, bottom), got {padding!r}")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return F.pad(x, pads, mode="reflect")
    return _ReflectionPad2dFunction.apply(x, pads)


class ReflectionPad2d(nn.ReflectionPad2d):
    """:class:`torch.nn.ReflectionPad2d` (same constructor, no parameters) that does not keep its input for the
    backward pass (see :func:`reflection_pad2d`). ``(B, C, H, W) -> (B, C, H + top + bottom, W + left + right)``."""

    def forward(self, x: Tensor) -> Tensor:
        return reflection_pad2d(x, self.padding)
