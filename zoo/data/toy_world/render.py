"""Two renderings of one toy world scene: a flat simulator frame and a photo-like image.

:func:`render_sim` gives flat colours per class and per object, flat shading per face orientation, hard edges and no
noise, like a simple game engine. :func:`render_photo` adds textures (asphalt, paving, bricks, leaves, a sky with
clouds), a sun with cast shadows, haze, vignetting, sensor noise and a slight blur, as a stand-in for camera images.
The gap between the two is the domain gap that translation methods learn to close.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from .labels import (
    _BUILDING,
    _BUS,
    _CAR,
    _FENCE,
    _GROUND_CLASSES,
    _LIGHT,
    _NUM_IDS,
    _PERSON,
    _POLE,
    _ROAD,
    _SIDEWALK,
    _SIGN,
    _SKY,
    _TERRAIN,
    _TRUCK,
    _VEGETATION,
    _WALL,
)
from .layout import (
    _BACKDROP_Z,
    _N_FRONT,
    _N_ROUND,
    _NUM_PARTS,
    _P_HEAD,
    _P_KERB,
    _P_LAMP,
    _P_LAMP_ON,
    _P_LANE,
    _P_NONE,
    _P_PANTS,
    _P_SKIN,
    _P_TAIL,
    _P_TRUNK,
    _P_WHEEL,
    _P_WINDOW,
    Layout,
    Scene,
    _check_scene,
)
from .raster import _check_seed

__all__ = ["render_photo", "render_sim"]


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
