"""Single-image super-resolution data: HR image folders, LR made by MATLAB bicubic or read from files.

Layout: ``<root>/<phase>`` holds HR images for the phases ``train``, ``val`` and ``test`` (sub-folders are walked; the
phase ``"."`` means ``root`` itself). The LR images are either

- made on the fly by :func:`zoo.data.imresize` (MATLAB ``imresize(HR, 1/scale, 'bicubic')`` on uint8, the "BI"
  degradation of the SR literature), from the uint8 HR crop during training and from the whole HR image otherwise,
  which reproduces the official benchmark LR files bit-exactly; or
- read from ``<lr_root>/<phase>`` (``lr_root`` may equal ``root``), matched to the HR files by relative path and name
  with ``hr_tag`` / ``lr_tag`` removed: ``img_001_SRF_4_HR.png`` and ``img_001_SRF_4_LR.png`` match with tags
  ``_HR`` / ``_LR`` (SelfExSR layout), ``baby_HR_x4.png`` and ``baby_LRBI_x4.png`` with ``_HR`` / ``_LRBI`` (RCAN).
  With a tag, only the files whose name contains it are used, so HR and LR files may share a folder.

Training items are random ``crop_size`` HR crops (a multiple of ``scale``; the paper's 96) with the matching LR crop;
when LR files are given the crop is placed on the LR grid. Validation and test items are whole images, the HR cut to
a multiple of ``scale`` at its top-left corner (MATLAB ``modcrop``); use ``val_batch_size=1`` (the default) unless all
images share one size.

Items and batches follow every zoo DataModule: ``real_a`` = LR (C, h, w) and ``real_b`` = HR (C, s*h, s*w), float32
in [-1, 1]; ``path_a`` (LR file, or the HR file when LR is made on the fly) and ``path_b`` (HR file); ``gray_b``
(bool: the HR file is single-channel, so :class:`zoo.metrics.SRMetrics` compares it on grey values as the MATLAB
evaluation does, even after replication to 3 channels). The paper's ranges (LR in [0, 1], HR in [-1, 1]) are
``(real_a + 1) / 2`` and ``real_b``.

Prediction items are the test items (whole images: an LR file at its stored size, or the MATLAB-bicubic LR of the
modcropped HR file) plus ``relpath_a`` / ``relpath_b``: ``path_a`` relative to its phase folder (the LR folder, or the
HR folder when LR is made on the fly) and ``path_b`` relative to the HR phase folder. The super-resolved output of
``real_a`` has the size of ``real_b``.

Randomness of a training item (pure function of seed, epoch and index): crop x, crop y, then with ``flip_rotate`` a
horizontal flip, a vertical flip and a 90-degree rotation, each with probability 1/2 (the augmentation of the
SRGAN-PyTorch port; the paper uses none, hence off by default).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .datamodule import EpochDataset, ToyPredictItems, ZooDataModule, relative_name
from .imresize import imresize
from .io import _open, _to_8bit, list_images, read_image_size, source_channels

__all__ = ["SRDataModule", "SRImageDataset"]

_DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
_BENCHMARK_URL = "https://github.com/jbhuang0604/SelfExSR (data/Set5, data/Set14, data/BSD100)"


def _check_scale_and_crop(scale: int, crop_size: int | None, owner: str) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{owner}: scale must be a positive int, got {scale!r}.")
    if crop_size is not None and (isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < scale
                                  or crop_size % scale):
        raise ValueError(
            f"{owner}: crop_size must be a positive multiple of scale={scale} (or None), got {crop_size!r}."
        )


def _check_channels(channels: int, owner: str) -> None:
    if channels not in (1, 3):
        raise ValueError(f"{owner}: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")


def _read(path: Path, channels: int) -> tuple[np.ndarray, bool]:
    """uint8 (H, W, channels) array of an image file and whether the file itself is single-channel."""
    image = _open(path)
    gray = source_channels(image) == 1
    array = np.asarray(_to_8bit(image, channels))
    return (array[..., None] if array.ndim == 2 else array), gray


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [-1, 1]."""
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)  # copy: writable


def _augment(arrays: list[np.ndarray], rng: random.Random) -> list[np.ndarray]:
    """Same random horizontal flip, vertical flip and transpose (x 1/2 each) of (H, W, C) arrays."""
    hflip, vflip, rot = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
    out = []
    for array in arrays:
        if hflip:
            array = array[:, ::-1]
        if vflip:
            array = array[::-1]
        if rot:
            array = array.transpose(1, 0, 2)
        out.append(array)
    return out


