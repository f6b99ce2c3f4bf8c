"""Image files: listing folders, decoding with PIL, and writing results.

Everything that touches image files on disk goes through this module, so that every bad input gives one error that
names the file or folder:

- :func:`list_images` lists the images of a folder (sorted) and explains a missing, non-folder or empty folder.
- :func:`load_image` decodes one file to an 8-bit PIL image with the channel count a model side needs; this is what the
  training datasets use (the official pipeline opens every file with PIL and converts it to RGB).
- :func:`read_image` decodes one file to a float tensor in [0, 1], keeping 16-bit precision; this is what
  ``zoo translate`` uses.
- :func:`read_image_size` reads the (width, height) of a file from its header only.
- :func:`save_image` writes a (C, H, W) tensor in [0, 1] as an 8-bit image (PNG unless the suffix says otherwise).

Mode handling (PIL modes): grayscale ``L`` and 1-bit ``1`` images are replicated to RGB when three channels are asked
for; palette ``P`` and ``CMYK`` / ``YCbCr`` / ``LAB`` / ``HSV`` images are converted to RGB; an alpha channel (``RGBA``,
``LA``, ``PA``, palette transparency) is **dropped**: the stored colour values are kept and transparency is ignored,
which is what the official ``Image.open(path).convert("RGB")`` does. 16-bit grayscale (``I;16*``) and 32-bit integer
``I`` images are taken to span 0..65535 and are scaled, not clipped, to 8 bits (round(v / 257)); 32-bit float ``F``
images are taken to span [0, 1]. Pillow itself reduces 16-bit *colour* PNGs to 8 bits when it opens them, so only
grayscale files keep more than 8 bits of precision.

Truncated files are never loaded silently: decoding is forced with ``Image.load()`` while Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default ``False`` (this module never changes it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMG_EXTENSIONS",
    "ImageReadError",
    "batches_by_size",
    "SUPPORTED_MODES",
    "list_images",
    "load_image",
    "read_image",
    "read_image_size",
    "save_image",
    "source_channels",
]

#: File suffixes (lower case) that are treated as images when listing a folder.
IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_GRAY_MODES = ("1", "L", "LA", "F") + _SIXTEEN_BIT_MODES

#: Pillow modes that :func:`load_image` and :func:`read_image` convert (others, e.g. ``BGR;24``, are refused).
SUPPORTED_MODES: tuple[str, ...] = _GRAY_MODES + (
    "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"
)


class ImageReadError(OSError):
    """An image file exists but cannot be decoded (corrupt, truncated, or not an image)."""


# --------------------------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------------------------


def _is_image_name(name: str) -> bool:
    # Names starting with "." are hidden files, e.g. macOS "._x.jpg" resource forks that are not images.
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """List the image files of a folder.

    Args:
        folder: Folder to list.
        recursive: Also list images in sub-folders (the official ``make_dataset`` walks sub-folders).

    Returns:
        Paths of the files whose suffix is in :data:`IMG_EXTENSIONS` (case-insensitive, hidden files skipped), sorted
        by their path string.

    Raises:
        FileNotFoundError: The folder does not exist, or holds no image.
        NotADirectoryError: The path is a file, not a folder.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"Image folder '{folder}' does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"'{folder}' is a file, but a folder of images was expected.")
    if recursive:
        paths = [Path(root) / name for root, _, names in os.walk(folder) for name in names if _is_image_name(name)]
    else:
        paths = [p for p in folder.iterdir() if p.is_file() and _is_image_name(p.name)]
    if not paths:
        where = "in or below" if recursive else "in"
        raise FileNotFoundError(
            f"No images found {where} folder '{folder}'. Accepted extensions (any case): {', '.join(IMG_EXTENSIONS)}."
        )
    return sorted(paths, key=str)


# --------------------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------------------


def _open(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image file, turning every decoder failure into one error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Image file '{path}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder, but an image file was expected.")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: Image.open is lazy and would hide truncation until first use
            return image.copy() if image.mode != "P" else image.convert("RGBA" if _has_transparency(image) else "RGB")
    except UnidentifiedImageError as error:
        raise ImageReadError(f"Cannot read image '{path}': not an image file Pillow can identify.") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # Pillow reports truncation as OSError("image file is truncated ...") and some corrupt chunks as SyntaxError.
        raise ImageReadError(f"Cannot read image '{path}': {error}.") from error


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, read from its header without decoding the pixels.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file is not an image Pillow can identify.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Image file '{path}' does not exist.")
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"Cannot read image '{path}': {error}.") from error


def _has_transparency(image: Image.Image) -> bool:
    return "transparency" in image.info


def source_channels(image: Image.Image) -> int:
    """Number of colour channels a decoded image carries, ignoring alpha: 1 for grayscale modes, else 3."""
    return 1 if image.mode in _GRAY_MODES else 3


