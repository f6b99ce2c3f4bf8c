"""The toy world datasets, one per kind of task.

- :class:`ToyPairedDataset`: colourised label map (or sim frame) and the photo of the same scene, for pix2pix.
- :class:`ToyUnpairedDataset`: sim frames and photos of *different* scenes, for CycleGAN, MUNIT, DRIT and VSAIT.
- :class:`ToyMaskedDataset`: sim frame, an exemplar photo of another scene and masks of chosen classes in both, for
  exemplar-guided, instance-aware methods (LOMIT, DECENT); optionally binary attributes of any names per scene
  (:func:`~zoo.data.toy_world.scene_attributes`).
- :class:`ToySRDataset`: photo and its MATLAB-bicubic downscale, for SRResNet and SRGAN.
- :class:`ToyLabelMapDataset`: label-id map, Cityscapes-style instance map and the photo of one scene, for pix2pixHD.

Items are dicts of float32 tensors: images (3, H, W) in [-1, 1], masks (1, H, W) in {0, 1} and label maps (H, W)
int64 of Cityscapes train ids. Splits ``"train"``, ``"val"`` and ``"test"`` use disjoint scene seeds, and item ``i``
is a pure function of ``(seed, split, i)`` (and of the class statistics, see below).

Class statistics: the two-domain datasets (:class:`ToyUnpairedDataset`, :class:`ToyMaskedDataset`) take
``statistics``, a preset name of :data:`~zoo.data.toy_world.STATISTICS_PRESETS` or a pair of
:class:`~zoo.data.toy_world.SceneStatistics` for domains A and B. ``"matched"`` (the default) draws both domains
from the default toy world, as before the option existed; ``"unmatched"`` draws domain A (the simulator) with much
more vegetation than domain B (the photos), as GTA5 against Cityscapes. :class:`ToyPairedDataset` shows one scene per
item and takes the statistics of that scene (``scene_statistics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .attributes import scene_attributes
from .labels import _ID_TO_TRAIN, _class_ids, colorize
from .layout import Scene
from .raster import _check_seed, frame_boxes, instance_mask, make_scene
from .render import render_photo, render_sim
from .statistics import SceneStatistics, StatisticsSetting, domain_statistics

__all__ = ["ToyLabelMapDataset", "ToyMaskedDataset", "ToyPairedDataset", "ToySRDataset", "ToyUnpairedDataset"]

_SPLITS = ("train", "val", "test")
_STREAMS = 4  # independent scene streams per split: 0 for A / paired / SR, 1 for B and exemplars


def _scene_seed(seed: int, split: str, index: int, stream: int = 0) -> int:
    """Scene seed of item ``index``: injective in (seed, split, stream, index), so splits and streams never overlap."""
    return ((seed * len(_SPLITS) + _SPLITS.index(split)) * _STREAMS + stream) * 2**32 + index


def _check_common(owner: str, length: int, split: str, seed: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"{owner}: length must be a positive int; got {length!r}.")
    if split not in _SPLITS:
        raise ValueError(f"{owner}: split must be one of {_SPLITS}; got {split!r}.")
    _check_seed(seed, owner)


def _check_size(owner: str, size: int | Sequence[int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else tuple(size)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 4 for s in pair):
        raise ValueError(f"{owner}: size must be an int >= 4 or a pair (H, W) of them; got {size!r}.")
    return int(pair[0]), int(pair[1])


def _index(owner: str, index: int, length: int) -> int:
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"{owner}: index {index} out of range for length {length}.")
    return int(index)


def _image(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1]."""
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(127.5).sub_(1.0).contiguous()


def _mask(mask: np.ndarray) -> torch.Tensor:
    """bool (H, W) -> float32 (1, H, W) in {0, 1}."""
    return torch.from_numpy(mask).float().unsqueeze(0)


