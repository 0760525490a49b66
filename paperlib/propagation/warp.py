"""The sampling operation T of VPLR Eq. 1-3: backward warping by a per-pixel motion field.

Convention (the world's ``flow_bw`` and OpenCV's ``calcOpticalFlow(a, b)`` use the same one): a
motion ``m`` (H, W, 2) in pixels (x, y) warps ``src`` into ``out(p) = src(p + m(p))``.
Images are sampled bilinearly (border pixels repeat outside the frame); labels with nearest
neighbour, void stays void and a pixel sampled from outside the frame becomes void.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..data.labels import IGNORE_INDEX


def _grid(motion: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) pixel motion -> grid_sample grid (N, H, W, 2) in [-1, 1] (align_corners=True)."""
    N, two, H, W = motion.shape
    if two != 2:
        raise ValueError(f"motion must have 2 channels (x, y), got shape {tuple(motion.shape)}")
    ys, xs = torch.meshgrid(torch.arange(H, device=motion.device, dtype=motion.dtype),
                            torch.arange(W, device=motion.device, dtype=motion.dtype), indexing="ij")
    gx = (xs + motion[:, 0]) * (2.0 / max(W - 1, 1)) - 1.0
    gy = (ys + motion[:, 1]) * (2.0 / max(H - 1, 1)) - 1.0
    return torch.stack([gx, gy], dim=-1)


def warp(src: torch.Tensor, motion: torch.Tensor, mode: str = "bilinear",
         padding_mode: str = "border") -> torch.Tensor:
    """``out(p) = src(p + motion(p))`` for float ``src`` (N, C, H, W), ``motion`` (N, 2, H, W)."""
    if src.shape[0] != motion.shape[0] or src.shape[-2:] != motion.shape[-2:]:
        raise ValueError(f"warp: src {tuple(src.shape)} and motion {tuple(motion.shape)} disagree")
    grid = _grid(motion.to(src.dtype) if src.is_floating_point() else motion.float())
    return F.grid_sample(src, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def warp_labels(labels: torch.Tensor, motion: torch.Tensor,
                ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Nearest-neighbour warp of (N, H, W) integer labels; void and out-of-frame give void.

    Labels are shifted by one so that 0 means void, sampled with zero padding (outside = void)
    and shifted back: one ``grid_sample`` call, exact for ids < 2**24.
    """
    lab = labels.long()
    code = torch.where(lab == ignore_index, 0, lab + 1).to(torch.float32).unsqueeze(1)
    out = warp(code, motion.float(), mode="nearest", padding_mode="zeros").squeeze(1).round().long()
    return torch.where(out == 0, ignore_index, out - 1).to(labels.dtype)


# --- numpy conveniences: one frame (H, W, 3) uint8 / label (H, W) / motion (H, W, 2) ----------

def _motion_t(motion: np.ndarray) -> torch.Tensor:
    m = np.asarray(motion, dtype=np.float32)
    if m.ndim != 3 or m.shape[2] != 2:
        raise ValueError(f"motion must be (H, W, 2), got {m.shape}")
    return torch.from_numpy(m).permute(2, 0, 1).unsqueeze(0)


def warp_image_np(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Bilinear backward warp of an (H, W, C) uint8 or float image; returns the input's dtype."""
    if image.shape[:2] != motion.shape[:2]:
        raise ValueError(f"warp: image {image.shape} and motion {motion.shape} sizes differ")
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    out = warp(x, _motion_t(motion))[0].permute(1, 2, 0).numpy()
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(image.dtype)


def warp_label_np(label: np.ndarray, motion: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Nearest backward warp of an (H, W) label map; void and out-of-frame samples are void."""
    if label.shape != motion.shape[:2]:
        raise ValueError(f"warp: label {label.shape} and motion {motion.shape} sizes differ")
    out = warp_labels(torch.from_numpy(label.astype(np.int64))[None], _motion_t(motion), ignore_index)
    return out[0].numpy().astype(label.dtype)
