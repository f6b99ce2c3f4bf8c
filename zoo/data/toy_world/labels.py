"""Cityscapes labels of the toy world: the class table, id and colour lookups, and the ids the world draws.

Labels are Cityscapes ids with Cityscapes colours (:data:`CITYSCAPES_CLASSES`, :func:`colorize`,
:func:`label_to_train_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CITYSCAPES_CLASSES", "CityscapesClass", "colorize", "label_to_train_id"]


@dataclass(frozen=True)
class CityscapesClass:
    """One Cityscapes label.

    Attributes:
        name: Class name as in the dataset definition (``"traffic sign"``).
        id: Label id stored in ``*_labelIds.png`` files, 0-33.
        train_id: Id used for training and evaluation, 0-18, or 255 for classes ignored in evaluation.
        color: RGB colour of the class in the official colour maps.
    """

    name: str
    id: int
    train_id: int
    color: tuple[int, int, int]


CITYSCAPES_CLASSES: tuple[CityscapesClass, ...] = (
    CityscapesClass("unlabeled", 0, 255, (0, 0, 0)),
    CityscapesClass("ego vehicle", 1, 255, (0, 0, 0)),
    CityscapesClass("rectification border", 2, 255, (0, 0, 0)),
    CityscapesClass("out of roi", 3, 255, (0, 0, 0)),
    CityscapesClass("static", 4, 255, (0, 0, 0)),
    CityscapesClass("dynamic", 5, 255, (111, 74, 0)),
    CityscapesClass("ground", 6, 255, (81, 0, 81)),
    CityscapesClass("road", 7, 0, (128, 64, 128)),
    CityscapesClass("sidewalk", 8, 1, (244, 35, 232)),
    CityscapesClass("parking", 9, 255, (250, 170, 160)),
    CityscapesClass("rail track", 10, 255, (230, 150, 140)),
    CityscapesClass("building", 11, 2, (70, 70, 70)),
    CityscapesClass("wall", 12, 3, (102, 102, 156)),
    CityscapesClass("fence", 13, 4, (190, 153, 153)),
    CityscapesClass("guard rail", 14, 255, (180, 165, 180)),
    CityscapesClass("bridge", 15, 255, (150, 100, 100)),
    CityscapesClass("tunnel", 16, 255, (150, 120, 90)),
    CityscapesClass("pole", 17, 5, (153, 153, 153)),
    CityscapesClass("polegroup", 18, 255, (153, 153, 153)),
    CityscapesClass("traffic light", 19, 6, (250, 170, 30)),
    CityscapesClass("traffic sign", 20, 7, (220, 220, 0)),
    CityscapesClass("vegetation", 21, 8, (107, 142, 35)),
    CityscapesClass("terrain", 22, 9, (152, 251, 152)),
    CityscapesClass("sky", 23, 10, (70, 130, 180)),
    CityscapesClass("person", 24, 11, (220, 20, 60)),
    CityscapesClass("rider", 25, 12, (255, 0, 0)),
    CityscapesClass("car", 26, 13, (0, 0, 142)),
    CityscapesClass("truck", 27, 14, (0, 0, 70)),
    CityscapesClass("bus", 28, 15, (0, 60, 100)),
    CityscapesClass("caravan", 29, 255, (0, 0, 90)),
    CityscapesClass("trailer", 30, 255, (0, 0, 110)),
    CityscapesClass("train", 31, 16, (0, 80, 100)),
    CityscapesClass("motorcycle", 32, 17, (0, 0, 230)),
    CityscapesClass("bicycle", 33, 18, (119, 11, 32)),
)

_NUM_IDS = len(CITYSCAPES_CLASSES)
_ID_BY_NAME = {c.name: c.id for c in CITYSCAPES_CLASSES}
_ID_TO_TRAIN = np.full(256, 255, np.uint8)
_ID_COLORS = np.zeros((256, 3), np.uint8)
_TRAIN_COLORS = np.zeros((256, 3), np.uint8)
for _c in CITYSCAPES_CLASSES:
    _ID_TO_TRAIN[_c.id] = _c.train_id
    _ID_COLORS[_c.id] = _c.color
    if _c.train_id != 255:
        _TRAIN_COLORS[_c.train_id] = _c.color
_ID_TO_TRAIN_T = torch.from_numpy(_ID_TO_TRAIN.astype(np.int64))

# Ids the toy world draws.
_ROAD, _SIDEWALK, _BUILDING, _WALL, _FENCE = 7, 8, 11, 12, 13
_POLE, _LIGHT, _SIGN, _VEGETATION, _TERRAIN, _SKY = 17, 19, 20, 21, 22, 23
_PERSON, _CAR, _TRUCK, _BUS = 24, 26, 27, 28
# Every placed object of these classes is an instance (Cityscapes' own "things" plus the countable poles and signs).
_INSTANCE_CLASSES = (_POLE, _LIGHT, _SIGN, _PERSON, _CAR, _TRUCK, _BUS)
_GROUND_CLASSES = (_ROAD, _SIDEWALK, _TERRAIN)


def _class_ids(class_names: str | Sequence[str]) -> list[int]:
    names = (class_names,) if isinstance(class_names, str) else tuple(class_names)
    unknown = [n for n in names if n not in _ID_BY_NAME]
    if unknown or not names:
        raise ValueError(
            f"toy_world: unknown Cityscapes class name(s) {unknown or list(names)}; valid names: {sorted(_ID_BY_NAME)}."
        )
    return [_ID_BY_NAME[n] for n in names]


def _check_label_values(lo: int, hi: int, *, train_ids: bool) -> None:
    valid = "0-18 or 255" if train_ids else f"0-{_NUM_IDS - 1}"
    if lo < 0 or (hi >= _NUM_IDS and not train_ids) or (train_ids and hi > 255):
        raise ValueError(f"toy_world: label values must be Cityscapes {'train ' if train_ids else ''}ids ({valid}); "
                         f"got values in [{lo}, {hi}].")


def label_to_train_id(labels: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Maps Cityscapes label ids to train ids (0-18, 255 for classes ignored in evaluation).

    Args:
        labels: Integer label ids 0-33 of any shape, e.g. (H, W) or (B, H, W).

    Returns:
        Train ids of the same shape: a uint8 ``np.ndarray`` for array input, an int64 ``torch.Tensor`` (ready for
        ``cross_entropy(..., ignore_index=255)``) on the input's device for tensor input.
    """
    if isinstance(labels, torch.Tensor):
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"label_to_train_id: labels must be an integer tensor; got {labels.dtype}.")
        if labels.numel():
            _check_label_values(int(labels.min()), int(labels.max()), train_ids=False)
        return _ID_TO_TRAIN_T.to(labels.device)[labels.long()]
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"label_to_train_id: labels must be an integer array; got {array.dtype}.")
    if array.size:
        _check_label_values(int(array.min()), int(array.max()), train_ids=False)
    return _ID_TO_TRAIN[array]


def colorize(labels: np.ndarray | torch.Tensor, *, train_ids: bool = False) -> np.ndarray:
    """Colours a label map with the official Cityscapes colours.

    Args:
        labels: Integer map (H, W) of label ids (0-33), or of train ids (0-18, 255) with ``train_ids=True``.
        train_ids: Whether ``labels`` holds train ids; 255 (ignore) is drawn black.

    Returns:
        uint8 array (H, W, 3), RGB.
    """
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"colorize: labels must be an integer array; got {array.dtype}.")
    if array.size:
        _check_label_values(int(array.min()), int(array.max()), train_ids=train_ids)
        if train_ids and np.any((array > 18) & (array != 255)):
            raise ValueError("colorize: train ids must be 0-18 or 255.")
    return (_TRAIN_COLORS if train_ids else _ID_COLORS)[array]
