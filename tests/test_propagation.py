"""VPLR propagation: the warp T (identity, translation, void and out-of-frame), LP vs JP
alignment, auto-regressive / accumulated synthesis, propagation with the world's exact flow,
DIS flow, and the motion model G (shapes at odd sizes, a few training steps)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.data.labels import CITYSCAPES_PALETTE
from paperlib.propagation import (MotionNet, dis_flow, dis_flows, exact_flow, flow_motion,
                                  make_optimizer, model_motion, motion_loss, pixel_accuracy,
                                  propagate, synthesize, training_example, warp, warp_image_np,
                                  warp_label_np, warp_labels)


def _blocks(h=24, w=32, seed=0) -> np.ndarray:
    """A label map of 4x4-pixel blocks of random classes (0..18) with some void blocks."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 19, (h // 4, w // 4)).astype(np.uint8)
    lab[rng.random(lab.shape) < 0.1] = 255
    return np.kron(lab, np.ones((4, 4), np.uint8))


def _paint(label: np.ndarray) -> np.ndarray:
    """An image whose colour is the label's palette colour (void black): alignment is checkable."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:19] = CITYSCAPES_PALETTE
    return lut[label]


def _shift_clip(label: np.ndarray, dx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n frames of ``label`` translated right by dx px per frame (new columns: class 10)."""
    labels = [label]
    for _ in range(n - 1):
        nxt = np.full_like(label, 10)
        nxt[:, dx:] = labels[-1][:, :-dx]
        labels.append(nxt)
    labels = np.stack(labels)
    return np.stack([_paint(lab) for lab in labels]), labels


def _const(h, w, dx, dy=0.0) -> np.ndarray:
    m = np.zeros((h, w, 2), np.float32)
    m[..., 0], m[..., 1] = dx, dy
    return m


def test_identity_motion_returns_the_input():
    lab = _blocks()
    img = np.random.default_rng(1).integers(0, 256, (*lab.shape, 3)).astype(np.uint8)
    zero = _const(*lab.shape, 0.0)
    assert np.array_equal(warp_image_np(img, zero), img)
    assert np.array_equal(warp_label_np(lab, zero), lab)
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 7, 9, dtype=torch.float64)), x)
    frames = np.stack([img] * 3)
    images, labels = propagate(frames, lab, 1, -1, lambda j, s: zero)
    assert np.array_equal(images[0], img) and np.array_equal(labels[0], lab)


def test_translation_void_and_out_of_frame():
    lab = _blocks()
    img = _paint(lab)
    m = _const(*lab.shape, -3.0)  # out(p) = src(p - 3): content moves right by 3
    out = warp_label_np(lab, m)
    assert np.all(out[:, :3] == 255)  # sampled from outside the frame: void
    assert np.array_equal(out[:, 3:], lab[:, :-3])  # void blocks stay void, classes move
    assert np.array_equal(warp_image_np(img, m)[:, 3:], img[:, :-3])
    half = warp_image_np(img.astype(np.float32), _const(*lab.shape, 0.5))  # bilinear halfway
    assert np.allclose(half[:, :-1], (img[:, :-1].astype(np.float32) + img[:, 1:]) / 2, atol=1e-3)
    lab_t = torch.from_numpy(lab.astype(np.int64))[None]
    assert torch.equal(warp_labels(lab_t, torch.full((1, 2, 24, 32), 0.4)), lab_t)  # nearest


def test_jp_stays_aligned_where_lp_does_not():
    """True motion 3 px/frame, estimated 2 px/frame: JP's image and label share the error
    (label colour == image colour everywhere), LP pairs the wrong label with the real frame."""
    frames, labels = _shift_clip(_blocks(seed=2), 3, 4)
    wrong = _const(*labels.shape[1:], -2.0)
    for k in (1, 2, 3):
        jp = {p.offset: p for p in synthesize(frames, labels[0].copy(), 0, 0, lambda j, s: wrong)}
        assert jp == {}
        images, labs = propagate(frames, labels[0], 0, k, lambda j, s: wrong)
        keep = labs[-1] != 255
        assert np.array_equal(_paint(labs[-1])[keep], images[-1][keep])  # JP: aligned
        lp_agree = (_paint(labs[-1]) == frames[k]).all(-1)[keep].mean()
        assert lp_agree < 0.9  # LP: misaligned by k px


