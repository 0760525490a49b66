"""DUC/HDC's experiments layer: every head starts from the one backbone, arms differ only where
they say, and the scores (boundary F, speckle, thin classes) measure what they claim."""
import dataclasses

import numpy as np
import pytest
import torch

from fixtures import real_camvid
from paperlib.duchdc import experiments as X
from paperlib.metrics import boundary_f_score, boundary_match_counts, label_edges


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))  # trained roles are cached: keep them out of data/


def test_boundary_f_score_is_one_for_the_truth_and_tolerates_a_shift_up_to_tol():
    label = np.zeros((40, 40), np.int64)
    label[:, 20:] = 1
    assert label_edges(label).sum() == 2 * 40  # both sides of the edge
    assert boundary_f_score(boundary_match_counts(label, label)) == 1.0
    shifted = np.roll(label, 2, axis=1)
    shifted[:, :2] = 0
    assert boundary_f_score(boundary_match_counts(shifted, label, tol=2)) == 1.0
    assert boundary_f_score(boundary_match_counts(shifted, label, tol=0)) == 0.0
    far = np.roll(label, 6, axis=1)
    far[:, :6] = 0
    assert boundary_f_score(boundary_match_counts(far, label, tol=2)) == 0.0
    ignored = label.copy()
    ignored[:, 15:25] = 255  # no true edge left: nothing to score
    assert np.isnan(boundary_f_score(boundary_match_counts(label, ignored)))
    with pytest.raises(ValueError, match="must be equal"):
        boundary_match_counts(label, label[:10])


def test_arms_change_only_what_their_row_says():
    base = X.ARMS["DUC"]
    for name in ("DUC, cell 1", "DUC, ASPP 6", "DUC, DS 16", "DUC, random crop", "DUC, 7-fold (bigger patch)"):
        diff = {k for k, v in dataclasses.asdict(X.ARMS[name]).items() if v != getattr(base, k)}
        assert len(diff) == 1, (name, diff)
    assert X.ARMS["DUC (cell 2)"].head == "duc" and X.ARMS["bilinear (baseline)"].head == "bilinear"
    assert (set(X.TABLE1) | set(X.TABLE1_DOWNSAMPLING) | set(X.TABLE1_TRAINING) | set(X.TABLE2) | set(X.TABLE3)
            | set(X.CELL_NOISE)) == set(X.ARMS)
    # the cell-size rationale's noisy arms are Table 1's exact ones with only the labels changed
    for noisy, exact in (("DUC, noisy labels", "DUC"), ("DUC, cell 1, noisy labels", "DUC, cell 1")):
        assert dataclasses.replace(X.ARMS[noisy], noise_px=0.0) == X.ARMS[exact] and X.ARMS[noisy].noise_px > 0
        assert X.ARMS[noisy].spec() != X.ARMS[exact].spec()
    # an exact-label arm's spec (its cache key) is what it was before the noise field existed
    assert "noise_px" not in X.ARMS["DUC"].spec() and X.ARMS["DUC"].spec()["cell"] == 2
    # Table 2's variants differ from the standard-dilation model only in their rates
    for name in X.TABLE2[1:]:
        assert dataclasses.replace(X.ARMS[name], hdc=None) == X.ARMS["standard dilation (2, 4)"]
    # Table 2's two notebooks cover its variants and share exactly the two HDC models of Figures 4-5
    assert set(X.TABLE2_HDC) | set(X.TABLE2_RF) == set(X.TABLE2)
    assert set(X.TABLE2_HDC) & set(X.TABLE2_RF) == {"Dilation-RF", "Dilation-bigger"}


