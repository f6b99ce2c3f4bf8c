"""Toy driving world: procedural street scenes with Cityscapes labels, drawn as a simulator frame and as a photo.

This is zoo's embedded default data. Every method can train, validate and be tested on it without downloading a
single file: a scene is a pure function of an integer seed, drawn at any resolution in a few milliseconds, so the
datasets below build their items on the fly and any worker, in any order, sees identical data.

What a scene is
    A pinhole camera looks down a straight street. The layout (camera height, focal length, horizon, vanishing point;
    lanes, parking strips and road markings; sidewalks, grass strips, fences and walls; buildings of varying widths
    and heights on both sides; trees; poles carrying traffic signs and lights; cars, trucks, buses and pedestrians) is
    drawn in world coordinates from the seed alone, then rasterised with a z-buffer at the requested height and width.
    Sizes therefore follow the perspective, occlusions are exact, and one seed gives the same street at every
    resolution (stretched with the aspect ratio; details too small to see are left out). Labels are Cityscapes ids
    with Cityscapes colours (:data:`CITYSCAPES_CLASSES`, :func:`colorize`, :func:`label_to_train_id`); every placed
    object (vehicle, person, pole, traffic sign, traffic light) is an instance.

Two renderings of one layout
    :func:`render_sim` gives flat colours per class and per object, flat shading per face orientation, hard edges and
    no noise, like a simple game engine. :func:`render_photo` adds textures (asphalt, paving, bricks, leaves, a sky
    with clouds), a sun with cast shadows, haze, vignetting, sensor noise and a slight blur, as a stand-in for camera
    images. The gap between the two is the domain gap that translation methods learn to close.

The tasks it feeds
    - :class:`ToyPairedDataset`: colourised label map (or sim frame) and the photo of the same scene, for pix2pix.
    - :class:`ToyUnpairedDataset`: sim frames and photos of *different* scenes, for CycleGAN, MUNIT, DRIT and VSAIT.
    - :class:`ToyMaskedDataset`: sim frame, an exemplar photo of another scene and masks of chosen classes in both, for
      exemplar-guided, instance-aware methods (LOMIT, DECENT); optionally binary attributes of any names per scene
      (:func:`scene_attributes`).
    - :class:`ToySRDataset`: photo and its MATLAB-bicubic downscale, for SRResNet and SRGAN.

    Items are dicts of float32 tensors: images (3, H, W) in [-1, 1], masks
    (1, H, W) in {0, 1} and label maps (H, W) int64 of Cityscapes train ids. Splits ``"train"``, ``"val"`` and
    ``"test"`` use disjoint scene seeds, and item ``i`` is a pure function of ``(seed, split, i)``.

Example:
    >>> scene = make_scene(0, 64, 128)
    >>> scene.labels.shape, scene.instances.dtype, render_photo(scene).shape
    ((64, 128), dtype('int32'), (64, 128, 3))
    >>> item = ToyPairedDataset(length=4, size=32)[0]
    >>> tuple(item["real_a"].shape), tuple(item["label"].shape)
    ((3, 32, 32), (32, 32))
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

__all__ = [
    "CITYSCAPES_CLASSES",
    "Camera",
    "CityscapesClass",
    "Layout",
    "Scene",
    "ToyMaskedDataset",
    "ToyPairedDataset",
    "ToySRDataset",
    "ToyUnpairedDataset",
    "colorize",
    "instance_mask",
    "instance_masks",
    "label_to_train_id",
    "make_scene",
    "render_photo",
    "render_sim",
    "scene_attributes",
]

# --------------------------------------------------------------------------------------------------------------------
# Cityscapes label definition
# --------------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------------------------------

# Part codes: finer structure inside a class, used only by the renderers (a car's windows and wheels, road markings).
_P_NONE, _P_WINDOW, _P_WHEEL, _P_TAIL, _P_HEAD, _P_LANE, _P_KERB = 0, 1, 2, 3, 4, 5, 6
_P_SKIN, _P_PANTS, _P_TRUNK, _P_LAMP, _P_LAMP_ON = 7, 8, 9, 10, 11
_NUM_PARTS = 12
# Surface orientation codes, used for flat shading (sim) and sun lighting (photo).
_N_NONE, _N_UP, _N_POS_X, _N_NEG_X, _N_FRONT, _N_DOWN, _N_ROUND = 0, 1, 2, 3, 4, 5, 6
# Primitive kinds and the shapes of flat primitives (signs, lamps, lights) facing the camera.
_BOX, _SPHERE, _FLAT = 0, 1, 2
_DISC, _TRIANGLE, _TRIANGLE_DOWN, _RECT, _DIAMOND = 0, 1, 2, 3, 4

_Z_NEAR = 0.5  # metres; geometry closer than this to the camera is not drawn
_BACKDROP_Z = 250.0  # metres; distance of the far skyline closing the street
_FAR = 1.0e4  # depth assigned to ground pixels just below the horizon


@dataclass(frozen=True)
class Camera:
    """Pinhole camera of a scene, in normalised image coordinates (u = column / W, v = row / H, origin top-left).

    A world point (X right, Y up, Z forward, metres; the road is Y = 0) projects to
    ``u = vanish_x + fu * X / Z`` and ``v = horizon + fv * (height - Y) / Z``, where ``(fu, fv) = scales(H, W)``.
    Pixels are square: a wider image shows more of the street rather than a stretched one.

    Attributes:
        horizon: v of the horizon.
        vanish_x: u of the vanishing point of the street.
        focal: Focal length in units of the shorter image side.
        height: Height of the camera above the road, metres.
    """

    horizon: float
    vanish_x: float
    focal: float
    height: float

    def scales(self, height: int, width: int) -> tuple[float, float]:
        """Focal lengths (fu, fv) in units of the image width and height."""
        side = min(height, width)
        return self.focal * side / width, self.focal * side / height


class _Prim(NamedTuple):
    kind: int  # _BOX: (x0, x1, y0, y1, z0, z1); _SPHERE: (x, y, z, r); _FLAT: (shape, x, y, z, half_w, half_h)
    geom: tuple[float, ...]
    label: int
    element: int
    part: int
    minor: bool  # left out on objects only a few pixels tall


class _Building(NamedTuple):
    z0: float
    z1: float
    height: float
    depth: float  # extent away from the street, seen on the end wall
    element: int
    floor: float  # window grid: storey height, window width and height, spacing along the street
    win_w: float
    win_h: float
    spacing: float
    shop: bool  # large ground-floor windows


class _Fence(NamedTuple):
    x: float
    z0: float
    z1: float
    height: float
    label: int
    element: int


class _Skyline(NamedTuple):
    x0: float  # lateral extent at the skyline's distance, metres
    x1: float
    height: float
    label: int
    element: int


@dataclass(frozen=True, eq=False)
class Layout:
    """World geometry of a scene, independent of resolution; what the renderers need beyond the label maps.

    Attributes:
        camera: The pinhole camera.
        road_x: Lateral position of the road centre, metres (the camera is at X = 0).
        road_half: Half width of the driving lanes, metres.
        lane_width: Width of one lane, metres.
        n_lanes: Number of lanes; lanes ``0 .. oncoming - 1`` (from the left) drive towards the camera.
        oncoming: Number of oncoming lanes.
        parking: Widths of the left and right parking strips beside the lanes (part of the road), metres.
        sidewalks: Widths of the left and right sidewalks, metres.
        facades: X of the left and right building facades, metres.
        crosswalk: Depth range (z0, z1) of a zebra crossing, or None.
        buildings: Buildings along the left and right facades, sorted by depth.
        fences: Fences and walls along the grass strips.
        skyline: Far buildings and trees closing the street.
        prims: Boxes, spheres and flat shapes of all placed objects.
        element_classes: Class id of every element (a building, tree, object or part of the skyline); index 0 is
            unused and stands for the ground and the sky.
        element_boxes: (E, 6) world bounding box (x0, x1, y0, y1, z0, z1) of every placed object (vehicle, person,
            pole, sign, light, tree), NaN for buildings, fences and the skyline.
    """

    camera: Camera
    road_x: float
    road_half: float
    lane_width: float
    n_lanes: int
    oncoming: int
    parking: tuple[float, float]
    sidewalks: tuple[float, float]
    facades: tuple[float, float]
    crosswalk: tuple[float, float] | None
    buildings: tuple[tuple[_Building, ...], tuple[_Building, ...]]
    fences: tuple[tuple[_Fence, ...], tuple[_Fence, ...]]
    skyline: tuple[_Skyline, ...]
    prims: tuple[_Prim, ...]
    element_classes: np.ndarray
    element_boxes: np.ndarray


@dataclass(frozen=True, eq=False)
class Scene:
    """A street scene rasterised at one resolution.

    Attributes:
        labels: (H, W) uint8 Cityscapes label ids.
        instances: (H, W) int32, 0 for stuff and 1..N for each visible object instance (vehicles, people, poles,
            traffic signs and lights), numbered in layout order.
        instance_classes: Cityscapes class id of every instance id 1..N.
        seed: The seed the layout was drawn from.
        depth: (H, W) float32 distance along the viewing axis, metres; ``inf`` for the sky.
        surfaces: (H, W) int32 id of the drawn surface (one face of an object, a facade, the road, ...), indexing
            ``surface_table``; the renderers colour surfaces.
        surface_table: (S, 4) int64 rows (label id, element, part code, orientation code) per surface. Elements
            (a building, a tree, an object) index ``layout.element_classes``; element 0 is the ground and the sky.
        layout: The resolution-independent world geometry.
    """

    labels: np.ndarray
    instances: np.ndarray
    instance_classes: dict[int, int]
    seed: int
    depth: np.ndarray
    surfaces: np.ndarray
    surface_table: np.ndarray
    layout: Layout

    @property
    def elements(self) -> np.ndarray:
        """(H, W) int32 element drawn at each pixel, 0 for the ground and the sky."""
        return self.surface_table[:, 1].astype(np.int32)[self.surfaces]

    @property
    def height(self) -> int:
        """Rows H."""
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        """Columns W."""
        return int(self.labels.shape[1])


# --------------------------------------------------------------------------------------------------------------------
# Layout generation (world coordinates, resolution independent)
# --------------------------------------------------------------------------------------------------------------------


class _Builder:
    """Collects elements and primitives while a layout is drawn."""

    def __init__(self) -> None:
        self.classes: list[int] = [0]
        self.boxes: list[list[float]] = [[math.nan] * 6]
        self.prims: list[_Prim] = []

    def element(self, label: int) -> int:
        self.classes.append(label)
        self.boxes.append([math.nan] * 6)
        return len(self.classes) - 1

    def add(self, kind: int, geom: tuple[float, ...], element: int, part: int = _P_NONE, *, shadow: bool = True,
            minor: bool = False) -> None:
        minor = minor or part in (_P_WHEEL, _P_TAIL, _P_HEAD, _P_LAMP, _P_LAMP_ON)
        self.prims.append(_Prim(kind, geom, self.classes[element], element, part, minor))
        if not shadow:
            return
        if kind == _BOX:
            box = geom
        elif kind == _SPHERE:
            x, y, z, r = geom
            box = (x - r, x + r, y - r, y + r, z - r, z + r)
        else:
            _, x, y, z, hw, hh = geom
            box = (x - hw, x + hw, y - hh, y + hh, z, z + 0.05)
        old = self.boxes[element]
        if math.isnan(old[0]):
            self.boxes[element] = list(box)
        else:
            self.boxes[element] = [min(old[0], box[0]), max(old[1], box[1]), min(old[2], box[2]),
                                   max(old[3], box[3]), min(old[4], box[4]), max(old[5], box[5])]


def _min_visible_z(x: float, cam: Camera, margin: float = 0.04) -> float:
    """Smallest depth at which a point at lateral position x is inside a square (or wider) image horizontally."""
    room = (cam.vanish_x - margin) if x < 0 else (1.0 - margin - cam.vanish_x)
    return cam.focal * abs(x) / max(room, 0.05)


def _add_vehicle(b: _Builder, rng: random.Random, x: float, z: float, oncoming: bool, label: int) -> None:
    """Adds a car, truck or bus centred on x with its rear (or, when oncoming, front) face at depth z."""
    el = b.element(label)
    light = _P_HEAD if oncoming else _P_TAIL
    if label == _CAR:
        w, h, length = rng.uniform(1.65, 1.95), rng.uniform(1.35, 1.65), rng.uniform(3.9, 4.8)
        x0, x1 = x - w / 2, x + w / 2
        body_top = 0.3 + 0.45 * h
        b.add(_BOX, (x0, x1, 0.3, body_top, z, z + length), el)
        inset = 0.1 * w
        b.add(_BOX, (x0 + inset, x1 - inset, body_top, h, z + 0.2 * length, z + 0.78 * length), el, _P_WINDOW)
        _add_wheels(b, el, x0, x1, (z + 0.55, z + length - 1.25), 0.04, 0.28, 0.66)
        for lx in (x0 + 0.22, x1 - 0.22):
            b.add(_FLAT, (_RECT, lx, body_top - 0.16, z - 0.02, 0.16, 0.08), el, light, shadow=False)
        return
    w = rng.uniform(2.35, 2.55)
    x0, x1 = x - w / 2, x + w / 2
    if label == _BUS:
        h, length = rng.uniform(2.9, 3.3), rng.uniform(10.5, 12.5)
        b.add(_BOX, (x0, x1, 0.35, h, z, z + length), el)
        b.add(_BOX, (x0 - 0.01, x1 + 0.01, 1.25, h - 0.35, z - 0.01, z + length - 0.4), el, _P_WINDOW)
    else:
        h, length = rng.uniform(2.9, 3.7), rng.uniform(6.5, 9.5)
        cab = 2.2
        cargo = (z + cab + 0.2, z + length) if oncoming else (z, z + length - cab - 0.2)
        cab_z = (z, z + cab) if oncoming else (z + length - cab, z + length)
        b.add(_BOX, (x0, x1, 0.5, h, *cargo), el)
        b.add(_BOX, (x0 + 0.05, x1 - 0.05, 0.5, min(h, 2.7), *cab_z), el)
        if oncoming:
            b.add(_FLAT, (_RECT, x, 1.95, z - 0.02, w / 2 - 0.2, 0.4), el, _P_WINDOW, shadow=False)
    _add_wheels(b, el, x0, x1, (z + 0.8, z + length - 1.8), 0.05, 0.35, 0.95)
    for lx in (x0 + 0.25, x1 - 0.25):
        b.add(_FLAT, (_RECT, lx, 0.75, z - 0.02, 0.15, 0.1), el, light, shadow=False)


def _add_wheels(b: _Builder, el: int, x0: float, x1: float, zs: tuple[float, float], inset: float, width: float,
                size: float) -> None:
    """Four wheels, less the far ones that the body hides from a camera at X = 0."""
    near, far = zs
    for wx0 in (x0 + inset, x1 - inset - width):
        b.add(_BOX, (wx0, wx0 + width, 0.0, size, near, near + size), el, _P_WHEEL)
        if (x1 < 0 and wx0 > x0 + inset) or (x0 > 0 and wx0 == x0 + inset):  # only the side facing the camera
            b.add(_BOX, (wx0, wx0 + width, 0.0, size, far, far + size), el, _P_WHEEL)


def _add_person(b: _Builder, rng: random.Random, x: float, z: float) -> None:
    el = b.element(_PERSON)
    h = rng.uniform(1.55, 1.95)
    stride = rng.uniform(-0.25, 0.25)
    leg = 0.47 * h
    for lx0, dz in ((x - 0.17, stride), (x + 0.02, -stride)):
        b.add(_BOX, (lx0, lx0 + 0.15, 0.0, leg + 0.05, z + 0.05 + dz, z + 0.25 + dz), el, _P_PANTS)
    b.add(_BOX, (x - 0.23, x + 0.23, leg, 0.83 * h, z, z + 0.28), el)
    r = 0.065 * h
    b.add(_SPHERE, (x, 0.83 * h + 0.9 * r, z + 0.14, r), el, _P_SKIN)


def _add_pole(b: _Builder, rng: random.Random, x: float, z: float, attach: str) -> None:
    pole = b.element(_POLE)
    w = rng.uniform(0.12, 0.2)
    h = rng.uniform(3.2, 4.5) if attach == "light" else rng.uniform(3.0, 7.5)
    b.add(_BOX, (x - w / 2, x + w / 2, 0.0, h, z, z + w), pole)
    if attach == "sign":
        sign = b.element(_SIGN)
        shape = rng.randrange(0, 5)
        size = rng.uniform(0.3, 0.45)
        hw, hh = (size, size * rng.uniform(0.6, 1.6)) if shape == _RECT else (size, size)
        b.add(_FLAT, (shape, x, h - hh - 0.05, z - 0.05, hw, hh), sign)
    elif attach == "light":
        light = b.element(_LIGHT)
        b.add(_BOX, (x - 0.18, x + 0.18, h - 0.05, h + 0.95, z - 0.32, z), light)
        on = rng.randrange(0, 3)
        for k in range(3):
            part = _P_LAMP_ON if k == on else _P_LAMP
            b.add(_FLAT, (_DISC, x, h + 0.72 - 0.3 * k, z - 0.34, 0.1, 0.1), light, part, shadow=False)


def _add_tree(b: _Builder, rng: random.Random, x: float, z: float, *, small: bool = False) -> None:
    el = b.element(_VEGETATION)
    if small:  # a bush
        r = rng.uniform(0.5, 1.1)
        b.add(_SPHERE, (x, 0.7 * r, z + r, r), el)
        return
    trunk_h, trunk_w = rng.uniform(1.8, 3.5), rng.uniform(0.22, 0.4)
    r = rng.uniform(1.5, 3.0)
    b.add(_BOX, (x - trunk_w / 2, x + trunk_w / 2, 0.0, trunk_h + 0.6 * r, z + r - trunk_w / 2, z + r + trunk_w / 2),
          el, _P_TRUNK)
    b.add(_SPHERE, (x, trunk_h + 0.85 * r, z + r, r), el)
    for _ in range(rng.randrange(0, 3)):
        rr = r * rng.uniform(0.55, 0.8)
        b.add(_SPHERE, (x + rng.uniform(-0.6, 0.6) * r, trunk_h + rng.uniform(0.6, 1.5) * r,
                        z + r + rng.uniform(-0.3, 0.3) * r, rr), el, minor=True)


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson-distributed count (Knuth's multiplication method, fine for small ``lam``)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _spaced(rng: random.Random, count: int, lo: float, hi: float, gap: float, taken: list[float] | None = None
            ) -> list[float]:
    """Up to ``count`` sorted positions in [lo, hi], at least ``gap`` from each other and from those in ``taken``.

    The new positions are appended to ``taken`` too.
    """
    taken = [] if taken is None else taken
    out: list[float] = []
    for _ in range(count * 4):
        if len(out) == count or hi <= lo:
            break
        z = rng.uniform(lo, hi)
        if all(abs(z - o) >= gap for o in out) and all(abs(z - o) >= gap for o in taken):
            out.append(z)
    taken.extend(out)
    return sorted(out)


def _make_layout(seed: int) -> Layout:
    """Draws the world geometry of one scene from ``seed`` alone."""
    # A string seed is hashed (SHA-512) by `random`; integer seeds that differ by multiples of 2**32 could collide.
    rng = random.Random(f"zoo.toy_world:{seed}")
    cam = Camera(horizon=rng.uniform(0.36, 0.52), vanish_x=rng.uniform(0.4, 0.6),
                 focal=rng.uniform(0.7, 0.95), height=rng.uniform(1.35, 1.75))
    b = _Builder()

    # Road: lanes left of `oncoming` drive towards the camera; the camera sits in one of the other lanes.
    n_lanes = rng.choice((2, 2, 3, 4))
    lane_w = rng.uniform(2.9, 3.6)
    half = n_lanes * lane_w / 2
    oncoming = n_lanes // 2
    ego = rng.randrange(oncoming, n_lanes)
    road_x = half - (ego + 0.5) * lane_w + rng.uniform(-0.4, 0.4)
    parking = (2.3 if rng.random() < 0.6 else 0.0, 2.3 if rng.random() < 0.6 else 0.0)  # parking strips
    sidewalks = (rng.uniform(1.6, 4.5), rng.uniform(1.6, 4.5))
    grass = (rng.uniform(1.0, 4.0) if rng.random() < 0.4 else 0.0, rng.uniform(1.0, 4.0) if rng.random() < 0.4 else 0.0)
    edge = (road_x - half - parking[0], road_x + half + parking[1])  # kerbs
    sidewalk_out = (edge[0] - sidewalks[0], edge[1] + sidewalks[1])
    facades = (sidewalk_out[0] - grass[0], sidewalk_out[1] + grass[1])
    crosswalk = None
    if rng.random() < 0.25:
        zc = rng.uniform(9.0, 30.0)
        crosswalk = (zc, zc + rng.uniform(3.0, 4.5))

    # Far skyline closing the street, wide enough for images up to about 4:1.
    skyline = []
    x = -1000.0 + rng.uniform(0.0, 10.0)
    while x < 1000.0:
        width = rng.uniform(8.0, 36.0)
        label = _BUILDING if rng.random() < 0.7 else _VEGETATION
        height = rng.uniform(8.0, 45.0) if label == _BUILDING else rng.uniform(6.0, 16.0)
        skyline.append(_Skyline(x, x + width, height, label, b.element(label)))
        x += width

    # Buildings along both facades; one side may be a park (no buildings, more trees).
    park = rng.randrange(0, 2) if rng.random() < 0.15 else -1
    buildings: list[tuple[_Building, ...]] = []
    street_end = rng.uniform(70.0, 170.0)
    for side in range(2):
        row: list[_Building] = []
        z = rng.uniform(-5.0, 3.0)
        while side != park and z < street_end:
            if z > 5.0 and rng.random() < 0.3:
                z += rng.uniform(3.0, 12.0)
            length = rng.uniform(6.0, 28.0)
            kind = rng.random()
            height = (rng.uniform(5.0, 10.0) if kind < 0.3 else rng.uniform(10.0, 20.0) if kind < 0.8
                      else rng.uniform(20.0, 38.0))
            row.append(_Building(z, z + length, height, rng.uniform(8.0, 20.0), b.element(_BUILDING),
                                 rng.uniform(2.8, 3.8), rng.uniform(0.8, 1.6),
                                 rng.uniform(1.1, 1.8), rng.uniform(2.3, 3.8), bool(rng.random() < 0.4)))
            z += length
        buildings.append(tuple(row))

    # Fences or walls along grass strips.
    fences: list[tuple[_Fence, ...]] = []
    for side in range(2):
        row_f: list[_Fence] = []
        if grass[side] > 0 and rng.random() < 0.6:
            label = _FENCE if rng.random() < 0.7 else _WALL
            z0 = rng.uniform(0.0, 20.0)
            row_f.append(_Fence(sidewalk_out[side], z0, z0 + rng.uniform(10.0, 60.0),
                                rng.uniform(0.8, 1.6), label, b.element(label)))
        fences.append(tuple(row_f))

    # Trees: a row along the outer sidewalk edge or the grass strip, bushes on grass, dense trees in a park.
    want_trees = [rng.random() < 0.7, rng.random() < 0.7]
    if not any(want_trees):
        want_trees[rng.randrange(0, 2)] = True
    for side in range(2):
        sign = -1.0 if side == 0 else 1.0
        if side == park:
            for z in _spaced(rng, 14, 3.0, 90.0, 4.0):
                x = sidewalk_out[side] + sign * rng.uniform(2.5, 15.0)
                _add_tree(b, rng, x, z)
            continue
        if want_trees[side]:
            x = sidewalk_out[side] + sign * (grass[side] / 2 if grass[side] > 0 else -0.7)
            z = _min_visible_z(x, cam, 0.0) + rng.uniform(-4.0, 6.0)
            spacing = rng.uniform(7.0, 16.0)
            while z < 100.0:
                _add_tree(b, rng, x + rng.uniform(-0.2, 0.2), z)
                z += spacing * rng.uniform(0.8, 1.2)
        if grass[side] > 0:
            for z in _spaced(rng, rng.randrange(0, 5), 4.0, 60.0, 3.0):
                _add_tree(b, rng, sidewalk_out[side] + sign * rng.uniform(0.5, grass[side]), z, small=True)
        # Trees seen through gaps between buildings.
        row = buildings[side]
        for prev, nxt in itertools.pairwise(row):
            if nxt.z0 - prev.z1 > 4.0 and rng.random() < 0.7:
                x = facades[side] + sign * rng.uniform(2.0, 6.0)
                _add_tree(b, rng, x, rng.uniform(prev.z1, nxt.z0 - 2.0))

    # Poles along the kerbs, each with a sign, a traffic light or nothing; the first one always carries a sign.
    first_side = rng.randrange(0, 2)
    for side in (first_side, 1 - first_side):
        sign = -1.0 if side == 0 else 1.0
        x = edge[side] + sign * rng.uniform(0.35, 0.7)
        z = _min_visible_z(x, cam) + rng.uniform(0.0, 10.0)
        first = side == first_side
        if not first and rng.random() < 0.3:
            continue
        while z < 90.0:
            attach = "sign" if first else rng.choice(("sign", "sign", "light", "none", "none"))
            _add_pole(b, rng, x, z, attach)
            first = False
            z += rng.uniform(12.0, 35.0)

    # Pedestrians on the sidewalks (one guaranteed near the camera), sometimes one crossing the road.
    people = [rng.randrange(0, 5), rng.randrange(0, 5)]
    people[rng.randrange(0, 2)] += 1
    for side in range(2):
        sign = -1.0 if side == 0 else 1.0
        for k in range(people[side]):
            x = edge[side] + sign * rng.uniform(0.5, max(0.6, sidewalks[side] - 0.4))
            z_min = max(4.0, _min_visible_z(x, cam))
            z = rng.uniform(z_min, z_min + (10.0 if k == 0 else 35.0))
            _add_person(b, rng, x, z)
    if rng.random() < 0.25:
        _add_person(b, rng, road_x + rng.uniform(-half, half), rng.uniform(9.0, 30.0))

    # Vehicles: one car within 25 m in a random lane, others in the lanes and the parking strips.
    taken: list[list[float]] = [[] for _ in range(n_lanes)]
    lane = rng.randrange(0, n_lanes)
    taken[lane].append(rng.uniform(8.0, 20.0))
    _add_vehicle(b, rng, road_x - half + (lane + 0.5) * lane_w, taken[lane][0], lane < oncoming, _CAR)
    for lane in range(n_lanes):
        x_lane = road_x - half + (lane + 0.5) * lane_w
        for z in _spaced(rng, _poisson(rng, 1.0), 8.0 if lane == ego else 5.0, 80.0, 13.0, taken[lane]):
            kind = rng.random()
            label = _CAR if kind < 0.84 else _TRUCK if kind < 0.93 else _BUS
            _add_vehicle(b, rng, x_lane + rng.uniform(-0.3, 0.3), z, lane < oncoming, label)
    for side in range(2):
        if parking[side] > 0:
            sign = -1.0 if side == 0 else 1.0
            x = edge[side] - sign * parking[side] / 2
            for z in _spaced(rng, rng.randrange(1, 7), max(5.0, _min_visible_z(x, cam, 0.0) - 3.0), 70.0, 5.5):
                _add_vehicle(b, rng, x + rng.uniform(-0.1, 0.1), z, side == 0 and oncoming > 0, _CAR)

    return Layout(
        camera=cam, road_x=road_x, road_half=half, lane_width=lane_w, n_lanes=n_lanes, oncoming=oncoming,
        parking=parking, sidewalks=sidewalks, facades=facades, crosswalk=crosswalk,
        buildings=(buildings[0], buildings[1]), fences=(fences[0], fences[1]), skyline=tuple(skyline),
        prims=tuple(b.prims),
        element_classes=np.asarray(b.classes, np.int64), element_boxes=np.asarray(b.boxes, np.float64),
    )


# --------------------------------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------------------------------


def _convex_mask(pts: Sequence[tuple[float, float]], px: np.ndarray, py: np.ndarray):
    """Pixels whose centres lie inside a convex polygon given in pixel units.

    Returns ``(i0, i1, j0, j1, mask)`` with mask (i1 - i0, j1 - j0) bool over the clipped bounding box, or None.
    """
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    j0, j1 = max(0, math.ceil(min(xs) - 0.5)), min(px.shape[0], math.floor(max(xs) - 0.5) + 1)
    i0, i1 = max(0, math.ceil(min(ys) - 0.5)), min(py.shape[0], math.floor(max(ys) - 0.5) + 1)
    if j0 >= j1 or i0 >= i1:
        return None
    n = len(pts)
    area = sum(xs[k] * ys[(k + 1) % n] - xs[(k + 1) % n] * ys[k] for k in range(n))
    if abs(area) < 1e-9:
        return None
    sgn = 1.0 if area > 0 else -1.0
    cols, rows = px[j0:j1], py[i0:i1, None]
    mask = None
    for k in range(n):
        x0, y0 = pts[k]
        ex, ey = (xs[(k + 1) % n] - x0) * sgn, (ys[(k + 1) % n] - y0) * sgn
        inside = (ex * rows + (ey * x0 - ex * y0)) >= ey * cols  # cross(edge, p - p0) >= 0
        mask = inside if mask is None else np.logical_and(mask, inside, out=mask)
    return i0, i1, j0, j1, mask


def _ellipse_mask(cx: float, cy: float, rx: float, ry: float, px: np.ndarray, py: np.ndarray):
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    j0, j1 = max(0, math.ceil(cx - rx - 0.5)), min(px.shape[0], math.floor(cx + rx - 0.5) + 1)
    i0, i1 = max(0, math.ceil(cy - ry - 0.5)), min(py.shape[0], math.floor(cy + ry - 0.5) + 1)
    if j0 >= j1 or i0 >= i1:
        return None
    dx = ((px[j0:j1] - cx) / rx) ** 2
    dy = ((py[i0:i1] - cy) / ry) ** 2
    return i0, i1, j0, j1, (dy[:, None] + dx[None, :]) <= 1.0


class _Raster:
    """Z-buffered canvas. Pixels store a surface id (label, element, part, orientation), resolved once at the end."""

    def __init__(self, layout: Layout, height: int, width: int) -> None:
        self.h, self.w = height, width
        cam = layout.camera
        self.cx, self.cy, self.ch = cam.vanish_x, cam.horizon, cam.height
        self.fu, self.fv = cam.scales(height, width)
        self.px = np.arange(width, dtype=np.float32) + 0.5
        self.py = np.arange(height, dtype=np.float32) + 0.5
        self.surfaces: dict[tuple[int, int, int, int], int] = {}
        self.sky = self.surface(_SKY, 0, _P_NONE, _N_NONE)
        self.ids = np.full((height, width), self.sky, np.int32)
        self.depth = np.full((height, width), np.inf, np.float32)

    def surface(self, label: int, element: int, part: int, normal: int) -> int:
        key = (label, element, part, normal)
        sid = self.surfaces.get(key)
        if sid is None:
            sid = self.surfaces[key] = len(self.surfaces)
        return sid

    def table(self) -> np.ndarray:
        """(S, 4) int64 rows (label, element, part, normal) per surface id."""
        return np.array(list(self.surfaces), np.int64).reshape(-1, 4)  # dicts keep insertion order, i.e. id order

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """World point -> pixel coordinates (column, row), continuous."""
        return (self.cx + self.fu * x / z) * self.w, (self.cy + self.fv * (self.ch - y) / z) * self.h

    def write(self, region, depth: float, sid: int) -> None:
        """Draws surface ``sid`` where ``region`` (from a mask helper) is inside and not behind what is drawn."""
        if region is None:
            return
        i0, i1, j0, j1, mask = region
        zbuf = self.depth[i0:i1, j0:j1]
        near = zbuf >= depth
        if mask is not None:
            near &= mask
        zbuf[near] = depth
        self.ids[i0:i1, j0:j1][near] = sid

    def rect(self, x0: float, x1: float, y0: float, y1: float, min_px: float = 0.0):
        """Axis-aligned pixel rectangle, widened (and heightened) to ``min_px`` pixels so thin poles never vanish."""
        if x1 - x0 < min_px:
            x0, x1 = (x0 + x1 - min_px) / 2, (x0 + x1 + min_px) / 2
        if y1 - y0 < min_px:
            y0, y1 = (y0 + y1 - min_px) / 2, (y0 + y1 + min_px) / 2
        j0, j1 = max(0, math.ceil(x0 - 0.5)), min(self.w, math.floor(x1 - 0.5) + 1)
        i0, i1 = max(0, math.ceil(y0 - 0.5)), min(self.h, math.floor(y1 - 0.5) + 1)
        if j0 >= j1 or i0 >= i1:
            return None
        return i0, i1, j0, j1, None

    def visible_elements(self, layout: Layout) -> tuple[list[bool], list[bool]]:
        """Per element: whether its world box may cover a pixel centre, and whether it is large enough for details.

        Cheap culling before rasterising: off-screen and sub-pixel elements, and wheels or lights of small ones.
        """
        boxes = layout.element_boxes
        x = boxes[:, [0, 1, 0, 1]]
        z = np.maximum(boxes[:, [4, 4, 5, 5]], _Z_NEAR)
        u = (self.cx + self.fu * x / z) * self.w
        v_top = (self.cy + self.fv * (self.ch - boxes[:, 3:4]) / z) * self.h
        v_bot = (self.cy + self.fv * (self.ch - boxes[:, 2:3]) / z) * self.h
        with np.errstate(invalid="ignore"):
            inside = ((u.max(1) > 0) & (u.min(1) < self.w) & (v_bot.max(1) > 0) & (v_top.min(1) < self.h)
                      & (boxes[:, 5] > _Z_NEAR))
            big = (u.max(1) - u.min(1) > 0.3) | (v_bot.max(1) - v_top.min(1) > 0.3)
            detailed = inside & (v_bot.max(1) - v_top.min(1) > 6.0)
        return (inside & big).tolist(), detailed.tolist()

    # ---- primitives ------------------------------------------------------------------------------------------------

    def box(self, prim: _Prim, front_only: bool = False) -> None:
        x0, x1, y0, y1, z0, z1 = prim.geom
        if z0 < _Z_NEAR:
            return
        p = self.project
        (u0, vb), (u1, vt) = p(x0, y0, z0), p(x1, y1, z0)
        min_px = 1.0 if prim.label == _POLE else 0.0
        self.write(self.rect(u0, u1, vt, vb, min_px), z0, self.surface(prim.label, prim.element, prim.part, _N_FRONT))
        if front_only:
            return
        if x1 < 0 or x0 > 0:  # the side facing the camera axis
            xs, normal = (x1, _N_POS_X) if x1 < 0 else (x0, _N_NEG_X)
            quad = [p(xs, y0, z0), p(xs, y1, z0), p(xs, y1, z1), p(xs, y0, z1)]
            if abs(quad[0][0] - quad[3][0]) > 0.25:
                sid = self.surface(prim.label, prim.element, prim.part, normal)
                self.write(_convex_mask(quad, self.px, self.py), z0, sid)
        if y1 < self.ch or y0 > self.ch:  # the top (or bottom) face
            ys, normal = (y1, _N_UP) if y1 < self.ch else (y0, _N_DOWN)
            quad = [p(x0, ys, z0), p(x1, ys, z0), p(x1, ys, z1), p(x0, ys, z1)]
            if abs(quad[0][1] - quad[3][1]) > 0.25:
                part = _P_NONE if prim.part == _P_WINDOW else prim.part  # car roofs are painted, not glass
                sid = self.surface(prim.label, prim.element, part, normal)
                self.write(_convex_mask(quad, self.px, self.py), z0, sid)

    def sphere(self, prim: _Prim) -> None:
        x, y, z, r = prim.geom
        if z - r < _Z_NEAR:
            return
        u, v = self.project(x, y, z)
        region = _ellipse_mask(u, v, self.fu * r / z * self.w, self.fv * r / z * self.h, self.px, self.py)
        self.write(region, z - r, self.surface(prim.label, prim.element, prim.part, _N_ROUND))

    def flat(self, prim: _Prim) -> None:
        shape, x, y, z, hw, hh = prim.geom
        if z < _Z_NEAR:
            return
        u, v = self.project(x, y, z)
        rx, ry = self.fu * hw / z * self.w, self.fv * hh / z * self.h
        if shape == _DISC:
            region = _ellipse_mask(u, v, rx, ry, self.px, self.py)
        elif shape == _RECT:
            region = self.rect(u - rx, u + rx, v - ry, v + ry)
        else:
            rx, ry = max(rx, 0.6), max(ry, 0.6)
            pts = {_TRIANGLE: [(u - rx, v + ry), (u + rx, v + ry), (u, v - ry)],
                   _TRIANGLE_DOWN: [(u - rx, v - ry), (u + rx, v - ry), (u, v + ry)],
                   _DIAMOND: [(u - rx, v), (u, v - ry), (u + rx, v), (u, v + ry)]}[int(shape)]
            region = _convex_mask(pts, self.px, self.py)
        self.write(region, z, self.surface(prim.label, prim.element, prim.part, _N_FRONT))

    # ---- stuff -----------------------------------------------------------------------------------------------------

    def skyline(self, layout: Layout) -> None:
        _, v_bot = self.project(0.0, 0.0, _BACKDROP_Z)
        x_min, x_max = -self.cx * _BACKDROP_Z / self.fu, (1.0 - self.cx) * _BACKDROP_Z / self.fu  # the view
        for seg in layout.skyline:
            if seg.x1 > x_min and seg.x0 < x_max:
                u0, v_top = self.project(seg.x0, seg.height, _BACKDROP_Z)
                u1, _ = self.project(seg.x1, 0.0, _BACKDROP_Z)
                region = self.rect(u0, u1, v_top, v_bot)
                self.write(region, _BACKDROP_Z, self.surface(seg.label, seg.element, _P_NONE, _N_FRONT))

    def ground(self, layout: Layout) -> None:
        g0 = int(np.searchsorted(self.py / self.h, self.cy + 1e-6, side="right"))
        if g0 >= self.h:
            return
        z = np.minimum(self.fv * self.ch / (self.py[g0:] / self.h - self.cy), _FAR)  # (Hg,) depth of each row
        x = ((self.px / self.w - self.cx) / self.fu)[None, :] * z[:, None] - layout.road_x  # (Hg, W) from road centre
        half, lane_w = layout.road_half, layout.lane_width
        dist = np.abs(x)
        left = x < 0
        kerb = half + np.where(left, layout.parking[0], layout.parking[1])
        road = dist <= kerb
        sidewalk = ~road & (dist <= kerb + np.where(left, layout.sidewalks[0], layout.sidewalks[1]))

        # Road markings, widened to at least half a pixel and dropped where they would alias.
        mpp = z / (self.fu * self.w)  # metres per pixel across the road, per row
        hw = np.maximum(0.075, 0.55 * mpp)[:, None]
        rows = mpp < 0.35
        dashes_ok = z * z / (self.fv * self.ch * self.h) < 1.5  # row spacing in metres shorter than a dash
        dash_on = ((z % 9.0) < 3.5) & dashes_ok
        t = (x + half) / lane_w
        k = np.rint(t)
        lanes = (np.abs(t - k) * lane_w < hw) & (k >= 1) & (k <= layout.n_lanes - 1)
        lanes &= (k == layout.oncoming) | dash_on[:, None]  # the line between directions is solid
        lanes |= np.abs(dist - (half - 0.3)) < hw  # edge lines
        if layout.crosswalk is not None:
            zc0, zc1 = layout.crosswalk
            zebra = ((z >= zc0) & (z <= zc1))[:, None] & (dist < half - 0.4) & ((x % 1.0) < 0.5)
            lanes |= zebra
        lanes &= rows[:, None] & (dist <= half)
        kerb_band = sidewalk & (dist < kerb + np.maximum(0.22, mpp)[:, None])

        s = self.surface
        on_road = np.where(lanes, s(_ROAD, 0, _P_LANE, _N_UP), s(_ROAD, 0, _P_NONE, _N_UP))
        on_sidewalk = np.where(kerb_band, s(_SIDEWALK, 0, _P_KERB, _N_UP), s(_SIDEWALK, 0, _P_NONE, _N_UP))
        sid = np.where(road, on_road, np.where(sidewalk, on_sidewalk, s(_TERRAIN, 0, _P_NONE, _N_UP)))
        zbuf = self.depth[g0:]
        near = z[:, None] < zbuf
        zbuf[near] = np.broadcast_to(z[:, None], zbuf.shape)[near]
        self.ids[g0:][near] = sid[near]

    def _plane_columns(self, x_plane: float):
        """Columns looking at the vertical plane X = x_plane, with the depth at which each one meets it."""
        du = self.px / self.w - self.cx
        if x_plane < 0:
            j0, j1 = 0, int(np.searchsorted(du, -1e-6))
        else:
            j0, j1 = int(np.searchsorted(du, 1e-6)), self.w
        zc = self.fu * x_plane / du[j0:j1]
        return j0, j1, np.clip(zc, _Z_NEAR, _FAR)

    def _columns(self, j0: int, j1: int, zc: np.ndarray, valid: np.ndarray, height: np.ndarray | float):
        """Z-tests, in columns j0..j1 seen at depths zc, the vertical band from the ground up to ``height``.

        Writes the depth and returns ``(i0, i1, rows, near)``: the band's row range, its pixel centres (R, 1) and
        where it is visible (R, C); the caller writes the surface ids there. None when nothing is visible.
        """
        top = (self.cy + self.fv * (self.ch - height) / zc) * self.h
        bottom = (self.cy + self.fv * self.ch / zc) * self.h
        bottom = np.maximum(bottom, top + 1.0)  # at least one pixel tall
        i0 = max(0, int(np.floor(top[valid].min())))
        i1 = min(self.h, int(np.ceil(bottom[valid].max())) + 1)
        if i0 >= i1:
            return None
        rows = self.py[i0:i1, None]
        mask = (rows >= top) & (rows < bottom) & valid
        zbuf = self.depth[i0:i1, j0:j1]
        depth = np.broadcast_to(zc.astype(np.float32), zbuf.shape)
        near = mask & (depth < zbuf)
        zbuf[near] = depth[near]
        return i0, i1, rows, near

    def facades(self, layout: Layout) -> None:
        for side in range(2):
            row = layout.buildings[side]
            x_plane = layout.facades[side]
            if not row:
                continue
            sign = -1.0 if side == 0 else 1.0
            normal = _N_POS_X if side == 0 else _N_NEG_X
            # End walls, seen where the previous building is lower or absent; the z-buffer hides the rest.
            for bld in row:
                if bld.z0 > _Z_NEAR:
                    ua, vt = self.project(x_plane + sign * bld.depth, bld.height, bld.z0)
                    ub, vb = self.project(x_plane, 0.0, bld.z0)
                    region = self.rect(min(ua, ub), max(ua, ub), vt, vb)
                    self.write(region, bld.z0, self.surface(_BUILDING, bld.element, _P_NONE, _N_FRONT))
            j0, j1, zc = self._plane_columns(x_plane)
            if j1 <= j0:
                continue
            params = np.array([(b.z0, b.z1, b.height, b.floor, b.win_w, b.win_h, b.spacing, b.shop,
                                self.surface(_BUILDING, b.element, _P_NONE, normal),
                                self.surface(_BUILDING, b.element, _P_WINDOW, normal)) for b in row])
            idx = np.clip(np.searchsorted(params[:, 0], zc, side="right") - 1, 0, len(row) - 1)
            z0, z1, height, floor, win_w, win_h, spacing, shop, plain, glass = params[idx].T
            valid = (zc >= z0) & (zc < z1)
            if not valid.any():
                continue
            band = self._columns(j0, j1, zc, valid, height)
            if band is None:
                continue
            i0, i1, rows, near = band
            # Windows on a storey grid along the facade, where a window spans more than about two pixels.
            along = (zc - z0) % spacing < win_w
            shop_cols = (shop > 0) & ((zc - z0) % 6.0 < 4.5)
            big_enough = (zc * zc / (self.fu * abs(x_plane) * self.w) < win_w / 2.5) & (
                zc / (self.fv * self.h) < win_h / 2.5)
            y = self.ch - (rows / self.h - self.cy) * (zc / self.fv)  # world height of each facade pixel
            storey = (y - 3.2) % floor
            upper = (np.abs(storey - floor / 2) < win_h / 2) & (y > 3.2) & (y < height - 0.8) & along
            lower = (y > 0.5) & (y < 2.7) & shop_cols
            sid = np.where((upper | lower) & big_enough, glass, plain).astype(np.int32)
            self.ids[i0:i1, j0:j1][near] = sid[near]

    def fences(self, layout: Layout) -> None:
        for side in range(2):
            for fence in layout.fences[side]:
                j0, j1, zc = self._plane_columns(fence.x)
                if j1 <= j0:
                    continue
                valid = (zc >= fence.z0) & (zc < fence.z1)
                band = self._columns(j0, j1, zc, valid, fence.height) if valid.any() else None
                if band is not None:
                    i0, i1, _, near = band
                    normal = _N_POS_X if side == 0 else _N_NEG_X
                    self.ids[i0:i1, j0:j1][near] = self.surface(fence.label, fence.element, _P_NONE, normal)


def _check_seed(seed: int, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{what}: seed must be a non-negative int; got {seed!r}.")
    return int(seed)


def make_scene(seed: int, height: int, width: int) -> Scene:
    """Draws the street scene of ``seed`` at a resolution of ``height`` x ``width`` pixels.

    The layout depends on ``seed`` only; the resolution only changes how finely it is rasterised (road markings,
    windows and other details too small to be seen are left out at low resolution).

    Args:
        seed: Non-negative integer; equal seeds give identical scenes.
        height: Rows, at least 4.
        width: Columns, at least 4.

    Returns:
        The scene: ``labels`` (H, W) uint8 Cityscapes ids, ``instances`` (H, W) int32, ``instance_classes`` and the
        maps the renderers need.
    """
    seed = _check_seed(seed, "make_scene")
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 4:
            raise ValueError(f"make_scene: {name} must be an int >= 4; got {value!r}.")
    layout = _make_layout(seed)
    raster = _Raster(layout, int(height), int(width))
    raster.skyline(layout)
    raster.ground(layout)
    raster.facades(layout)
    raster.fences(layout)
    draw = {_BOX: raster.box, _SPHERE: raster.sphere, _FLAT: raster.flat}
    visible, detailed = raster.visible_elements(layout)
    for prim in layout.prims:
        if detailed[prim.element]:
            draw[prim.kind](prim)
        elif visible[prim.element] and not prim.minor:  # a few pixels tall: silhouettes only
            if prim.kind == _BOX:
                raster.box(prim, front_only=True)
            else:
                draw[prim.kind](prim)
    table = raster.table()

    # Instances: visible elements of countable classes, renumbered 1..N in element order.
    classes = layout.element_classes
    pixels = np.bincount(raster.ids.ravel(), minlength=len(table))
    seen = np.bincount(table[:, 1], weights=pixels, minlength=len(classes)) > 0
    things = np.flatnonzero(seen & np.isin(classes, _INSTANCE_CLASSES))
    lookup = np.zeros(len(classes), np.int32)
    lookup[things] = np.arange(1, len(things) + 1, dtype=np.int32)
    return Scene(
        labels=table[:, 0].astype(np.uint8)[raster.ids], instances=lookup[table[:, 1]][raster.ids],
        instance_classes={k + 1: int(classes[e]) for k, e in enumerate(things)}, seed=seed, depth=raster.depth,
        surfaces=raster.ids, surface_table=table, layout=layout,
    )


def instance_mask(scene: Scene, class_names: str | Sequence[str] = ("car",)) -> np.ndarray:
    """Where the scene shows any of the named classes.

    Args:
        scene: A scene from :func:`make_scene`.
        class_names: Cityscapes class names (``"car"``, ``"person"``, ``"traffic sign"``, also stuff like ``"road"``).

    Returns:
        bool (H, W).
    """
    return np.isin(scene.labels, _class_ids(class_names))


def instance_masks(scene: Scene) -> np.ndarray:
    """One mask per object instance.

    Returns:
        bool (N, H, W); row k is instance id k + 1, whose class is ``scene.instance_classes[k + 1]``.
    """
    ids = np.arange(1, len(scene.instance_classes) + 1, dtype=np.int32)
    return scene.instances[None, :, :] == ids[:, None, None]


# --------------------------------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------------------------------

_ATTRIBUTE_ALIASES = {"people": "person", "pedestrian": "person", "pedestrians": "person", "persons": "person",
                      "trees": "vegetation", "tree": "vegetation", "buses": "bus"}


def _overcast(seed: int) -> bool:
    """The weather :func:`render_photo` draws first for appearance seed ``seed``."""
    return bool(np.random.default_rng([seed, 0x9F]).random() < 0.25)


def _class_of_attribute(name: str) -> int | None:
    words = name.replace("_", " ")
    for candidate in (words, _ATTRIBUTE_ALIASES.get(name), words[:-1] if words.endswith("s") else None):
        if candidate is not None and candidate in _ID_BY_NAME:
            return _ID_BY_NAME[candidate]
    return None


def scene_attributes(scene: Scene, names: Sequence[str]) -> np.ndarray:
    """Binary attributes of a scene for any attribute names, a pure function of the scene (and the name).

    Names are matched case-insensitively, with spaces and hyphens read as underscores:

    - weather of the scene's photo (:func:`render_photo` with the scene's own seed): ``overcast`` / ``cloudy`` and
      ``sunny`` / ``clear``;
    - street layout: ``crosswalk``, ``two_way`` (oncoming lanes), ``one_way``, ``wide_road`` (three lanes or more);
    - a Cityscapes class name, singular or plural (``car``, ``cars``, ``traffic_sign``, ``people``, ``trees``): 1 when
      the class is visible in the scene;
    - any other name (e.g. CelebA's ``Black_Hair``): a fair coin drawn from a hash of the name and the scene seed,
      stable across processes, so such labels vary across scenes but not across calls.

    Args:
        scene: A scene from :func:`make_scene`.
        names: Attribute names.

    Returns:
        float32 (len(names),) in {0, 1}.
    """
    _check_scene(scene, "scene_attributes")
    layout = scene.layout
    overcast = _overcast(scene.seed)
    named = {
        "overcast": overcast, "cloudy": overcast, "sunny": not overcast, "clear": not overcast,
        "crosswalk": layout.crosswalk is not None, "two_way": layout.oncoming > 0, "one_way": layout.oncoming == 0,
        "wide_road": layout.n_lanes >= 3,
    }
    values = []
    for raw in names:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"scene_attributes: attribute names must be non-empty strings; got {raw!r}.")
        name = raw.strip().lower().replace(" ", "_").replace("-", "_")
        label = _class_of_attribute(name)
        if name in named:
            value = named[name]
        elif label is not None:
            value = bool((scene.labels == label).any())
        else:
            value = random.Random(f"zoo-toy-attribute:{name}:{scene.seed}").random() < 0.5
        values.append(float(value))
    return np.asarray(values, np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------------


def _table(entries: dict[int, tuple[float, float, float]], size: int = _NUM_IDS) -> np.ndarray:
    out = np.zeros((size, 3), np.float32)
    for key, rgb in entries.items():
        out[key] = rgb
    return out


# Flat simulator palette, deliberately unlike the Cityscapes colours.
_SIM_CLASS = _table({
    _ROAD: (0.36, 0.36, 0.4), _SIDEWALK: (0.72, 0.7, 0.64), _BUILDING: (0.82, 0.72, 0.58), _WALL: (0.7, 0.66, 0.6),
    _FENCE: (0.62, 0.5, 0.34), _POLE: (0.56, 0.58, 0.62), _LIGHT: (0.2, 0.2, 0.22), _SIGN: (0.92, 0.22, 0.18),
    _VEGETATION: (0.28, 0.62, 0.22), _TERRAIN: (0.58, 0.78, 0.32), _SKY: (0.55, 0.78, 1.0),
    _PERSON: (0.95, 0.55, 0.2), _CAR: (0.85, 0.12, 0.12), _TRUCK: (0.92, 0.92, 0.92), _BUS: (0.95, 0.8, 0.15),
})
_SIM_CARS = np.array([(0.85, 0.12, 0.12), (0.12, 0.32, 0.85), (0.95, 0.95, 0.95), (0.16, 0.16, 0.18),
                      (0.92, 0.76, 0.12), (0.2, 0.62, 0.24), (0.6, 0.62, 0.66)], np.float32)
_SIM_PARTS = _table({
    _P_WINDOW: (0.2, 0.3, 0.48), _P_WHEEL: (0.1, 0.1, 0.1), _P_TAIL: (0.95, 0.1, 0.1), _P_HEAD: (1.0, 1.0, 0.7),
    _P_LANE: (1.0, 1.0, 1.0), _P_KERB: (0.82, 0.82, 0.82), _P_SKIN: (0.92, 0.72, 0.56), _P_PANTS: (0.16, 0.22, 0.42),
    _P_TRUNK: (0.42, 0.28, 0.16), _P_LAMP: (0.12, 0.12, 0.12), _P_LAMP_ON: (1.0, 0.9, 0.2),
}, _NUM_PARTS)
_SIM_SHADE = np.array([1.0, 1.0, 0.84, 0.7, 0.93, 0.6, 0.9], np.float32)  # per orientation code


def _check_scene(scene: Scene, what: str) -> None:
    if not isinstance(scene, Scene):
        raise TypeError(f"{what}: expected a Scene from make_scene; got {type(scene).__name__}.")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_sim(scene: Scene) -> np.ndarray:
    """Simulator-style rendering: flat colours per class, varied per building, tree and instance, hard edges.

    Faces are shaded flatly by orientation (fronts, sides, tops), details (windows, wheels, lights, road markings)
    have flat colours of their own, and there is no texture or noise. Deterministic for a given scene.

    Args:
        scene: A scene from :func:`make_scene`.

    Returns:
        uint8 (H, W, 3), RGB.
    """
    _check_scene(scene, "render_sim")
    classes = scene.layout.element_classes
    rng = np.random.default_rng([scene.seed, 0x51])
    colours = _SIM_CLASS[classes] * rng.uniform(0.9, 1.1, (len(classes), 3)).astype(np.float32)
    vehicles = np.flatnonzero(classes == _CAR)
    colours[vehicles] = _SIM_CARS[rng.integers(0, len(_SIM_CARS), len(vehicles))]
    label, element, part, normal = scene.surface_table.T
    table = np.where((element > 0)[:, None], colours[element], _SIM_CLASS[label])
    table = np.where((part > 0)[:, None], _SIM_PARTS[part], table) * _SIM_SHADE[normal][:, None]
    return _to_uint8(table)[scene.surfaces]


# Photo albedos and per-element palettes.
_PHOTO_CLASS = _table({
    _ROAD: (0.3, 0.3, 0.32), _SIDEWALK: (0.58, 0.56, 0.53), _BUILDING: (0.55, 0.5, 0.45), _WALL: (0.6, 0.58, 0.53),
    _FENCE: (0.46, 0.38, 0.3), _POLE: (0.5, 0.5, 0.52), _LIGHT: (0.12, 0.13, 0.12), _SIGN: (0.8, 0.1, 0.1),
    _VEGETATION: (0.2, 0.34, 0.11), _TERRAIN: (0.4, 0.47, 0.2), _SKY: (0.6, 0.75, 0.9), _PERSON: (0.4, 0.4, 0.4),
    _CAR: (0.5, 0.5, 0.5), _TRUCK: (0.85, 0.85, 0.85), _BUS: (0.85, 0.75, 0.2),
})
_PALETTES: dict[int, tuple[np.ndarray, np.ndarray]] = {  # class -> (primary choices, secondary choices)
    _BUILDING: (np.array([(0.62, 0.33, 0.25), (0.72, 0.62, 0.48), (0.85, 0.82, 0.74), (0.55, 0.55, 0.55),
                          (0.9, 0.9, 0.88), (0.45, 0.28, 0.22), (0.72, 0.56, 0.4), (0.6, 0.64, 0.68)]),
                np.array([(0.12, 0.16, 0.22), (0.2, 0.26, 0.3), (0.08, 0.1, 0.12), (0.26, 0.3, 0.28)])),
    _CAR: (np.array([(0.9, 0.9, 0.9), (0.05, 0.05, 0.06), (0.6, 0.62, 0.64), (0.35, 0.36, 0.38), (0.6, 0.06, 0.06),
                     (0.1, 0.18, 0.5), (0.06, 0.1, 0.25), (0.15, 0.3, 0.15), (0.7, 0.62, 0.45)]),
           np.array([(0.05, 0.07, 0.09), (0.08, 0.1, 0.12)])),
    _TRUCK: (np.array([(0.92, 0.92, 0.9), (0.85, 0.75, 0.2), (0.7, 0.1, 0.1), (0.2, 0.35, 0.6)]),
             np.array([(0.06, 0.08, 0.1)])),
    _BUS: (np.array([(0.92, 0.92, 0.9), (0.85, 0.72, 0.15), (0.7, 0.12, 0.1), (0.15, 0.35, 0.55)]),
           np.array([(0.08, 0.1, 0.13)])),
    _PERSON: (np.array([(0.8, 0.2, 0.2), (0.2, 0.3, 0.7), (0.9, 0.9, 0.88), (0.1, 0.1, 0.1), (0.3, 0.5, 0.3),
                        (0.85, 0.7, 0.2), (0.5, 0.3, 0.5), (0.55, 0.55, 0.55)]),
              np.array([(0.1, 0.14, 0.3), (0.05, 0.05, 0.05), (0.35, 0.35, 0.35), (0.5, 0.42, 0.3)])),
    _SIGN: (np.array([(0.8, 0.08, 0.08), (0.1, 0.25, 0.7), (0.95, 0.8, 0.1), (0.92, 0.92, 0.92)]), np.zeros((1, 3))),
    _LIGHT: (np.array([(0.12, 0.13, 0.12), (0.2, 0.2, 0.18)]),
             np.array([(1.0, 0.15, 0.1), (1.0, 0.75, 0.1), (0.2, 1.0, 0.45)])),
    _VEGETATION: (np.array([(0.2, 0.35, 0.1), (0.28, 0.4, 0.12), (0.16, 0.3, 0.14), (0.33, 0.4, 0.15),
                            (0.45, 0.38, 0.12)]), np.zeros((1, 3))),
    _POLE: (np.array([(0.5, 0.5, 0.52), (0.62, 0.62, 0.6), (0.15, 0.25, 0.2)]), np.zeros((1, 3))),
    _FENCE: (np.array([(0.45, 0.35, 0.25), (0.4, 0.42, 0.45), (0.25, 0.35, 0.25)]), np.zeros((1, 3))),
    _WALL: (np.array([(0.6, 0.58, 0.55), (0.55, 0.35, 0.28), (0.7, 0.68, 0.6)]), np.zeros((1, 3))),
}
_SKIN = np.array([(0.92, 0.75, 0.62), (0.78, 0.57, 0.42), (0.55, 0.38, 0.26), (0.36, 0.24, 0.16)], np.float32)
_PHOTO_PARTS = _table({
    _P_WHEEL: (0.04, 0.04, 0.045), _P_TAIL: (0.75, 0.06, 0.05), _P_HEAD: (0.95, 0.92, 0.75), _P_LANE: (0.8, 0.8, 0.76),
    _P_KERB: (0.66, 0.65, 0.63), _P_TRUNK: (0.28, 0.2, 0.14), _P_LAMP: (0.06, 0.06, 0.06),
}, _NUM_PARTS)
_PART_SECONDARY = np.isin(np.arange(_NUM_PARTS), (_P_WINDOW, _P_PANTS, _P_LAMP_ON))
_PART_EMISSIVE = np.isin(np.arange(_NUM_PARTS), (_P_TAIL, _P_HEAD, _P_LAMP_ON))
# Texture amplitudes per class: large-scale blotches and per-pixel grain.
_AMP_MID = np.zeros(_NUM_IDS, np.float32)
_AMP_FINE = np.zeros(_NUM_IDS, np.float32)
for _cls, _mid, _fine in ((_ROAD, 0.12, 0.07), (_SIDEWALK, 0.08, 0.05), (_BUILDING, 0.12, 0.05), (_WALL, 0.1, 0.06),
                          (_FENCE, 0.1, 0.08), (_POLE, 0.05, 0.03), (_VEGETATION, 0.3, 0.22), (_TERRAIN, 0.2, 0.14),
                          (_PERSON, 0.05, 0.04), (_CAR, 0.03, 0.015), (_TRUCK, 0.05, 0.02), (_BUS, 0.04, 0.02),
                          (_SIGN, 0.03, 0.02), (_LIGHT, 0.05, 0.03)):
    _AMP_MID[_cls], _AMP_FINE[_cls] = _mid, _fine
_NORMALS = np.array([(0, 0, 0), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, -1), (0, -1, 0), (0, 0.6, -0.8)], np.float32)
_IS_GROUND = np.isin(np.arange(256), _GROUND_CLASSES)


def _flatten_palettes(which: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One palette list of all classes: colours (N, 3), and per class id its offset and number of choices (0: none)."""
    colours, offset, size = [np.zeros((1, 3))], np.zeros(_NUM_IDS, np.int64), np.zeros(_NUM_IDS, np.int64)
    for cls, pair in _PALETTES.items():
        offset[cls], size[cls] = sum(len(c) for c in colours), len(pair[which])
        colours.append(pair[which])
    return np.concatenate(colours).astype(np.float32), offset, size


_PRIMARY, _PRIMARY_AT, _PRIMARY_N = _flatten_palettes(0)
_SECONDARY, _SECONDARY_AT, _SECONDARY_N = _flatten_palettes(1)


def _element_colours(classes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary, secondary and skin colours (E, 3) per element for the photo renderer."""
    n = len(classes)
    pick = rng.random((n, 4))
    jitter = rng.uniform(0.9, 1.1, (n, 3)).astype(np.float32)
    random_shirt = rng.uniform(0.05, 0.9, (n, 3)).astype(np.float32)
    size = _PRIMARY_N[classes]
    primary = _PRIMARY[_PRIMARY_AT[classes] + (pick[:, 0] * size).astype(np.int64)]
    primary = np.where((size > 0)[:, None], primary, _PHOTO_CLASS[classes]) * jitter
    secondary = _SECONDARY[_SECONDARY_AT[classes] + (pick[:, 1] * _SECONDARY_N[classes]).astype(np.int64)]
    people = classes == _PERSON
    primary = np.where((people & (pick[:, 2] < 0.4))[:, None], random_shirt, primary)
    skin = np.where(people[:, None], _SKIN[(pick[:, 3] * len(_SKIN)).astype(np.int64)], np.float32(0.0))
    return primary.astype(np.float32), secondary, skin.astype(np.float32)


def _axis(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell index and smoothstep weight of n pixel centres spread over ``cells`` cells."""
    t = (np.arange(n, dtype=np.float32) + 0.5) * (cells / n)
    i = np.minimum(t.astype(np.int64), cells - 1)
    frac = t - i
    return i, frac * frac * (3.0 - 2.0 * frac)


def _interp(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Smooth interpolation of grids (..., a + 1, b + 1) spanning the image to (..., height, width)."""
    iy, wy = _axis(height, grid.shape[-2] - 1)
    ix, wx = _axis(width, grid.shape[-1] - 1)
    band = grid[..., iy, :] * (1.0 - wy)[:, None] + grid[..., iy + 1, :] * wy[:, None]
    return band[..., ix] * (1.0 - wx) + band[..., ix + 1] * wx


def _noise(rng: np.random.Generator, height: int, width: int, fields: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Fractal value noise (F, H, W), roughly in [-1, 1], one field per (cells_y, cells_x, octaves).

    The same at every resolution: octaves are summed on a common fine grid, then interpolated to the image once.
    """
    fine = (max(c[0] * 2 ** (c[2] - 1) for c in fields) + 1, max(c[1] * 2 ** (c[2] - 1) for c in fields) + 1)
    total = np.zeros((len(fields), *fine), np.float32)
    for f, (cy, cx, octaves) in enumerate(fields):
        amp, norm = 1.0, 0.0
        for k in range(octaves):
            grid = rng.uniform(-1.0, 1.0, (cy * 2**k + 1, cx * 2**k + 1)).astype(np.float32)
            total[f] += amp * (grid if grid.shape == fine else _interp(grid, *fine))
            norm += amp
            amp *= 0.5
        total[f] /= norm
    return _interp(total, height, width)


def _blur3(image: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of a (H, W) map, edges replicated."""
    padded = np.pad(image, 1, mode="edge")
    rows = padded[:-2] + 2.0 * padded[1:-1] + padded[2:]
    return (rows[:, :-2] + 2.0 * rows[:, 1:-1] + rows[:, 2:]) * (1.0 / 16.0)


def _building_shadow(layout: Layout, sun: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Whether world points (arrays of one shape) are shaded by the buildings of the facade on the sun's side."""
    if abs(sun[0]) < 0.05:
        return np.zeros(x.shape, bool)
    side = 0 if sun[0] < 0 else 1
    row = layout.buildings[side]
    if not row:
        return np.zeros(x.shape, bool)
    t = (layout.facades[side] - x) * (1.0 / sun[0])  # where the way to the sun crosses the facade plane
    z_hit = z + t * sun[2]
    y_hit = y + t * sun[1]
    z0s = np.array([b.z0 for b in row], z.dtype)
    idx = np.searchsorted(z0s, z_hit, side="right") - 1
    np.clip(idx, 0, len(row) - 1, out=idx)
    z1s = np.array([b.z1 for b in row], z.dtype)
    heights = np.array([b.height for b in row], z.dtype)
    return (t > 1e-3) & (z_hit >= z0s[idx]) & (z_hit < z1s[idx]) & (y_hit < heights[idx])


def _object_shadows(scene: Scene, sun: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """Ground shadows (H, W) bool of every object, from its bounding box swept along the sun direction."""
    cam = scene.layout.camera
    h, w = scene.labels.shape
    out = np.zeros((h, w), bool)
    boxes = scene.layout.element_boxes
    casters = ~np.isnan(boxes[:, 0]) & (boxes[:, 4] < 150.0)
    if not casters.any() or sun[1] <= 0.05:
        return out
    x0, x1, y0, y1, z0, z1 = boxes[casters].T
    # The shadow of a box is the hexagon swept by its footprint, shifted by the shadow of its bottom, towards the
    # shadow of its top: the 8 shifted corners less the two that fall inside, ordered by angle.
    kx, kz = -sun[0] / sun[1], -sun[2] / sun[1]  # ground offset per metre of height
    fx, fz = np.stack([x0, x1, x1, x0], 1), np.stack([z0, z0, z1, z1], 1)
    gx = np.concatenate([fx + (y0 * kx)[:, None], fx + (y1 * kx)[:, None]], 1)  # (N, 8)
    gz = np.concatenate([fz + (y0 * kz)[:, None], fz + (y1 * kz)[:, None]], 1)
    reach = fx * kx + fz * kz  # footprint corners along the sweep direction
    n = len(x0)
    keep = np.ones((n, 8), bool)
    keep[np.arange(n), reach.argmax(1)] = False
    keep[np.arange(n), 4 + reach.argmin(1)] = False
    gx, gz = gx[keep].reshape(n, 6), gz[keep].reshape(n, 6)
    order = np.argsort(np.arctan2(gz - gz.mean(1, keepdims=True), gx - gx.mean(1, keepdims=True)), 1)
    gx, gz = np.take_along_axis(gx, order, 1), np.take_along_axis(gz, order, 1)
    # Polygons are padded to 8 vertices by repeating the last one (a zero-length edge constrains nothing).
    gx, gz = np.concatenate([gx, gx[:, 5:], gx[:, 5:]], 1), np.concatenate([gz, gz[:, 5:], gz[:, 5:]], 1)
    front = gz.min(1) >= 1.0
    for k in np.flatnonzero(~front & (gz.max(1) > 1.0)).tolist():  # reaches behind the camera: clip on the ground
        clipped = _clip_near(list(zip(gx[k, :6].tolist(), gz[k, :6].tolist(), strict=True)), 1.0)
        if len(clipped) >= 3:
            clipped += clipped[-1:] * (8 - len(clipped))
            gx = np.concatenate([gx, [[p[0] for p in clipped]]])
            gz = np.concatenate([gz, [[p[1] for p in clipped]]])
            front = np.append(front, True)
    gx, gz = gx[front], gz[front]
    fu, fv = cam.scales(h, w)
    pu = (cam.vanish_x + fu * gx / gz) * w
    pv = (cam.horizon + fv * cam.height / gz) * h
    _fill_convex_many(out, pu, pv)
    out &= ground
    return out


def _fill_convex_many(out: np.ndarray, pu: np.ndarray, pv: np.ndarray) -> None:
    """Sets the pixels of ``out`` (H, W) whose centres lie in any of N convex polygons (N, K) given in pixel units.

    Vectorised over all polygons: every pixel of every clipped bounding box becomes one candidate, tested against the
    K edges of its polygon at once.
    """
    h, w = out.shape
    j0 = np.clip(np.ceil(pu.min(1) - 0.5), 0, w).astype(np.int64)
    j1 = np.clip(np.floor(pu.max(1) - 0.5) + 1, 0, w).astype(np.int64)
    i0 = np.clip(np.ceil(pv.min(1) - 0.5), 0, h).astype(np.int64)
    i1 = np.clip(np.floor(pv.max(1) - 0.5) + 1, 0, h).astype(np.int64)
    widths, heights = np.maximum(j1 - j0, 0), np.maximum(i1 - i0, 0)
    areas = widths * heights
    if areas.sum() == 0:
        return
    poly = np.repeat(np.arange(len(pu)), areas)  # polygon of each candidate pixel
    local = np.arange(len(poly)) - np.repeat(np.cumsum(areas) - areas, areas)
    rows = i0[poly] + local // widths[poly]
    cols = j0[poly] + local % widths[poly]
    # Edge k runs from vertex k to vertex k + 1; inside means on the same side of every edge as the polygon's area.
    eu, ev = np.roll(pu, -1, 1) - pu, np.roll(pv, -1, 1) - pv
    sign = np.sign((pu * np.roll(pv, -1, 1) - np.roll(pu, -1, 1) * pv).sum(1, keepdims=True))
    eu, ev = eu * sign, ev * sign
    offset = ev * pu - eu * pv
    y, x = rows[:, None] + 0.5, cols[:, None] + 0.5
    inside = ((eu[poly] * y + offset[poly]) >= ev[poly] * x).all(1)
    out[rows[inside], cols[inside]] = True


def _clip_near(poly: list[tuple[float, float]], z_min: float) -> list[tuple[float, float]]:
    """Clips a ground polygon of (x, z) points to z >= z_min (in front of the camera)."""
    out = []
    for k, (x0, z0) in enumerate(poly):
        x1, z1 = poly[(k + 1) % len(poly)]
        if z0 >= z_min:
            out.append((x0, z0))
        if (z0 >= z_min) != (z1 >= z_min):
            t = (z_min - z0) / (z1 - z0)
            out.append((x0 + t * (x1 - x0), z_min))
    return out


def render_photo(scene: Scene, seed: int | None = None) -> np.ndarray:
    """Photo-like rendering: textures, sun and cast shadows, sky with clouds, haze, blur and sensor noise.

    The appearance (colours of buildings, cars and clothes, sun position, weather, exposure, noise) is drawn from
    ``seed``, so one layout can be photographed many ways; the scene's own seed is used by default.

    Args:
        scene: A scene from :func:`make_scene`.
        seed: Appearance seed (non-negative int), or None for ``scene.seed``.

    Returns:
        uint8 (H, W, 3), RGB. Deterministic for a given scene and seed.
    """
    _check_scene(scene, "render_photo")
    seed = scene.seed if seed is None else _check_seed(seed, "render_photo")
    rng = np.random.default_rng([seed, 0x9F])
    layout, cam = scene.layout, scene.layout.camera
    h, w = scene.labels.shape
    fu, fv = cam.scales(h, w)
    ids = scene.surfaces
    label, element, part, normal = scene.surface_table.T

    # Appearance draws; those that do not depend on the resolution come first, so every resolution shares them.
    overcast = rng.random() < 0.25
    azimuth, elevation = rng.uniform(-math.pi, math.pi), rng.uniform(0.35, 1.05)
    sun = np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                    math.cos(elevation) * math.cos(azimuth)], np.float32)
    if overcast:
        ambient = np.array([0.85, 0.86, 0.9], np.float32) * rng.uniform(0.85, 1.0)
        sun_colour = np.array([0.2, 0.2, 0.2], np.float32)
        zenith, horizon = np.array([0.55, 0.58, 0.62], np.float32), np.array([0.78, 0.79, 0.8], np.float32)
    else:
        ambient = np.array([0.34, 0.37, 0.46], np.float32) * rng.uniform(0.85, 1.1)
        sun_colour = np.array([1.0, 0.95, 0.85], np.float32) * rng.uniform(0.85, 1.05)
        zenith, horizon = np.array([0.22, 0.42, 0.78], np.float32), np.array([0.72, 0.8, 0.9], np.float32)
    zenith = zenith * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    cloud_level = rng.uniform(-0.1, 0.45) - (0.4 if overcast else 0.0)
    haze_dist = rng.uniform(120.0, 500.0)
    gain = (rng.uniform(0.9, 1.15) * rng.uniform(0.96, 1.04, 3)).astype(np.float32)  # exposure and white balance
    blur = rng.uniform(0.05, 0.3)  # box blur radius, pixels
    noise = rng.uniform(0.015, 0.06)
    vignette = rng.uniform(0.05, 0.3)
    primary, secondary, skin = _element_colours(layout.element_classes, rng)
    sky_rows = min(h, math.ceil(cam.horizon * h) + 1)
    blotches, leaves, clouds = _noise(rng, h, w, ((6, 8, 3), (24, 32, 2), (3, 5, 3)))
    clouds = clouds[:sky_rows] + 0.25 * (1 - overcast) * leaves[:sky_rows]
    grain = rng.random((h, w), dtype=np.float32) - 0.5  # resolution-dependent draws from here on

    # Per-surface properties, looked up per pixel through the surface ids.
    base = np.where((element > 0)[:, None], primary[element], _PHOTO_CLASS[label])
    part_colour = np.where(_PART_SECONDARY[part][:, None], secondary[element], _PHOTO_PARTS[part])
    part_colour = np.where((part == _P_SKIN)[:, None], skin[element], part_colour)
    albedo = np.where((part > 0)[:, None], part_colour, base).astype(np.float32)
    lambert = np.clip(_NORMALS @ sun, 0.0, 1.0)
    lambert[_N_ROUND] = 0.35 + 0.65 * lambert[_N_ROUND]
    emissive = _PART_EMISSIVE[part]
    lit = (lambert[normal] * ~emissive).astype(np.float32)[ids]
    texture = 1.0 + _AMP_MID[label][ids] * blotches + (2.0 * _AMP_FINE[label])[ids] * grain

    veg = (label == _VEGETATION)[ids]
    texture[veg] *= 0.55 + 0.9 * np.clip(0.5 + leaves[veg], 0.0, 1.0)
    depth = scene.depth
    finite = depth < 0.9 * _BACKDROP_Z
    z = np.where(finite, depth, np.float32(0.0))
    u = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    v = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    # Bricks and paving joints where they are resolved (about 3 pixels per joint spacing).
    mpp = z / (fv * h)
    bricks = ((label == _BUILDING) & (part == _P_NONE) & (normal != _N_FRONT))[ids] & (mpp < 0.1) & finite
    rows, cols = np.nonzero(bricks)
    mortar = (cam.height - (v[rows, 0] - cam.horizon) * z[rows, cols] / fv) % 0.3 < 0.05  # courses 0.3 m high
    texture[rows[mortar], cols[mortar]] *= 0.8
    paving = ((label == _SIDEWALK) & (part == _P_NONE))[ids] & (mpp < 0.2)
    rows, cols = np.nonzero(paving)
    z_p = z[rows, cols]
    x_p = (u[0, cols] - cam.vanish_x) * z_p / fu
    joint = ((x_p % 0.6) < 0.05) | ((z_p % 0.6) < 0.05)
    texture[rows[joint], cols[joint]] *= 0.82

    # Sun and shadows: buildings shade everything, objects shade the ground, objects in a building's shade are dark.
    if not overcast:
        x = (u - cam.vanish_x) * z / fu
        y = cam.height - (v - cam.horizon) * z / fv
        shade = _building_shadow(layout, sun, x, y, z) & finite
        shade |= _object_shadows(scene, sun, _IS_GROUND[label][ids])
        boxes = layout.element_boxes
        base_x = np.nan_to_num((boxes[:, 0] + boxes[:, 1]) / 2).astype(np.float32)
        base_z = np.nan_to_num(boxes[:, 4]).astype(np.float32)
        in_shade = _building_shadow(layout, sun, base_x, np.full_like(base_x, 0.3), base_z)
        in_shade &= ~np.isnan(boxes[:, 0])
        shade |= in_shade[element][ids] & (element > 0)[ids]
        lit *= 1.0 - _blur3(shade.astype(np.float32))
    colour = albedo[ids]
    colour *= lit[..., None] * sun_colour + ambient
    colour *= texture[..., None]
    glow = (emissive * 1.1)[:, None] * albedo + (part == _P_WINDOW)[:, None] * (0.12 * horizon)
    special = (emissive | (part == _P_WINDOW))[ids]
    colour[special] += glow[ids[special]]

    # Sky: gradient from the horizon to the zenith, with clouds.
    sky = (label == _SKY)[ids[:sky_rows]]
    rows, cols = np.nonzero(sky)
    if len(rows):
        t = np.clip((cam.horizon - v[rows, 0]) / cam.horizon, 0.0, 1.0) ** 0.6
        c = clouds[rows, cols] - cloud_level
        cover = np.clip(c / 0.3, 0.0, 1.0)[:, None]
        cloud = (0.95 - 0.25 * np.clip(c, 0.0, 1.0))[:, None] * np.array([1.0, 1.0, 1.02], np.float32)
        colour[rows, cols] = (horizon + (zenith - horizon) * t[:, None]) * (1.0 - cover) + cloud * cover

    # Haze, exposure, vignetting, sensor noise, then a slight lens blur.
    fog = 1.0 - np.exp(-depth * np.float32(1.0 / haze_dist))
    fog[~np.isfinite(depth)] = 0.0
    colour += (horizon - colour) * fog[..., None]
    r2 = ((u - 0.5) ** 2 + (v - 0.5) ** 2) * 2.0
    colour *= (1.0 - vignette * r2)[..., None] * (255.0 * gain)
    sensor = rng.random((h, w, 3), dtype=np.float32)
    sensor += (0.5 * grain - 0.5)[..., None]
    colour += sensor * (255.0 * noise)
    image = Image.fromarray(np.clip(colour + 0.5, 0.0, 255.0).astype(np.uint8))
    return np.array(image.filter(ImageFilter.BoxBlur(blur)))


# --------------------------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------------------------

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
    """

    def __init__(
        self,
        *,
        length: int = 200,
        size: int | tuple[int, int] = 64,
        task: Literal["label2photo", "sim2photo"] = "label2photo",
        split: Literal["train", "val", "test"] = "train",
        seed: int = 0,
    ) -> None:
        _check_common("ToyPairedDataset", length, split, seed)
        if task not in ("label2photo", "sim2photo"):
            raise ValueError(f"ToyPairedDataset: task must be 'label2photo' or 'sim2photo'; got {task!r}.")
        self.length, self.size, self.task, self.split, self.seed = length, _check_size("ToyPairedDataset", size), \
            task, split, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyPairedDataset", index, self.length)
        scene = make_scene(_scene_seed(self.seed, self.split, index), *self.size)
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

    Args:
        length: Number of items.
        size: Image size, an int for squares or (H, W).
        domain_a: ``"sim"``, ``"photo"`` or ``"label"`` (Cityscapes-coloured label map).
        domain_b: Same choices as ``domain_a``.
        split: ``"train"``, ``"val"`` or ``"test"``; splits never share scenes.
        seed: Base seed; item ``i`` is a pure function of (seed, split, i).
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
    ) -> None:
        _check_common("ToyUnpairedDataset", length, split, seed)
        for name, value in (("domain_a", domain_a), ("domain_b", domain_b)):
            if value not in _DOMAINS:
                raise ValueError(f"ToyUnpairedDataset: {name} must be one of {_DOMAINS}; got {value!r}.")
        self.length, self.size, self.split, self.seed = length, _check_size("ToyUnpairedDataset", size), split, seed
        self.domain_a, self.domain_b = domain_a, domain_b

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyUnpairedDataset", index, self.length)
        scene_a = make_scene(_scene_seed(self.seed, self.split, index, 0), *self.size)
        scene_b = make_scene(_scene_seed(self.seed, self.split, index, 1), *self.size)
        return {
            "real_a": _image(_render(scene_a, self.domain_a)),
            "real_b": _image(_render(scene_b, self.domain_b)),
            "label_a": _train_ids(scene_a),
        }


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
    ) -> None:
        _check_common("ToyMaskedDataset", length, split, seed)
        _class_ids(classes)
        if attributes is not None and (isinstance(attributes, str) or not all(
                isinstance(a, str) and a.strip() for a in attributes)):
            raise ValueError(f"ToyMaskedDataset: attributes must be a list of non-empty names; got {attributes!r}.")
        self.length, self.size, self.split, self.seed = length, _check_size("ToyMaskedDataset", size), split, seed
        self.classes = (classes,) if isinstance(classes, str) else tuple(classes)
        self.attributes = None if attributes is None else tuple(attributes)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = _index("ToyMaskedDataset", index, self.length)
        scene_a = make_scene(_scene_seed(self.seed, self.split, index, 0), *self.size)
        scene_b = make_scene(_scene_seed(self.seed, self.split, index, 1), *self.size)
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
        from .imresize import imresize  # local: keeps the toy world importable on its own

        index = _index("ToySRDataset", index, self.length)
        scene = make_scene(_scene_seed(self.seed, self.split, index), self.hr_size, self.hr_size)
        hr = render_photo(scene)
        if self.channels == 1:
            hr = _gray_uint8(hr)
        lr = imresize(hr, 1 / self.scale)
        return {"real_a": _image(lr), "real_b": _image(hr)}
