"""Segmentation metrics from a confusion matrix, matching Cityscapes' official pixel-level evaluation.

``ConfusionMatrix`` accumulates ``mat[target, pred]`` with one ``torch.bincount`` per update, on
the device of the inputs (so a GPU evaluation never copies predictions to the host). One extra
column counts pixels whose *prediction* is outside ``0..num_classes-1`` (e.g. a model or a
converted prediction that outputs void): like ``cityscapesscripts``' ``evalPixelLevelSemanticLabeling``
they are false negatives of the target class and false positives of no class.

IoU of class c = TP / (TP + FP + FN) (Everingham et al.; Cityscapes' ``getIouScoreForLabel``),
NaN when the class is absent from both prediction and target; mIoU is the mean over non-NaN
classes. Category IoU merges classes into categories first (``getIouScoreForCategory``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def _as_tensor(x, device=None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)
    return t.to(device) if device is not None else t


class ConfusionMatrix:
    """``num_classes x (num_classes + 1)`` pixel counts: rows = target, columns = prediction
    (last column: predictions outside the class range). Target pixels equal to
    ``ignore_index`` (or outside ``0..num_classes-1``) are not counted.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.device = torch.device(device) if device is not None else None
        self.mat: torch.Tensor | None = None

    # --- accumulation -----------------------------------------------------------------------
    def update(self, pred, target) -> "ConfusionMatrix":
        """Add a batch: ``pred`` and ``target`` of class ids, same shape (any), tensor or array."""
        p = _as_tensor(pred, self.device)
        t = _as_tensor(target, p.device if self.device is None else self.device)
        if p.shape != t.shape:
            raise ValueError(f"pred shape {tuple(p.shape)} != target shape {tuple(t.shape)}")
        if p.is_floating_point() or t.is_floating_point():
            raise ValueError("pred and target must hold integer class ids (got floating point; "
                             "take argmax over the class dimension first)")
        c = self.num_classes
        p, t = p.reshape(-1).long(), t.reshape(-1).long()
        keep = (t >= 0) & (t < c) & (t != self.ignore_index)
        p, t = p[keep], t[keep]
        p = torch.where((p >= 0) & (p < c), p, torch.full_like(p, c))  # out-of-range -> void column
        counts = torch.bincount(t * (c + 1) + p, minlength=c * (c + 1)).view(c, c + 1)
        self._ensure(counts.device)
        self.mat += counts
        return self

    def _ensure(self, device: torch.device) -> None:
        if self.mat is None:
            self.mat = torch.zeros(self.num_classes, self.num_classes + 1, dtype=torch.int64, device=device)

    def reset(self) -> None:
        if self.mat is not None:
            self.mat.zero_()

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts (e.g. from another process or evaluation shard)."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError("cannot merge confusion matrices with different num_classes/ignore_index")
        if other.mat is not None:
            self._ensure(other.mat.device)
            self.mat += other.mat.to(self.mat.device)
        return self

    def reduce_(self) -> "ConfusionMatrix":
        """Sum the counts over all ranks in place (no-op unless torch.distributed is initialised)."""
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            self._ensure(self.device or torch.device("cpu"))
            dist.all_reduce(self.mat, op=dist.ReduceOp.SUM)
        return self

    # --- read-out ---------------------------------------------------------------------------
    def counts(self) -> np.ndarray:
        """The full (C, C + 1) int64 matrix as numpy (zeros before any update)."""
        if self.mat is None:
            return np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)
        return self.mat.cpu().numpy()

    @property
    def matrix(self) -> np.ndarray:
        """The (C, C) confusion matrix, rows = target, columns = prediction."""
        return self.counts()[:, : self.num_classes]

    def _tp_fp_fn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.counts().astype(np.float64)
        tp = np.diag(m[:, : self.num_classes])
        return tp, m[:, : self.num_classes].sum(0) - tp, m.sum(1) - tp

    def per_class_iou(self) -> np.ndarray:
        """TP / (TP + FP + FN) per class; NaN for a class absent from prediction and target."""
        tp, fp, fn = self._tp_fp_fn()
        return _safe_div(tp, tp + fp + fn)

    def miou(self) -> float:
        """Mean IoU over the classes that are not NaN (NaN if all are)."""
        return _nanmean(self.per_class_iou())

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels."""
        m = self.counts()
        total = m.sum()
        return float(np.trace(m[:, : self.num_classes]) / total) if total else float("nan")

    def per_class_accuracy(self) -> np.ndarray:
        """Recall per class, TP / (TP + FN); NaN for classes absent from the target."""
        tp, _, fn = self._tp_fp_fn()
        return _safe_div(tp, tp + fn)

    def mean_accuracy(self) -> float:
        """Mean of the per-class accuracies over classes present in the target."""
        return _nanmean(self.per_class_accuracy())

    def category_iou(self, categories: Sequence[str] | None = None) -> dict[str, float]:
        """IoU per category after merging classes (Cityscapes' category IoU).

        ``categories``: the category name of each class (default: Cityscapes' 7 categories of
        the 19 train ids). TP counts pixels whose target and prediction are both in the
        category, so confusing car with truck is no error at this level.
        """
        if categories is None:
            from paperlib.data.labels import CITYSCAPES_CATEGORIES
            categories = CITYSCAPES_CATEGORIES
        if len(categories) != self.num_classes:
            raise ValueError(f"categories has {len(categories)} entries, expected {self.num_classes}")
        m = self.counts().astype(np.float64)
        out = {}
        for name in dict.fromkeys(categories):  # unique, in first-seen order
            ids = [i for i, c in enumerate(categories) if c == name]
            tp = m[np.ix_(ids, ids)].sum()
            fn = m[ids].sum() - tp
            fp = m[:, ids].sum() - tp
            out[name] = float(_safe_div(np.array(tp), np.array(tp + fp + fn)))
        return out

    def summary(self) -> dict[str, float]:
        """mIoU, pixel accuracy and mean accuracy in one dict."""
        return {"miou": self.miou(), "pixel_accuracy": self.pixel_accuracy(),
                "mean_accuracy": self.mean_accuracy()}

    # --- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index,
                "mat": torch.from_numpy(self.counts())}

    def load_state_dict(self, state: dict) -> None:
        if (state["num_classes"], state["ignore_index"]) != (self.num_classes, self.ignore_index):
            raise ValueError("confusion-matrix state has a different num_classes/ignore_index")
        mat = torch.as_tensor(state["mat"], dtype=torch.int64)
        if tuple(mat.shape) != (self.num_classes, self.num_classes + 1):
            raise ValueError(f"confusion-matrix state has shape {tuple(mat.shape)}, expected "
                             f"{(self.num_classes, self.num_classes + 1)}")
        self.mat = mat.to(self.device) if self.device is not None else mat.clone()

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, miou={self.miou():.4f})"


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


# --- Boundary F-score ---------------------------------------------------------------------------
def label_edges(label: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Pixels of an (H, W) label map whose right or lower neighbour has another label (both not
    ``ignore_index``), marked on both sides of the edge: a one- or two-pixel-wide contour."""
    lab = np.asarray(label)
    valid = lab != ignore_index
    edge = np.zeros(lab.shape, dtype=bool)
    for a, b in ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])):
        d = (lab[a] != lab[b]) & valid[a] & valid[b]
        edge[a] |= d
        edge[b] |= d
    return edge


