"""Losses: cross-entropy with ignore, OHEM semantics against hand-computed cases and the
HRNet/openseg reference rule, the loss registry and the aux-output hook."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from paperlib import losses
from paperlib.losses import build_loss, cross_entropy, ohem_cross_entropy


def _two_class_logits(p_true: list[float]) -> torch.Tensor:
    """(1, 2, 1, n) logits whose softmax gives class 0 probability ``p_true``."""
    p = torch.tensor(p_true, dtype=torch.float64)
    return torch.stack([torch.log(p / (1 - p)), torch.zeros_like(p)]).view(1, 2, 1, -1)


def test_cross_entropy_hand_computed_and_ignore():
    logits = torch.zeros(1, 4, 2, 3)
    target = torch.zeros(1, 2, 3, dtype=torch.long)
    assert cross_entropy(logits, target).item() == pytest.approx(math.log(4))
    logits = _two_class_logits([0.9, 0.2, 0.5])
    target = torch.tensor([[[0, 0, 255]]])
    assert cross_entropy(logits, target).item() == pytest.approx((-math.log(0.9) - math.log(0.2)) / 2)


def test_all_ignored_gives_zero_loss_with_a_graph():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    for fn in (cross_entropy, ohem_cross_entropy):
        loss = fn(logits, target)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_logits_are_upsampled_and_computed_in_float32():
    logits = torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16)
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    loss = cross_entropy(logits, target)
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(math.log(3))


P = [0.1, 0.5, 0.8, 0.9, 0.95]


@pytest.mark.parametrize("min_kept, kept", [
    (0, [0.1, 0.5]),                 # only p < thresh
    (1, [0.1, 0.5]),                 # the hardest one is below thresh anyway
    (2, [0.1, 0.5]),
    (4, [0.1, 0.5, 0.8, 0.9]),       # p_(4) = 0.9 > thresh: the 4 hardest
    (5, P),                          # as many as valid pixels: all
    (100, P),
])
def test_ohem_hand_computed(min_kept, kept):
    logits = _two_class_logits(P + [0.3])
    target = torch.tensor([[[0, 0, 0, 0, 0, 255]]])   # the last pixel is ignored
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=min_kept)
    expected = sum(-math.log(p) for p in kept) / len(kept)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def _hrnet_rule(logits, target, thresh, min_kept, ignore=255):
    """The widely used openseg/HRNet OhemCrossEntropy rule, written from its description:
    sort valid true-class probabilities, threshold = max(p[min_kept], thresh), keep p < threshold."""
    pix = F.cross_entropy(logits, target, ignore_index=ignore, reduction="none").view(-1)
    valid = target.view(-1) != ignore
    p = torch.softmax(logits, 1).gather(1, target.clamp(max=logits.shape[1] - 1).unsqueeze(1)).view(-1)[valid]
    p, order = p.sort()
    threshold = max(p[min(min_kept, p.numel() - 1)].item(), thresh)
    return pix[valid][order][p < threshold].mean()


@pytest.mark.parametrize("min_kept", [10, 200, 400])  # 416 valid, 357 below thresh
def test_ohem_matches_reference_rule(min_kept):
    torch.manual_seed(min_kept)
    logits = torch.randn(2, 5, 16, 16, dtype=torch.float64) * 3
    target = torch.randint(0, 5, (2, 16, 16))
    target[:, :3] = 255
    ours = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=min_kept)
    assert ours.item() == pytest.approx(_hrnet_rule(logits, target, 0.7, min_kept).item(), rel=1e-6)


def test_ohem_gradient_only_from_kept_pixels():
    logits = _two_class_logits([0.1, 0.95]).float().requires_grad_()
    ohem_cross_entropy(logits, torch.zeros(1, 1, 2, dtype=torch.long), thresh=0.7, min_kept=1).backward()
    assert logits.grad[..., 0].abs().sum() > 0
    assert torch.equal(logits.grad[..., 1], torch.zeros(1, 2, 1))


def test_ohem_rejects_bad_parameters():
    with pytest.raises(ValueError, match="thresh"):
        ohem_cross_entropy(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), thresh=1.5)


def test_registry_and_aux_hook():
    assert {"cross_entropy", "ohem"} <= set(losses.LOSSES)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    main, aux = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    aux[:, 1] = 5.0
    fn = build_loss("cross_entropy", aux_weight=0.5)
    expected = math.log(3) + 0.5 * F.cross_entropy(aux, target).item()
    assert fn({"out": main, "aux": aux}, {"label": target}).item() == pytest.approx(expected)
    assert fn(main, {"label": target}).item() == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        build_loss("focal")
    with pytest.raises(ValueError, match="bad options for loss 'ohem'"):
        build_loss("ohem", min_keep=5)
    with pytest.raises(ValueError, match="already registered"):
        losses.register_loss("ohem")(lambda: None)


def test_new_losses_plug_in_through_the_registry():
    @losses.register_loss("_test_batch_aware")
    def _factory(scale=1.0):
        return lambda output, batch: scale * losses.main_logits(output).float().mean() + batch["extra"]

    try:
        fn = build_loss("_test_batch_aware", scale=2.0)
        assert fn(torch.ones(1, 2, 2, 2), {"extra": 1.0}).item() == 3.0
    finally:
        del losses.LOSSES["_test_batch_aware"]
