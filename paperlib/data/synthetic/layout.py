"""One clip's scene: a straight street with lots, cross streets, furniture, traffic and a camera path.

World frame: X right, Y up, Z along the street (metres); the ground is Y = 0 and the camera starts
at Z = 0. Surfaces (all planar, see ``render.py`` for the ray casting):

- the ground, textured by a top-down map (rows = Z every ``SZ`` m, cols = X every ``SX`` m);
- per side a *front* facade plane X = +-front (buildings, walls, see-through fences, hedges;
  gaps at parks and cross streets) and a *back* plane X = +-back (taller buildings or trees);
- an end wall Z = z_end closing the street;
- billboards (``sprites.py``) at constant Z facing the camera axis, moving linearly in X or Z.

Everything is drawn from ``rng``, so a clip is a pure function of (domain, seed, index).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .classes import F
from .domains import Domain
from .assets import GROUND_MATS, SX, SZ, TEXEL, Template
from .sprites import Sprite
from .textures import RipMap

SID_SKY, SID_GROUND, SID_END, SID_HOOD = 0, 1, 2, 7
SID_PLANES = {("back", -1): 3, ("back", 1): 4, ("front", -1): 5, ("front", 1): 6}
SID_OBJECTS = 16         # sprite k has surface id 16 + k
PARK_W = 2.2             # parking lane width


@dataclass
class Plane:
    """Textured vertical plane ``X = pos`` (axis 'x') or ``Z = pos`` (axis 'z').

    Texel column j covers horizontal coordinate h0 + [j, j+1) * texel (Z for axis 'x', X for
    axis 'z'); texel row i covers Y = ytop - [i, i+1) * texel."""

    axis: str
    pos: float
    h0: float
    ytop: float
    texel: float
    rip: RipMap
    label: np.ndarray
    sid: int
    col_top: np.ndarray = None   # per texel column: Y of its highest opaque texel (0 if none)
    col_solid: np.ndarray = None  # per texel column: opaque from that texel down to the ground

    def __post_init__(self):
        occ = self.label != 255
        nr = self.label.shape[0]
        first = np.where(occ.any(0), occ.argmax(0), nr)
        self.col_top = (self.ytop - first * self.texel).astype(np.float64)
        self.col_solid = (occ.sum(0) == nr - first) & (first < nr)


@dataclass
class Obj:
    """A billboard at (x, z) at frame 0 moving (vx, vz) metres per frame."""

    sprite: Sprite
    x: float
    z: float
    vx: float = 0.0
    vz: float = 0.0
    sid: int = 0
    inst: int = 0     # 1-based instance id for thing classes, 0 otherwise

    def at(self, t: int) -> tuple[float, float]:
        return self.x + self.vx * t, self.z + self.vz * t


@dataclass
class Camera:
    """Per-frame camera poses: position (x, z), yaw (radians, + turns right), fixed height."""

    x: np.ndarray
    z: np.ndarray
    yaw: np.ndarray
    height: float


@dataclass
class Scene:
    ground: RipMap
    ground_label: np.ndarray
    gx0: float           # X of the ground map's left edge
    gz0: float           # Z of the ground map's first row edge
    planes: list[Plane]
    objects: list[Obj]
    sky: np.ndarray      # (rows = tan(elevation), cols = azimuth) RGBA
    sky_max_tan: float
    camera: Camera
    fog_distance: float
    fog_color: tuple
    z_end: float
    atlas: object = None   # the sprite library's SpriteAtlas
    info: dict = field(default_factory=dict)
    parts: dict | None = None  # flat table of all billboard parts (built by the renderer)


# --- street geometry ----------------------------------------------------------------------------
@dataclass
class Side:
    s: int               # -1 left, +1 right
    road: float          # |X| of the road edge (curb starts)
    verge: float         # grass strip width after the curb
    walk: float          # |X| where the sidewalk ends
    front: float         # |X| of the front plane
    back: float          # |X| of the back plane
    parking: bool
    lots: list = field(default_factory=list)   # (z0, z1, type, height)


def _lot_type(dom: Domain, rng) -> str:
    kinds = [k for k in dom.lots if k != "cross"]
    p = np.array([dom.lots[k] for k in kinds], float)
    return kinds[rng.choice(len(kinds), p=p / p.sum())]


def make_profile(dom: Domain, rng):
    """Cross-section of the street: lanes, lane width and both sides' X extents."""
    lanes = int(rng.integers(dom.lanes[0], dom.lanes[1] + 1))
    lane_w = rng.uniform(*dom.lane_width)
    sides = []
    for s in (-1, 1):
        parking = rng.random() < dom.parking_lane
        road = lanes * lane_w + (PARK_W if parking else 0.3)
        verge = rng.uniform(1.0, 2.5) if rng.random() < dom.verge else 0.0
        walk = road + 0.25 + verge + rng.uniform(*dom.sidewalk_width)
        front = walk + rng.uniform(*dom.setback) + 0.01
        back = front + rng.uniform(*dom.back_distance)
        sides.append(Side(s, road, verge, walk, front, back, parking))
    return sides, lanes, lane_w


