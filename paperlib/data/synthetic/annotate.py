"""Human-style annotations of a clip: the sparse labelled frames, with boundary noise or coarse polygons.

Real datasets label a few frames per video (Cityscapes: the 20th of each 30-frame snippet;
CamVid: one frame per second of 30 Hz video), and human polygons miss the true boundary by a
few pixels (VPLR Sec. 3.3 relaxes the loss exactly there). ``annotate`` reproduces both, while
``clip.labels`` keeps the clean labels of every frame for evaluation.

- ``noise_px``: every labelled frame is resampled through a smooth random displacement field
  of at most ``noise_px`` pixels (correlation length ~``noise_scale`` px), so boundaries wiggle
  like traced polygons; a pixel can only change if a boundary lies within ``noise_px`` of it.
- ``coarse=True``: Cityscapes gtCoarse-style labels: each connected region is eroded, traced
  and simplified to a polygon (``cv2.approxPolyDP``, ``coarse_eps`` px), everything else is
  unlabelled (255).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from paperlib.data.labels import IGNORE_INDEX

from .textures import periodic_noise

STYLES = ("cityscapes", "camvid")


@dataclass
class Annotation:
    """The labelled subset of a clip: ``indices`` (K,) into the clip, ``frames`` (K, H, W, 3),
    ``labels`` (K, H, W) uint8 train ids as annotated (noisy / coarse, 255 unlabelled),
    ``clean`` (K, H, W) the exact labels of the same frames, ``fine_labels`` the annotated
    fine labels when the clip has them."""

    indices: np.ndarray
    frames: np.ndarray
    labels: np.ndarray
    clean: np.ndarray
    fine_labels: np.ndarray | None
    style: str
    noise_px: float
    coarse: bool


def labelled_indices(length: int, style: str = "cityscapes", every: int = 30,
                     offset: int | None = None) -> np.ndarray:
    """Frames a human would label: Cityscapes -> [19] (the 20th frame, needs length >= 20);
    CamVid -> every ``every``-th frame starting at ``offset`` (default ``every // 2``, so each
    labelled frame has unlabelled neighbours on both sides)."""
    if style not in STYLES:
        raise ValueError(f"unknown annotation style {style!r}; expected one of {STYLES}")
    if style == "cityscapes":
        if length < 20:
            raise ValueError(f"Cityscapes-style annotation labels frame 19; clip length {length} < 20")
        return np.array([19])
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    start = every // 2 if offset is None else int(offset)
    if not 0 <= start < length:
        raise ValueError(f"offset {start} outside a clip of length {length}")
    return np.arange(start, length, every)


def jitter_boundaries(label: np.ndarray, noise_px: float, rng: np.random.Generator,
                      scale: float = 12.0) -> np.ndarray:
    """Resample ``label`` at p + d(p), d a smooth random field with |d| <= ``noise_px``."""
    if noise_px <= 0:
        return label.copy()
    H, W = label.shape
    d = np.stack([periodic_noise(rng, (H, W), scale) for _ in range(2)])
    d *= noise_px / (np.sqrt((d ** 2).sum(0)).max() + 1e-6)
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    return cv2.remap(label, gx + d[0], gy + d[1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def coarse_polygons(label: np.ndarray, eps: float = 3.0, margin: int | None = None,
                    min_area: int = 40) -> np.ndarray:
    """gtCoarse-style label: per connected region one simplified polygon inside it, 255 elsewhere.

    Regions are eroded by ``margin`` (default ``ceil(eps) + 1``) px before tracing, so the
    simplified polygon (which deviates at most ``eps`` from the trace) stays inside the region.
    """
    margin = int(np.ceil(eps)) + 1 if margin is None else margin
    out = np.full(label.shape, IGNORE_INDEX, np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    polys = []
    for cls in np.unique(label):
        if cls == IGNORE_INDEX:
            continue
        mask = cv2.erode((label == cls).astype(np.uint8), kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for c in contours:
            area = cv2.contourArea(c)
            if area >= min_area:
                polys.append((area, int(cls), cv2.approxPolyDP(c, eps, True)))
    for _, cls, poly in sorted(polys, key=lambda p: -p[0]):  # big first, small on top
        cv2.fillPoly(out, [poly], cls)
    return out


def annotate(clip, style: str = "cityscapes", noise_px: float = 2.0, coarse: bool = False,
             seed: int = 0, every: int = 30, offset: int | None = None, noise_scale: float = 12.0,
             coarse_eps: float = 3.0) -> Annotation:
    """Annotate ``clip`` like a human would (see the module docstring).

    Deterministic in (clip.domain, clip.seed, clip.index, seed). Returns an ``Annotation``.
    """
    if noise_px < 0:
        raise ValueError(f"noise_px must be >= 0, got {noise_px}")
    idx = labelled_indices(len(clip), style, every, offset)
    labels, fine = [], []
    for i in idx:
        streams = np.random.SeedSequence([seed, int(clip.seed), int(clip.index), int(i)])
        lab = jitter_boundaries(clip.labels[i], noise_px, np.random.default_rng(streams), noise_scale)
        if clip.fine_labels is not None:  # the same annotator: the same displacement field
            fl = jitter_boundaries(clip.fine_labels[i], noise_px, np.random.default_rng(streams), noise_scale)
        if coarse:
            lab = coarse_polygons(lab, coarse_eps)
            if clip.fine_labels is not None:
                fl = coarse_polygons(fl, coarse_eps)
        labels.append(lab)
        if clip.fine_labels is not None:
            fine.append(fl)
    return Annotation(idx, clip.frames[idx], np.stack(labels), clip.labels[idx].copy(),
                      np.stack(fine) if fine else None, style, float(noise_px), bool(coarse))
