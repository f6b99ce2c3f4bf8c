"""Write a labelled synthetic dataset to disk from the toy world, laid out as GTA5 / Cityscapes ship theirs.

:func:`write_toy_dataset` draws ``sequences`` streets and, in each, ``frames`` consecutive views of a camera driving
forward (:data:`STEP_METRES` per frame), and writes::

    FOLDER/classes.json                       Cityscapes names, label ids, train ids and colours
    FOLDER/images/<seq>/<frame>.png           the simulator render (domain="sim") or the photo render ("photo")
    FOLDER/images/<seq>/<frame>.json          {"boxes": [{"label": "car", "instance": 3, "bbox": [x0, y0, x1, y1]}]}
    FOLDER/labels/<seq>/<frame>.png           8-bit Cityscapes label ids (the ``*_labelIds.png`` convention)

``zoo translate --input FOLDER`` translates ``images/`` and copies the label maps and boxes beside the translations;
``zoo evaluate --fake OUT/images --labels OUT/labels --metrics miou,pixel_accuracy`` then measures whether a
segmenter still finds the labelled classes. The CLI is ``zoo toy-dataset FOLDER``.

Motion: the world geometry of a street is moved towards the camera by ``frame * STEP_METRES``; the far skyline stays
put (it is 250 m away), objects whose near face passes the camera's near plane disappear, and the dashes of the lane
markings are drawn relative to the camera, so they do not move with the street.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .labels import CITYSCAPES_CLASSES
from .layout import _BOX, _FLAT, _SPHERE, Layout, Scene, _make_layout
from .raster import _check_seed, frame_boxes, rasterise_layout
from .render import render_photo, render_sim

__all__ = ["DEFAULT_SIZE", "STEP_METRES", "frame_boxes", "sequence_scene", "write_toy_dataset"]

#: Default (H, W) of :func:`write_toy_dataset`: the 1:2 aspect of Cityscapes and GTA5 crops.
DEFAULT_SIZE = (128, 256)
#: How far the camera drives forward between two frames of a sequence, metres (about 50 km/h at 10 frames/s).
STEP_METRES = 1.5

# Scene seeds: a stream of its own (the datasets use streams 0-3 of the same formula), so no scene of a toy dataset
# or of the toy segmenter's training set (split "train") is written.
_EXPORT_OFFSET = 2**62


def _sequence_seed(seed: int, sequence: int) -> int:
    return _EXPORT_OFFSET + seed * 2**20 + sequence


def _advance(layout: Layout, metres: float) -> Layout:
    """The layout seen from a camera ``metres`` further along the street (every depth less ``metres``)."""
    if metres == 0:
        return layout
    prims = []
    for prim in layout.prims:
        geom = list(prim.geom)
        if prim.kind == _BOX:
            geom[4] -= metres
            geom[5] -= metres
        elif prim.kind == _SPHERE:
            geom[2] -= metres
        elif prim.kind == _FLAT:
            geom[3] -= metres
        prims.append(prim._replace(geom=tuple(geom)))
    boxes = layout.element_boxes.copy()
    boxes[:, 4:6] -= metres
    return dataclasses.replace(
        layout,
        prims=tuple(prims),
        element_boxes=boxes,
        buildings=tuple(tuple(b._replace(z0=b.z0 - metres, z1=b.z1 - metres) for b in row)
                        for row in layout.buildings),
        fences=tuple(tuple(f._replace(z0=f.z0 - metres, z1=f.z1 - metres) for f in row) for row in layout.fences),
        crosswalk=None if layout.crosswalk is None else (layout.crosswalk[0] - metres, layout.crosswalk[1] - metres),
    )


def sequence_scene(seed: int, frame: int, height: int, width: int, *, step: float = STEP_METRES) -> Scene:
    """Frame ``frame`` of the street of scene seed ``seed``, the camera ``frame * step`` metres along the street.

    Frame 0 is exactly ``make_scene(seed, height, width)``. Every frame keeps the scene's seed, so the renderers give
    its objects the same colours in every frame.

    Returns:
        The scene: ``labels`` (H, W) uint8 Cityscapes label ids, ``instances`` (H, W) int32 (0: stuff).
    """
    seed = _check_seed(seed, "sequence_scene")
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise ValueError(f"sequence_scene: frame must be a non-negative int; got {frame!r}.")
    layout = _advance(_make_layout(seed), frame * float(step))
    return rasterise_layout(layout, seed, int(height), int(width))


def _classes_record() -> dict[str, object]:
    return {
        "format": "cityscapes",
        "label_encoding": "label_ids",
        "ignore_train_id": 255,
        "classes": [{"name": c.name, "id": c.id, "train_id": c.train_id, "color": list(c.color)}
                    for c in CITYSCAPES_CLASSES],
    }


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"write_toy_dataset: {name} must be a positive int; got {value!r}.")
    return int(value)


def write_toy_dataset(
    folder: str | os.PathLike[str],
    *,
    sequences: int = 2,
    frames: int = 4,
    size: Sequence[int] = DEFAULT_SIZE,
    domain: Literal["sim", "photo"] = "sim",
    seed: int = 0,
    boxes: bool = True,
) -> list[Path]:
    """Write a labelled toy-world dataset: images, Cityscapes label-id maps, object boxes and ``classes.json``.

    See the module docstring for the layout. Sequence ``s`` (folder ``seqNNN``) shows one street; its frames
    (``NNNNNN.png``) are consecutive views of a camera driving :data:`STEP_METRES` forward per frame. The files are a
    pure function of the arguments (equal arguments write identical bytes).

    Args:
        folder: Root folder, created if missing; existing files of the same names are overwritten.
        sequences: Number of streets.
        frames: Frames per street.
        size: (H, W) of every image, each at least 4.
        domain: ``"sim"`` (:func:`~zoo.data.toy_world.render_sim`) or ``"photo"``
            (:func:`~zoo.data.toy_world.render_photo`).
        seed: Base seed of the streets.
        boxes: Also write ``images/<seq>/<frame>.json`` with the object boxes of each frame.

    Returns:
        Every file written, ``classes.json`` first, then per frame its image, its boxes and its label map.
    """
    sequences, frames = _check_count("sequences", sequences), _check_count("frames", frames)
    pair = tuple(size)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 4 for s in pair):
        raise ValueError(f"write_toy_dataset: size must be (H, W) of ints >= 4; got {size!r}.")
    height, width = int(pair[0]), int(pair[1])
    if domain not in ("sim", "photo"):
        raise ValueError(f"write_toy_dataset: domain must be 'sim' or 'photo'; got {domain!r}.")
    seed = _check_seed(seed, "write_toy_dataset")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    classes_path = root / "classes.json"
    classes_path.write_text(json.dumps(_classes_record(), indent=2) + "\n")
    written = [classes_path]
    render = render_photo if domain == "photo" else render_sim
    for sequence in range(sequences):
        name = f"seq{sequence:03d}"
        image_dir, label_dir = root / "images" / name, root / "labels" / name
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for frame in range(frames):
            scene = sequence_scene(_sequence_seed(seed, sequence), frame, height, width)
            stem = f"{frame:06d}"
            image_path = image_dir / f"{stem}.png"
            Image.fromarray(render(scene)).save(image_path)
            written.append(image_path)
            if boxes:
                box_path = image_dir / f"{stem}.json"
                box_path.write_text(json.dumps({"size": [height, width], "boxes": frame_boxes(scene)}) + "\n")
                written.append(box_path)
            label_path = label_dir / f"{stem}.png"
            Image.fromarray(scene.labels.astype(np.uint8)).save(label_path)
            written.append(label_path)
    return written
