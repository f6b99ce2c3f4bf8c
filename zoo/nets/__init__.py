"""Networks and building blocks shared by several methods."""

from zoo.nets.ema import ExponentialMovingAverage
from zoo.nets.factory import build_generator
from zoo.nets.init import init_weights
from zoo.nets.instaformer import InstaFormerGenerator
from zoo.nets.norm import NormType, get_norm_layer, norm_uses_bias
from zoo.nets.patch_discriminator import NLayerDiscriminator, PixelDiscriminator, build_discriminator
from zoo.nets.resnet_generator import ResnetBlock, ResnetGenerator
from zoo.nets.unet import UnetGenerator, UnetSkipConnectionBlock

__all__ = [
    "ExponentialMovingAverage",
    "NormType",
    "get_norm_layer",
    "norm_uses_bias",
    "init_weights",
    "InstaFormerGenerator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "build_generator",
    "build_discriminator",
]
