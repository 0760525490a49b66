"""Analytic ray casting of a ``Scene`` and its exact optical flow, vectorised with numpy/OpenCV.

Camera: pinhole, square pixels, ``f = 1.104 * W`` (Cityscapes' 2262 px at 2048 px width, i.e. a
49 deg horizontal field of view), principal point at the image centre column and 45 % of the
height (the horizon row), no pitch or roll; yaw ``psi`` turns right. Pixel (u, v) has the ray
``(u', v', 1)`` in camera coordinates, u' = (u - cx)/f, v' = (v - cy)/f, whose world direction
is ``(cos psi u' + sin psi, -v', -sin psi u' + cos psi)``; its camera depth is its ray parameter.

Because the camera has no pitch every planar surface is separable: the ground depth depends on
the row only (``z = h / v'``), a vertical plane's depth on the column only. Each surface is
therefore cast with a few outer products and one ``cv2.remap`` of its texture per level of
detail (labels: nearest lookup at full resolution; colours: bilinear from the pre-filtered
level matching the pixel footprint). Order: ground, facade planes near to far (depth-tested,
skipping rows hidden behind solid nearer facades), billboards (depth-tested; small ones in one
vectorised batch through a sprite atlas), sky where nothing was drawn, fog, hood.

Exact flow (frame A -> frame B): the 3D point of pixel p in A, moved by its surface's motion
(zero for the static world) and re-projected through camera B, lands at p + flow. With
delta = psi_B - psi_A and T the point's displacement relative to camera B, expressed in B's axes,

    x_B = z (cos(delta) u' - sin(delta)) + T_x,   z_B = z (sin(delta) u' + cos(delta)) + T_z,
    flow_x = f x_B / z_B + cx - u,                flow_y = f v' (z / z_B - 1).

A pixel's flow is *valid* when it lands inside B in front of the camera and B shows the same
surface there (surface ids compared at the nearest pixel); a plane cannot occlude itself, so
this is exactly "not occluded in B", up to the rounding at surface boundaries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .classes import F
from .layout import SID_GROUND, SID_HOOD, SID_SKY, SX, SZ, Plane, Scene
from .textures import MIP_BIAS, mip_level

SKY_DEPTH = 1.0e6    # metres: the sky's parallax at this depth is below 1e-3 px
NEAR = 0.3           # metres: closer billboards are culled
BLOCK_PIXELS = 1000  # sprite parts larger than this are cast block-wise, smaller ones batched
HOOD_COLOR = np.array([38, 40, 44], np.float32)


@dataclass
class FrameBuffers:
    rgb: np.ndarray     # (H, W, 4) uint8 RGBA (alpha unused: 4-channel remaps are faster)
    fine: np.ndarray    # (H, W) uint8 fine class, 255 void
    sid: np.ndarray     # (H, W) int32 surface id
    depth: np.ndarray   # (H, W) float32 camera depth (m)
    sidf: np.ndarray | None = None   # float32 copy of sid (for the validity lookup)
    mov_idx: np.ndarray | None = None  # flat indices of pixels on moving billboards
    mov_v: np.ndarray | None = None    # their (vx, vz) velocity, m/frame


def _runs(keys: np.ndarray, min_len: int = 1):
    """(start, stop) of runs of equal consecutive rows of ``keys`` (N, k); runs shorter than
    ``min_len`` are merged into their left neighbour (which then keeps its own key)."""
    n = len(keys)
    if n == 0:
        return []
    change = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    edges = [0]
    for e in change.tolist():
        if e - edges[-1] >= min_len:
            edges.append(e)
    edges.append(n)
    return list(zip(edges[:-1], edges[1:]))


def _remap_flat(src, x, y, interp, border, value=0):
    """``cv2.remap`` at N scattered points (x, y) -> (N, ...) samples. OpenCV caps map sides at
    32767, so the points are laid out as rows of 4096."""
    n, L = len(x), 4096
    rows = -(-n // L)
    mx = np.zeros(rows * L, np.float32)
    my = np.zeros(rows * L, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(src, mx.reshape(rows, L), my.reshape(rows, L), interp, borderMode=border,
                    borderValue=value)
    return out.reshape(rows * L, *src.shape[2:])[:n]


def _part_table(scene: Scene) -> dict:
    """Every opaque part of every billboard of the scene as flat arrays (cached on the scene)."""
    table = scene.parts
    if table is None:
        rows = [(i, o.x, o.z, o.vx, o.vz, o.sprite.width / 2, o.sprite.y0 + o.sprite.height,
                 pr0, pr1, pc0, pc1, 1.0 / o.sprite.texel, o.sprite.texel, o.sid, o.sprite.atlas_id)
                for i, o in enumerate(scene.objects) for pr0, pr1, pc0, pc1 in o.sprite.parts_m]
        cols = ("obj", "x", "z", "vx", "vz", "half", "ytop", "pr0", "pr1", "pc0", "pc1", "inv_t",
                "texel", "sid", "aid")
        arr = np.array(rows, np.float64).reshape(-1, len(cols))
        table = {c: arr[:, i] for i, c in enumerate(cols)}
        for c in ("obj", "sid", "aid"):
            table[c] = table[c].astype(np.int64)
        scene.parts = table
    return table


def _level(fp: float) -> int:
    """Mip level of a scalar footprint (texels per pixel)."""
    return int(math.log2(fp) + MIP_BIAS) if fp >= 1.0 else 0


class Renderer:
    """Renders frames of a scene at a fixed image size."""

    def __init__(self, size: tuple[int, int], hood: bool = True):
        H, W = size
        self.H, self.W = H, W
        self.f = 1.104 * W
        self.cx = W / 2.0 - 0.5
        self.cy = 0.45 * H - 0.5
        self.up = (np.arange(W) - self.cx) / self.f
        self.vp = (np.arange(H) - self.cy) / self.f
        self.vp32 = self.vp.astype(np.float32)
        self.fvp = (self.f * self.vp).astype(np.float32)[:, None]
        self.cx_minus_u = (self.cx - np.arange(W)).astype(np.float32)[None, :]
        self.u32 = np.arange(W, dtype=np.float32)[None, :]
        self.v32 = np.arange(H, dtype=np.float32)[:, None]
        self.row_h = int(np.searchsorted(self.vp, 1e-9))   # first row strictly below the horizon
        self.sky_cols = 1.0 / np.sqrt(1.0 + self.up ** 2)
        self.hood = self._hood_mask() if hood else None
        if self.hood is not None:
            self.hood_idx = np.flatnonzero(self.hood.ravel())
            self.hood_row = int(np.flatnonzero(self.hood.any(1))[0])
            self.keep_hood = (~self.hood).astype(np.float32)
            rows = self.hood_idx // W
            shade_ = np.clip(1.0 + 0.4 * (rows - H * 0.9) / (H * 0.1), 0.6, 1.4)
            self.hood_rgb = cv2.cvtColor((HOOD_COLOR[None, :] * shade_[:, None]).astype(np.uint8)[None],
                                         cv2.COLOR_RGB2RGBA)[0]

    def _hood_mask(self) -> np.ndarray:
        """The ego-vehicle's bonnet: a flat arc over the bottom ~9 % rows (void)."""
        H, W = self.H, self.W
        x = (np.arange(W) - W / 2) / (W / 2)
        top = H * (0.905 + 0.05 * x ** 2)
        return np.arange(H)[:, None] >= top[None, :]

    # --- one frame ---------------------------------------------------------------------------------
    def render(self, scene: Scene, t: int) -> FrameBuffers:
        """Render frame ``t``: colour, fine labels, surface ids and depth (see module doc)."""
        H, W = self.H, self.W
        cam = scene.camera
        xc, zc, psi, hc = float(cam.x[t]), float(cam.z[t]), float(cam.yaw[t]), cam.height
        c, s = math.cos(psi), math.sin(psi)
        dx = c * self.up + s
        dz = -s * self.up + c
        buf = FrameBuffers(np.empty((H, W, 4), np.uint8), np.empty((H, W), np.uint8),
                           np.empty((H, W), np.int32), np.empty((H, W), np.float32))
        rh = self.row_h
        buf.sid[:rh] = -1                    # not drawn yet (the sky fills what stays empty)
        buf.depth[:rh] = np.inf
        self._ground(buf, scene, xc, zc, hc, dx, dz)
        cover = np.full(W, H, np.int64)      # per column: rows >= cover hidden for farther planes
        for plane in reversed(scene.planes):  # near to far, depth-tested
            self._plane(buf, plane, xc, zc, hc, dx, dz, cover)
        view = (xc, zc, psi, hc, (1.0 / dz).astype(np.float32), dx.astype(np.float32))
        self._billboards(buf, scene, t, view)
        self._sky(buf, scene, dx, dz, int(min(cover.max(), rh)))
        if scene.fog_distance > 0:
            self._fog(buf, scene)
        if self.hood is not None:
            self._draw_hood(buf)
        return buf

    def _sky(self, buf, scene, dx, dz, rows: int):
        """Sky (a function of the ray direction only) where nothing else was drawn."""
        if rows <= 0:
            return
        empty = buf.sid[:rows] < 0
        ys, xs = np.flatnonzero(empty.any(1)), np.flatnonzero(empty.any(0))
        if len(ys) == 0:
            return
        r0, r1, c0, c1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        sky = scene.sky
        hs, ws = sky.shape[:2]
        mx = np.empty((r1 - r0, c1 - c0), np.float32)
        mx[:] = (np.arctan2(dx[c0:c1], dz[c0:c1]) + np.pi) * (ws / (2 * np.pi)) - 0.5
        my = np.multiply.outer((-self.vp[r0:r1]).astype(np.float32),
                               (self.sky_cols[c0:c1] * (hs / scene.sky_max_tan)).astype(np.float32))
        my -= 0.5
        rgb = cv2.remap(sky, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        m = empty[r0:r1, c0:c1]
        cv2.copyTo(rgb, m.view(np.uint8), buf.rgb[r0:r1, c0:c1])
        buf.fine[:rows][empty] = F["sky"]
        buf.sid[:rows][empty] = SID_SKY
        buf.depth[:rows][empty] = SKY_DEPTH

    def _ground(self, buf, scene, xc, zc, hc, dx, dz):
        rh = self.row_h
        if rh >= self.H:
            return
        z = hc / self.vp[rh:]                                  # depth per row
        dx32, dz32 = dx.astype(np.float32), dz.astype(np.float32)
        ox, oz = (xc - scene.gx0) / SX - 0.5, (zc - scene.gz0) / SZ - 0.5
        mx = np.multiply.outer((z / SX).astype(np.float32), dx32)
        mx += ox
        my = np.multiply.outer((z / SZ).astype(np.float32), dz32)
        my += oz
        cv2.remap(scene.ground_label, mx, my, cv2.INTER_NEAREST, dst=buf.fine[rh:],
                  borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        # colour per band of rows with one footprint level (Z: grazing, grows like z^2; X like z)
        keys = np.stack([mip_level(z * z / (self.f * hc) / SZ), mip_level(z / self.f / SX)], 1)
        for a, b in _runs(keys, min_len=4):
            img, sx, sy = scene.ground.level(int(keys[a, 0]), int(keys[a, 1]))
            if sx == 1.0 and sy == 1.0:
                kx_, ky_ = mx[a:b], my[a:b]
            else:  # the maps at this level directly: (c + 0.5) * scale - 0.5
                kx_ = np.multiply.outer((z[a:b] * (sx / SX)).astype(np.float32), dx32)
                kx_ += (ox + 0.5) * sx - 0.5
                ky_ = np.multiply.outer((z[a:b] * (sy / SZ)).astype(np.float32), dz32)
                ky_ += (oz + 0.5) * sy - 0.5
            cv2.remap(img, kx_, ky_, cv2.INTER_LINEAR, dst=buf.rgb[rh + a: rh + b],
                      borderMode=cv2.BORDER_REPLICATE)
        buf.sid[rh:] = SID_GROUND
        buf.depth[rh:] = z.astype(np.float32)[:, None]

    def _plane(self, buf, pl: Plane, xc, zc, hc, dx, dz, cover):
        """One textured vertical plane, depth-tested against nearer surfaces. Per column only the
        rows between the plane's top edge and min(its ground line, ``cover``) are cast, where
        ``cover`` is the top of the nearest solid facade column already drawn (updated here)."""
        if pl.axis == "x":
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (pl.pos - xc) / dx
            hcoord = zc + t * dz
        else:
            t = (pl.pos - zc) / dz
            hcoord = xc + t * dx
        nr, nc = pl.label.shape
        colc = (hcoord - pl.h0) / pl.texel - 0.5
        with np.errstate(invalid="ignore"):
            ok = (t > NEAR) & (colc > -0.5) & (colc < nc - 0.5)
        cols = np.flatnonzero(ok)
        if len(cols) == 0:
            return
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        tt, cc = t[c0:c1], colc[c0:c1]
        # per column: rows between the plane's top edge (tallest texel there) and the ground
        tex = np.clip(np.rint(cc).astype(np.int64), 0, nc - 1)
        vtop = self.cy + self.f * (hc - pl.col_top[tex]) / tt
        rtop = np.clip(np.floor(vtop), 0, self.H).astype(np.int64)
        rbot = np.clip(np.ceil(self.cy + self.f * hc / tt) + 1, 0, self.H).astype(np.int64)
        cov = cover[c0:c1]
        rbot = np.minimum(rbot, cov)
        vis = rbot > rtop
        # rows >= ceil(vtop) + 1 are surely drawn by this plane where its column is solid
        solid = pl.col_solid[tex] & ok[c0:c1]
        rcov = np.clip(np.ceil(vtop) + 1, 0, self.H).astype(np.int64)
        np.minimum(cov, np.where(solid, rcov, cov), out=cov)
        cols = np.flatnonzero(vis)
        if len(cols) == 0:
            return
        a0, b0 = int(cols[0]), int(cols[-1]) + 1          # visible column range (relative)
        r0, r1 = int(rtop[a0:b0].min()), int(rbot[a0:b0].max())
        if r1 <= r0:
            return
        cc32, tt32 = cc[a0:b0].astype(np.float32), tt[a0:b0].astype(np.float32)
        h, w = r1 - r0, b0 - a0
        mx = np.empty((h, w), np.float32)
        mx[:] = cc32
        my = np.multiply.outer(self.vp32[r0:r1], tt32 * np.float32(1.0 / pl.texel))
        my += (pl.ytop - hc) / pl.texel - 0.5
        lab = cv2.remap(pl.label, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=255)
        C0 = c0 + a0
        m = buf.depth[r0:r1, C0:C0 + w] > tt32
        m &= lab != 255
        # colour: one lookup per run of equal mip level, only over that run's rows
        ky = mip_level(tt32 / (self.f * pl.texel))
        kx = mip_level(np.abs(np.gradient(cc32)) if w > 1 else np.ones(1))
        keys = np.stack([ky, kx], 1)
        rgb = np.empty((h, w, 4), np.uint8)
        rt, rb = rtop[a0:b0] - r0, rbot[a0:b0] - r0
        row0 = (pl.ytop - hc) / pl.texel - 0.5
        for a, b in _runs(keys, min_len=8):
            ra, rb_ = int(rt[a:b].min()), int(rb[a:b].max())
            if rb_ <= ra:
                continue
            img, sx, sy = pl.rip.level(int(keys[a, 0]), int(keys[a, 1]))
            kx_ = np.empty((rb_ - ra, b - a), np.float32)      # the maps at this level directly
            kx_[:] = cc32[a:b] * np.float32(sx) + np.float32(0.5 * sx - 0.5)
            ky_ = np.multiply.outer(self.vp32[r0 + ra:r0 + rb_], tt32[a:b] * np.float32(sy / pl.texel))
            ky_ += (row0 + 0.5) * sy - 0.5
            cv2.remap(img, kx_, ky_, cv2.INTER_LINEAR, dst=rgb[ra:rb_, a:b],
                      borderMode=cv2.BORDER_REPLICATE)
        self._write(buf, r0, r1, C0, C0 + w, m, rgb, lab, pl.sid, tt32)

    def _billboards(self, buf, scene: Scene, t: int, view):
        """Composite every billboard of frame ``t`` with a depth test.

        For all sprite parts at once: the pixel block from the analytic projection of the part's
        corners. Large blocks (near objects) are cast block-wise; all small ones in one vectorised
        pass over their concatenated pixels (``_sprite_batch``). Pixels of moving sprites are
        recorded in ``buf.mov_idx``/``mov_v`` for the flow.
        """
        xc, zc, psi, hc, inv_dz, dx32 = view
        atlas = scene.atlas
        f, cx, cy, W, H = self.f, self.cx, self.cy, self.W, self.H
        P = _part_table(scene)
        mov = []            # (flat pixel indices, sid, velocity) of moving sprites
        # all parts at once: position at frame t, image columns of the vertical edges
        # (u' = tan(atan((X - xc)/d) - psi)) and rows of the top/bottom edges
        d = P["z"] + P["vz"] * t - zc
        live = d >= NEAR
        d = np.where(live, d, 1.0)
        ang = P["x"] + P["vx"] * t - P["half"] - xc
        c0 = np.ceil(cx + f * np.tan(np.arctan((ang + P["pc0"]) / d) - psi))
        c1 = np.floor(cx + f * np.tan(np.arctan((ang + P["pc1"]) / d) - psi)) + 1
        c0, c1 = np.clip(c0, 0, W).astype(np.int64), np.clip(c1, 0, W).astype(np.int64)
        live &= c1 > c0
        ia, ib = inv_dz[np.minimum(c0, W - 1)], inv_dz[np.clip(c1 - 1, 0, W - 1)]
        imin, imax = np.minimum(ia, ib), np.maximum(ia, ib)        # 1/dz; depth = d/dz
        top = (hc - P["ytop"] + P["pr0"]) * f / d
        bot = (hc - P["ytop"] + P["pr1"]) * f / d
        r0 = np.clip(np.ceil(cy + np.minimum(top * imin, top * imax) - 0.5), 0, H).astype(np.int64)
        r1 = np.clip(np.floor(cy + np.maximum(bot * imin, bot * imax) + 0.5) + 1, 0, H).astype(np.int64)
        live &= r1 > r0
        level = np.minimum(mip_level(d * 0.5 * (imin + imax) / (f * P["texel"])), atlas.max_level)
        area = (r1 - r0) * (c1 - c0)
        for i in np.flatnonzero(live & (area > BLOCK_PIXELS)):   # near objects: block-wise
            o = scene.objects[P["obj"][i]]
            a0, a1, b0, b1 = int(c0[i]), int(c1[i]), int(r0[i]), int(r1[i])
            m = self._sprite_block(buf, o.sprite, o.sid, a0, a1, b0, b1, float(d[i]), float(ang[i]),
                                   float(P["ytop"][i]), hc, int(level[i]), inv_dz, dx32)
            if (o.vx or o.vz) and m is not None:
                nz = np.flatnonzero(m)
                idx = (nz // (a1 - a0) + b0) * W + nz % (a1 - a0) + a0
                mov.append((idx, np.full(len(idx), o.sid, np.int32),
                            np.tile(np.float32([o.vx, o.vz]), (len(idx), 1))))
        k = np.flatnonzero(live & (area <= BLOCK_PIXELS))
        parts = np.stack([c0[k], c1[k] - c0[k], r0[k], r1[k] - r0[k], d[k], ang[k], P["inv_t"][k],
                          (P["ytop"][k] - hc) * P["inv_t"][k] - 0.5, P["sid"][k], P["aid"][k],
                          level[k], P["vx"][k], P["vz"][k]], 1) if len(k) else []
        self._sprite_batch(buf, parts, atlas, inv_dz, dx32, mov)
        # pixels of moving sprites (for the flow), minus those a nearer sprite covered later
        if mov:
            idx = np.concatenate([m[0] for m in mov])
            sid = np.concatenate([m[1] for m in mov])
            v = np.concatenate([m[2] for m in mov])
            ok = buf.sid.reshape(-1)[idx] == sid
            buf.mov_idx, buf.mov_v = idx[ok], v[ok]

    def _sprite_block(self, buf, sp, sid, c0, c1, r0, r1, d, ang, ytop, hc, level, inv_dz, dx32):
        """Cast one large sprite part block-wise (depth-tested); returns the written mask."""
        inv_t = 1.0 / sp.texel
        tt = inv_dz[c0:c1] * d
        mx = np.empty((r1 - r0, c1 - c0), np.float32)
        mx[:] = (tt * dx32[c0:c1] - ang) * inv_t - 0.5
        my = np.multiply.outer(self.vp32[r0:r1], tt * inv_t)
        my += (ytop - hc) * inv_t - 0.5
        lab = cv2.remap(sp.label, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=255)
        m = buf.depth[r0:r1, c0:c1] > tt
        m &= lab != 255
        if not m.any():
            return None
        self._write(buf, r0, r1, c0, c1, m, sp.rip.sample(level, level, mx, my), lab, sid, tt)
        return m

    def _sprite_batch(self, buf, parts, atlas, inv_dz, dx32, mov):
        """One vectorised pass over the pixels of all small sprite parts: the ray's depth on the
        sprite plane, the texel it hits (nearest lookup in the label atlas), a depth test, a
        scatter-min z-buffer among the sprites, one bilinear lookup in the colour atlas (at the
        mip level of the part's distance) for the winners.

        ``parts`` rows: c0, width, r0, height, d (plane distance), x_left - xc, 1/texel,
        texture row of the camera height, sid, atlas id, mip level, vx, vz.
        """
        W = self.W
        if len(parts) == 0:
            return
        A = parts
        aid, lev = A[:, 9].astype(np.int64), A[:, 10].astype(np.int64)
        n = (A[:, 1] * A[:, 3]).astype(np.int64)
        k = np.repeat(np.arange(len(A)), n)
        j = (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)).astype(np.float32)
        P32 = np.concatenate([A[:, :8], atlas.size[aid], atlas.lab_off[aid], atlas.col_off[aid, lev]],
                             1).astype(np.float32)
        g = P32[k]                                    # per pixel: its part's parameters
        wk = g[:, 1]
        rr = np.floor((j + 0.5) / wk)
        row = (g[:, 2] + rr).astype(np.int32)
        col = (g[:, 0] + (j - rr * wk)).astype(np.int32)
        tt = g[:, 4] * inv_dz[col]
        colc = tt * dx32[col]                         # X - xc on the sprite plane
        colc -= g[:, 5]                               # - (x_left - xc)
        colc *= g[:, 6]
        colc -= 0.5
        rowc = self.vp32[row] * tt
        rowc *= g[:, 6]
        rowc += g[:, 7]
        inside = (colc > -0.5) & (colc < g[:, 9] - 0.5) & (rowc > -0.5) & (rowc < g[:, 8] - 0.5)
        lab = _remap_flat(atlas.label, colc + g[:, 10], rowc + g[:, 11], cv2.INTER_NEAREST,
                          cv2.BORDER_CONSTANT, 255)
        pix = row * W + col
        depth = buf.depth.reshape(-1)
        keep = np.flatnonzero(inside & (lab != 255) & (tt < depth[pix]))
        if len(keep) == 0:
            return
        pix, tt = pix[keep], tt[keep]
        np.minimum.at(depth, pix, tt)                 # z-buffer among the sprites
        win = keep[depth[pix] == tt]
        pix = row[win] * W + col[win]
        sid = A[:, 8].astype(np.int32)[k[win]]
        g = g[win]
        ax = (colc[win] + 0.5) * g[:, 14] + (g[:, 12] - 0.5)
        ay = (rowc[win] + 0.5) * g[:, 15] + (g[:, 13] - 0.5)
        buf.rgb.reshape(-1, 4)[pix] = _remap_flat(atlas.color, ax, ay, cv2.INTER_LINEAR,
                                                  cv2.BORDER_REPLICATE)
        buf.fine.reshape(-1)[pix] = lab[win]
        buf.sid.reshape(-1)[pix] = sid
        kw = k[win]
        vx, vz = A[:, 11][kw], A[:, 12][kw]
        moving = np.flatnonzero((vx != 0) | (vz != 0))
        if len(moving):
            mov.append((pix[moving], sid[moving], np.stack([vx[moving], vz[moving]], 1).astype(np.float32)))

    @staticmethod
    def _write(buf, r0, r1, c0, c1, m, rgb, lab, sid, depth_cols):
        """Composite a surface block where ``m``; cv2.copyTo writes into the buffer views in place
        (and is ~100x faster than numpy's masked copy on 3-channel images)."""
        m8 = m.view(np.uint8)
        cv2.copyTo(rgb, m8, buf.rgb[r0:r1, c0:c1])
        cv2.copyTo(lab, m8, buf.fine[r0:r1, c0:c1])
        np.copyto(buf.sid[r0:r1, c0:c1], sid, where=m)
        np.copyto(buf.depth[r0:r1, c0:c1], depth_cols, where=m)

    def _fog(self, buf, scene):
        a = (1.0 - np.exp(-buf.depth / scene.fog_distance)).astype(np.float32)[..., None]
        fog = np.asarray(scene.fog_color, np.float32)
        buf.rgb[..., :3] = (buf.rgb[..., :3] * (1.0 - a) + fog * a + 0.5).astype(np.uint8)

    def _draw_hood(self, buf):
        idx = self.hood_idx
        buf.rgb.reshape(-1, 4)[idx] = self.hood_rgb
        buf.fine.reshape(-1)[idx] = 255
        buf.sid.reshape(-1)[idx] = SID_HOOD
        buf.depth.reshape(-1)[idx] = 1.0

    # --- exact flow --------------------------------------------------------------------------------
    def flow(self, scene: Scene, A: FrameBuffers, ta: int, B: FrameBuffers, tb: int):
        """Flow (H, W, 2) float32 mapping frame ``ta`` to ``tb`` and its validity (H, W) bool."""
        cam = scene.camera
        dlt = float(cam.yaw[tb]) - float(cam.yaw[ta])
        a = (math.cos(dlt) * self.up - math.sin(dlt)).astype(np.float32)[None, :]
        b = (math.sin(dlt) * self.up + math.cos(dlt)).astype(np.float32)[None, :]
        # displacement relative to camera tb, in tb's axes: the camera's for the static world ...
        cb, sb = math.cos(float(cam.yaw[tb])), math.sin(float(cam.yaw[tb]))
        Tx, Tz = float(cam.x[ta] - cam.x[tb]), float(cam.z[ta] - cam.z[tb])
        z = A.depth
        x1 = z * a
        x1 += cb * Tx - sb * Tz
        z1 = z * b
        z1 += sb * Tx + cb * Tz
        if A.mov_idx is not None and len(A.mov_idx):  # ... plus the object's own motion
            v = A.mov_v * float(tb - ta)
            x1.reshape(-1)[A.mov_idx] += (cb * v[:, 0] - sb * v[:, 1]).astype(np.float32)
            z1.reshape(-1)[A.mov_idx] += (sb * v[:, 0] + cb * v[:, 1]).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.reciprocal(z1)
            fx = x1 * inv
            fx *= self.f
            fx += self.cx_minus_u
            fy = z * inv
            fy -= 1.0
            fy *= self.fvp
        # valid: B shows the same surface at the nearest pixel of p + flow (and it is in front)
        if B.sidf is None:
            B.sidf = B.sid.astype(np.float32)
        sid_at = cv2.remap(B.sidf, fx + self.u32, fy + self.v32, cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
        valid = sid_at == A.sid
        valid &= z1 > NEAR
        if self.hood is not None:  # the bonnet moves with the camera: zero flow, always valid
            r = self.hood_row
            keep = self.keep_hood[r:]
            fx[r:] *= keep
            fy[r:] *= keep
            valid[r:] |= self.hood[r:]
        return cv2.merge([fx, fy]), valid