def make_lots(dom: Domain, rng, sides, z0: float, z_end: float) -> list[tuple[float, float]]:
    """Cross streets (same Z on both sides) and the lots between them; returns the cross streets."""
    cross = []
    z = z0 + rng.uniform(15, 60)
    rate = dom.lots.get("cross", 0.05) * 8.0 / 100.0
    while z < z_end - 20:
        if rng.random() < rate * 20:
            w = rng.uniform(8, 13)
            cross.append((z, z + w))
            z += w + rng.uniform(25, 50)
        else:
            z += 20
    for side in sides:
        z = z0
        for za, zb in cross + [(z_end, z_end)]:
            while z < za - 1e-6:
                L = min(rng.uniform(8, 30), za - z)
                if za - (z + L) < 5:
                    L = za - z
                kind = _lot_type(dom, rng)
                h = rng.uniform(*dom.building_height)
                if kind == "glass_building":
                    h *= rng.uniform(1.3, 1.8)
                side.lots.append((z, z + L, kind, h))
                z += L
            if zb > za:
                side.lots.append((za, zb, "cross", 0.0))
            z = zb
    return cross


# --- ground map ---------------------------------------------------------------------------------
class GroundPainter:
    """Top-down ground map: fine ids + colour, rows = Z every SZ m, cols = X every SX m.

    Built from rectangles: the street's cross-section (constant along Z) is gathered for one tile
    period and repeated; lots, cross streets and markings are rectangle fills from the tiles."""

    def __init__(self, tiles: np.ndarray, xg: float, z0: float, z_end: float):
        self.tiles, self.T = tiles, tiles.shape[1]
        self.xg, self.z0 = xg, z0
        self.nx, self.nz = int(round(2 * xg / SX)), int(math.ceil((z_end - z0) / SZ))
        self.X = -xg + (np.arange(self.nx) + 0.5) * SX
        self.lut = np.zeros(256, np.int32)
        self.lut[[F[m] for m in GROUND_MATS]] = np.arange(len(GROUND_MATS))

    def base(self, prof: np.ndarray):
        T, nz = self.T, self.nz
        self.mat = np.repeat(prof[None, :], nz, axis=0)
        rows = self.tiles[self.lut[prof][None, :], np.arange(T)[:, None], (np.arange(self.nx) % T)[None, :]]
        self.color = np.empty((nz, self.nx, 3), np.uint8)
        for r in range(0, nz, T):
            self.color[r:r + T] = rows[: nz - r]

    def rows(self, za, zb):
        return max(0, int((za - self.z0) / SZ)), max(0, min(self.nz, int((zb - self.z0) / SZ)))

    def cols(self, xa, xb):
        return (max(0, int(math.ceil((xa + self.xg) / SX - 0.5))),
                max(0, min(self.nx, int(math.ceil((xb + self.xg) / SX - 0.5)))))

    def fill(self, za, zb, xa, xb, fine: int):
        (r0, r1), (c0, c1) = self.rows(za, zb), self.cols(xa, xb)
        if r1 <= r0 or c1 <= c0:
            return
        T = self.T
        self.mat[r0:r1, c0:c1] = fine
        tile = self.tiles[self.lut[fine]]
        self.color[r0:r1, c0:c1] = tile[np.ix_(np.arange(r0, r1) % T, np.arange(c0, c1) % T)]

    def side_fill(self, sd: "Side", za, zb, xa, xb, fine: int):
        """Fill |X| in [xa, xb) on side ``sd``."""
        if sd.s > 0:
            self.fill(za, zb, xa, xb, fine)
        else:
            self.fill(za, zb, -xb, -xa, fine)


