"""Paired (aligned) image data for pix2pix-style methods: dataset and DataModule.

Two folder layouts are read:

- ``side_by_side`` (the official ``aligned`` mode): every file in ``<root>/<phase>`` holds A | B side by side; it is
  split at ``int(width / 2)`` into A = columns [0, w2) and B = [w2, width).
- ``folders``: ``<root>/<phase>A`` and ``<root>/<phase>B`` hold A and B images matched by file name without suffix
  (relative path, so sub-folders are matched too).

Both sides of a pair get the same crop and flip from one :func:`~zoo.data.transforms.get_params` draw. Prediction
reads the test pairs whole (``whole=True``): both halves (or both files) at their stored size, with ``relpath_a`` /
``relpath_b`` relative to the phase folder(s).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from torch.utils.data import Dataset

from .augment import AugmentSetting
from .datamodule import EpochDataset, ToyAdapter, ToyPredictItems, ZooDataModule, pick_phase, relative_name
from .io import list_images, load_image, read_image_size
from .transforms import check_preprocess, get_params, get_transform, to_model_tensor

__all__ = ["PairedImageDataset", "PairedDataModule", "PAIRED_LAYOUTS"]

PAIRED_LAYOUTS = ("side_by_side", "folders")

_PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/<name>.tar.gz"


def _check_direction(direction: str) -> None:
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got '{direction}'.")


def _check_channels(input_nc: int, output_nc: int) -> None:
    for name, value in (("input_nc", input_nc), ("output_nc", output_nc)):
        if value not in (1, 3):
            raise ValueError(f"{name} must be 1 (grayscale) or 3 (RGB), got {value}.")


def _match_by_stem(folder_a: Path, folder_b: Path, paths_a: list[Path], paths_b: list[Path]) -> list[tuple[Path, Path]]:
    def keyed(folder: Path, paths: list[Path]) -> dict[str, Path]:
        table: dict[str, Path] = {}
        for path in paths:
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in table:
                raise ValueError(
                    f"Two images share the name '{key}' in '{folder}': '{table[key].name}', '{path.name}'."
                )
            table[key] = path
        return table

    table_a, table_b = keyed(folder_a, paths_a), keyed(folder_b, paths_b)
    only_a = sorted(set(table_a) - set(table_b))
    only_b = sorted(set(table_b) - set(table_a))
    if only_a or only_b:
        lines = [
            f"Paired folders '{folder_a}' and '{folder_b}' do not match file for file (matched by name without "
            f"suffix): {len(only_a)} image(s) only in A, {len(only_b)} only in B."
        ]
        if only_a:
            lines.append(f"  only in A, e.g.: {', '.join(only_a[:5])}")
        if only_b:
            lines.append(f"  only in B, e.g.: {', '.join(only_b[:5])}")
        raise ValueError("\n".join(lines))
    return [(table_a[key], table_b[key]) for key in sorted(table_a)]


def _whole_pair(file_a: tuple[Image.Image, Path, Path], file_b: tuple[Image.Image, Path, Path], *, input_nc: int,
                output_nc: int, direction: str) -> dict[str, Any]:
    """Prediction item from the (image, file, folder) of the A and B sides: whole images at their stored size.

    Returns:
        ``real_a`` (input_nc, H_a, W_a) and ``real_b`` (output_nc, H_b, W_b) float32 in [-1, 1], ``path_*`` and
        ``relpath_*`` (the file relative to its folder); with ``BtoA`` the B file is side a.
    """
    sides = [file_a, file_b] if direction == "AtoB" else [file_b, file_a]
    item: dict[str, Any] = {}
    for side, (image, path, folder), channels in zip("ab", sides, (input_nc, output_nc), strict=True):
        item[f"real_{side}"] = to_model_tensor(image, grayscale=channels == 1)
        item[f"path_{side}"] = str(path)
        item[f"relpath_{side}"] = relative_name(path, folder)
    return item


class PairedImageDataset(EpochDataset):
    """Aligned image pairs read from disk, preprocessed exactly as the official ``AlignedDataset``.

    Args:
        root: Dataset folder (e.g. ``datasets/facades``).
        phase: Sub-folder (``train``, ``val``, ``test``); ``folders`` layout reads ``<phase>A`` / ``<phase>B``.
        layout: ``side_by_side`` (A | B in one file) or ``folders``.
        direction: ``AtoB`` (``real_a`` = A) or ``BtoA`` (``real_a`` = B; the official ``--direction BtoA``).
        preprocess: One of :data:`~zoo.data.transforms.PREPROCESS_OPTIONS`.
        load_size: Resize target (see :mod:`zoo.data.transforms`).
        crop_size: Crop side.
        no_flip: Disable the random horizontal flip.
        input_nc: Channels of ``real_a`` (1 converts to luma).
        output_nc: Channels of ``real_b``.
        seed: Seed of the per-item random choices.
        max_dataset_size: Use only the first this many pairs (sorted by path).
        whole: Prediction items: both sides at their stored size (no resize, crop or flip; an A|B file is split at
            ``int(width / 2)``), plus ``relpath_a`` / ``relpath_b``; the preprocessing options are then unused.

    Items are dicts: ``real_a`` (input_nc, H, W) and ``real_b`` (output_nc, H, W) float tensors in [-1, 1], and
    ``path_a`` / ``path_b`` (the same file for ``side_by_side``).
    """

    def __init__(
        self,
        *,
        root: str | Path,
        phase: str = "train",
        layout: Literal["side_by_side", "folders"] = "side_by_side",
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        no_flip: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
        seed: int = 0,
        max_dataset_size: int | None = None,
        whole: bool = False,
    ) -> None:
        if layout not in PAIRED_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(PAIRED_LAYOUTS)}, got '{layout}'.")
        _check_direction(direction)
        _check_channels(input_nc, output_nc)
        check_preprocess(preprocess, load_size=load_size, crop_size=crop_size)
        if "crop" in preprocess and preprocess != "crop" and load_size < crop_size:
            raise ValueError(
                f"load_size ({load_size}) must be >= crop_size ({crop_size}) for preprocess '{preprocess}'."
            )
        self.root = Path(root)
        self.phase = phase
        self.layout = layout
        self.direction = direction
        self.preprocess = preprocess
        self.load_size = load_size
        self.crop_size = crop_size
        self.no_flip = no_flip
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.seed = seed
        self.whole = whole
        if layout == "side_by_side":
            files = list_images(self.root / phase, recursive=True)
            self.pairs = [(path, path) for path in files]
            self.folders = (self.root / phase, self.root / phase)
        else:
            folder_a, folder_b = self.root / f"{phase}A", self.root / f"{phase}B"
            paths_a, paths_b = list_images(folder_a, recursive=True), list_images(folder_b, recursive=True)
            self.pairs = _match_by_stem(folder_a, folder_b, paths_a, paths_b)
            self.folders = (folder_a, folder_b)
        if max_dataset_size is not None:
            self.pairs = self.pairs[:max_dataset_size]

    def __len__(self) -> int:
        return len(self.pairs)

    def files_to_check(self) -> dict[Path, int]:
        """Every A and B file (an A|B file once), any size."""
        return {path: 0 for pair in self.pairs for path in pair}

    def exclude_files(self, files: set[Path]) -> None:
        """Leave out the pairs that read one of ``files``."""
        self.pairs = [pair for pair in self.pairs if not files.intersection(pair)]
        if not self.pairs:
            raise ValueError(f"No usable pair is left under '{self.root}' once the unusable files are left out.")

    def item_size(self, index: int) -> tuple[tuple[int, int], ...]:
        """Size key of a whole item: the (width, height) of its file(s), read from the headers."""
        path_a, path_b = self.pairs[index]
        if self.layout == "side_by_side":
            return (read_image_size(path_a),)
        return read_image_size(path_a), read_image_size(path_b)

    def _load_pair(self, index: int) -> tuple[Image.Image, Image.Image, Path, Path]:
        """Pair ``index`` as stored: A and B images (a side-by-side file split at ``int(w / 2)``) and their files."""
        path_a, path_b = self.pairs[index]
        if self.layout == "side_by_side":
            ab = load_image(path_a, channels=3)
            w, h = ab.size
            if w < 2:
                raise ValueError(f"'{path_a}' is {w} pixel(s) wide; a side-by-side A|B image needs at least 2.")
            w2 = int(w / 2)
            return ab.crop((0, 0, w2, h)), ab.crop((w2, 0, w, h)), path_a, path_b
        return load_image(path_a, channels=3), load_image(path_b, channels=3), path_a, path_b

    def _whole_item(self, index: int) -> dict[str, Any]:
        image_a, image_b, path_a, path_b = self._load_pair(index)
        return _whole_pair((image_a, path_a, self.folders[0]), (image_b, path_b, self.folders[1]),
                           input_nc=self.input_nc, output_nc=self.output_nc, direction=self.direction)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Item ``index`` with its crop/flip drawn from ``rng`` (x, then y, then flip, as the official code)."""
        if self.whole:
            return self._whole_item(index)
        image_a, image_b, path_a, path_b = self._load_pair(index)
        params = get_params(
            preprocess=self.preprocess, load_size=self.load_size, crop_size=self.crop_size, size=image_a.size, rng=rng
        )
        # The model's input side (real_a) has input_nc channels; with BtoA that side is the file's B.
        nc_a, nc_b = (self.input_nc, self.output_nc) if self.direction == "AtoB" else (self.output_nc, self.input_nc)
        options = dict(
            preprocess=self.preprocess,
            load_size=self.load_size,
            crop_size=self.crop_size,
            no_flip=self.no_flip,
            params=params,
        )
        tensor_a = get_transform(**options, grayscale=nc_a == 1)(image_a)
        tensor_b = get_transform(**options, grayscale=nc_b == 1)(image_b)
        if self.direction == "BtoA":
            tensor_a, tensor_b, path_a, path_b = tensor_b, tensor_a, path_b, path_a
        return {"real_a": tensor_a, "real_b": tensor_b, "path_a": str(path_a), "path_b": str(path_b)}

    def check_item(self, item: dict[str, Any], index: int) -> None:
        if self.whole:
            return  # whole A|B halves may differ by a column; items are batched by size
        size_a, size_b = tuple(item["real_a"].shape[-2:]), tuple(item["real_b"].shape[-2:])
        if size_a != size_b:
            raise ValueError(
                f"Pair {index} ('{item['path_a']}', '{item['path_b']}') gives A of size {size_a} but B of size "
                f"{size_b} after preprocess '{self.preprocess}'; use equal-sized A and B (an even-width A|B file) or a "
                "resize."
            )


