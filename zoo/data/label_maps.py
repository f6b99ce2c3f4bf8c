"""Semantic label maps (+ instance maps) paired with photos, for pix2pixHD-style methods: dataset and DataModule.

Two folder layouts are read:

- ``pix2pixhd`` (the official repository's ``datasets/cityscapes``): ``<root>/<phase>_label``, ``<root>/<phase>_inst``
  and ``<root>/<phase>_img`` (phase ``train``, ``val``, ``test``). Files are matched by their path relative to the
  folder, without the extension and without the Cityscapes suffixes ``_gtFine_labelIds``, ``_gtFine_instanceIds``,
  ``_leftImg8bit`` (and ``_gtFine_color``). With ``label_nc=0`` the official folders ``<phase>_A`` / ``<phase>_B`` are
  read instead when ``<phase>_A`` exists.
- ``cityscapes`` (the official Cityscapes download): ``<root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` and
  ``..._gtFine_instanceIds.png``, ``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` (with ``label_nc=0``
  the input is ``..._gtFine_color.png``).

Items (dicts) are what a pix2pixHD model consumes:

- ``real_a``: (1, H, W) float32 in [-1, 1], the 8-bit label map read like a grayscale image (``id / 255 * 2 - 1``);
  ``round((real_a + 1) / 2 * 255)`` recovers the ids. With ``label_nc=0`` the input is an RGB image (3, H, W).
- ``instance``: (1, H, W) float32 instance ids as stored (Cityscapes: a label id for stuff, ``label * 1000 + k`` for
  instance k of a thing class); absent with ``instances=False``.
- ``real_b``: (3, H, W) float32 in [-1, 1], the photo; absent when the phase has no photo folder (e.g. the official
  ``test_label`` / ``test_inst`` without ``test_img``).
- ``label``: (H, W) int64 Cityscapes train ids (255 = ignore) of the label map, for semantic metrics; present when
  ``label_nc == 35`` (the label ids are then taken to be Cityscapes ids; ids above 33 count as ignored).
- ``path_a`` (the label file), ``path_b`` (the photo, when present); prediction items add ``relpath_a`` /
  ``relpath_b`` relative to their folders.

Preprocessing follows the official ``data/base_dataset.py`` of pix2pixHD, with one draw of
:func:`~zoo.data.transforms.get_params` per item shared by label, instance and photo: ``resize*`` resizes to
``load_size`` square; ``scale_width*`` makes the width ``load_size`` (height ``int(load_size * h / w)``, no minimum,
unlike pix2pix); ``*crop*`` crops ``fine_size`` square when a side exceeds it; ``none`` resizes each side to
``round(side / size_multiple) * size_multiple``; then the horizontal flip (training only, unless ``no_flip``). Label
and instance maps are resampled NEAREST (ids are never blended), photos BICUBIC.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .augment import AugmentSetting
from .datamodule import EpochDataset, ToyAdapter, ToyPredictItems, ZooDataModule, pick_phase, relative_name
from .io import ImageReadError, list_images, load_image, read_image_size
from .transforms import TransformParams, get_params, to_model_tensor

__all__ = [
    "CITYSCAPES_LABEL_NC",
    "LABEL_MAP_LAYOUTS",
    "RESIZE_OR_CROP_OPTIONS",
    "LabelMapDataModule",
    "LabelMapDataset",
    "preprocess_label_map_image",
    "read_ids",
]

LABEL_MAP_LAYOUTS = ("pix2pixhd", "cityscapes")

#: The official pix2pixHD ``--resize_or_crop`` choices.
RESIZE_OR_CROP_OPTIONS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")

#: ``label_nc`` of Cityscapes label ids (0-33, plus the license plate slot): items then carry ``label`` train ids.
CITYSCAPES_LABEL_NC = 35

_LABEL_SUFFIX, _INSTANCE_SUFFIX, _PHOTO_SUFFIX, _COLOR_SUFFIX = (
    "_gtFine_labelIds", "_gtFine_instanceIds", "_leftImg8bit", "_gtFine_color"
)
_SUFFIXES = (_LABEL_SUFFIX, _INSTANCE_SUFFIX, _PHOTO_SUFFIX, _COLOR_SUFFIX)
_NUM_CITYSCAPES_IDS = 34
_ID_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")

_PIX2PIXHD_URL = "https://github.com/NVIDIA/pix2pixHD (datasets/cityscapes)"
_CITYSCAPES_URL = "https://www.cityscapes-dataset.com (gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip)"


def _check_options(*, layout: str, label_nc: int, resize_or_crop: str, load_size: int, fine_size: int,
                   size_multiple: int) -> None:
    if layout not in LABEL_MAP_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LABEL_MAP_LAYOUTS)}, got '{layout}'.")
    if isinstance(label_nc, bool) or not isinstance(label_nc, int) or not 0 <= label_nc <= 256:
        raise ValueError(f"label_nc must be an int in 0..256 (0: the input is an RGB image), got {label_nc!r}.")
    if resize_or_crop not in RESIZE_OR_CROP_OPTIONS:
        raise ValueError(
            f"Unknown resize_or_crop '{resize_or_crop}'; expected one of {', '.join(RESIZE_OR_CROP_OPTIONS)}."
        )
    for name, value in (("load_size", load_size), ("fine_size", fine_size), ("size_multiple", size_multiple)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if resize_or_crop in ("resize_and_crop", "scale_width_and_crop") and load_size < fine_size:
        raise ValueError(
            f"load_size ({load_size}) must be >= fine_size ({fine_size}) for resize_or_crop '{resize_or_crop}'."
        )


# --------------------------------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------------------------------


def preprocess_label_map_image(
    image: Image.Image,
    *,
    resize_or_crop: str,
    load_size: int,
    fine_size: int,
    size_multiple: int = 16,
    params: TransformParams,
    flip: bool,
    resample: Image.Resampling,
) -> Image.Image:
    """One image of an item through the official pix2pixHD geometry (resize, crop, multiple-of, flip).

    Args:
        image: PIL image (label map ``L``, instance map ``I``, photo ``RGB``).
        resize_or_crop: One of :data:`RESIZE_OR_CROP_OPTIONS`.
        load_size: Square side (``resize*``) or width (``scale_width*``).
        fine_size: Crop side (``*crop*``).
        size_multiple: Sides become multiples of this with ``none``.
        params: Crop position and flip from :func:`~zoo.data.transforms.get_params` (one draw for the whole item).
        flip: Whether flipping is enabled (training without ``no_flip``); ``params.flip`` then decides.
        resample: ``Image.Resampling.NEAREST`` for label and instance maps, ``BICUBIC`` for photos.

    Returns:
        The transformed PIL image, in the mode of ``image``.
    """
    if "resize" in resize_or_crop:
        image = image.resize((load_size, load_size), resample)
    elif "scale_width" in resize_or_crop:
        w, h = image.size
        if w != load_size:
            image = image.resize((load_size, int(load_size * h / w)), resample)
    if "crop" in resize_or_crop:
        w, h = image.size
        if w > fine_size or h > fine_size:  # as the official __crop (PIL pads a box outside the image with zeros)
            x, y = params.crop_pos
            image = image.crop((x, y, x + fine_size, y + fine_size))
    if resize_or_crop == "none":
        w, h = image.size
        new_w, new_h = int(round(w / size_multiple) * size_multiple), int(round(h / size_multiple) * size_multiple)
        if new_w < 1 or new_h < 1:
            raise ValueError(
                f"A {w}x{h} image rounds to {new_w}x{new_h} with resize_or_crop 'none' and size_multiple "
                f"{size_multiple}; lower size_multiple."
            )
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample)
    if flip and params.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def read_ids(path: str | os.PathLike[str], what: str, *, hint: str = "") -> np.ndarray:
    """Integer ids of a single-channel label or instance file (8- or 16-bit grayscale, or palette indices), as
    stored: (H, W) int64. ``what`` names the file in errors, ``hint`` ends a wrong-mode error.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not single-channel.
        ImageReadError: Pillow cannot read it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file '{path}' does not exist.")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in _ID_MODES:
                raise ValueError(f"{what} '{path}' has PIL mode {image.mode}; it must hold single-channel integer ids "
                                 f"(8- or 16-bit grayscale or palette indices).{hint}")
            return np.asarray(image).astype(np.int64)  # I;16B is big-endian uint16: astype makes it native
    except UnidentifiedImageError as error:
        raise ImageReadError(f"Cannot read image '{path}': not an image file Pillow can identify.") from error
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"Cannot read image '{path}': {error}.") from error


