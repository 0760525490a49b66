"""Dense CRF post-processing (DUC/HDC Sec. 4.1) on toy cases where the right answer is known."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 not installed")

from paperlib.crf import PAPER_CRF, dense_crf  # noqa: E402


def _two_regions(h=40, w=60, edge=30, seed=0):
    """Red left of column ``edge``, blue right of it, with slight pixel noise."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), dtype=np.int64)
    truth[:, edge:] = 1
    img = np.where(truth[..., None] == 1, [20, 40, 200], [200, 40, 20]).astype(float)
    return truth, np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8), rng


def test_crf_fixes_noisy_boundary():
    truth, img, rng = _two_regions()
    p1 = np.where(truth == 1, 0.7, 0.3)
    band = np.abs(np.arange(truth.shape[1]) - 29.5)[None, :] < 6  # noisy 12-px band at the edge
    p1 = np.where(band & (rng.random(truth.shape) < 0.5), 1 - p1, p1)
    probs = np.stack([1 - p1, p1])
    before = (probs.argmax(0) == truth).mean()
    after = (dense_crf(probs, img) == truth).mean()
    assert before < 0.93
    assert after > 0.99 and after > before


def test_crf_snaps_shifted_boundary_to_colour_edge():
    """The network's boundary is 4 px left of the colour edge, weakly; the bilateral term moves it."""
    truth, img, _ = _two_regions()
    pred_edge = 26
    cols = np.arange(truth.shape[1])[None, :].repeat(truth.shape[0], 0)
    p1 = np.where(cols >= pred_edge, 0.6, 0.4)
    probs = np.stack([1 - p1, p1])
    labels = dense_crf(probs, img)
    assert (probs.argmax(0) == truth).mean() < 0.94
    assert (labels == truth).mean() > 0.99
    q = dense_crf(probs, img, return_probs=True)
    assert q.shape == probs.shape and np.allclose(q.sum(0), 1, atol=1e-4)


def test_crf_keeps_confident_prediction_and_defaults():
    truth, img, _ = _two_regions(h=16, w=16, edge=8)
    probs = np.stack([truth == 0, truth == 1]).astype(np.float32) * 0.98 + 0.01
    assert (dense_crf(probs, img, iterations=5) == truth).all()
    assert PAPER_CRF == {"sxy_bilateral": 15.0, "srgb": 3.0, "sxy_gaussian": 1.0,
                         "w_bilateral": 3.0, "w_gaussian": 3.0}


def test_downsampled_crf_still_fixes_the_boundary():
    truth, img, rng = _two_regions(h=48, w=64, edge=32)
    p1 = np.where(truth == 1, 0.7, 0.3)
    band = np.abs(np.arange(truth.shape[1]) - 31.5)[None, :] < 6
    p1 = np.where(band & (rng.random(truth.shape) < 0.5), 1 - p1, p1)
    probs = np.stack([1 - p1, p1])
    before = (probs.argmax(0) == truth).mean()
    labels = dense_crf(probs, img, downsample=2)
    assert labels.shape == truth.shape and before < 0.93
    assert (labels == truth).mean() > 0.98
    q = dense_crf(probs, img, downsample=2, return_probs=True)
    assert q.shape == probs.shape and np.allclose(q.sum(0), 1, atol=1e-3)
    with pytest.raises(ValueError, match="downsample"):
        dense_crf(probs, img, downsample=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(probs=np.ones((1, 4, 4))), "L >= 2"),
    (dict(image=np.zeros((4, 5, 3), np.uint8)), "matching"),
    (dict(probs=-np.ones((2, 4, 4))), "non-negative"),
    (dict(iterations=0), "iterations"),
    (dict(srgb=0), "srgb"),
])
def test_crf_bad_input(kwargs, match):
    args = dict(probs=np.full((2, 4, 4), 0.5), image=np.zeros((4, 4, 3), np.uint8))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dense_crf(**args)


def test_crf_cost_benchmark_runs_small():
    """benchmarks/duchdc_crf_cost.py on a tiny frame: every setting timed, the paper's is the reference."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "duchdc_crf_cost.py"
    spec = importlib.util.spec_from_file_location("duchdc_crf_cost", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    truth, img, _ = _two_regions(h=32, w=64, edge=30)
    probs = np.stack([np.where(truth == 0, 0.6, 0.4), np.where(truth == 1, 0.6, 0.4), np.full(truth.shape, 0.1)])
    bench.frame = lambda size, classes: (img, truth, (probs / probs.sum(0)).astype(np.float32))  # skip the world
    res = bench.run((32, 64), classes=3)
    first = res["settings"][0]
    assert first["iterations"] == 10 and first["downsample"] == 1 and first["agree_pct"] == 100.0
    assert len(res["settings"]) == len(bench.SETTINGS)
    assert all(s["cpu_seconds"] >= 0 and 0 <= s["agree_pct"] <= 100 for s in res["settings"])
    assert "s/frame" not in bench.report(res) and "CPU s" in bench.report(res)
