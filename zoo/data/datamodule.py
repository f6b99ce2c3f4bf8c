"""Shared data-loading machinery: epoch-indexed datasets, a resumable sampler and the DataModule base class.

Reproducibility contract: every random choice a dataset makes for an item (crop, flip, the partner image of unpaired
data) comes from :func:`zoo.data.transforms.item_rng`, a pure function of (seed, epoch, index). The training sampler
yields ``(epoch, index)`` keys, so the epoch travels with every index into the loader's worker processes, and the
sampler's state (epoch, position) is saved by :class:`torchdata.stateful_dataloader.StatefulDataLoader`, whose state
Lightning stores in checkpoints. A run resumed mid-epoch, or run with any number of workers, therefore sees exactly the
same batches.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
    SequentialSampler,
    Subset,
    default_collate,
)
from torchdata.stateful_dataloader import StatefulDataLoader

from .augment import AugmentSetting, BatchAugmentBase, build_batch_augment
from .boxes import mirror_boxes
from .file_checks import BadFilesError, FileProblem, check_image_files, describe_problems
from .transforms import item_rng

__all__ = [
    "EpochDataset",
    "EpochSampler",
    "SizeGroupedBatchSampler",
    "ToyAdapter",
    "ToyPredictItems",
    "ZooDataModule",
    "relative_name",
    "seed_from",
    "to_grayscale",
]


def seed_from(*parts: int | str) -> int:
    """A 63-bit integer seed that is a pure function of ``parts`` (stable across processes)."""
    return random.Random(":".join(["zoo-seed", *map(str, parts)])).getrandbits(63)


def to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of an RGB tensor (3, H, W) in [-1, 1] -> (1, H, W) in [-1, 1] (the weights sum to 1)."""
    r, g, b = image.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


# --------------------------------------------------------------------------------------------------------------------
# Datasets and sampler
# --------------------------------------------------------------------------------------------------------------------


class EpochDataset(Dataset):
    """Map-style dataset whose item randomness is a pure function of (seed, epoch, index).

    Subclasses set ``self.seed`` and implement ``__len__`` and :meth:`load_item`. An item is requested either with an
    ``int`` index (using the epoch given to :meth:`set_epoch`, 0 by default) or with an ``(epoch, index)`` tuple, which
    is what :class:`EpochSampler` yields.
    """

    seed: int = 0
    epoch: int = 0
    item_epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for items requested with a plain integer index."""
        self.epoch = int(epoch)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        """Build item ``index`` drawing every random choice from ``rng``."""
        raise NotImplementedError

    def check_item(self, item: dict[str, Any], index: int) -> None:
        """Hook to validate an item produced by :meth:`__getitem__` (raise a clear error naming the files)."""

    def files_to_check(self) -> dict[Path, int]:
        """Every image file the items read, mapped to the smallest width and height it must have (0: any size);
        :class:`ZooDataModule` checks them before the first iteration (:mod:`zoo.data.file_checks`)."""
        return {}

    def exclude_files(self, files: set[Path]) -> None:
        """Leave out every item that reads one of ``files`` (paths as :meth:`files_to_check` gives them).

        Raises:
            ValueError: No item would be left.
        """
        if files:
            raise NotImplementedError(f"{type(self).__name__} cannot leave files out.")

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))
        length = len(self)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {length} items.")
        self.item_epoch = epoch  # the epoch of the item being built, for epoch-dependent preprocessing
        item = self.load_item(index, rng=item_rng(self.seed, epoch, index))
        self.check_item(item, index)
        return item


class EpochSampler(DistributedSampler):
    """Seeded shuffling sampler that yields ``(epoch, index)`` and can resume mid-epoch.

    The permutation of epoch ``e`` is ``torch.randperm`` with seed ``seed + e`` (as ``DistributedSampler``), split
    across ``num_replicas`` ranks. Being a ``DistributedSampler``, Lightning keeps it under DDP instead of wrapping it;
    Lightning calls :meth:`set_epoch` at the start of every epoch. :meth:`state_dict` / :meth:`load_state_dict` follow
    torchdata's ``Stateful`` protocol, so ``StatefulDataLoader`` saves the epoch and position and resumes without
    replaying the dataset.

    Args:
        dataset: The dataset (only its length is used).
        shuffle: Shuffle every epoch; False gives 0, 1, 2, ... (the official ``serial_batches``).
        seed: Shuffling seed.
        num_replicas: Number of distributed ranks.
        rank: This process's rank.
        drop_last: Drop the tail so every rank gets the same number of items (else the tail is padded by repetition).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.yielded = 0
        self._resume_at: int | None = None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # A generator: the epoch is read at the first next(), so set_epoch() may follow iter() (Lightning does this).
        start, self._resume_at = (self._resume_at or 0), None
        epoch = self.epoch
        indices = list(super().__iter__())
        self.yielded = start
        for index in indices[start:]:
            self.yielded += 1
            yield epoch, index

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "yielded": self.yielded}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        missing = {"epoch", "yielded"} - set(state_dict)
        if missing:
            raise KeyError(f"EpochSampler.load_state_dict: missing keys {sorted(missing)} in {sorted(state_dict)}.")
        self.epoch = int(state_dict["epoch"])
        self._resume_at = int(state_dict["yielded"])