def test_synthesize_offsets_pairs_and_autoregression():
    frames, labels = _shift_clip(_blocks(seed=3), 2, 7)
    motion = lambda j, s: _const(*labels.shape[1:], -2.0 * s)  # exact for this clip
    non = synthesize(frames, labels[3], 3, 2, motion, joint=False)
    acc = synthesize(frames, labels[3], 3, 2, motion, joint=True, accumulated=True)
    assert [p.offset for p in non] == [-2, 2] and [p.offset for p in acc] == [-2, -1, 1, 2]
    assert np.array_equal(non[1].image, frames[5]) and not non[1].joint  # LP: the real frame
    # forward with exact motion: the true label, void where it came from outside the frame
    fwd = acc[3].label
    expected = labels[5].copy()
    expected[:, :4] = 255
    assert np.array_equal(fwd, expected)
    # auto-regressive: 2 steps == warping the 1-step result again
    once = warp_label_np(warp_label_np(labels[3], motion(3, 1)), motion(4, 1))
    assert np.array_equal(once, fwd)
    with pytest.raises(ValueError, match="outside"):
        propagate(frames, labels[3], 3, 4, motion)


@pytest.fixture(scope="module")
def world_clip():
    from paperlib.data.synthetic import SyntheticWorld
    return SyntheticWorld("city_a", size=(64, 128), seed=0).clip(0, length=3)


def test_exact_flow_propagation_matches_world_labels(world_clip):
    c = world_clip
    mf = flow_motion(exact_flow(c))
    _, fwd = propagate(c.frames, c.labels[1], 1, 1, mf)
    _, bwd = propagate(c.frames, c.labels[1], 1, -1, mf)
    assert pixel_accuracy(fwd[0], c.labels[2], c.valid_bw[1]) > 0.95
    assert pixel_accuracy(bwd[0], c.labels[0], c.valid_fw[0]) > 0.95
    dis = flow_motion(dis_flows(c.frames))  # the classical baseline: decent, not exact
    _, d = propagate(c.frames, c.labels[1], 1, 1, dis)
    assert pixel_accuracy(d[0], c.labels[2], c.valid_bw[1]) > 0.8


def test_dis_flow_recovers_a_translation():
    rng = np.random.default_rng(4)
    tex = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    import cv2
    tex = cv2.GaussianBlur(np.kron(tex, np.ones((2, 2), np.uint8)), (5, 5), 1.5)
    a, b = tex[10:70, 10:110], tex[10:70, 13:113]  # a(p) = b(p - 3)
    f = dis_flow(a, b)
    assert np.median(f[10:-10, 10:-10, 0]) == pytest.approx(-3.0, abs=0.3)
    assert abs(np.median(f[10:-10, 10:-10, 1])) < 0.3
    with pytest.raises(ValueError, match="equal-sized"):
        dis_flow(a, b[:, :-1])


@pytest.mark.parametrize("mode, cin", [("prediction", 8), ("reconstruction", 13)])
def test_motion_net_shapes_at_odd_sizes(mode, cin):
    torch.manual_seed(0)
    net = MotionNet(mode)
    assert len(net.encoder) == 10 and len(net.decoder) == 6
    with torch.no_grad():
        assert net(torch.randn(1, cin, 37, 53)).shape == (1, 2, 37, 53)
        assert net(torch.randn(2, cin, 64, 64)).shape == (2, 2, 64, 64)
    with pytest.raises(ValueError, match=str(cin)):
        net(torch.randn(1, cin + 1, 32, 32))


def test_motion_net_training_reduces_the_loss_and_drives_propagation(world_clip):
    torch.manual_seed(0)
    c = world_clip
    net = MotionNet("reconstruction", width=0.25)
    opt = make_optimizer(net, lr=3e-4)
    x, cur, nxt = (t[..., :64] for t in training_example(c.frames, 1, "reconstruction"))
    losses = []
    for _ in range(4):
        loss = motion_loss(net(x), cur, nxt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    mf = model_motion(net, c.frames, dis_flows(c.frames))
    images, labels = propagate(c.frames, c.labels[1], 1, 1, mf)
    assert images[0].shape == c.frames[2].shape and labels[0].dtype == np.uint8
