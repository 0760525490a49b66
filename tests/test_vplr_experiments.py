"""VPLR's calibration experiments: the arms hold the frames they say, every arm gets epochs of the
same length, and a run yields the measures the controls read."""
import numpy as np
import pytest

from paperlib.propagation import experiments as X

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