def _id_tensor(ids: np.ndarray) -> torch.Tensor:
    """(1, H, W) float32 tensor of integer ids."""
    return torch.from_numpy(ids.astype(np.float32)).unsqueeze(0)


def _train_ids(ids: np.ndarray) -> torch.Tensor:
    """(H, W) int64 Cityscapes train ids of label ids; ids outside 0..33 count as ignored (255)."""
    from .toy_world.labels import label_to_train_id  # the class table; imported lazily with the toy world

    ids = torch.from_numpy(ids.astype(np.int64))
    return label_to_train_id(torch.where(ids < _NUM_CITYSCAPES_IDS, ids, 0))


# --------------------------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMapFiles:
    """The files of one item: label map, instance map (or None) and photo (or None)."""

    label: Path
    instance: Path | None
    photo: Path | None

    def paths(self) -> tuple[Path, ...]:
        return tuple(path for path in (self.label, self.instance, self.photo) if path is not None)


def _key(path: Path, folder: Path) -> str:
    """Matching key: the path relative to ``folder`` without extension and without a Cityscapes suffix."""
    key = path.relative_to(folder).with_suffix("").as_posix()
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _keyed(folder: Path, paths: list[Path], suffix: str | None) -> dict[str, Path]:
    """``paths`` by matching key; with ``suffix`` only the files whose name (without extension) ends with it."""
    table: dict[str, Path] = {}
    for path in paths:
        if suffix is not None and not path.with_suffix("").name.endswith(suffix):
            continue
        key = _key(path, folder)
        if key in table:
            raise ValueError(f"Two images share the name '{key}' in '{folder}': '{table[key].name}', '{path.name}'.")
        table[key] = path
    return table


