"""paperlib.video.train (cached keyframe nets and PF variants, flow pre-training) and
paperlib.video.analysis (equal-speed comparison, Fig. A7 edge/error statistics)."""
import numpy as np
import pytest
import torch

from paperlib import engine
from paperlib.config import config_from_params
from paperlib.data.synthetic import SyntheticWorld
from paperlib.video import GSVNet, cached_module, flow_epe, pretrain_flownet, pretrained_keyframe
from paperlib.video import train as vtrain
from paperlib.video.analysis import (compare_with_spread, edge_error_maps, edge_error_stats,
                                     image_miou_at_speed)


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
    assert vtrain.params_key({"a": 1, "b": 2}) == vtrain.params_key({"b": 2, "a": 1})


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
    assert compare_with_spread(1.0, 0.5) == "better" and compare_with_spread(-1.0, 0.5) == "worse"
    assert compare_with_spread(0.3, 0.5) == "within spread" and compare_with_spread(0.3, float("nan")) == "better"


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
    assert len(list((tmp_path / "gsvnet" / "flownet").iterdir())) == 1  # one flow pre-training for both variants
