"""Segmentation losses and the one hook the engine calls: ``loss_fn(output, batch) -> scalar``.

``output`` is what the model returned: logits (N, C, h, w) or a dict with ``"out"`` (and
optionally ``"aux"``) logits; ``batch`` is the collated batch dict (``"label"`` (N, H, W) int64
train ids, 255 = ignore, plus whatever else the dataset put there, e.g. relaxation targets).
Logits smaller than the label are upsampled bilinearly first, and every loss is computed in
float32 (safe under bf16/fp16 autocast).

Later issues add losses (VPLR boundary relaxation, self-training terms) with::

    @register_loss("my_loss")
    def _my_loss(weight=1.0):            # options come from cfg.loss_options
        return lambda output, batch: ...
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

IGNORE_INDEX = 255

LossFn = Callable[[object, dict], torch.Tensor]
#: name -> factory(**options) returning a ``LossFn``.
LOSSES: dict[str, Callable[..., LossFn]] = {}


def register_loss(name: str) -> Callable:
    """Decorator: register a loss factory under ``name``."""
    def deco(factory):
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        LOSSES[name] = factory
        return factory
    return deco


def build_loss(name: str, **options) -> LossFn:
    """The loss callable ``(output, batch) -> scalar`` registered as ``name``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    try:
        return LOSSES[name](**options)
    except TypeError as e:
        raise ValueError(f"bad options for loss {name!r}: {e}") from None


def main_logits(output) -> torch.Tensor:
    """The main logits of a model output (a tensor, or the ``"out"`` entry of a dict)."""
    return output["out"] if isinstance(output, dict) else output


def match_size(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Logits (N, C, h, w) as float32, bilinearly resized to the target's (H, W) if needed."""
    logits = logits.float()
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def _zero(logits: torch.Tensor) -> torch.Tensor:
    """A zero loss that still touches every logit (keeps DDP's gradient graph complete)."""
    return logits.sum() * 0.0


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over non-ignored pixels (0 when every pixel is ignored)."""
    logits = match_size(logits, target)
    if not (target != ignore_index).any():
        return _zero(logits)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, thresh: float = 0.7,
                       min_kept: int = 100000, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Online hard example mining cross-entropy (the OHEM loss self-training/CSST adopt, Sec. 4).

    Let p be each valid pixel's predicted probability of its true class and p_(k) the
    ``min_kept``-th smallest p in the batch. Pixels with ``p < thresh`` or ``p <= p_(k)`` are
    kept, i.e. the threshold is ``max(p_(k), thresh)``: every pixel the model is unsure about,
    and at least the ``min_kept`` hardest ones. When there are no more than ``min_kept`` valid
    pixels, all are kept. The loss is the mean cross-entropy over kept pixels.

    Matches the widely used HRNet / openseg ``OhemCrossEntropy`` (sort p, threshold at
    ``max(p[min_kept], thresh)``) except on exact ties, and except that their version drops the
    most confident pixel when fewer than ``min_kept`` are valid. Selection is not differentiated.
    """
    if min_kept < 0 or not 0.0 <= thresh <= 1.0:
        raise ValueError(f"ohem_cross_entropy: need min_kept >= 0 and 0 <= thresh <= 1, "
                         f"got min_kept={min_kept}, thresh={thresh}")
    logits = match_size(logits, target)
    pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    n_valid = int(valid.sum())
    if n_valid == 0:
        return _zero(logits)
    with torch.no_grad():
        p = torch.exp(-pixel_loss)  # softmax probability of the true class
        if min_kept >= n_valid:
            keep = valid
        else:
            keep = valid & (p < thresh)
            if min_kept > 0:
                kth = p[valid].kthvalue(min_kept).values
                keep |= valid & (p <= kth)
    return pixel_loss[keep].mean()


def _with_aux(fn: Callable, aux_weight: float) -> LossFn:
    """Wrap ``fn(logits, target)`` into a ``LossFn``; an ``"aux"`` output adds ``aux_weight *`` its loss."""
    def loss(output, batch: dict) -> torch.Tensor:
        target = batch["label"]
        total = fn(main_logits(output), target)
        if isinstance(output, dict) and output.get("aux") is not None and aux_weight:
            total = total + aux_weight * fn(output["aux"], target)
        return total
    return loss


@register_loss("cross_entropy")
def _cross_entropy(ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4) -> LossFn:
    return _with_aux(lambda x, t: cross_entropy(x, t, ignore_index), aux_weight)


@register_loss("ohem")
def _ohem(thresh: float = 0.7, min_kept: int = 100000, ignore_index: int = IGNORE_INDEX,
          aux_weight: float = 0.4) -> LossFn:
    return _with_aux(lambda x, t: ohem_cross_entropy(x, t, thresh, min_kept, ignore_index), aux_weight)
