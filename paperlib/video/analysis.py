"""Small computations behind the GSVNet verdicts: accuracy at equal speed (Fig. 3 / A5) and the
edge-map vs error-map statistics of Fig. A7."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .gsvnet import edge_map


def image_miou_at_speed(image_speed, image_miou, speed) -> np.ndarray:
    """The image-based accuracy-throughput curve (points at several input scales) read at
    ``speed`` by linear interpolation. Outside the curve's range it is clamped to the nearest end:
    a video point faster than the fastest image point is compared with that (slower) point, one
    slower than the slowest with the slowest (which is then faster). ``speed``: FPS or any
    "higher is faster" measure (e.g. 1 / GMACs)."""
    xs, ys = np.asarray(image_speed, float), np.asarray(image_miou, float)
    if xs.shape != ys.shape or xs.size < 1:
        raise ValueError(f"image_speed and image_miou must be equal-length, non-empty, got {xs.shape}, {ys.shape}")
    order = np.argsort(xs)
    return np.interp(np.asarray(speed, float), xs[order], ys[order])


def compare_with_spread(diff: float, spread: float) -> str:
    """'better' / 'worse' when ``|diff|`` exceeds the seed ``spread`` (std; 0 or NaN with one seed),
    else 'within spread'."""
    s = 0.0 if spread is None or not np.isfinite(spread) else float(spread)
    if abs(diff) <= s:
        return "within spread"
    return "better" if diff > 0 else "worse"


@torch.no_grad()
def edge_error_maps(warped: torch.Tensor, label: torch.Tensor,
                    edge_mode: str = "binary") -> tuple[np.ndarray, np.ndarray]:
    """Fig. A7 for one frame: the edge map ``E_t`` of the warped 1/8 segmentation (``edge_map``,
    upsampled nearest to the label) and the error map (argmax of the bilinearly upsampled warped
    logits != label), both flattened over the labelled pixels. ``warped`` (1, C, h, w) logits,
    ``label`` (H, W) with 255 = void. For ``edge_mode="sigmoid"`` the map is ``|E - 0.5| * 2``
    (0 on flat regions, towards 1 at class changes of either sign)."""
    size = tuple(label.shape[-2:])
    e = edge_map(warped, edge_mode)
    if edge_mode == "sigmoid":
        e = (e - 0.5).abs() * 2
    e = F.interpolate(e, size=size, mode="nearest")[0, 0]
    pred = F.interpolate(warped, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
    valid = label != 255
    return e[valid].cpu().numpy().astype(np.float64), (pred != label)[valid].cpu().numpy().astype(np.float64)


def edge_error_stats(edge: np.ndarray, error: np.ndarray) -> dict:
    """Pearson correlation of an edge map and an error map (pixels pooled), and the error rate on
    edge pixels (edge > 0.5) vs elsewhere."""
    edge, error = np.asarray(edge, float).ravel(), np.asarray(error, float).ravel()
    if edge.shape != error.shape or edge.size < 2:
        raise ValueError(f"edge and error maps must have the same >= 2 pixels, got {edge.shape}, {error.shape}")
    on = edge > 0.5
    corr = float(np.corrcoef(edge, error)[0, 1]) if edge.std() > 0 and error.std() > 0 else float("nan")
    rate_on = float(error[on].mean()) if on.any() else float("nan")
    rate_off = float(error[~on].mean()) if (~on).any() else float("nan")
    return {"correlation": corr, "error_rate_on_edges": rate_on, "error_rate_elsewhere": rate_off,
            "edge_share": float(on.mean()), "errors_on_edges": float(error[on].sum() / max(error.sum(), 1))}
