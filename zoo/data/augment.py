"""Optional batch augmentation on the GPU with kornia (off by default; not part of the official pipelines).

Augmentation runs after a batch reached its device (``ZooDataModule.on_after_batch_transfer``, training batches only),
seeded per training step so a resumed run repeats it. A DataModule's ``augment`` argument chooses it
(:func:`build_batch_augment`): ``false`` (none), ``true`` (:class:`BatchAugment`: a mild random affine and colour
jitter) or a list of kornia transforms (:class:`KorniaBatchAugment`), e.g. in a YAML config::

    data:
      init_args:
        augment:
          - class_path: kornia.augmentation.RandomAffine
            init_args: {degrees: 10, p: 1.0}
          - class_path: kornia.augmentation.ColorJiggle
            init_args: {brightness: 0.2, contrast: 0.2}

Both keep the same guarantees. Geometry is drawn once per sample and applied identically to every image and mask key
of a paired item, so ``real_a`` and ``real_b`` stay aligned; masks are resampled with nearest neighbour, so binary
masks stay binary (label maps likewise keep their class ids). For unpaired data each side (keys ending in ``_a`` /
``_b``) gets its own geometry. Photometric transforms are drawn independently for every image tensor and never touch
masks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation import AugmentationBase2D, IntensityAugmentationBase2D
from torch import nn

__all__ = ["AugmentSetting", "BatchAugment", "BatchAugmentBase", "KorniaBatchAugment", "build_batch_augment"]

#: Type of a DataModule's ``augment`` argument: off / the default :class:`BatchAugment` / a list of kornia transforms.
AugmentSetting = bool | list[AugmentationBase2D]


def _is_mask_key(key: str) -> bool:
    return key in ("mask", "label") or key.startswith(("mask_", "label_"))


def _is_spatial(key: str, value: Any) -> bool:
    if not isinstance(value, torch.Tensor):
        return False
    if key.startswith("real_") or key in ("mask",) or key.startswith("mask_"):
        return value.ndim == 4
    return _is_mask_key(key) and value.ndim == 3  # label maps (B, H, W) of class ids


def _as_mask(value: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) float view of a mask (B, 1, H, W) or label map (B, H, W), as kornia's mask path expects."""
    return (value.unsqueeze(1) if value.ndim == 3 else value).float()