def _check_scene_statistics(owner: str, statistics: SceneStatistics | None) -> SceneStatistics | None:
    if statistics is not None and not isinstance(statistics, SceneStatistics):
        raise ValueError(f"{owner}: scene_statistics must be a SceneStatistics or None; got {statistics!r}.")
    return statistics


def _train_ids(scene: Scene) -> torch.Tensor:
    return torch.from_numpy(_ID_TO_TRAIN[scene.labels].astype(np.int64))


_Domain = Literal["sim", "photo", "label"]


def _render(scene: Scene, domain: str) -> np.ndarray:
    if domain == "photo":
        return render_photo(scene)
    if domain == "sim":
        return render_sim(scene)
    return colorize(scene.labels)


class ToyPairedDataset(Dataset):
    """Aligned pairs of one scene: its label map (or simulator frame) and its photo. For pix2pix-style methods.

    Items are dicts:

    - ``real_a``: (3, H, W) float32 in [-1, 1], the Cityscapes-coloured label map (``task="label2photo"``) or
      :func:`render_sim` (``task="sim2photo"``).
    - ``real_b``: (3, H, W) float32 in [-1, 1], :func:`render_photo` of the same scene.
    - ``label``: (H, W) int64 Cityscapes train ids (255 = ignore).

    Args:
        length: Number of items.
        size: Image size, an int for squares or (H, W).
        task: ``"label2photo"`` or ``"sim2photo"``.
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i).
        scene_statistics: Class statistics of the scenes (:class:`~zoo.data.toy_world.SceneStatistics`); None: the
            default toy world. With the statistics of domain A of a two-domain dataset, item ``i`` shows the scene
            of that dataset's ``real_a`` (same seed and split).
    """

    def __init__(
        self,
        *,
        length: int = 200,
        size: int | tuple[int, int] = 64,
        task: Literal["label2photo", "sim2photo"] = "label2photo",
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        scene_statistics: SceneStatistics | None = None,
    ) -> None:
        _check_common("ToyPairedDataset", length, split, seed)
        if task not in ("label2photo", "sim2photo"):
            raise ValueError(f"ToyPairedDataset: task must be 'label2photo' or 'sim2photo'; got {task!r}.")
        self.length, self.size, self.task, self.split, self.seed = length, _check_size("ToyPairedDataset", size), \
            task, split, seed
        self.scene_statistics = _check_scene_statistics("ToyPairedDataset", scene_statistics)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyPairedDataset", index, self.length)
        scene = make_scene(_scene_seed(self.seed, self.split, index), *self.size, statistics=self.scene_statistics)
        return {
            "real_a": _image(_render(scene, "label" if self.task == "label2photo" else "sim")),
            "real_b": _image(render_photo(scene)),
            "label": _train_ids(scene),
        }


_DOMAINS = ("sim", "photo", "label")


