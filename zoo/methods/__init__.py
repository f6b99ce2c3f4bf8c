"""Every method of zoo; importing a method file registers it (``zoo.registry.list_models()``).

:class:`TranslationMethod` (``zoo.methods.base``) states the contract every method meets and is the base class
of the methods built on it.
"""

from zoo.methods.base import TranslationMethod
from zoo.methods.bicubic import Bicubic
from zoo.methods.cut import CUT
from zoo.methods.cyclegan import CycleGAN
from zoo.methods.decent import DECENT
from zoo.methods.drit import DRIT
from zoo.methods.instaformer import InstaFormer
from zoo.methods.lomit import LOMIT
from zoo.methods.munit import MUNIT
from zoo.methods.pix2pix import Pix2Pix
from zoo.methods.pix2pixhd import Pix2PixHD
from zoo.methods.srgan import SRGAN, SRResNet
from zoo.methods.srunit import SRUNIT
from zoo.methods.vsait import VSAIT

__all__ = ["Bicubic", "CUT", "CycleGAN", "DECENT", "DRIT", "InstaFormer", "LOMIT", "MUNIT", "Pix2Pix", "Pix2PixHD",
           "SRGAN", "SRResNet", "SRUNIT", "TranslationMethod", "VSAIT"]