def _key(folder: Path, path: Path, tag: str) -> str:
    stem = path.relative_to(folder).with_suffix("").as_posix()
    return stem.replace(tag, "", 1) if tag else stem


def _tagged(folder: Path, tag: str) -> list[Path]:
    paths = list_images(folder, recursive=True)
    if tag:
        paths = [p for p in paths if tag in p.stem]
        if not paths:
            raise FileNotFoundError(f"No image in or below '{folder}' has '{tag}' in its name (the tag given).")
    return paths


def _match(hr_dir: Path, hr_paths: list[Path], lr_dir: Path, lr_tag: str, hr_tag: str) -> list[Path]:
    lr_table: dict[str, Path] = {}
    for path in _tagged(lr_dir, lr_tag):
        key = _key(lr_dir, path, lr_tag)
        if key in lr_table:
            raise ValueError(f"Two LR images map to the name '{key}' in '{lr_dir}': '{lr_table[key]}', '{path}'.")
        lr_table[key] = path
    keys = [_key(hr_dir, p, hr_tag) for p in hr_paths]
    missing = [k for k in keys if k not in lr_table]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} HR image(s) of '{hr_dir}' have no LR image in '{lr_dir}' (matched by name with "
            f"hr_tag='{hr_tag}' / lr_tag='{lr_tag}' removed), e.g. {', '.join(missing[:5])}. Set hr_tag/lr_tag to the "
            "parts of the names that differ, or drop lr_root to make LR images by MATLAB bicubic."
        )
    return [lr_table[k] for k in keys]


