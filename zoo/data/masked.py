"""Exemplar-guided data with attributes and optional masks (LOMIT): datasets and :class:`MaskedDataModule`.

Every item pairs an input image with an exemplar drawn reproducibly from the item's own random source (a pure
function of (seed, epoch, index); fixed pairs for validation and test, which never change epoch), and carries:

- ``real_a`` / ``real_b``: (C, H, W) float32 in [-1, 1]: the input and its exemplar;
- ``attr_a`` / ``attr_b``: (c_dim,) float32 in {0, 1}: multi-hot attributes (CelebA) or one-hot domain ids;
- ``mask_a`` / ``mask_b`` (when masks are used): (1, H, W) float32 in {0, 1}: where to translate in the input, which
  region of the exemplar gives the style. A mask gets exactly the geometric transform of its image (the same flip,
  crop and resize, the resize with nearest-neighbour sampling so it stays binary);
- ``path_a`` / ``path_b`` (when read from files).

Sources:

- ``layout="celeba"``: ``<root>/<image_dir>`` and ``<root>/<attr_file>`` (``list_attr_celeba.txt``: a count line, a
  line of attribute names, then ``<file> <+1/-1 ...>`` rows), preprocessed as the authors' LOMIT loader: optional
  keep-filter (rows having any of ``filter_attrs``, default the three hair colours), rows with ``row + 1 <
  test_rows`` form the test split, random horizontal flip (training) -> centre crop ``crop_size`` (178) -> resize
  ``image_size`` (128). Exemplars come from the same split.
- ``layout="domains"``: ``<root>/<phase>A`` (inputs) and ``<root>/<phase>B`` (exemplars), attributes ``[1, 0]`` /
  ``[0, 1]``; same preprocessing (``crop_size=None`` skips the crop).
- ``root=None``: the embedded toy world (:class:`~zoo.data.toy_world.ToyMaskedDataset`): simulator frames with
  photo exemplars of other streets and masks of ``toy_classes`` (e.g. ``["car"]``), domain attributes
  ``[1, 0]`` (sim) / ``[0, 1]`` (photo).

Masks from files (``mask_dir``): the mask of ``<root>/<rel>/<name>.<ext>`` is ``<mask_dir>/<rel>/<name>.<any image
ext>``. They are binary images (nonzero, or >= 128 for 8-bit masks using 0/255) or, with ``mask_ids``, single-channel
label maps (e.g. Cityscapes ``*_labelIds.png``) of which the pixels whose label is in ``mask_ids`` form the mask.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from .datamodule import EpochDataset, EpochSampler, ToyAdapter, ZooDataModule
from .io import IMG_EXTENSIONS, list_images, load_image

__all__ = ["MaskedImageDataset", "MaskedDataModule", "MaskedRecord", "read_celeba_attributes", "read_mask"]

#: The authors' CelebA defaults (configs/config_celebA.yaml and data_loader.py).
CELEBA_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Smiling")
CELEBA_FILTER = ("Black_Hair", "Blond_Hair", "Brown_Hair")


@dataclass(frozen=True)
class MaskedRecord:
    """One image: its file, attribute vector and optional mask file."""

    path: Path
    attrs: tuple[float, ...]
    mask: Path | None = None


def read_mask(path: str | Path, mask_ids: Sequence[int] | None = None) -> Image.Image:
    """Read a mask file as an 8-bit ``L`` image with values 0 / 255.

    Args:
        path: binary mask image, or a single-channel label map when ``mask_ids`` is given.
        mask_ids: label values forming the mask.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Mask file '{path}' does not exist.")
    try:
        with Image.open(path) as image:
            image.load()
            array = np.asarray(image)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot decode mask file '{path}': {error}") from error
    if mask_ids is not None:
        if array.ndim != 2:
            raise ValueError(f"Label map '{path}' has {array.shape[-1]} channels; --mask_ids needs a single-channel "
                             "label map (e.g. Cityscapes *_labelIds.png)")
        mask = np.isin(array, np.asarray(list(mask_ids)))
    else:
        gray = array if array.ndim == 2 else array[..., :3].max(axis=-1)
        mask = gray > 0 if gray.max() <= 1 else gray >= 128
    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