class ToyUnpairedDataset(Dataset):
    """Unaligned images of two domains from *different* scenes. For CycleGAN-style methods.

    Domain A and domain B are drawn from disjoint streams of scene seeds, so no item shows the same street twice.

    Items are dicts:

    - ``real_a``: (3, H, W) float32 in [-1, 1], a scene rendered in ``domain_a``.
    - ``real_b``: (3, H, W) float32 in [-1, 1], another scene rendered in ``domain_b``.
    - ``label_a``: (H, W) int64 Cityscapes train ids of the A scene (255 = ignore).
    - ``boxes_a`` / ``boxes_b`` (with ``boxes``): the object boxes of the A / B scene, :func:`frame_boxes` (lists of
      dicts with pixel ``bbox`` ``[x0, y0, x1, y1]``; they do not collate as they are, see :mod:`zoo.data.boxes`).

    Args:
        length: Number of items.
        size: Image size, an int for squares or (H, W).
        domain_a: ``"sim"``, ``"photo"`` or ``"label"`` (Cityscapes-coloured label map).
        domain_b: Same choices as ``domain_a``.
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i).
        statistics: Class statistics of the scenes of A and B: ``"matched"`` (default: both as the default toy
            world), ``"unmatched"`` (A with much more vegetation than B, see
            :data:`~zoo.data.toy_world.STATISTICS_PRESETS`), or a pair of
            :class:`~zoo.data.toy_world.SceneStatistics` (A, B).
        boxes: Add ``boxes_a`` / ``boxes_b``.
    """

    def __init__(
        self,
        *,
        length: int = 200,
        size: int | tuple[int, int] = 64,
        domain_a: _Domain = "sim",
        domain_b: _Domain = "photo",
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        statistics: StatisticsSetting = "matched",
        boxes: bool = False,
    ) -> None:
        _check_common("ToyUnpairedDataset", length, split, seed)
        for name, value in (("domain_a", domain_a), ("domain_b", domain_b)):
            if value not in _DOMAINS:
                raise ValueError(f"ToyUnpairedDataset: {name} must be one of {_DOMAINS}; got {value!r}.")
        self.length, self.size, self.split, self.seed = length, _check_size("ToyUnpairedDataset", size), split, seed
        self.domain_a, self.domain_b = domain_a, domain_b
        self.statistics = statistics
        self.statistics_a, self.statistics_b = domain_statistics(statistics, "ToyUnpairedDataset")
        self.boxes = bool(boxes)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = _index("ToyUnpairedDataset", index, self.length)
        scene_a = make_scene(_scene_seed(self.seed, self.split, index, 0), *self.size, statistics=self.statistics_a)
        scene_b = make_scene(_scene_seed(self.seed, self.split, index, 1), *self.size, statistics=self.statistics_b)
        item = {
            "real_a": _image(_render(scene_a, self.domain_a)),
            "real_b": _image(_render(scene_b, self.domain_b)),
            "label_a": _train_ids(scene_a),
        }
        if self.boxes:
            item.update(boxes_a=frame_boxes(scene_a), boxes_b=frame_boxes(scene_b))
        return item


class ToyMaskedDataset(Dataset):
    """Simulator frames with an exemplar photo of another scene and masks of chosen classes in both.

    For exemplar-guided, instance-aware translation (LOMIT, DECENT): the masks say where the objects whose style
    should follow the exemplar are.

    Items are dicts:

    - ``real_a``: (3, H, W) float32 in [-1, 1], :func:`render_sim` of scene A.
    - ``real_b``: (3, H, W) float32 in [-1, 1], :func:`render_photo` of a different scene B (the exemplar).
    - ``mask_a`` / ``mask_b``: (1, H, W) float32 in {0, 1}, 1 where A / B shows one of ``classes``.
    - ``label_a``: (H, W) int64 Cityscapes train ids of A (255 = ignore).
    - ``attr_a`` / ``attr_b`` (with ``attributes``): (len(attributes),) float32 in {0, 1}, :func:`scene_attributes`
      of scene A / B.

    Args:
        length: Number of items.
        size: Image size, an int for squares or (H, W).
        classes: Cityscapes class names covered by the masks.
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i).
        attributes: Attribute names of ``attr_a`` / ``attr_b`` (None: no attributes).
        statistics: Class statistics of the scenes of A (the sim frames) and B (the exemplars): ``"matched"``
            (default), ``"unmatched"`` or a pair of :class:`~zoo.data.toy_world.SceneStatistics`, as for
            :class:`ToyUnpairedDataset`.
    """

    def __init__(
        self,
        *,
        length: int = 200,
        size: int | tuple[int, int] = 64,
        classes: Sequence[str] = ("car",),
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        attributes: Sequence[str] | None = None,
        statistics: StatisticsSetting = "matched",
    ) -> None:
        _check_common("ToyMaskedDataset", length, split, seed)
        _class_ids(classes)
        if attributes is not None and (isinstance(attributes, str) or not all(
                isinstance(a, str) and a.strip() for a in attributes)):
            raise ValueError(f"ToyMaskedDataset: attributes must be a list of non-empty names; got {attributes!r}.")
        self.length, self.size, self.split, self.seed = length, _check_size("ToyMaskedDataset", size), split, seed
        self.classes = (classes,) if isinstance(classes, str) else tuple(classes)
        self.attributes = None if attributes is None else tuple(attributes)
        self.statistics = statistics
        self.statistics_a, self.statistics_b = domain_statistics(statistics, "ToyMaskedDataset")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyMaskedDataset", index, self.length)
        scene_a = make_scene(_scene_seed(self.seed, self.split, index, 0), *self.size, statistics=self.statistics_a)
        scene_b = make_scene(_scene_seed(self.seed, self.split, index, 1), *self.size, statistics=self.statistics_b)
        item = {
            "real_a": _image(render_sim(scene_a)),
            "real_b": _image(render_photo(scene_b)),
            "mask_a": _mask(instance_mask(scene_a, self.classes)),
            "mask_b": _mask(instance_mask(scene_b, self.classes)),
            "label_a": _train_ids(scene_a),
        }
        if self.attributes is not None:
            item["attr_a"] = torch.from_numpy(scene_attributes(scene_a, self.attributes))
            item["attr_b"] = torch.from_numpy(scene_attributes(scene_b, self.attributes))
        return item


