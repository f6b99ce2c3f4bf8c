"""Objectives over multi-scale discriminators with intermediate features (pix2pixHD, SPADE): the adversarial loss
summed over scales, and GAN feature matching.

A multi-scale discriminator returns, per scale, a list of block outputs whose last element is the score map
(:class:`zoo.nets.pix2pixhd.MultiscaleDiscriminator`). Losses are reduced in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.losses.adversarial import gan_loss

__all__ = ["feature_matching_loss", "multiscale_gan_loss"]


def _score_gan_loss(scores: Tensor, target_is_real: bool, *, use_lsgan: bool, probabilities: bool) -> Tensor:
    if use_lsgan:
        return gan_loss(scores, target_is_real, "lsgan")
    if probabilities:  # scores already went through a sigmoid: binary cross-entropy on probabilities
        scores = scores.float()
        return F.binary_cross_entropy(scores, torch.full_like(scores, 1.0 if target_is_real else 0.0))
    return gan_loss(scores, target_is_real, "vanilla")


def multiscale_gan_loss(predictions: Sequence[Sequence[Tensor]] | Sequence[Tensor], target_is_real: bool, *,
                        use_lsgan: bool = True, probabilities: bool = False) -> Tensor:
    """Adversarial loss of the score maps (the last output of each scale), summed over scales.

    Args:
        predictions: a discriminator's outputs, ``[[block outputs] per scale]``, or one scale's ``[block outputs]``.
        target_is_real: whether the target is the real label (1) or the fake one (0).
        use_lsgan: mean squared error to the label (pix2pixHD's default); else binary cross-entropy.
        probabilities: the scores are sigmoid outputs (binary cross-entropy on probabilities, as the official
            ``BCELoss``); else they are logits.

    Returns:
        0-d float32 tensor.
    """
    scales = predictions if isinstance(predictions[0], (list, tuple)) else [predictions]
    losses = [_score_gan_loss(outputs[-1], target_is_real, use_lsgan=use_lsgan, probabilities=probabilities)
              for outputs in scales]
    return sum(losses[1:], losses[0])


def feature_matching_loss(fake_outputs: Sequence[Sequence[Tensor]], real_outputs: Sequence[Sequence[Tensor]], *,
                          n_layers: int) -> Tensor:
    """GAN feature matching (pix2pixHD Eq. 4): L1 between the discriminator's intermediate features of the fake and
    of the real image, every block but the score map, weighted ``4 / (n_layers + 1)`` per layer and ``1 / num_D``
    per scale; the real features are targets (no gradient).

    Shapes: ``[[block outputs] per scale]`` for both. Returns a 0-d float32 tensor.
    """
    layer_weight = 4.0 / (n_layers + 1)
    scale_weight = 1.0 / len(fake_outputs)
    total = fake_outputs[0][0].new_zeros((), dtype=torch.float32)
    for fake, real in zip(fake_outputs, real_outputs, strict=True):
        for fake_feature, real_feature in zip(fake[:-1], real[:-1], strict=True):
            total = total + scale_weight * layer_weight * F.l1_loss(fake_feature.float(), real_feature.detach().float())
    return total
