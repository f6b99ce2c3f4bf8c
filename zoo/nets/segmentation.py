"""A small semantic segmentation network, used by :mod:`zoo.metrics.semantic` to score translated images.

:class:`TinySegNet` is a three-level encoder-decoder (a miniature U-Net with a dilated bottleneck): fast enough to be
trained on the CPU in seconds on the toy world, with enough context (receptive field ≈ 60 pixels at the bottleneck)
to tell sky from building or road from sidewalk by position and texture. It is a measuring instrument, not a model
to translate with; any segmentation network with the same call signature can replace it.

:class:`TimmSegNet` is the alternative for a stronger instrument: a timm backbone created with
``features_only=True`` (e.g. ``resnet18`` or ``mobilenetv3_small_100``; random weights unless a local weights file is
given) and a light feature-pyramid decoder. :func:`build_segmenter` makes either from a backbone name.

Call contract: ``(B, 3, H, W)`` images in [0, 1] → ``(B, num_classes, H, W)`` logits, for any H, W (inputs whose
sides are not multiples of the network's stride are padded by reflection internally and the logits are cropped back).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TINYSEGNET", "TimmSegNet", "TinySegNet", "build_segmenter"]

#: Backbone name of :class:`TinySegNet` in :func:`build_segmenter` (any other name is a timm model).
TINYSEGNET = "tinysegnet"


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad (B, C, H, W) at the bottom and right so H and W are multiples of ``multiple`` (reflection when the
    image is large enough, else replication)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _check_images(images: Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name}: expected images of shape (B, 3, H, W); got {tuple(images.shape)}.")


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

    def encode(self, images: Tensor) -> dict[str, Tensor]:
        """Encoder feature maps of images ``(B, 3, H, W)`` in [0, 1] (padded to a multiple of 4):
        ``{"stem": (B, w, H, W), "down1": (B, 2w, H/2, W/2), "down2": (B, 4w, H/4, W/4)}``."""
        _check_images(images, "TinySegNet")
        stem = self.stem(_pad_to_multiple((images - 0.5) / 0.25, 4))
        down1 = self.down1(stem)
        return {"stem": stem, "down1": down1, "down2": self.down2(down1)}

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(B, num_classes, H, W)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        h, w = images.shape[-2:]
        features = self.encode(images)
        s1, s2, s3 = features["stem"], features["down1"], features["down2"]
        y = self.up2(torch.cat([F.interpolate(s3, size=s2.shape[-2:], mode="bilinear", align_corners=False), s2], 1))
        y = self.up1(torch.cat([F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False), s1], 1))
        return self.head(y)[..., :h, :w]


class TimmSegNet(nn.Module):
    """Semantic segmentation with a timm backbone (``features_only=True``) and a light feature-pyramid decoder.

    The backbone returns feature maps at several strides; their channel counts and strides are read from timm's
    ``feature_info`` (:attr:`feature_channels`, :attr:`feature_strides`). The decoder projects every map to
    ``decoder_channels`` with a ``1×1`` convolution, merges them from the coarsest down (bilinear upsampling and
    addition), refines the finest merged map with ``conv3×3 → BatchNorm → ReLU`` and predicts classes with a ``1×1``
    head; the logits are upsampled bilinearly to the input size. Inputs are standardised with the backbone's own
    mean and standard deviation (timm's ``pretrained_cfg``; ImageNet statistics for most models).

    Args:
        backbone: timm model name, e.g. ``"resnet18"``, ``"mobilenetv3_small_100"``, ``"efficientnet_b0"``.
        num_classes: Number of output classes (19 for Cityscapes train ids).
        decoder_channels: Channels of the decoder.
        out_indices: Backbone feature levels used (timm's ``out_indices``); None: every level timm offers.
        weights: Local file (safetensors or PyTorch state dict of the timm model, classifier keys allowed) loaded
            into the backbone; None: random initialisation (nothing is downloaded).

    Shape:
        ``(B, 3, H, W)`` in [0, 1] → ``(B, num_classes, H, W)`` logits.

    Example:
        >>> net = TimmSegNet("resnet18", num_classes=19, decoder_channels=16)
        >>> net(torch.rand(2, 3, 30, 34)).shape
        torch.Size([2, 19, 30, 34])
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        *,
        num_classes: int = 19,
        decoder_channels: int = 64,
        out_indices: Sequence[int] | None = None,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        import timm

        if num_classes < 2 or decoder_channels < 1:
            raise ValueError(f"TimmSegNet: num_classes must be >= 2 and decoder_channels >= 1; got {num_classes}, "
                             f"{decoder_channels}.")
        if not timm.is_model(backbone):
            raise ValueError(f"TimmSegNet: '{backbone}' is not a timm model (see timm.list_models()).")
        options: dict = {"features_only": True, "pretrained": False}
        if out_indices is not None:
            options["out_indices"] = tuple(out_indices)
        if weights is not None:
            if not Path(weights).is_file():
                raise FileNotFoundError(f"TimmSegNet: backbone weights file not found: {weights}")
            options.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
        self.backbone_name, self.num_classes = backbone, num_classes
        self.encoder = timm.create_model(backbone, **options)
        #: Channels and strides of the feature maps the encoder returns, from timm's ``feature_info``.
        self.feature_channels: list[int] = list(self.encoder.feature_info.channels())
        self.feature_strides: list[int] = list(self.encoder.feature_info.reduction())
        config = getattr(self.encoder, "pretrained_cfg", None) or {}
        mean, std = config.get("mean", (0.485, 0.456, 0.406)), config.get("std", (0.229, 0.224, 0.225))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.lateral = nn.ModuleList(nn.Conv2d(c, decoder_channels, 1) for c in self.feature_channels)
        self.refine = _conv(decoder_channels, decoder_channels)
        self.head = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(B, num_classes, H, W)`` of images ``(B, 3, H, W)`` in [0, 1]."""
        _check_images(images, "TimmSegNet")
        h, w = images.shape[-2:]
        x = _pad_to_multiple((images - self.mean) / self.std, max(self.feature_strides))
        features = self.encoder(x)  # coarsest last: [(B, C_i, H / s_i, W / s_i)]
        merged = self.lateral[-1](features[-1])
        for lateral, feature in zip(reversed(self.lateral[:-1]), reversed(features[:-1]), strict=True):
            merged = lateral(feature) + F.interpolate(merged, size=feature.shape[-2:], mode="bilinear",
                                                      align_corners=False)
        logits = self.head(self.refine(merged))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)[..., :h, :w]


def build_segmenter(
    backbone: str = TINYSEGNET, *, num_classes: int = 19, width: int = 16, weights: str | Path | None = None
) -> nn.Module:
    """A segmentation network by backbone name.

    Args:
        backbone: ``"tinysegnet"`` (:class:`TinySegNet`) or a timm model name (:class:`TimmSegNet`).
        num_classes: Number of output classes.
        width: :class:`TinySegNet` width, or the decoder channels of a :class:`TimmSegNet`.
        weights: Local weights file of a timm backbone (None: random initialisation).

    Returns:
        The network (``(B, 3, H, W)`` in [0, 1] → ``(B, num_classes, H, W)`` logits), in training mode.
    """
    if backbone == TINYSEGNET:
        if weights is not None:
            raise ValueError("build_segmenter: weights only apply to a timm backbone, not to tinysegnet.")
        return TinySegNet(num_classes=num_classes, width=width)
    return TimmSegNet(backbone, num_classes=num_classes, decoder_channels=width, weights=weights)
