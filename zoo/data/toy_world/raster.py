"""Rasteriser of the toy world: draws a layout at a requested height and width with a z-buffer.

Sizes follow the perspective, occlusions are exact, and one seed gives the same street at every resolution (stretched
with the aspect ratio; details too small to see are left out). Every placed object (vehicle, person, pole, traffic
sign, traffic light) is an instance (:func:`instance_mask`, :func:`instance_masks`, :func:`frame_boxes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .labels import (
    _BUILDING,
    _INSTANCE_CLASSES,
    _POLE,
    _ROAD,
    _SIDEWALK,
    _SKY,
    _TERRAIN,
    CITYSCAPES_CLASSES,
    _class_ids,
)
from .layout import (
    _BACKDROP_Z,
    _BOX,
    _DIAMOND,
    _DISC,
    _FAR,
    _FLAT,
    _N_DOWN,
    _N_FRONT,
    _N_NEG_X,
    _N_NONE,
    _N_POS_X,
    _N_ROUND,
    _N_UP,
    _P_KERB,
    _P_LANE,
    _P_NONE,
    _P_WINDOW,
    _RECT,
    _SPHERE,
    _TRIANGLE,
    _TRIANGLE_DOWN,
    _Z_NEAR,
    Layout,
    Scene,
    _make_layout,
    _Prim,
)
from .statistics import SceneStatistics

__all__ = ["frame_boxes", "instance_mask", "instance_masks", "make_scene", "rasterise_layout"]


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


def make_scene(seed: int, height: int, width: int, *, statistics: SceneStatistics | None = None) -> Scene:
    """Draws the street scene of ``seed`` at a resolution of ``height`` x ``width`` pixels.

    The layout depends on ``seed`` (and ``statistics``) only; the resolution only changes how finely it is rasterised
    (road markings, windows and other details too small to be seen are left out at low resolution).

    Args:
        seed: Non-negative integer; equal seeds give identical scenes.
        height: Rows, at least 4.
        width: Columns, at least 4.
        statistics: Class statistics of the layout (:class:`~zoo.data.toy_world.SceneStatistics`, e.g. more
            vegetation); None or ``SceneStatistics()`` draws the default scene of ``seed``, bit for bit.

    Returns:
        The scene: ``labels`` (H, W) uint8 Cityscapes ids, ``instances`` (H, W) int32, ``instance_classes`` and the
        maps the renderers need.
    """
    seed = _check_seed(seed, "make_scene")
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 4:
            raise ValueError(f"make_scene: {name} must be an int >= 4; got {value!r}.")
    if statistics is not None and not isinstance(statistics, SceneStatistics):
        raise TypeError(f"make_scene: statistics must be a SceneStatistics or None; got {type(statistics).__name__}.")
    return rasterise_layout(_make_layout(seed, statistics), seed, int(height), int(width))


def rasterise_layout(layout: Layout, seed: int, height: int, width: int) -> Scene:
    """The scene of a given layout at ``height`` x ``width`` (what :func:`make_scene` does once it has the layout of
    ``seed``; for layouts changed afterwards, e.g. a camera moved along the street)."""
    raster = _Raster(layout, height, width)
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


_NAMES = {c.id: c.name for c in CITYSCAPES_CLASSES}


def frame_boxes(scene: Scene) -> list[dict[str, object]]:
    """Pixel bounding boxes of the visible object instances (vehicles, people, poles, signs, traffic lights).

    Returns:
        One dict per instance, in instance order: ``label`` (Cityscapes name), ``instance`` (id in
        ``scene.instances``) and ``bbox`` ``[x0, y0, x1, y1]``: column and row of the first pixel and one past the
        last, so the instance's pixels are ``instances[y0:y1, x0:x1] == instance``'s subset.
    """
    boxes: list[dict[str, object]] = []
    for instance, label in sorted(scene.instance_classes.items()):
        rows, cols = np.nonzero(scene.instances == instance)
        if rows.size == 0:
            continue
        boxes.append({"label": _NAMES[label], "instance": int(instance),
                      "bbox": [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]})
    return boxes
