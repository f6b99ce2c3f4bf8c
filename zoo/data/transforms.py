"""The official pix2pix / CycleGAN preprocessing, with all randomness drawn from an explicit ``random.Random``.

The pipeline, per image side (PIL image in, tensor out):

1. grayscale (when the side has one channel): PIL ``convert("L")`` (ITU-R 601 luma), *before* resizing;
2. ``"resize"`` in ``preprocess``: resize to ``load_size x load_size`` (aspect ratio not kept);
   ``"scale_width"`` in ``preprocess``: width := ``load_size``, height := ``int(max(load_size * h / w, crop_size))``;
3. ``"crop"`` in ``preprocess``: a ``crop_size x crop_size`` crop at the position drawn by :func:`get_params` (paired
   data: one draw for both sides) or drawn from ``rng`` (unpaired data: one draw per side);
4. ``preprocess == "none"``: resize so each side becomes ``round(side / 4) * 4`` (Python's round, half to even), only
   when that changes the size;
5. horizontal flip unless ``no_flip``;
6. to a float tensor, normalised with mean 0.5 and std 0.5 per channel, i.e. from [0, 1] to [-1, 1].

All resizes are PIL bicubic on PIL images (``torchvision.transforms.functional.resize`` on a PIL image), which is what
makes the outputs bit-exact with the official code; tensor-based bicubic resizing gives different values.

Random draws follow the official order: :func:`get_params` draws the crop x, then y, then the flip
(``rng.random() > 0.5``). Without ``params`` a side draws its crop x, y, then its flip (``rng.random() < 0.5``) from the
given ``rng`` instead of torch's global generator, so data are a pure function of the ``rng`` seed; use
:func:`item_rng` to seed one generator per (seed, epoch, index).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF
from PIL import Image

__all__ = [
    "PREPROCESS_OPTIONS",
    "TransformParams",
    "ImageTransform",
    "get_params",
    "get_transform",
    "item_rng",
    "check_preprocess",
    "to_model_tensor",
]

#: Accepted ``preprocess`` values (the official choices, plus ``resize`` alone, which the official code also handles).
PREPROCESS_OPTIONS: tuple[str, ...] = (
    "resize_and_crop",
    "crop",
    "scale_width",
    "scale_width_and_crop",
    "none",
    "resize",
)

#: Side lengths produced by ``preprocess="none"`` are multiples of this.
POWER_2_BASE = 4


def check_preprocess(preprocess: str, *, load_size: int, crop_size: int) -> None:
    """Validate preprocessing options, raising one clear ``ValueError``."""
    if preprocess not in PREPROCESS_OPTIONS:
        raise ValueError(f"Unknown preprocess '{preprocess}'; expected one of {', '.join(PREPROCESS_OPTIONS)}.")
    if load_size < 1 or crop_size < 1:
        raise ValueError(f"load_size and crop_size must be positive, got load_size={load_size}, crop_size={crop_size}.")


def item_rng(seed: int, epoch: int, index: int) -> random.Random:
    """A ``random.Random`` that is a pure function of (seed, epoch, index).

    String seeds are hashed with SHA-512 by ``random.Random``, independent of ``PYTHONHASHSEED``, the process and the
    worker, so a resumed run or any number of data-loading workers draws the same numbers.
    """
    return random.Random(f"zoo-data:{seed}:{epoch}:{index}")


@dataclass(frozen=True)
class TransformParams:
    """Random choices shared by both sides of a pair.

    Attributes:
        crop_pos: (x, y) of the crop's top-left corner, in the resized image.
        flip: Whether to flip horizontally (applied only when flipping is enabled).
    """

    crop_pos: tuple[int, int]
    flip: bool


def get_params(
    *, preprocess: str, load_size: int, crop_size: int, size: tuple[int, int], rng: random.Random
) -> TransformParams:
    """Draw the crop position and flip for one image pair, exactly as the official ``get_params``.

    Args:
        preprocess: One of :data:`PREPROCESS_OPTIONS`.
        load_size: Resize target (see the module docstring).
        crop_size: Crop side.
        size: (width, height) of the image before preprocessing.
        rng: Source of randomness; draws x = randint(0, max(0, new_w - crop)), then y likewise, then flip.

    Returns:
        The drawn :class:`TransformParams`.
    """
    w, h = size
    new_w, new_h = w, h
    if preprocess == "resize_and_crop":
        new_w = new_h = load_size
    elif preprocess == "scale_width_and_crop":
        new_w, new_h = load_size, load_size * h // w
    x = rng.randint(0, max(0, new_w - crop_size))
    y = rng.randint(0, max(0, new_h - crop_size))
    flip = rng.random() > 0.5
    return TransformParams(crop_pos=(x, y), flip=flip)


def _resize(image: Image.Image, width: int, height: int) -> Image.Image:
    return TF.resize(image, [height, width], interpolation=TF.InterpolationMode.BICUBIC)


def _scale_width(image: Image.Image, target_width: int, crop_size: int) -> Image.Image:
    w, h = image.size
    if w == target_width and h >= crop_size:
        return image
    return _resize(image, target_width, int(max(target_width * h / w, crop_size)))


def _make_power_2(image: Image.Image, base: int = POWER_2_BASE) -> Image.Image:
    w, h = image.size
    new_w, new_h = int(round(w / base) * base), int(round(h / base) * base)
    if (new_w, new_h) == (w, h):
        return image
    return _resize(image, new_w, new_h)


def _crop_at(image: Image.Image, pos: tuple[int, int], size: int) -> Image.Image:
    w, h = image.size
    x, y = pos
    # As the official code: crop only when the image exceeds the crop in either side (PIL fills any part of the box
    # outside the image with zeros).
    if w > size or h > size:
        return image.crop((x, y, x + size, y + size))
    return image


def _random_crop(image: Image.Image, size: int, rng: random.Random) -> Image.Image:
    w, h = image.size
    if w < size or h < size:
        raise ValueError(
            f"Cannot take a random {size}x{size} crop of a {w}x{h} image; lower crop_size or raise load_size."
        )
    x = rng.randint(0, w - size)
    y = rng.randint(0, h - size)
    return image.crop((x, y, x + size, y + size))


def to_model_tensor(image: Image.Image, *, grayscale: bool = False) -> torch.Tensor:
    """A whole image as a model input: steps 1 and 6 of the pipeline only (no resize, crop or flip).

    Args:
        image: PIL image of any size, mode ``RGB`` or ``L``.
        grayscale: Convert to one luma channel (PIL ``convert("L")``).

    Returns:
        Tensor (C, H, W) float32 in [-1, 1], C = 1 when ``grayscale`` else 3; H, W are the image's own.
    """
    image = image.convert("L") if grayscale else image if image.mode == "RGB" else image.convert("RGB")
    tensor = TF.to_tensor(image)
    channels = tensor.shape[0]
    return TF.normalize(tensor, [0.5] * channels, [0.5] * channels)


class ImageTransform:
    """One side's preprocessing (PIL image -> normalised tensor); built by :func:`get_transform`.

    Call it with a PIL image (any size, mode ``RGB`` or ``L``); it returns a float tensor (C, H', W') in [-1, 1] with
    C = 1 when ``grayscale`` else 3.
    """

    def __init__(
        self,
        *,
        preprocess: str,
        load_size: int,
        crop_size: int,
        no_flip: bool,
        params: TransformParams | None,
        grayscale: bool,
        rng: random.Random | None,
    ) -> None:
        check_preprocess(preprocess, load_size=load_size, crop_size=crop_size)
        needs_rng = params is None and ("crop" in preprocess or not no_flip)
        if needs_rng and rng is None:
            raise ValueError(
                f"get_transform(preprocess='{preprocess}', no_flip={no_flip}) draws a random crop or flip: pass "
                "params (from get_params) or an rng (random.Random)."
            )
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.no_flip = no_flip
        self.params = params
        self.grayscale = grayscale
        self.rng = rng

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.grayscale:
            image = image.convert("L")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        if "resize" in self.preprocess:
            image = _resize(image, self.load_size, self.load_size)
        elif "scale_width" in self.preprocess:
            image = _scale_width(image, self.load_size, self.crop_size)
        if "crop" in self.preprocess:
            if self.params is None:
                image = _random_crop(image, self.crop_size, self.rng)
            else:
                image = _crop_at(image, self.params.crop_pos, self.crop_size)
        if self.preprocess == "none":
            image = _make_power_2(image)
        if not self.no_flip:
            flip = self.rng.random() < 0.5 if self.params is None else self.params.flip
            if flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = TF.to_tensor(image)
        channels = tensor.shape[0]
        return TF.normalize(tensor, [0.5] * channels, [0.5] * channels)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(preprocess={self.preprocess!r}, load_size={self.load_size}, "
            f"crop_size={self.crop_size}, no_flip={self.no_flip}, grayscale={self.grayscale}, params={self.params})"
        )


def get_transform(
    *,
    preprocess: str,
    load_size: int,
    crop_size: int,
    no_flip: bool,
    params: TransformParams | None = None,
    grayscale: bool = False,
    rng: random.Random | None = None,
) -> ImageTransform:
    """Build one side's preprocessing, as the official ``get_transform``.

    Args:
        preprocess: One of :data:`PREPROCESS_OPTIONS`.
        load_size: Resize target: square side for ``resize*``, width for ``scale_width*``.
        crop_size: Crop side (and minimum height for ``scale_width*``).
        no_flip: Disable the horizontal flip.
        params: Crop position and flip from :func:`get_params` (paired data). None: draw them from ``rng``.
        grayscale: Convert to one luma channel first.
        rng: Source of randomness when ``params`` is None and a crop or flip is random; required then.

    Returns:
        A callable mapping a PIL image to a tensor (C, H, W) in [-1, 1].

    Example:
        >>> from PIL import Image
        >>> t = get_transform(preprocess="resize_and_crop", load_size=40, crop_size=32, no_flip=True,
        ...                   rng=random.Random(0))
        >>> t(Image.new("RGB", (50, 30))).shape
        torch.Size([3, 32, 32])
    """
    return ImageTransform(
        preprocess=preprocess,
        load_size=load_size,
        crop_size=crop_size,
        no_flip=no_flip,
        params=params,
        grayscale=grayscale,
        rng=rng,
    )
