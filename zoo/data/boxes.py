"""Object boxes as data, for instance-aware methods (InstaFormer): box files, readers, geometry and padding.

Batch contract. :class:`~zoo.data.boxed.BoxDataModule` adds ``box_a`` / ``box_b`` to the ``real_a`` / ``real_b``
batches of :class:`~zoo.data.UnpairedDataModule`: float32 tensors (B, num_box, 5) whose rows are
``[label, x1, y1, x2, y2]``, ``label`` a class index (>= 0) and the corners normalised to [0, 1] relative to the final
image (after the resize, crop and flip the image went through, :meth:`~zoo.data.transforms.ImageGeometry.map_boxes`).
Rows of all -1 pad each item to ``num_box`` rows; only ``label == -1`` marks padding. :func:`fit_boxes` makes them:

- a box partly outside the crop is clipped to it; a box entirely outside, or left with zero width or height, is
  dropped;
- with more than ``num_box`` boxes left, the ``num_box`` largest (by area in the final image; ties: the earlier one)
  are kept, in their original order (:func:`pad_boxes`);
- a box whose class is not in ``classes`` is left out.

zoo's box files (format ``"zoo"``). One JSON file beside each image, ``<image stem>.json``, with the image's size and
its boxes in pixels::

    {"size": [height, width],
     "boxes": [{"label": "car", "bbox": [x0, y0, x1, y1]}, ...]}

``bbox`` holds continuous pixel coordinates: a box covering columns 3 to 7 and rows 2 to 4 is ``[3, 2, 8, 5]``.
``label`` is a class name (looked up in ``classes``) or a class index (an int, used as it is). Other keys are
ignored (the toy world writes an ``instance`` id too). ``size`` is the size the boxes refer to: an image stored at
another size has its boxes scaled to it. :func:`write_toy_dataset <zoo.data.toy_world.write_toy_dataset>` writes
exactly these files (``zoo toy-dataset FOLDER``); :func:`read_box_file` and :func:`write_box_file` read and write
them.

COCO (``"coco"``). One ``instances_*.json`` per image folder (:func:`read_coco`): ``images`` (``id``,
``file_name``, ``height``, ``width``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]`` in
pixels, ``iscrowd``) and ``categories`` (``id``, ``name``); labels are the category names. Crowd regions
(``iscrowd: 1``) are not instances and are left out.

INIT (``"init"``; Shen et al., CVPR 2019, the dataset of the InstaFormer paper). The dataset's own documentation of
its annotation files could not be found, and the InstaFormer repository published no loader (its ``data.py`` is
missing, cvlab-kaist/InstaFormer issue #4). :func:`read_init` follows the only public INIT reader found (a
third-party ``INITDataset`` class, not the authors'), so it is **unverified** against the released files: one text
file listing, per image, a block::

    # <index>
    <image path>
    <image dimensions>           (skipped)
    0                            (skipped)
    <number of boxes N>
    <label> <x1> <y1> <x2> <y2>  (N lines; integer label, pixel corners)

with blank lines between blocks. The integer labels are used as class indices as they are (what they stand for is
not documented there). A file that does not follow this layout fails with the line it stopped at; converting the
annotations to COCO or zoo's box files is the verified route.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .transforms import ImageGeometry

__all__ = [
    "BOX_FORMATS",
    "TOY_CLASSES",
    "BoxAnnotation",
    "fit_boxes",
    "identity_geometry",
    "mirror_boxes",
    "normalize_boxes",
    "pad_boxes",
    "read_box_file",
    "read_coco",
    "read_init",
    "write_box_file",
]

#: Accepted ``box_format`` values.
BOX_FORMATS: tuple[str, ...] = ("zoo", "coco", "init")

#: The object classes of the embedded toy world (Cityscapes names of every class it draws as instances), the default
#: ``classes``: label ``k`` is ``TOY_CLASSES[k]``.
TOY_CLASSES: tuple[str, ...] = ("car", "person", "pole", "traffic sign", "traffic light", "truck", "bus")

#: Value of every entry of a padding row.
PAD = -1.0


@dataclass(frozen=True)
class BoxAnnotation:
    """The boxes of one image as stored.

    Attributes:
        boxes: One dict per box: ``label`` (class name or index) and ``bbox`` ``[x0, y0, x1, y1]`` in pixels.
        size: (height, width) the pixel coordinates refer to; None: the image's own size.
    """

    boxes: list[dict[str, Any]] = field(default_factory=list)
    size: tuple[int, int] | None = None


def read_box_file(path: str | os.PathLike[str]) -> BoxAnnotation:
    """Read one of zoo's box files (see the module docstring)."""
    record = json.loads(Path(path).read_text())
    if not isinstance(record, dict) or not isinstance(record.get("boxes"), list):
        raise ValueError(f"Box file '{path}' must hold a JSON object with a 'boxes' list.")
    size = record.get("size")
    return BoxAnnotation(boxes=record["boxes"], size=None if size is None else (int(size[0]), int(size[1])))


