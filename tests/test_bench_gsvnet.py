"""benchmarks/gsvnet_speed.py: the throughput formula, the Fig. A9 breakdown and the JSON line."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from paperlib import repro
from paperlib.video import GSVNet


def _bench():
    path = repro.REPO_ROOT / "benchmarks" / "gsvnet_speed.py"
    spec = importlib.util.spec_from_file_location("gsvnet_speed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_interval_fps_by_hand():
    b = _bench()
    # key 100 ms, non-key 10 ms: l = 4 -> 4 frames in 130 ms
    assert b.interval_fps(0.1, 0.01, 4) == pytest.approx(4 / 0.13)
    assert b.interval_fps(0.1, 0.01, 1) == pytest.approx(10.0)  # keyframe-only
    # the paper's Table 2 logic: l = 4 with a 20x cheaper non-key step is 4 / 1.15 = 3.48x keyframe-only
    assert b.interval_fps(1.0, 0.05, 4) / b.interval_fps(1.0, 0.05, 1) == pytest.approx(4 / 1.15)
    with pytest.raises(ValueError, match="interval"):
        b.interval_fps(0.1, 0.01, 0)


def test_breakdown_parts_add_up():
    b = _bench()
    pf = GSVNet().eval()
    out = b.nonkey_breakdown(pf, torch.randn(1, 3, 64, 128), repeats=1)
    assert set(out) == {"flownet", "warp", "intra", "fusion", "other", "total"}
    parts = sum(out[k] for k in ("flownet", "warp", "intra", "fusion", "other"))
    assert parts == pytest.approx(out["total"], rel=1e-6)
    assert all(out[k] > 0 for k in ("flownet", "warp", "intra", "fusion"))


def test_json_line_has_the_issue_keys(capsys):
    b = _bench()
    threads = torch.get_num_threads()
    try:
        b.main(["--size", "32", "64", "--repeats", "1", "--json", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)  # the flag sets it process-wide
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("nonkey_over_key", "l4_throughput_over_keyonly", "feature_warp_over_output_warp"):
        assert res[key] > 0
    # counts do not depend on timing noise: PF is 1.58 MB; 19 x 2 x 4 output vs 256 x 2 x 4 feature cells
    assert res["nonkey_param_MB"] == pytest.approx(1.58118)
    assert res["warp_data_ratio"] == pytest.approx(256 / 19 / 4)
    assert res["l4_throughput_over_keyonly"] == pytest.approx(4 * res["key_s"] / (res["key_s"] + 3 * res["nonkey_s"]))
