"""Helpers of the VPLR ablation notebooks (paperlib.propagation.analysis)."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paperlib.models import build
from paperlib import claims
from paperlib.propagation.analysis import (WithExtra, arm_difference, best_per_unit, boundary_pixels,
                                           gap_trend, group_gain_gap, reset_classifier, slope_per_unit,
                                           softmax_entropy, stack_frames, unit_measures)


def test_boundary_pixels_match_eq5_window():
    lab = torch.tensor([[0, 0, 0, 1],
                        [0, 0, 0, 1],
                        [255, 255, 0, 0],
                        [2, 2, 2, 2]])
    got = boundary_pixels(lab, num_classes=3)
    # |N| > 1 in the 3x3 window; void neighbours are not classes
    want = torch.tensor([[0, 0, 1, 1],
                         [0, 0, 1, 1],
                         [1, 1, 1, 1],
                         [0, 1, 1, 1]], dtype=torch.bool)  # (3, 0) sees only 2 and void
    assert torch.equal(got, want)
    assert torch.equal(boundary_pixels(lab[None], 3)[0], want)  # batched form


def test_softmax_entropy_hand_values():
    logits = torch.zeros(1, 4, 1, 2)
    logits[0, 0, 0, 1] = 1000.0               # pixel 1: one-hot
    ent = softmax_entropy(logits)
    assert ent.shape == (1, 1, 2)
    assert ent[0, 0, 0].item() == pytest.approx(math.log(4), abs=1e-6)   # uniform over 4
    assert ent[0, 0, 1].item() == pytest.approx(0.0, abs=1e-6)
    two = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)  # p = (1/4, 3/4)
    assert softmax_entropy(two).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_reset_classifier_tiny_fcn():
    m = build("tiny_fcn", num_classes=32, width=4)
    feats = m.features[0][0].weight.clone()
    reset_classifier(m, 19)
    assert m.classifier.out_channels == 19
    assert torch.equal(m.features[0][0].weight, feats)  # the body is kept
    assert m(torch.zeros(1, 3, 16, 16)).shape == (1, 19, 16, 16)


def test_reset_classifier_needs_a_conv():
    with pytest.raises(ValueError, match="no Conv2d"):
        reset_classifier(nn.Linear(3, 3), 2)


class _Toy:
    def __init__(self, n, tag):
        self.n, self.tag = n, tag

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        j = key[0] if isinstance(key, tuple) else key
        return {"tag": self.tag, "j": j}

    def load_label(self, i):
        return np.full((2, 2), i, np.uint8)

    def fingerprint(self):
        return f"fp-{self.tag}"


def test_with_extra_hides_extra_images_from_len_but_loads_them():
    ds = WithExtra(_Toy(3, "fine"), _Toy(2, "coarse"))
    assert len(ds) == 3 and ds.fingerprint() == "fp-fine"
    assert ds[(4, 5, 6)]["tag"] == "coarse" and ds[(4, 5, 6)]["j"] == 1
    assert ds[2]["tag"] == "fine"
    with pytest.raises(IndexError):
        ds[5]


# --- derived per-unit measures for paperlib.claims -------------------------------------------------
def _curves(gaps_by_seed, ks=(0, 1, 3)):
    """Fig. 4-like table: CE at 10 + seed, relaxation = CE + gap(k)."""
    rows = []
    for seed, gaps in gaps_by_seed.items():
        for k, g in zip(ks, gaps):
            rows.append({"motion": "VRec", "k": k, "loss": "no relaxation", "seed": seed, "mIoU": 10.0 + seed})
            rows.append({"motion": "VRec", "k": k, "loss": "relaxation", "seed": seed, "mIoU": 10.0 + seed + g})
    return pd.DataFrame(rows)


def test_arm_difference_pairs_on_the_keys():
    t = _curves({0: [1.0, 2.0, 3.0]})
    d = arm_difference(t, "relaxation", "no relaxation", arm="loss", value="mIoU", on=["k", "seed"])
    assert d.set_index("k")["mIoU"].to_dict() == {0: 1.0, 1: 2.0, 3: 3.0}
    with pytest.raises(ValueError, match="no rows"):
        arm_difference(t, "relaxation", "nope", arm="loss", value="mIoU", on=["k", "seed"])


def test_slope_per_unit_and_nan():
    t = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "k": [0, 1, 2] * 2, "v": [0.0, 2.0, 4.0, 1.0, np.nan, 3.0]})
    s = slope_per_unit(t, "k", "v").set_index("seed")["v"]
    assert s[0] == pytest.approx(2.0) and math.isnan(s[1])
    one = slope_per_unit(t[t.k == 0], "k", "v")  # one x: no slope
    assert one["v"].isna().all()


def test_best_per_unit_tie_goes_to_the_smallest_x():
    t = pd.DataFrame({"seed": [0, 0, 0], "k": [3, 0, 1], "v": [5.0, 5.0, 4.0]})
    assert best_per_unit(t, "k", "v")["k"].tolist() == [0.0]


def test_gap_trend_slope_and_best_shift():
    # gap grows 1 -> 2 -> 3 over k = 0, 1, 3; the relaxed curve's best is k = 3, CE's is flat (k = 0)
    t = _curves({0: [1.0, 2.0, 3.0], 1: [1.0, 1.5, 2.5]})
    m = gap_trend(t, "relaxation", "no relaxation", arm="loss", by=["motion"])
    assert list(m.columns) == ["measure", "motion", "seed", "value"]
    slope = m[m.measure == "gap slope"].set_index("seed")["value"]
    assert slope[0] == pytest.approx(np.polyfit([0, 1, 3], [1, 2, 3], 1)[0]) and slope[1] > 0
    assert m[m.measure == "best shift"]["value"].tolist() == [3.0, 3.0]
    # min_x drops k = 0 from the slope only
    m1 = gap_trend(t, "relaxation", "no relaxation", arm="loss", by=["motion"], min_x=1)
    assert m1[(m1.measure == "gap slope") & (m1.seed == 0)]["value"].item() == pytest.approx(0.5)


def test_gap_trend_equal_curves_are_no_gain_for_the_claims():
    """The issue's misleading verdicts: a tie in the best length, a flat gap -- never a gain."""
    t = _curves({0: [0.0, 0.0, 0.0], 1: [0.0, 0.0, 0.0], 2: [0.0, 0.0, 0.0]})
    trend = gap_trend(t, "relaxation", "no relaxation", arm="loss", by=["motion"])
    decl = claims.parse("vplr", [
        {"id": "grows", "item": "x", "text": "gap grows", "kind": "directional",
         "a": {"measure": "gap slope", "motion": "VRec"}, "value": 0.0, "metric": "value"},
        {"id": "longer", "item": "x", "text": "best moves", "kind": "directional",
         "a": {"measure": "best shift", "motion": "VRec"}, "value": 0.0, "metric": "value"},
        {"id": "k1", "item": "x", "text": "relax > ce at 1", "kind": "directional",
         "a": {"motion": "VRec", "k": 1, "loss": "relaxation"},
         "b": {"motion": "VRec", "k": 1, "loss": "no relaxation"}}])
    res = claims.evaluate(decl, stack_frames(t, trend), value="mIoU")
    assert [r.verdict for r in res] == ["inconclusive"] * 3
    assert res[2].n == 3  # k = 1 still selects the integer rows after stacking with the trend