def _swap_side(key: str) -> str:
    if key.endswith("_a"):
        return key[:-2] + "_b"
    if key.endswith("_b"):
        return key[:-2] + "_a"
    return key


class ToyAdapter(EpochDataset):
    """Adds the training-time random horizontal flip and channel selection to an embedded toy-world dataset.

    Toy items are already tensors (C, H, W) in [-1, 1]. Every tensor with at least two dimensions (images, masks,
    label maps) is flipped along its width, and object boxes (keys ``box_*``, see :mod:`zoo.data.boxes`) are mirrored
    with their side; with ``same_flip`` one draw covers the whole item (paired data), otherwise
    keys ending in ``_b`` share one draw and all other keys another (unpaired data).

    Args:
        dataset: Toy-world dataset returning dicts.
        seed: Seed of the per-item flips.
        no_flip: Disable flipping.
        same_flip: One flip for all image keys of an item.
        channels: Wanted channel count per key (e.g. ``{"real_a": 1}``, keys after ``swap``); 3-channel images are
            reduced to luma.
        swap: Exchange the ``_a`` and ``_b`` keys (direction ``BtoA``).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        seed: int = 0,
        no_flip: bool = False,
        same_flip: bool = True,
        channels: dict[str, int] | None = None,
        swap: bool = False,
    ) -> None:
        self.dataset = dataset
        self.swap = swap
        self.seed = seed
        self.no_flip = no_flip
        self.same_flip = same_flip
        self.channels = dict(channels or {})

    def __len__(self) -> int:
        return len(self.dataset)

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        item = dict(self.dataset[index])
        if self.swap:
            item = {_swap_side(key): value for key, value in item.items()}
        flips = {"a": rng.random() < 0.5, "b": rng.random() < 0.5}
        for key, value in item.items():
            # Every spatial tensor (images, masks, label maps) is flipped with its side, so they stay aligned.
            if not isinstance(value, torch.Tensor) or value.ndim < 2:
                continue
            group = "b" if key.endswith("_b") and not self.same_flip else "a"
            flip = not self.no_flip and flips[group]
            if key.startswith("box_"):  # object boxes (N, 5) [label, x1, y1, x2, y2], normalised: mirrored
                item[key] = mirror_boxes(value) if flip else value
                continue
            if flip:
                value = value.flip(-1)
            wanted = self.channels.get(key)
            if wanted is not None and wanted != value.shape[-3]:
                if wanted == 1 and value.shape[-3] == 3:
                    value = to_grayscale(value)
                else:
                    raise ValueError(f"Toy item key '{key}' has {value.shape[-3]} channels; cannot make {wanted}.")
            item[key] = value
        return item


class SizeGroupedBatchSampler(BatchSampler):
    """Batches of *consecutive* indices whose items have the same size, in the order of ``sampler``.

    A new batch starts when the size changes or the batch is full, so images of different sizes are never collated
    together and the order is kept (a folder of equal-sized images gives full batches). Being a ``BatchSampler`` with
    ``sampler`` / ``batch_size`` / ``drop_last`` arguments, Lightning can substitute a distributed sampler for
    ``sampler`` and ``drop_last=False`` when predicting.

    Args:
        sampler: Index order (e.g. ``SequentialSampler``).
        batch_size: Most items per batch.
        drop_last: Drop every batch shorter than ``batch_size``.
        size_of: Size key of an index (e.g. ``((H_a, W_a), (H_b, W_b))``); items of equal keys may share a batch.
    """

    def __init__(self, sampler: Sampler[int] | Sequence[int], batch_size: int, drop_last: bool = False, *,
                 size_of: Callable[[int], Hashable]) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.size_of = size_of
        self._sizes: dict[int, Hashable] = {}

    def _size(self, index: int) -> Hashable:
        if index not in self._sizes:
            self._sizes[index] = self.size_of(index)
        return self._sizes[index]

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        key: Hashable = None
        for index in self.sampler:
            size = self._size(index)
            if batch and (size != key or len(batch) == self.batch_size):
                if len(batch) == self.batch_size or not self.drop_last:
                    yield batch
                batch = []
            key = size
            batch.append(index)
        if batch and (len(batch) == self.batch_size or not self.drop_last):
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return sum(1 for _ in self)
        count, previous, run = 0, object(), 0
        for index in self.sampler:
            size = self._size(index)
            if size != previous or run == self.batch_size:
                count, run, previous = count + 1, 0, size
            run += 1
        return count


def relative_name(path: str | Path, folder: str | Path) -> str:
    """``path`` relative to ``folder`` as a POSIX string (``sub/dir/img.jpg``); the file name when outside it."""
    path, folder = Path(path), Path(folder)
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


class ToyPredictItems(Dataset):
    """Names toy-world items for prediction: adds ``path_*`` / ``relpath_*`` = ``toy_00003.png`` for every side.

    Toy items all have one size (the DataModule's image side), so :meth:`item_size` is constant.

    Args:
        dataset: Deterministic toy dataset (the test split) returning dicts with ``real_a`` (and ``real_b``).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def item_size(self, index: int) -> Hashable:
        """Size key of item ``index``: the same for all items."""
        return 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        name = f"toy_{int(index):05d}.png"
        for side in ("a", "b"):
            if f"real_{side}" in item:
                item[f"path_{side}"] = name
                item[f"relpath_{side}"] = name
        return item


def pick_phase(split: str, *, val_phase: str | None, root: str | Path, exists: Callable[[str], bool]) -> str:
    """Folder phase serving ``split``: ``train`` for training; for "val" an explicit ``val_phase``, else the first
    existing of val/test/train; for "test" the first existing of test/val/train.

    Args:
        split: "train", "val" or "test".
        val_phase: phase chosen by the user for validation, or None.
        root: dataset folder (for the error message).
        exists: whether the folders of a phase exist under ``root``.
    """
    if split == "train":
        return "train"
    if split == "val" and val_phase is not None:
        if not exists(val_phase):
            raise FileNotFoundError(f"val_phase '{val_phase}' not found under '{root}'.")
        return val_phase
    order = ("val", "test", "train") if split == "val" else ("test", "val", "train")
    return next(phase for phase in order if exists(phase))


# --------------------------------------------------------------------------------------------------------------------
# DataModule base
# --------------------------------------------------------------------------------------------------------------------


class ZooDataModule(L.LightningDataModule):
    """Base class of zoo's DataModules: loaders, resumable shuffling, fixed validation images, GPU augmentation.

    Subclasses implement :meth:`build_dataset` and :meth:`build_predict_dataset` and may override :meth:`check_root`.
    Batches are dicts of ``real_a`` / ``real_b`` float tensors (B, C, H, W) in [-1, 1], plus ``path_a`` / ``path_b``
    (lists of str) when read from files.

    Prediction (:meth:`predict_dataloader`) reads the test split's files whole: every item has ``real_a`` (and
    ``real_b`` when the data have a B side) at the file's own size, converted to the side's channel count and
    normalised to [-1, 1] as the test images are (no resize, crop or flip), plus ``path_a`` / ``path_b`` and
    ``relpath_a`` / ``relpath_b``: the file relative to the folder its split was read from (``sub/dir/img.jpg``), so
    results can mirror the input layout; toy-world items are named ``toy_00003.png``. Batches hold up to
    ``val_batch_size`` *consecutive* items of one size (:class:`SizeGroupedBatchSampler`): a size change starts a new
    batch, so items keep their order and images of different sizes are never collated together.

    Args:
        batch_size: Training batch size (the official default is 1).
        num_workers: Data-loading worker processes (0: load in the main process).
        val_batch_size: Batch size of the validation/test/predict loaders (None: ``batch_size``).
        val_size: Number of fixed validation images (None: the whole validation split).
        serial_batches: Take training items in order instead of shuffling (unpaired data then also pairs A[i] with
            B[i]), as the official ``serial_batches``.
        seed: Seed of shuffling and of every per-item random choice.
        augment: GPU augmentation of training batches after they reach the device: ``True`` runs
            :class:`~zoo.data.augment.BatchAugment`, a list of kornia transforms (``class_path`` / ``init_args`` in
            YAML) runs :class:`~zoo.data.augment.KorniaBatchAugment` (see :mod:`zoo.data.augment`).
        pin_memory: Pin host memory for faster GPU transfer (None: when CUDA is available).
        check_files: Check every image file of a split when it is set up, before the first iteration (header,
            size, a cheap decode; cached by file size and time, see :mod:`zoo.data.file_checks`); all unusable files
            are named in one error.
        skip_bad_files: Leave unusable files out instead of stopping (they are listed in a warning and kept in
            :attr:`skipped_files`).
    """

    #: Whether both sides of an item share geometry (paired data); used for GPU augmentation.
    paired: bool = True

    def __init__(
        self,
        *,
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
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}.")
        if val_size is not None and val_size < 1:
            raise ValueError(f"val_size must be >= 1 or None (all), got {val_size}.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_batch_size = val_batch_size or batch_size
        self.val_size = val_size
        self.serial_batches = serial_batches
        self.seed = seed
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.check_files = check_files
        self.skip_bad_files = skip_bad_files
        self.skipped_files: list[FileProblem] = []
        self.batch_augment: BatchAugmentBase | None = build_batch_augment(augment, paired=self.paired)
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.predict_dataset: Dataset | None = None

    def save_hyperparameters(self, *args: Any, **kwargs: Any) -> None:
        """As Lightning's; kornia transform objects given to ``augment`` in Python are recorded by their ``repr``, so
        checkpoints hold plain values only and load with ``weights_only=True`` (the ``zoo`` command records the
        config's ``class_path`` / ``init_args`` entries instead)."""
        kwargs.setdefault("frame", inspect.currentframe().f_back)
        super().save_hyperparameters(*args, **kwargs)
        augment = self.hparams.get("augment")
        if isinstance(augment, (list, tuple)):
            self.hparams["augment"] = [repr(item) if isinstance(item, torch.nn.Module) else item for item in augment]

    # -- to implement ------------------------------------------------------------------------------------------------

    def check_root(self) -> None:
        """Raise a clear error when the data folder is missing or has the wrong layout (called by :meth:`setup`)."""

    def build_dataset(self, split: str) -> Dataset:
        """Dataset of ``split`` ("train", "val" or "test"); "val"/"test" must be deterministic and unflipped."""
        raise NotImplementedError

    def build_predict_dataset(self) -> Dataset:
        """Test split read whole for prediction (see the class docstring); items may provide ``item_size(index)``,
        a size key that lets equal-sized consecutive items share a batch (without it every batch holds one item)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build_predict_dataset().")

    # -- Lightning hooks ---------------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs ("fit", "validate", "test", "predict"; None builds all)."""
        self.check_root()
        if stage in ("fit", None) and self.train_dataset is None:
            self.train_dataset = self._checked(self.build_dataset("train"))
        if stage in ("fit", "validate", None) and self.val_dataset is None:
            self.val_dataset = self._first(self._checked(self.build_dataset("val")), self.val_size)
        if stage in ("test", "predict", None) and self.test_dataset is None:
            self.test_dataset = self._checked(self.build_dataset("test"))
        if stage in ("predict", None) and self.predict_dataset is None:
            self.predict_dataset = self._checked(self.build_predict_dataset())

    def _checked(self, dataset: Dataset) -> Dataset:
        """``dataset`` once its files passed :func:`~zoo.data.file_checks.check_image_files`; with
        ``skip_bad_files`` the unusable ones are left out and listed, otherwise :class:`BadFilesError` names them."""
        files_to_check = getattr(dataset, "files_to_check", None)
        if not self.check_files or files_to_check is None:
            return dataset
        required = files_to_check()
        problems = check_image_files(required, min_side=required) if required else []
        if not problems:
            return dataset
        counted = f"{len(problems)} of {len(required)} image files"
        if not self.skip_bad_files:
            raise BadFilesError(
                f"{counted} cannot be used: {describe_problems(problems)}. Fix or remove them, or set "
                "skip_bad_files: true in the data config (--data.init_args.skip_bad_files=true) to leave them out.",
                problems,
            )
        dataset.exclude_files({problem.path for problem in problems})
        known = {problem.path for problem in self.skipped_files}
        self.skipped_files.extend(problem for problem in problems if problem.path not in known)
        rank_zero_warn(f"Leaving out {counted} that cannot be used (skip_bad_files): {describe_problems(problems)}.")
        return dataset

    def train_dataloader(self) -> StatefulDataLoader:
        """Shuffled (seeded) training loader that resumes exactly mid-epoch; items come as ``(epoch, index)``."""
        dataset = self._require("train_dataset", "fit")
        trainer = self._trainer_or_none()
        num_replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        sampler = EpochSampler(
            dataset, shuffle=not self.serial_batches, seed=self.seed, num_replicas=num_replicas, rank=rank
        )
        return StatefulDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        """Loader over the fixed validation images (same images, same order, no flips, every time)."""
        return self._eval_loader(self._require("val_dataset", "validate"))

    def test_dataloader(self) -> DataLoader:
        """Loader over the test split (fixed, in order, no flips)."""
        return self._eval_loader(self._require("test_dataset", "test"))

    def predict_dataloader(self) -> DataLoader:
        """Loader over the test split read whole (original sizes, with relative paths), in order; a batch holds up to
        ``val_batch_size`` consecutive items of one size (see the class docstring)."""
        dataset = self._require("predict_dataset", "predict")
        size_of = getattr(dataset, "item_size", None)
        batches = SizeGroupedBatchSampler(
            SequentialSampler(dataset), self.val_batch_size, size_of=size_of if size_of is not None else int
        )
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Apply GPU augmentation to training batches only (seeded per step so resumed runs repeat it)."""
        trainer = self._trainer_or_none()
        if self.batch_augment is None or trainer is None or not trainer.training or not isinstance(batch, dict):
            return batch
        step = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        return self.batch_augment(batch, seed=seed_from(self.seed, "augment", step))

    # -- helpers -----------------------------------------------------------------------------------------------------

    def fixed_batch(self, n: int | None = None, *, split: str = "val") -> dict[str, Any]:
        """Collate the first ``n`` items of the fixed ``split`` ("val" or "test") into one batch, e.g. for image grids.

        Args:
            n: Number of items (None: ``val_size`` or the whole split).
            split: "val" or "test".

        Returns:
            A batch dict (``real_a`` (n, C, H, W) in [-1, 1], ...), on the CPU.
        """
        if split not in ("val", "test"):
            raise ValueError(f"fixed_batch: split must be 'val' or 'test', got '{split}'.")
        attribute = f"{split}_dataset"
        if getattr(self, attribute) is None:
            self.setup("validate" if split == "val" else "test")
        dataset = getattr(self, attribute)
        count = len(dataset) if n is None else min(n, len(dataset))
        return default_collate([dataset[i] for i in range(count)])

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    @staticmethod
    def _first(dataset: Dataset, count: int | None) -> Dataset:
        if count is None or count >= len(dataset):
            return dataset
        return Subset(dataset, range(count))

    def _require(self, attribute: str, stage: str) -> Dataset:
        dataset = getattr(self, attribute)
        if dataset is None:
            self.setup(stage)
            dataset = getattr(self, attribute)
        return dataset

    def _trainer_or_none(self) -> Any:
        return getattr(self, "trainer", None)
