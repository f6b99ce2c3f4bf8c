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
  photo exemplars of other streets and masks of ``toy_classes`` (e.g. ``["car"]``), or of the Cityscapes label ids
  ``mask_ids`` (the toy world's labels are Cityscapes ids). Attributes: with ``layout="celeba"`` and an explicit
  ``selected_attrs``, one value per name from :func:`~zoo.data.toy_world.scene_attributes` of the input's / the
  exemplar's scene (so a config made for CelebA trains unchanged); otherwise the domain ids ``[1, 0]`` (sim) /
  ``[0, 1]`` (photo). ``mask_dir``, ``image_dir``, ``attr_file``, ``filter_attrs``, ``test_rows`` and ``crop_size``
  are unused.

Masks from files (``mask_dir``): the mask of ``<root>/<rel>/<name>.<ext>`` is ``<mask_dir>/<rel>/<name>.<any image
ext>``, read by :func:`zoo.data.masks.read_mask` (binary masks, or with ``mask_ids`` label maps such as Cityscapes
``*_labelIds.png`` or palette PNGs; the same reader ``zoo translate`` uses, so training and inference masks agree).

Prediction (``predict_dataloader``) gives the test pairs whole: input, exemplar and masks at their stored sizes (no
flip, crop or resize), ``path_*`` and ``relpath_*`` (relative to ``<root>/<image_dir>``, or ``<root>/<phase>A`` /
``<phase>B``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from .augment import AugmentSetting
from .datamodule import EpochDataset, EpochSampler, ToyAdapter, ToyPredictItems, ZooDataModule, relative_name
from .io import IMG_EXTENSIONS, list_images, load_image, read_image_size
from .masks import read_mask
from .transforms import item_rng

__all__ = ["MaskedImageDataset", "MaskedDataModule", "MaskedRecord", "read_celeba_attributes"]

#: The authors' CelebA defaults (configs/config_celebA.yaml and data_loader.py).
CELEBA_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Smiling")
CELEBA_FILTER = ("Black_Hair", "Blond_Hair", "Brown_Hair")


@dataclass(frozen=True)
class MaskedRecord:
    """One image: its file, attribute vector, optional mask file and the folder it was listed from."""

    path: Path
    attrs: tuple[float, ...]
    mask: Path | None = None
    folder: Path | None = None


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
        whole: prediction items: images and masks at their stored sizes (no flip, crop or resize), plus
            ``relpath_a`` / ``relpath_b`` (relative to each record's folder); ``image_size``, ``crop_size`` and
            ``flip`` are then unused.
    """

    def __init__(self, inputs: Sequence[MaskedRecord], exemplars: Sequence[MaskedRecord], *, image_size: int = 128,
                 crop_size: int | None = 178, flip: bool = True, channels: int = 3,
                 mask_ids: Sequence[int] | None = None, seed: int = 0, whole: bool = False) -> None:
        if not inputs or not exemplars:
            raise ValueError("MaskedImageDataset needs at least one input and one exemplar image")
        self.inputs, self.exemplars = list(inputs), list(exemplars)
        self.same_pool = self.inputs is self.exemplars or self.inputs == self.exemplars
        self.image_size, self.crop_size, self.flip = image_size, crop_size, flip
        self.channels, self.mask_ids, self.seed, self.whole = channels, mask_ids, seed, whole

    def __len__(self) -> int:
        return len(self.inputs)

    def files_to_check(self) -> dict[Path, int]:
        """Every input and exemplar image and mask file, any size."""
        records = [*self.inputs, *self.exemplars]
        return {path: 0 for record in records for path in (record.path, record.mask) if path is not None}

    def exclude_files(self, files: set[Path]) -> None:
        """Leave out the inputs and exemplars whose image or mask is one of ``files``."""
        def usable(record: MaskedRecord) -> bool:
            return record.path not in files and record.mask not in files

        self.inputs = [record for record in self.inputs if usable(record)]
        self.exemplars = self.inputs if self.same_pool else [record for record in self.exemplars if usable(record)]
        if not self.inputs or not self.exemplars:
            raise ValueError("No usable input or exemplar image is left once the unusable files are left out.")

    def _geometry(self, image: Image.Image, flip: bool, interpolation: TF.InterpolationMode) -> Image.Image:
        if flip:
            image = TF.hflip(image)
        if self.crop_size is not None:
            image = TF.center_crop(image, [self.crop_size, self.crop_size])
        return TF.resize(image, self.image_size, interpolation=interpolation)

    def _load(self, record: MaskedRecord, flip: bool, side: str) -> dict[str, Any]:
        image = load_image(record.path, channels=self.channels)
        real = _to_tensor(image if self.whole else self._geometry(image, flip, TF.InterpolationMode.BILINEAR))
        item: dict[str, Any] = {f"real_{side}": real,
                                f"attr_{side}": torch.tensor(record.attrs, dtype=torch.float32),
                                f"path_{side}": str(record.path)}
        if self.whole:
            item[f"relpath_{side}"] = relative_name(record.path, record.folder or record.path.parent)
        if record.mask is not None:
            mask = read_mask(record.mask, self.mask_ids)
            if mask.shape[-2:] != (image.height, image.width):
                raise ValueError(f"mask '{record.mask}' is {mask.shape[-1]}x{mask.shape[-2]} but its image "
                                 f"'{record.path}' is {image.width}x{image.height}; save masks at their image's size.")
            if not self.whole:
                # Nearest-neighbour PIL geometry on 0/255 bytes keeps the mask binary and aligned with its image.
                as_image = Image.fromarray(mask[0].to(torch.uint8).mul_(255).numpy())
                mask = (TF.to_tensor(self._geometry(as_image, flip, TF.InterpolationMode.NEAREST)) > 0.5).float()
            item[f"mask_{side}"] = mask
        return item

    def _exemplar(self, index: int, rng: random.Random) -> int:
        if self.same_pool and len(self.exemplars) > 1:
            other = rng.randrange(len(self.exemplars) - 1)
            return other + (other >= index)
        return rng.randrange(len(self.exemplars))

    def item_size(self, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Size key of a whole item: the (width, height) of its input and exemplar files, read from the headers."""
        other = self._exemplar(index, item_rng(self.seed, self.epoch, index))
        return read_image_size(self.inputs[index].path), read_image_size(self.exemplars[other].path)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index``: the exemplar index, then the input's and the exemplar's flips are drawn from ``rng``."""
        other = self._exemplar(index, rng)
        flip_a, flip_b = rng.random() < 0.5, rng.random() < 0.5
        return {**self._load(self.inputs[index], self.flip and flip_a, "a"),
                **self._load(self.exemplars[other], self.flip and flip_b, "b")}


class _ToyDomains(Dataset):
    """:class:`ToyMaskedDataset` items without the label map, with domain attributes (sim ``[1, 0]``, photo
    ``[0, 1]``) unless the items carry scene attributes already."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {k: v for k, v in self.dataset[index].items() if k != "label_a"}
        item.setdefault("attr_a", torch.tensor([1.0, 0.0]))
        item.setdefault("attr_b", torch.tensor([0.0, 1.0]))
        return item


class MaskedDataModule(ZooDataModule):
    """DataModule for exemplar-guided translation with attributes and optional masks (LOMIT).

    Args:
        root: dataset folder, or None for the embedded toy world.
        layout: ``celeba`` (attribute file + image folder) or ``domains`` (``<phase>A`` inputs, ``<phase>B``
            exemplars).
        image_dir: CelebA image folder, relative to ``root`` (the authors' ``CelebA_nocrop/images``).
        attr_file: CelebA attribute file, relative to ``root``.
        selected_attrs: attributes forming ``attr_a`` / ``attr_b`` (their count is the model's ``c_dim``); None: the
            authors' four (toy world: the two domain ids, see the module docstring).
        filter_attrs: keep only images having one of these attributes (None: the authors' hair-colour filter
            Black_Hair / Blond_Hair / Brown_Hair; ``[]``: keep every image).
        test_rows: CelebA rows with ``row + 1 < test_rows`` are the test split (the authors' 2000).
        image_size: image side after the resize (128).
        crop_size: centre crop before the resize (178 for CelebA; None: none).
        no_flip: disable the training flips.
        channels: image channels.
        mask_dir: folder of masks mirroring the image folders (relative to ``root`` or absolute); None: no masks.
        mask_ids: read the mask files as label maps and keep these label values.
        toy_classes: toy-world classes covered by the masks (e.g. ``["car"]`` or ``["road"]``; None: ``["car"]``,
            or the classes of ``mask_ids``).
        toy_length: toy-world training items.
        toy_test_length: toy-world test items.
        toy_statistics: class statistics of the toy-world scenes: ``matched`` (default; inputs and exemplars drawn
            alike) or ``unmatched`` (the sim inputs show much more vegetation than the photo exemplars); see
            :data:`zoo.data.toy_world.STATISTICS_PRESETS`.
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
        toy_statistics: Literal["matched", "unmatched"] = "matched",
        batch_size: int = 8,
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
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_batch_size=val_batch_size,
                         val_size=val_size, serial_batches=serial_batches, seed=seed, augment=augment,
                         pin_memory=pin_memory, check_files=check_files, skip_bad_files=skip_bad_files)
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
        self.toy_length, self.toy_test_length = toy_length, toy_test_length
        if toy_statistics not in ("matched", "unmatched"):
            raise ValueError(f"MaskedDataModule: toy_statistics must be 'matched' or 'unmatched'; "
                             f"got {toy_statistics!r}.")
        self.toy_statistics = toy_statistics
        # The toy world has no CelebA attributes: it derives the named ones from its scenes when they are asked for.
        self.toy_attrs = self.selected_attrs if layout == "celeba" and selected_attrs is not None else None
        self.toy_classes = self._toy_mask_classes(toy_classes) if root is None else list(toy_classes or ["car"])

    def _toy_mask_classes(self, toy_classes: list[str] | None) -> list[str]:
        if self.mask_ids is None:
            return list(toy_classes or ["car"])
        if toy_classes is not None:
            raise ValueError("MaskedDataModule: the toy world (root=None) takes toy_classes or mask_ids, not both; "
                             "drop one of them.")
        from .toy_world import CITYSCAPES_CLASSES

        names = {c.id: c.name for c in CITYSCAPES_CLASSES}
        unknown = [i for i in self.mask_ids if i not in names]
        if unknown:
            raise ValueError(f"MaskedDataModule: mask_ids {unknown} are not Cityscapes label ids (0-{max(names)}), "
                             "which the toy world (root=None) draws; use toy_classes or Cityscapes ids.")
        return [names[i] for i in self.mask_ids]

    @property
    def num_attributes(self) -> int:
        """Length of ``attr_a`` / ``attr_b`` (the model's ``c_dim``)."""
        if self.root is None:
            return 2 if self.toy_attrs is None else len(self.toy_attrs)
        return 2 if self.layout == "domains" else len(self.selected_attrs)

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

    def _record(self, path: Path, attrs: tuple[float, ...], folder: Path) -> MaskedRecord:
        mask = None
        if self.mask_dir is not None:
            mask = _mask_file(self._mask_root(), path.relative_to(self.root))
        return MaskedRecord(path, attrs, mask, folder)

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
        return [self._record(root / self.image_dir / name, attrs, root / self.image_dir) for name, attrs in chosen]

    def _phase(self, split: str) -> str:
        root = Path(self.root)
        order = {"train": ("train",), "val": ("val", "test", "train"), "test": ("test", "val", "train")}[split]
        return next(p for p in order if (root / f"{p}A").is_dir() and (root / f"{p}B").is_dir())

    def _toy_dataset(self, split: str) -> Dataset:
        from .toy_world import ToyMaskedDataset  # the toy world is only needed without a root

        length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
        toy = ToyMaskedDataset(length=length, size=self.image_size, classes=tuple(self.toy_classes), split=split,
                               seed=self.seed, attributes=self.toy_attrs, statistics=self.toy_statistics)
        channels = {"real_a": self.channels, "real_b": self.channels}
        return ToyAdapter(_ToyDomains(toy), seed=self.seed, no_flip=self.no_flip or split != "train", same_flip=False,
                          channels=channels)

    def _records(self, split: str) -> tuple[list[MaskedRecord], list[MaskedRecord]]:
        if self.layout == "celeba":
            records = self._celeba_records(split)
            return records, records
        phase = self._phase(split)
        folder_a, folder_b = Path(self.root) / f"{phase}A", Path(self.root) / f"{phase}B"
        inputs = [self._record(p, (1.0, 0.0), folder_a) for p in list_images(folder_a, recursive=True)]
        exemplars = [self._record(p, (0.0, 1.0), folder_b) for p in list_images(folder_b, recursive=True)]
        return inputs, exemplars

    def build_dataset(self, split: str) -> Dataset:
        if self.root is None:
            return self._toy_dataset(split)
        inputs, exemplars = self._records(split)
        return MaskedImageDataset(inputs, exemplars, image_size=self.image_size, crop_size=self.crop_size,
                                  flip=split == "train" and not self.no_flip, channels=self.channels,
                                  mask_ids=self.mask_ids, seed=self.seed)

    def build_predict_dataset(self) -> Dataset:
        """The test pairs whole: images and masks at their stored sizes, with relative paths."""
        if self.root is None:
            return ToyPredictItems(self._toy_dataset("test"))
        inputs, exemplars = self._records("test")
        return MaskedImageDataset(inputs, exemplars, image_size=self.image_size, crop_size=self.crop_size, flip=False,
                                  channels=self.channels, mask_ids=self.mask_ids, seed=self.seed, whole=True)

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