def test_group_gain_gap_difference_of_differences():
    rows = []
    for seed in (0, 1):
        for method, thin, other in (("Baseline", 10.0, 50.0), ("+ X", 15.0 + seed, 51.0)):
            rows += [{"class": "thin classes", "method": method, "seed": seed, "IoU": thin},
                     {"class": "other classes", "method": method, "seed": seed, "IoU": other}]
    g = group_gain_gap(pd.DataFrame(rows), "+ X")
    assert g["class"].unique().tolist() == ["thin − other gain"]
    assert g.set_index("seed")["IoU"].to_dict() == {0: pytest.approx(4.0), 1: pytest.approx(5.0)}


def test_unit_measures_means_and_abs_k_slopes():
    rows = [{"motion": "DIS", "pairing": p, "k": k, "clip": c, "accuracy": 90.0 - abs(k) * (1 + c),
             "image_error": np.nan if p == "LP" else 2.0 * abs(k)}
            for p in ("LP", "JP") for k in (-2, -1, 1, 2) for c in (0, 1)]
    m = unit_measures(pd.DataFrame(rows), unit="clip", by=["motion", "pairing"], means=["accuracy", "image_error"],
                      slopes=["accuracy", "image_error"]).set_index(["measure", "pairing", "clip"])["value"]
    assert m[("accuracy", "LP", 0)] == pytest.approx(88.5)
    assert m[("accuracy slope", "LP", 1)] == pytest.approx(-2.0)
    assert m[("image_error slope", "JP", 0)] == pytest.approx(2.0)
    assert math.isnan(m[("image_error", "LP", 0)])  # LP has no image error
