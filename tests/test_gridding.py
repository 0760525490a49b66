"""Gridding and HDC (DUC/HDC paper Sec. 3.2, Eq. 2, Figure 2; Sec. 4.1 Table 2), computed."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.gridding import (coverage, effective_receptive_field, erf_stats, has_gridding, hdc_valid,
                               hole_fraction, max_gap, measured_gap, offsets_1d, receptive_field,
                               rf_increase)
from paperlib.models.backbones import hdc_block_rates

# rates, M_2 by Eq. 2 (hand-computed), Eq. 2 rule valid, holes by brute force
PATTERNS = [
    ((1, 2, 5), 2, True, False),      # the paper's example that works
    ((1, 2, 9), 5, False, True),      # the paper's example that does not (M_2 = 5)
    ((2, 2, 2), 2, False, True),      # Figure 2 (a): common factor 2, checkerboard
    ((2, 4, 8), 4, False, True),      # "common factor relationship (like 2, 4, 8)"
    ((1, 2, 3), 2, True, False),      # Figure 2 (b)
    ((1, 2, 5, 9), 2, True, False),   # Dilation-bigger's res4 group
    ((1, 2, 4), 2, True, False),
    ((1, 3), 3, True, False),         # M_2 = K exactly: gaps of 3 are filled by a 3-wide kernel
    ((1, 4), 4, False, True),
    ((2, 1), 1, True, False),         # Dilation-conv's pair
    ((2, 2), 2, False, True),
]


@pytest.mark.parametrize("rates, m2, valid, holes", PATTERNS)
def test_eq2_and_brute_force_agree(rates, m2, valid, holes):
    assert max_gap(rates) == m2
    assert measured_gap(rates) == m2          # Eq. 2's M_2 is the measured largest gap
    assert hdc_valid(rates) is valid
    assert has_gridding(rates) is holes
    assert hdc_valid(rates) is (not holes)
    cov = coverage(rates)
    assert bool(cov.all()) is (not holes)


def test_eq2_exact_on_every_rising_pattern():
    """Exhaustive: for non-decreasing rates (the paper's sawtooth 'rising edge'), Eq. 2 gives the
    true largest gap, and with r_1 = 1 the rule M_2 <= 3 is exactly 'no holes'."""
    for n in (2, 3, 4):
        for rates in itertools.combinations_with_replacement(range(1, 10), n):
            assert max_gap(rates) == measured_gap(rates), rates
            if rates[0] == 1:
                assert hdc_valid(rates) is not has_gridding(rates), rates


def test_eq2_is_a_heuristic_off_the_sawtooth():
    # a falling rate: Eq. 2 over-estimates the gap (9 vs 3) yet the square is covered
    assert max_gap((1, 5, 1)) == 9 and measured_gap((1, 5, 1)) == 3
    assert not hdc_valid((1, 5, 1)) and not has_gridding((1, 5, 1))
    # a big first rate: the rule only looks at layers 2..n, and misses the holes
    assert hdc_valid((5, 1)) and has_gridding((5, 1))


def test_hand_computed_coverage_maps():
    assert coverage([1]).shape == (3, 3) and coverage([1]).all()
    c3 = coverage([3])  # one 3x3 conv at rate 3: 9 taps on a 7x7 square
    expect = np.zeros((7, 7), bool)
    expect[::3, ::3] = True
    np.testing.assert_array_equal(c3, expect)
    c22 = coverage([2, 2])  # Figure 2 (a) with two layers: even offsets -4..4 only
    expect = np.zeros((9, 9), bool)
    expect[::2, ::2] = True
    np.testing.assert_array_equal(c22, expect)
    assert coverage([1, 2]).shape == (7, 7) and coverage([1, 2]).all()
    one = offsets_1d([1, 2, 9])
    np.testing.assert_array_equal(one, [-12, -11, -10, -9, -8, -7, -6, -3, -2, -1, 0, 1, 2, 3,
                                        6, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(coverage([1, 2, 9]), np.outer(np.isin(np.arange(-12, 13), one),
                                                                np.isin(np.arange(-12, 13), one)))
    assert coverage([1], kernel=5).shape == (5, 5)
    assert offsets_1d([2], kernel=5).tolist() == [-4, -2, 0, 2, 4]


def test_receptive_field_and_hole_fraction():
    assert receptive_field([1]) == 3
    assert receptive_field([2, 2, 2]) == 13 == coverage([2, 2, 2]).shape[0]
    assert receptive_field([1, 2, 3], kernel=5) == 25
    assert hole_fraction([1, 2, 3]) == 0.0
    assert hole_fraction([2, 2]) == pytest.approx(1 - (5 / 9) ** 2)
    assert hole_fraction([2] * 20) > 0.74  # "at least 75% when r = 2", minus the border


def test_hdc_schedules_give_the_papers_rates():
    """Sec. 4.1's four variants for ResNet-101 (res4 = 23 blocks, res5 = 3)."""
    rf = hdc_block_rates("dilation_rf")
    assert rf["layer3"] == [1, 2, 3] * 7 + [2, 2] and rf["layer4"] == [3, 4, 5]
    big = hdc_block_rates("dilation_bigger")
    assert big["layer3"] == [1, 2, 5, 9] * 5 + [1, 2, 5] and big["layer4"] == [5, 9, 17]
    conv = hdc_block_rates("dilation_conv")
    assert conv["layer3"] == [2, 1] * 11 + [2] and conv["layer4"] == [2, 1, 2]
    assert set(hdc_block_rates("no_dilation")["layer3"]) == {1}
    base = hdc_block_rates("baseline")
    # the whole dilated stack: DeepLab-v2's 2s and 4s grid, every HDC variant is hole-free
    assert has_gridding(base)
    for v in ("no_dilation", "dilation_conv", "dilation_rf", "dilation_bigger"):
        assert not has_gridding(hdc_block_rates(v)), v


def test_rf_increase_by_code():
    """Table 2's 'RF increased' (feature pixels along one dimension, vs the same convs undilated):
    one 3x3 conv at rate r adds 2 (r - 1)."""
    got = {v: rf_increase(hdc_block_rates(v)) for v in
           ("no_dilation", "dilation_conv", "dilation_rf", "dilation_bigger", "baseline")}
    assert got == {"no_dilation": 0, "dilation_conv": 2 * (12 + 2), "dilation_rf": 2 * (7 * 3 + 2 + 9),
                   "dilation_bigger": 2 * (5 * 13 + 5 + 28), "baseline": 2 * (23 + 9)}
    # Dilation-RF keeps DeepLab-v2's receptive field ("the receptive field unchanged at the top layer")
    assert rf_increase(hdc_block_rates("dilation_rf"), baseline=hdc_block_rates("baseline")) == 0
    assert rf_increase([2, 4], stride=8) == 2 * (1 + 3) * 8
    with pytest.raises(ValueError, match="baseline"):
        rf_increase([1, 2], baseline=[1])


@pytest.mark.parametrize("call", [
    lambda: coverage([]), lambda: coverage([0, 1]), lambda: coverage([1.5]), lambda: coverage([1], kernel=2),
    lambda: max_gap([3]), lambda: max_gap([1, 2], kernel=5), lambda: rf_increase([1], stride=0),
])
def test_bad_rates_raise(call):
    with pytest.raises(ValueError):
        call()


def _linear_stack(rates):
    convs = [nn.Conv2d(1, 1, 3, padding=r, dilation=r, bias=False) for r in rates]
    for c in convs:
        nn.init.constant_(c.weight, 1.0)
    return nn.Sequential(*convs)


@pytest.mark.parametrize("rates", [(2, 2), (1, 2, 3), (1, 2, 9)])
def test_erf_support_is_the_coverage(rates):
    """With positive linear convolutions the gradient is non-zero exactly on the footprint."""
    side = receptive_field(rates)
    size = side + 6
    erf = effective_receptive_field(_linear_stack(rates), (size, size), channels=1, n_samples=1)
    assert erf.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(erf[3:3 + side, 3:3 + side] > 0, coverage(rates))
    assert (erf > 0).sum() == coverage(rates).sum()
    stats = erf_stats(erf, rf=side)
    assert stats["hole_fraction"] == pytest.approx(hole_fraction(rates))
    assert stats["rf_fraction"] == pytest.approx(1 - hole_fraction(rates))


def test_erf_of_a_segmentation_model_and_errors():
    from paperlib.models import build
    torch.manual_seed(0)
    net = build("deeplabv2_resnet101", num_classes=3, width=4, depth=18, hdc="dilation_rf").eval()
    erf = effective_receptive_field(net, (48, 48), n_samples=2, batch_size=2)
    assert erf.shape == (48, 48) and erf.max() == pytest.approx(1.0)
    assert erf[24, 24] > 0 and erf_stats(erf)["support"] > 100
    with pytest.raises(ValueError, match="position"):
        effective_receptive_field(net, (48, 48), n_samples=1, position=(99, 0))
    with pytest.raises(ValueError, match="input_size"):
        effective_receptive_field(net, (48,))
    assert np.isnan(erf_stats(np.zeros((4, 4)))["hole_fraction"])