class SRImageDataset(EpochDataset):
    """LR/HR pairs from a folder of HR images (LR made by :func:`~zoo.data.imresize` or read from files).

    Args:
        hr_dir: Folder of HR images (walked recursively, sorted by path).
        lr_dir: Folder of LR images matched by name (None: make LR by MATLAB bicubic).
        scale: Upscaling factor.
        crop_size: Side of the random HR training crop, a multiple of ``scale``; None: whole images (HR cut to a
            multiple of ``scale``), deterministic.
        channels: 3 (RGB; grey files replicated) or 1 (luma, ITU-R 601 as PIL's ``convert("L")``).
        hr_tag: Only HR files whose name contains this; removed from the name for matching.
        lr_tag: Only LR files whose name contains this; removed from the name for matching.
        flip_rotate: Random flips and 90-degree rotations of training crops.
        seed: Seed of the per-item random choices.
        max_dataset_size: Use only the first this many HR images.
        whole: Prediction items: whole images (needs ``crop_size=None``) plus ``relpath_a`` / ``relpath_b``.

    Items: see the module docstring.
    """

    def __init__(
        self,
        *,
        hr_dir: str | Path,
        lr_dir: str | Path | None = None,
        scale: int = 4,
        crop_size: int | None = 96,
        channels: int = 3,
        hr_tag: str = "",
        lr_tag: str = "",
        flip_rotate: bool = False,
        seed: int = 0,
        max_dataset_size: int | None = None,
        whole: bool = False,
    ) -> None:
        _check_scale_and_crop(scale, crop_size, "SRImageDataset")
        _check_channels(channels, "SRImageDataset")
        if whole and crop_size is not None:
            raise ValueError(f"SRImageDataset: whole=True reads whole images; pass crop_size=None (got {crop_size}).")
        self.whole = whole
        self.hr_dir = Path(hr_dir)
        self.lr_dir = None if lr_dir is None else Path(lr_dir)
        self.scale, self.crop_size, self.channels = scale, crop_size, channels
        self.hr_tag, self.lr_tag = hr_tag, lr_tag
        self.flip_rotate = flip_rotate
        self.seed = seed
        self.hr_paths = _tagged(self.hr_dir, hr_tag)[:max_dataset_size]
        self.lr_paths = None if self.lr_dir is None else _match(self.hr_dir, self.hr_paths, self.lr_dir, lr_tag, hr_tag)

    def __len__(self) -> int:
        return len(self.hr_paths)

    def files_to_check(self) -> dict[Path, int]:
        """Every HR file (at least one training crop large) and LR file (at least the crop / ``scale``)."""
        crop = self.crop_size or 0
        files = dict.fromkeys(self.hr_paths, crop)
        files.update(dict.fromkeys(self.lr_paths or [], crop // self.scale))
        return files

    def exclude_files(self, files: set[Path]) -> None:
        """Leave out the HR/LR pairs that read one of ``files``."""
        lr_paths = self.lr_paths or [None] * len(self.hr_paths)
        kept = [(hr, lr) for hr, lr in zip(self.hr_paths, lr_paths, strict=True) if hr not in files and lr not in files]
        if not kept:
            raise ValueError(f"No usable HR image is left in '{self.hr_dir}' once the unusable files are left out.")
        self.hr_paths = [hr for hr, _ in kept]
        self.lr_paths = None if self.lr_paths is None else [lr for _, lr in kept]

    def item_size(self, index: int) -> tuple[int, int]:
        """Size key of a whole item: the HR file's (width, height) cut to a multiple of ``scale``."""
        w, h = read_image_size(self.hr_paths[index])
        return w - w % self.scale, h - h % self.scale

    def _too_small(self, path: Path, size: tuple[int, int], need: int) -> ValueError:
        return ValueError(
            f"'{path}' is {size[1]}x{size[0]} pixels, smaller than the HR crop of {need}x{need} (crop_size="
            f"{self.crop_size}); use a smaller crop_size or remove the image."
        )

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index``; a training crop draws x, then y, then the flips/rotation from ``rng``."""
        s = self.scale
        hr_path = self.hr_paths[index]
        hr, gray = _read(hr_path, self.channels)
        lr = None
        if self.lr_paths is not None:
            lr_path = self.lr_paths[index]
            lr, _ = _read(lr_path, self.channels)
            expected = (hr.shape[0] // s, hr.shape[1] // s)
            if lr.shape[:2] != expected:
                raise ValueError(
                    f"LR image '{lr_path}' is {lr.shape[1]}x{lr.shape[0]} but its HR image '{hr_path}' "
                    f"({hr.shape[1]}x{hr.shape[0]}) needs {expected[1]}x{expected[0]} at scale {s}; check scale and "
                    "the LR folder."
                )
        hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]  # MATLAB modcrop
        if self.crop_size is not None:
            crop = self.crop_size
            if hr.shape[0] < crop or hr.shape[1] < crop:
                raise self._too_small(hr_path, hr.shape[:2], crop)
            if lr is None:
                x, y = rng.randint(0, hr.shape[1] - crop), rng.randint(0, hr.shape[0] - crop)
                hr = hr[y : y + crop, x : x + crop]
            else:
                small = crop // s
                x, y = rng.randint(0, lr.shape[1] - small), rng.randint(0, lr.shape[0] - small)
                lr = lr[y : y + small, x : x + small]
                hr = hr[y * s : (y + small) * s, x * s : (x + small) * s]
        if lr is None:
            lr = imresize(np.ascontiguousarray(hr), 1 / s)
        if self.crop_size is not None and self.flip_rotate:
            lr, hr = _augment([lr, hr], rng)
        path_a = self.lr_paths[index] if self.lr_paths is not None else hr_path
        item = {
            "real_a": _to_tensor(lr),
            "real_b": _to_tensor(hr),
            "path_a": str(path_a),
            "path_b": str(hr_path),
            "gray_b": gray,
        }
        if self.whole:
            item["relpath_a"] = relative_name(path_a, self.lr_dir if self.lr_paths is not None else self.hr_dir)
            item["relpath_b"] = relative_name(hr_path, self.hr_dir)
        return item


class _ToySRItems(EpochDataset):
    """Toy-world SR items with the same keys and training augmentation as :class:`SRImageDataset`."""

    def __init__(self, dataset: Dataset, *, flip_rotate: bool, seed: int) -> None:
        self.dataset, self.flip_rotate, self.seed = dataset, flip_rotate, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        item = self.dataset[index]
        lr, hr = item["real_a"], item["real_b"]
        if self.flip_rotate:
            hflip, vflip, rot = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
            dims = [d for d, on in ((-1, hflip), (-2, vflip)) if on]
            lr, hr = (lr.flip(dims), hr.flip(dims)) if dims else (lr, hr)
            lr, hr = (lr.transpose(-1, -2).contiguous(), hr.transpose(-1, -2).contiguous()) if rot else (lr, hr)
        return {"real_a": lr, "real_b": hr, "gray_b": False}


class SRDataModule(ZooDataModule):
    """DataModule of single-image super-resolution: HR folders (+ optional LR folders), or the embedded toy world.

    Args:
        root: Folder holding ``train`` (and optionally ``val``, ``test``) folders of HR images, or None for the
            embedded procedural toy world (photos and their MATLAB-bicubic downscales; the file options ``lr_root``,
            ``hr_tag``, ``lr_tag``, the phases and ``max_dataset_size`` are then unused).
        scale: Upscaling factor (2, 3, 4, 8, ...).
        crop_size: Side of the random HR training crops, a multiple of ``scale`` (the paper: 96, so LR 24); None
            trains on whole images. Also the toy world's training image side.
        lr_root: Folder with the same phase folders holding LR images matched by name (None: LR by MATLAB bicubic of
            the uint8 HR, identical to the official LR files). May equal ``root``.
        hr_tag: Only HR files whose name contains this, e.g. ``_HR``; removed from the name for matching LR files.
        lr_tag: Only LR files whose name contains this, e.g. ``_LR``.
        channels: 3 (RGB; grey files are replicated) or 1 (luma).
        flip_rotate: Random flips and 90-degree rotations of training crops (not in the paper).
        train_phase: Folder of the training images under ``root`` (``"."``: root itself).
        val_phase: Folder of the validation images (None: ``val`` if present, else ``test``, else ``train_phase``).
        test_phase: Folder of the test images (None: ``test`` if present, else ``val``, else ``train_phase``).
        max_dataset_size: Use only the first this many training images.
        image_size: Toy-world HR side of validation/test images (None: ``crop_size``, or 96).
        toy_length: Number of toy-world training images.
        toy_test_length: Number of toy-world test images (validation uses ``val_size``).
        batch_size: Training batch size (the paper: 16).
        val_batch_size: Validation/test batch size (1: whole images of different sizes).
        num_workers: See :class:`~zoo.data.datamodule.ZooDataModule` for this and the remaining loader options.
    """

    paired = True

    def __init__(
        self,
        *,
        root: str | None = None,
        scale: int = 4,
        crop_size: int | None = 96,
        lr_root: str | None = None,
        hr_tag: str = "",
        lr_tag: str = "",
        channels: int = 3,
        flip_rotate: bool = False,
        train_phase: str = "train",
        val_phase: str | None = None,
        test_phase: str | None = None,
        max_dataset_size: int | None = None,
        image_size: int | None = None,
        toy_length: int = 200,
        toy_test_length: int = 10,
        batch_size: int = 16,
        val_batch_size: int | None = 1,
        num_workers: int = 0,
        val_size: int | None = 8,
        serial_batches: bool = False,
        seed: int = 0,
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
            augment=False,  # BatchAugment assumes equal-sized sides; SR uses flip_rotate on the CPU instead
            pin_memory=pin_memory,
            check_files=check_files,
            skip_bad_files=skip_bad_files,
        )
        self.save_hyperparameters()
        _check_scale_and_crop(scale, crop_size, "SRDataModule")
        _check_channels(channels, "SRDataModule")
        if image_size is not None and (image_size < scale or image_size % scale):
            raise ValueError(
                f"SRDataModule: image_size must be a positive multiple of scale={scale}, got {image_size}."
            )
        self.root, self.lr_root = root, lr_root
        self.scale, self.crop_size, self.channels = scale, crop_size, channels
        self.hr_tag, self.lr_tag = hr_tag, lr_tag
        self.flip_rotate = flip_rotate
        self.train_phase, self.val_phase, self.test_phase = train_phase, val_phase, test_phase
        self.max_dataset_size = max_dataset_size
        self.image_size = image_size or crop_size or 96
        self.toy_length, self.toy_test_length = toy_length, toy_test_length
        if root is None and self.image_size % scale:
            raise ValueError(
                f"SRDataModule: the toy world's validation/test side {self.image_size} (image_size, else crop_size, "
                f"else 96) is not a multiple of scale={scale}; set image_size to a multiple of {scale}."
            )

    def _help(self) -> str:
        return (
            f"Expected HR images in '{self.root}/{self.train_phase}' for training (and optionally '{self.root}/val', "
            f"'{self.root}/test'; set train_phase/val_phase/test_phase to other sub-folders, '.' for the folder "
            f"itself), e.g. DIV2K ({_DIV2K_URL}) or an ImageNet subset for training and the Set5/Set14/BSD100 "
            f"benchmarks ({_BENCHMARK_URL}) for testing. Pass --data.root=null to use the embedded toy world instead."
        )

    def check_root(self) -> None:
        if self.root is None:
            return
        for name, folder in (("root", self.root), ("lr_root", self.lr_root)):
            if folder is not None and not Path(folder).is_dir():
                raise FileNotFoundError(f"Super-resolution {name} folder '{folder}' does not exist. {self._help()}")

    def _phase(self, split: str) -> str:
        root = Path(self.root)
        explicit = {"train": self.train_phase, "val": self.val_phase, "test": self.test_phase}[split]
        if explicit is not None:
            if not (root / explicit).is_dir():
                raise FileNotFoundError(
                    f"Super-resolution {split} folder '{root / explicit}' does not exist ({split}_phase="
                    f"'{explicit}'). {self._help()}"
                )
            return explicit
        order = ("val", "test", self.train_phase) if split == "val" else ("test", "val", self.train_phase)
        for phase in order:
            if (root / phase).is_dir():
                return phase
        raise FileNotFoundError(f"No {split} folder under '{root}' (looked for {', '.join(order)}). {self._help()}")

    def _lr_dir(self, phase: str) -> Path | None:
        if self.lr_root is None:
            return None
        lr_dir = Path(self.lr_root) / phase
        if not lr_dir.is_dir():
            raise FileNotFoundError(
                f"LR folder '{lr_dir}' does not exist (lr_root='{self.lr_root}', phase '{phase}'): lr_root must "
                "have the same phase folders as root. Drop lr_root to make LR images by MATLAB bicubic."
            )
        return lr_dir

    def build_dataset(self, split: str, *, whole: bool = False) -> Dataset:
        if self.root is None:
            return ToyPredictItems(self._toy_dataset(split)) if whole else self._toy_dataset(split)
        phase = self._phase(split)
        train = split == "train"
        return SRImageDataset(
            hr_dir=Path(self.root) / phase,
            lr_dir=self._lr_dir(phase),
            scale=self.scale,
            crop_size=self.crop_size if train else None,
            channels=self.channels,
            hr_tag=self.hr_tag,
            lr_tag=self.lr_tag,
            flip_rotate=self.flip_rotate and train,
            seed=self.seed,
            max_dataset_size=self.max_dataset_size if train else None,
            whole=whole,
        )

    def build_predict_dataset(self) -> Dataset:
        """The test images whole, with relative paths (see the module docstring)."""
        return self.build_dataset("test", whole=True)

    def fixed_batch(self, n: int | None = None, *, split: str = "val") -> dict[str, Any]:
        """The first ``n`` items of the fixed ``split`` as one batch (e.g. for image grids).

        Whole validation images differ in size, so every item is cut at its centre to the smallest LR size among them
        (and its HR to ``scale`` times that, on the same grid) before stacking; items of one size are unchanged.
        """
        if split not in ("val", "test"):
            raise ValueError(f"fixed_batch: split must be 'val' or 'test', got '{split}'.")
        attribute = f"{split}_dataset"
        if getattr(self, attribute) is None:
            self.setup("validate" if split == "val" else "test")
        dataset = getattr(self, attribute)
        count = len(dataset) if n is None else min(n, len(dataset))
        items = [dict(dataset[i]) for i in range(count)]
        if not items:
            return default_collate(items)
        h = min(item["real_a"].shape[-2] for item in items)
        w = min(item["real_a"].shape[-1] for item in items)
        s = self.scale
        for item in items:
            y, x = (item["real_a"].shape[-2] - h) // 2, (item["real_a"].shape[-1] - w) // 2
            item["real_a"] = item["real_a"][..., y : y + h, x : x + w]
            item["real_b"] = item["real_b"][..., y * s : (y + h) * s, x * s : (x + w) * s]
        return default_collate(items)

    def _toy_dataset(self, split: str) -> Dataset:
        from .toy_world import ToySRDataset  # imported lazily: the toy world is only needed without a root

        length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
        size = (self.crop_size or self.image_size) if split == "train" else self.image_size
        dataset = ToySRDataset(
            length=length, hr_size=size, scale=self.scale, split=split, seed=self.seed, channels=self.channels
        )
        return _ToySRItems(dataset, flip_rotate=self.flip_rotate and split == "train", seed=self.seed)
