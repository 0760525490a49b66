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

from .data.labels import IGNORE_INDEX

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


# --- VPLR boundary label relaxation (Sec. 3.4, Eq. 4-5) ---------------------------------------

#: Classes the public VPLR code keeps one-hot (its ``--strictborderclass``): pole, traffic
#: light, traffic sign, person, rider, motorcycle, bicycle (Cityscapes train ids).
VPLR_STRICT_CLASSES: tuple[int, ...] = (5, 6, 7, 11, 12, 17, 18)


def _float_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Like ``match_size`` but keeps float64 (for gradcheck); everything else goes to float32."""
    if logits.dtype != torch.float64:
        logits = logits.float()
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def relaxation_window(target: torch.Tensor, num_classes: int, window: int = 3,
                      ignore_index: int = IGNORE_INDEX):
    """Smallest and largest valid class in each pixel's ``window`` x ``window`` neighbourhood.

    ``target`` (N, H, W) int; each image is pooled on its own (no cross-image leakage) and
    void / out-of-frame neighbours are not classes. Returns ``(lo, hi)`` (N, H, W) int64 with
    ``hi = -1`` where the window holds no valid class; ``lo == hi`` means ``|N| = 1``.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"relaxation window must be a positive odd size, got {window}")
    t = target.long()
    valid = (t != ignore_index) & (t >= 0) & (t < num_classes)
    if (~valid & (t != ignore_index)).any():
        bad = torch.unique(t[~valid & (t != ignore_index)])[:10].tolist()
        raise ValueError(f"relaxation: label ids {bad} outside 0..{num_classes - 1} and {ignore_index}")
    f = t.to(torch.float32).unsqueeze(1)
    pad = window // 2
    hi = F.max_pool2d(torch.where(valid.unsqueeze(1), f, -1.0), window, 1, pad)
    lo = -F.max_pool2d(torch.where(valid.unsqueeze(1), -f, -float(num_classes)), window, 1, pad)
    return lo.squeeze(1).long(), hi.squeeze(1).long()


def _window_classes(target: torch.Tensor, flat: torch.Tensor, num_classes: int, window: int,
                    ignore_index: int) -> torch.Tensor:
    """(M, C) bool: the set N of valid classes in the window of each pixel ``flat`` (n*H*W+y*W+x)."""
    N, H, W = target.shape
    pad = window // 2
    t = torch.where((target >= 0) & (target < num_classes), target.long(), num_classes)
    t = F.pad(t, (pad, pad, pad, pad), value=num_classes)  # outside the frame: no class
    n, rest = flat // (H * W), flat % (H * W)
    y, x = rest // W, rest % W
    d = torch.arange(window, device=flat.device)
    ys = (y[:, None] + d[None, :])[:, :, None]  # padded coordinates of the window rows / cols
    xs = (x[:, None] + d[None, :])[:, None, :]
    labs = t[n[:, None, None], ys, xs].reshape(len(flat), window * window)
    mask = torch.zeros(len(flat), num_classes + 1, dtype=torch.bool, device=flat.device)
    mask.scatter_(1, labs, True)
    return mask[:, :num_classes]


