"""How good are propagated labels? Scored against the world's clean label of every frame.

VPLR (Sec. 3.2, Eq. 1-3) trains on pairs made by warping a labelled frame (I(i), L(i)) k steps
with a motion T(m, .). The propagated label L~(i+k) is the same array in both pairings; what
differs is the image it is paired with, and so what "correct" means:

- **LP** pairs it with the *real* frame I(i+k): the label is right where it equals the clean
  label of frame i+k (``labels[i + k]``). Wrong motion = misaligned pair.
- **JP** pairs it with the *propagated* frame I~(i+k), whose pixels are bilinear mixes of I(i)'s
  pixels. The true label of such a pixel is the class that contributes most of its colour:
  ``soft_propagate`` warps the one-hot label exactly as the image is warped (bilinear, border
  padding, same motions, same auto-regressive steps) and takes the argmax. Wrong motion does
  not misalign a JP pair (image and label move together); what remains is the nearest vs
  bilinear difference and, instead, a distorted image (``LabelQuality.image_error``).

Pixels that the propagated label marks void (void in L(i), or sampled from outside the frame)
are ignored by training, so they are not scored as errors: accuracy and mIoU are over pixels
labelled in both maps, and ``coverage`` says how many of the truth's labelled pixels survived.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
import torch

from ..metrics import ConfusionMatrix
from .synthesize import MotionFn, propagate
from .warp import IGNORE_INDEX, warp


def boundary_mask(label: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels within ``radius`` px (Chebyshev distance) of a pixel with another label.

    Void is a label like any other here (an edge against void is an edge). The mask is where
    the (2r+1)x(2r+1) max and min filters of the label map differ."""
    if label.ndim != 2:
        raise ValueError(f"boundary_mask: label must be (H, W), got shape {label.shape}")
    if int(radius) < 0:
        raise ValueError(f"boundary_mask: radius must be >= 0, got {radius}")
    if radius == 0:
        return np.zeros(label.shape, bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    lab = np.ascontiguousarray(label, dtype=np.uint8)
    return cv2.dilate(lab, kernel, borderType=cv2.BORDER_REPLICATE) != \
        cv2.erode(lab, kernel, borderType=cv2.BORDER_REPLICATE)


def soft_propagate(label: np.ndarray, start: int, k: int, motion_fn: MotionFn, num_classes: int = 19,
                   ignore_index: int = IGNORE_INDEX) -> list[np.ndarray]:
    """The label warped *the same way as the image* in ``propagate``: the one-hot map (void as
    one more channel) is sampled bilinearly with border padding, step by step (Eq. 1 applied to
    labels as if they were colours), and each pixel takes the class with the largest weight.

    Returns the (H, W) uint8 label of each step n = 1..|k|: the dominant class of the source
    pixels that make the propagated frame's pixel -- the ground truth of a JP pair."""
    if label.ndim != 2:
        raise ValueError(f"soft_propagate: label must be (H, W), got shape {label.shape}")
    if k == 0:
        return []
    lab = torch.from_numpy(label.astype(np.int64))
    valid = (lab >= 0) & (lab < num_classes)
    if not bool(torch.all(valid | (lab == ignore_index))):
        raise ValueError(f"soft_propagate: label ids must be 0..{num_classes - 1} or {ignore_index}")
    code = torch.where(valid, lab, torch.full_like(lab, num_classes))
    soft = torch.nn.functional.one_hot(code, num_classes + 1).permute(2, 0, 1)[None].float()
    s = 1 if k > 0 else -1
    out = []
    for n in range(abs(k)):
        m = torch.from_numpy(np.ascontiguousarray(motion_fn(start + n * s, s), np.float32))
        soft = warp(soft, m.permute(2, 0, 1)[None])
        arg = soft[0].argmax(0)
        out.append(torch.where(arg == num_classes, ignore_index, arg).numpy().astype(np.uint8))
    return out


class LabelQuality:
    """Accumulates how a propagated label ``pred`` scores against a ``truth`` label map.

    ``update(pred, truth)``: scored pixels are those labelled (not void) in both; errors within
    ``radius`` px of a truth boundary are counted separately. ``update_image(a, b)`` adds the
    mean absolute difference of two frames (JP: propagated vs real frame). ``summary()`` gives
    accuracy, mIoU (over scored pixels), coverage, boundary shares and image error.
    """

    def __init__(self, num_classes: int = 19, radius: int = 2, ignore_index: int = IGNORE_INDEX):
        self.num_classes, self.radius, self.ignore_index = int(num_classes), int(radius), int(ignore_index)
        self.cm = ConfusionMatrix(self.num_classes, ignore_index=self.ignore_index)
        self.n_truth = self.n_scored = self.n_correct = 0
        self.n_boundary = self.n_boundary_errors = 0
        self.image_abs = 0.0
        self.image_px = 0

    def update(self, pred: np.ndarray, truth: np.ndarray) -> "LabelQuality":
        if pred.shape != truth.shape or pred.ndim != 2:
            raise ValueError(f"LabelQuality.update: pred {pred.shape} and truth {truth.shape} must be equal (H, W)")
        labelled = truth != self.ignore_index
        scored = labelled & (pred != self.ignore_index)
        wrong = scored & (pred != truth)
        edge = boundary_mask(truth, self.radius) & scored
        self.n_truth += int(labelled.sum())
        self.n_scored += int(scored.sum())
        self.n_correct += int(scored.sum() - wrong.sum())
        self.n_boundary += int(edge.sum())
        self.n_boundary_errors += int((wrong & edge).sum())
        self.cm.update(pred[scored], truth[scored])
        return self

    def update_image(self, image: np.ndarray, reference: np.ndarray,
                     mask: np.ndarray | None = None) -> "LabelQuality":
        """Add |image - reference| (grey levels, mean over channels) of a propagated frame, over
        the (H, W) ``mask`` when given (e.g. the pixels its propagated label labels)."""
        if image.shape != reference.shape:
            raise ValueError(f"update_image: shapes {image.shape} and {reference.shape} differ")
        diff = np.abs(image.astype(np.float64) - reference.astype(np.float64)).reshape(*image.shape[:2], -1).mean(-1)
        if mask is not None:
            diff = diff[mask]
        self.image_abs += float(diff.sum())
        self.image_px += int(diff.size)
        return self

    def merge(self, other: "LabelQuality") -> "LabelQuality":
        if (other.num_classes, other.radius, other.ignore_index) != (self.num_classes, self.radius, self.ignore_index):
            raise ValueError("LabelQuality.merge: different num_classes / radius / ignore_index")
        for name in ("n_truth", "n_scored", "n_correct", "n_boundary", "n_boundary_errors",
                     "image_abs", "image_px"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cm.merge(other.cm)
        return self

    def summary(self) -> dict[str, float]:
        """``accuracy``, ``miou``, ``coverage`` (scored / labelled truth pixels), ``boundary_px``
        (share of scored pixels on a boundary), ``boundary_errors`` (share of errors on a
        boundary), ``boundary_acc`` / ``interior_acc``, ``image_error`` (NaN if none added)."""
        nan = float("nan")
        errors = self.n_scored - self.n_correct
        interior = self.n_scored - self.n_boundary
        div = lambda a, b: a / b if b else nan  # noqa: E731
        return {"accuracy": div(self.n_correct, self.n_scored),
                "miou": self.cm.miou() if self.n_scored else nan,
                "coverage": div(self.n_scored, self.n_truth),
                "boundary_px": div(self.n_boundary, self.n_scored),
                "boundary_errors": div(self.n_boundary_errors, errors),
                "boundary_acc": 1 - div(self.n_boundary_errors, self.n_boundary),
                "interior_acc": 1 - div(errors - self.n_boundary_errors, interior),
                "image_error": div(self.image_abs, self.image_px)}


def clip_quality(frames: np.ndarray, labels: np.ndarray, start: int, k_max: int, motion_fn: MotionFn,
                 num_classes: int = 19, radius: int = 2, directions: Iterable[int] = (1, -1),
                 ignore_index: int = IGNORE_INDEX) -> dict[tuple[str, int], LabelQuality]:
    """Propagate (I(start), L(start)) by 1..k_max steps each way and score every step.

    Returns ``{("LP", +-n): q, ("JP", +-n): q}``: LP scores the propagated label against the
    clean ``labels[start +- n]`` of the real frame; JP against ``soft_propagate`` (the label of
    the propagated frame) and adds the propagated frame's difference from the real frame on
    the pixels its label labels (what training sees)."""
    if labels.shape != frames.shape[:3]:
        raise ValueError(f"clip_quality: labels {labels.shape} do not match frames {frames.shape[:3]}")
    out: dict[tuple[str, int], LabelQuality] = {}
    for s in directions:
        images, props = propagate(frames, labels[start], start, s * k_max, motion_fn, ignore_index)
        truths = soft_propagate(labels[start], start, s * k_max, motion_fn, num_classes, ignore_index)
        for n in range(1, k_max + 1):
            off, lab = s * n, props[n - 1]
            new = lambda: LabelQuality(num_classes, radius, ignore_index)  # noqa: E731
            out[("LP", off)] = new().update(lab, labels[start + off])
            out[("JP", off)] = new().update(lab, truths[n - 1]).update_image(images[n - 1], frames[start + off],
                                                                      lab != ignore_index)
    return out