def _layout_help(root: Path | str, layout: str) -> str:
    if layout == "side_by_side":
        expected = (
            f"side-by-side A|B images in '{root}/train' (and optionally '{root}/val', '{root}/test'), e.g. the pix2pix "
            "facades set as datasets/facades/{train,val,test}/*.jpg"
        )
    else:
        expected = (
            f"matching A and B images in '{root}/trainA' and '{root}/trainB' (and optionally valA/valB, testA/testB)"
        )
    return (
        f"Expected {expected}. The pix2pix datasets (facades, maps, cityscapes, edges2shoes, ...) can be downloaded "
        f"from {_PIX2PIX_URL} and unpacked so that '{root}' is the folder holding train/. "
        "Pass --data.root=null to use the embedded toy world instead."
    )


class PairedDataModule(ZooDataModule):
    """DataModule of aligned pairs (pix2pix): image folders, or the embedded toy world when ``root`` is None.

    Args:
        root: Dataset folder, or None for the embedded procedural toy world.
        layout: ``side_by_side`` (``<root>/<phase>/*`` with A | B in one file) or ``folders``
            (``<root>/<phase>A``, ``<root>/<phase>B``).
        direction: ``AtoB`` or ``BtoA`` (swap which side is the input).
        preprocess: Training preprocessing (official default ``resize_and_crop``).
        load_size: Resize target (official default 286).
        crop_size: Crop side (official default 256).
        no_flip: Disable the random horizontal flip during training.
        input_nc: Channels of ``real_a``.
        output_nc: Channels of ``real_b``.
        val_phase: Folder used for validation (None: ``val`` if present, else ``test``, else ``train``).
        val_load_size: Resize target of validation/test images (None: ``crop_size``, as the official test script).
        max_dataset_size: Use only the first this many training pairs.
        toy_task: Toy-world task (``label2photo`` or ``sim2photo``) when ``root`` is None.
        image_size: Toy-world image side (None: ``crop_size``).
        toy_length: Number of toy-world training pairs.
        toy_test_length: Number of toy-world test pairs (validation uses ``val_size``).
        batch_size: See :class:`~zoo.data.datamodule.ZooDataModule` for this and the remaining loader options.
    """

    paired = True

    def __init__(
        self,
        *,
        root: str | None = None,
        layout: Literal["side_by_side", "folders"] = "side_by_side",
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
        toy_task: Literal["label2photo", "sim2photo"] = "label2photo",
        image_size: int | None = None,
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
        if layout not in PAIRED_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(PAIRED_LAYOUTS)}, got '{layout}'.")
        _check_direction(direction)
        _check_channels(input_nc, output_nc)
        check_preprocess(preprocess, load_size=load_size, crop_size=crop_size)
        self.root = root
        self.layout = layout
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
        self.toy_task = toy_task
        self.image_size = image_size or crop_size
        self.toy_length = toy_length
        self.toy_test_length = toy_test_length

    def check_root(self) -> None:
        if self.root is None:
            return
        root = Path(self.root)
        first = root / ("train" if self.layout == "side_by_side" else "trainA")
        if not root.is_dir() or not first.is_dir():
            missing = root if not root.is_dir() else first
            raise FileNotFoundError(
                f"Paired data folder '{missing}' does not exist. {_layout_help(self.root, self.layout)}"
            )

    def _phase_exists(self, phase: str) -> bool:
        root = Path(self.root)
        return (root / phase).is_dir() if self.layout == "side_by_side" else (root / f"{phase}A").is_dir()

    def _phase(self, split: str) -> str:
        return pick_phase(split, val_phase=self.val_phase, root=self.root, exists=self._phase_exists)

    def eval_load_size(self) -> int:
        """Resize target of validation/test images: ``val_load_size``, else ``crop_size`` (as the official test)."""
        return self.val_load_size or self.crop_size

    def build_dataset(self, split: str, *, whole: bool = False) -> Dataset:
        if self.root is None:
            return ToyPredictItems(self._toy_dataset(split)) if whole else self._toy_dataset(split)
        train = split == "train"
        return PairedImageDataset(
            root=self.root,
            phase=self._phase(split),
            layout=self.layout,
            direction=self.direction,
            preprocess=self.preprocess,
            load_size=self.load_size if train else self.eval_load_size(),
            crop_size=self.crop_size,
            no_flip=self.no_flip or not train,
            input_nc=self.input_nc,
            output_nc=self.output_nc,
            seed=self.seed,
            max_dataset_size=self.max_dataset_size if train else None,
            whole=whole,
        )

    def build_predict_dataset(self) -> Dataset:
        """The test pairs whole, at their stored sizes (see :class:`~zoo.data.datamodule.ZooDataModule`)."""
        return self.build_dataset("test", whole=True)

    def _toy_dataset(self, split: str) -> Dataset:
        from .toy_world import ToyPairedDataset  # imported lazily: the toy world is only needed without a root

        length = {"train": self.toy_length, "val": self.val_size or 8, "test": self.toy_test_length}[split]
        dataset = ToyPairedDataset(length=length, size=self.image_size, task=self.toy_task, split=split, seed=self.seed)
        channels = {"real_a": self.input_nc, "real_b": self.output_nc}
        return ToyAdapter(
            dataset,
            seed=self.seed,
            no_flip=self.no_flip or split != "train",
            same_flip=True,
            channels=channels,
            swap=self.direction == "BtoA",
        )