class _RelaxedNLL(torch.autograd.Function):
    """sum_i w_i * (logsumexp_c x_ic - logsumexp_{c in N_i} x_ic) with an analytic backward.

    Pixels with ``cls >= 0`` have ``N = {cls}`` (plain CE); pixels listed in ``flat`` have
    ``N = mask`` (|N| > 1); all others contribute nothing. Gradient per pixel (Eq. 5):
    ``w * (p - 1[c in N] p / sum_N p)``.
    """

    @staticmethod
    def forward(ctx, x, cls, w, flat, mask):
        N, C, H, W = x.shape
        lse = torch.logsumexp(x, 1)
        picked = x.gather(1, cls.clamp(min=0).unsqueeze(1)).squeeze(1)
        simple = cls >= 0
        total = (torch.where(simple, lse - picked, 0.0) * w).sum()
        xr = None
        if len(flat):
            n, s = flat // (H * W), flat % (H * W)
            xr = x.view(N, C, H * W)[n, :, s].masked_fill(~mask, -float("inf"))  # (M, C)
            lse_n = torch.logsumexp(xr, 1)
            total = total + ((lse.view(-1)[flat] - lse_n) * w.view(-1)[flat]).sum()
            xr = torch.exp(xr - lse_n[:, None])  # p restricted to N, renormalised: p / sum_N p
        ctx.save_for_backward(x, lse, cls, w, flat, xr)
        return total

    @staticmethod
    def backward(ctx, g):
        x, lse, cls, w, flat, q = ctx.saved_tensors
        N, C, H, W = x.shape
        counted = (cls >= 0).to(x.dtype)
        if len(flat):
            counted.view(-1)[flat] = 1.0
        scale = (w * counted * g)  # (N, H, W)
        grad = torch.sub(x, lse.unsqueeze(1)).exp_().mul_(scale.unsqueeze(1))  # p * scale
        grad.scatter_add_(1, cls.clamp(min=0).unsqueeze(1),
                          -(scale * (cls >= 0)).unsqueeze(1))  # - 1[c = cls]
        if len(flat):
            n, s = flat // (H * W), flat % (H * W)
            gv = grad.view(N, C, H * W)
            gv[n, :, s] = gv[n, :, s] - q * scale.view(-1)[flat][:, None]
        return grad, None, None, None, None


