"""Running size-constrained models on images of any size.

Generators only accept inputs whose height and width are multiples of ``model.size_multiple`` (4 for a ResNet
generator with two stride-2 convolutions, 256 for ``unet_256``). :func:`pad_to_multiple` reflect-pads a batch up to
that multiple, :func:`crop_padding` removes the padding from the model's output again (also when the output is an
integer multiple of the input size, as in super-resolution), and :func:`translate_any_size` chains the two around
``model.translate``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Padding", "pad_to_multiple", "crop_padding", "translate_any_size"]


class Padding(NamedTuple):
    """Pixels added on each side of a batch by :func:`pad_to_multiple`."""

    top: int
    bottom: int
    left: int
    right: int


def _reflect_pad(images: Tensor, left: int, right: int, top: int, bottom: int) -> Tensor:
    # ``F.pad(mode="reflect")`` needs each pad to be smaller than the side it mirrors; a 10 px image padded to 256
    # is padded in several rounds, each reflecting what the previous round produced.
    while left or right or top or bottom:
        h, w = images.shape[-2:]
        step_l, step_r = min(left, w - 1), min(right, w - 1)
        step_t, step_b = min(top, h - 1), min(bottom, h - 1)
        if w == 1 or h == 1:
            # a single row or column has nothing to mirror
            return F.pad(images, (left, right, top, bottom), mode="replicate")
        images = F.pad(images, (step_l, step_r, step_t, step_b), mode="reflect")
        left, right, top, bottom = left - step_l, right - step_r, top - step_t, bottom - step_b
    return images


def pad_to_multiple(images: Tensor, multiple: int) -> tuple[Tensor, Padding]:
    """Reflect-pad a batch so that its height and width are multiples of ``multiple``.

    The padding is split between the two sides of each axis (the extra pixel of an odd amount goes to the bottom or
    right), so a convolutional model sees the image centred.

    Args:
        images: batch of images, any value range.
        multiple: the size both sides must be divisible by (``model.size_multiple``); 1 leaves the batch unchanged.

    Returns:
        The padded batch and the :class:`Padding` to pass to :func:`crop_padding`.

    Shape:
        - images: ``(B, C, H, W)``
        - output: ``(B, C, H', W')`` with ``H' = ceil(H / multiple) * multiple``, likewise ``W'``.

    Example:
        >>> x = torch.rand(1, 3, 30, 17)
        >>> padded, padding = pad_to_multiple(x, 8)
        >>> padded.shape, padding
        (torch.Size([1, 3, 32, 24]), Padding(top=1, bottom=1, left=3, right=4))
        >>> torch.equal(crop_padding(padded, padding), x)
        True
    """
    if images.ndim != 4:
        raise ValueError(f"pad_to_multiple expects a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple}")
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    padding = Padding(top=pad_h // 2, bottom=pad_h - pad_h // 2, left=pad_w // 2, right=pad_w - pad_w // 2)
    if pad_h == 0 and pad_w == 0:
        return images, padding
    return _reflect_pad(images, padding.left, padding.right, padding.top, padding.bottom), padding


def crop_padding(images: Tensor, padding: Padding, *, scale: int = 1) -> Tensor:
    """Remove the padding added by :func:`pad_to_multiple` from a batch (or from a model's output).

    Args:
        images: batch to crop.
        padding: what :func:`pad_to_multiple` returned.
        scale: output size over input size of the model in between (4 for a x4 super-resolution model).

    Shape:
        - images: ``(B, C, scale * H', scale * W')``
        - output: ``(B, C, scale * H, scale * W)``
    """
    h, w = images.shape[-2:]
    top, left = padding.top * scale, padding.left * scale
    return images[..., top : h - padding.bottom * scale, left : w - padding.right * scale]


def translate_any_size(
    model: torch.nn.Module, images: Tensor, *, direction: str = "a2b", seed: int | None = None
) -> Tensor:
    """``model.translate`` for inputs of any height and width: reflect-pad, translate, crop back.

    Args:
        model: a zoo method (has ``translate`` and ``size_multiple``).
        images: batch in [0, 1].
        direction: translation direction, one of ``model.directions``.
        seed: seed for methods that sample (style codes); ``None`` leaves the generator state alone.

    Returns:
        The translated batch in [0, 1], cropped to the input size (times the model's upscaling factor).

    Shape:
        - images: ``(B, C_in, H, W)``
        - output: ``(B, C_out, s * H, s * W)`` where ``s`` is 1 for translation models.
    """
    multiple = int(getattr(model, "size_multiple", 1))
    padded, padding = pad_to_multiple(images, multiple)
    output = model.translate(padded, direction=direction, seed=seed)
    scale_h, scale_w = output.shape[-2] / padded.shape[-2], output.shape[-1] / padded.shape[-1]
    if scale_h != scale_w or scale_h != int(scale_h) or scale_h < 1:
        raise ValueError(
            f"cannot crop the output of {type(model).__name__}.translate back: input {tuple(padded.shape[-2:])} "
            f"gave output {tuple(output.shape[-2:])}, which is not an integer upscaling"
        )
    return crop_padding(output, padding, scale=int(scale_h))
