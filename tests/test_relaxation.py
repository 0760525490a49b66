"""VPLR boundary label relaxation (Eq. 4-5): CE where |N| = 1, hand-computed values, void
handling, strict classes, switch-off, bf16 stability, per-image windows, analytic gradient."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from paperlib.losses import (boundary_relaxation_loss, boundary_relaxation_loss_naive, build_loss,
                             relaxation_window)

LOG2 = math.log(2)


def _split_4x4() -> tuple[torch.Tensor, torch.Tensor]:
    """4x4 label: columns 0-1 class 0, columns 2-3 class 1; logits give p = (1/4, 1/4, 1/2)."""
    target = torch.tensor([[0, 0, 1, 1]] * 4).unsqueeze(0)
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 2] = LOG2
    return logits, target


def test_hand_computed_4x4():
    logits, target = _split_4x4()
    # columns 0, 3: N = {own class}, -log(1/4); columns 1, 2: N = {0, 1}, -log(1/2)
    assert boundary_relaxation_loss(logits, target).item() == pytest.approx(1.5 * LOG2)
    # strict class 0: column 1 keeps its one-hot target, -log(1/4)
    assert boundary_relaxation_loss(logits, target, strict_classes=[0]).item() == pytest.approx(1.75 * LOG2)
    # switched off: CE (-log 1/4 everywhere), the 8 boundary pixels weighted 2, mean over 16
    assert boundary_relaxation_loss(logits, target, relax=False).item() == pytest.approx(3 * LOG2)
    # window 1 = no relaxation = CE
    assert boundary_relaxation_loss(logits, target, window=1).item() == pytest.approx(2 * LOG2)


def test_equals_cross_entropy_where_window_has_one_class():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 12, 16, requires_grad=True)
    target = torch.randint(0, 5, (2, 12, 16))
    target[0], target[1, :, :8], target[1, :, 8:] = 3, 1, 4  # boundary at columns 7, 8 of image 1
    target[0, :3, :3] = 255  # void corner of image 0
    lo, hi = relaxation_window(target, 5)
    single = (lo == hi) & (target != 255)
    loss = boundary_relaxation_loss(logits, target, window=3)
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    relaxed = ~single & (hi >= 0)
    assert relaxed.sum() > 0 and single.sum() > 0
    ref = boundary_relaxation_loss_naive(logits, target)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # the |N| = 1 part is exactly CE: same loss when those pixels are scored by CE instead
    naive_pp = torch.logsumexp(logits, 1) - torch.logsumexp(
        logits.masked_fill(F.max_pool2d(F.one_hot(target.clamp(max=5), 6)[..., :5].permute(0, 3, 1, 2)
                                        .float(), 3, 1, 1) == 0, -float("inf")), 1)
    assert torch.allclose(naive_pp[single], per_pixel[single], atol=1e-6)


def test_no_relaxation_anywhere_equals_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 8, 8)
    target = torch.stack([torch.full((8, 8), 2), torch.full((8, 8), 0)])
    assert boundary_relaxation_loss(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-6)


def test_void_windows_are_ignored_and_void_is_not_a_class():
    target = torch.full((1, 5, 5), 255)
    target[0, 0, 0] = 0
    logits = torch.zeros(1, 3, 5, 5, requires_grad=True)
    loss = boundary_relaxation_loss(logits, target)
    assert loss.item() == pytest.approx(math.log(3))  # the 2x2 corner, N = {0}: void is not in N
    loss.backward()
    touched = logits.grad.abs().sum(1)[0] > 0
    assert touched[:2, :2].all() and touched.sum() == 4
    all_void = torch.full((1, 5, 5), 255)
    x = torch.zeros(1, 3, 5, 5, requires_grad=True)
    out = boundary_relaxation_loss(x, all_void)
    out.backward()
    assert out.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_no_cross_image_leakage():
    """Each image uniform in its own class: |N| = 1 everywhere, so the loss is CE. A mask
    broadcast over the batch (the public bug) would put both classes in every window."""
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 6, 6)
    target = torch.stack([torch.zeros(6, 6, dtype=torch.long), torch.full((6, 6), 2)])
    assert boundary_relaxation_loss(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_finite_with_extreme_low_precision_logits(dtype):
    big = 3e4  # representable in bf16 and fp16; exp(-2 big) underflows even in float64
    target = torch.tensor([[0, 0, 1, 1]] * 4).unsqueeze(0)
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 2] = big  # class 2 is never in N: p(N) underflows, log p(N) must not be -inf/NaN
    logits[:, 0] = -big
    p_n = torch.softmax(logits.to(dtype).float(), 1)[:, :2].sum(1)
    assert (torch.log(p_n) == -float("inf")).all()  # why log(sum_N p) is the wrong formula
    logits = logits.to(dtype).requires_grad_(True)
    loss = boundary_relaxation_loss(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 1e3
    assert torch.isfinite(logits.grad.float()).all()
    # the confident-and-right case: loss ~ 0, finite gradient
    good = torch.zeros(1, 3, 4, 4)
    good[:, 1] = big
    good = good.to(dtype).requires_grad_(True)
    loss = boundary_relaxation_loss(good, target, strict_classes=[0])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(good.grad.float()).all()


def test_analytic_gradient_matches_autograd():
    torch.manual_seed(3)
    x = torch.randn(2, 4, 4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (2, 4, 5))
    t[0, 0, :3] = 255
    t[1, 3, 4] = 255
    assert torch.autograd.gradcheck(lambda z: boundary_relaxation_loss(z, t), (x,))
    for kw in ({"strict_classes": [1]}, {"relax": False}):
        assert torch.autograd.gradcheck(lambda z: boundary_relaxation_loss(z, t, **kw), (x,), fast_mode=True)
    g_fast, = torch.autograd.grad(boundary_relaxation_loss(x, t, window=5), x)
    g_ref, = torch.autograd.grad(boundary_relaxation_loss_naive(x, t, window=5), x)
    assert torch.allclose(g_fast, g_ref, atol=1e-12)


def test_upsamples_small_logits_and_rejects_bad_input():
    torch.manual_seed(4)
    x = torch.randn(1, 3, 4, 4)
    t = torch.randint(0, 3, (1, 8, 8))
    up = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
    assert boundary_relaxation_loss(x, t).item() == pytest.approx(boundary_relaxation_loss(up, t).item())
    with pytest.raises(ValueError, match="window"):
        boundary_relaxation_loss(up, t, window=2)
    with pytest.raises(ValueError, match="label ids"):
        boundary_relaxation_loss(up, torch.full((1, 8, 8), 7))


def test_registry_and_switch_off_epoch():
    logits, target = _split_4x4()
    fn = build_loss("relaxation", switch_off_epoch=2, aux_weight=0.0)
    relaxed = fn(logits, {"label": target, "epoch": 1}).item()
    off = fn(logits, {"label": target, "epoch": torch.tensor([2, 2])}).item()
    assert relaxed == pytest.approx(1.5 * LOG2) and off == pytest.approx(3 * LOG2)
    epoch = [0]
    fn2 = build_loss("relaxation", switch_off_epoch=1, epoch_fn=lambda: epoch[0])
    assert fn2(logits, {"label": target}).item() == pytest.approx(1.5 * LOG2)
    epoch[0] = 5
    assert fn2(logits, {"label": target}).item() == pytest.approx(3 * LOG2)
    vplr = build_loss("relaxation", strict_classes="vplr")  # pole, light, sign, person, ...
    t19 = torch.tensor([[5, 5, 0, 0]] * 4).unsqueeze(0)  # pole | road
    x19 = torch.zeros(1, 19, 4, 4)
    assert vplr(x19, {"label": t19}).item() == pytest.approx(
        (12 * math.log(19) + 4 * math.log(19 / 2)) / 16)  # the pole column next to road stays strict
    with pytest.raises(ValueError, match="strict_classes"):
        boundary_relaxation_loss(logits, target, strict_classes=[7])
    with pytest.raises(ValueError, match="epoch"):
        build_loss("relaxation", switch_off_epoch=1)(logits, {"label": target})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_window_computed_on_the_logits_device():
    torch.manual_seed(5)
    x = torch.randn(2, 5, 16, 16, device="cuda", requires_grad=True)
    t = torch.randint(0, 5, (2, 16, 16))  # a CPU target: moved to the logits' device
    loss = boundary_relaxation_loss(x, t)
    loss.backward()
    assert loss.device.type == "cuda"
    assert loss.item() == pytest.approx(boundary_relaxation_loss_naive(x.detach().cpu(), t).item(), rel=1e-5)
