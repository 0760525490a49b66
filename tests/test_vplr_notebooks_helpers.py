"""Helpers of the VPLR ablation notebooks (paperlib.propagation.analysis)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.models import build
from paperlib.propagation.analysis import (WithExtra, boundary_pixels, compare_seeds, describe,
                                           reset_classifier, softmax_entropy)


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


def test_compare_seeds_spread_rules():
    c = compare_seeds([3.0, 5.0], [1.0, 1.0])   # diff 3, spread sqrt(2)
    assert c["diff"] == pytest.approx(3.0) and c["spread"] == pytest.approx(math.sqrt(2))
    assert c["holds"] and c["outcome"] == "higher"
    c = compare_seeds([1.0, 2.0], [1.2, 1.4])   # diff 0.2 < spread 0.707
    assert c["holds"] and c["outcome"] == "within spread"
    c = compare_seeds([0.0], [1.0])             # one seed: no spread
    assert not c["holds"] and c["outcome"] == "lower" and c["spread"] == 0.0
    assert "lower" in describe(c)
