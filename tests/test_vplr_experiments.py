"""VPLR's calibration experiments: the arms hold the frames they say, every arm gets epochs of the
same length, and a run yields the measures the controls read."""
import json

import numpy as np
import pytest

from fixtures import real_camvid
from paperlib.propagation import experiments as X

@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))  # trained arms are cached: keep them out of data/


TINY = X.Regime(size=(64, 128), labelled=2, val_clips=1, val_frames=(19,), width=8, steps=4, crop=(32, 32),
                batch=4, epoch=8)


def test_frame_set_spreads_an_epoch_evenly_over_its_frames():
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(3)]
    ds = X.FrameSet(frames, [np.zeros((4, 4), np.uint8)] * 3, length=8)
    counts = np.bincount([ds.frame(i) for i in range(len(ds))], minlength=3)
    assert len(ds) == 8 and counts.sum() == 8 and counts.max() - counts.min() <= 1
    assert int(ds[7]["image"][0, 0, 0]) == 2
    with pytest.raises(ValueError, match="as many labels"):
        X.FrameSet(frames, [])


def test_arms_hold_the_labelled_frames_and_the_exact_neighbours():
    clips = X._clips(TINY, "train")
    images, labels = X.arm_frames(TINY, "baseline")
    assert len(images) == 2 and np.array_equal(labels[0], clips[0].labels[X.LABELLED])
    images, labels = X.arm_frames(TINY, "oracle+-3")
    assert len(images) == 6
    assert np.array_equal(labels[2], clips[0].labels[X.LABELLED - 3])
    assert np.array_equal(labels[3], clips[0].labels[X.LABELLED + 3])
    _, noisy = X.arm_frames(TINY, "noisy")
    changed = np.mean(noisy[0] != clips[0].labels[X.LABELLED])
    assert 0 < changed < 0.2  # boundaries moved, interiors kept
    with pytest.raises(ValueError, match="leaves"):
        X.arm_frames(TINY, "oracle+-11")
    with pytest.raises(ValueError, match="unknown arm"):
        X.arm_frames(TINY, "propagated")


def test_a_run_scores_held_out_fit_and_thin_classes():
    rows = X.run_arms(TINY, ["baseline", "oracle+-1"], [0], curve_every=2, progress=False)
    base, oracle = rows
    assert base["train_frames"] == 2 and oracle["train_frames"] == 6
    for r in rows:
        assert 0 <= r["mIoU"] <= 100 and 0 <= r["boundary_acc"] <= 100 and 0 <= r["fit_mIoU"] <= 100
        assert "iou_pole" in r and np.isfinite(r["loss_last"])
    assert [s for s, _ in base["curve"]][:2] == [2, 4]
    df = X.control_frame(rows)
    own = df[df.arm == "baseline (own labelled frames)"]
    assert len(own) == 1 and own.mIoU.iloc[0] == base["fit_mIoU"]


def test_arm_names_parse_and_bad_ones_are_refused():
    assert X.Arm.parse("noisy") == X.Arm("baseline", noisy=True)
    assert X.Arm.parse("jpacc+-3:vrec|noisy|relax") == X.Arm("jpacc", 3, "vrec", noisy=True, relax=True)
    assert X.Arm.parse("oracle+-2") == X.Arm("oracle", 2)
    for bad in ("jp+-2", "jp+-2:flownet", "lp+-0:dis", "baseline|soft", "oracle+-2:dis"):
        with pytest.raises(ValueError, match="arm"):
            X.Arm.parse(bad)
    with pytest.raises(ValueError, match="exact labels"):
        X.arm_frames(TINY, "oracle+-1|noisy")


