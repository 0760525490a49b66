"""paperlib.profiling: parameters/bytes, FLOPs vs multiply-adds, latency, per-module breakdown."""
from __future__ import annotations

import time

import pytest
import torch
import torchvision
from torch import nn

from paperlib.profiling import count_flops, count_parameters, measure_latency, runtime_breakdown


def test_count_parameters_by_hand():
    conv = nn.Conv2d(3, 4, 3)  # 3*4*9 weights + 4 biases
    assert count_parameters(conv) == (112, 448)
    assert count_parameters(conv.half()) == (112, 224)
    shared = nn.Linear(2, 2)
    assert count_parameters(nn.Sequential(shared, shared))[0] == 6
    frozen = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3))
    frozen[0].requires_grad_(False)
    assert count_parameters(frozen, trainable_only=True)[0] == 9
    assert count_parameters(nn.BatchNorm2d(5))[0] == 10  # running stats are buffers, not parameters


class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        return self.b[1](self.a(x))  # calls a submodule of ``b`` directly


def test_count_flops_by_hand_and_per_module():
    model = TwoConvs()
    f = count_flops(model, (8, 8))
    macs_a, macs_b = 3 * 4 * 9 * 64, 4 * 2 * 64
    assert f.macs == macs_a + macs_b and f.flops == 2 * f.macs
    assert f.by_module == {"a": 2 * macs_a, "b": 2 * macs_b}
    assert f.input_size == (1, 3, 8, 8)
    assert count_flops(model, (2, 3, 8, 8)).macs == 2 * f.macs
    # the original model is untouched (the count runs on a meta copy)
    assert model.a.weight.device.type == "cpu" and model.training


def test_resnet18_at_0_75_scale_is_about_42_gmacs():
    # the issue's sanity check: the papers' "GFLOPs" of R18 models are multiply-adds
    f = count_flops(torchvision.models.resnet18(), (768, 1536))
    assert 42.0 < f.gmacs < 43.0 and 84.0 < f.gflops < 86.0


def test_count_flops_on_cpu_agrees_with_meta():
    model = TwoConvs()
    assert count_flops(model, (8, 8), device="cpu").flops == count_flops(model, (8, 8)).flops
    with pytest.raises(ValueError):
        count_flops(model, (8,))


class Sleepy(nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.conv(x)


def test_measure_latency():
    model = nn.Sequential(Sleepy(0.01))
    r = measure_latency(model, (8, 8), warmup=1, repeats=3)
    assert len(r["times_s"]) == 3 and r["median_s"] >= 0.01
    assert r["fps"] == pytest.approx(1 / r["median_s"])
    r4 = measure_latency(model, (4, 3, 8, 8), warmup=0, repeats=1)
    assert r4["fps"] == pytest.approx(4 / r4["median_s"]) and r4["input_size"] == (4, 3, 8, 8)
    with pytest.raises(ValueError):
        measure_latency(model, (8, 8), repeats=0)


def test_runtime_breakdown_attributes_time():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fast = Sleepy(0.0)
            self.slow = nn.Sequential(Sleepy(0.03))

        def forward(self, x):
            return self.slow[0](self.fast(x))  # direct call of a grandchild still counts for "slow"

    r = runtime_breakdown(Net(), torch.zeros(1, 3, 4, 4), repeats=2)
    assert set(r) == {"fast", "slow", "(other)", "total"}
    assert r["slow"] >= 0.03 and r["fast"] < 0.03
    assert r["total"] >= r["slow"] + r["fast"] - 1e-6
    with pytest.raises(ValueError, match="no submodule"):
        runtime_breakdown(Net(), torch.zeros(1, 3, 4, 4), modules=["head"])
