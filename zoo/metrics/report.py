"""Per-image PSNR/SSIM bookkeeping for the test loop of super-resolution methods.

Typical use in a method::

    def on_test_epoch_start(self):
        self.test_metrics = SRMetrics(self.scale)

    def test_step(self, batch, batch_idx):
        sr = self(batch["real_a"])                                   # (B, C, s*h, s*w) in [-1, 1]
        self.test_metrics.update(sr, batch["real_b"], batch["path_b"], gray=batch.get("gray_b"))

    def on_test_epoch_end(self):
        self.test_metrics.finish(self, prefix="test")                # gathers ranks, logs, prints the table

Images are quantised to 8 bits before measuring, as the published MATLAB evaluations do on saved PNG files:
``uint8 = floor(clamp((x - lo) / (hi - lo), 0, 1) * 255 + 0.5)`` for a ``value_range`` of ``(lo, hi)``.

Distributed runs: every rank records the images it saw; :meth:`SRMetrics.sync` (called by :meth:`finish`) gathers the
records of all ranks with ``torch.distributed.all_gather_object`` and keeps one record per image name, which also
drops the copies that a distributed sampler pads the last batch with. Without an initialised process group it does
nothing. Means are over images (the literature's convention), not over pixels or batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .image_quality import psnr, ssim

__all__ = ["SRMetrics", "quantize"]

_LUMA = (0.299, 0.587, 0.114)


def quantize(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Float images in ``value_range`` -> uint8 grey levels, rounded half up and clipped (any shape)."""
    lo, hi = value_range
    unit = (images.detach().to(torch.float64) - lo) / (hi - lo)
    return torch.floor(unit.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)


