"""Fully connected CRF post-processing (DUC/HDC paper Sec. 4.1, "Conditional Random Fields").

The paper follows Krähenbühl & Koltun's dense CRF (as DeepLab does): unary ``-log p`` from the
network's softmax, and the pairwise kernel

    k(i, j) = w1 exp(-|p_i - p_j|^2 / 2 sigma_alpha^2 - |I_i - I_j|^2 / 2 sigma_beta^2)
            + w2 exp(-|p_i - p_j|^2 / 2 sigma_gamma^2)

with Potts compatibility, solved by mean-field inference. The paper's grid-searched values,
used for all its models: sigma_alpha = 15, sigma_beta = 3, sigma_gamma = 1, w1 = 3, w2 = 3.
The inference is the ``pydensecrf2`` package (PyPI; import name ``pydensecrf``), a wrapper of
Krähenbühl's permutohedral-lattice C++ code; nothing here re-implements it.
"""
from __future__ import annotations

import numpy as np

#: The paper's CRF parameters (Sec. 4.1).
PAPER_CRF = {"sxy_bilateral": 15.0, "srgb": 3.0, "sxy_gaussian": 1.0, "w_bilateral": 3.0, "w_gaussian": 3.0}


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("dense_crf needs the 'pydensecrf2' package (pip install pydensecrf2; it "
                          "compiles C++ code, so a compiler is needed where no wheel exists)") from e
    return dcrf


def _check_inputs(probs: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs)
    image = np.asarray(image)
    if probs.ndim != 3 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (L, H, W) class probabilities with L >= 2, got shape {probs.shape}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != probs.shape[1:]:
        raise ValueError(f"image must be (H, W, 3) matching probs {probs.shape[1:]}, got {image.shape}")
    if not np.isfinite(probs).all() or probs.min() < 0:
        raise ValueError("probs must be finite and non-negative (softmax output)")
    if image.dtype != np.uint8:
        if image.min() < 0 or image.max() > 255:
            raise ValueError(f"image must be uint8 or values in [0, 255], got range "
                             f"[{image.min()}, {image.max()}] ({image.dtype})")
        image = np.round(image).astype(np.uint8)
    return probs, np.ascontiguousarray(image)


def dense_crf(probs: np.ndarray, image: np.ndarray, iterations: int = 10, *,
              sxy_gaussian: float = PAPER_CRF["sxy_gaussian"], w_gaussian: float = PAPER_CRF["w_gaussian"],
              sxy_bilateral: float = PAPER_CRF["sxy_bilateral"], srgb: float = PAPER_CRF["srgb"],
              w_bilateral: float = PAPER_CRF["w_bilateral"], return_probs: bool = False,
              downsample: int = 1) -> np.ndarray:
    """Refine a softmax map with a fully connected CRF; return ``(H, W)`` int64 labels (or the
    ``(L, H, W)`` float32 marginals with ``return_probs=True``).

    ``probs``: ``(L, H, W)`` class probabilities (renormalised per pixel; clipped at 1e-8 before
    the log); ``image``: ``(H, W, 3)`` RGB, uint8 or floats in [0, 255]. Defaults are the paper's
    parameters (Sec. 4.1): bilateral ``w1 = 3``, ``sigma_alpha = 15`` px, ``sigma_beta = 3``
    intensity levels; Gaussian ``w2 = 3``, ``sigma_gamma = 1`` px; ``iterations`` of mean field.

    ``downsample = f > 1`` is a cheaper approximation (not the paper's): probabilities and image
    are area-averaged by ``f``, the CRF runs at that resolution with both spatial sigmas divided by
    ``f`` (so they cover the same image distance), and the marginals are upsampled bilinearly
    before the argmax -- about ``f^2`` times less work (``benchmarks/duchdc_crf_cost.py``).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    for name, v in (("sxy_gaussian", sxy_gaussian), ("sxy_bilateral", sxy_bilateral), ("srgb", srgb)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v!r}")
    for name, v in (("w_gaussian", w_gaussian), ("w_bilateral", w_bilateral)):
        if not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    if isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be a positive int, got {downsample!r}")
    probs, image = _check_inputs(probs, image)
    if downsample > 1:
        return _downsampled(probs, image, downsample, iterations, return_probs,
                            dict(sxy_gaussian=sxy_gaussian / downsample, w_gaussian=w_gaussian,
                                 sxy_bilateral=sxy_bilateral / downsample, srgb=srgb, w_bilateral=w_bilateral))
    dcrf = _densecrf()
    n, h, w = probs.shape
    p = probs.astype(np.float32).reshape(n, -1)
    p = np.clip(p / np.maximum(p.sum(0, keepdims=True), 1e-12), 1e-8, 1.0)
    crf = dcrf.DenseCRF2D(w, h, n)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(p), dtype=np.float32))
    if w_gaussian > 0:
        crf.addPairwiseGaussian(sxy=float(sxy_gaussian), compat=float(w_gaussian))
    if w_bilateral > 0:
        crf.addPairwiseBilateral(sxy=float(sxy_bilateral), srgb=float(srgb), rgbim=image,
                                 compat=float(w_bilateral))
    q = np.asarray(crf.inference(iterations), dtype=np.float32).reshape(n, h, w)
    return q if return_probs else q.argmax(0).astype(np.int64)


def _downsampled(probs, image, f, iterations, return_probs, params) -> np.ndarray:
    """``dense_crf`` at 1/f resolution (see its ``downsample``), marginals back at full size."""
    import cv2
    n, h, w = probs.shape
    small = (max(1, round(w / f)), max(1, round(h / f)))  # cv2 sizes are (W, H)
    p = np.stack([cv2.resize(c, small, interpolation=cv2.INTER_AREA) for c in probs.astype(np.float32)])
    img = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    q = dense_crf(p, img, iterations, return_probs=True, **params)
    q = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in q])
    return q if return_probs else q.argmax(0).astype(np.int64)


__all__ = ["PAPER_CRF", "dense_crf"]
