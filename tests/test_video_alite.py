"""A-Lite (paperlib.video.alite): Accel-style feature-space propagation with GSVNet's light
networks; the keyframe loop driving it; the shared flow-net pre-training cache."""
import pytest
import torch

from paperlib.data.synthetic import SyntheticWorld
from paperlib.models import build
from paperlib.video import (ALite, KeyframeFeatures, KeyframeSegmenter, alite_complexity, evaluate_intervals,
                            nonkey_loss, propagate, segment_video, train_nonkey, sample_sequences)
from paperlib.video import alite as A

C = 19


@pytest.fixture(scope="module")
def key():
    torch.manual_seed(0)
    return build("swiftnet_resnet18", num_classes=C, width=4).eval()


@pytest.fixture(scope="module")
def clip():
    return SyntheticWorld("city_a", size=(32, 64), seed=0).clip(0, length=4)


def small(key, scale=0.75, **kw):
    torch.manual_seed(0)
    return ALite(key, C, key_scale=scale, flow_width=4, update_width=4, **kw).eval()


def const_flow(h, w, dx, dy):
    f = torch.zeros(1, 2, h, w)
    f[:, 0], f[:, 1] = dx, dy
    return f


def test_classifier_is_found_for_both_keyframe_nets(key):
    assert A.find_classifier(key) is key.head.classifier
    bn = build("bisenet_resnet18", num_classes=C, width=4, aux=False)
    assert A.find_classifier(bn) is bn.head
    with pytest.raises(ValueError, match="classifier"):
        A.find_classifier(torch.nn.Conv2d(3, 3, 1))


def test_keyframe_features_split_the_model_exactly(key):
    x = torch.randn(1, 3, 64, 128)
    kf = KeyframeFeatures(key, 0.75, 8)
    feat, logits = kf(x)
    assert feat.shape == (1, 8, 12, 24)  # width-4 SwiftNet: 128 / 16 channels, stride 4 of 48x96
    assert torch.allclose(logits, KeyframeSegmenter(key, 0.75, 8)(x), atol=1e-6)
    assert torch.allclose(kf.classify(feat, (64, 128)), logits, atol=1e-6)


def test_output_shapes(key):
    net = small(key)
    f0, f1 = torch.randn(2, 3, 64, 128), torch.randn(2, 3, 64, 128)
    k = net.keyframe(f0)
    assert k["out"].shape == (2, C, 8, 16) and k["state"].shape == (2, 8, 12, 24)
    out = net(k["state"], f0, f1)
    assert out["out"].shape == out["reference"].shape == out["update"].shape == (2, C, 8, 16)
    assert out["state"].shape == k["state"].shape and out["flow"].shape == (2, 2, 8, 16)


def test_zero_flow_reference_branch_is_the_keyframe_prediction(key):
    """Identity warp: the reference scores are the keyframe net's prediction on the frame warped
    from; with the initial fusion (identity on the reference) the output is too."""
    net = small(key)
    f0, f1 = torch.randn(1, 3, 64, 128), torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        state = net.keyframe(f0)["state"]
        out = net(state, f0, f1, flow=torch.zeros(1, 2, 8, 16))
        key_pred = KeyframeSegmenter(key, 0.75, 8)(f0)
    assert torch.allclose(out["reference"], key_pred, atol=1e-4)
    assert torch.allclose(out["state"], state, atol=1e-5)
    assert torch.allclose(out["out"], key_pred, atol=1e-4)
    assert not torch.allclose(out["update"], key_pred, atol=1e-2)  # the update branch sees frame 1


def test_integer_flow_shifts_the_features(key):
    """A 1/8-grid flow of (+2, -1) px is (+3, -1.5) px on the 12x24 feature grid (x1.5); with
    key scale 0.5 the feature grid is the 1/8 grid itself and (+2, -1) moves the features by
    (-2, +1): out(y, x) = feat(y - 1, x + 2)."""
    net = small(key, scale=0.5)
    f = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        feat = net.keyframe(f)["state"]
        assert feat.shape[-2:] == (8, 16)
        out = net(feat, f, f, flow=const_flow(8, 16, 2, -1))["state"]
    assert torch.allclose(out[..., 1:, :14], feat[..., :-1, 2:], atol=1e-5)
    assert not torch.allclose(out, feat, atol=1e-3)


def test_warps_accumulate_from_the_previous_warped_features(key):
    net = small(key, scale=0.5)
    f = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        feat = net.keyframe(f)["state"]
        one = net(feat, f, f, flow=const_flow(8, 16, 1, 0))["state"]
        two = net(one, f, f, flow=const_flow(8, 16, 1, 0))["state"]
    assert torch.allclose(two[..., :13], feat[..., 2:15], atol=1e-5)  # two steps of +1 px = a shift by 2


def test_gradients_reach_flow_update_and_fusion_not_the_keyframe_net(key):
    net = small(key).train()
    with torch.no_grad():  # the fusion starts with zero weight on the update branch; move off that start
        net.fusion.weight[:, C:] = 0.01
    assert not net.key.training and not key.training  # train() keeps the frozen net in eval mode
    frames, label = torch.randn(2, 3, 3, 64, 128), torch.randint(0, C, (2, 64, 128))
    loss, parts = nonkey_loss(net, KeyframeSegmenter(key, 0.75, 8), frames, label)
    loss.backward()
    assert set(parts) == {"ce", "kl"}
    for name in ("flownet", "update", "fusion"):
        grads = [p.grad for p in getattr(net, name).parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None and not p.requires_grad for p in key.parameters())