def _is_rank_zero() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class SRMetrics:
    """Accumulates per-image PSNR / SSIM of super-resolved images, as SR papers report them.

    Args:
        scale: Upscaling factor (used for the default border and shown in the table).
        crop_border: Pixels removed from every side before measuring (None: ``scale``, the SR convention).
        y_channel: Measure on BT.601 studio-range Y (single-channel images on their grey values).
        value_range: Range of the float tensors given to :meth:`update`: ``(-1, 1)`` for zoo's model space (the
            default), ``(0, 1)`` for images from ``translate``.
    """

    def __init__(
        self,
        scale: int,
        crop_border: int | None = None,
        y_channel: bool = True,
        *,
        value_range: tuple[float, float] = (-1.0, 1.0),
    ) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"SRMetrics: scale must be a positive int, got {scale!r}.")
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"SRMetrics: value_range must be (low, high) with high > low, got {value_range!r}.")
        self.scale = scale
        self.crop_border = scale if crop_border is None else int(crop_border)
        self.y_channel = y_channel
        self.value_range = (lo, hi)
        self.records: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget every recorded image."""
        self.records = []

    def __len__(self) -> int:
        return len(self.records)

    def update(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        names: Sequence[str] | None = None,
        *,
        gray: Sequence[bool] | torch.Tensor | None = None,
    ) -> list[dict[str, Any]]:
        """Measure a batch and record one entry per image.

        Args:
            pred: Super-resolved images (B, C, H, W) (or one (C, H, W)), float in ``value_range``.
            target: Ground-truth HR images, same shape and range.
            names: One name per image (e.g. the batch's ``path_b``); None numbers them ``image_<k>``.
            gray: Per image, whether the HR file is single-channel (the batch's ``gray_b``): such images are compared
                on grey values (BT.601 luma with weights summing to 1, i.e. the grey level itself for replicated grey),
                as a single-channel file is in the MATLAB evaluation, even when the model works on 3 channels.

        Returns:
            The new records: ``{"name", "psnr", "ssim"}`` per image.
        """
        if pred.ndim == 3:
            pred, target = pred.unsqueeze(0), target.unsqueeze(0)
        if pred.ndim != 4 or pred.shape != target.shape:
            raise ValueError(
                f"SRMetrics.update: pred and target must be (B, C, H, W) of one shape, got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}."
            )
        batch = pred.shape[0]
        if names is None:
            names = [f"image_{len(self.records) + k}" for k in range(batch)]
        names = [str(n) for n in names]
        if len(names) != batch:
            raise ValueError(f"SRMetrics.update: {len(names)} names for {batch} images.")
        if gray is None:
            flags = [False] * batch
        else:
            flags = [bool(g) for g in (gray.tolist() if torch.is_tensor(gray) else gray)]
        if len(flags) != batch:
            raise ValueError(f"SRMetrics.update: {len(flags)} gray flags for {batch} images.")
        pred_q, target_q = quantize(pred, self.value_range), quantize(target.to(pred.device), self.value_range)
        new = []
        for k in range(batch):
            a, b = pred_q[k], target_q[k]
            if flags[k] and a.shape[0] == 3:
                a, b = _gray(a), _gray(b)
            options = dict(crop_border=self.crop_border, y_channel=self.y_channel)
            record = {"name": names[k], "psnr": float(psnr(a, b, **options)), "ssim": float(ssim(a, b, **options))}
            new.append(record)
        self.records.extend(new)
        return new

    def sync(self) -> None:
        """Gather the records of every rank (no-op without ``torch.distributed``) and keep one per image name."""
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self.records)
            merged = [record for part in gathered for record in part]
        else:
            merged = self.records
        unique: dict[str, dict[str, Any]] = {}
        for record in merged:
            unique.setdefault(record["name"], record)
        self.records = sorted(unique.values(), key=lambda r: r["name"])

    def compute(self) -> dict[str, float]:
        """Means over the recorded images: ``{"psnr": dB, "ssim": ..., "count": n}`` (of this rank unless synced)."""
        if not self.records:
            raise RuntimeError("SRMetrics.compute: no image was recorded (call update() first).")
        count = len(self.records)
        return {
            "psnr": sum(r["psnr"] for r in self.records) / count,
            "ssim": sum(r["ssim"] for r in self.records) / count,
            "count": count,
        }

    def table(self, title: str | None = None) -> str:
        """Per-image PSNR/SSIM and their mean, one line each, e.g. ``baby.png  PSNR 31.7845 dB  SSIM 0.8575``."""
        lines = [title] if title else []
        if not self.records:
            return "\n".join([*lines, "(no images)"])
        labels = [Path(r["name"]).name for r in self.records]
        width = max(len("mean"), *(len(label) for label in labels))
        for label, record in zip(labels, self.records, strict=True):
            lines.append(f"{label:<{width}}  PSNR {record['psnr']:8.4f} dB  SSIM {record['ssim']:.4f}")
        mean = self.compute()
        summary = f"PSNR {mean['psnr']:8.4f} dB  SSIM {mean['ssim']:.4f}  ({mean['count']} images)"
        lines.append(f"{'mean':<{width}}  {summary}")
        return "\n".join(lines)

    def finish(self, module: Any = None, *, prefix: str = "test", print_table: bool = True) -> dict[str, float]:
        """End of an evaluation loop: sync ranks, log ``<prefix>/psnr`` and ``<prefix>/ssim``, print, reset.

        Args:
            module: The LightningModule to log through (None: do not log).
            prefix: Metric-name prefix.
            print_table: Print :meth:`table` on rank zero.

        Returns:
            The means (see :meth:`compute`); an empty dict when no image was recorded.
        """
        self.sync()
        if not self.records:
            return {}
        mean = self.compute()
        if module is not None:
            # Every rank holds the same gathered values, so no further reduction is needed.
            module.log(f"{prefix}/psnr", mean["psnr"], sync_dist=False)
            module.log(f"{prefix}/ssim", mean["ssim"], sync_dist=False)
        if print_table and _is_rank_zero():
            border = f"{self.crop_border}-pixel border removed"
            space = "Y channel" if self.y_channel else "all channels"
            print(self.table(f"{prefix} x{self.scale} ({space}, {border}):"), flush=True)
        self.reset()
        return mean


def _gray(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> (1, H, W) float64 grey levels (BT.601 luma, weights summing to 1, not rounded) in [0, 1]."""
    r, g, b = image.to(torch.float64).unbind(0)
    return ((_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b) / 255.0).unsqueeze(0)
