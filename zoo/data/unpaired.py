"""Unpaired image data for CycleGAN-style methods: dataset and DataModule.

Layout (the official ``unaligned`` mode): ``<root>/trainA``, ``<root>/trainB``, ``<root>/testA``, ``<root>/testB``
(optionally ``valA`` / ``valB``). Item i uses A[i % |A|] and a random B (drawn from the item's own generator) unless
``serial_batches``; the length is max(|A|, |B|); A and B get independent random crops and flips. Prediction reads
the test items whole (``whole=True``): A[i % |A|] and B[i % |B|] at their stored sizes, with ``relpath_a`` /
``relpath_b`` relative to ``<phase>A`` / ``<phase>B``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from .augment import AugmentSetting
from .datamodule import EpochDataset, ToyAdapter, ToyPredictItems, ZooDataModule, pick_phase
from .io import list_images, load_image, read_image_size
from .paired import _check_channels, _check_direction, _whole_pair
from .transforms import ImageGeometry, ImageTransform, check_preprocess, get_transform

__all__ = ["UnpairedImageDataset", "UnpairedDataModule"]

_CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/<name>.zip"


class UnpairedImageDataset(EpochDataset):
    """Unpaired images of two domains read from disk, preprocessed as the official ``UnalignedDataset``.

    Args:
        root: Dataset folder (e.g. ``datasets/horse2zebra``).
        phase: Reads ``<root>/<phase>A`` and ``<root>/<phase>B``.
        direction: ``AtoB`` (``real_a`` from folder A) or ``BtoA`` (``real_a`` from folder B).
        preprocess: One of :data:`~zoo.data.transforms.PREPROCESS_OPTIONS`.
        load_size: Resize target (see :mod:`zoo.data.transforms`).
        crop_size: Crop side.
        no_flip: Disable the random horizontal flips.
        input_nc: Channels of ``real_a`` (1 converts to luma).
        output_nc: Channels of ``real_b``.
        serial_batches: Pair A[i % |A|] with B[i % |B|] instead of a random B.
        seed: Seed of the per-item random choices.
        max_dataset_size: Use only the first this many images of each domain (sorted by path).
        crop_only_after_epoch: From the epoch after this one (counted from 1, like the official ``n_epochs``) on,
            resize to ``crop_size`` instead of ``load_size``, so crops no longer jitter: what CUT and DECENT do in
            their learning-rate decay epochs. ``None`` (the CycleGAN behaviour) never switches.
        whole: Prediction items: A[i % |A|] and B[i % |B|] at their stored sizes (no resize, crop or flip), plus
            ``relpath_a`` / ``relpath_b``; the preprocessing options and ``serial_batches`` are then unused.

    Items are dicts: ``real_a`` (input_nc, H, W) and ``real_b`` (output_nc, H, W) float tensors in [-1, 1], and
    ``path_a`` / ``path_b``.
    """

    def __init__(
        self,
        *,
        root: str | Path,
        phase: str = "train",
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        no_flip: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
        serial_batches: bool = False,
        seed: int = 0,
        max_dataset_size: int | None = None,
        crop_only_after_epoch: int | None = None,
        whole: bool = False,
    ) -> None:
        _check_direction(direction)
        _check_channels(input_nc, output_nc)
        check_preprocess(preprocess, load_size=load_size, crop_size=crop_size)
        self.root = Path(root)
        self.phase = phase
        self.direction = direction
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.no_flip = no_flip
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.serial_batches = serial_batches
        self.seed = seed
        self.crop_only_after_epoch = crop_only_after_epoch
        self.whole = whole
        self.folder_a, self.folder_b = self.root / f"{phase}A", self.root / f"{phase}B"
        self.paths_a = list_images(self.folder_a, recursive=True)[:max_dataset_size]
        self.paths_b = list_images(self.folder_b, recursive=True)[:max_dataset_size]

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def files_to_check(self) -> dict[Path, int]:
        """Every A and B file, any size."""
        return {path: 0 for path in [*self.paths_a, *self.paths_b]}

    def exclude_files(self, files: set[Path]) -> None:
        """Leave ``files`` out of both domains."""
        self.paths_a = [path for path in self.paths_a if path not in files]
        self.paths_b = [path for path in self.paths_b if path not in files]
        for folder, paths in ((self.folder_a, self.paths_a), (self.folder_b, self.paths_b)):
            if not paths:
                raise ValueError(f"No usable image is left in '{folder}' once the unusable files are left out.")

    def item_size(self, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Size key of a whole item: the (width, height) of its A and B files, read from the headers."""
        return (read_image_size(self.paths_a[index % len(self.paths_a)]),
                read_image_size(self.paths_b[index % len(self.paths_b)]))

    def _whole_item(self, index: int) -> dict[str, Any]:
        path_a, path_b = self.paths_a[index % len(self.paths_a)], self.paths_b[index % len(self.paths_b)]
        return _whole_pair((load_image(path_a, channels=3), path_a, self.folder_a),
                           (load_image(path_b, channels=3), path_b, self.folder_b),
                           input_nc=self.input_nc, output_nc=self.output_nc, direction=self.direction)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index``: the partner B index, then A's crop/flip, then B's crop/flip are drawn from ``rng``."""
        if self.whole:
            return self._whole_item(index)
        path_a = self.paths_a[index % len(self.paths_a)]
        index_b = index % len(self.paths_b) if self.serial_batches else rng.randint(0, len(self.paths_b) - 1)
        path_b = self.paths_b[index_b]
        # The model's input side (real_a) has input_nc channels; with BtoA that side is folder B.
        nc_a, nc_b = (self.input_nc, self.output_nc) if self.direction == "AtoB" else (self.output_nc, self.input_nc)
        fine_tuning = self.crop_only_after_epoch is not None and self.item_epoch + 1 > self.crop_only_after_epoch
        options = dict(
            preprocess=self.preprocess,
            load_size=self.crop_size if fine_tuning else self.load_size,
            crop_size=self.crop_size,
            no_flip=self.no_flip,
            rng=rng,
        )
        side_a = self.load_side(path_a, get_transform(**options, grayscale=nc_a == 1))
        side_b = self.load_side(path_b, get_transform(**options, grayscale=nc_b == 1))
        if self.direction == "BtoA":
            side_a, side_b = side_b, side_a
        return {**{f"{key}_a": value for key, value in side_a.items()},
                **{f"{key}_b": value for key, value in side_b.items()}}

    def load_side(self, path: Path, transform: ImageTransform) -> dict[str, Any]:
        """One side of a training item (its crop and flip drawn by ``transform``): ``real`` (C, H, W) in [-1, 1] and
        ``path``, plus :meth:`side_annotations`; the item suffixes the keys with the side (``real_a``, ...)."""
        image = load_image(path, channels=3)
        geometry = transform.geometry(image.size)
        return {"real": transform.apply(image, geometry), "path": str(path), **self.side_annotations(path, geometry)}

    def side_annotations(self, path: Path, geometry: ImageGeometry) -> dict[str, Any]:
        """Hook: annotations of the image at ``path`` moved by ``geometry`` (e.g. boxes); none here."""
        return {}


class UnpairedDataModule(ZooDataModule):
    """DataModule of unpaired domains (CycleGAN): image folders, or the embedded toy world when ``root`` is None.

    Args:
        root: Dataset folder with ``trainA``/``trainB`` (and ``testA``/``testB``, optionally ``valA``/``valB``), or
            None for the embedded procedural toy world.
        direction: ``AtoB`` or ``BtoA`` (swap which folder is domain a).
        preprocess: Training preprocessing (official default ``resize_and_crop``).
        load_size: Resize target (official default 286).
        crop_size: Crop side (official default 256).
        no_flip: Disable the random horizontal flips during training.
        input_nc: Channels of ``real_a``.
        output_nc: Channels of ``real_b``.
        val_phase: Folders used for validation (None: ``val`` if present, else ``test``, else ``train``).
        val_load_size: Resize target of validation/test images (None: ``crop_size``, as the official test script).
        max_dataset_size: Use only the first this many training images per domain.
        crop_only_after_epoch: From the epoch after this one on, training images are resized to ``crop_size``
            (no crop jitter), as CUT and DECENT do in their decay epochs (``n_epochs``); None never switches.
        toy_domain_a: Toy-world domain of ``real_a`` when ``root`` is None (e.g. ``sim``).
        toy_domain_b: Toy-world domain of ``real_b`` (e.g. ``photo``).
        image_size: Toy-world image side (None: ``crop_size``).
        toy_length: Number of toy-world training items.
        toy_test_length: Number of toy-world test items (validation uses ``val_size``).
        toy_statistics: Class statistics of the toy-world domains: ``matched`` (default; both domains drawn alike,
            the toy world as it always was) or ``unmatched`` (the scenes of ``toy_domain_a`` show much more
            vegetation than those of ``toy_domain_b``, as GTA5 against Cityscapes); see
            :data:`zoo.data.toy_world.STATISTICS_PRESETS`.
        batch_size: See :class:`~zoo.data.datamodule.ZooDataModule` for this and the remaining loader options;
            ``serial_batches`` also pairs A[i] with B[i] during training.
    """

    paired = False

    def __init__(
        self,
        *,
        root: str | None = None,
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        preprocess: Literal[
            "resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none", "resize"
        ] = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        no_flip: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
        val_phase: str | None = None,
        val_load_size: int | None = None,
        max_dataset_size: int | None = None,
        crop_only_after_epoch: int | None = None,
        toy_domain_a: str = "sim",
        toy_domain_b: str = "photo",
        image_size: int | None = None,
        toy_length: int = 400,
        toy_test_length: int = 50,
        toy_statistics: Literal["matched", "unmatched"] = "matched",
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
        _check_direction(direction)
        _check_channels(input_nc, output_nc)
        check_preprocess(preprocess, load_size=load_size, crop_size=crop_size)
        self.root = root
        self.direction = direction
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.no_flip = no_flip
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.val_phase = val_phase
        self.val_load_size = val_load_size
        self.max_dataset_size = max_dataset_size
        self.crop_only_after_epoch = crop_only_after_epoch
        self.toy_domain_a = toy_domain_a
        self.toy_domain_b = toy_domain_b
        self.image_size = image_size or crop_size
        self.toy_length = toy_length
        self.toy_test_length = toy_test_length
        if toy_statistics not in ("matched", "unmatched"):
            raise ValueError(f"UnpairedDataModule: toy_statistics must be 'matched' or 'unmatched'; "
                             f"got {toy_statistics!r}.")
        self.toy_statistics = toy_statistics

    def check_root(self) -> None:
        if self.root is None:
            return
        root = Path(self.root)
        missing = [root / name for name in ("trainA", "trainB") if not (root / name).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"Unpaired data folder(s) {', '.join(repr(str(p)) for p in missing)} do not exist. Expected one image "
                f"folder per domain: '{root}/trainA', '{root}/trainB' (and optionally testA/testB, valA/valB). The "
                f"CycleGAN datasets (horse2zebra, monet2photo, summer2winter_yosemite, ...) can be downloaded from "
                f"{_CYCLEGAN_URL} (here {_CYCLEGAN_URL.replace('<name>', root.name)}) and unzipped into "
                f"'{root.parent}', so that '{root}' is the folder holding trainA/. Pass "
                "--data.root=null to use the embedded toy world instead."
            )

    def _phase(self, split: str) -> str:
        root = Path(self.root)
        return pick_phase(split, val_phase=self.val_phase, root=root,
                          exists=lambda p: (root / f"{p}A").is_dir() and (root / f"{p}B").is_dir())

    def eval_load_size(self) -> int:
        """Resize target of validation/test images: ``val_load_size``, else ``crop_size`` (as the official test)."""
        return self.val_load_size or self.crop_size

    def build_dataset(self, split: str, *, whole: bool = False) -> Dataset:
        if self.root is None:
            return ToyPredictItems(self._toy_dataset(split)) if whole else self._toy_dataset(split)
        train = split == "train"
        return self.image_dataset(
            root=self.root,
            phase=self._phase(split),
            direction=self.direction,
            preprocess=self.preprocess,
            load_size=self.load_size if train else self.eval_load_size(),
            crop_size=self.crop_size,
            no_flip=self.no_flip or not train,
            input_nc=self.input_nc,
            output_nc=self.output_nc,
            # Evaluation pairs A[i] with B[i] so validation batches are fixed (the official test script does the same).
            serial_batches=self.serial_batches or not train,
            seed=self.seed,
            max_dataset_size=self.max_dataset_size if train else None,
            crop_only_after_epoch=self.crop_only_after_epoch if train else None,
            whole=whole,
        )

    def build_predict_dataset(self) -> Dataset:
        """The test items whole, at their stored sizes (see :class:`~zoo.data.datamodule.ZooDataModule`)."""
        return self.build_dataset("test", whole=True)

    def image_dataset(self, **options: Any) -> UnpairedImageDataset:
        """The dataset of a split of image folders, from :class:`UnpairedImageDataset`'s arguments ``options``
        (subclasses return a subclass that adds per-item data)."""
        return UnpairedImageDataset(**options)

    def toy_items(self, split: str, **options: Any) -> Dataset:
        """The embedded toy world's items of ``split``, before flips and channel selection (``options``: more
        :class:`~zoo.data.toy_world.ToyUnpairedDataset` arguments)."""
        from .toy_world import ToyUnpairedDataset  # imported lazily: the toy world is only needed without a root

        length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
        return ToyUnpairedDataset(
            length=length,
            size=self.image_size,
            domain_a=self.toy_domain_a,
            domain_b=self.toy_domain_b,
            split=split,
            seed=self.seed,
            statistics=self.toy_statistics,
            **options,
        )

    def _toy_dataset(self, split: str) -> Dataset:
        channels = {"real_a": self.input_nc, "real_b": self.output_nc}
        return ToyAdapter(
            self.toy_items(split),
            seed=self.seed,
            no_flip=self.no_flip or split != "train",
            same_flip=False,
            channels=channels,
            swap=self.direction == "BtoA",
        )