def _layout_help(root: Path | str, layout: str) -> str:
    if layout == "pix2pixhd":
        return (
            f"Expected the official pix2pixHD layout: label maps in '{root}/train_label', instance maps in "
            f"'{root}/train_inst' and photos in '{root}/train_img' (likewise test_* / val_*; test_img is optional), "
            f"matched by name without the suffixes {', '.join(_SUFFIXES)} (see {_PIX2PIXHD_URL}). "
            "Pass --data.root=null to use the embedded toy world instead."
        )
    return (
        f"Expected the Cityscapes layout: '{root}/gtFine/<split>/<city>/<name>_gtFine_labelIds.png' and "
        f"'..._gtFine_instanceIds.png', and photos '{root}/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png' "
        f"(split train, val or test; from {_CITYSCAPES_URL}). Pass --data.root=null to use the embedded toy world "
        "instead."
    )


def phase_folders(root: str | Path, layout: str, phase: str, label_nc: int) -> tuple[Path, Path, Path]:
    """(label, instance, photo) folders of ``phase`` under ``root`` for ``layout`` (they need not exist)."""
    root = Path(root)
    if layout == "cityscapes":
        return root / "gtFine" / phase, root / "gtFine" / phase, root / "leftImg8bit" / phase
    if label_nc == 0 and (root / f"{phase}_A").is_dir():
        return root / f"{phase}_A", root / f"{phase}_inst", root / f"{phase}_B"
    return root / f"{phase}_label", root / f"{phase}_inst", root / f"{phase}_img"


def _unmatched(labels: dict[str, Path], others: dict[str, Path], *, label_dir: Path, other_dir: Path,
               what: str, hint: str) -> None:
    missing = sorted(set(labels) - set(others))
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(labels)} label map(s) in '{label_dir}' have no {what} in '{other_dir}' (matched "
            f"by name without extension and the suffixes {', '.join(_SUFFIXES)}), e.g.: {', '.join(missing[:5])}. "
            f"{hint}"
        )