def boundary_relaxation_loss(logits: torch.Tensor, target: torch.Tensor, window: int = 3,
                             ignore_index: int = IGNORE_INDEX, strict_classes=None,
                             relax: bool = True, boundary_weight: float = 2.0) -> torch.Tensor:
    """VPLR boundary label relaxation (Sec. 3.4, Eq. 4-5): ``-log sum_{c in N} softmax(x)_c``.

    N is the set of valid classes in the pixel's ``window`` x ``window`` neighbourhood of
    ``target`` (void and out-of-frame neighbours are not in N; each image's window comes from
    that image only, computed here on the logits' device). Where |N| = 1 this is exactly
    cross-entropy; pixels whose window holds no valid class are ignored (a void pixel next to a
    valid one is trained towards its neighbours' classes, as in the public code). The loss is
    the mean over the pixels that count. It is evaluated as ``logsumexp(all) - logsumexp(N)`` in
    float32 (finite for any finite logits, also from bf16/fp16), with the analytic gradient
    ``p - 1[c in N] p / sum_N p``, and the relaxed term is only formed where |N| > 1.

    Options of the public reference:
    - ``strict_classes``: train ids whose pixels keep a one-hot target (e.g.
      ``VPLR_STRICT_CLASSES``); their class may still enter a neighbour's N.
    - ``relax=False`` (the state after the switch-off epoch): plain cross-entropy over valid
      pixels, with boundary pixels (|N| > 1) weighted by ``boundary_weight`` (the public code
      doubles them), averaged over valid pixels.
    """
    x = _float_logits(logits, target)
    N, C, H, W = x.shape
    if target.shape != (N, H, W):
        raise ValueError(f"relaxation: target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    target = target.to(x.device)
    lo, hi = relaxation_window(target, C, window, ignore_index)
    own = target.long()
    own_valid = (own != ignore_index)
    boundary = (lo < hi)
    if not relax:
        cls = torch.where(own_valid, own, -1)
        w = torch.where(boundary, float(boundary_weight), 1.0).to(x.dtype)
        flat = torch.empty(0, dtype=torch.long, device=x.device)
        mask = torch.empty(0, C, dtype=torch.bool, device=x.device)
        count = own_valid.sum()
    else:
        single = (lo == hi) & (hi >= 0)
        if strict_classes:
            ids = torch.as_tensor(list(strict_classes), dtype=torch.long)
            if ((ids < 0) | (ids >= C)).any():
                raise ValueError(f"relaxation: strict_classes {ids.tolist()} outside 0..{C - 1}")
            strict = torch.zeros(C + 1, dtype=torch.bool, device=x.device)
            strict[ids.to(x.device)] = True
            is_strict = own_valid & strict[torch.where(own_valid, own, C).clamp(max=C)]
            boundary &= ~is_strict
        else:
            is_strict = torch.zeros_like(own_valid)
        cls = torch.where(single, lo, torch.where(is_strict, own, -1))
        flat = boundary.view(-1).nonzero().squeeze(1)
        mask = _window_classes(target, flat, C, window, ignore_index)
        w = torch.ones((), dtype=x.dtype, device=x.device).expand(N, H, W)
        count = (hi >= 0).sum()
    if int(count) == 0:
        return _zero(x)
    return _RelaxedNLL.apply(x, cls, w, flat, mask) / count


def boundary_relaxation_loss_naive(logits: torch.Tensor, target: torch.Tensor, window: int = 3,
                                   ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The straightforward Eq. 5 (one-hot, window max-pool, masked logsumexp, autograd backward).

    Same value as ``boundary_relaxation_loss`` (no strict classes); kept as the reference that
    tests check the fast version against and that ``benchmarks/bench_relaxation.py`` times.
    """
    x = _float_logits(logits, target)
    C = x.shape[1]
    t = target.long().to(x.device)
    onehot = F.one_hot(torch.where(t == ignore_index, C, t), C + 1)[..., :C]
    onehot = onehot.permute(0, 3, 1, 2).to(x.dtype)
    in_n = F.max_pool2d(onehot, window, 1, window // 2) > 0  # (N, C, H, W), per image
    counted = in_n.any(1)
    if not counted.any():
        return _zero(x)
    lse_n = torch.logsumexp(x.masked_fill(~in_n, -float("inf")), 1)
    loss = torch.logsumexp(x, 1) - lse_n
    return loss[counted].mean()


def _batch_epoch(batch: dict, epoch_fn: Callable | None):
    """The current epoch from ``batch["epoch"]`` (int or tensor) or ``epoch_fn()``; None if unknown."""
    if "epoch" in batch:
        e = batch["epoch"]
        return int(e.max()) if torch.is_tensor(e) else int(e)
    return int(epoch_fn()) if epoch_fn is not None else None


@register_loss("relaxation")
def _relaxation(window: int = 3, ignore_index: int = IGNORE_INDEX, strict_classes=None,
                switch_off_epoch: int | None = None, boundary_weight: float = 2.0,
                aux_weight: float = 0.4, epoch_fn: Callable | None = None) -> LossFn:
    """Boundary relaxation for epochs ``< switch_off_epoch`` (always, when None), then CE with
    boundary pixels weighted ``boundary_weight``. The epoch comes from ``batch["epoch"]`` or
    ``epoch_fn()``; a switch-off epoch without either is an error rather than a silent no-op."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"relaxation: window must be a positive odd size, got {window}")
    if strict_classes == "vplr":
        strict_classes = VPLR_STRICT_CLASSES

    def fn(batch):
        relax = True
        if switch_off_epoch is not None:
            epoch = _batch_epoch(batch, epoch_fn)
            if epoch is None:
                raise ValueError("relaxation: switch_off_epoch needs batch['epoch'] or epoch_fn")
            relax = epoch < switch_off_epoch
        return lambda x, t: boundary_relaxation_loss(x, t, window, ignore_index, strict_classes,
                                                     relax, boundary_weight)

    def loss(output, batch: dict) -> torch.Tensor:
        return _with_aux(fn(batch), aux_weight)(output, batch)
    return loss


# --- Self-training alternatives (CSST Sec. 3.1.1, Eq. 4, 6, 7) -------------------------------

#: Label id meaning "unlabelled pixel, to be pseudo-labelled online by the model itself"
#: (consistency regularization, CSST Eq. 4). Padding stays ``IGNORE_INDEX``.
ONLINE_LABEL = 254


def _with_aux_batch(fn: Callable, aux_weight: float) -> LossFn:
    """Wrap ``fn(logits, batch)`` into a ``LossFn``; an ``"aux"`` output adds ``aux_weight *`` its loss."""
    def loss(output, batch: dict) -> torch.Tensor:
        total = fn(main_logits(output), batch)
        if isinstance(output, dict) and output.get("aux") is not None and aux_weight:
            total = total + aux_weight * fn(output["aux"], batch)
        return total
    return loss


def soft_pseudo_label_loss(logits: torch.Tensor, target: torch.Tensor,
                           soft_index: torch.Tensor | None = None, soft_prob: torch.Tensor | None = None,
                           ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Soft pseudo-label cross-entropy (CSST Eq. 6): ``-sum_k q_k log softmax(x)_{c_k}``.

    ``soft_index`` / ``soft_prob`` (N, k, H, W) are the teacher's top-k classes and their
    probabilities (any dtype, e.g. uint8 quantised: only ratios matter, since ``q`` is ``soft_prob``
    renormalised over the k stored classes). A pixel counts iff ``target != ignore_index``; where
    its stored probabilities sum to 0 (or no soft targets are given at all) its target is the hard
    one-hot ``target`` (real labels, Eq. 6's first term), so a top-1 probability of 1 is exactly
    cross-entropy. Mean over counted pixels, in float32 (safe from bf16 / fp16 logits).
    """
    x = match_size(logits, target)
    valid = target != ignore_index
    if not valid.any():
        return _zero(x)
    logp = torch.log_softmax(x, 1)
    hard = -logp.gather(1, torch.where(valid, target, 0).long().unsqueeze(1)).squeeze(1)
    if soft_index is None or soft_prob is None:
        return hard[valid].mean()
    if soft_index.shape != soft_prob.shape or soft_index.shape[0] != x.shape[0] \
            or soft_index.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"soft_pseudo_label: soft_index {tuple(soft_index.shape)} / soft_prob "
                         f"{tuple(soft_prob.shape)} must both be (N, k, H, W) matching label "
                         f"{tuple(target.shape)}")
    idx = soft_index.long()
    prob = soft_prob.float() * ((idx >= 0) & (idx < x.shape[1]))  # out-of-range ids (padding): no mass
    mass = prob.sum(1)
    has_soft = mass > 0
    q = prob / mass.clamp_min(1e-12).unsqueeze(1)
    soft = -(q * logp.gather(1, idx.clamp(0, x.shape[1] - 1))).sum(1)
    return torch.where(has_soft, soft, hard)[valid].mean()


@register_loss("soft_pseudo_label")
def _soft_pseudo_label(ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4) -> LossFn:
    """CSST Eq. 6 on batches whose items carry ``soft_index`` / ``soft_prob`` (pseudo-labelled)
    or only ``label`` (real); see :func:`soft_pseudo_label_loss`."""
    return _with_aux_batch(lambda x, b: soft_pseudo_label_loss(
        x, b["label"], b.get("soft_index"), b.get("soft_prob"), ignore_index), aux_weight)


def _pseudo_pixels(batch: dict, valid: torch.Tensor, pseudo_key: str) -> torch.Tensor:
    """Valid pixels of the batch's pseudo-labelled items (``batch[pseudo_key]`` (N,), nonzero =
    pseudo; ``source`` of ``selftrain.mix_real_pseudo``: 0 real, 1 pseudo); every valid pixel
    when the batch has no such key."""
    if pseudo_key not in batch:
        return valid
    flag = torch.as_tensor(batch[pseudo_key], device=valid.device).reshape(-1).bool()
    if flag.numel() != valid.shape[0]:
        raise ValueError(f"batch[{pseudo_key!r}] has {flag.numel()} flags for {valid.shape[0]} items")
    return valid & flag.view(-1, 1, 1)


def model_regularized_loss(logits: torch.Tensor, target: torch.Tensor, pseudo: torch.Tensor | None = None,
                           weight: float = 0.1, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy plus the CRST model regularizer (CSST Eq. 7; CRST's MR-KLD).

    ``sum_valid CE(x, y) + weight * sum_pseudo R(x)``, divided by the number of valid pixels, with
    ``R(x) = -(1/C) sum_c log softmax(x)_c`` (= KL(uniform || p) + log C): the "-log p_S(x')" term
    of Eq. 7 averaged over classes, which is smallest for a flat prediction and so punishes sharp
    (over-confident) outputs on the pseudo-labelled pixels ``pseudo`` (N, H, W) bool (default:
    every valid pixel). The pseudo labels themselves stay hard. float32 throughout.
    """
    if weight < 0:
        raise ValueError(f"model_regularizer: weight must be >= 0, got {weight}")
    x = match_size(logits, target)
    valid = target != ignore_index
    n = valid.sum()
    if int(n) == 0:
        return _zero(x)
    logp = torch.log_softmax(x, 1)
    ce = -logp.gather(1, torch.where(valid, target, 0).long().unsqueeze(1)).squeeze(1)
    reg = -logp.mean(1)
    pseudo = valid if pseudo is None else (pseudo.to(valid.device) & valid)
    return (ce[valid].sum() + weight * reg[pseudo].sum()) / n


@register_loss("model_regularizer")
def _model_regularizer(weight: float = 0.1, pseudo_key: str = "source", ignore_index: int = IGNORE_INDEX,
                       aux_weight: float = 0.4) -> LossFn:
    """CSST Eq. 7: hard-label CE + ``weight`` x CRST model regularizer on the items whose
    ``batch[pseudo_key]`` is nonzero (``source`` 1 = pseudo in a real:pseudo mix; all items when
    the batch has no such key)."""
    if weight < 0:
        raise ValueError(f"model_regularizer: weight must be >= 0, got {weight}")

    def fn(x, b):
        valid = b["label"] != ignore_index
        return model_regularized_loss(x, b["label"], _pseudo_pixels(b, valid, pseudo_key), weight, ignore_index)
    return _with_aux_batch(fn, aux_weight)


def online_pseudo_labels(logits: torch.Tensor, target: torch.Tensor, threshold: float | None = None,
                         online_label: int = ONLINE_LABEL, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``target`` with every ``online_label`` pixel replaced by the model's own current argmax
    (CSST Eq. 4: the pseudo labels y' are hidden variables re-estimated at every step).

    For fixed network weights, the one-hot y' minimising ``-sum y' log p(x')`` is exactly
    ``argmax p(x')``, so this is the y'-step of minimising Eq. 4 by alternation; no gradient flows
    through it. With ``threshold``, online pixels whose top probability is below it are ignored.
    """
    x = match_size(logits.detach(), target)
    online = target == online_label
    prob, pred = torch.softmax(x, 1).max(1)
    if threshold is not None:
        online_kept = online & (prob >= threshold)
        pred = torch.where(online_kept, pred, ignore_index)
    return torch.where(online, pred, target.long())


@register_loss("consistency")
def _consistency(threshold: float | None = None, unlabeled_weight: float = 1.0,
                 online_label: int = ONLINE_LABEL, ignore_index: int = IGNORE_INDEX,
                 aux_weight: float = 0.4) -> LossFn:
    """Consistency regularization, one network (CSST Eq. 4): CE on real labels plus
    ``unlabeled_weight`` x CE on the pixels labelled ``online_label``, whose targets are the
    model's own argmax of this very forward pass (:func:`online_pseudo_labels`). Both terms are
    sums over their pixels divided by the number of counted pixels, as Eq. 4 sums them."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"consistency: threshold must be in [0, 1] or None, got {threshold}")
    if unlabeled_weight < 0:
        raise ValueError(f"consistency: unlabeled_weight must be >= 0, got {unlabeled_weight}")

    def fn(x, b):
        target = b["label"]
        full = online_pseudo_labels(x, target, threshold, online_label, ignore_index)
        xf = match_size(x, target)
        valid = full != ignore_index
        if not valid.any():
            return _zero(xf)
        pixel = F.cross_entropy(xf, torch.where(valid, full, 0), reduction="none")
        w = torch.where(target == online_label, float(unlabeled_weight), 1.0)
        return (pixel * w)[valid].sum() / valid.sum()
    return _with_aux_batch(fn, aux_weight)
