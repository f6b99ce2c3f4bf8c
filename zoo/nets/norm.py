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

from torch import nn

NormType = Literal["batch", "instance", "syncbatch", "none"]

__all__ = ["NormType", "get_norm_layer", "norm_uses_bias"]


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
