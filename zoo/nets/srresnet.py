"""SRResNet generator and the VGG-style SRGAN discriminator (Ledig et al., CVPR 2017, Figure 4).

The module trees (and so the state-dict keys) are those of the PyTorch port the parity fixtures come from
(Lornatang/SRGAN-PyTorch, ``model.py``), so its published checkpoints load without renaming:

* generator: ``conv1.{0: Conv 9x9, 1: PReLU}``, ``trunk.<i>.rcb.{0: Conv, 1: BN, 2: PReLU, 3: Conv, 4: BN}``,
  ``conv2.{0: Conv, 1: BN}``, ``upsampling.<i>.upsample_block.{0: Conv, 1: PixelShuffle, 2: PReLU}``, ``conv3``;
* discriminator: ``features.<i>`` (8 convolutions with LeakyReLU 0.2, BN from the second on) and
  ``classifier.{0: Linear(8c * g * g, 1024), 1: LeakyReLU, 2: Linear(1024, out_channels)}``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "OutputActivation",
    "ResidualConvBlock",
    "SRGANDiscriminator",
    "SRResNetGenerator",
    "UpsampleBlock",
    "discriminator_grid",
    "upsampling_factors",
]

OutputActivation = Literal["none", "tanh", "clamp"]


def upsampling_factors(upscale: int) -> list[int]:
    """Factors of the sub-pixel stages for ``upscale``: ``log2(upscale)`` x2 stages, or one x3 stage.

    >>> upsampling_factors(8)
    [2, 2, 2]
    """
    if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 2:
        raise ValueError(f"upscale must be an int >= 2 (a power of two, or 3); got {upscale!r}")
    if upscale == 3:
        return [3]
    if upscale & (upscale - 1):
        raise ValueError(f"upscale must be a power of two (2, 4, 8, ...) or 3; got {upscale}")
    return [2] * int(math.log2(upscale))


def _prelu(channels: int, per_channel: bool) -> nn.PReLU:
    # The port uses one shared slope (nn.PReLU()); Lasagne, the paper's framework, learns one per channel.
    return nn.PReLU(channels if per_channel else 1, init=0.25)


class ResidualConvBlock(nn.Module):
    """conv 3x3 -> BN -> PReLU -> conv 3x3 -> BN, plus the block input (no activation after the sum).

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, prelu_per_channel: bool = False) -> None:
        super().__init__()
        self.rcb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            _prelu(channels, prelu_per_channel),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.rcb(x) + x