def ground_map(tiles, rng, sides, cross, lanes, lane_w, z0, z_end, dom: Domain):
    """Paint the street's ground; returns (RipMap of colours, fine-id map, x0, z0)."""
    xg = max(sd.back for sd in sides) + 1.0
    g = GroundPainter(tiles, xg, z0, z_end)
    X, ax = g.X, np.abs(g.X)
    prof = np.full(g.nx, F["gravel"], np.uint8)
    for sd in sides:
        m = np.sign(X) == sd.s
        prof[m & (ax < sd.front)] = F["sidewalk"]
        prof[m & (ax < sd.road + 0.25 + sd.verge)] = F["grass"]
        prof[m & (ax < sd.road + 0.25)] = F["curb"]
        prof[m & (ax < sd.road)] = F["road"]
    g.base(prof)
    for sd in sides:
        for za, zb, kind, _ in sd.lots:
            if kind in ("park", "hedge") or (kind == "fence" and rng.random() < 0.5):
                g.side_fill(sd, za, zb, sd.walk, sd.front, F["grass"])
            elif sd.walk < sd.front - 0.5 and dom.verge > 0.5:
                g.side_fill(sd, za, zb, sd.walk, sd.front, F["grass"])
            if kind == "park":
                g.side_fill(sd, za, zb, sd.front, sd.back + 1.0, F["grass"] if rng.random() < 0.7 else F["gravel"])
    # lane markings: dashed centre line and lane dividers, solid edge lines
    z_end_ = z0 + g.nz * SZ
    for xl in [0.0] + [s * k * lane_w for s in (-1, 1) for k in range(1, lanes)]:
        for zd in np.arange(z0 - (z0 % 9.0), z_end_, 9.0):
            g.fill(zd, zd + 3.0, xl - 0.07, xl + 0.07, F["lane_marking"])
    for sd in sides:
        xe = lanes * lane_w + 0.12
        g.side_fill(sd, z0, z_end_, xe - 0.06, xe + 0.06, F["lane_marking"])
    # cross streets: road across; zebra crossing and stop line before each
    road_w = min(sd.road for sd in sides)
    for za, zb in cross:
        for sd in sides:
            g.side_fill(sd, za, zb, sd.road, xg, F["road"])
        for xs in np.arange(-math.floor(road_w) - 0.25, road_w - 0.5, 1.0):
            g.fill(za - 4.5, za - 1.5, max(xs, -road_w), min(xs + 0.5, road_w), F["crosswalk"])
        g.fill(za - 6.0, za - 5.6, 0.0, road_w, F["lane_marking"])
    return RipMap(g.color), g.mat, -xg, z0


# --- facades: lots cut out of the world's templates ------------------------------------------------
class StripComposer:
    """One plane's texture: rows = Y (top down, TEXEL m), cols = horizontal position (TEXEL m)."""

    def __init__(self, length: float, h0: float, ytop: float):
        self.h0, self.ytop = h0, ytop
        self.nr, self.nc = int(math.ceil(ytop / TEXEL)), int(math.ceil(length / TEXEL))
        self.rgb = np.zeros((self.nr, self.nc, 3), np.uint8)
        self.label = np.full((self.nr, self.nc), 255, np.uint8)

    def cols(self, a, b):
        return max(0, int((a - self.h0) / TEXEL)), min(self.nc, int(math.ceil((b - self.h0) / TEXEL)))

    def paste(self, tpl: Template, a: float, b: float, h: float, rng, cornice: bool = False):
        """Cut a lot [a, b) of height ``h`` out of ``tpl`` (random horizontal offset)."""
        c0, c1 = self.cols(a, b)
        n = c1 - c0
        th, tw = tpl.label.shape
        k = min(int(round(h / TEXEL)), th, self.nr)
        if n <= 0 or k <= 0:
            return
        tr = slice(th - k, th) if tpl.anchor == "bottom" else slice(0, k)
        r0 = self.nr - k
        off, c = int(rng.integers(tw)), c0
        while c < c1:  # copy template columns off.., wrapping around its width
            m = min(c1 - c, tw - off)
            self.rgb[r0:, c:c + m] = tpl.rgb[tr, off:off + m]
            self.label[r0:, c:c + m] = tpl.label[tr, off:off + m]
            c, off = c + m, 0
        pad = min(r0, 3)  # colour above the top edge, so bilinear sampling there stays in-lot
        self.rgb[r0 - pad:r0, c0:c1] = self.rgb[r0, c0:c1][None]
        if cornice:
            self.rgb[r0:r0 + 4, c0:c1] = (self.rgb[r0:r0 + 4, c0:c1] * 0.75).astype(np.uint8)

    def finish(self, sid, axis, pos, gain) -> Plane:
        rgb = self.rgb if gain == 1.0 else cv2.convertScaleAbs(self.rgb, alpha=gain)
        return Plane(axis, pos, self.h0, self.ytop, TEXEL, RipMap(rgb), self.label, sid)


