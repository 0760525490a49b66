"""Inference: whole-image, sliding-window and multi-scale (+ flip) logits, and ``evaluate``."""
from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import EVAL_MODES
from ..losses import main_logits
from ..progress import tqdm
from .data import _pair, collate
from .distributed import _autocast


# =============================================================================================
# Inference
# =============================================================================================


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Model logits as float32 at the resolution of ``x``."""
    y = main_logits(model(x)).float()
    if y.shape[-2:] != x.shape[-2:]:
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return y


def _starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, length - window + 1, stride))
    return starts if starts[-1] == length - window else starts + [length - window]


def _sliding(model: nn.Module, x: torch.Tensor, crop: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Overlapping ``crop`` windows every ``stride`` pixels (the last one flush with the border);
    each pixel's logits are the mean over the windows that cover it."""
    H, W = x.shape[-2:]
    ch, cw = min(crop[0], H), min(crop[1], W)
    out, count = None, x.new_zeros((1, 1, H, W), dtype=torch.float32)
    for y0 in _starts(H, ch, stride[0]):
        for x0 in _starts(W, cw, stride[1]):
            y = _forward(model, x[..., y0:y0 + ch, x0:x0 + cw])
            if out is None:
                out = y.new_zeros((x.shape[0], y.shape[1], H, W))
            out[..., y0:y0 + ch, x0:x0 + cw] += y
            count[..., y0:y0 + ch, x0:x0 + cw] += 1
    return out / count


@torch.no_grad()
def predict_logits(model: nn.Module, image: torch.Tensor, mode: str = "whole",
                   scales: Iterable[float] = (0.5, 1.0, 2.0), flip: bool = False,
                   crop: int | tuple[int, int] | None = None,
                   stride: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Logits (N, C, H, W) float32 at the resolution of ``image`` (N, 3, H, W): the one inference
    function behind ``evaluate``.

    - ``whole``: one forward pass over the full image.
    - ``slide``: overlapping ``crop`` windows, ``stride`` apart (default 2/3 of the window),
      logits averaged where windows overlap.
    - ``multiscale``: the image resized by each of ``scales`` (sliding windows where it exceeds
      ``crop``, if given), logits resized back to full resolution and averaged (the inference of
      VPLR Sec. 4.4 / CSST Sec. 4.6: scales 0.5, 1.0, 2.0, flipped, overlapping tiles).

    ``flip`` adds the horizontally flipped image in every mode (its logits flipped back).
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of: {', '.join(EVAL_MODES)}")
    crop, stride = _pair(crop), _pair(stride)
    if mode == "slide" and crop is None:
        raise ValueError("mode='slide' needs crop (the window size)")
    stride = stride or (crop and (max(1, 2 * crop[0] // 3), max(1, 2 * crop[1] // 3)))
    scales = tuple(scales) if mode == "multiscale" else (1.0,)
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be positive, got {scales}")
    H, W = image.shape[-2:]
    total, n = None, 0
    for s in scales:
        x = image if s == 1.0 else F.interpolate(
            image, size=(max(1, round(H * s)), max(1, round(W * s))), mode="bilinear", align_corners=False)
        tiled = mode != "whole" and crop is not None and (x.shape[-2] > crop[0] or x.shape[-1] > crop[1])
        for flipped in (False, True) if flip else (False,):
            xi = x.flip(-1) if flipped else x
            y = _sliding(model, xi, crop, stride) if tiled else _forward(model, xi)
            y = y.flip(-1) if flipped else y
            if y.shape[-2:] != (H, W):
                y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
            total = y if total is None else total + y
            n += 1
    return total / n


def _shard(dataset: Dataset) -> tuple[Dataset, bool]:
    """This rank's share ``rank::world`` of an evaluation set (no padding, no duplicates)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dataset, False
    idx = list(range(dist.get_rank(), len(dataset), dist.get_world_size()))
    return torch.utils.data.Subset(dataset, idx), True


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset | DataLoader, num_classes: int, mode: str = "whole",
             scales: Iterable[float] = (0.5, 1.0, 2.0), flip: bool = False,
             crop: int | tuple[int, int] | None = None, stride: int | tuple[int, int] | None = None,
             device: str | torch.device | None = None, amp: str = "off", ignore_index: int = 255,
             channels_last: bool = False, progress: bool = False) -> dict:
    """mIoU, per-class IoU and pixel accuracy of ``model`` on ``data`` (items: normalised float
    ``image`` (3, H, W) and int64 ``label`` (H, W)), through ``predict_logits``.

    A dataset is loaded one image at a time; under DDP each rank evaluates its shard and the
    confusion matrices are summed. A ``DataLoader`` is used as given (shard it yourself).
    Returns ``{"miou", "per_class_iou", "pixel_accuracy", "confusion"}`` (the ``ConfusionMatrix``).
    """
    from ..metrics import ConfusionMatrix
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if isinstance(data, DataLoader):
        loader, sharded = data, False
    else:
        data, sharded = _shard(data)
        loader = DataLoader(data, batch_size=1, shuffle=False, collate_fn=collate)
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    was_training = model.training
    model.eval()
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        image = batch["image"]
        if not image.is_floating_point():
            raise ValueError("evaluate expects normalised float images: build the dataset with "
                             "paperlib.data.transforms.build_eval_transform()")
        image = image.to(device, non_blocking=True)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = predict_logits(model, image, mode, scales, flip, crop, stride)
        cm.update(logits.argmax(1), batch["label"].to(device))
    if sharded:
        cm.reduce_()
    model.train(was_training)
    return {"miou": float(cm.miou()), "per_class_iou": [float(v) for v in cm.per_class_iou()],
            "pixel_accuracy": float(cm.pixel_accuracy()), "confusion": cm}
