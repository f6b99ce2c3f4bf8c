"""Normalisation layers as the pix2pix/CycleGAN family defines them.

``batch`` is ``BatchNorm2d(affine=True, track_running_stats=True)``, ``instance`` is
``InstanceNorm2d(affine=False, track_running_stats=False)`` (no parameters, no buffers, per-image
statistics in train and eval mode alike; as :class:`ChannelsLastInstanceNorm2d`, which keeps channels-last
inputs in that layout), ``syncbatch`` is ``SyncBatchNorm`` and ``none`` puts an
``Identity`` in every norm slot so module indices (and therefore state-dict keys) stay the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormType = Literal["batch", "instance", "syncbatch", "none"]

__all__ = ["ChannelsLastInstanceNorm2d", "NormType", "get_norm_layer", "is_channels_last", "norm_uses_bias",
           "reproduce_single_image_gradient_defect"]

#: see :func:`reproduce_single_image_gradient_defect`
_FIX_SINGLE_IMAGE_GRADIENTS = True


@contextlib.contextmanager
def reproduce_single_image_gradient_defect() -> Iterator[None]:
    """Within this block, instance norm on one NCHW image takes whatever gradient layout arrives, as torch does.

    PyTorch's CPU ``instance_norm`` backward is wrong for a batch of one NCHW image when the incoming gradient is
    channels-last (e.g. what gathering feature patches with ``permute(0, 2, 3, 1)`` sends back, as CUT's PatchNCE
    does). :class:`ChannelsLastInstanceNorm2d` makes such gradients contiguous first, which gives the true gradient.
    Official code run on such a CPU computes the defective one; parity tests compare like with like in this block.
    """
    global _FIX_SINGLE_IMAGE_GRADIENTS
    previous, _FIX_SINGLE_IMAGE_GRADIENTS = _FIX_SINGLE_IMAGE_GRADIENTS, False
    try:
        yield
    finally:
        _FIX_SINGLE_IMAGE_GRADIENTS = previous


def _identity(num_features: int) -> nn.Module:
    return nn.Identity()


def get_norm_layer(norm: NormType) -> Callable[[int], nn.Module]:
    """Constructor ``f(num_features) -> nn.Module`` for the named normalisation."""
    if norm == "batch":
        return partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return partial(ChannelsLastInstanceNorm2d, affine=False, track_running_stats=False)
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
    one are the image's own statistics) gives the same result without the copies, and is faster. Running statistics,
    when tracked, move as torch moves them: by the batch average of the per-image mean and unbiased variance. Inputs
    in other formats take the torch path (for a single image with its gradient made NCHW: see
    :func:`reproduce_single_image_gradient_defect`).
    """

    def forward(self, x: Tensor) -> Tensor:
        if not is_channels_last(x):
            out = super().forward(x)
            if _FIX_SINGLE_IMAGE_GRADIENTS and x.shape[0] == 1 and out.requires_grad:
                # torch's backward mishandles a channels-last gradient for one NCHW image: hand it NCHW
                out.register_hook(lambda grad: grad.contiguous())
            return out
        if self.track_running_stats and not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if not self.track_running_stats:
            out = [F.batch_norm(image, None, None, self.weight, self.bias, training=True, eps=self.eps)
                   for image in x.split(1)]
            return out[0] if len(out) == 1 else torch.cat(out)
        # each image moves its own copy of the running statistics; their average is torch's update
        momentum = self.momentum if self.momentum is not None else 0.0
        means = self.running_mean.repeat(x.shape[0], 1)
        variances = self.running_var.repeat(x.shape[0], 1)
        out = [F.batch_norm(image, mean, var, self.weight, self.bias, True, momentum, self.eps)
               for image, mean, var in zip(x.split(1), means, variances, strict=True)]
        with torch.no_grad():
            self.running_mean.copy_(means.mean(0))
            self.running_var.copy_(variances.mean(0))
        return out[0] if len(out) == 1 else torch.cat(out)
