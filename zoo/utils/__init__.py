"""Small helpers shared by the command line, callbacks and notebooks."""

from zoo.utils.tiling import Padding, crop_padding, pad_to_multiple, translate_any_size, translate_tiled

__all__ = ["Padding", "crop_padding", "pad_to_multiple", "translate_any_size", "translate_tiled"]
