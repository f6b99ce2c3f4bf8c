"""Unpaired images with object boxes, for instance-aware methods (InstaFormer): dataset and DataModule.

:class:`BoxDataModule` is :class:`~zoo.data.UnpairedDataModule` (same folders, preprocessing and toy world) whose
batches also carry ``box_a`` / ``box_b``: float32 (B, num_box, 5) rows ``[label, x1, y1, x2, y2]``, normalised to
the final image and padded with -1 rows (the contract, the box formats and the rules for clipping, dropping and
keeping the largest boxes are in :mod:`zoo.data.boxes`). Training, validation, test and prediction batches all have
them; an image without stored boxes gets padding rows only.

Where the boxes are, for ``root`` with ``trainA`` / ``trainB`` (and ``testA``, ...):

- ``box_format="zoo"``: beside each image, ``<image stem>.json`` (``zoo toy-dataset`` writes these);
- ``box_format="coco"``: ``<root>/annotations/instances_<folder>.json`` per folder (e.g. ``instances_trainA.json``,
  as COCO's ``annotations/instances_train2017.json`` for ``train2017/``);
- ``box_format="init"``: ``<root>/annotations/<folder>.txt`` per folder, in the unverified INIT layout.

COCO ``file_name`` and INIT image paths are matched to the files by their path relative to the folder (a listed
path may have more leading folders, or fewer). Boxes move with their image: the same resize, crop and flip
(:meth:`~zoo.data.transforms.ImageTransform.geometry`), so a box drawn into an image covers the same pixels after
preprocessing. Without ``root`` the toy world's scenes give the boxes of their cars, people, poles, signs, traffic
lights, trucks and buses, in both domains, from the very scene each image shows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from kornia.augmentation import IntensityAugmentationBase2D
from torch.utils.data import Dataset

from .boxes import (
    BOX_FORMATS,
    TOY_CLASSES,
    BoxAnnotation,
    fit_boxes,
    identity_geometry,
    read_box_file,
    read_coco,
    read_init,
)
from .transforms import ImageGeometry
from .unpaired import UnpairedDataModule, UnpairedImageDataset

__all__ = ["BoxDataModule", "BoxImageDataset", "BoxSource"]


def annotation_file(root: Path, folder: Path, box_format: str) -> Path | None:
    """The annotation file of the images in ``folder`` (None for zoo's box files, which sit beside each image)."""
    if box_format == "coco":
        return root / "annotations" / f"instances_{folder.name}.json"
    if box_format == "init":
        return root / "annotations" / f"{folder.name}.txt"
    return None


def _key(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


class BoxSource:
    """The stored boxes of the image files in ``folders`` (see the module docstring for where they are).

    Args:
        root: Dataset folder.
        folders: Image folders under ``root`` (e.g. ``trainA``, ``trainB``).
        box_format: One of :data:`~zoo.data.boxes.BOX_FORMATS`.
    """

    def __init__(self, root: str | Path, folders: Sequence[Path], box_format: str) -> None:
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be one of {', '.join(BOX_FORMATS)}; got {box_format!r}.")
        self.box_format = box_format
        self.lists: dict[Path, dict[str, BoxAnnotation]] = {}
        self.names: dict[Path, dict[str, list[str]]] = {}  # file name -> listed paths, per folder
        for folder in folders:
            file = annotation_file(Path(root), folder, box_format)
            if file is None or not file.is_file():
                continue
            listed = read_coco(file) if box_format == "coco" else read_init(file)
            self.lists[folder] = {_key(path): annotation for path, annotation in listed.items()}
            names = self.names[folder] = {}
            for key in self.lists[folder]:
                names.setdefault(key.rsplit("/", 1)[-1], []).append(key)

    def __call__(self, path: Path) -> BoxAnnotation | None:
        """The boxes of the image file ``path`` (None: none stored)."""
        if self.box_format == "zoo":
            file = path.with_suffix(".json")
            return read_box_file(file) if file.is_file() else None
        folder = next((f for f in self.lists if path.is_relative_to(f)), None)
        if folder is None:
            return None
        relative = path.relative_to(folder).as_posix()
        matches = [key for key in self.names[folder].get(path.name, [])
                   if key == relative or key.endswith("/" + relative) or relative.endswith("/" + key)]
        if len(matches) > 1:
            raise ValueError(f"Image '{path}' matches several annotated paths ({', '.join(matches)}); the annotations "
                             "must name images by their paths relative to the image folder.")
        return self.lists[folder][matches[0]] if matches else None


class BoxImageDataset(UnpairedImageDataset):
    """:class:`~zoo.data.UnpairedImageDataset` items plus ``box_a`` / ``box_b`` (num_box, 5) float32, the boxes of
    each side's image moved by the resize, crop and flip it went through (whole prediction items: only normalised).

    Args:
        box_format: Where and how the boxes are stored, one of :data:`~zoo.data.boxes.BOX_FORMATS`.
        classes: Class names; label ``k`` is ``classes[k]`` and boxes of other names are left out.
        num_box: Rows of ``box_a`` / ``box_b``.
        options: The arguments of :class:`~zoo.data.UnpairedImageDataset`.
    """

    def __init__(self, *, box_format: str = "zoo", classes: Sequence[str] = TOY_CLASSES, num_box: int = 20,
                 **options: Any) -> None:
        super().__init__(**options)
        self.classes = tuple(classes)
        self.num_box = num_box
        self.boxes = BoxSource(self.root, (self.folder_a, self.folder_b), box_format)

    def side_annotations(self, path: Path, geometry: ImageGeometry) -> dict[str, Any]:
        return {"box": fit_boxes(self.boxes(path), geometry, classes=self.classes, num_box=self.num_box)}

    def load_item(self, index: int, *, rng: random.Random) -> dict[str, Any]:
        item = super().load_item(index, rng=rng)
        if self.whole:
            for side in "ab":
                height, width = item[f"real_{side}"].shape[-2:]
                path = Path(item[f"path_{side}"])
                item[f"box_{side}"] = self.side_annotations(path, identity_geometry(width, height))["box"]
        return item


class _ToyBoxes(Dataset):
    """Toy items whose ``boxes_a`` / ``boxes_b`` (pixel boxes of each side's scene) become ``box_a`` / ``box_b``
    tensors, before :class:`~zoo.data.datamodule.ToyAdapter` flips images and boxes together."""

    def __init__(self, dataset: Dataset, *, classes: Sequence[str], num_box: int) -> None:
        self.dataset = dataset
        self.classes = tuple(classes)
        self.num_box = num_box

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        for side in "ab":
            height, width = item[f"real_{side}"].shape[-2:]
            item[f"box_{side}"] = fit_boxes(BoxAnnotation(item.pop(f"boxes_{side}")), identity_geometry(width, height),
                                            classes=self.classes, num_box=self.num_box)
        return item


class BoxDataModule(UnpairedDataModule):
    """DataModule of unpaired domains with object boxes (InstaFormer): image folders with box annotations, or the
    embedded toy world when ``root`` is None. Batches: ``real_a`` / ``real_b`` (B, C, H, W) in [-1, 1] and
    ``box_a`` / ``box_b`` (B, num_box, 5) float32 (see the module docstring), plus ``path_*`` when read from files.

    Args:
        num_box: Rows of ``box_a`` / ``box_b`` per item (InstaFormer's ``num_box``: 20); more boxes than this keep the
            largest.
        box_format: ``zoo`` (a JSON file beside each image), ``coco`` or ``init`` (see the module docstring).
        classes: Class names, label ``k`` being ``classes[k]``; boxes of other classes are left out (labels stored as
            integers are used as they are). None: :data:`~zoo.data.boxes.TOY_CLASSES`, the toy world's object classes.
        kwargs: The arguments of :class:`~zoo.data.UnpairedDataModule` (``root``, ``load_size``, ``crop_size``,
            ``batch_size``, ...). ``augment`` may only change colours (kornia intensity transforms): a geometric
            augmentation would move the images without their boxes.
    """

    def __init__(
        self,
        *,
        num_box: int = 20,
        box_format: Literal["zoo", "coco", "init"] = "zoo",
        classes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        augment = kwargs.get("augment", False)
        if augment is True or (augment and not all(isinstance(t, IntensityAugmentationBase2D) for t in augment)):
            raise ValueError("BoxDataModule: augment may only hold colour (kornia intensity) transforms; geometric "
                             "augmentation would move the images without their boxes.")
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if box_format not in BOX_FORMATS:
            raise ValueError(f"BoxDataModule: box_format must be one of {', '.join(BOX_FORMATS)}; got {box_format!r}.")
        if num_box < 1:
            raise ValueError(f"BoxDataModule: num_box must be >= 1, got {num_box}.")
        self.num_box = num_box
        self.box_format = box_format
        self.classes = TOY_CLASSES if classes is None else tuple(classes)

    def check_root(self) -> None:
        super().check_root()
        if self.root is None:
            return
        root = Path(self.root)
        folders = (root / "trainA", root / "trainB")
        where = {folder: annotation_file(root, folder, self.box_format) for folder in folders}
        missing = [str(file or folder / "<image stem>.json") for folder, file in where.items()
                   if not (file.is_file() if file is not None else any(folder.rglob("*.json")))]
        if missing:
            raise FileNotFoundError(f"BoxDataModule (box_format={self.box_format!r}): no box annotations at "
                                    f"{', '.join(missing)}; see zoo.data.boxed for where they are expected.")

    def image_dataset(self, **options: Any) -> BoxImageDataset:
        return BoxImageDataset(**options, box_format=self.box_format, classes=self.classes, num_box=self.num_box)

    def toy_items(self, split: str, **options: Any) -> Dataset:
        return _ToyBoxes(super().toy_items(split, boxes=True, **options), classes=self.classes, num_box=self.num_box)