def _gray_uint8(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB uint8 image (H, W, 3) -> (H, W, 1) uint8, PIL's ``convert("L")`` as for files."""
    return np.array(Image.fromarray(image).convert("L"))[..., None]


class ToySRDataset(Dataset):
    """Photos and their MATLAB-bicubic downscales, for single-image super-resolution (SRResNet, SRGAN).

    The LR image is made as the official benchmark LR files are: :func:`zoo.data.imresize` (MATLAB ``imresize``,
    antialiased bicubic) of the uint8 photo by ``1 / scale``, rounded to uint8. Items are dicts with the keys of every
    zoo DataModule:

    - ``real_a``: the LR image (channels, hr_size / scale, hr_size / scale) float32 in [-1, 1];
    - ``real_b``: the HR image (channels, hr_size, hr_size) float32 in [-1, 1], :func:`render_photo` of a scene.

    Args:
        length: Number of items.
        hr_size: Side of the HR image, a multiple of ``scale``.
        scale: Downscaling factor.
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i).
        channels: 3 (RGB) or 1 (the photo's luma, rounded to uint8 before downscaling).
    """

    def __init__(
        self,
        *,
        length: int = 200,
        hr_size: int = 96,
        scale: int = 4,
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        channels: int = 3,
    ) -> None:
        _check_common("ToySRDataset", length, split, seed)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"ToySRDataset: scale must be a positive int; got {scale!r}.")
        if isinstance(hr_size, bool) or not isinstance(hr_size, int) or hr_size < 4 or hr_size % scale:
            raise ValueError(f"ToySRDataset: hr_size must be an int >= 4 divisible by scale={scale}; got {hr_size!r}.")
        if channels not in (1, 3):
            raise ValueError(f"ToySRDataset: channels must be 1 or 3; got {channels!r}.")
        self.length, self.hr_size, self.scale, self.split, self.seed = length, hr_size, scale, split, seed
        self.channels = channels

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from ..imresize import imresize  # local: keeps the toy world importable on its own

        index = _index("ToySRDataset", index, self.length)
        scene = make_scene(_scene_seed(self.seed, self.split, index), self.hr_size, self.hr_size)
        hr = render_photo(scene)
        if self.channels == 1:
            hr = _gray_uint8(hr)
        lr = imresize(hr, 1 / self.scale)
        return {"real_a": _image(lr), "real_b": _image(hr)}


#: Cityscapes label ids whose objects have instance ids in ``*_gtFine_instanceIds.png`` (person ... bicycle).
_CITYSCAPES_THING_IDS = tuple(range(24, 34))