def test_hdc_regime_gives_the_rates_a_feature_map_wider_than_them():
    from paperlib.models.backbones import RESNET_DEPTHS, hdc_block_rates
    r = X.HDC_REGIME
    blocks = RESNET_DEPTHS[r.depth][1][2:]
    rates = hdc_block_rates("dilation_bigger", blocks)
    assert rates["layer3"] == [1, 2, 5, 9, 1, 2] and rates["layer4"] == [5, 9, 17]
    assert max(rates["layer4"]) < r.crop[0] // 8
    assert r.batch * r.crop[0] ** 2 == X.CPU_REGIME.batch * X.CPU_REGIME.crop[0] ** 2  # equal labelled pixels
    assert r.backbone_spec() != X.CPU_REGIME.backbone_spec()
    rf = X.table2_rf(r, X.TABLE2).set_index("variant")
    assert X.table2_rates_fit(r, rf.reset_index())[0] and not X.table2_rates_fit(X.SMOKE_HDC_REGIME, rf.reset_index())[0]
    assert rf["gridding (holes)"].to_dict() == {"standard dilation (2, 4)": True, "No dilation": False,
                                                "Dilation-conv": False, "Dilation-RF": False, "Dilation-bigger": False}
    ours = rf.loc[list(X.TABLE2_RF), "RF increased, ours (input px)"]
    assert list(ours) == sorted(ours) and ours.iloc[0] == 0  # rises from No dilation to Dilation-bigger


def test_regime_scales_aspp_rates_by_crop_and_matches_7fold_pixels():
    r = X.CPU_REGIME
    assert r.config(0, "a", arm=X.ARMS["DUC"]).model_options["rates"] == (1, 3, 4, 6)
    six = r.config(0, "a", arm=X.ARMS["DUC, ASPP 6"]).model_options["rates"]
    assert six == (1, 3, 4, 6, 7, 8) and max(six) < r.crop[0] // 8  # every branch sees the training map
    sizes = r.patch_sizes()
    b7 = r.config(0, "b", arm=X.ARMS["DUC, 7-fold (bigger patch)"]).batch_size
    ratio = b7 * sizes["patch"] ** 2 / (r.batch * sizes["crop"] ** 2)
    assert b7 < r.batch and 0.8 < ratio < 1.25
    # the backbone is keyed by what makes it: a regime differing only in fine-tuning shares it
    assert dataclasses.replace(r, steps=7, curve_points=1).backbone_spec() == r.backbone_spec()
    assert dataclasses.replace(r, pre_steps=7).backbone_spec() != r.backbone_spec()


def test_heads_start_from_the_shared_backbone_and_are_scored():
    regime, _, _ = X.profile_setup("smoke")
    rows = X.run_arms(regime, ["bilinear (baseline)", "DUC (cell 2)"], [0], progress=False)
    pre, info = X.backbone(regime)
    assert info["cached"] and len(info["curve"]) >= 1
    for r in rows:
        assert 0 <= r["mIoU"] <= 100 and 0 <= r["speckle %"] <= 100 and "boundary F" in r
        assert len(r["curve"]) == regime.curve_points
    duc = X.arm_model(regime, "DUC (cell 2)", 0)
    # fine-tuning moved the backbone, but it started from the pre-trained weights, not a fresh init
    from paperlib import models
    cfg = regime.config(0, "fresh", arm=X.ARMS["DUC (cell 2)"])
    torch.manual_seed(123)
    fresh = models.build(cfg.model, num_classes=19, width=cfg.model_width, **cfg.model_options)

    def dist(m):
        a = m.backbone.state_dict()
        return sum(float((a[k].float() - v.float()).abs().sum()) for k, v in pre.backbone.state_dict().items()
                   if v.is_floating_point())
    assert dist(duc) < 0.5 * dist(fresh)
    table = X.table_frame(rows, head_params={"bilinear (baseline)": 1, "DUC (cell 2)": 2})
    assert list(table["method"]) == ["bilinear (baseline)", "DUC (cell 2)"]
    assert {"pole", "traffic light", "traffic sign", "thin mean", "boundary F"} <= set(table.columns)
    with pytest.raises(ValueError, match="unknown DUC/HDC arm"):
        X.run_arm(regime, "DUC, cell 3", 0)


def test_a_curve_on_a_few_frames_ends_with_the_final_score_and_leaves_older_keys_alone():
    regime = dataclasses.replace(X.SMOKE_REGIME, steps=4, curve_points=2, curve_frames=1)
    assert len(X.WORLD.curve_set(regime)) == 1 and len(X.WORLD.curve_set(X.SMOKE_REGIME)) > 1
    row = X.run_arm(regime, "DUC (cell 2)", 0)
    assert [s for s, _ in row["curve"]] == [2, 4] and row["curve"][-1][1] == row["mIoU"]
    assert "curve_frames" not in X._key(X.SMOKE_REGIME)["regime"]  # runs made before the field keep their keys
    assert X._key(regime)["regime"]["curve_frames"] == 1


