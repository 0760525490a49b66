"""paperlib.video.train (cached keyframe nets and PF variants, flow pre-training) and
paperlib.video.analysis (equal-speed comparison, Fig. A7 edge/error statistics, the per-seed
measures the gsvnet claims test)."""
import numpy as np
import pandas as pd
import pytest
import torch

from paperlib import engine
from paperlib.config import config_from_params
from paperlib.data.synthetic import SyntheticWorld
from paperlib.video import GSVNet, cached_module, flow_epe, pretrain_flownet, pretrained_keyframe
from paperlib.video import train as vtrain
from paperlib.video import analysis
from paperlib.video.analysis import edge_error_maps, edge_error_stats, image_miou_at_speed


@pytest.fixture(scope="module")
def clip():
    return SyntheticWorld("city_a", size=(32, 64), seed=0).clip(0, length=3)


def test_keyframe_cache_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    calls = []
    real = engine.train

    def counting_train(cfg, *a, **k):
        calls.append(cfg.name)
        return real(cfg, *a, **k)

    monkeypatch.setattr("paperlib.engine.train", counting_train)
    cfg = config_from_params("smoke", model="tiny_fcn", model_width=4, steps=1, world_clips=2, max_images=2,
                             batch_size=2, world_image_size=(32, 64), crop_size=(32, 32), max_eval_images=1,
                             name="a", progress=False)
    m1, info1 = pretrained_keyframe(cfg, progress=False)
    m2, info2 = pretrained_keyframe(cfg.replace(name="b"), progress=False)  # the name is not part of the key
    assert calls == ["a"] and not info1["cached"] and info2["cached"] and info1["path"] == info2["path"]
    assert not m2.training
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert vtrain.keyframe_cache_path(cfg.replace(steps=2)) != vtrain.keyframe_cache_path(cfg)


def test_cached_module_trains_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    made = []

    def make(m):
        made.append(1)
        torch.nn.init.constant_(m.weight, 3.0)
        return {"note": "x"}

    a, ia = cached_module("toy", {"p": 1}, torch.nn.Linear(2, 2), make)
    b, ib = cached_module("toy", {"p": 1}, torch.nn.Linear(2, 2), make)
    c, ic = cached_module("toy", {"p": 2}, torch.nn.Linear(2, 2), make)
    assert len(made) == 2 and ib["cached"] and not ic["cached"] and ib["note"] == "x"
    assert torch.all(b.weight == 3.0)
    from paperlib.cache import role_key
    assert role_key("toy", {"a": 1, "b": 2}) == role_key("toy", {"b": 2, "a": 1})


def test_flow_pretraining_lowers_the_end_point_error(clip):
    torch.manual_seed(0)
    pf = GSVNet(flow_width=8, guide_width=8, intra_width=8, stride=4)
    before = flow_epe(pf, [clip])
    losses = pretrain_flownet(pf, [clip], steps=25, batch_size=2, lr=3e-3, progress=False)
    assert len(losses) == 25 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert flow_epe(pf, [clip]) < before
    # the exact flow itself has zero error; zero flow has the mean flow magnitude
    assert flow_epe(pf, [clip], flows=[clip.flow_bw]) == pytest.approx(0.0, abs=1e-5)


def test_image_curve_is_read_at_equal_speed():
    fps, miou = [10, 20, 40], [70, 66, 60]       # image-based: faster = less accurate
    assert image_miou_at_speed(fps, miou, 30) == pytest.approx(63.0)  # halfway between 20 and 40
    assert image_miou_at_speed(fps[::-1], miou[::-1], 15) == pytest.approx(68.0)  # order does not matter
    assert image_miou_at_speed(fps, miou, 80) == pytest.approx(60.0)  # faster than all: the fastest point


def test_edge_error_statistics_by_hand():
    edge = np.array([1, 1, 0, 0, 0, 0], float)
    error = np.array([1, 0, 0, 0, 0, 0], float)
    s = edge_error_stats(edge, error)
    assert s["error_rate_on_edges"] == 0.5 and s["error_rate_elsewhere"] == 0.0
    assert s["edge_share"] == pytest.approx(2 / 6) and s["errors_on_edges"] == 1.0
    # phi coefficient of the 2x2 table (a=1, b=1, c=0, d=4): (1*4 - 1*0) / sqrt(2*4*1*5)
    assert s["correlation"] == pytest.approx(4 / np.sqrt(40))


