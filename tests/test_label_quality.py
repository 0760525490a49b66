"""Propagated-label quality (VPLR, issue 6 item 5): boundary masks, the JP ground truth (label
warped like the image), the scores against hand-counted cases, and a whole-clip run on a
known translation where exact motion is perfect and zero motion errs only at edges."""
from __future__ import annotations

import numpy as np
import pytest

from paperlib.propagation import propagate
from paperlib.propagation.quality import LabelQuality, boundary_mask, clip_quality, soft_propagate


def _const(h, w, dx, dy=0.0):
    m = np.zeros((h, w, 2), np.float32)
    m[..., 0], m[..., 1] = dx, dy
    return m


def test_boundary_mask_marks_pixels_within_radius_of_an_edge():
    lab = np.zeros((5, 10), np.uint8)
    lab[:, 5:] = 1                       # vertical edge between columns 4 and 5
    m1 = boundary_mask(lab, 1)
    assert m1[:, 4:6].all() and not m1[:, :4].any() and not m1[:, 6:].any()
    m2 = boundary_mask(lab, 2)
    assert m2[:, 3:7].all() and m2.sum() == 5 * 4
    assert not boundary_mask(lab, 0).any()
    void = np.zeros((5, 5), np.uint8)
    void[2, 2] = 255                     # an edge against void is an edge
    assert boundary_mask(void, 1).sum() == 9
    with pytest.raises(ValueError, match="radius"):
        boundary_mask(lab, -1)


def test_label_quality_counts_by_hand():
    truth = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1],
                      [255, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 1],       # one error, next to the edge
                     [0, 0, 1, 255],     # one unscored (void prediction)
                     [0, 0, 1, 0]], np.uint8)  # truth void: unscored; one error at the far right
    s = LabelQuality(num_classes=2, radius=1).update(pred, truth).summary()
    # labelled truth: 11 px; scored: 10; correct: 8
    assert s["coverage"] == pytest.approx(10 / 11)
    assert s["accuracy"] == pytest.approx(8 / 10)
    # boundary (radius 1) of truth: columns 1-2, plus pixels next to the void at (2, 0);
    # scored boundary pixels: (0,1),(0,2),(1,0),(1,1),(1,2),(2,1),(2,2) = 7, of which (0,1) is wrong
    assert s["boundary_px"] == pytest.approx(7 / 10)
    assert s["boundary_errors"] == pytest.approx(1 / 2)
    assert s["boundary_acc"] == pytest.approx(6 / 7) and s["interior_acc"] == pytest.approx(2 / 3)
    # IoU class 0: TP 4, FP 1, FN 1 -> 4/6; class 1: TP 4, FP 1, FN 1 -> 4/6
    assert s["miou"] == pytest.approx(4 / 6)
    assert np.isnan(s["image_error"])


def test_merge_and_image_error():
    a = LabelQuality(2).update(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    b = LabelQuality(2).update(np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    b.update_image(np.full((2, 2, 3), 10, np.uint8), np.full((2, 2, 3), 4, np.uint8))
    s = a.merge(b).summary()
    assert s["accuracy"] == pytest.approx(0.5) and s["image_error"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="radius"):
        a.merge(LabelQuality(2, radius=3))


def test_soft_propagate_is_the_image_warp_on_one_hot_labels():
    lab = np.zeros((6, 8), np.uint8)
    lab[:, 4:] = 1
    lab[0, 0] = 255
    zero = lambda j, s: _const(6, 8, 0.0)  # noqa: E731
    assert np.array_equal(soft_propagate(lab, 2, 2, zero, 2)[1], lab)
    # integer shift by one column to the left of the source: out(p) = src(p + 1); border repeats
    shift = lambda j, s: _const(6, 8, 1.0)  # noqa: E731
    (one,) = soft_propagate(lab, 0, 1, shift, 2)
    assert one[0, 0] == 0  # the void pixel was sampled from outside: p + 1 skips it
    expect = np.concatenate([lab[:, 1:], lab[:, -1:]], 1)
    assert np.array_equal(one, expect)
    # half-pixel shift: a pixel is a 50/50 mix at the edge; away from it the class is unchanged
    half = lambda j, s: _const(6, 8, 0.25)  # noqa: E731
    (q,) = soft_propagate(lab, 0, 1, half, 2)
    assert (q[1:, :3] == 0).all() and (q[:, 4:] == 1).all() and q[0, 0] == 255
    with pytest.raises(ValueError, match="label ids"):
        soft_propagate(np.full((6, 8), 7, np.uint8), 0, 1, zero, 2)


def _shift_clip(h=16, w=40, n=7, dx=2):
    """A clip whose labels (and colours) translate right by dx px per frame."""
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 3, (h // 4, (w + n * dx) // 4 + 1)), np.ones((4, 4), np.int64))
    labels = np.stack([base[:, base.shape[1] - w - t * dx: base.shape[1] - t * dx] for t in range(n)]).astype(np.uint8)
    frames = np.stack([np.stack([lab * 80] * 3, -1) for lab in labels]).astype(np.uint8)
    return frames, labels


def test_clip_quality_exact_motion_is_perfect_and_zero_motion_errs_at_edges():
    frames, labels = _shift_clip()
    exact = lambda j, s: _const(*labels.shape[1:], -2.0 * s)  # noqa: E731  I(j+s)(p) = I(j)(p - 2s)
    q = clip_quality(frames, labels, 3, 3, exact, num_classes=3, radius=2)
    assert set(q) == {(p, o) for p in ("LP", "JP") for o in (-3, -2, -1, 1, 2, 3)}
    for key, lq in q.items():
        s = lq.summary()
        assert s["accuracy"] == 1.0, key
        assert s["coverage"] < 1.0  # columns entering the view are void (out of frame)
    assert q[("JP", 3)].summary()["image_error"] == 0.0
    zero = lambda j, s: _const(*labels.shape[1:], 0.0)  # noqa: E731
    qz = clip_quality(frames, labels, 3, 3, zero, num_classes=3, radius=2)
    lp = [qz[("LP", k)].summary() for k in (1, 2, 3)]
    assert lp[0]["accuracy"] > lp[2]["accuracy"] and lp[2]["accuracy"] < 1
    # a 2 px shift errs only within 2 px of an edge -- or of one just outside the frame (6 rows
    # x 2 columns at the right border here): 188 of 200 errors
    assert lp[0]["boundary_errors"] == pytest.approx(0.94)
    assert qz[("JP", 3)].summary()["accuracy"] == 1.0   # JP: image and label never moved
    assert qz[("JP", 3)].summary()["image_error"] > 0
    # LP and JP score the very same propagated label
    _, props = propagate(frames, labels[3], 3, 2, zero)
    assert np.array_equal(props[1], labels[3])