def test_speckle_is_zero_for_a_piecewise_constant_map_and_high_for_noise():
    flat = torch.zeros(32, 32, dtype=torch.long)
    flat[:, 16:] = 3
    assert (X.majority_filter(flat, 19) == flat).all()
    noise = torch.randint(0, 19, (32, 32), generator=torch.Generator().manual_seed(0))
    assert (X.majority_filter(noise, 19) != noise).float().mean() > 0.5


def test_camvid_data_is_named_when_missing_and_resized_to_the_world_height(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CamVid train/ folder"):
        X.Data(tmp_path / "nowhere")
    root = real_camvid()
    data = X.Data(root)
    regime, _, _ = X.profile_setup("smoke")
    raw, test = data.sets(regime)
    assert data.suffix == "_camvid" and data.thin_names == ["pole", "sign/symbol"]
    assert len(raw) == 367 and len(test) == 233
    assert test[0]["image"].shape[-2] == regime.size[0]
    curve = data.curve_set(regime)  # the training curve scores a few evenly spaced test frames
    assert len(curve) == max(regime.clips // 4, 2) < len(test)
    assert float((curve[len(curve) - 1]["image"] - test[len(test) - 1]["image"]).abs().max()) == 0.0
    assert X.WORLD.curve_set(regime) is X.WORLD.sets(regime)[1]


def test_label_grid_ceiling_is_exact_at_stride_one_and_falls_with_the_stride():
    c = X.label_grid_ceiling(X.WORLD, X.SMOKE_REGIME, strides=(1, 2, 8, 32)).set_index("output stride")
    assert c.at[1, "mIoU"] == pytest.approx(100.0) and c.at[1, "boundary F"] == pytest.approx(100.0)
    assert c["mIoU"].is_monotonic_decreasing and c.at[32, "mIoU"] < c.at[2, "mIoU"] - 20
    assert c.at[8, "thin mean"] < c.at[2, "thin mean"]  # thin things vanish below the grid first


def test_label_noise_reaches_only_the_training_labels_and_is_measured_at_each_grid(tmp_path):
    regime = X.SMOKE_REGIME
    (exact, val), (noisy, val_n) = X.WORLD.sets(regime), X.WORLD.sets(regime, noise_px=3.0)
    assert torch.equal(exact[0]["image"], noisy[0]["image"]) and len(exact) == len(noisy)
    assert (torch.as_tensor(exact[0]["label"]) != torch.as_tensor(noisy[0]["label"])).any()
    assert torch.equal(val[0]["label"], val_n[0]["label"])  # held-out labels stay exact
    g = X.label_noise_grid(regime, 3.0).set_index("output stride")
    assert list(g.index) == [1, 2] and g.at[1, "mIoU"] < 100.0  # the noisy labels are not the truth
    assert X.label_noise_grid(regime, 0.0).at[0, "mIoU"] == pytest.approx(100.0)
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match="noise_px=3: label noise needs the world's annotator"):
        X.Data(tmp_path).sets(regime, noise_px=3.0)  # CamVid's labels are what they are


def test_difference_per_unit_pairs_by_seed_and_never_averages_a_failed_run():
    import pandas as pd

    from paperlib.duchdc_analysis import difference_per_unit
    df = pd.DataFrame({"row": ["a", "b", "a", "b", "a"], "seed": [0, 0, 1, 1, 2], "mIoU": [5.0, 3.0, 4.0, 4.5, 9.0],
                       "failed": [False, False, False, True, False]})
    d = difference_per_unit(df, "a", "b", "row", "a - b", ["mIoU"]).set_index("seed")
    assert d.at[0, "mIoU"] == 2.0 and np.isnan(d.at[1, "mIoU"]) and np.isnan(d.at[2, "mIoU"])
    assert set(d["row"]) == {"a - b"}
