"""Losses shared by several methods (function + module pairs)."""

from zoo.losses.adversarial import GANLoss, GANMode, gan_loss, gradient_penalty
from zoo.losses.checks import check_finite

__all__ = ["GANLoss", "GANMode", "gan_loss", "gradient_penalty", "check_finite"]