def test_the_keyframe_loop_drives_alite(key, clip):
    net = small(key)
    preds = segment_video(clip.frames, key, net, interval=2, key_scale=0.75, progress=False)
    assert preds.shape == (4, 32, 64)
    segs = list(propagate(clip.frames, KeyframeSegmenter(key, 0.75, 8), net, interval=1))
    with torch.no_grad():  # interval 1: every frame is a keyframe -> the keyframe net's output
        assert torch.allclose(segs[2], KeyframeSegmenter(key, 0.75, 8)(_frame(clip, 2)), atol=1e-5)
    res = evaluate_intervals([clip], key, net, 3, label_index=3, progress=False)
    assert len(res["miou_by_distance"]) == 3 and 0 <= res["avg_miou"] <= 1


def _frame(clip, t):
    from paperlib.video import frame_tensor
    return frame_tensor(clip.frames[t])


def test_training_updates_alite_only(key, clip):
    net = small(key)
    before = {k: v.clone() for k, v in key.state_dict().items()}
    fusion0 = net.fusion.weight.detach().clone()
    losses = train_nonkey(net, key, sample_sequences([clip], 3, batch_size=1), steps=2, progress=False)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(net.fusion.weight, fusion0)
    assert all(torch.equal(before[k], v) for k, v in key.state_dict().items())  # BN statistics included


def test_complexity_counts_the_feature_warp_and_own_parts(key):
    net = small(key)
    c = alite_complexity(net, (64, 128))
    assert c["feature_shape"] == (8, 12, 24)
    assert c["params"] == sum(p.numel() for n in ("flownet", "update", "fusion") for p in getattr(net, n).parameters())
    assert c["macs"] > 0


def test_bad_arguments_are_named(key):
    with pytest.raises(ValueError, match="num_classes"):
        ALite(key, 0)


def test_trained_alite_shares_pf_flow_pretraining_and_is_cached(key, clip, tmp_path, monkeypatch):
    from paperlib.video import trained_alite, trained_pf
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    cache = {"key": "test", "clips": [0]}
    kw = dict(steps=1, flow_steps=2, batch_size=1, interval=3, progress=False)
    pf, _ = trained_pf(key, [clip], cache, **kw)
    net, info = trained_alite(key, [clip], cache, flow_width=32, **kw)
    assert not info["cached"] and len(list((tmp_path / "cache" / "flownet").glob("*.pt"))) == 1
    again, info2 = trained_alite(key, [clip], cache, flow_width=32, **kw)
    assert info2["cached"] and torch.equal(again.fusion.weight, net.fusion.weight)


def test_boundary_accuracy_by_hand():
    label = torch.zeros(6, 6, dtype=torch.long).numpy()
    label[:, 3:] = 1                      # one vertical edge between columns 2 and 3
    label[0, 0] = 255                     # void: skipped
    pred = label.copy()
    pred[:, 3] = 0                        # the boundary column is wrong
    acc = A.boundary_accuracy(pred, label, radius=1)
    # radius 1: band = columns 2..3 (12 px, column 2 right, column 3 wrong) + the void pixel's 3 valid
    # neighbours (an edge against void is an edge; all right) -> 9 / 15; interior 36 - 15 - 1 void = 20
    assert acc == {"boundary": (9, 15), "interior": (20, 20)}
    with pytest.raises(ValueError, match="same"):
        A.boundary_accuracy(pred[:5], label)


def test_video_setup_keeps_the_notebooks_cache_keys(monkeypatch):
    from paperlib.config import config_from_params
    from paperlib.video import train as vtrain
    made = []
    monkeypatch.setattr(vtrain, "pretrained_keyframe", lambda cfg, progress=False: (made.append(cfg) or "net", {"miou": 0}))
    s = vtrain.video_setup("smoke", {"SN": "swiftnet_resnet18"}, key_width=8, key_steps=10, train_clips=1, val_clips=1,
                           length=2)
    old = config_from_params("smoke", model="swiftnet_resnet18", model_width=8, steps=10, world_domain="city_a")
    assert s.keys == {"SN": "net"} and made[0].name == "gsvnet_key_SN"
    assert s.cache["SN"] == {"key": vtrain.keyframe_cache_path(old).name, "world": s.world.params(), "clips": [0],
                             "length": 2}
    assert s.val_idx == [1000] and len(s.train_clips) == len(s.val_clips) == 1 and len(s.val_clips[0].frames) == 2
    from paperlib.video import calibration as C
    s6 = vtrain.video_setup("smoke", {"SN": "swiftnet_resnet18"}, key_width=8, key_steps=12, train_clips=1,
                            val_clips=1, length=2, key_points=C.KEY_POINTS)  # the calibration's curve-recording role
    assert made[-1].eval_every == 2 and s6.cache["SN"]["key"] == vtrain.keyframe_cache_path(
        C.keyframe_config("smoke", "swiftnet_resnet18", 8, 12, tag="other")).name != s.cache["SN"]["key"]
    with pytest.raises(ValueError, match="key_models"):
        vtrain.video_setup("smoke", {}, key_width=8, key_steps=1, train_clips=1, val_clips=1, length=2)
