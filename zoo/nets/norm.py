"""Normalisation layers as the pix2pix/CycleGAN family defines them.

``batch`` is ``BatchNorm2d(affine=True, track_running_stats=True)``, ``instance`` is
``InstanceNorm2d(affine=False, track_running_stats=False)`` (no parameters, no buffers, per-image
statistics in train and eval mode alike), ``syncbatch`` is ``SyncBatchNorm`` and ``none`` puts an
``Identity`` in every norm slot so module indices (and therefore state-dict keys) stay the same.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormType = Literal["batch", "instance", "syncbatch", "none"]

__all__ = ["ChannelsLastInstanceNorm2d", "NormType", "get_norm_layer", "is_channels_last", "keep_channels_last",
           "norm_uses_bias"]


def _identity(num_features: int) -> nn.Module:
    return nn.Identity()


def get_norm_layer(norm: NormType) -> Callable[[int], nn.Module]:
    """Constructor ``f(num_features) -> nn.Module`` for the named normalisation."""
    if norm == "batch":
        return partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "syncbatch":
        return partial(nn.SyncBatchNorm, affine=True, track_running_stats=True)
    if norm == "none":
        return _identity
    raise ValueError(f"norm must be one of 'batch', 'instance', 'syncbatch', 'none'; got {norm!r}")


def norm_uses_bias(norm: NormType) -> bool:
    """Whether a convolution followed by this norm carries a bias.

    The official rule only recognises instance norm: with ``batch``/``syncbatch`` the bias would be
    cancelled by the mean subtraction, and with ``none`` it is dropped too (a quirk kept for
    checkpoint compatibility).
    """
    get_norm_layer(norm)  # validates the name
    return norm == "instance"


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is a 4-D tensor laid out channels-last (and not also NCHW-contiguous, as 1x1 maps are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


class ChannelsLastInstanceNorm2d(nn.InstanceNorm2d):
    """``InstanceNorm2d`` (same state dict, same statistics) that keeps a channels-last input channels-last.

    torch's instance norm makes a channels-last input contiguous and returns NCHW, so every following layer converts
    back and forth; normalising each image with the channels-last batch-norm kernel (training statistics of a batch of
    one are the image's own statistics) gives the same result without the copies, and is faster. Inputs in other
    formats, and norms that track running statistics, take the torch path.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.track_running_stats and is_channels_last(x):
            out = [F.batch_norm(image, None, None, self.weight, self.bias, training=True, eps=self.eps)
                   for image in x.split(1)]
            return out[0] if len(out) == 1 else torch.cat(out)
        return super().forward(x)


def keep_channels_last(module: nn.Module) -> nn.Module:
    """Turn every ``nn.InstanceNorm2d`` inside ``module`` into a :class:`ChannelsLastInstanceNorm2d` (in place)."""
    for child in module.modules():
        if type(child) is nn.InstanceNorm2d:
            child.__class__ = ChannelsLastInstanceNorm2d
    return module
