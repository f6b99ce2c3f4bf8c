"""Adversarial objectives: LSGAN, vanilla (binary cross-entropy on logits), non-saturating (softplus) and WGAN, plus
the WGAN-GP penalty.

Losses are computed in float32 whatever the autocast dtype, so ``bf16-mixed``/``16-mixed`` training
reduces in full precision.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GANMode = Literal["lsgan", "vanilla", "wgangp", "nonsaturating"]
_GAN_MODES = ("lsgan", "vanilla", "wgangp", "nonsaturating")

__all__ = ["GANMode", "gan_loss", "GANLoss", "gradient_penalty"]


def gan_loss(prediction: Tensor, target_is_real: bool, mode: GANMode = "lsgan", *, real_label: float = 1.0,
             fake_label: float = 0.0) -> Tensor:
    """Adversarial loss of a discriminator output against a constant real/fake target.

    Args:
        prediction: raw discriminator output (logits), any shape, e.g. (B, 1, H', W') for a PatchGAN.
        target_is_real: whether the target is the real label.
        mode: ``lsgan`` (mean squared error to the label, Mao et al. 2017), ``vanilla`` (binary cross-entropy
            on logits; used with ``target_is_real=True`` for G this is the non-saturating loss) or ``wgangp``
            (``-mean`` for real, ``+mean`` for fake; the gradient penalty is separate) or ``nonsaturating``
            (``softplus(-x)`` for real, ``softplus(x)`` for fake, as CUT's option of that name).
        real_label: target value for real samples.
        fake_label: target value for fake samples.

    Returns:
        0-d float32 tensor (mean over all elements).

    Example:
        >>> gan_loss(torch.zeros(1, 1, 2, 2), True, "lsgan")
        tensor(1.)
    """
    prediction = prediction.float()
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    if mode == "nonsaturating":
        return F.softplus(-prediction if target_is_real else prediction).mean()
    target = torch.full_like(prediction, real_label if target_is_real else fake_label)
    if mode == "lsgan":
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    raise ValueError(f"gan mode must be one of {_GAN_MODES}; got {mode!r}")


class GANLoss(nn.Module):
    """Module form of :func:`gan_loss`; ``loss(prediction, target_is_real)``."""

    def __init__(self, mode: GANMode = "lsgan", *, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in _GAN_MODES:
            raise ValueError(f"gan mode must be one of {_GAN_MODES}; got {mode!r}")
        self.mode, self.real_label, self.fake_label = mode, real_label, fake_label

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        return gan_loss(prediction, target_is_real, self.mode, real_label=self.real_label, fake_label=self.fake_label)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, *, constant: float = 1.0,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty ``mean((||grad D(x_hat)||_2 - constant)^2)`` on random interpolates (Gulrajani et al. 2017).

    One mixing coefficient per sample; the norm is taken over all non-batch dimensions with a 1e-16
    stabiliser. The caller multiplies by the penalty weight (10 in the paper).

    Args:
        discriminator: network mapping (B, C, H, W) to any-shaped logits.
        real: (B, C, H, W) real samples.
        fake: (B, C, H, W) generated samples (detached by this function).
        constant: target gradient norm.
        generator: optional RNG for the mixing coefficients.

    Returns:
        0-d float32 tensor.
    """
    real, fake = real.detach(), fake.detach()
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype,
                       generator=generator)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = discriminator(interpolates)
    (grads,) = torch.autograd.grad(out.float().sum(), interpolates, create_graph=True)
    norms = (grads.float().flatten(1) + 1e-16).norm(2, dim=1)
    return ((norms - constant) ** 2).mean()