def test_edge_error_maps_mark_the_class_boundary():
    warped = torch.zeros(1, 2, 4, 4)
    warped[0, 0, :, :2] = 5.0   # left half class 0
    warped[0, 1, :, 2:] = 5.0   # right half class 1
    label = torch.zeros(8, 8, dtype=torch.long)
    label[:, 4:] = 1
    label[0, 0] = 255
    e, r = edge_error_maps(warped, label, "binary")
    assert e.size == 63 and r.sum() == 0            # void dropped; the warped map is right everywhere
    assert e.sum() == 8 * 4 - 0                      # columns 1 and 2 of the 1/2 grid are edges: 4 px wide


def test_mirrored_pairs_keep_the_flow_exact():
    """The world's exact backward flow warps the previous frame onto the current one; mirrored by
    mirror_pair it does the same for the mirrored frames, and only with the sign change."""
    from paperlib.propagation.warp import warp
    c = SyntheticWorld("city_a", size=(64, 128), seed=0).clip(3, length=2)
    prev, cur = (torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in c.frames[:2])
    flow = torch.from_numpy(np.ascontiguousarray(c.flow_bw[0])).permute(2, 0, 1)[None].float()
    err = (warp(prev, flow) - cur).abs().mean()
    mp, mc, mf = vtrain.mirror_pair(prev, cur, flow)
    assert torch.equal(mc, cur.flip(-1)) and torch.equal(mf[:, 1], flow[:, 1].flip(-1))
    assert (warp(mp, mf) - mc).abs().mean() == pytest.approx(float(err), rel=0.05, abs=0.05)
    wrong = (warp(mp, flow.flip(-1)) - mc).abs().mean()  # flipped without the sign change
    assert wrong > 2 * err + 0.5


def test_flow_recipe_options_enter_the_cache_key_only_when_changed(tmp_path, monkeypatch, clip):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    kw = dict(seed=0, stride=4, flow_width=8, progress=False)
    net = lambda: GSVNet(flow_width=8, guide_width=8, intra_width=8, stride=4).flownet  # noqa: E731
    a = vtrain.pretrained_flownet(net(), [clip], {"toy": 1}, 3, **kw)
    b = vtrain.pretrained_flownet(net(), [clip], {"toy": 1}, 3, recipe=vtrain.FLOW_RECIPE_V1, **kw)
    c = vtrain.pretrained_flownet(net(), [clip], {"toy": 1}, 3, recipe={"poly": True, "flip": True}, **kw)
    assert a == b and len(c) == 3
    assert len(list((tmp_path / "cache" / "flownet").glob("*.pt"))) == 2
    with pytest.raises(ValueError, match="recipe"):
        vtrain.pretrained_flownet(net(), [clip], {"toy": 1}, 3, recipe={"warmup": 1}, **kw)


def test_trained_pf_is_cached_and_shares_the_flow_pretraining(tmp_path, monkeypatch, clip):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    key = torch.nn.Conv2d(3, 19, 1).eval()
    kw = dict(steps=2, flow_steps=2, batch_size=1, interval=3, progress=False)
    pf, info = vtrain.trained_pf(key, [clip], {"toy": 1}, **kw)
    again, info2 = vtrain.trained_pf(key, [clip], {"toy": 1}, **kw)
    other, info3 = vtrain.trained_pf(key, [clip], {"toy": 1}, pf_options={"use_intra": False}, **kw)
    assert not info["cached"] and info2["cached"] and not info3["cached"]
    assert not pf.training
    assert all(torch.equal(a, b) for a, b in zip(pf.state_dict().values(), again.state_dict().values()))
    assert len(list((tmp_path / "cache" / "flownet").glob("*.pt"))) == 1  # one flow pre-training for both variants


