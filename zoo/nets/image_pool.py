"""Image history buffer (Shrivastava et al. 2017) feeding past generated images to a discriminator, as the official
``util/image_pool.py`` of CycleGAN/pix2pix and pix2pixHD behaves."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor

__all__ = ["ImagePool"]


class ImagePool:
    """History of generated images fed to the discriminator.

    Per image of the batch: while fewer than ``pool_size`` images are stored, store and return it; once
    full, with probability 1/2 return a stored image (and store the new one in its place), otherwise
    return the new image. ``pool_size=0`` returns the batch untouched. Images are stored detached.

    Args:
        pool_size: number of stored images.
        rng: random source (its state is saved with the checkpoint for exact resumption).
    """

    def __init__(self, pool_size: int, rng: random.Random) -> None:
        self.pool_size = pool_size
        self.rng = rng
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W), mixing in stored images once the pool is full."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                j = self.rng.randint(0, self.pool_size - 1)
                out.append(self.images[j].clone())
                self.images[j] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"images": [img.cpu() for img in self.images], "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.images = [img.to(device) for img in state["images"]]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