def cityscapes_instance_ids(scene: Scene) -> np.ndarray:
    """Instance map of a scene in the Cityscapes ``*_gtFine_instanceIds.png`` convention.

    Pixels of "thing" classes (person, rider, car, truck, bus, caravan, trailer, train, motorcycle, bicycle) get
    ``label_id * 1000 + k``, k = 0, 1, ... numbering the instances of that class in the scene's instance order; every
    other pixel (stuff, and the toy world's poles, signs and lights, which Cityscapes does not split into instances)
    gets its label id.

    Returns:
        int32 (H, W).
    """
    lookup = np.zeros(len(scene.instance_classes) + 1, np.int32)
    counts: dict[int, int] = {}
    for instance, label in sorted(scene.instance_classes.items()):
        if label in _CITYSCAPES_THING_IDS:
            lookup[instance] = label * 1000 + counts.get(label, 0)
            counts[label] = counts.get(label, 0) + 1
    ids = lookup[scene.instances]
    return np.where(ids > 0, ids, scene.labels.astype(np.int32))


class ToyLabelMapDataset(Dataset):
    """Label map, instance map and photo of one scene, as Cityscapes files give them. For pix2pixHD-style methods.

    Items are dicts (the keys of :class:`~zoo.data.label_maps.LabelMapDataset`):

    - ``real_a``: (1, H, W) float32 in [-1, 1], the label-id map read like an 8-bit grayscale image
      (``id / 255 * 2 - 1``; ``round((real_a + 1) / 2 * 255)`` recovers the Cityscapes label ids); with
      ``label_format="color"`` the Cityscapes-coloured label map (3, H, W) instead.
    - ``instance`` (with ``instances``): (1, H, W) float32 instance ids, :func:`cityscapes_instance_ids`.
    - ``real_b``: (3, H, W) float32 in [-1, 1], :func:`render_photo` of the same scene.
    - ``label``: (H, W) int64 Cityscapes train ids (255 = ignore).

    Args:
        length: Number of items.
        size: Image size, an int for squares or (H, W).
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i) and shows the scene of
            :class:`ToyPairedDataset`'s item ``i``.
        label_format: ``"ids"`` (one channel of label ids) or ``"color"`` (RGB label map, for ``label_nc=0``).
        instances: Add the ``instance`` map.
        scene_statistics: Class statistics of the scenes (None: the default toy world).
    """

    def __init__(
        self,
        *,
        length: int = 200,
        size: int | tuple[int, int] = 64,
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        label_format: Literal["ids", "color"] = "ids",
        instances: bool = True,
        scene_statistics: SceneStatistics | None = None,
    ) -> None:
        _check_common("ToyLabelMapDataset", length, split, seed)
        if label_format not in ("ids", "color"):
            raise ValueError(f"ToyLabelMapDataset: label_format must be 'ids' or 'color'; got {label_format!r}.")
        self.length, self.size, self.split, self.seed = length, _check_size("ToyLabelMapDataset", size), split, seed
        self.label_format = label_format
        self.instances = bool(instances)
        self.scene_statistics = _check_scene_statistics("ToyLabelMapDataset", scene_statistics)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyLabelMapDataset", index, self.length)
        scene = make_scene(_scene_seed(self.seed, self.split, index), *self.size, statistics=self.scene_statistics)
        if self.label_format == "ids":
            real_a = torch.from_numpy(scene.labels).float().div_(255.0).mul_(2.0).sub_(1.0).unsqueeze(0)
        else:
            real_a = _image(colorize(scene.labels))
        item = {"real_a": real_a.contiguous()}
        if self.instances:
            item["instance"] = torch.from_numpy(cityscapes_instance_ids(scene)).float().unsqueeze(0)
        item["real_b"] = _image(render_photo(scene))
        item["label"] = _train_ids(scene)
        return item
