"""New training pairs from one labelled frame (VPLR Sec. 3.2, Eq. 1-3, appendix B).

A *motion function* ``motion_fn(j, s)`` (s = +1 or -1) returns the (H, W, 2) motion that warps
frame j's content into frame j+s: ``I(j+s)(p) ~ I(j)(p + m(p))``. Three sources:

- ``exact_flow(clip)`` / ``dis_flows(frames)``: optical flow between real frames -- the world's
  exact flow, or OpenCV DIS (the paper's optical-flow baseline, FlowNet2 there);
- ``model_motion(G, frames, flows)``: the learned motion vectors of ``MotionNet`` (prediction:
  conditioned on I(j-s), I(j); reconstruction: also on I(j+s)), Eq. 1 / 3. Backward
  propagation runs the same model on the reversed sequence (s = -1).

``propagate`` is auto-regressive (step n warps the result of step n-1 by the motion between real
frames start+(n-1)s and start+ns); ``synthesize`` pairs its outputs into samples: label
propagation (LP) pairs the *real* frame I(i+k) with the propagated label, joint propagation (JP)
the *propagated* frame with it; non-accumulated gives offsets +-k only, accumulated all
+-1..+-k.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .motion import MotionNet, dis_flow, motion_inputs
from .warp import IGNORE_INDEX, warp_image_np, warp_label_np

MotionFn = Callable[[int, int], np.ndarray]
#: flow_fn(a, b) for |a - b| = 1: the flow with I(a)(p) ~ I(b)(p + flow(p)).
FlowFn = Callable[[int, int], np.ndarray]


def _check_step(a: int, b: int, n: int) -> None:
    if abs(a - b) != 1 or not (0 <= a < n and 0 <= b < n):
        raise ValueError(f"flow between frames {a} and {b}: need adjacent frames inside 0..{n - 1}")


def exact_flow(clip) -> FlowFn:
    """The world's exact flow as a ``FlowFn`` (``flow_bw[b]`` for a = b+1, ``flow_fw[a]`` for a = b-1)."""
    if clip.flow_fw is None:
        raise ValueError("exact_flow: the clip was rendered without flow (clip(..., flow=True))")

    def fn(a: int, b: int) -> np.ndarray:
        _check_step(a, b, len(clip.frames))
        return clip.flow_bw[b] if a == b + 1 else clip.flow_fw[a]
    return fn


def dis_flows(frames: np.ndarray) -> FlowFn:
    """OpenCV DIS flow between real frames as a ``FlowFn`` (cached per pair)."""
    cache: dict[tuple[int, int], np.ndarray] = {}

    def fn(a: int, b: int) -> np.ndarray:
        _check_step(a, b, len(frames))
        if (a, b) not in cache:
            cache[(a, b)] = dis_flow(frames[a], frames[b])
        return cache[(a, b)]
    return fn


def flow_motion(flow_fn: FlowFn) -> MotionFn:
    """Optical-flow-only propagation: the motion from j to j+s is the flow of frame j+s to j."""
    return lambda j, s: flow_fn(j + s, j)


def model_motion(model: MotionNet, frames: np.ndarray, flow_fn: FlowFn) -> MotionFn:
    """Learned motion vectors of G (Eq. 1 prediction / Eq. 3 reconstruction, by ``model.mode``)."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def fn(j: int, s: int) -> np.ndarray:
        if not (0 <= j - s < len(frames) and 0 <= j + s < len(frames)):
            raise ValueError(f"model_motion: step {j}->{j + s} needs frames {j - s} and {j + s}")
        x = motion_inputs(model.mode, frames[j - s], frames[j], flow_fn(j, j - s),
                          frames[j + s], flow_fn(j + s, j))
        model.eval()
        return model(x.to(device))[0].permute(1, 2, 0).cpu().numpy()
    return fn


def propagate(frames: np.ndarray, label: np.ndarray, start: int, k: int, motion_fn: MotionFn,
              ignore_index: int = IGNORE_INDEX) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Auto-regressive propagation of (I(start), L(start)) by ``k`` steps (sign = direction).

    Returns ``(images, labels)``, entry n-1 being step n = 1..|k| (Eq. 1-2 applied n times):
    images bilinearly, labels nearest with void for void or out-of-frame samples.
    """
    if label.shape != frames.shape[1:3]:
        raise ValueError(f"propagate: label {label.shape} does not match frames {frames.shape[1:3]}")
    s = 1 if k > 0 else -1
    if not 0 <= start + k < len(frames):
        raise ValueError(f"propagate: frame {start} + {k} outside a clip of {len(frames)} frames")
    img, lab = frames[start], label
    images, labels = [], []
    for n in range(abs(k)):
        m = motion_fn(start + n * s, s)
        img, lab = warp_image_np(img, m), warp_label_np(lab, m, ignore_index)
        images.append(img)
        labels.append(lab)
    return images, labels


@dataclass
class Propagated:
    """One synthesized training pair: ``offset`` from the labelled frame, ``joint`` = JP."""

    offset: int
    image: np.ndarray
    label: np.ndarray
    joint: bool


def synthesize(frames: np.ndarray, label: np.ndarray, start: int, k: int, motion_fn: MotionFn,
               joint: bool = True, accumulated: bool = False,
               ignore_index: int = IGNORE_INDEX) -> list[Propagated]:
    """Training pairs at offsets +-k (``accumulated``: +-1..+-k), forward and backward.

    ``joint``: JP pairs the propagated frame with the propagated label; otherwise LP pairs the
    real frame I(start + offset) with it. ``k = 0`` gives no pairs.
    """
    if k < 0:
        raise ValueError(f"synthesize: k is a length >= 0 (both directions are made), got {k}")
    out = []
    for s in (1, -1):
        if k == 0:
            break
        images, labels = propagate(frames, label, start, s * k, motion_fn, ignore_index)
        for n in (range(1, k + 1) if accumulated else [k]):
            off = s * n
            img = images[n - 1] if joint else frames[start + off]
            out.append(Propagated(off, img, labels[n - 1], joint))
    return sorted(out, key=lambda p: p.offset)


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None,
                   ignore_index: int = IGNORE_INDEX) -> float:
    """Share of pixels (non-void in ``truth``, and in ``valid`` when given) where pred == truth;
    void predictions count as wrong."""
    m = truth != ignore_index
    if valid is not None:
        m &= valid
    if not m.any():
        raise ValueError("pixel_accuracy: no pixel to score")
    return float((pred[m] == truth[m]).mean())