def _sixteen_bit_array(image: Image.Image) -> np.ndarray:
    """(H, W) float64 array in [0, 1] for 16-bit grayscale and 32-bit ``I`` / ``F`` images."""
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    array = np.asarray(image).astype(np.float64)  # I;16B arrays are big-endian uint16, astype makes them native
    return np.clip(array, 0.0, 65535.0) / 65535.0


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """8-bit ``L`` image from any grayscale mode, scaling 16-bit ranges instead of clipping them."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        return Image.fromarray(np.round(_sixteen_bit_array(image) * 255.0).astype(np.uint8))
    return image.convert("L")  # "1", "L", "LA" (alpha dropped)


def load_image(path: str | os.PathLike, channels: int = 3) -> Image.Image:
    """Decode an image file to an 8-bit PIL image with the requested channel count.

    Args:
        path: Image file.
        channels: 3 for an ``RGB`` image, 1 for an ``L`` (luma, ITU-R 601 as in PIL's ``convert("L")``) image. Alpha
            is dropped (see the module docstring); 16-bit grayscale is scaled to 8 bits.

    Returns:
        A fully loaded PIL image of mode ``RGB`` (channels=3) or ``L`` (channels=1).

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file cannot be decoded (not an image, corrupt or truncated).
        ValueError: ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"load_image: channels must be 1 or 3, got {channels} (for '{path}').")
    return _to_8bit(_open(path), channels)


def _to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """``L`` (channels=1) or ``RGB`` (channels=3) image from any decoded mode."""
    if image.mode in _GRAY_MODES:
        gray = _to_8bit_gray(image)
        return gray if channels == 1 else gray.convert("RGB")
    rgb = image.convert("RGB")  # RGBA / CMYK / YCbCr / ... ; alpha is dropped, not composited
    return rgb if channels == 3 else rgb.convert("L")


def read_image(path: str | os.PathLike, *, channels: int | None = None) -> torch.Tensor:
    """Decode an image file to a float tensor in [0, 1].

    Unlike :func:`load_image`, 16-bit grayscale files keep their full precision (values are v / 65535).

    Args:
        path: Image file.
        channels: None keeps the source's colour channel count (1 for grayscale files, 3 otherwise; alpha is always
            dropped); 1 converts colour to luma (ITU-R 601, PIL's ``convert("L")``); 3 replicates grayscale to RGB.

    Returns:
        Tensor of shape (C, H, W), dtype float32, values in [0, 1].

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file cannot be decoded.
        ValueError: ``channels`` is not None, 1 or 3.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"read_image: channels must be None, 1 or 3, got {channels} (for '{path}').")
    image = _open(path)
    wanted = source_channels(image) if channels is None else channels
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        gray = torch.from_numpy(_sixteen_bit_array(image)).to(torch.float32)[None]
        return gray.expand(wanted, -1, -1).clone()
    array = np.asarray(_to_8bit(image, wanted), dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).to(torch.float32).div_(255.0)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------------


def save_image(image: torch.Tensor, path: str | os.PathLike, **options: Any) -> Path:
    """Write a (C, H, W) tensor in [0, 1] as an 8-bit image file.

    Values are clamped to [0, 1] and rounded to the nearest of the 256 levels. The format follows the suffix
    (``.png`` recommended: lossless); missing parent folders are created.

    Args:
        image: Tensor of shape (C, H, W) with C = 1 (grayscale) or 3 (RGB), values in [0, 1], on any device.
        path: Output file.
        options: Pillow's writer options, e.g. ``quality=95`` for JPEG.

    Returns:
        The written path.

    Raises:
        ValueError: Wrong number of dimensions or channels, non-finite values, or an unknown suffix.
    """
    path = Path(path)
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"save_image('{path}'): expected a (C, H, W) tensor, got {shape}.")
    if image.shape[0] not in (1, 3):
        raise ValueError(
            f"save_image('{path}'): expected 1 (grayscale) or 3 (RGB) channels, got {image.shape[0]} "
            f"(shape {tuple(image.shape)})."
        )
    image = image.detach().to("cpu", torch.float32)
    if not torch.isfinite(image).all():
        raise ValueError(f"save_image('{path}'): the tensor contains NaN or infinite values.")
    pixels = image.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(array).save(path, **options)
    except (KeyError, ValueError) as error:  # Pillow raises these for suffixes it cannot map to a format
        raise ValueError(f"save_image('{path}'): cannot write this file type ({error}); use a .png path.") from error
    return path


def batches_by_size(files: Sequence[Path], sizes: Mapping[Path, tuple[int, int]], batch_size: int) -> list[list[Path]]:
    """Batches of at most ``batch_size`` inputs of equal size, in a fixed order (by size, then path)."""
    batches: list[list[Path]] = []
    for p in sorted(files, key=lambda p: (sizes[p], str(p))):
        if batches and len(batches[-1]) < batch_size and sizes[batches[-1][0]] == sizes[p]:
            batches[-1].append(p)
        else:
            batches.append([p])
    return batches