def test_flow_pretraining_is_shared_across_keyframe_nets_and_takes_the_recipe(tmp_path, monkeypatch, clip):
    """The flow role never sees the keyframe net: PF for two keyframe nets (``"key"`` differs)
    shares one pre-training, which is the calibration's role for the same clips; another recipe is
    another flow role and another PF."""
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    key = torch.nn.Conv2d(3, 19, 1).eval()
    kw = dict(steps=1, flow_steps=2, batch_size=1, interval=3, progress=False)
    clips = {"world": "w", "clips": [0], "length": 3}
    flows = lambda: sorted(p.name for p in (tmp_path / "cache" / "flownet").glob("*.pt"))  # noqa: E731
    _, a = vtrain.trained_pf(key, [clip], {**clips, "key": "SN.pt"}, **kw)
    _, b = vtrain.trained_pf(key, [clip], {**clips, "key": "BN.pt"}, **kw)
    assert not a["cached"] and not b["cached"] and len(flows()) == 1
    assert vtrain.pretrained_flownet(GSVNet().flownet, [clip], clips, 2, progress=False) == \
        vtrain.pretrained_flownet(GSVNet().flownet, [clip], {**clips, "key": "any"}, 2, progress=False)
    assert len(flows()) == 1
    v2 = {"poly": True, "flip": True}
    _, c = vtrain.trained_pf(key, [clip], {**clips, "key": "SN.pt"}, flow_recipe=v2, **kw)
    assert not c["cached"] and len(flows()) == 2
    assert vtrain.flow_recipe_key(None) == {} and vtrain.flow_recipe_key(v2) == {"recipe": v2}


def test_a_recorded_curve_leaves_the_trained_weights_alone(tmp_path, monkeypatch, clip):
    """PF trained with a held-out curve (every step here) ends with the weights of the same run
    without it; the curve holds one avg / min mIoU per recorded step."""
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    key = torch.nn.Sequential(torch.nn.Conv2d(3, 19, 1), torch.nn.BatchNorm2d(19)).eval()
    kw = dict(steps=3, flow_steps=1, batch_size=1, interval=3, progress=False)
    plain, info = vtrain.trained_pf(key, [clip], {"toy": 1}, **kw)
    curve = vtrain.Curve([clip], ids=[0], label_index=2, interval=3, every=1)
    rec, rinfo = vtrain.trained_pf(key, [clip], {"toy": 1}, curve=curve, **kw)
    assert not rinfo["cached"] and "curve" not in info
    assert [s for s, _ in rinfo["curve"]] == [1, 2, 3] and len(rinfo["curve_min"]) == 3
    assert all(0 <= m <= 100 for _, m in rinfo["curve"] + rinfo["curve_min"])
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), rec.state_dict().values()))


def _acc():
    """A hand-made accuracy frame like gsvnet_table1_accuracy's: one image curve (seed 0) and Ours
    (l = 1..5, two seeds), A-Lite and DIS for SN."""
    rows = [dict(kind="image", key="SN", flow="-", key_scale=s, interval=1, seed=0, avg_miou=m, fps=f, gmacs=g)
            for s, m, f, g in ((1.0, 30.0, 10.0, 100.0), (0.75, 28.0, 20.0, 60.0), (0.5, 24.0, 40.0, 25.0))]
    for seed, off in ((0, 0.0), (1, 1.0)):
        for l in range(1, 6):
            rows.append(dict(kind="video", key="SN", flow="O", key_scale=0.75, interval=l, seed=seed,
                             avg_miou=28.0 - l + off, fps=20.0 + 5 * l, gmacs=60.0 / l))
            rows.append(dict(kind="video", key="SN", flow="DIS", key_scale=0.75, interval=l, seed=seed,
                             avg_miou=28.5 - l + off, fps=10.0, gmacs=np.nan))
            rows.append(dict(kind="alite", key="SN", flow="O", key_scale=0.75, interval=l, seed=seed,
                             avg_miou=25.0 - l + off, fps=30.0, gmacs=10.0))
    df = pd.DataFrame(rows).rename(columns={"gmacs": "GMACs_avg_1024x2048"})
    df["miou_by_distance"] = None
    last = (df.kind == "video") & (df.flow == "O") & (df.interval == 5)
    df.loc[last, "miou_by_distance"] = pd.Series([[28.0, 27.0, 26.0, 25.0, 24.0], [29.0, 29.0, 27.0, 27.0, 25.0]],
                                                 index=df.index[last])
    return df


