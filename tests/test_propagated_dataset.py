"""VPLR propagated training sets on disk (paperlib.propagation.dataset): identity motion returns
the input, JP image and label stay aligned under a known shift (and LP with the exact motion
matches the real frame), accumulated = k x non-accumulated per direction, the export is reused,
bad parameters name themselves, and the train set is real + propagated."""
from __future__ import annotations

import numpy as np
import pytest

from paperlib.config import config_from_params
from paperlib.data.base import DatasetError, read_image, read_label_file
from paperlib.data.labels import CITYSCAPES_PALETTE
from paperlib.data.synthetic.export import label_ids
from paperlib.propagation import (MotionNet, export_propagated, propagated_train_set, read_samples,
                                  sequence_root)
from paperlib.propagation import dataset as D

H, W, T, LABELLED = 16, 24, 30, 19
CITY = "testcity"


def _paint(label: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    lut[:19] = CITYSCAPES_PALETTE
    return lut[label]


def _write_root(root, dx: int, clips: int = 2, seed: int = 0):
    """A Cityscapes-layout root whose snippets translate a block label map right by ``dx`` px per
    frame (frame f = frame 19 shifted by dx * (f - 19), wrapping), with exact flow files."""
    rng = np.random.default_rng(seed)
    for c in range(clips):
        base = np.kron(rng.integers(0, 19, (H // 4, W // 4)), np.ones((4, 4), int)).astype(np.uint8)
        seq = f"{c:06d}"
        for f in range(T):
            lab = np.roll(base, dx * (f - LABELLED), axis=1)
            name = f"{CITY}_{seq}_{f:06d}"
            D._write_png(root / "leftImg8bit_sequence" / "train" / CITY / f"{name}_leftImg8bit.png", _paint(lab))
            flows = root / "flow_sequence" / "train" / CITY
            flows.mkdir(parents=True, exist_ok=True)
            np.save(flows / f"{name}_flowBw.npy", np.tile(np.float32([-dx, 0]), (H, W, 1)))
            np.save(flows / f"{name}_flowFw.npy", np.tile(np.float32([dx, 0]), (H, W, 1)))
            if f == LABELLED:
                D._write_png(root / "leftImg8bit" / "train" / CITY / f"{name}_leftImg8bit.png", _paint(lab))
                D._write_png(root / "gtFine" / "train" / CITY / f"{name}_gtFine_labelIds.png", label_ids(lab))
    return root


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "data"))
    return tmp_path


def _pairs(root):
    """(name, offset, image, train-id label) of every sample of a selection."""
    out = []
    for row in read_samples(root):
        img = read_image(root / "leftImg8bit" / "train" / CITY / f"{row['name']}_leftImg8bit.png")
        lab = read_label_file(root / "gtFine" / "train" / CITY / f"{row['name']}_gtFine_labelTrainIds.png")
        out.append((row["name"], row["offset"], img, lab))
    return out


def test_identity_motion_returns_the_input(data):
    root = _write_root(data / "static", dx=0, clips=1)
    sel = export_propagated(root, motion="exact", joint=True, k=2, accumulated=True, progress=False)
    truth = read_label_file(root / "gtFine" / "train" / CITY / f"{CITY}_000000_000019_gtFine_labelIds.png")
    img0 = read_image(root / "leftImg8bit" / "train" / CITY / f"{CITY}_000000_000019_leftImg8bit.png")
    pairs = _pairs(sel)
    assert sorted(p[1] for p in pairs) == [-2, -1, 1, 2]
    for _, _, img, lab in pairs:
        assert np.array_equal(img, img0)
        assert np.array_equal(label_ids(lab), truth)


@pytest.mark.parametrize("joint", [True, False])
def test_pairs_stay_aligned_under_a_known_shift(data, joint):
    root = _write_root(data / "moving", dx=2)
    sel = export_propagated(root, motion="exact", joint=joint, k=3, progress=False)
    pairs = _pairs(sel)
    assert sorted(p[1] for p in pairs) == [-3, -3, 3, 3]
    for name, off, img, lab in pairs:
        valid = lab != 255
        # content moves 2 px a frame: 3 steps sample 6 px outside the frame on one side -> void
        assert valid.sum() == H * (W - 6)
        assert np.array_equal(img[valid], _paint(lab)[valid])  # image and label agree
        real = read_image(data / "moving" / "leftImg8bit_sequence" / "train" / CITY / f"{name}_leftImg8bit.png")
        if not joint:
            assert np.array_equal(img, real)  # LP: the real frame I(i+k)
        assert np.array_equal(img[valid], real[valid])  # exact motion: the propagated frame is right


def test_accumulated_has_k_times_the_samples_per_direction(data):
    root = _write_root(data / "moving", dx=1)
    for direction, per_clip in (("forward", 1), ("backward", 1), ("both", 2)):
        non = read_samples(export_propagated(root, motion="exact", k=3, direction=direction, progress=False))
        acc = read_samples(export_propagated(root, motion="exact", k=3, accumulated=True, direction=direction,
                                             progress=False))
        assert len(non) == 2 * per_clip and len(acc) == 3 * len(non)
        sign = {"forward": {1}, "backward": {-1}, "both": {1, -1}}[direction]
        assert {int(np.sign(r["offset"])) for r in acc} == sign
        assert {abs(r["offset"]) for r in acc} == {1, 2, 3} and {abs(r["offset"]) for r in non} == {3}


def test_export_is_reused_and_writes_nothing_the_second_time(data, monkeypatch):
    root = _write_root(data / "moving", dx=1, clips=1)
    first = export_propagated(root, motion="exact", k=1, progress=False)
    before = {p: p.stat().st_mtime_ns for p in (data / "data").rglob("*") if p.is_file()}

    def fail(*a, **k):
        raise AssertionError("wrote a file on a reused export")
    monkeypatch.setattr(D, "_write_png", fail)
    monkeypatch.setattr(D, "_link", fail)
    assert export_propagated(root, motion="exact", k=1, progress=False) == first
    # a different k of the same motion reuses the pool (depth 5) and only links a new selection
    monkeypatch.undo()
    monkeypatch.setenv("PAPERLIB_DATA", str(data / "data"))
    monkeypatch.setattr(D, "_write_png", fail)
    export_propagated(root, motion="exact", k=4, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert not list((data / "data").rglob(".*tmp-*"))


def test_bad_parameters_name_themselves(data):
    root = _write_root(data / "moving", dx=1, clips=1)
    with pytest.raises(ValueError, match="motion"):
        export_propagated(root, motion="flownet", k=1)
    with pytest.raises(ValueError, match="k "):
        export_propagated(root, motion="exact", k=0)
    with pytest.raises(ValueError, match="direction"):
        export_propagated(root, motion="exact", k=1, direction="sideways")
    with pytest.raises(ValueError, match="reconstruction"):
        export_propagated(root, motion="vrec", k=1, motion_model=MotionNet("prediction", 0.1))
    with pytest.raises(ValueError, match="k = 11"):
        export_propagated(root, motion="exact", k=11, progress=False)  # frame 19 + 11 > 29
    with pytest.raises(DatasetError, match="leftImg8bit_sequence"):
        sequence_root(data / "nowhere")
    (data / "noflow" / "leftImg8bit_sequence" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="flow_sequence"):
        export_propagated(data / "noflow", motion="exact", k=1)
    cfg = config_from_params("smoke", dataset="camvid", data_root=str(data), num_classes=11)
    with pytest.raises(ValueError, match="'dataset'"):
        sequence_root(cfg)


def test_train_set_is_real_plus_propagated(data):
    root = _write_root(data / "moving", dx=1)
    cfg = config_from_params("smoke", dataset="cityscapes", data_root=str(root), crop_size=(16, 16), progress=False)
    base = propagated_train_set(cfg, k=0)
    assert len(base) == 2 and len(base.datasets) == 1
    ds = propagated_train_set(cfg, motion="exact", k=2, accumulated=True)
    assert [len(d) for d in ds.datasets] == [2, 8]
    item = ds[5]
    assert item["source"] == 1 and tuple(item["image"].shape) == (3, 16, 16) and tuple(item["label"].shape) == (16, 16)
    with pytest.raises(ValueError, match="k must be"):
        propagated_train_set(cfg, k=-1)