def list_label_map_files(
    root: str | Path,
    *,
    layout: str = "pix2pixhd",
    phase: str = "train",
    label_nc: int = CITYSCAPES_LABEL_NC,
    instances: bool = True,
    require_photos: bool = True,
) -> tuple[list[LabelMapFiles], tuple[Path, Path, Path]]:
    """The items of one phase, sorted by key, and the (label, instance, photo) folders.

    Raises:
        FileNotFoundError: The label folder (or, when needed, the instance or photo folder) is missing or holds no
            label map.
        ValueError: A label map has no instance map (``instances``) or no photo (photos required, or a photo folder
            that exists).
    """
    label_dir, inst_dir, photo_dir = phase_folders(root, layout, phase, label_nc)
    if not label_dir.is_dir():
        raise FileNotFoundError(f"Label map folder '{label_dir}' does not exist. {_layout_help(root, layout)}")
    cityscapes = layout == "cityscapes"
    label_suffix = (_COLOR_SUFFIX if label_nc == 0 else _LABEL_SUFFIX) if cityscapes else None
    labels = _keyed(label_dir, list_images(label_dir, recursive=True), label_suffix)
    if not labels:
        raise FileNotFoundError(
            f"No '*{label_suffix}' label map found in or below '{label_dir}'. {_layout_help(root, layout)}"
        )
    instance_table: dict[str, Path] = {}
    if instances:
        if not inst_dir.is_dir():
            raise FileNotFoundError(
                f"Instance map folder '{inst_dir}' does not exist. Set instances: false in the data config "
                f"(--data.init_args.instances=false) to use the label maps alone. {_layout_help(root, layout)}"
            )
        instance_table = _keyed(inst_dir, list_images(inst_dir, recursive=True),
                                _INSTANCE_SUFFIX if cityscapes else None)
        _unmatched(labels, instance_table, label_dir=label_dir, other_dir=inst_dir, what="instance map",
                   hint="Add the instance maps, or set instances: false (--data.init_args.instances=false).")
    photo_table: dict[str, Path] = {}
    if photo_dir.is_dir():
        photo_table = _keyed(photo_dir, list_images(photo_dir, recursive=True), _PHOTO_SUFFIX if cityscapes else None)
        _unmatched(labels, photo_table, label_dir=label_dir, other_dir=photo_dir, what="photo",
                   hint="Every label map needs its photo to train on; add the photos or remove those label maps.")
    elif require_photos:
        raise FileNotFoundError(
            f"Photo folder '{photo_dir}' does not exist; training needs a photo for every label map. "
            f"{_layout_help(root, layout)}"
        )
    files = [
        LabelMapFiles(labels[key], instance_table.get(key) if instances else None, photo_table.get(key))
        for key in sorted(labels)
    ]
    return files, (label_dir, inst_dir, photo_dir)


# --------------------------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------------------------