def test_per_seed_measures_by_hand():
    acc = _acc()
    assert analysis.per_seed(acc, "avg_miou", kind="video", flow="O", interval=4).tolist() == [24.0, 25.0]
    assert analysis.shared(acc, "avg_miou", kind="image", key_scale=0.5) == 24.0
    with pytest.raises(ValueError, match="one row"):
        analysis.shared(acc, "avg_miou", kind="image")
    with pytest.raises(ValueError, match="several rows"):
        analysis.per_seed(acc, "avg_miou", kind="video", interval=4)   # O and DIS rows: not one arm
    assert analysis.drop(acc, "avg_miou", 1, 4, kind="video", flow="O").tolist() == [3.0, 3.0]
    gap = analysis.mean_gap(acc, {"kind": "alite"}, {"kind": "video", "flow": "O"}, [2, 3, 4, 5])
    assert gap.tolist() == [-3.0, -3.0]
    # slopes: a straight line, and a least-squares fit (x = 0..4, mean 2: sum((x-2) y) / 10)
    s = analysis.distance_slope({0: [28.0, 27.0, 26.0, 25.0, 24.0], 1: [29.0, 29.0, 27.0, 27.0, 25.0]})
    assert s[0] == pytest.approx(-1.0) and s[1] == pytest.approx((-2 * 29 - 29 + 27 + 2 * 25) / 10)
    # equal speed: Ours at l = 2 runs at 30 fps, the image curve there is 26 (between 20 fps / 28 and 40 / 24)
    e = analysis.equal_speed_gap(acc, {"kind": "image"}, {"kind": "video", "flow": "O"}, "fps", [2])
    assert e.tolist() == pytest.approx([26.0 - 26.0, 27.0 - 26.0])
    # on cost: 1 / GMACs; Ours l = 2 costs 30, read between 60 (28) and 25 (24) in 1 / cost
    g = analysis.equal_speed_gap(acc, {"kind": "image"}, {"kind": "video", "flow": "O"}, "GMACs_avg_1024x2048", [2],
                                 inverse=True)
    w = (1 / 30 - 1 / 60) / (1 / 25 - 1 / 60)
    assert g[0] == pytest.approx(26.0 - (28 + w * (24 - 28)))


def test_measure_frames_for_the_claims():
    acc = _acc()
    t1 = analysis.table1_measures(acc, ["SN"], [0, 1])
    assert list(t1.columns) == ["measure", "seed", "value"] and len(t1) == 4 * 2
    v = t1.set_index(["measure", "seed"])["value"]
    assert v["SN: Ours (l=4) - image (0.5)", 1] == 25.0 - 24.0
    assert v["SN: image drop 0.75->0.5", 0] == v["SN: image drop 0.75->0.5", 1] == 4.0   # shared: repeated
    assert v["SN: mIoU slope per frame from the keyframe", 0] == pytest.approx(-1.0)
    bnd = pd.DataFrame({"method": ["Ours-SN-R18", "A-Lite-SN-R18"] * 2, "seed": [0, 0, 1, 1],
                        "boundary_acc": [80.0, 70.0, 82.0, np.nan]})
    tr = analysis.tradeoff_measures(acc, bnd, ["SN"], [0, 1], "fps").set_index(["measure", "seed"])["value"]
    assert tr["DIS - O flow (avg mIoU, l=2..5)", 0] == pytest.approx(0.5)
    assert tr["A-Lite - Ours (boundary accuracy)", 0] == -10.0
    assert np.isnan(tr["A-Lite - Ours (boundary accuracy)", 1])    # a failed run stays NaN, not dropped silently
    # the claims layer takes these frames: a NaN is reported as a failure
    from paperlib import claims
    c = claims.parse("gsvnet", [{"id": "x", "item": "t", "text": "A-Lite worse at boundaries", "kind": "directional",
                                  "a": "A-Lite - Ours (boundary accuracy)", "value": 0.0, "direction": -1}])
    (r,) = claims.evaluate(c, tr.reset_index(), arm="measure", value="value")
    assert r.n == 1 and r.failures and r.verdict == "inconclusive"
    res = pd.DataFrame([{"variant": v, "seed": s, "interval": l, "min_miou": 30.0 - k * l}
                        for v, k in (("3x3 IDK", 1.0), ("no intra", 2.0)) for s in (0, 1) for l in range(1, 6)])
    t4 = analysis.table4_measures(res, [0, 1]).set_index(["measure", "seed"])["value"]
    assert t4["min-mIoU drop l=1->5: with intra", 0] == 4.0 and t4["min-mIoU drop l=1->5: without intra", 1] == 8.0
    stats = {0: {"error_rate_on_edges": 0.5, "error_rate_elsewhere": 0.1, "correlation": 0.3}}
    a7 = analysis.edge_error_measures(stats)
    assert a7.set_index("measure")["value"].to_dict() == pytest.approx(
        {"error rate on edges - elsewhere (points)": 40.0, "edge/error correlation": 0.3})
