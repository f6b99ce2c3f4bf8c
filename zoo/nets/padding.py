"""Reflection padding that keeps only the input's shape for the backward pass.

PyTorch's ``reflection_pad2d`` saves its whole input tensor for autograd, although its backward only reads the
input's shape. In conv nets the padded tensor is then held twice until the backward pass: the input, by the pad,
and the padded copy, by the convolution that follows. When nothing else keeps the input (a residual stream, the
output of a LeakyReLU, whose backward keeps its own input instead), that is a whole activation kept for nothing:
about 1 GB of LOMIT's 7 GB generator graph at its CelebA setting.

:func:`reflection_pad2d` and :class:`ReflectionPad2d` compute the same values and gradients, first and second order,
and keep only the input's shape. Gradients use ATen's kernel, except for channels-last gradients: they are folded in
their own layout (as fast as ATen's channels-last kernel, which needs the input itself), so sums over the mirrored
borders may differ from ATen's in the last bit.

:func:`replication_pad2d` and :class:`ReplicationPad2d` are ``F.pad(mode="replicate")`` that ``torch.compile`` can
train: inductor (torch 2.14, CPU) generates a ``replication_pad2d_backward`` whose output strides do not match the
input's, and the first backward fails. Under compilation they pad by clamped row and column indices instead (same
values; the gradient sums the copies back, in another order); eager runs keep ATen's kernel.
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
        if grad.dim() == 4 and not grad.is_contiguous() and grad.is_contiguous(memory_format=torch.channels_last):
            grad_input = _fold_reflections(grad, ctx.padding, ctx.input_shape[-2:])
        else:
            # the ATen backward reads only the sizes of ``self``: a zero-stride view of one element stands in for
            # it (ATen would give NCHW from it, and convert a channels-last gradient at 4x the cost)
            stand_in = grad.new_zeros(()).expand(ctx.input_shape)
            grad_input = torch.ops.aten.reflection_pad2d_backward(grad, stand_in, ctx.padding)
        return grad_input.to(ctx.input_dtype), None  # under autocast the gradient can have another dtype


def _fold_reflections(grad: Tensor, padding: list[int], size: Sequence[int]) -> Tensor:
    """The gradient of reflection padding, in the memory format of ``grad``: the interior of the padded gradient
    plus its border rows and columns added back, mirrored, onto the input rows and columns they copied.

    grad (..., H + top + bottom, W + left + right) -> (..., H, W); differentiable (for second-order gradients).
    """
    left, right, top, bottom = padding
    height, width = size
    rows = slice(top, top + height)

    def fold_rows(columns: slice) -> Tensor:
        out = grad[..., rows, columns].clone(memory_format=torch.preserve_format)
        if top:
            out[..., 1:top + 1, :] += grad[..., :top, columns].flip(-2)
        if bottom:
            out[..., height - 1 - bottom:height - 1, :] += grad[..., top + height:, columns].flip(-2)
        return out

    grad_input = fold_rows(slice(left, left + width))
    if left:
        grad_input[..., 1:left + 1] += fold_rows(slice(0, left)).flip(-1)
    if right:
        grad_input[..., width - 1 - right:width - 1] += fold_rows(slice(left + width, None)).flip(-1)
    return grad_input


def _four_pads(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    pads = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(pads) != 4:
        raise ValueError(f"padding must be an int or (left, right, top, bottom), got {padding!r}")
    return pads


def reflection_pad2d(x: Tensor, padding: int | Sequence[int]) -> Tensor:
    """``F.pad(x, padding, mode="reflect")`` for (B, C, H, W) or (C, H, W) ``x``; ``padding`` an int or
    (left, right, top, bottom). Same result and gradients, without keeping ``x`` for the backward pass."""
    pads = _four_pads(padding)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return F.pad(x, pads, mode="reflect")
    return _ReflectionPad2dFunction.apply(x, pads)


class ReflectionPad2d(nn.ReflectionPad2d):
    """:class:`torch.nn.ReflectionPad2d` (same constructor, no parameters) that does not keep its input for the
    backward pass (see :func:`reflection_pad2d`). ``(B, C, H, W) -> (B, C, H + top + bottom, W + left + right)``."""

    def forward(self, x: Tensor) -> Tensor:
        return reflection_pad2d(x, self.padding)


def replication_pad2d(x: Tensor, padding: int | Sequence[int]) -> Tensor:
    """``F.pad(x, padding, mode="replicate")`` for (..., H, W) ``x``; ``padding`` an int or (left, right, top,
    bottom). Under ``torch.compile`` it indexes clamped rows and columns (see the module docstring)."""
    left, right, top, bottom = _four_pads(padding)
    if not torch.compiler.is_compiling():
        return F.pad(x, (left, right, top, bottom), mode="replicate")
    height, width = x.shape[-2:]
    rows = torch.arange(-top, height + bottom, device=x.device).clamp(0, height - 1)
    columns = torch.arange(-left, width + right, device=x.device).clamp(0, width - 1)
    return x.index_select(-2, rows).index_select(-1, columns)


class ReplicationPad2d(nn.ReplicationPad2d):
    """:class:`torch.nn.ReplicationPad2d` (same constructor, no parameters) that ``torch.compile`` can train (see
    :func:`replication_pad2d`). ``(B, C, H, W) -> (B, C, H + top + bottom, W + left + right)``."""

    def forward(self, x: Tensor) -> Tensor:
        return replication_pad2d(x, self.padding)