def read_celeba_attributes(attr_file: str | Path, selected: Sequence[str], *, filter_attrs: Sequence[str] | None
                           ) -> tuple[list[tuple[int, str, tuple[float, ...]]], list[str]]:
    """Parse ``list_attr_celeba.txt``.

    Returns:
        ``(rows, names)``: rows ``(row index, file name, selected attribute values in {0, 1})`` kept by the filter
        (a row is kept when any attribute of ``filter_attrs`` is 1; None keeps all), and every attribute name.
    """
    attr_file = Path(attr_file)
    if not attr_file.is_file():
        raise FileNotFoundError(f"CelebA attribute file '{attr_file}' does not exist (expected list_attr_celeba.txt: "
                                "a count line, a line of attribute names, then '<file> <+1/-1 ...>' rows).")
    lines = [line.rstrip() for line in attr_file.read_text().splitlines()]
    if len(lines) < 2:
        raise ValueError(f"'{attr_file}' is too short to be a CelebA attribute file")
    names = lines[1].split()
    index = {name: i for i, name in enumerate(names)}
    unknown = [a for a in [*selected, *(filter_attrs or ())] if a not in index]
    if unknown:
        raise ValueError(f"attribute(s) {unknown} are not in '{attr_file}'; available: {names}")
    rows = []
    for row, line in enumerate(lines[2:]):
        parts = line.split()
        if not parts:
            continue
        filename, values = parts[0], parts[1:]
        if len(values) != len(names):
            raise ValueError(f"'{attr_file}' row {row + 3} has {len(values)} values for {len(names)} attributes")
        if filter_attrs is not None and not any(values[index[a]] == "1" for a in filter_attrs):
            continue
        rows.append((row, filename, tuple(float(values[index[a]] == "1") for a in selected)))
    return rows, names


def _mask_file(mask_root: Path, relative: Path) -> Path:
    for candidate in [mask_root / relative.with_suffix(".png")] + [
        mask_root / relative.with_suffix(ext) for ext in IMG_EXTENSIONS
    ]:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"No mask for image '{relative}' under '{mask_root}' (expected "
                            f"'{mask_root / relative.with_suffix('.png')}' or another image extension)")


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return TF.to_tensor(image) * 2 - 1


class MaskedImageDataset(EpochDataset):
    """Inputs with exemplars (and masks) read from files; see the module docstring.

    Args:
        inputs: records of the input images.
        exemplars: records the exemplars are drawn from (may be ``inputs``; an item never uses itself then).
        image_size: side after the resize (the shorter side for non-square crops).
        crop_size: centre-crop side before the resize (None: no crop).
        flip: random horizontal flips (independent for input and exemplar; each mask follows its image).
        channels: image channels (1 or 3).
        mask_ids: read mask files as label maps and keep these labels.
        seed: seed of the per-item random choices.
    """

    def __init__(self, inputs: Sequence[MaskedRecord], exemplars: Sequence[MaskedRecord], *, image_size: int = 128,
                 crop_size: int | None = 178, flip: bool = True, channels: int = 3,
                 mask_ids: Sequence[int] | None = None, seed: int = 0) -> None:
        if not inputs or not exemplars:
            raise ValueError("MaskedImageDataset needs at least one input and one exemplar image")
        self.inputs, self.exemplars = list(inputs), list(exemplars)
        self.same_pool = self.inputs is self.exemplars or self.inputs == self.exemplars
        self.image_size, self.crop_size, self.flip = image_size, crop_size, flip
        self.channels, self.mask_ids, self.seed = channels, mask_ids, seed

    def __len__(self) -> int:
        return len(self.inputs)

    def _geometry(self, image: Image.Image, flip: bool, interpolation: TF.InterpolationMode) -> Image.Image:
        if flip:
            image = TF.hflip(image)
        if self.crop_size is not None:
            image = TF.center_crop(image, [self.crop_size, self.crop_size])
        return TF.resize(image, self.image_size, interpolation=interpolation)

    def _load(self, record: MaskedRecord, flip: bool, side: str) -> dict[str, Any]:
        image = self._geometry(load_image(record.path, channels=self.channels), flip, TF.InterpolationMode.BILINEAR)
        item: dict[str, Any] = {f"real_{side}": _to_tensor(image),
                                f"attr_{side}": torch.tensor(record.attrs, dtype=torch.float32),
                                f"path_{side}": str(record.path)}
        if record.mask is not None:
            mask = self._geometry(read_mask(record.mask, self.mask_ids), flip, TF.InterpolationMode.NEAREST)
            item[f"mask_{side}"] = (TF.to_tensor(mask) > 0.5).float()
            if item[f"mask_{side}"].shape[-2:] != item[f"real_{side}"].shape[-2:]:
                raise ValueError(f"mask '{record.mask}' and image '{record.path}' have different sizes")
        return item

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index``: the exemplar index, then the input's and the exemplar's flips are drawn from ``rng``."""
        if self.same_pool and len(self.exemplars) > 1:
            other = rng.randrange(len(self.exemplars) - 1)
            other += other >= index
        else:
            other = rng.randrange(len(self.exemplars))
        flip_a, flip_b = rng.random() < 0.5, rng.random() < 0.5
        return {**self._load(self.inputs[index], self.flip and flip_a, "a"),
                **self._load(self.exemplars[other], self.flip and flip_b, "b")}


class _ToyDomains(Dataset):
    """:class:`ToyMaskedDataset` items with domain attributes (sim ``[1, 0]``, photo ``[0, 1]``), label map dropped."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {k: v for k, v in self.dataset[index].items() if k != "label_a"}
        item["attr_a"] = torch.tensor([1.0, 0.0])
        item["attr_b"] = torch.tensor([0.0, 1.0])
        return item


