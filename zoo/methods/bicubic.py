"""Bicubic interpolation: the baseline of every single-image super-resolution table.

The SR literature's "Bicubic" row (SRCNN, VDSR, EDSR, RCAN, SRGAN: Ledig et al., CVPR 2017, arXiv 1609.04802, Table 2)
is MATLAB ``imresize(LR, scale, 'bicubic')`` on the uint8 LR image, measured on the BT.601 Y channel with a
``scale``-pixel border removed. :class:`Bicubic` reproduces it with :func:`zoo.data.imresize` (bit-exact with MATLAB,
8-bit rounding after each of the two passes), so ``zoo test --config configs/bicubic.yaml`` prints the per-image and
mean PSNR/SSIM on Set5 x4: 28.43 dB as published.

Nothing is learned (``trainable = False``): there is no ``zoo fit`` for it, only ``zoo test`` / ``zoo validate`` and
``translate``. Config: ``configs/bicubic.yaml`` (Set5 x4), ``configs/tiny/bicubic.yaml`` (toy world).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import Tensor

from zoo.data.imresize import imresize
from zoo.methods._common import check_images
from zoo.methods._inference import InferenceModule
from zoo.methods.base import TranslationMethod
from zoo.metrics.report import SRMetrics
from zoo.registry import register_method

__all__ = ["Bicubic"]


class BicubicInference(InferenceModule):
    """MATLAB bicubic upscaling as :func:`zoo.data.imresize.imresize` computes it (float64, rows then columns,
    optionally rounded to 8-bit levels after each pass), in torch ops: (B, C, h, w) -> (B, C, s h, s w) in [0, 1].

    The tap indices and weights come from :func:`zoo.data.imresize.contributions` for the traced size, so the graph
    holds them as constants: one input size per graph.
    """

    static_shapes_only = ("bicubic computes its kernel weights in NumPy from the image size, so its graph holds one "
                          "size only: export it without dynamic shapes")

    def __init__(self, scale: int, quantize: bool) -> None:
        super().__init__()
        self.scale, self.levels = scale, 255.0 if quantize else None

    def forward(self, images: Tensor) -> Tensor:
        from zoo.data.imresize import contributions, output_size_for

        work = images.to(torch.float64)
        if self.levels is not None:
            work = torch.floor(work * self.levels + 0.5).clamp(0.0, self.levels)
        for dim in (2, 3):  # equal scales: rows first, as imresize
            length = int(images.shape[dim])
            indices, weights = contributions(length, output_size_for(length, float(self.scale)), float(self.scale))
            index = torch.from_numpy(indices).to(images.device)
            weight = torch.from_numpy(weights).to(images.device)
            shape = [1, 1, 1, 1]
            shape[dim] = weight.shape[0]
            out = weight[:, 0].reshape(shape) * work.index_select(dim, index[:, 0])
            for k in range(1, weight.shape[1]):  # in tap order, as imresize sums
                out = out + weight[:, k].reshape(shape) * work.index_select(dim, index[:, k])
            work = out if self.levels is None else torch.floor(out + 0.5).clamp(0.0, self.levels)
        if self.levels is not None:
            work = work / self.levels
        return work.to(images.dtype).clamp(0.0, 1.0)


@register_method("bicubic")
class Bicubic(TranslationMethod):
    """MATLAB-bicubic upscaling by ``scale`` (the SR baseline), with the SR test protocol in ``test_step``.

    Args:
        scale: Upscaling factor.
        channels: Channels of the input and output images (the resize itself works per channel).
        quantize: Round to 8 bits after each pass as MATLAB does on uint8 images (the published baseline); False
            resizes in float and only clips to the value range.
        crop_border: Border removed before measuring PSNR/SSIM in ``test_step`` (None: ``scale``).
    """

    trainable = False
    PAPER_METRICS = ("psnr", "ssim")
    optimizer_steps_per_iteration = 0
    directions = ("a2b",)
    DOMAIN_CHANNELS = ("channels", "channels")  # the resize keeps the channels

    def __init__(self, *, scale: int = 4, channels: int = 3, quantize: bool = True,
                 crop_border: int | None = None) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"Bicubic: scale must be a positive int, got {scale!r}.")
        if channels < 1:
            raise ValueError(f"Bicubic: channels must be >= 1, got {channels!r}.")
        self.save_hyperparameters()
        self.scale = scale
        self.val_metrics = SRMetrics(scale, crop_border)
        self.test_metrics = SRMetrics(scale, crop_border)

    def upscale(self, images: Tensor) -> Tensor:
        """(..., H, W) in [0, 1] -> (..., scale*H, scale*W) in [0, 1] by MATLAB bicubic."""
        out = imresize(images, self.scale, quantize=255 if self.hparams.quantize else None)
        return out.clamp_(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        """Model space: (B, C, H, W) in [-1, 1] -> (B, C, scale*H, scale*W) in [-1, 1]."""
        return self.upscale((x + 1) / 2) * 2 - 1

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """MATLAB bicubic in torch ops, for one input size (``zoo export`` without dynamic shapes)."""
        self.check_direction(direction)
        return BicubicInference(int(self.scale), bool(self.hparams.quantize))

    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None) -> Tensor:
        """Upscale a batch: (B, C, H, W) in [0, 1] -> (B, C, scale*H, scale*W) in [0, 1] (``seed`` is unused)."""
        check_images(images, self.input_channels(direction), self.size_multiple)
        with torch.inference_mode():
            return self.upscale(images)

    # ---------------------------------------------------------------- evaluation

    def _evaluate(self, metrics: SRMetrics, batch: dict[str, Any]) -> None:
        sr = self(batch["real_a"])
        metrics.update(sr, batch["real_b"], batch.get("path_b"), gray=batch.get("gray_b"))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(self.val_metrics, batch)

    def on_validation_epoch_end(self) -> None:
        self.val_metrics.finish(self, prefix="val", print_table=False)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """PSNR/SSIM of the upscaled LR (``real_a``) against the HR (``real_b``), per image."""
        self._evaluate(self.test_metrics, batch)

    def on_test_epoch_end(self) -> None:
        """Print the per-image table and the mean (rank zero) and log ``test/psnr``, ``test/ssim``."""
        self.test_metrics.finish(self, prefix="test")

    _NOT_TRAINABLE = "bicubic has nothing to train; evaluate it with `zoo test --config configs/bicubic.yaml`."

    def setup(self, stage: str) -> None:
        if stage == "fit":
            raise MisconfigurationException(self._NOT_TRAINABLE)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        raise MisconfigurationException(self._NOT_TRAINABLE)

    def configure_optimizers(self) -> list:
        return []
