"""Mask files: the one reader used for training data and for ``zoo translate``.

:func:`read_mask` turns a mask file into a (1, H, W) float tensor in {0, 1} with one rule:

1. **Decoding.** Alpha is ignored (``LA``, ``RGBA``, ``PA`` and palette transparency keep their colour / index
   values). A palette (``P``) PNG gives its palette *indices*: the index is the label, which is how Cityscapes and
   Pascal VOC label maps are stored. Grayscale files (1-bit, 8-bit, 16-bit, 32-bit integer or float) give their stored
   values unscaled. A colour file (``RGB``, or ``CMYK`` / ``YCbCr`` / ... converted to RGB) whose channels are equal
   at every pixel is a grayscale file saved as colour and is read as grayscale; any other colour file stays colour.
2. **With** ``ids`` **(label map).** A pixel is 1 when its stored value (palette index, gray level, 16-bit value) is
   one of ``ids``. A colour file with differing channels is an error: colour label maps (e.g. Cityscapes
   ``*_color.png``) do not store ids; pass a single-channel or palette label map instead.
3. **Without** ``ids`` **(binary mask).** Palette files: every nonzero index is 1 (index 0 is the background).
   Grayscale files: a pixel is 1 when its value exceeds half of the largest value in the file, so 0/1, 0/255 and
   0/65535 masks, and masks blurred by JPEG compression or anti-aliasing, all read as intended; an all-zero file is
   all 0. Colour files: the brightest channel of every pixel, then the grayscale rule (white or coloured shapes on
   black).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["read_mask"]

_GRAY_MODES = ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _check_ids(ids: Sequence[int] | None, path: Path) -> list[int] | None:
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise ValueError(f"read_mask('{path}'): ids must be a list of integer labels, got {ids!r}.")
    values = list(ids)
    if not values:
        raise ValueError(f"read_mask('{path}'): ids is empty; pass the labels forming the mask, or None for a binary "
                         "mask.")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"read_mask('{path}'): ids must be integer labels, got {values!r}.")
    return [int(v) for v in values]


def _decode(path: Path) -> tuple[np.ndarray, bool]:
    """Stored values of a mask file and whether they are palette indices.

    Returns:
        ``(values, palette)``: values (H, W) for palette and grayscale files, or (H, W, 3) for colour files whose
        channels differ; integer or float dtype as stored.
    """
    if not path.exists():
        raise FileNotFoundError(f"Mask file '{path}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder, but a mask image file was expected.")
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so truncated files fail here
            mode = image.mode
            if mode in ("P", "PA"):
                return np.asarray(image)[..., 0] if mode == "PA" else np.asarray(image), True
            if mode in _GRAY_MODES:
                return np.asarray(image), False
            if mode == "LA":
                return np.asarray(image)[..., 0], False
            array = np.asarray(image if mode in ("RGB", "RGBA") else image.convert("RGB"))[..., :3]
    except UnidentifiedImageError as error:
        raise ValueError(f"Cannot read mask file '{path}': not an image Pillow can identify; save masks as PNG."
                         ) from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"Cannot read mask file '{path}': {error}; re-save it as a PNG.") from error
    if (array == array[..., :1]).all():
        return array[..., 0], False
    return array, False


def read_mask(path: str | os.PathLike, ids: Sequence[int] | None = None) -> torch.Tensor:
    """Read a mask file, or the pixels of a label map whose label is in ``ids``; see the module docstring for the rule.

    Args:
        path: Mask image: a binary mask (0/1 or 0/255 bytes, 16-bit, palette, colour shapes on black) or, with
            ``ids``, a single-channel or palette label map (e.g. Cityscapes ``*_labelIds.png``, VOC
            ``SegmentationClass/*.png``).
        ids: Label values that form the mask (None: read ``path`` as a binary mask).

    Returns:
        Tensor (1, H, W), float32, values in {0, 1}.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be decoded, ``ids`` is empty or not integers, or ``ids`` is given for a colour
            label map.
    """
    path = Path(path)
    wanted = _check_ids(ids, path)
    values, palette = _decode(path)
    if wanted is not None:
        if values.ndim == 3:
            raise ValueError(f"Mask '{path}' is a colour image, but ids={wanted} need stored label values; pass a "
                             "single-channel or palette label map (e.g. Cityscapes *_labelIds.png, not *_color.png).")
        mask = np.isin(values, np.asarray(wanted))
    else:
        if values.ndim == 3:
            values = values.max(axis=-1)
        if palette:
            mask = values != 0
        else:
            values = values.astype(np.float64)  # uint16 big-endian and bool arrays compare natively after this
            top = values.max(initial=0.0)
            mask = values > top / 2 if top > 0 else np.zeros(values.shape, bool)
    return torch.from_numpy(np.ascontiguousarray(mask)).to(torch.float32)[None]
