"""GSVNet's keyframe loop, evaluation protocol (Sec. 4.1) and PF training."""
import itertools
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.data.synthetic import SyntheticWorld
from paperlib.video import (GSVNet, KeyframeSegmenter, evaluate_intervals, frame_tensor, interval_metrics,
                            interval_pairs, keyframe_schedule, miou_by_position, nonkey_loss, sample_sequences,
                            save_overlay_video, segment_video, train_nonkey, write_overlay_video)

C = 19


class ColourKey(nn.Module):
    """A fake keyframe network: a fixed random 1x1 conv of the image (per-pixel, deterministic)."""

    def __init__(self, num_classes=C):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        return self.conv(x)


class FrameIdKey(nn.Module):
    """Decodes the frame index t from a constant frame of value t and predicts class t % C."""

    def forward(self, x):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        t = int(round(float((x * std + mean)[:, 0].mean() * 255)))
        return F.one_hot(torch.full(x.shape[-2:], t % C), C).permute(2, 0, 1)[None].float() * 10


class CopyPF(nn.Module):
    """A stand-in PF that copies the previous segmentation (no warping, no refinement)."""
    stride = 8

    def forward(self, prev_seg, prev_frame, cur_frame, flow=None):
        return {"out": prev_seg}


class IdentityGuide(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        raw = torch.zeros(x.shape[0], self.n, *x.shape[-2:])
        raw[:, 0] = 1.0
        return raw


@pytest.fixture(scope="module")
def clip():
    return SyntheticWorld("city_a", size=(64, 128), seed=0).clip(0, length=6)


def small_pf(**kw):
    torch.manual_seed(0)
    return GSVNet(num_classes=C, flow_width=8, guide_width=8, intra_width=8, **kw)


def test_keyframe_schedule_and_pairs():
    assert keyframe_schedule(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert keyframe_schedule(3, 1).tolist() == [0, 0, 0]
    assert interval_pairs(4) == [(19, 19), (18, 19), (17, 19), (16, 19)]
    assert interval_pairs(2, label_index=5) == [(5, 5), (4, 5)]
    with pytest.raises(ValueError, match="interval"):
        keyframe_schedule(5, 0)
    with pytest.raises(ValueError, match="label_index"):
        interval_pairs(5, label_index=3)


def test_segment_video_returns_one_map_per_frame(clip):
    preds = segment_video(clip.frames[:4], ColourKey(), small_pf(), interval=3, progress=False)
    assert preds.shape == (4, 64, 128) and preds.dtype == torch.int64
    assert preds.min() >= 0 and preds.max() < C


def test_interval_one_equals_per_frame_segmentation(clip):
    key = KeyframeSegmenter(ColourKey(), scale=0.75)
    preds = segment_video(clip.frames, key, small_pf(), interval=1, flows=clip.flow_bw, progress=False)
    with torch.no_grad():
        for t, frame in enumerate(clip.frames):
            ref = F.interpolate(key(frame_tensor(frame)), size=(64, 128), mode="bilinear").argmax(1)[0]
            assert torch.equal(preds[t], ref)


def test_exact_flow_propagates_labels_better_than_copying(clip):
    """Oracle keyframe (one-hot labels), full-resolution PF (stride 1), identity guidance:
    non-keyframes are the keyframe labels warped by the world's exact backward flow (Eq. 1)."""
    labels = torch.as_tensor(clip.labels).long()

    class Oracle(nn.Module):
        def forward(self, x):
            return F.one_hot(labels[0].clamp(max=C - 1), C).permute(2, 0, 1)[None].float()

    pf = small_pf(stride=1)
    pf.fusion.guide = IdentityGuide(pf.fusion.num_weights)
    key = KeyframeSegmenter(Oracle(), scale=1.0, stride=1)
    warped = segment_video(clip.frames, key, pf, interval=6, flows=clip.flow_bw, progress=False)
    copied = segment_video(clip.frames, key, pf, interval=6,
                           flows=np.zeros_like(clip.flow_bw), progress=False)
    assert torch.equal(warped[0], labels[0].clamp(max=C - 1))
    # one step, on pixels the world marks visible in both frames: the warp is (almost) exact
    valid = (labels[1] != 255) & torch.as_tensor(clip.valid_bw[0])
    assert (warped[1] == labels[1])[valid].float().mean() > 0.99
    # five steps, all labelled pixels (occlusions accumulate): warping still beats copying
    valid = labels[-1] != 255
    acc_warp = (warped[-1] == labels[-1])[valid].float().mean()
    acc_copy = (copied[-1] == labels[-1])[valid].float().mean()
    assert acc_warp > acc_copy + 0.02


def test_evaluate_intervals_uses_pairs_b_minus_i_to_b():
    """Frame t is constant t and labelled class t % C; the keyframe net predicts that class and
    PF copies it, so distance i predicts class b - i: mIoU 1 at i = 0 and 0 beyond."""
    T, size = 8, (16, 32)
    frames = np.stack([np.full((*size, 3), t, np.uint8) for t in range(T)])
    labels = np.stack([np.full(size, t % C, np.uint8) for t in range(T)])
    clips = [SimpleNamespace(frames=frames, labels=labels)]
    res = evaluate_intervals(clips, FrameIdKey(), CopyPF(), interval=3, label_index=6, progress=False)
    assert res["pairs"] == [(6, 6), (5, 6), (4, 6)]
    assert res["miou_by_distance"] == [1.0, 0.0, 0.0]
    assert res["min_miou"] == 0.0
    # pooled: class 6 IoU = N / 3N; classes 5 and 4 predicted but absent: IoU 0 -> mean 1/9
    assert res["avg_miou"] == pytest.approx(1 / 9)


def test_miou_by_position_groups_by_distance_from_keyframe():
    labels = np.zeros((5, 2, 2), np.int64)
    preds = labels.copy()
    preds[1] = 1  # distance 1 of the first interval wrong, distance 1 of the second right
    res = miou_by_position(preds, labels, interval=2, num_classes=2)
    assert res[0] == 1.0
    # distance 1: frames 1 and 3; class 0 IoU = 4 / 8, class 1 IoU = 0 / 4 -> 0.25
    assert res[1] == pytest.approx(0.25)


def test_nonkey_loss_and_training_decrease(clip):
    torch.manual_seed(0)
    key = KeyframeSegmenter(ColourKey(), scale=0.75)
    batch = next(sample_sequences([clip], interval=3, batch_size=2, exact_flow=False, seed=1))
    assert batch["frames"].dim() == 5 and batch["frames"].shape[0] == 2 and batch["label"].shape == (2, 64, 128)
    batch = {"frames": batch["frames"][..., :32, :64], "label": batch["label"][..., :32, :64]}  # keep it fast
    pf = small_pf()
    loss, parts = nonkey_loss(pf, key, batch["frames"], batch["label"])
    assert torch.isfinite(loss) and set(parts) == {"ce", "kl"}
    frozen = [p.clone() for p in key.parameters()]
    losses = train_nonkey(pf, key, itertools.repeat(batch), steps=10, lr=0.05, progress=False)
    assert len(losses) == 10 and np.mean(losses[-3:]) < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(frozen, key.parameters()))


def test_training_with_exact_flow_batches(clip):
    batch = next(sample_sequences([clip], interval=3, batch_size=1, exact_flow=True, seed=0))
    k = batch["frames"].shape[1] - 1
    assert batch["flows"].shape == (1, k, 2, 64, 128)
    losses = train_nonkey(small_pf(), ColourKey(), itertools.repeat(batch), steps=2, progress=False)
    assert all(np.isfinite(losses))


def test_flow_supervision_adds_an_epe_term(clip):
    batch = next(sample_sequences([clip], interval=2, batch_size=1, exact_flow=True, seed=0))
    key = KeyframeSegmenter(ColourKey())
    _, parts = nonkey_loss(small_pf(), key, batch["frames"], batch["label"], batch["flows"], flow_weight=1.0)
    assert parts["epe"] > 0
    _, parts = nonkey_loss(small_pf(), key, batch["frames"], batch["label"], batch["flows"])
    assert "epe" not in parts  # without a weight the exact flows drive the warp directly


def test_frame_and_flow_inputs_are_checked():
    with pytest.raises(ValueError, match="uint8"):
        frame_tensor(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="flows"):
        segment_video(np.zeros((3, 16, 16, 3), np.uint8), ColourKey(), small_pf(), interval=3,
                      flows=np.zeros((1, 16, 16, 2), np.float32), progress=False)


def test_overlay_video_is_written(tmp_path, clip):
    preds = np.asarray(clip.labels[:3])
    out = write_overlay_video(tmp_path / "demo" / "overlay.avi", clip.frames[:3], preds, fps=5)
    assert out.is_file() and out.stat().st_size > 0
    assert [p.name for p in out.parent.iterdir()] == ["overlay.avi"]  # no temp file left behind
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3
    with pytest.raises(ValueError, match="alpha"):
        write_overlay_video(tmp_path / "x.avi", clip.frames[:3], preds, alpha=2)


def test_interval_metrics_from_a_longer_run_equal_a_direct_run(clip):
    """One l = 4 evaluation holds every shorter interval's pairs: l = 2 derived == l = 2 run."""
    key, pf = KeyframeSegmenter(ColourKey(), scale=0.75), small_pf()
    long = evaluate_intervals([clip], key, pf, interval=4, label_index=5, progress=False)
    short = evaluate_intervals([clip], key, pf, interval=2, label_index=5, progress=False)
    derived = interval_metrics(long["confusions"], 2)
    assert derived["avg_miou"] == pytest.approx(short["avg_miou"])
    assert derived["min_miou"] == pytest.approx(short["min_miou"])
    assert interval_metrics(long["confusions"], 4)["avg_miou"] == pytest.approx(long["avg_miou"])
    with pytest.raises(ValueError, match="interval"):
        interval_metrics(long["confusions"], 5)


def test_evaluation_leaves_the_wrapped_model_in_its_own_mode(clip):
    """A fresh KeyframeSegmenter (train mode) around an eval-mode model must not flip the model
    to train mode when evaluate_intervals / segment_video restore modes."""
    model = ColourKey().eval()
    pf = small_pf().train()
    evaluate_intervals([clip], KeyframeSegmenter(model), pf, interval=2, label_index=5, progress=False)
    segment_video(clip.frames[:2], model, pf, interval=2, progress=False)
    assert not model.training and pf.training


def test_save_overlay_video_writes_video_and_manifest(tmp_path, clip, monkeypatch):
    import json

    log = tmp_path / "writes.log"
    monkeypatch.setenv("PAPERLIB_WRITES_LOG", str(log))
    paths = save_overlay_video(clip.frames[:3], np.asarray(clip.labels[:3]), "gsvnet", "demo", profile="smoke",
                               root=tmp_path, fps=5)
    assert paths["avi"].name == "demo.smoke.avi" and paths["avi"].stat().st_size > 0
    manifest = json.loads(paths["json"].read_text())
    assert manifest["kind"] == "video" and manifest["frames"] == 3 and "demo.smoke.avi" in manifest["files"]
    assert log.read_text().split() == ["figures/gsvnet/demo.smoke"]
    assert sorted(p.name for p in paths["avi"].parent.iterdir()) == ["demo.smoke.avi", "demo.smoke.json"]