class LabelMapDataset(EpochDataset):
    """Label maps with instance maps and photos read from disk, preprocessed as the official pix2pixHD dataset.

    Args:
        root: Dataset folder (e.g. pix2pixHD's ``datasets/cityscapes``, or the Cityscapes download).
        phase: ``train``, ``val`` or ``test`` (``<phase>_label`` / ``gtFine/<phase>``, ...).
        layout: ``pix2pixhd`` or ``cityscapes`` (see the module docstring).
        label_nc: Number of label ids (Cityscapes 35); 0: the input is an RGB image, read and resampled as a photo.
        instances: Read the instance maps (``instance``).
        resize_or_crop: One of :data:`RESIZE_OR_CROP_OPTIONS` (official default ``scale_width``).
        load_size: Resize target: square side for ``resize_and_crop``, width for ``scale_width*``.
        fine_size: Crop side.
        size_multiple: With ``none``, sides are rounded to multiples of this (official: ``2 ** n_downsample_global``,
            times ``2 ** n_local_enhancers`` for the local generator).
        no_flip: Disable the random horizontal flip.
        seed: Seed of the per-item random choices.
        max_dataset_size: Use only the first this many items (sorted by name).
        whole: Prediction items: every file at its stored size (no resize, crop or flip), plus ``relpath_a`` (and
            ``relpath_b``); the preprocessing options are then unused.
        require_photos: Fail when the phase has no photo folder (None: when ``phase`` is ``train``); a photo folder
            that exists must always hold every label map's photo.

    Items are dicts, see the module docstring.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        phase: str = "train",
        layout: Literal["pix2pixhd", "cityscapes"] = "pix2pixhd",
        label_nc: int = CITYSCAPES_LABEL_NC,
        instances: bool = True,
        resize_or_crop: str = "scale_width",
        load_size: int = 1024,
        fine_size: int = 512,
        size_multiple: int = 16,
        no_flip: bool = False,
        seed: int = 0,
        max_dataset_size: int | None = None,
        whole: bool = False,
        require_photos: bool | None = None,
    ) -> None:
        _check_options(layout=layout, label_nc=label_nc, resize_or_crop=resize_or_crop, load_size=load_size,
                       fine_size=fine_size, size_multiple=size_multiple)
        self.root = Path(root)
        self.phase = phase
        self.layout = layout
        self.label_nc = label_nc
        self.instances = instances
        self.resize_or_crop = resize_or_crop
        self.load_size = load_size
        self.fine_size = fine_size
        self.size_multiple = size_multiple
        self.no_flip = no_flip
        self.seed = seed
        self.whole = whole
        self.files, self.folders = list_label_map_files(
            self.root, layout=layout, phase=phase, label_nc=label_nc, instances=instances,
            require_photos=phase == "train" if require_photos is None else require_photos,
        )
        if max_dataset_size is not None:
            self.files = self.files[:max_dataset_size]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def has_photos(self) -> bool:
        """Whether items carry ``real_b``."""
        return bool(self.files) and self.files[0].photo is not None

    def files_to_check(self) -> dict[Path, int]:
        """Every label, instance and photo file, any size."""
        return {path: 0 for files in self.files for path in files.paths()}

    def exclude_files(self, files: set[Path]) -> None:
        """Leave out the items that read one of ``files``."""
        self.files = [item for item in self.files if not files.intersection(item.paths())]
        if not self.files:
            raise ValueError(f"No usable label map is left under '{self.root}' once the unusable files are left out.")

    def item_size(self, index: int) -> tuple[int, int]:
        """Size key of a whole item: the (width, height) of its label file, read from the header."""
        return read_image_size(self.files[index].label)

    def _label_image(self, path: Path) -> tuple[Image.Image, np.ndarray | None]:
        """The input as a PIL image (``L`` of ids, or ``RGB`` with ``label_nc=0``) and its ids (None for RGB)."""
        if self.label_nc == 0:
            return load_image(path, channels=3), None
        ids = read_ids(path, "Label map", hint=" For colour label maps use label_nc=0.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.label_nc):
            raise ValueError(
                f"Label map '{path}' holds ids {int(ids.min())}..{int(ids.max())}, but label_nc is {self.label_nc} "
                f"(ids must be 0..{self.label_nc - 1}); raise label_nc, or use label_nc=0 for RGB inputs."
            )
        return Image.fromarray(ids.astype(np.uint8)), ids

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index``; its crop and flip are one :func:`get_params` draw from ``rng`` (x, y, then flip)."""
        files = self.files[index]
        label_image, _ = self._label_image(files.label)
        images: dict[str, tuple[Image.Image, Image.Resampling]] = {
            "real_a": (label_image, Image.Resampling.BICUBIC if self.label_nc == 0 else Image.Resampling.NEAREST),
        }
        if files.instance is not None:
            instance = read_ids(files.instance, "Instance map").astype(np.int32)
            images["instance"] = (Image.fromarray(instance), Image.Resampling.NEAREST)
        if files.photo is not None:
            images["real_b"] = (load_image(files.photo, channels=3), Image.Resampling.BICUBIC)
        if not self.whole:
            params = get_params(preprocess=self.resize_or_crop, load_size=self.load_size, crop_size=self.fine_size,
                                size=label_image.size, rng=rng)
            images = {
                key: (preprocess_label_map_image(
                    image, resize_or_crop=self.resize_or_crop, load_size=self.load_size, fine_size=self.fine_size,
                    size_multiple=self.size_multiple, params=params, flip=not self.no_flip, resample=resample,
                ), resample)
                for key, (image, resample) in images.items()
            }
        item: dict[str, Any] = {}
        real_a = images["real_a"][0]
        item["real_a"] = to_model_tensor(real_a, grayscale=self.label_nc != 0)
        if "instance" in images:
            item["instance"] = _id_tensor(np.asarray(images["instance"][0]))
        if "real_b" in images:
            item["real_b"] = to_model_tensor(images["real_b"][0])
        if self.label_nc == CITYSCAPES_LABEL_NC:
            item["label"] = _train_ids(np.asarray(real_a))
        item["path_a"] = str(files.label)
        if files.photo is not None:
            item["path_b"] = str(files.photo)
        if self.whole:
            item["relpath_a"] = relative_name(files.label, self.folders[0])
            if files.photo is not None:
                item["relpath_b"] = relative_name(files.photo, self.folders[2])
        return item

    def check_item(self, item: dict[str, Any], index: int) -> None:
        sizes = {key: tuple(item[key].shape[-2:]) for key in ("real_a", "instance", "real_b") if key in item}
        if len(set(sizes.values())) > 1:
            files = self.files[index]
            raise ValueError(
                f"Item {index} (label '{files.label}', instance '{files.instance}', photo '{files.photo}') has "
                f"different sizes after resize_or_crop '{self.resize_or_crop}': "
                f"{', '.join(f'{key} {size}' for key, size in sizes.items())}; label, instance map and photo must have "
                "the same size."
            )


