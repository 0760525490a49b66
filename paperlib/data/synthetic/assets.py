"""A world's reusable textures, built once per (domain, seed) and cached.

- ground tiles: one periodic tile per ground material (asphalt, paving, curb, grass, ...);
- facade templates: building fronts (plaster + window grid + shop floor, or glass curtain walls),
  walls, see-through fences, hedges and rows of trees, each a wide RGB texture with per-texel
  fine labels; clips cut their lots out of these (``layout.py``), so a clip costs copies only;
- a sky texture over (elevation, azimuth).

Template texels are ``TEXEL`` = 0.1 m. Colour is written everywhere in a template (also where
the label is transparent), so bilinear sampling at a silhouette never mixes in a foreign colour.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .classes import F
from .domains import Domain, get_domain
from .textures import GROUND_TILE, fractal_noise, ground_tiles, periodic_noise, soften, texture_lum

TEXEL = 0.10           # facade template texel (m)
SZ, SX = 0.10, 0.05    # ground map texel along Z and X (m)
TPL_W = 320            # template width in texels (32 m)
GROUND_MATS = ("road", "lane_marking", "crosswalk", "sidewalk", "curb", "grass", "gravel")
_TILE_OF = {"road": "road", "lane_marking": "marking", "crosswalk": "marking",
            "sidewalk": "sidewalk", "curb": "curb", "grass": "grass", "gravel": "gravel"}
SKY_MAX_TAN = 0.85     # the sky texture covers tan(elevation) in [0, SKY_MAX_TAN]


@dataclass
class Template:
    rgb: np.ndarray     # (h, w, 3) uint8; row 0 is the top
    label: np.ndarray   # (h, w) uint8 fine ids, 255 transparent
    anchor: str         # "bottom": crop a lot of height h from the bottom; "top": from the top

    def __post_init__(self):
        self.rgb = soften(self.rgb, 0.7, wrap=(False, True))


@dataclass
class WorldAssets:
    ground_tiles: np.ndarray           # (M, T, T, 3), M = len(GROUND_MATS)
    templates: dict[str, list[Template]]
    sky: np.ndarray                    # (rows = elevation, cols = azimuth, 3)


def _color(base, lum, dom: Domain) -> np.ndarray:
    light = np.asarray(dom.light, np.float32)
    return np.clip(lum[..., None] * (np.asarray(base, np.float32) * light), 0, 255).astype(np.uint8)


def _grid(h_m: float, w: int = TPL_W):
    nr = int(round(h_m / TEXEL))
    Y = (nr - np.arange(nr) - 0.5)[:, None] * TEXEL       # height above ground of each row
    Z = (np.arange(w) + 0.5)[None, :] * TEXEL              # metres along the facade
    return nr, Y, Z


def building_template(dom: Domain, rng, glass: bool = False, height: float = 40.0) -> Template:
    """Plaster front with a window grid and a glazed shop floor, or a glass curtain wall."""
    nr, Y, Z = _grid(height)
    lum = texture_lum(rng, (nr, TPL_W), dom, 0.07, (1.0, 5.0, 20.0), (0.5, 0.4, 0.4))
    if glass:
        col_w, flo = rng.uniform(1.2, 2.0), rng.uniform(3.4, 4.0)
        frame = ((Z % col_w) < 0.12) | ((Y % flo) < 0.2) | (Y < 0.25)
        refl = 0.85 + 0.3 * ((Y % flo) / flo)
        rgb = np.where(frame[..., None], _color((190, 192, 196), lum, dom), _color(dom.glass, refl * lum, dom))
        return Template(rgb, np.full((nr, TPL_W), F["glass_building"], np.uint8), "bottom")
    base = dom.buildings[rng.integers(len(dom.buildings))]
    flo, gf = rng.uniform(3.0, 3.6), rng.uniform(3.5, 4.5)
    ww, wh, sp = rng.uniform(0.9, 1.4), rng.uniform(1.3, 1.7), rng.uniform(2.3, 3.4)
    win = (((Z - 0.5) % sp) < ww) & ((((Y - gf) % flo) - 0.9) % flo < wh) & (Y > gf)
    shop_w = rng.uniform(2.0, 4.0)
    shop = (Y > 0.5) & (Y < gf - 0.7) & (((Z - 0.8) % (shop_w + 1.2)) < shop_w)
    ledge = ((Y - gf) % flo < 0.15) & (Y > gf)
    lum = lum * np.where(ledge | (Y < 0.45), 0.8, 1.0)
    win_lum = (0.7 + 0.5 * (((Y - gf) % flo) / flo)) * lum
    rgb = np.where((win | shop)[..., None], _color(dom.glass, win_lum, dom), _color(base, lum, dom))
    return Template(rgb, np.full((nr, TPL_W), F["building"], np.uint8), "bottom")


def wall_template(dom: Domain, rng) -> Template:
    nr, Y, Z = _grid(3.2)
    lum = texture_lum(rng, (nr, TPL_W), dom, 0.08) * np.where((Z % 2.5) < 0.1, 0.8, 1.0)
    lum = lum * np.where(Y > 3.05, 1.12, 1.0)
    return Template(_color(dom.wall, lum, dom), np.full((nr, TPL_W), F["wall"], np.uint8), "top")


def fence_template(dom: Domain, rng) -> Template:
    """Vertical bars every 0.3 m with posts and rails; the gaps are transparent."""
    nr, Y, Z = _grid(2.2)
    solid = ((Z % 0.3) < 0.1) | ((Z % 2.5) < 0.2) | (Y > 2.1) | ((Y > 1.0) & (Y < 1.1)) | (Y < 0.2)
    lum = texture_lum(rng, (nr, TPL_W), dom, 0.06)
    return Template(_color(dom.fence, lum, dom), np.where(solid, F["fence"], 255).astype(np.uint8), "top")


def hedge_template(dom: Domain, rng) -> Template:
    nr, Y, Z = _grid(2.2)
    top = 2.0 + 0.12 * periodic_noise(rng, (1, TPL_W), (1, 6))[0]
    lum = texture_lum(rng, (nr, TPL_W), dom, 0.22, (0.8, 3.0, 12.0), (0.7, 0.5, 0.3))
    return Template(_color(dom.hedge, lum, dom),
                    np.where(Y < top[None, :], F["hedge"], 255).astype(np.uint8), "top")


def trees_template(dom: Domain, rng, height: float = 16.0) -> Template:
    """A row of canopies on trunks over a dense undergrowth (opaque up to 2.5 m)."""
    nr, Y, Z = _grid(height)
    px = 1.0 / TEXEL
    mask = np.zeros((nr, TPL_W), np.uint8)
    trunks = np.zeros((nr, TPL_W), np.uint8)
    z = rng.uniform(0, 2)
    while z < TPL_W * TEXEL:
        top = rng.uniform(0.55, 1.0) * (height - 1.0)
        r = rng.uniform(2.0, 4.0)
        cz = int(z * px)
        for dz in (0, TPL_W):  # draw wrapped copies so the template tiles horizontally
            cv2.rectangle(trunks, (cz - dz - 2, nr - int((top - r) * px)), (cz - dz + 2, nr), 1, -1)
            for _ in range(4):
                cv2.circle(mask, (cz - dz + int(rng.uniform(-0.6, 0.6) * r * px),
                                  nr - int((top - r * rng.uniform(0.7, 1.3)) * px)),
                           int(r * rng.uniform(0.6, 0.9) * px), 1, -1)
        z += rng.uniform(3, 7)
    under = Y < (2.5 + 0.15 * periodic_noise(rng, (1, TPL_W), (1, 6))[0])[None, :]
    leafy = texture_lum(rng, (nr, TPL_W), dom, 0.22, (0.8, 3.0, 12.0), (0.7, 0.5, 0.3))
    rgb = np.where(trunks[..., None] > 0, _color((84, 66, 50), leafy * 0.9, dom), _color(dom.tree, leafy, dom))
    rgb = np.where(under[..., None], _color(dom.hedge, leafy, dom), rgb)
    label = np.full((nr, TPL_W), 255, np.uint8)
    label[(mask > 0) | (trunks > 0)] = F["tree"]
    label[under] = F["hedge"]
    return Template(rgb, label, "bottom")


def sky_texture(dom: Domain, rng, size=(96, 1024)) -> np.ndarray:
    """Sky as a function of direction: rows = tan(elevation) 0..SKY_MAX_TAN, cols = azimuth -pi..pi."""
    h, w = size
    e = (np.arange(h) + 0.5) / h
    grad = np.sqrt(e)[:, None, None]
    col = (1 - grad) * np.asarray(dom.sky_horizon, np.float32) + grad * np.asarray(dom.sky_top, np.float32)
    n = fractal_noise(rng, (h, w), (2.0, 6.0, 14.0), (0.3, 0.5, 0.6), aniso=3.0)
    thr = 1.2 - 2.2 * dom.clouds
    cloud = np.clip((n - thr) * 1.2, 0, 1)[..., None] * (1 - 0.5 * e[:, None, None])
    col = col * (1 - cloud) + cloud * np.asarray(dom.cloud_color, np.float32)
    return np.clip(col * np.asarray(dom.light, np.float32), 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def world_assets(domain: str, seed: int) -> WorldAssets:
    dom = get_domain(domain)
    rng = np.random.default_rng([seed, dom.code, 11])
    tiles = ground_tiles(dom, rng, SZ, SX)
    stack = np.stack([tiles[_TILE_OF[m]] for m in GROUND_MATS])
    tpl: dict[str, list[Template]] = {
        "building": [building_template(dom, rng) for _ in range(10)],
        "glass_building": [building_template(dom, rng, glass=True) for _ in range(2)],
        "wall": [wall_template(dom, rng) for _ in range(2)],
        "fence": [fence_template(dom, rng) for _ in range(2)],
        "hedge": [hedge_template(dom, rng) for _ in range(2)],
        "trees": [trees_template(dom, rng) for _ in range(3)],
    }
    assert stack.shape[1] == GROUND_TILE
    return WorldAssets(stack, tpl, sky_texture(dom, rng))