class UpsampleBlock(nn.Module):
    """Sub-pixel upsampling (Shi et al. 2016): conv 3x3 to ``C * f^2`` -> PixelShuffle(f) -> PReLU.

    Shape: (B, C, H, W) -> (B, C, f*H, f*W).
    """

    def __init__(self, channels: int, factor: int, *, prelu_per_channel: bool = False) -> None:
        super().__init__()
        self.upsample_block = nn.Sequential(
            nn.Conv2d(channels, channels * factor * factor, 3, 1, 1),
            nn.PixelShuffle(factor),
            _prelu(channels, prelu_per_channel),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.upsample_block(x)


class SRResNetGenerator(nn.Module):
    """The SRResNet / SRGAN generator G (paper Figure 4, B residual blocks).

    Args:
        in_channels: channels of the LR input.
        out_channels: channels of the SR output.
        channels: feature width (64 in the paper).
        num_rcb: number of residual blocks B (16 in the paper).
        upscale: magnification; a power of two (one x2 sub-pixel stage each) or 3 (one x3 stage).
        prelu_per_channel: one PReLU slope per channel (Lasagne) instead of one per layer (the port).
        output_activation: ``none`` (paper Figure 4: the last conv is linear), ``tanh``, or ``clamp`` (the port:
            in-place clamp to [0, 1], which also zeroes the gradient outside that range).

    Shape:
        (B, in_channels, H, W), LR in [0, 1] (paper Sec. 3.2) -> (B, out_channels, upscale*H, upscale*W), HR in
        [-1, 1] with ``none``/``tanh`` (paper) or [0, 1] with ``clamp`` (the port).
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, channels: int = 64, num_rcb: int = 16,
                 upscale: int = 4, prelu_per_channel: bool = False,
                 output_activation: OutputActivation = "none") -> None:
        super().__init__()
        if output_activation not in ("none", "tanh", "clamp"):
            raise ValueError(f"output_activation must be 'none', 'tanh' or 'clamp'; got {output_activation!r}")
        if num_rcb < 0:
            raise ValueError(f"num_rcb must be >= 0; got {num_rcb}")
        self.upscale = upscale
        self.output_activation = output_activation
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), _prelu(channels, prelu_per_channel))
        self.trunk = nn.Sequential(*[ResidualConvBlock(channels, prelu_per_channel=prelu_per_channel)
                                     for _ in range(num_rcb)])
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.upsampling = nn.Sequential(*[UpsampleBlock(channels, f, prelu_per_channel=prelu_per_channel)
                                          for f in upsampling_factors(upscale)])
        self.conv3 = nn.Conv2d(channels, out_channels, 9, 1, 4)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The port's initialisation: Kaiming-normal convolutions (fan-in), zero biases, BN gamma 1 and beta 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        features = self.conv1(x)
        x = self.conv2(self.trunk(features)) + features  # the long skip over all residual blocks
        x = self.conv3(self.upsampling(x))
        if self.output_activation == "tanh":
            return torch.tanh(x)
        if self.output_activation == "clamp":
            return x.clamp(0.0, 1.0)
        return x


def discriminator_grid(image_size: int) -> int:
    """Side of the discriminator's last feature map for ``image_size`` inputs (four stride-2 3x3 convs).

    >>> discriminator_grid(96)
    6
    """
    grid = image_size
    for _ in range(4):
        grid = (grid - 1) // 2 + 1
    return grid


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator D (paper Figure 4): eight 3x3 convolutions, then two dense layers.

    Widths ``c, c, 2c, 2c, 4c, 4c, 8c, 8c`` with strides ``1, 2, 1, 2, ...``; LeakyReLU(0.2) everywhere; BatchNorm
    after every conv but the first (those convs carry no bias, as in the port). The 8c x g x g map is flattened
    into a dense layer of 1024 units, LeakyReLU, and a dense layer to ``out_channels`` logits (the sigmoid of the
    paper is folded into the BCE-with-logits loss).

    Args:
        in_channels: channels of the judged HR images.
        out_channels: number of logits (1 in the paper).
        channels: base width c (64 in the paper).
        image_size: side of the (square) HR crops D judges; fixes the dense layer's input ``8c * g * g`` with
            g = ``discriminator_grid(image_size)`` (6 for the paper's 96 x 96 crops). ``None``: adaptive average
            pooling to the 6 x 6 grid first, so any input size works with the weights of a 96 x 96 discriminator
            (a zoo extension; at 96 x 96 the pooling is the identity).

    Shape:
        (B, in_channels, image_size, image_size) -> (B, out_channels) logits.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 1, channels: int = 64,
                 image_size: int | None = 96) -> None:
        super().__init__()
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be a positive int or None; got {image_size}")
        self.image_size = image_size
        widths = [channels, channels, 2 * channels, 2 * channels, 4 * channels, 4 * channels, 8 * channels,
                  8 * channels]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, 8):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 3, 2 if i % 2 else 1, 1, bias=False),
                       nn.BatchNorm2d(widths[i]), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        grid = discriminator_grid(image_size) if image_size is not None else 6
        self.pool = nn.AdaptiveAvgPool2d(grid) if image_size is None else None
        self.classifier = nn.Sequential(nn.Linear(8 * channels * grid * grid, 1024), nn.LeakyReLU(0.2, True),
                                        nn.Linear(1024, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"this discriminator judges {self.image_size}x{self.image_size} images (its dense layer "
                             f"fixes the size), got {tuple(x.shape)}; crop the HR images to that size or build it "
                             "with image_size=None")
        x = self.features(x)
        if self.pool is not None:
            x = self.pool(x)
        return self.classifier(torch.flatten(x, 1))
