"""Procedural textures: smooth periodic noise, ground tiles, anisotropic mip chains, sprite canvas.

Textures are *surface* functions: each surface (ground, facade, billboard) owns a texture image
in metric texel coordinates, so its appearance moves with it and its brightness does not change
over time (the brightness constancy that makes the world's optical flow checkable).
All noise is band-limited (Gaussian-filtered white noise, ``sigma`` >= 1 texel), and minified
surfaces are sampled from pre-filtered levels (``RipMap``), so warping a frame with the exact flow
reproduces its neighbour up to bilinear interpolation error.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .domains import Domain

RGB = tuple[int, int, int]


# --- noise --------------------------------------------------------------------------------------
def _gauss_filter(shape, sigma_yx):
    h, w = shape
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    sy, sx = sigma_yx
    return np.exp(-2.0 * math.pi ** 2 * ((sy * fy) ** 2 + (sx * fx) ** 2))


def periodic_noise(rng: np.random.Generator, shape: tuple[int, int],
                   sigma: float | tuple[float, float]) -> np.ndarray:
    """Tileable smooth noise (float32, zero mean, unit std): white noise * Gaussian(sigma texels).

    Filtering in the Fourier domain makes the result exactly periodic in both axes.
    ``sigma`` may be ``(sigma_rows, sigma_cols)`` for anisotropic texels.
    """
    return fractal_noise(rng, shape, [sigma], [1.0])


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], sigmas, weights,
                  aniso: float = 1.0) -> np.ndarray:
    """Weighted sum of octaves of one white noise, each Gaussian-filtered (sigma texels, x
    ``aniso`` along columns) and scaled to unit energy; one FFT pair, exactly periodic.
    The result has std sqrt(sum(weights^2))."""
    spec = np.fft.rfft2(rng.standard_normal(shape, dtype=np.float32))
    filt = np.zeros(spec.shape, np.float32)
    for sg, wt in zip(sigmas, weights):
        sy, sx = (sg, sg) if np.isscalar(sg) else sg
        g = _gauss_filter(shape, (sy, sx * aniso))
        filt += wt * g / np.sqrt(max(float(np.mean(g ** 2)), 1e-12))
    out = np.fft.irfft2(spec * filt, s=shape).astype(np.float32)
    std = float(out.std())
    return out * (float(np.sqrt(np.sum(np.square(weights)))) / (std if std > 0 else 1.0))


def soften(img: np.ndarray, sigma: float = 0.7, wrap: tuple[bool, bool] = (True, True)) -> np.ndarray:
    """Gaussian band-limit a texture (periodic along the wrapped axes): hard edges (window
    frames, paving joints, markings) then interpolate smoothly, so warping an image by its
    exact flow reproduces its neighbour up to a small bilinear interpolation error."""
    p = int(math.ceil(3 * sigma))
    mode = [(p, p) if w else (0, 0) for w in wrap] + [(0, 0)] * (img.ndim - 2)
    big = np.pad(img, mode, mode="wrap")
    out = cv2.GaussianBlur(big, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return out[p if wrap[0] else 0: out.shape[0] - (p if wrap[0] else 0),
               p if wrap[1] else 0: out.shape[1] - (p if wrap[1] else 0)]


def shade(base: RGB, lum: np.ndarray, dom: Domain | None = None, gain: float = 1.0) -> np.ndarray:
    """Colour ``base`` modulated by luminance field ``lum`` (1 = base) -> uint8 (..., 3)."""
    light = np.asarray(dom.light if dom is not None else (1.0, 1.0, 1.0), np.float32)
    rgb = np.asarray(base, np.float32) * light * gain
    return np.clip(lum[..., None] * rgb, 0, 255).astype(np.uint8)


def texture_lum(rng: np.random.Generator, shape, dom: Domain, amp: float, sigmas=(1.2, 6.0, 30.0),
                weights=(0.5, 0.35, 0.35), aniso: float = 1.0) -> np.ndarray:
    """Luminance field 1 + amp * contrast * noise, for multiplying a base colour."""
    sig = tuple(s * dom.texture_scale for s in sigmas)
    return 1.0 + amp * dom.contrast * fractal_noise(rng, shape, sig, weights, aniso)


# --- ground tiles (rows = Z at sz metres, cols = X at sx metres) ---------------------------------
GROUND_TILE = 256


def ground_tiles(dom: Domain, rng: np.random.Generator, sz: float, sx: float) -> dict[str, np.ndarray]:
    """One tileable (GROUND_TILE x GROUND_TILE x 3) uint8 texture per ground material."""
    t = GROUND_TILE
    a = sz / sx  # anisotropy: a metre spans ``a`` times more texels along X than along Z
    rows = (np.arange(t)[:, None] * sz)
    cols = (np.arange(t)[None, :] * sx)
    tiles = {}
    tiles["road"] = shade(dom.asphalt, texture_lum(rng, (t, t), dom, 0.09, (0.8, 5, 25), (0.5, 0.4, 0.5), a))
    # paving slabs 0.8 m (Z) x 0.4 m (X) with dark joints and per-slab brightness
    slab = (np.floor(rows / 0.8) * 7 + np.floor(cols / 0.4) * 13) % 17 / 17.0
    joint = ((rows % 0.8) < sz) | ((cols % 0.4) < sx)
    lum = texture_lum(rng, (t, t), dom, 0.05, (0.8, 5, 20), (0.5, 0.3, 0.3), a) + 0.08 * (slab - 0.5)
    tiles["sidewalk"] = shade(dom.sidewalk, np.where(joint, 0.8, lum).astype(np.float32))
    cjoint = (rows % 1.0) < sz
    tiles["curb"] = shade(dom.curb, np.where(cjoint, 0.82, texture_lum(rng, (t, t), dom, 0.05, aniso=a)))
    tiles["grass"] = shade(dom.grass, texture_lum(rng, (t, t), dom, 0.16, (0.8, 4, 18), (0.6, 0.5, 0.5), a))
    tiles["gravel"] = shade(dom.gravel, texture_lum(rng, (t, t), dom, 0.12, (0.8, 3, 14), (0.7, 0.4, 0.3), a))
    tiles["marking"] = shade(dom.marking, texture_lum(rng, (t, t), dom, 0.06, (1.0, 8, 30), (0.3, 0.4, 0.5), a))
    return {k: soften(v, 0.7) for k, v in tiles.items()}


# --- anisotropic mip chains ---------------------------------------------------------------------
class RipMap:
    """Pre-filtered levels of one texture: level (ky, kx) halves rows ky times and cols kx times.

    Levels are built lazily by 2-tap box filtering (a halving), so a surface seen at a
    grazing angle (ground, facades) is minified along one axis only, without blurring the other.
    RGB images are stored as RGBA (alpha unused): OpenCV's bilinear remap is ~40 % faster on
    4-channel images.
    """

    def __init__(self, image: np.ndarray, max_level: int = 10):
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
        self.levels = {(0, 0): np.ascontiguousarray(image)}
        self.h, self.w = image.shape[:2]
        self.max_level = max_level

    def get(self, ky: int, kx: int) -> np.ndarray:
        key = (ky, kx)
        img = self.levels.get(key)
        if img is None:
            src = self.get(ky, kx - 1) if kx > 0 else self.get(ky - 1, kx)
            h, w = src.shape[:2]
            size = (max(1, (w + 1) // 2), h) if kx > 0 else (w, max(1, (h + 1) // 2))
            # halving with INTER_LINEAR samples between texel pairs: the 2-tap box average
            # (what INTER_AREA computes), 5x faster
            img = self.levels[key] = cv2.resize(src, size, interpolation=cv2.INTER_LINEAR)
        return img

    def level(self, ky: int, kx: int) -> tuple[np.ndarray, float, float]:
        """Level (ky, kx) and its scale factors: level-0 texel coordinate c maps to
        (c + 0.5) * scale - 0.5 there (x: cols, y: rows)."""
        img = self.get(min(ky, self.max_level), min(kx, self.max_level))
        return img, img.shape[1] / self.w, img.shape[0] / self.h

    def sample(self, ky: int, kx: int, mx: np.ndarray, my: np.ndarray,
               border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """Bilinear lookup at level-0 texel coordinates (``mx``, ``my``) from level (ky, kx)."""
        ky, kx = min(ky, self.max_level), min(kx, self.max_level)
        img = self.get(ky, kx)
        if kx:
            mx = (mx + 0.5) * (img.shape[1] / self.w) - 0.5
        if ky:
            my = (my + 0.5) * (img.shape[0] / self.h) - 0.5
        return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=border)


MIP_BIAS = 0.5  # round(log2(footprint)): a level is used from 1.41 (not 2) texels per pixel


def mip_level(footprint: np.ndarray, max_level: int = 10) -> np.ndarray:
    """Level index for a footprint in texels per pixel: floor(log2(fp) + MIP_BIAS), >= 0.

    The bias trades a little blur for less aliasing of minified textures, which is what makes
    frames warp onto each other (and keeps the flow-exactness residual small)."""
    fp = np.maximum(np.asarray(footprint, np.float64), 1.0)
    return np.minimum(np.floor(np.log2(fp) + MIP_BIAS), max_level).astype(np.int32)


def bleed(rgb: np.ndarray, label: np.ndarray, radius: int = 2) -> np.ndarray:
    """Fill transparent texels (label 255) near opaque ones with nearby opaque colours.

    Bilinear sampling at a silhouette then never mixes in an arbitrary background colour.
    """
    alpha = (label != 255).astype(np.float32)
    k = 2 * radius + 1
    num = cv2.blur(rgb.astype(np.float32) * alpha[..., None], (k, k))
    den = cv2.blur(alpha, (k, k))[..., None]
    filled = np.where(den > 1e-3, num / np.maximum(den, 1e-3), rgb.astype(np.float32))
    return np.where(alpha[..., None] > 0, rgb, np.clip(filled, 0, 255).astype(np.uint8))


# --- sprite canvas ------------------------------------------------------------------------------
class Canvas:
    """Draw a billboard in metres: origin at the bottom centre, x right, y up.

    Colour is drawn at 2x and area-downsampled (anti-aliased); labels are drawn at 1x.
    Later primitives paint over earlier ones; ``label=255`` erases (transparent holes).
    """

    SS = 2
    SHIFT = 4

    def __init__(self, width: float, height: float, texel: float):
        self.width, self.height, self.texel = width, height, texel
        self.w = max(2, int(math.ceil(width / texel)))
        self.h = max(2, int(math.ceil(height / texel)))
        self.rgb = np.zeros((self.h * self.SS, self.w * self.SS, 3), np.uint8)
        self.label = np.full((self.h, self.w), 255, np.uint8)

    def _pts(self, pts, scale: int) -> np.ndarray:
        p = np.asarray(pts, np.float64)
        col = (p[:, 0] + self.width / 2) / self.texel * scale - 0.5  # texel centres at integers
        row = (self.height - p[:, 1]) / self.texel * scale - 0.5
        return np.round(np.stack([col, row], 1) * (1 << self.SHIFT)).astype(np.int32)

    def poly(self, pts, label: int, color) -> "Canvas":
        color = tuple(int(c) for c in color)
        cv2.fillPoly(self.rgb, [self._pts(pts, self.SS)], color, cv2.LINE_8, self.SHIFT)
        cv2.fillPoly(self.label, [self._pts(pts, 1)], int(label), cv2.LINE_8, self.SHIFT)
        return self

    def rect(self, x0, y0, x1, y1, label, color) -> "Canvas":
        return self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], label, color)

    def ellipse(self, cx, cy, rx, ry, label, color, n: int = 28) -> "Canvas":
        a = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return self.poly(np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1), label, color)

    def ring(self, cx, cy, r_out, r_in, label, color, n: int = 32) -> "Canvas":
        """An annulus (e.g. a bicycle wheel): paint the disc, then erase the inside."""
        self.ellipse(cx, cy, r_out, r_out, label, color, n)
        a = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pts = np.stack([cx + r_in * np.cos(a), cy + r_in * np.sin(a)], 1)
        cv2.fillPoly(self.label, [self._pts(pts, 1)], 255, cv2.LINE_8, self.SHIFT)
        return self

    def line(self, x0, y0, x1, y1, width, label, color) -> "Canvas":
        d = np.array([x1 - x0, y1 - y0], np.float64)
        n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * width / 2
        return self.poly([(x0 + n[0], y0 + n[1]), (x1 + n[0], y1 + n[1]),
                          (x1 - n[0], y1 - n[1]), (x0 - n[0], y0 - n[1])], label, color)

    def finish(self, rng: np.random.Generator, dom: Domain, amp: float = 0.07):
        """-> (rgb uint8 (h, w, 3) with texture noise and bled edges, label uint8 (h, w))."""
        rgb = cv2.GaussianBlur(cv2.resize(self.rgb, (self.w, self.h), interpolation=cv2.INTER_AREA),
                               (0, 0), 0.6)
        lum = 1.0 + amp * dom.contrast * fractal_noise(rng, (self.h, self.w), (1.0, 4.0), (0.6, 0.8))
        rgb = np.clip(rgb.astype(np.float32) * lum[..., None] * np.asarray(dom.light, np.float32),
                      0, 255).astype(np.uint8)
        return bleed(rgb, self.label), self.label


def scale_color(c, k: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * k, 0, 255)) for v in c)
