"""Toy world scene description and layout generation, in world coordinates and independent of the resolution.

A pinhole camera looks down a straight street. The layout (camera height, focal length, horizon, vanishing point;
lanes, parking strips and road markings; sidewalks, grass strips, fences and walls; buildings of varying widths and
heights on both sides; trees; poles carrying traffic signs and lights; cars, trucks, buses and pedestrians) is drawn in
world coordinates from the seed alone. :mod:`zoo.data.toy_world.raster` then draws it at a given height and width.
Optional :class:`~zoo.data.toy_world.SceneStatistics` change how much of some classes a layout draws (more or less
vegetation); the default statistics leave every draw, and so every scene, as it is.

This module also defines the codes (parts, orientations, primitive kinds and shapes) that the rasteriser stores per
surface and the renderers read, and the :class:`Scene` a layout becomes once rasterised.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .labels import _BUILDING, _BUS, _CAR, _FENCE, _LIGHT, _PERSON, _POLE, _SIGN, _TRUCK, _VEGETATION, _WALL
from .statistics import SceneStatistics

__all__ = ["Camera", "Layout", "Scene"]

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


def _check_scene(scene: Scene, what: str) -> None:
    if not isinstance(scene, Scene):
        raise TypeError(f"{what}: expected a Scene from make_scene; got {type(scene).__name__}.")


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


def _add_tree(b: _Builder, rng: random.Random, x: float, z: float, *, small: bool = False, scale: float = 1.0
              ) -> None:
    """Adds a tree (or, ``small``, a bush) at lateral position x, its crown starting at depth z.

    ``scale`` multiplies the size of the crown (and the height of the trunk); 1 leaves every draw as it is.
    """
    el = b.element(_VEGETATION)
    if small:  # a bush
        r = rng.uniform(0.5, 1.1)
        if scale != 1.0:
            r *= scale
        b.add(_SPHERE, (x, 0.7 * r, z + r, r), el)
        return
    trunk_h, trunk_w = rng.uniform(1.8, 3.5), rng.uniform(0.22, 0.4)
    r = rng.uniform(1.5, 3.0)
    if scale != 1.0:
        trunk_h, r = trunk_h * scale, r * scale
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


def _scaled(probability: float, factor: float) -> float:
    """``probability`` times ``factor``, capped at 1; exactly ``probability`` for a factor of 1."""
    return probability if factor == 1.0 else min(1.0, probability * factor)


def _make_layout(seed: int, statistics: SceneStatistics | None = None) -> Layout:
    """Draws the world geometry of one scene from ``seed`` alone (and ``statistics``, None: the default ones).

    With default statistics every random draw is the one of the original toy world, so layouts are unchanged.
    """
    # A string seed is hashed (SHA-512) by `random`; integer seeds that differ by multiples of 2**32 could collide.
    rng = random.Random(f"zoo.toy_world:{seed}")
    green = 1.0 if statistics is None else statistics.vegetation  # SceneStatistics.vegetation
    crown = min(2.0, math.sqrt(green)) if green > 1.0 else 1.0  # lush worlds grow bigger trees and wooded skylines
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
    p_grass = _scaled(0.4, green)
    grass = (rng.uniform(1.0, 4.0) if rng.random() < p_grass else 0.0,
             rng.uniform(1.0, 4.0) if rng.random() < p_grass else 0.0)
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
    skyline_buildings = 0.7 if green == 1.0 else 1.0 - _scaled(0.3, green)  # share of buildings on the skyline
    while x < 1000.0:
        width = rng.uniform(8.0, 36.0)
        label = _BUILDING if rng.random() < skyline_buildings else _VEGETATION
        height = rng.uniform(8.0, 45.0) if label == _BUILDING else rng.uniform(6.0, 16.0) * crown
        skyline.append(_Skyline(x, x + width, height, label, b.element(label)))
        x += width

    # Buildings along both facades; one side may be a park (no buildings, more trees).
    park = rng.randrange(0, 2) if rng.random() < _scaled(0.15, green) else -1
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
    p_row = _scaled(0.7, green)
    want_trees = [rng.random() < p_row, rng.random() < p_row]
    if not any(want_trees) and green >= 1.0:  # sparse statistics may leave both sides without a row
        want_trees[rng.randrange(0, 2)] = True
    for side in range(2):
        sign = -1.0 if side == 0 else 1.0
        if side == park:
            for z in _spaced(rng, 14 if green == 1.0 else max(1, round(14 * green)), 3.0, 90.0, 4.0):
                x = sidewalk_out[side] + sign * rng.uniform(2.5, 15.0)
                _add_tree(b, rng, x, z, scale=crown)
            continue
        if want_trees[side]:
            x = sidewalk_out[side] + sign * (grass[side] / 2 if grass[side] > 0 else -0.7)
            z = _min_visible_z(x, cam, 0.0) + rng.uniform(-4.0, 6.0)
            spacing = rng.uniform(7.0, 16.0) / green
            while z < 100.0:
                _add_tree(b, rng, x + rng.uniform(-0.2, 0.2), z, scale=crown)
                z += spacing * rng.uniform(0.8, 1.2)
        if grass[side] > 0:
            bushes = 5 if green == 1.0 else max(1, round(5 * green))
            for z in _spaced(rng, rng.randrange(0, bushes), 4.0, 60.0, 3.0):
                _add_tree(b, rng, sidewalk_out[side] + sign * rng.uniform(0.5, grass[side]), z, small=True, scale=crown)
        # Trees seen through gaps between buildings.
        row = buildings[side]
        for prev, nxt in itertools.pairwise(row):
            if nxt.z0 - prev.z1 > 4.0 and rng.random() < _scaled(0.7, green):
                x = facades[side] + sign * rng.uniform(2.0, 6.0)
                _add_tree(b, rng, x, rng.uniform(prev.z1, nxt.z0 - 2.0), scale=crown)

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