def write_box_file(path: str | os.PathLike[str], annotation: BoxAnnotation) -> None:
    """Write ``annotation`` as one of zoo's box files (``size`` is required by the format)."""
    if annotation.size is None:
        raise ValueError("write_box_file: the annotation needs its size (height, width).")
    Path(path).write_text(json.dumps({"size": list(annotation.size), "boxes": annotation.boxes}) + "\n")


def read_coco(path: str | os.PathLike[str]) -> dict[str, BoxAnnotation]:
    """Read a COCO ``instances_*.json``: image ``file_name`` -> its boxes (``[x, y, w, h]`` made corners), labelled
    with category names; images without boxes are listed with none, crowd regions are left out."""
    data = json.loads(Path(path).read_text())
    names = {category["id"]: category["name"] for category in data["categories"]}
    files = {image["id"]: image["file_name"] for image in data["images"]}
    annotations = {image["file_name"]: BoxAnnotation(size=(int(image["height"]), int(image["width"])))
                   for image in data["images"]}
    for box in data["annotations"]:
        if box.get("iscrowd", 0):
            continue
        x, y, w, h = box["bbox"]
        annotations[files[box["image_id"]]].boxes.append(
            {"label": names[box["category_id"]], "bbox": [x, y, x + w, y + h]})
    return annotations


def read_init(path: str | os.PathLike[str]) -> dict[str, BoxAnnotation]:
    """Read an INIT annotation list (unverified layout, see the module docstring): image path -> its boxes."""
    lines = Path(path).read_text().splitlines()
    annotations: dict[str, BoxAnnotation] = {}
    number = 0

    def take() -> str:
        nonlocal number
        if number >= len(lines):
            raise ValueError(f"INIT annotation file '{path}' ends inside a block (line {number}).")
        number += 1
        return lines[number - 1].strip()

    while number < len(lines):
        if not lines[number].strip():
            number += 1
            continue
        if not take().startswith("#"):
            raise ValueError(f"INIT annotation file '{path}', line {number}: expected '# <index>' to open a block; "
                             "the layout is unverified (see zoo.data.boxes), convert the annotations to COCO instead.")
        image, _dimensions, _zero, count = take(), take(), take(), take()
        try:
            rows = [take().split() for _ in range(int(count))]
            boxes = [{"label": int(row[0]), "bbox": [float(v) for v in row[1:5]]} for row in rows if len(row) == 5]
        except ValueError as error:
            raise ValueError(f"INIT annotation file '{path}', line {number}: {error}") from None
        if len(boxes) != len(rows):
            raise ValueError(f"INIT annotation file '{path}', line {number}: box lines must be 'label x1 y1 x2 y2'.")
        annotations[image] = BoxAnnotation(boxes=boxes)
    return annotations


def identity_geometry(width: int, height: int) -> ImageGeometry:
    """The geometry of an image used as it is (``width`` x ``height``: no resize, crop or flip)."""
    return ImageGeometry(size=(width, height), resized=(width, height), crop=None, output=(width, height), flip=False)