# --------------------------------------------------------------------------------------------------------------------
# DataModule
# --------------------------------------------------------------------------------------------------------------------


class LabelMapDataModule(ZooDataModule):
    """DataModule of label maps (+ instance maps) and photos (pix2pixHD): folders, or the toy world when ``root`` is
    None.

    Validation reads ``val_phase``, else the first of val/test/train whose photos exist (the official pix2pixHD test
    split has label maps only); test and prediction read the first existing of test/val/train, without ``real_b``
    when that phase has no photos. Validation and test items use the training resize rule, without flips.

    Args:
        root: Dataset folder, or None for the embedded procedural toy world.
        layout: ``pix2pixhd`` (``<root>/<phase>_label``, ``_inst``, ``_img``) or ``cityscapes``
            (``<root>/gtFine/<split>/<city>``, ``<root>/leftImg8bit/<split>/<city>``); see :mod:`zoo.data.label_maps`.
        label_nc: Number of label ids (Cityscapes: 35, and items then carry ``label`` train ids); 0: the input is an
            RGB image (``<phase>_A`` / ``<phase>_B`` folders when they exist, ``*_gtFine_color.png`` for Cityscapes,
            the coloured label map for the toy world).
        instances: Read the instance maps (``instance`` in every item); False for ``--no_instance``.
        resize_or_crop: Training preprocessing, one of :data:`RESIZE_OR_CROP_OPTIONS` (official default
            ``scale_width``).
        load_size: Resize target (official default 1024).
        fine_size: Crop side (official default 512).
        size_multiple: Side multiple for ``none`` (official: 16 for the global generator, 32 with one local enhancer).
        no_flip: Disable the random horizontal flip during training.
        val_phase: Folder phase used for validation (None: see above).
        max_dataset_size: Use only the first this many training items.
        image_size: Toy-world frame size, an int or [H, W]; frames are drawn at this size directly, without resize or
            crop (None: the size a 2:1 Cityscapes frame gets in training: [load_size // 2, load_size] for
            ``scale_width`` and ``none``, [fine_size, fine_size] for the crop modes).
        toy_length: Number of toy-world training items.
        toy_test_length: Number of toy-world test items (validation uses ``val_size``).
        batch_size: See :class:`~zoo.data.datamodule.ZooDataModule` for this and the remaining loader options;
            ``augment`` must stay False (GPU augmentation would blend label ids and leave ``instance`` unmoved).

    The toy world's ``label`` (train ids) is present whatever ``label_nc``, since its scenes are Cityscapes-labelled.
    """

    paired = True

    def __init__(
        self,
        *,
        root: str | None = None,
        layout: Literal["pix2pixhd", "cityscapes"] = "pix2pixhd",
        label_nc: int = CITYSCAPES_LABEL_NC,
        instances: bool = True,
        resize_or_crop: Literal[
            "resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"
        ] = "scale_width",
        load_size: int = 1024,
        fine_size: int = 512,
        size_multiple: int = 16,
        no_flip: bool = False,
        val_phase: str | None = None,
        max_dataset_size: int | None = None,
        image_size: int | list[int] | tuple[int, int] | None = None,
        toy_length: int = 400,
        toy_test_length: int = 50,
        batch_size: int = 1,
        num_workers: int = 0,
        val_batch_size: int | None = None,
        val_size: int | None = 8,
        serial_batches: bool = False,
        seed: int = 0,
        augment: AugmentSetting = False,
        pin_memory: bool | None = None,
        check_files: bool = True,
        skip_bad_files: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            val_batch_size=val_batch_size,
            val_size=val_size,
            serial_batches=serial_batches,
            seed=seed,
            augment=augment,
            pin_memory=pin_memory,
            check_files=check_files,
            skip_bad_files=skip_bad_files,
        )
        self.save_hyperparameters()
        if augment:
            raise ValueError(
                "augment is not supported by LabelMapDataModule: GPU batch augmentation resamples real_a as an image "
                "(blending label ids) and leaves the instance map unmoved; keep augment: false for label maps."
            )
        _check_options(layout=layout, label_nc=label_nc, resize_or_crop=resize_or_crop, load_size=load_size,
                       fine_size=fine_size, size_multiple=size_multiple)
        if root is None and 0 < label_nc < _NUM_CITYSCAPES_IDS:
            raise ValueError(
                f"The toy world draws Cityscapes label ids 0..{_NUM_CITYSCAPES_IDS - 1}; label_nc must be 0 or >= "
                f"{_NUM_CITYSCAPES_IDS} (Cityscapes: {CITYSCAPES_LABEL_NC}), got {label_nc}."
            )
        self.root = root
        self.layout = layout
        self.label_nc = label_nc
        self.instances = instances
        self.resize_or_crop = resize_or_crop
        self.load_size = load_size
        self.fine_size = fine_size
        self.size_multiple = size_multiple
        self.no_flip = no_flip
        self.val_phase = val_phase
        self.max_dataset_size = max_dataset_size
        self.image_size = self._toy_size(image_size)
        self.toy_length = toy_length
        self.toy_test_length = toy_test_length

    def _toy_size(self, image_size: int | list[int] | tuple[int, int] | None) -> tuple[int, int]:
        if image_size is None:
            if "crop" in self.resize_or_crop:
                return self.fine_size, self.fine_size
            return max(self.load_size // 2, 4), self.load_size
        if isinstance(image_size, int) and not isinstance(image_size, bool):
            return image_size, image_size
        size = tuple(image_size)
        if len(size) != 2:
            raise ValueError(f"image_size must be an int or [H, W], got {image_size!r}.")
        return int(size[0]), int(size[1])

    def check_root(self) -> None:
        if self.root is None:
            return
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"Label map data folder '{root}' does not exist. {_layout_help(self.root, self.layout)}"
            )
        if self.layout == "cityscapes" and not (root / "gtFine").is_dir():
            raise FileNotFoundError(
                f"Cityscapes folder '{root / 'gtFine'}' does not exist. {_layout_help(self.root, self.layout)}"
            )

    def _phase_exists(self, phase: str) -> bool:
        return phase_folders(self.root, self.layout, phase, self.label_nc)[0].is_dir()

    def _phase_has_photos(self, phase: str) -> bool:
        label_dir, _, photo_dir = phase_folders(self.root, self.layout, phase, self.label_nc)
        return label_dir.is_dir() and photo_dir.is_dir()

    def _phase(self, split: str) -> str:
        if split == "val" and self.val_phase is None:
            exists = self._phase_has_photos
        else:
            exists = self._phase_exists
        return pick_phase(split, val_phase=self.val_phase, root=self.root, exists=exists)

    def build_dataset(self, split: str, *, whole: bool = False) -> Dataset:
        if self.root is None:
            return ToyPredictItems(self._toy_dataset(split)) if whole else self._toy_dataset(split)
        train = split == "train"
        return LabelMapDataset(
            root=self.root,
            phase=self._phase(split),
            layout=self.layout,
            label_nc=self.label_nc,
            instances=self.instances,
            resize_or_crop=self.resize_or_crop,
            load_size=self.load_size,
            fine_size=self.fine_size,
            size_multiple=self.size_multiple,
            no_flip=self.no_flip or not train,
            seed=self.seed,
            max_dataset_size=self.max_dataset_size if train else None,
            whole=whole,
            require_photos=train,
        )

    def build_predict_dataset(self) -> Dataset:
        """The test label maps whole, at their stored sizes (see :class:`~zoo.data.datamodule.ZooDataModule`)."""
        return self.build_dataset("test", whole=True)

    def _toy_dataset(self, split: str) -> Dataset:
        from .toy_world import ToyLabelMapDataset  # imported lazily: the toy world is only needed without a root

        length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
        dataset = ToyLabelMapDataset(
            length=length,
            size=self.image_size,
            split=split,
            seed=self.seed,
            label_format="color" if self.label_nc == 0 else "ids",
            instances=self.instances,
        )
        return ToyAdapter(dataset, seed=self.seed, no_flip=self.no_flip or split != "train", same_flip=True)
