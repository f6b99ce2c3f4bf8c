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

Steps 2-5 are drawn first as an :class:`ImageGeometry` (:meth:`ImageTransform.geometry`), then applied; the geometry
also maps boxes (:meth:`ImageGeometry.map_boxes`), so annotations follow the image exactly.
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
    "ImageGeometry",
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


def _scaled_width_size(w: int, h: int, target_width: int, crop_size: int) -> tuple[int, int]:
    # An image already target_width wide and at least crop_size high gives its own size back (it is not resampled).
    return target_width, int(max(target_width * h / w, crop_size))


def _power_2_size(w: int, h: int, base: int = POWER_2_BASE) -> tuple[int, int]:
    return int(round(w / base) * base), int(round(h / base) * base)


def _random_crop_box(w: int, h: int, size: int, rng: random.Random) -> tuple[int, int, int, int]:
    if w < size or h < size:
        raise ValueError(
            f"Cannot take a random {size}x{size} crop of a {w}x{h} image; lower crop_size or raise load_size."
        )
    x = rng.randint(0, w - size)
    y = rng.randint(0, h - size)
    return x, y, x + size, y + size


@dataclass(frozen=True)
class ImageGeometry:
    """Where every pixel of one image goes in :class:`ImageTransform`: the drawn resize, crop and flip.

    Attributes:
        size: (W, H) of the input image.
        resized: (W, H) after the resize step (``size`` when the image is not resized).
        crop: (x0, y0, x1, y1) crop box in the resized image, or None; parts outside the image are filled with
            zeros (the official fixed-position crop of an image smaller than the crop in one side).
        output: (W, H) of the output: the crop's size, or after ``preprocess="none"`` the multiple of 4.
        flip: Whether the output is mirrored horizontally.
    """

    size: tuple[int, int]
    resized: tuple[int, int]
    crop: tuple[int, int, int, int] | None
    output: tuple[int, int]
    flip: bool

    def map_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Map boxes of the input image into the output image (the same resize, crop and flip).

        Args:
            boxes: (N, 4) float [x0, y0, x1, y1] in pixels of the input, continuous coordinates (a box covering
                columns 2 and 3 has x0 = 2, x1 = 4).

        Returns:
            (N, 4) float boxes in output pixels, x0 <= x1 and y0 <= y1, not clipped to the output.
        """
        def scaled(corners: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
            return corners * corners.new_tensor([sx, sy, sx, sy])

        corners = scaled(boxes, self.resized[0] / self.size[0], self.resized[1] / self.size[1])
        window = self.resized
        if self.crop is not None:
            corners = corners - corners.new_tensor([self.crop[0], self.crop[1]] * 2)
            window = (self.crop[2] - self.crop[0], self.crop[3] - self.crop[1])
        corners = scaled(corners, self.output[0] / window[0], self.output[1] / window[1])  # preprocess="none"
        if self.flip:
            x0, y0, x1, y1 = corners.unbind(-1)
            corners = torch.stack([self.output[0] - x1, y0, self.output[0] - x0, y1], dim=-1)
        return corners


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

    def geometry(self, size: tuple[int, int]) -> ImageGeometry:
        """Draw the resize, crop and flip of an image of ``size`` (W, H): the crop x, then y, then the flip come from
        ``rng`` (in that order) unless ``params`` fixes them. :meth:`__call__` is ``apply(image,
        geometry(image.size))``; call the two apart to move annotations (boxes) with the image."""
        w, h = size
        if "resize" in self.preprocess:
            w, h = self.load_size, self.load_size
        elif "scale_width" in self.preprocess:
            w, h = _scaled_width_size(w, h, self.load_size, self.crop_size)
        resized, crop = (w, h), None
        if "crop" in self.preprocess:
            if self.params is None:
                crop = _random_crop_box(w, h, self.crop_size, self.rng)
            elif w > self.crop_size or h > self.crop_size:  # as the official code: only an image larger than the crop
                x, y = self.params.crop_pos
                crop = (x, y, x + self.crop_size, y + self.crop_size)
        if crop is not None:
            w, h = self.crop_size, self.crop_size
        if self.preprocess == "none":
            w, h = _power_2_size(w, h)
        flip = not self.no_flip and (self.rng.random() < 0.5 if self.params is None else self.params.flip)
        return ImageGeometry(size=tuple(size), resized=resized, crop=crop, output=(w, h), flip=flip)

    def apply(self, image: Image.Image, geometry: ImageGeometry) -> torch.Tensor:
        """Apply a drawn :class:`ImageGeometry` (of an image of this size) and normalise: PIL image -> (C, H', W')."""
        if self.grayscale:
            image = image.convert("L")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != geometry.resized:
            image = _resize(image, *geometry.resized)
        if geometry.crop is not None:
            image = image.crop(geometry.crop)
        if image.size != geometry.output:
            image = _resize(image, *geometry.output)
        if geometry.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = TF.to_tensor(image)
        channels = tensor.shape[0]
        return TF.normalize(tensor, [0.5] * channels, [0.5] * channels)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.apply(image, self.geometry(image.size))

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
