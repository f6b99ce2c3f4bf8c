"""Data: image and mask I/O, the official preprocessing, paired/unpaired datasets and DataModules, GPU augmentation,
object boxes (:mod:`zoo.data.boxes`, :class:`BoxDataModule`).

The embedded toy world (``ToyPairedDataset``, ``ToyUnpairedDataset``, ...) is importable from here too; it is loaded
on first access only.
"""

from __future__ import annotations

import importlib
from typing import Any

from .augment import BatchAugment
from .boxed import BoxDataModule, BoxImageDataset
from .boxes import TOY_CLASSES, fit_boxes, pad_boxes, read_box_file, read_coco, read_init, write_box_file
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
    "BoxDataModule",
    "BoxImageDataset",
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
    "TOY_CLASSES",
    "TransformParams",
    "UnpairedDataModule",
    "UnpairedImageDataset",
    "ZooDataModule",
    "fit_boxes",
    "get_params",
    "get_transform",
    "imresize",
    "item_rng",
    "list_images",
    "load_image",
    "pad_boxes",
    "read_box_file",
    "read_coco",
    "read_image",
    "read_image_size",
    "read_init",
    "read_mask",
    "save_image",
    "write_box_file",
]

_TOY_NAMES = ("ToyPairedDataset", "ToyUnpairedDataset", "ToyMaskedDataset", "ToySRDataset", "ToyLabelMapDataset")


def __getattr__(name: str) -> Any:
    if name in _TOY_NAMES:
        return getattr(importlib.import_module(".toy_world", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
