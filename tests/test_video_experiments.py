"""paperlib.video.experiments: the GSVNet regime, its collapsed-run rule and the hold baseline."""
import pandas as pd
import pytest
import torch

from paperlib.data.synthetic import SyntheticWorld
from paperlib.video import evaluate_intervals
from paperlib.video import experiments as X


def test_regime_overrides_and_unknown_settings():
    R = X.regime("smoke", pf_steps=7, seeds=None)
    assert R["pf_steps"] == 7 and R["seeds"] == X.REGIMES["smoke"]["seeds"]
    assert X.REGIMES["smoke"]["pf_steps"] != 7  # the table itself is untouched
    with pytest.raises(ValueError, match="pf_step"):
        X.regime("smoke", pf_step=3)
    with pytest.raises(ValueError, match="profile"):
        X.regime("laptop")
    assert X.REGIMES["cpu"]["seeds"] >= 4  # issue #20: >= 4 paired seeds


def test_a_run_far_below_its_siblings_is_collapsed():
    final = pd.Series({0: 30.0, 1: 31.0, 2: 24.9, 3: 29.5})
    bad = X.collapsed(final, margin=5.0)
    assert bad.tolist() == [False, False, True, False]     # 24.9 < median(30, 31, 29.5) - 5 = 25
    assert not X.collapsed(pd.Series({0: 25.6, 1: 30.0, 2: 31.0}), margin=5.0).any()  # median 30.5 - 5
    assert not X.collapsed(pd.Series({0: 1.0})).any()        # one run cannot be judged


def test_holding_the_keyframe_scores_every_distance_with_the_keyframe_output():
    """Hold: every frame of an interval gets its keyframe's 1/8 output, so with a keyframe net that
    reads each frame exactly (an oracle), the held output is right at distance 0 and worse after."""
    clip = SyntheticWorld("city_a", size=(64, 128), seed=0).clip(3, length=5)

    class Oracle(torch.nn.Module):  # the true label of the frame it is given, as logits
        def forward(self, x):
            i = next(j for j, f in enumerate(frames) if torch.equal(f, x))
            lab = torch.as_tensor(clip.labels[i]).long().clamp(max=18)
            return torch.nn.functional.one_hot(lab, 19).permute(2, 0, 1)[None].float() * 10

    from paperlib.video import frame_tensor, KeyframeSegmenter
    frames = [frame_tensor(f) for f in clip.frames]
    r = evaluate_intervals([clip], KeyframeSegmenter(Oracle(), 1.0, 1), X.HoldKeyframe(), 4, label_index=4,
                           progress=False)
    d = r["miou_by_distance"]
    assert d[0] > 0.9 and d[3] < d[0]


def test_table3_multiply_adds_scale_with_the_input_and_the_interval():
    g = X.table3_gmacs()
    image = g["BiSeNet-R18", 0.75]
    assert g["BiSeNet-R18", 0.5] / image == pytest.approx((0.5 / 0.75) ** 2, rel=0.05)   # convolutions ~ pixels
    l2, l3 = g["Ours-BN-R18 (l=2)", 0.75], g["Ours-BN-R18 (l=3)", 0.75]
    nonkey = 2 * l2 - image                          # (key + nonkey) / 2 = l2
    assert 0 < nonkey < 0.1 * image and l3 == pytest.approx((image + 2 * nonkey) / 3)
    assert l3 < g["BiSeNet-R18", 0.5] < l2 < image   # the checks of Table 3 hold by construction of the networks


def test_variant_study_names_only_known_variants_and_the_baseline_is_the_regime_pf():
    assert X.VARIANTS[X.BASELINE] == {}     # the baseline is the regime's PF itself (shared cached role)
    assert {"no intra", "3x3 learned", "5x5 learned"} <= set(X.VARIANTS)
    with pytest.raises(ValueError, match="7x7"):
        X.variant_study(None, X.regime("smoke"), ["7x7 learned"])   # refused before any training
    R = X.regime("smoke")
    assert X.REGIMES["cpu"]["pf_lr"] == 0.002 and R["pf_lr"] > 0    # the paper's rate (0.01 collapsed seed 1)