def _labelled(boxes: Iterable[dict[str, Any]], classes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Class indices (N,) float32 and pixel corners (N, 4) float32 of the boxes whose class is known."""
    index = {name: k for k, name in enumerate(classes)}
    labels, corners = [], []
    for box in boxes:
        label = box["label"]
        label = index.get(label) if isinstance(label, str) else int(label)
        if label is None:
            continue
        if label < 0:
            raise ValueError(f"Box labels must be class names or indices >= 0; got {box['label']!r}.")
        labels.append(float(label))
        corners.append([float(v) for v in box["bbox"]])
    return torch.tensor(labels, dtype=torch.float32), torch.tensor(corners, dtype=torch.float32).reshape(-1, 4)


def _clip(corners: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners (N, 4) clipped to a ``width`` x ``height`` image, and which boxes keep an area (N,) bool."""
    corners = torch.minimum(corners.clamp(min=0), corners.new_tensor([width, height, width, height]))
    return corners, (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])


def normalize_boxes(labels: torch.Tensor, corners: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Clip boxes to a ``width`` x ``height`` image, drop the empty ones and normalise the corners.

    Args:
        labels: (N,) class indices.
        corners: (N, 4) ``[x1, y1, x2, y2]`` in pixels of the image.

    Returns:
        (M, 5) float32 rows ``[label, x1, y1, x2, y2]``, corners in [0, 1], M <= N (boxes with zero width or height
        inside the image are dropped).
    """
    corners, keep = _clip(corners, width, height)
    corners = corners / corners.new_tensor([width, height, width, height])
    return torch.cat([labels[keep, None], corners[keep]], dim=1).float()


def pad_boxes(boxes: torch.Tensor, num_box: int) -> torch.Tensor:
    """Exactly ``num_box`` rows: the ``num_box`` largest boxes in their original order, then rows of -1.

    Args:
        boxes: (N, 5) rows ``[label, x1, y1, x2, y2]`` (normalised, no padding rows).
        num_box: Rows of the result (>= 0).

    Returns:
        (num_box, 5) float32. Boxes beyond ``num_box`` are ranked by area; of equal areas the earlier is kept.
    """
    if num_box < 0:
        raise ValueError(f"num_box must be >= 0, got {num_box}.")
    if len(boxes) > num_box:
        area = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2])
        boxes = boxes[torch.argsort(area, descending=True, stable=True)[:num_box].sort().values]
    padding = torch.full((num_box - len(boxes), 5), PAD)
    return torch.cat([boxes.float(), padding])


def fit_boxes(annotation: BoxAnnotation | None, geometry: ImageGeometry, *, classes: Sequence[str],
              num_box: int) -> torch.Tensor:
    """An image's boxes as the batch contract has them, moved by the geometry its image went through.

    Args:
        annotation: The stored boxes (None: the image has none).
        geometry: The resize, crop and flip applied to the image (:meth:`ImageTransform.geometry
            <zoo.data.transforms.ImageTransform.geometry>`; :func:`identity_geometry` for an image used as it is).
        classes: Class names; a box labelled with a name gets its index, boxes of other names are left out.
        num_box: Rows of the result.

    Returns:
        (num_box, 5) float32 ``[label, x1, y1, x2, y2]`` normalised to the output image, padded with -1 rows.
    """
    labels, corners = _labelled(annotation.boxes if annotation is not None else [], classes)
    width, height = geometry.size
    if annotation is not None and annotation.size is not None and annotation.size != (height, width):
        corners = corners * corners.new_tensor([width, height, width, height]).div(
            corners.new_tensor([annotation.size[1], annotation.size[0]] * 2))
    corners, keep = _clip(corners, width, height)  # to the stored image first: a crop may reach past it
    return pad_boxes(normalize_boxes(labels[keep], geometry.map_boxes(corners[keep]), *geometry.output), num_box)


def mirror_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Mirror normalised boxes (..., 5) horizontally (x := 1 - x), leaving padding rows as they are."""
    mirrored = boxes.clone()
    real = boxes[..., 0] != PAD
    mirrored[..., 1][real] = 1 - boxes[..., 3][real]
    mirrored[..., 3][real] = 1 - boxes[..., 1][real]
    return mirrored
