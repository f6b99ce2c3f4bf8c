"""Data: image and mask I/O, the official preprocessing, paired/unpaired datasets and DataModules, GPU augmentation.

The embedded toy world (``ToyPairedDataset``, ``ToyUnpairedDataset``, ...) is importable from here too; it is loaded
on first access only.
"""

from __future__ import annotations

import importlib
from typing import Any

from .augment import BatchAugment
from .datamodule import EpochDataset, EpochSampler, SizeGroupedBatchSampler, ZooDataModule
from .imresize import imresize
from .io import IMG_EXTENSIONS, ImageReadError, list_images, load_image, read_image, read_image_size, save_image
from .label_maps import LabelMapDataModule, LabelMapDataset
from .masked import MaskedDataModule, MaskedImageDataset
from .masks import read_mask
from .paired import PairedDataModule, PairedImageDataset
from .super_resolution import SRDataModule, SRImageDataset
from .transforms import PREPROCESS_OPTIONS, TransformParams, get_params, get_transform, item_rng
from .unpaired import UnpairedDataModule, UnpairedImageDataset

__all__ = [
    "BatchAugment",
    "EpochDataset",
    "EpochSampler",
    "IMG_EXTENSIONS",
    "ImageReadError",
    "LabelMapDataModule",
    "LabelMapDataset",
    "MaskedDataModule",
    "MaskedImageDataset",
    "PREPROCESS_OPTIONS",
    "PairedDataModule",
    "PairedImageDataset",
    "SRDataModule",
    "SRImageDataset",
    "SizeGroupedBatchSampler",
    "TransformParams",
    "UnpairedDataModule",
    "UnpairedImageDataset",
    "ZooDataModule",
    "get_params",
    "get_transform",
    "imresize",
    "item_rng",
    "list_images",
    "load_image",
    "read_image",
    "read_image_size",
    "read_mask",
    "save_image",
]

_TOY_NAMES = ("ToyPairedDataset", "ToyUnpairedDataset", "ToyMaskedDataset", "ToySRDataset", "ToyLabelMapDataset")


def __getattr__(name: str) -> Any:
    if name in _TOY_NAMES:
        return getattr(importlib.import_module(".toy_world", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