def facade_planes(dom: Domain, assets, rng, sides, z0, z_end, xg) -> list[Plane]:
    """End wall, back planes, front planes (drawn in this order: far to near)."""
    tpl = assets.templates

    def pick(kind):
        v = tpl[kind]
        return v[rng.integers(len(v))]

    def backdrop(comp, a, b):
        x = a
        while x < b:
            w = min(rng.uniform(12, 40), b - x)
            if rng.random() < dom.back_trees:
                comp.paste(pick("trees"), x, x + w, 16.0, rng)
            else:
                comp.paste(pick("building"), x, x + w, rng.uniform(*dom.building_height) * 1.4, rng, True)
            x += w

    hmax = min(40.0, dom.building_height[1] * 1.4 + 2.0)
    planes = []
    end = StripComposer(2 * xg, -xg, max(hmax, 16.0))
    backdrop(end, -xg, xg)
    planes.append(end.finish(SID_END, "z", z_end, (1 + dom.shade) / 2))
    for sd in sides:
        back = StripComposer(z_end - z0, z0, max(hmax, 16.0))
        backdrop(back, z0, z_end)
        planes.append(back.finish(SID_PLANES[("back", sd.s)], "x", sd.s * sd.back,
                                  0.95 * (1.0 if sd.s > 0 else dom.shade)))
    for sd in sides:
        top = min(40.0, max([h for *_, h in sd.lots] + [3.0]) + 0.5)
        front = StripComposer(z_end - z0, z0, top)
        for a, b, kind, h in sd.lots:
            if kind in ("building", "glass_building"):
                front.paste(pick(kind), a, b, h, rng, cornice=kind == "building")
            elif kind in ("wall", "fence", "hedge"):
                front.paste(pick(kind), a, b, rng.uniform(*{"wall": (1.2, 3.0), "fence": (1.1, 2.0),
                                                              "hedge": (0.9, 1.8)}[kind]), rng)
        planes.append(front.finish(SID_PLANES[("front", sd.s)], "x", sd.s * sd.front,
                                   1.0 if sd.s > 0 else dom.shade))
    return planes


# --- camera ---------------------------------------------------------------------------------------
def camera_path(dom: Domain, rng, length: int, fps: float, x0: float, road: float) -> Camera:
    """Forward ego-motion with speed changes and a yaw oscillation (weaving / looking into turns);
    the position integrates the heading, so the motion is that of a car, not a sliding camera."""
    slow = rng.random() < 0.12
    v = rng.uniform(0.3, 2.5) if slow else rng.uniform(*dom.speed)
    acc = rng.uniform(-1.2, 1.2)
    amp = math.radians(rng.uniform(0.3, 1.0) * dom.yaw_amplitude)
    if rng.random() < 0.2:
        amp *= 1.8  # a stronger turn
    period = rng.uniform(2.5, 7.0)
    phase = rng.uniform(0, 2 * math.pi)
    dt = 1.0 / fps
    t = np.arange(length) * dt
    yaw = amp * np.sin(2 * math.pi * t / period + phase)
    xs, zs = np.empty(length), np.empty(length)
    x, z = x0, 0.0
    for i in range(length):
        xs[i], zs[i] = x, z
        sp = max(0.0, v + acc * t[i])
        x = float(np.clip(x + sp * math.sin(yaw[i]) * dt, -road + 1.5, road - 1.5))
        z += sp * math.cos(yaw[i]) * dt
    return Camera(xs, zs, yaw, dom.camera_height)
