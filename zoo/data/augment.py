"""Optional batch augmentation on the GPU with kornia (off by default; not part of the official pipelines).

:class:`BatchAugment` runs after a batch reached its device (``ZooDataModule.on_after_batch_transfer``, training
batches only). Geometry (random affine, optional flip) is drawn once per sample and applied identically to every image
and mask key of a paired item, so ``real_a`` and ``real_b`` stay aligned; masks are resampled with nearest neighbour,
so binary masks stay binary (label maps likewise keep their class ids). For unpaired data each side (keys ending in
``_a`` / ``_b``) gets its own geometry.
Photometric jitter is drawn independently for every image tensor and never touches masks.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kornia.augmentation as K
import torch
from torch import nn

__all__ = ["BatchAugment"]


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


class BatchAugment(nn.Module):
    """Paired-consistent geometric and per-image photometric augmentation of a batch dict.

    Images are ``real_*`` tensors (B, C, H, W) in [-1, 1] (C = 1 or 3); masks are ``mask`` / ``mask_*`` tensors
    (B, 1, H, W) with values {0, 1}; label maps are ``label`` / ``label_*`` integer tensors (B, H, W). Masks and label
    maps follow their images' geometry with nearest-neighbour resampling. Other keys pass through unchanged.

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
        super().__init__()
        self.paired = paired
        self.jitter_keys = tuple(jitter_keys)
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
            raise ValueError(f"BatchAugment: masks {keys} have no image key (real_*) to share geometry with.")
        data_keys = ["mask" if _is_mask_key(k) else "input" for k in keys]
        tensors = [_as_mask(batch[k]) if _is_mask_key(k) else batch[k] for k in keys]
        outputs = self.geometric(*tensors, data_keys=data_keys)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for key, out in zip(keys, outputs, strict=True):
            original = batch[key]
            out = out[:, 0] if original.ndim == 3 else out
            batch[key] = out.to(original.dtype) if original.is_floating_point() else out.round().to(original.dtype)

    def _jitter(self, image: torch.Tensor) -> torch.Tensor:
        module = self.jitter_rgb if image.shape[1] == 3 else self.jitter_gray
        if module is None:
            return image
        return module((image + 1) / 2).clamp(0, 1) * 2 - 1

    def forward(self, batch: dict[str, Any], *, seed: int | None = None) -> dict[str, Any]:
        """Augment a batch.

        Args:
            batch: Batch dict; tensors must be on one device.
            seed: When given, the random draws come from this seed (the global RNG state is left untouched), so an
                augmented run is reproducible and resumable.

        Returns:
            A new dict with augmented ``real_*`` and ``mask_*`` tensors (same shapes, dtypes and value ranges).
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
                    batch[key] = self._jitter(value)
        return batch

    @staticmethod
    @contextlib.contextmanager
    def _seeded(seed: int | None, device: torch.device):
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
