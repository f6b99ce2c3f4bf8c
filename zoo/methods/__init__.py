"""Every method of zoo; importing a method file registers it (``zoo.registry.list_models()``)."""

from zoo.methods.cyclegan import CycleGAN
from zoo.methods.pix2pix import Pix2Pix

__all__ = ["CycleGAN", "Pix2Pix"]