def test_propagated_arms_pair_the_right_frames_and_exact_flow_labels_are_accurate():
    clips = X._clips(TINY, "train")
    images, labels, truth = X.arm_frames(TINY, "lp+-2:exact", with_truth=True)
    assert len(images) == 6 and truth[:2] == [None, None]
    # LP pairs the real frame i+-k with the propagated label (offsets -2, +2 per clip)
    assert np.array_equal(images[2], clips[0].frames[X.LABELLED - 2])
    assert np.array_equal(truth[3], clips[0].labels[X.LABELLED + 2])
    acc = X.propagated_accuracy(labels, truth)
    assert acc["prop_acc"] > 60 and acc["prop_boundary_acc"] < acc["prop_acc"]
    # JP pairs the propagated frame instead; accumulated JP has every offset 1..k
    jp, _ = X.arm_frames(TINY, "jp+-2:exact")
    assert len(jp) == 6 and not np.array_equal(jp[2], clips[0].frames[X.LABELLED - 2])
    assert len(X.arm_frames(TINY, "jpacc+-2:dis")[0]) == 2 + 2 * 4
    # noisy labelled frames propagate their noise; DIS is less accurate than exact flow
    _, noisy, truth_n = X.arm_frames(TINY, "lp+-2:exact|noisy", with_truth=True)
    assert X.propagated_accuracy(noisy, truth_n)["prop_acc"] < acc["prop_acc"]
    assert X.propagated_accuracy([], []) == {}


def test_a_relaxation_run_records_propagated_label_accuracy():
    row = X.run_arm(TINY, "jp+-1:exact|noisy|relax", 0)
    assert row["train_frames"] == 6 and 0 < row["prop_acc"] <= 100 and np.isfinite(row["loss_last"])


def test_an_arm_run_is_trained_once_and_then_loaded(monkeypatch):
    first = X.run_arm(TINY, "baseline", 1)
    monkeypatch.setattr(X, "arm_frames", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    again = X.run_arm(TINY, "baseline", 1)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)  # NaN-safe equality


def test_canonical_arm_names_share_one_cached_run():
    assert X.Arm.parse("baseline|noisy").name == "noisy" and X.Arm.parse("noisy|relax").name == "noisy|relax"
    assert X.Arm.parse("jp+-3:vrec|relax|noisy").name == "jp+-3:vrec|noisy|relax"
    first = X.run_arm(TINY, "noisy", 0)
    again = X.run_arm(TINY, "baseline|noisy", 0)
    assert again["arm"] == "baseline|noisy" and again["mIoU"] == first["mIoU"]


def test_profile_setup_gives_the_cpu_regime_four_seeds_and_two_processes():
    assert X.profile_setup("cpu") == (X.CPU_REGIME, [0, 1, 2, 3], 2)
    assert X.profile_setup("smoke", seeds=[5], jobs=3) == (X.SMOKE_REGIME, [5], 3)
    assert X.CPU_REGIME.width == 64 and X.CPU_REGIME.noise_px == 3.0  # the regime the calibration chose


def test_frame_set_serves_centroid_crops_and_another_label_set():
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(2)]
    labels = [np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)]
    ds = X.FrameSet(frames, labels, classes=("a", "b", "c"))
    assert ds.num_classes == 3 and ds.class_names == ("a", "b", "c")
    assert X.FrameSet(frames, labels).num_classes == 19  # Cityscapes' by default
    assert ds[(1, 2, 3)]["centroid"] == (2, 3) and "centroid" not in ds[(1, -1, -1)]
    changed = X.FrameSet(frames, [labels[0], np.zeros((4, 4), np.uint8)], classes=("a", "b", "c"))
    assert ds.fingerprint() != changed.fingerprint()
    assert ds.fingerprint() == X.FrameSet(frames, labels, classes=("a", "b", "c")).fingerprint()


CAMVID = real_camvid()


@pytest.mark.skipif(not (CAMVID / "train").is_dir(), reason=f"real CamVid not found at {CAMVID}")
def test_camvid_rows_train_on_real_camvid_and_are_cached(monkeypatch):
    frames = X.camvid_frames(str(CAMVID), "test")
    assert len(frames) == 233 and frames.num_classes == 11 and frames.labels[0].shape == (180, 240)
    row = X.run_camvid_arm(TINY, str(CAMVID), "class_uniform", 0)
    assert {f"iou_{c}" for c in frames.class_names} <= set(row) and 0 <= row["mIoU"] <= 100
    monkeypatch.setattr(X, "score", lambda *a, **k: pytest.fail("retrained a cached CamVid row"))
    assert X.run_camvid_arm(TINY, str(CAMVID), "class_uniform", 0)["mIoU"] == row["mIoU"]
    with pytest.raises(ValueError, match="unknown CamVid arm"):
        X.run_camvid_arm(TINY, str(CAMVID), "propagated", 0)