def boundary_match_counts(pred, target, tol: int = 2, ignore_index: int = 255) -> np.ndarray:
    """The counts behind the boundary F-score of one frame (Csurka et al., BMVC 2013):
    ``[predicted edge pixels within tol of a true edge, predicted edge pixels, true edge pixels
    within tol of a predicted edge, true edge pixels]``. Distances are Chebyshev (a
    ``(2 tol + 1)``-square neighbourhood); predictions on ignored pixels count nothing.
    Sum the counts over frames and pass them to :func:`boundary_f_score`."""
    import cv2
    p, t = np.asarray(pred).astype(np.int64), np.asarray(target).astype(np.int64)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"boundary_match_counts: pred {p.shape} and target {t.shape} must be equal (H, W)")
    p = np.where(t == ignore_index, ignore_index, p)
    ep, et = label_edges(p, ignore_index), label_edges(t, ignore_index)
    kernel = np.ones((2 * int(tol) + 1,) * 2, np.uint8)
    near_t = cv2.dilate(et.astype(np.uint8), kernel).astype(bool)
    near_p = cv2.dilate(ep.astype(np.uint8), kernel).astype(bool)
    return np.array([(ep & near_t).sum(), ep.sum(), (et & near_p).sum(), et.sum()], dtype=np.int64)


def boundary_f_score(counts: Sequence[int]) -> float:
    """F = 2PR / (P + R) from summed :func:`boundary_match_counts` (P: share of predicted edge
    pixels near a true edge, R: share of true edge pixels near a predicted edge); NaN without
    edges, 0 when nothing matches."""
    hit_p, n_p, hit_t, n_t = (int(c) for c in counts)
    if n_p == 0 or n_t == 0:
        return float("nan")
    precision, recall = hit_p / n_p, hit_t / n_t
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
