"""GSVNet's calibration measures: warped-label accuracy against the world's truth, and the
keyframe role's curve."""
import numpy as np
import pytest
import torch

from paperlib.config import config_from_params
from paperlib.data.synthetic import SyntheticWorld
from paperlib.video import GSVNet
from paperlib.video import calibration as C
from paperlib.video import train as vtrain


class _Clip:
    """A clip whose content slides right by ``v`` px per frame (exact backward flow (-v, 0))."""

    def __init__(self, v=8, length=4, size=(32, 96)):
        h, w = size
        base = np.zeros((h, w + v * length), np.int64)
        for x0 in (8, 40, 56, 96, 120):  # 8-px-wide stripes of class 1, irregularly spaced
            base[:, x0:x0 + 8] = 1
        self.labels = np.stack([base[:, v * (length - t):v * (length - t) + w] for t in range(length)])
        self.frames = np.stack([np.repeat((lab * 200)[..., None], 3, -1).astype(np.uint8) for lab in self.labels])
        self.flow_bw = np.zeros((length - 1, h, w, 2), np.float32)
        self.flow_bw[..., 0] = -v


def test_exact_flow_warps_labels_better_than_copying_and_chains_over_distance():
    clip = _Clip()
    exact, zero = C.flow_source("exact"), C.flow_source("zero")
    for d in (1, 3):
        e = C.warped_label_scores([clip], exact, distance=d, num_classes=2)
        z = C.warped_label_scores([clip], zero, distance=d, num_classes=2)
        assert e["pairs"] == z["pairs"] == 4 - d
        assert e["mIoU"] > z["mIoU"] + 20 and e["boundary acc"] > z["boundary acc"]
    # one 8-px step is one 1/8 pixel: warping the pooled shares by it is right but where content enters
    assert C.warped_label_scores([clip], exact, distance=1, num_classes=2)["pixel acc"] > 95.0
    with pytest.raises(ValueError, match="distance must be >= 1"):
        C.warped_label_scores([clip], exact, distance=0)
    with pytest.raises(ValueError, match="needs the GSVNet"):
        C.flow_source("O")
    with pytest.raises(ValueError, match="unknown flow 'farneback'"):
        C.flow_source("farneback")


def test_flow_table_repeats_the_seed_free_flows_and_pairs_the_learned_one_by_seed():
    clips = [SyntheticWorld("city_a", size=(64, 128), seed=0).clip(1000, length=4)]
    torch.manual_seed(0)
    df = C.flow_table({0: GSVNet(), 1: GSVNet()}, clips, "64x128", distances=(1, 2))
    assert len(df) == 2 * 2 * len(C.FLOWS) and set(df["flow"]) == set(C.FLOWS)
    fixed = df[df.flow != "O"].groupby(["distance", "flow"])["mIoU"].nunique()
    assert (fixed == 1).all()  # exact / DIS / zero do not depend on the seed
    assert df[(df.flow == "exact")]["EPE"].eq(0).all() and (df[df.flow == "zero"]["EPE"] > 0).all()
    assert df[df.flow == "O"].groupby("seed")["mIoU"].first().nunique() == 2  # two different flow nets


def test_a_curve_recording_keyframe_run_is_its_own_role():
    cfg = config_from_params("smoke", model="tiny_fcn", model_width=4, steps=4, name="k", progress=False)
    plain = vtrain.keyframe_cache_path(cfg)
    assert vtrain.keyframe_cache_path(cfg.replace(name="other")) == plain
    assert vtrain.keyframe_cache_path(cfg.replace(eval_every=2)) != plain
    c = C.keyframe_config("smoke", "tiny_fcn", 4, steps=12, points=6)
    assert c.eval_every == 2 and c.steps == 12
    assert C.plateau_gain([[2, 10.0], [4, 10.5]]) == pytest.approx(0.5) and np.isnan(C.plateau_gain([[2, 1.0]]))