class BatchAugmentBase(nn.Module):
    """Shared geometry (per item or per side) and per-image photometric augmentation of a batch dict.

    Images are ``real_*`` tensors (B, C, H, W) in [-1, 1] (C = 1 or 3); masks are ``mask`` / ``mask_*`` tensors
    (B, 1, H, W) with values {0, 1}; label maps are ``label`` / ``label_*`` integer tensors (B, H, W). Masks and label
    maps follow their images' geometry with nearest-neighbour resampling. Other keys pass through unchanged.
    Subclasses set :attr:`geometric` and implement :meth:`photometric`.

    Args:
        paired: One geometry for all keys of a sample (paired data); otherwise one per side (``_a`` / ``_b``; a bare
            ``mask`` goes with side a).
        jitter_keys: Image keys that get photometric augmentation (e.g. only ``("real_b",)`` when ``real_a`` is a
            label map).
    """

    def __init__(self, *, paired: bool = True, jitter_keys: Sequence[str] = ("real_a", "real_b")) -> None:
        super().__init__()
        self.paired = paired
        self.jitter_keys = tuple(jitter_keys)
        #: Geometric transforms sharing their parameters across the keys of one group (None: no geometry).
        self.geometric: K.AugmentationSequential | None = None

    def photometric(self, image: torch.Tensor) -> torch.Tensor:
        """Photometric augmentation of one image tensor (B, C, H, W) in [-1, 1]; returns the same shape and range."""
        return image

    def _geometry_groups(self, batch: dict[str, Any]) -> list[list[str]]:
        keys = [key for key, value in batch.items() if _is_spatial(key, value)]
        if self.paired:
            return [keys] if keys else []
        side_b = [k for k in keys if k.endswith("_b")]
        side_a = [k for k in keys if k not in side_b]
        return [group for group in (side_a, side_b) if group]

    def _apply_geometry(self, batch: dict[str, Any], keys: list[str]) -> None:
        # kornia wants an image first; masks are marked "mask" so they are resampled with nearest neighbour.
        keys = sorted(keys, key=_is_mask_key)
        if _is_mask_key(keys[0]):
            name = type(self).__name__
            raise ValueError(f"{name}: masks {keys} have no image key (real_*) to share geometry with.")
        data_keys = ["mask" if _is_mask_key(k) else "input" for k in keys]
        tensors = [_as_mask(batch[k]) if _is_mask_key(k) else batch[k] for k in keys]
        outputs = self.geometric(*tensors, data_keys=data_keys)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for key, out in zip(keys, outputs, strict=True):
            original = batch[key]
            out = out[:, 0] if original.ndim == 3 else out
            batch[key] = out.to(original.dtype) if original.is_floating_point() else out.round().to(original.dtype)

    def forward(self, batch: dict[str, Any], *, seed: int | None = None) -> dict[str, Any]:
        """Augment a batch.

        Args:
            batch: Batch dict; tensors must be on one device.
            seed: When given, the random draws come from this seed (the global RNG state is left untouched), so an
                augmented run is reproducible and resumable.

        Returns:
            A new dict with augmented ``real_*`` and ``mask_*`` / ``label_*`` tensors (same dtypes and value ranges;
            same shapes unless a transform crops or resizes).
        """
        batch = dict(batch)
        device = next((v.device for v in batch.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
        with self._seeded(seed, device):
            if self.geometric is not None:
                for keys in self._geometry_groups(batch):
                    self._apply_geometry(batch, keys)
            for key in self.jitter_keys:
                value = batch.get(key)
                if isinstance(value, torch.Tensor) and value.ndim == 4:
                    batch[key] = self.photometric(value)
        return batch

    @staticmethod
    @contextlib.contextmanager
    def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
        if seed is None:
            yield
            return
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.random.default_generator.manual_seed(seed)
            if devices:
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield


class BatchAugment(BatchAugmentBase):
    """Paired-consistent random affine (and optional flip) plus per-image colour jitter: ``augment: true``.

    See :class:`BatchAugmentBase` for the batch layout and the guarantees.

    Args:
        paired: One geometry for all keys of a sample (paired data); otherwise one per side (``_a`` / ``_b``; a bare
            ``mask`` goes with side a).
        flip_p: Probability of a horizontal flip (0 by default: the CPU pipeline already flips).
        degrees: Maximum rotation in degrees.
        translate: Maximum translation as a fraction of width and height.
        scale: Range of the isotropic scale factor.
        padding_mode: How pixels entering from outside are filled ("reflection", "border" or "zeros").
        brightness: Brightness jitter strength (kornia ``ColorJitter``), on images mapped to [0, 1].
        contrast: Contrast jitter strength.
        saturation: Saturation jitter strength (3-channel images only).
        hue: Hue jitter strength in [0, 0.5] (3-channel images only).
        jitter_p: Probability of jittering each image.
        jitter_keys: Image keys to jitter (e.g. only ``("real_b",)`` when ``real_a`` is a label map).
    """

    def __init__(
        self,
        *,
        paired: bool = True,
        flip_p: float = 0.0,
        degrees: float = 0.0,
        translate: float = 0.05,
        scale: tuple[float, float] = (0.9, 1.1),
        padding_mode: str = "reflection",
        brightness: float = 0.1,
        contrast: float = 0.1,
        saturation: float = 0.1,
        hue: float = 0.0,
        jitter_p: float = 0.5,
        jitter_keys: tuple[str, ...] = ("real_a", "real_b"),
    ) -> None:
        super().__init__(paired=paired, jitter_keys=jitter_keys)
        geometric: list[nn.Module] = []
        if flip_p > 0:
            geometric.append(K.RandomHorizontalFlip(p=flip_p))
        if degrees > 0 or translate > 0 or tuple(scale) != (1.0, 1.0):
            geometric.append(
                K.RandomAffine(
                    degrees=degrees,
                    translate=(translate, translate) if translate > 0 else None,
                    scale=tuple(scale) if tuple(scale) != (1.0, 1.0) else None,
                    padding_mode=padding_mode,
                    p=1.0,
                )
            )
        self.geometric = K.AugmentationSequential(*geometric) if geometric else None
        has_jitter = max(brightness, contrast, saturation, hue) > 0
        self.jitter_rgb = K.ColorJitter(brightness, contrast, saturation, hue, p=jitter_p) if has_jitter else None
        has_gray_jitter = max(brightness, contrast) > 0
        self.jitter_gray = K.ColorJitter(brightness, contrast, 0.0, 0.0, p=jitter_p) if has_gray_jitter else None

    def photometric(self, image: torch.Tensor) -> torch.Tensor:
        """Colour jitter of one image tensor (B, C, H, W) in [-1, 1] (saturation and hue only when C = 3)."""
        module = self.jitter_rgb if image.shape[1] == 3 else self.jitter_gray
        if module is None:
            return image
        return module((image + 1) / 2).clamp(0, 1) * 2 - 1


class KorniaBatchAugment(BatchAugmentBase):
    """Batch augmentation by a list of kornia transforms, e.g. read from a config's ``augment`` list.

    The list is split by kind, keeping its order within each kind: geometric transforms (every transform that is not
    a kornia ``IntensityAugmentationBase2D``: affine, flips, crops, perspective, elastic, ...) run first, with one
    parameter draw shared by all keys of an item (of a side, for unpaired data), masks and label maps resampled with
    nearest neighbour; then the photometric (intensity) transforms run on each image key on its own, on the image
    mapped to [0, 1] and clamped back to [-1, 1]. A 1-channel image is repeated to 3 channels for them and averaged
    back (colour-only changes such as saturation or hue then leave it unchanged). See :class:`BatchAugmentBase` for
    the batch layout.

    Args:
        transforms: kornia 2D augmentations (``kornia.augmentation.*``; mix augmentations such as ``RandomMixUpV2``
            are not supported: they would blend different items).
        paired: One geometry for all keys of a sample (paired data); otherwise one per side.
        jitter_keys: Image keys that get the photometric transforms.

    Raises:
        TypeError: an entry is not a kornia 2D augmentation.
    """

    def __init__(
        self,
        transforms: Sequence[nn.Module],
        *,
        paired: bool = True,
        jitter_keys: Sequence[str] = ("real_a", "real_b"),
    ) -> None:
        super().__init__(paired=paired, jitter_keys=jitter_keys)
        for transform in transforms:
            if not isinstance(transform, AugmentationBase2D):
                raise TypeError(
                    f"augment: {type(transform).__module__}.{type(transform).__name__} is not a kornia 2D "
                    "augmentation (expected a kornia.augmentation class such as RandomAffine or ColorJiggle)."
                )
        geometric = [t for t in transforms if not isinstance(t, IntensityAugmentationBase2D)]
        intensity = [t for t in transforms if isinstance(t, IntensityAugmentationBase2D)]
        self.geometric = K.AugmentationSequential(*geometric) if geometric else None
        self.intensity = K.AugmentationSequential(*intensity) if intensity else None

    def photometric(self, image: torch.Tensor) -> torch.Tensor:
        """The intensity transforms on one image tensor (B, C, H, W) in [-1, 1], C = 1 or 3; same shape and range."""
        if self.intensity is None:
            return image
        channels = image.shape[1]
        unit = (image + 1) / 2
        if channels == 1:
            unit = unit.expand(-1, 3, -1, -1)
        out = self.intensity(unit)
        if channels == 1:
            out = out.mean(dim=1, keepdim=True)
        return out.clamp(0, 1).to(image.dtype) * 2 - 1


def build_batch_augment(setting: AugmentSetting | None, *, paired: bool) -> BatchAugmentBase | None:
    """The augmentation a DataModule's ``augment`` argument asks for.

    Args:
        setting: ``False`` / ``None`` / ``[]``: none; ``True``: :class:`BatchAugment` with its defaults; a list of
            kornia transforms: :class:`KorniaBatchAugment`.
        paired: Whether both sides of an item share geometry (the DataModule's ``paired``).

    Returns:
        The module to call on training batches, or None.

    Note:
        Through the ``zoo`` command (LightningCLI) a DataModule records the list in its hyperparameters as the
        config's ``class_path`` / ``init_args`` entries; a DataModule built in Python with transform objects records
        their ``repr``. Either way checkpoints hold plain values and load with ``weights_only=True``.
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        return BatchAugment(paired=paired)
    if isinstance(setting, (list, tuple)):
        return KorniaBatchAugment(list(setting), paired=paired) if setting else None
    raise TypeError(f"augment must be true, false or a list of kornia transforms, got {type(setting).__name__}.")
