"""Toy driving world: procedural street scenes with Cityscapes labels, drawn as a simulator frame and as a photo.

This is zoo's embedded default data: every method can train, validate and be tested on it without downloading a
single file. A scene is a pure function of an integer seed, drawn at any resolution in a few milliseconds, so the
datasets build their items on the fly and any worker, in any order, sees identical data.

Modules, each depending only on those listed before it:

- :mod:`~zoo.data.toy_world.labels`: Cityscapes classes, ids and colours (:func:`colorize`, :func:`label_to_train_id`);
- :mod:`~zoo.data.toy_world.statistics`: class statistics per domain (:class:`SceneStatistics`, the presets
  ``"matched"`` and ``"unmatched"`` of :data:`STATISTICS_PRESETS`, :func:`domain_statistics`);
- :mod:`~zoo.data.toy_world.layout`: the camera and the world geometry of a street, drawn from a seed;
- :mod:`~zoo.data.toy_world.raster`: the z-buffered rasteriser (:func:`make_scene`) and instance masks;
- :mod:`~zoo.data.toy_world.attributes`: binary scene attributes (:func:`scene_attributes`);
- :mod:`~zoo.data.toy_world.render`: :func:`render_sim` and :func:`render_photo`;
- :mod:`~zoo.data.toy_world.datasets`: :class:`ToyPairedDataset`, :class:`ToyUnpairedDataset`,
  :class:`ToyMaskedDataset`, :class:`ToySRDataset` and :class:`ToyLabelMapDataset`;
- :mod:`~zoo.data.toy_world.export`: :func:`write_toy_dataset`, a labelled dataset on disk (images, Cityscapes
  label-id maps, object boxes), as ``zoo toy-dataset`` writes it.

Example:
    >>> scene = make_scene(0, 64, 128)
    >>> scene.labels.shape, scene.instances.dtype, render_photo(scene).shape
    ((64, 128), dtype('int32'), (64, 128, 3))
    >>> item = ToyPairedDataset(length=4, size=32)[0]
    >>> tuple(item["real_a"].shape), tuple(item["label"].shape)
    ((3, 32, 32), (32, 32))
"""

from __future__ import annotations

from .attributes import scene_attributes
from .datasets import (
    ToyLabelMapDataset,
    ToyMaskedDataset,
    ToyPairedDataset,
    ToySRDataset,
    ToyUnpairedDataset,
    cityscapes_instance_ids,
)
from .export import write_toy_dataset
from .labels import CITYSCAPES_CLASSES, CityscapesClass, colorize, label_to_train_id
from .layout import Camera, Layout, Scene
from .raster import instance_mask, instance_masks, make_scene
from .render import render_photo, render_sim
from .statistics import STATISTICS_PRESETS, SceneStatistics, StatisticsPreset, StatisticsSetting, domain_statistics

__all__ = [
    "CITYSCAPES_CLASSES",
    "STATISTICS_PRESETS",
    "Camera",
    "CityscapesClass",
    "Layout",
    "Scene",
    "SceneStatistics",
    "StatisticsPreset",
    "StatisticsSetting",
    "ToyLabelMapDataset",
    "ToyMaskedDataset",
    "ToyPairedDataset",
    "ToySRDataset",
    "ToyUnpairedDataset",
    "cityscapes_instance_ids",
    "colorize",
    "domain_statistics",
    "instance_mask",
    "instance_masks",
    "label_to_train_id",
    "make_scene",
    "render_photo",
    "render_sim",
    "scene_attributes",
    "write_toy_dataset",
]
