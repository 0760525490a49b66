"""Self-supervised training of VPLR's motion model G (paperlib.propagation.motion.train_motion):
the loss decreases on a tiny moving clip, sizes that are not a multiple of the stride work, the
trained model is cached and reused, and bad parameters name themselves."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.propagation import MotionNet, motion_defaults, train_motion
from paperlib.propagation import motion as M

H, W = 37, 45  # neither a multiple of G's stride 64


def _clip(n=6, dx=2, seed=0) -> np.ndarray:
    """A smooth random texture translating right by ``dx`` px per frame."""
    rng = np.random.default_rng(seed)
    big = rng.random((H // 4 + 2, (W + dx * n) // 4 + 2, 3))
    tex = np.kron(big, np.ones((4, 4, 1)))
    import cv2
    tex = cv2.GaussianBlur(tex, (5, 5), 1.5)
    frames = [tex[:H, dx * (n - f):dx * (n - f) + W] for f in range(n)]
    return (np.stack(frames) * 255).astype(np.uint8)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    return tmp_path


def test_loss_decreases_on_a_tiny_clip_of_odd_size(data):
    clip = _clip()
    G = train_motion(clip, "reconstruction", "dis", steps=16, lr=3e-3, batch_size=2, crop=(H, W), width=0.125,
                     cache=False, progress=False)
    h = np.asarray(G.history)
    assert len(h) == 16 and np.isfinite(h).all()
    assert h[-8:].mean() < 0.7 * h[:4].mean(), (h[:4], h[-8:])  # measured: 0.43
    x = M.motion_inputs("reconstruction", clip[0], clip[1], M.dis_flow(clip[1], clip[0]), clip[2],
                        M.dis_flow(clip[2], clip[1]))
    with torch.no_grad():
        m = G(x)
    assert tuple(m.shape) == (1, 2, H, W)
    # the content moves right by 2 px, so I(t+1)(p) ~ I(t)(p - 2): the mean x motion is negative
    assert m[0, 0, 8:-8, 8:-8].mean() < -1.0  # measured: -1.9 (G starts near zero motion)


def test_prediction_trains_on_crops_and_a_list_of_clips(data):
    G = train_motion([_clip(seed=1), _clip(seed=2)], "prediction", steps=3, lr=1e-3, batch_size=3, crop=(21, 30),
                     width=0.1, cache=False, progress=False)
    assert isinstance(G, MotionNet) and G.mode == "prediction" and not G.training and len(G.history) == 3


def test_trained_model_is_cached_and_reused(data, monkeypatch):
    kw = dict(steps=2, lr=1e-3, batch_size=1, crop=(16, 16), width=0.1, progress=False)
    G1 = train_motion(_clip(), "prediction", **kw)
    assert len(list((data / "cache" / "motion").glob("*.pt"))) == 1

    def fail(*a, **k):
        raise AssertionError("trained again instead of loading the cache")
    monkeypatch.setattr(M, "_example", fail)
    G2 = train_motion(_clip(), "prediction", **kw)
    assert G2.history == G1.history and G2.input_flow == "dis"
    for a, b in zip(G1.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(AssertionError, match="trained again"):  # another parameter: another model
        train_motion(_clip(), "prediction", **dict(kw, steps=3))


def test_bad_parameters_name_themselves(data):
    clip = _clip()
    for kwargs, word in ((dict(mode="future"), "mode"), (dict(flow="flownet2"), "flow"), (dict(steps=0), "steps"),
                         (dict(lr=0), "lr"), (dict(batch_size=1.5), "batch_size"), (dict(crop=(0, 4)), "crop"),
                         (dict(flow="exact"), "exact")):
        with pytest.raises(ValueError, match=word):
            train_motion(clip, **kwargs, cache=False, progress=False)
    with pytest.raises(ValueError, match="3 frames"):
        train_motion(clip[:2], cache=False, progress=False)
    with pytest.raises(ValueError, match="profile"):
        motion_defaults("laptop")
    assert motion_defaults("cpu")["steps"] >= 100


def test_frame_source_identity_is_content_not_location(tmp_path, monkeypatch):
    import shutil

    from paperlib.data import export_world
    from paperlib.propagation.frames import SequenceFrames

    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "a"))
    root = export_world("city_a", (32, 64), 2, seed=0, sequence=True, progress=False)
    moved = tmp_path / "b" / root.name
    shutil.copytree(root, moved)
    # a role trained on these frames (motion model G) gets the same cache key on any machine
    assert SequenceFrames(root, "train").identity() == SequenceFrames(moved, "train").identity()
    assert "root" not in SequenceFrames(root, "train").identity()
