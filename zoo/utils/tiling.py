"""Running size-constrained models on images of any size.

Generators only accept inputs whose height and width are multiples of ``model.size_multiple`` (4 for a ResNet
generator with two stride-2 convolutions, 256 for ``unet_256``). :func:`pad_to_multiple` reflect-pads a batch up to
that multiple, :func:`crop_padding` removes the padding from the model's output again (also when the output is an
integer multiple of the input size, as in super-resolution), and :func:`translate_any_size` chains the two around
``model.translate``. :func:`translate_tiled` runs it over overlapping blocks so that memory stays bounded on large
images; ``translate_any_size(..., tile=N)`` picks it, and :func:`default_tile` is the block size ``zoo translate``
uses when none is given.

``zoo translate`` (:func:`zoo.translate.translate_images`), ``predict_step`` of every method
(:func:`zoo.methods._common.predict_outputs`) and the sample grids (:class:`zoo.callbacks.ImageGrid`) all translate
through :func:`translate_any_size`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Padding",
    "pad_to_multiple",
    "crop_padding",
    "translate_any_size",
    "translate_tiled",
    "default_tile",
    "DEFAULT_TILE",
]

#: Block side, in input pixels, that upscaling models are translated in when no tile size is given.
DEFAULT_TILE = 256


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


def default_tile(model: torch.nn.Module) -> int:
    """The tile size to translate with when none is given: :data:`DEFAULT_TILE` for upscaling models
    (``model.scale > 1``, whose outputs are large), 0 (the whole image at once) for every other model."""
    return DEFAULT_TILE if int(getattr(model, "scale", 1)) > 1 else 0


def translate_any_size(
    model: torch.nn.Module,
    images: Tensor,
    *,
    direction: str = "a2b",
    seed: int | None = None,
    masks: dict[str, Tensor] | None = None,
    unaligned: dict[str, Tensor] | None = None,
    tile: int = 0,
    tile_overlap: int = 32,
    **conditions: Any,
) -> Tensor:
    """``model.translate`` for inputs of any height and width: reflect-pad, translate, crop back.

    Args:
        model: a zoo method (has ``translate`` and ``size_multiple``).
        images: batch in [0, 1].
        direction: translation direction, one of ``model.directions``.
        seed: seed for methods that sample (style codes); ``None`` leaves the generator state alone.
        masks: keyword arguments of ``translate`` aligned with ``images`` pixel for pixel (e.g. LOMIT's ``mask``):
            padded exactly like ``images``. Shape ``(B or 1, 1, H, W)``.
        unaligned: keyword arguments of ``translate`` that are images of their own size, read whole by the model
            (LOMIT's ``exemplar`` and ``exemplar_mask``): reflect-padded to ``model.size_multiple`` on their own
            and never cropped. Passing one that is already padded is harmless.
        tile: translate in ``tile`` x ``tile`` blocks with :func:`translate_tiled` (bounded memory); 0 translates
            the whole batch at once. Tiling takes no ``masks``, ``unaligned`` or ``conditions``.
        tile_overlap: context around each block, in input pixels (only with ``tile``).
        **conditions: further keyword arguments of ``translate`` passed unchanged (``num_styles``, ``style``,
            ``reference``; an ``exemplar`` given here must already be padded to ``model.size_multiple``).

    Returns:
        The translated batch in [0, 1], cropped to the input size (times the model's upscaling factor).

    Shape:
        - images: ``(B, C_in, H, W)``
        - output: ``(B, C_out, s * H, s * W)`` where ``s`` is 1 for translation models; ``(B, K, C_out, H, W)`` for
          multimodal models asked for ``num_styles=K > 1``.

    Raises:
        ValueError: a mask whose size differs from the images', ``tile`` together with conditions, or an output that
            is not an integer upscaling of the input.
    """
    if tile:
        if masks or unaligned or conditions:
            given = sorted([*(masks or {}), *(unaligned or {}), *conditions])
            raise ValueError(f"tiling works for models without style, exemplar or mask inputs (got {given}); "
                             "translate with tile=0")
        return translate_tiled(model, images, tile=tile, overlap=tile_overlap, direction=direction, seed=seed)
    multiple = int(getattr(model, "size_multiple", 1))
    padded, padding = pad_to_multiple(images, multiple)
    for key, mask in (masks or {}).items():
        if mask.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"{key} has size {tuple(mask.shape[-2:])}, the images {tuple(images.shape[-2:])}")
        conditions[key] = pad_to_multiple(mask, multiple)[0]
    for key, image in (unaligned or {}).items():
        conditions[key] = pad_to_multiple(image, multiple)[0]
    output = model.translate(padded, direction=direction, seed=seed, **conditions)
    scale_h, scale_w = output.shape[-2] / padded.shape[-2], output.shape[-1] / padded.shape[-1]
    if scale_h != scale_w or scale_h != int(scale_h) or scale_h < 1:
        raise ValueError(
            f"cannot crop the output of {type(model).__name__}.translate back: input {tuple(padded.shape[-2:])} "
            f"gave output {tuple(output.shape[-2:])}, which is not an integer upscaling"
        )
    return crop_padding(output, padding, scale=int(scale_h))


def translate_tiled(
    model: torch.nn.Module,
    images: Tensor,
    *,
    tile: int,
    overlap: int = 32,
    direction: str = "a2b",
    seed: int | None = None,
) -> Tensor:
    """:func:`translate_any_size` over overlapping tiles, so that memory stays bounded on large images.

    Each ``tile`` x ``tile`` block of the input is translated together with ``overlap`` pixels of its surroundings
    on every side, and only the block's own part of the result is kept. For a fully convolutional model whose
    receptive-field radius is at most ``overlap`` (input pixels) the stitched result equals translating the whole
    image at once, so there are no seams; beyond that radius the difference fades with distance. Models with
    image-wide statistics (instance normalisation in translation generators) look at one tile at a time, so tiling
    is meant for super-resolution networks (batch normalisation in eval mode, no global pooling).

    Args:
        model: a zoo method (``translate``, ``size_multiple``).
        images: batch in [0, 1].
        tile: side of the blocks, in input pixels (memory grows with ``(tile + 2 * overlap) ** 2``).
        overlap: context added around each block, in input pixels.
        direction: translation direction.
        seed: seed for methods that sample; every tile gets the same seed.

    Shape:
        - images: ``(B, C_in, H, W)``
        - output: ``(B, C_out, s * H, s * W)``
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    height, width = images.shape[-2:]
    if height <= tile and width <= tile:
        return translate_any_size(model, images, direction=direction, seed=seed)
    output: Tensor | None = None
    scale = 1
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, height), min(x1 + overlap, width)
            piece = translate_any_size(model, images[..., ya:yb, xa:xb], direction=direction, seed=seed)
            if output is None:
                scale = piece.shape[-1] // (xb - xa)
                output = piece.new_empty(*piece.shape[:-2], height * scale, width * scale)
            top, left = (y0 - ya) * scale, (x0 - xa) * scale
            output[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = piece[
                ..., top : top + (y1 - y0) * scale, left : left + (x1 - x0) * scale
            ]
    assert output is not None
    return output