class MaskedDataModule(ZooDataModule):
    """DataModule for exemplar-guided translation with attributes and optional masks (LOMIT).

    Args:
        root: dataset folder, or None for the embedded toy world.
        layout: ``celeba`` (attribute file + image folder) or ``domains`` (``<phase>A`` inputs, ``<phase>B``
            exemplars).
        image_dir: CelebA image folder, relative to ``root`` (the authors' ``CelebA_nocrop/images``).
        attr_file: CelebA attribute file, relative to ``root``.
        selected_attrs: attributes forming ``attr_a`` / ``attr_b`` (their count is the model's ``c_dim``).
        filter_attrs: keep only images having one of these attributes (None: the authors' hair-colour filter
            Black_Hair / Blond_Hair / Brown_Hair; ``[]``: keep every image).
        test_rows: CelebA rows with ``row + 1 < test_rows`` are the test split (the authors' 2000).
        image_size: image side after the resize (128).
        crop_size: centre crop before the resize (178 for CelebA; None: none).
        no_flip: disable the training flips.
        channels: image channels.
        mask_dir: folder of masks mirroring the image folders (relative to ``root`` or absolute); None: no masks.
        mask_ids: read the mask files as label maps and keep these label values.
        toy_classes: toy-world classes covered by the masks (e.g. ``["car"]`` or ``["road"]``).
        toy_length: toy-world training items.
        toy_test_length: toy-world test items.
        batch_size: see :class:`~zoo.data.datamodule.ZooDataModule` for the loader options. Training drops the
            last incomplete batch, as the authors' loop does.
    """

    paired = False

    def __init__(
        self,
        *,
        root: str | None = None,
        layout: Literal["celeba", "domains"] = "celeba",
        image_dir: str = "images",
        attr_file: str = "list_attr_celeba.txt",
        selected_attrs: list[str] | None = None,
        filter_attrs: list[str] | None = None,
        test_rows: int = 2000,
        image_size: int = 128,
        crop_size: int | None = 178,
        no_flip: bool = False,
        channels: int = 3,
        mask_dir: str | None = None,
        mask_ids: list[int] | None = None,
        toy_classes: list[str] | None = None,
        toy_length: int = 400,
        toy_test_length: int = 50,
        batch_size: int = 8,
        num_workers: int = 0,
        val_batch_size: int | None = None,
        val_size: int | None = 8,
        serial_batches: bool = False,
        seed: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_batch_size=val_batch_size,
                         val_size=val_size, serial_batches=serial_batches, seed=seed, augment=False,
                         pin_memory=pin_memory)
        self.save_hyperparameters()
        if layout not in ("celeba", "domains"):
            raise ValueError(f"layout must be 'celeba' or 'domains', got {layout!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.root, self.layout, self.image_dir, self.attr_file = root, layout, image_dir, attr_file
        self.selected_attrs = list(CELEBA_ATTRS if selected_attrs is None else selected_attrs)
        self.filter_attrs = filter_attrs
        self.test_rows, self.image_size, self.crop_size = test_rows, image_size, crop_size
        self.no_flip, self.channels, self.mask_dir, self.mask_ids = no_flip, channels, mask_dir, mask_ids
        self.toy_classes = list(toy_classes or ["car"])
        self.toy_length, self.toy_test_length = toy_length, toy_test_length

    @property
    def num_attributes(self) -> int:
        """Length of ``attr_a`` / ``attr_b`` (the model's ``c_dim``)."""
        return 2 if self.root is None or self.layout == "domains" else len(self.selected_attrs)

    def check_root(self) -> None:
        if self.root is None:
            return
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(f"Dataset folder '{root}' does not exist; pass --data.root=null for the toy world.")
        if self.layout == "celeba":
            for path, what in ((root / self.image_dir, "image folder"), (root / self.attr_file, "attribute file")):
                if not path.exists():
                    raise FileNotFoundError(
                        f"CelebA {what} '{path}' does not exist. Expected '{root}/{self.image_dir}/' with the images "
                        f"and '{root}/{self.attr_file}' (list_attr_celeba.txt), e.g. the authors' CelebA_nocrop "
                        "download; set data.init_args.image_dir / attr_file for another layout.")
        elif not (root / "trainA").is_dir() or not (root / "trainB").is_dir():
            raise FileNotFoundError(f"Expected '{root}/trainA' (inputs) and '{root}/trainB' (exemplars)")
        if self.mask_dir is not None and not self._mask_root().is_dir():
            raise FileNotFoundError(f"Mask folder '{self._mask_root()}' does not exist")

    def _mask_root(self) -> Path:
        path = Path(self.mask_dir)
        return path if path.is_absolute() else Path(self.root) / path

    def _record(self, path: Path, attrs: tuple[float, ...]) -> MaskedRecord:
        mask = None
        if self.mask_dir is not None:
            mask = _mask_file(self._mask_root(), path.relative_to(self.root))
        return MaskedRecord(path, attrs, mask)

    def _celeba_records(self, split: str) -> list[MaskedRecord]:
        root = Path(self.root)
        rows, _ = read_celeba_attributes(root / self.attr_file, self.selected_attrs,
                                         filter_attrs=CELEBA_FILTER if self.filter_attrs is None else
                                         (self.filter_attrs or None))
        test = split != "train"
        chosen = [(name, attrs) for row, name, attrs in rows if ((row + 1) < self.test_rows) == test]
        if not chosen:
            raise ValueError(f"no CelebA rows for the {'test' if test else 'train'} split in '{root / self.attr_file}'"
                             f" (test_rows={self.test_rows}, filter_attrs={self.filter_attrs})")
        return [self._record(root / self.image_dir / name, attrs) for name, attrs in chosen]

    def _phase(self, split: str) -> str:
        root = Path(self.root)
        order = {"train": ("train",), "val": ("val", "test", "train"), "test": ("test", "val", "train")}[split]
        return next(p for p in order if (root / f"{p}A").is_dir() and (root / f"{p}B").is_dir())

    def build_dataset(self, split: str) -> Dataset:
        train = split == "train"
        if self.root is None:
            from .toy_world import ToyMaskedDataset  # the toy world is only needed without a root

            length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
            toy = ToyMaskedDataset(length=length, size=self.image_size, classes=tuple(self.toy_classes), split=split,
                                   seed=self.seed)
            channels = {"real_a": self.channels, "real_b": self.channels}
            return ToyAdapter(_ToyDomains(toy), seed=self.seed, no_flip=self.no_flip or not train, same_flip=False,
                              channels=channels)
        if self.layout == "celeba":
            records = self._celeba_records(split)
            inputs, exemplars = records, records
        else:
            phase = self._phase(split)
            inputs = [self._record(p, (1.0, 0.0)) for p in list_images(Path(self.root) / f"{phase}A", recursive=True)]
            exemplars = [self._record(p, (0.0, 1.0)) for p in list_images(Path(self.root) / f"{phase}B",
                                                                           recursive=True)]
        return MaskedImageDataset(inputs, exemplars, image_size=self.image_size, crop_size=self.crop_size,
                                  flip=train and not self.no_flip, channels=self.channels, mask_ids=self.mask_ids,
                                  seed=self.seed)

    def train_dataloader(self) -> StatefulDataLoader:
        """As :meth:`ZooDataModule.train_dataloader`, dropping the last incomplete batch (the authors skip it)."""
        dataset = self._require("train_dataset", "fit")
        trainer = self._trainer_or_none()
        num_replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        if len(dataset) < self.batch_size * num_replicas:
            raise ValueError(f"{len(dataset)} training items cannot fill one batch of {self.batch_size} per process "
                             f"({num_replicas} processes); lower batch_size or add data")
        sampler = EpochSampler(dataset, shuffle=not self.serial_batches, seed=self.seed, num_replicas=num_replicas,
                               rank=rank)
        return StatefulDataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                                  pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0, drop_last=True)
