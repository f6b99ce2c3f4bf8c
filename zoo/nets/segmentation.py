"""A small semantic segmentation network, used by :mod:`zoo.metrics.semantic` to score translated images.

:class:`TinySegNet` is a three-level encoder-decoder (a miniature U-Net with a dilated bottleneck): fast enough to be
trained on the CPU in seconds on the toy world, with enough context (receptive field ≈ 60 pixels at the bottleneck)
to tell sky from building or road from sidewalk by position and texture. It is a measuring instrument, not a model
to translate with; any segmentation network with the same call signature can replace it.

Call contract: ``(B, 3, H, W)`` images in [0, 1] → ``(B, num_classes, H, W)`` logits, for any H, W (inputs whose
sides are not multiples of 4 are padded by reflection internally and the logits are cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TinySegNet"]


def _conv(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3×3 convolution (same padding) → BatchNorm → ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinySegNet(nn.Module):
    """Miniature U-Net for semantic segmentation.

    Layout (``w`` = ``width``): stem ``2 × conv(3→w)`` at full resolution; ``conv(w→2w, stride 2) + conv`` at 1/2;
    ``conv(2w→4w, stride 2)`` then convolutions dilated 2, 4 and 1 at 1/4; decoder: bilinear ×2, concatenation with
    the skip, ``conv`` (twice per level); ``1×1`` head to ``num_classes``. Inputs are standardised with fixed
    per-channel statistics (0.5, 0.25) before the stem.

    Args:
        num_classes: Number of output classes (19 for Cityscapes train ids).
        width: Channels of the full-resolution stage; the deeper stages use 2× and 4×.

    Shape:
        ``(B, 3, H, W)`` in [0, 1] → ``(B, num_classes, H, W)`` logits.

    Example:
        >>> net = TinySegNet(num_classes=19, width=8)
        >>> net(torch.rand(2, 3, 30, 34)).shape
        torch.Size([2, 19, 30, 34])
    """

    def __init__(self, *, num_classes: int = 19, width: int = 16) -> None:
        super().__init__()
        if num_classes < 2 or width < 1:
            raise ValueError(f"TinySegNet: num_classes must be >= 2 and width >= 1; got {num_classes}, {width}.")
        self.num_classes, self.width = num_classes, width
        w = width
        self.stem = nn.Sequential(_conv(3, w), _conv(w, w))
        self.down1 = nn.Sequential(_conv(w, 2 * w, stride=2), _conv(2 * w, 2 * w))
        self.down2 = nn.Sequential(
            _conv(2 * w, 4 * w, stride=2), _conv(4 * w, 4 * w, dilation=2), _conv(4 * w, 4 * w, dilation=4),
            _conv(4 * w, 4 * w),
        )
        self.up2 = nn.Sequential(_conv(6 * w, 2 * w), _conv(2 * w, 2 * w))
        self.up1 = nn.Sequential(_conv(3 * w, w), _conv(w, w))
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(B, num_classes, H, W)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"TinySegNet: expected images of shape (B, 3, H, W); got {tuple(images.shape)}.")
        h, w = images.shape[-2:]
        pad_h, pad_w = -h % 4, -w % 4
        x = (images - 0.5) / 0.25
        if pad_h or pad_w:
            mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        s1 = self.stem(x)
        s2 = self.down1(s1)
        s3 = self.down2(s2)
        y = self.up2(torch.cat([F.interpolate(s3, size=s2.shape[-2:], mode="bilinear", align_corners=False), s2], 1))
        y = self.up1(torch.cat([F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False), s1], 1))
        return self.head(y)[..., :h, :w]
