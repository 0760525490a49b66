"""make gpu: the plan fits its budget, a CPU machine exits 0 with a clear message, notebooks that
do not fit are skipped, and the speed protocol times what it says."""
import time

import pytest
import torch

from paperlib import gpu_session, profiling


def test_plan_fits_the_budget_and_dry_run_prints_it(capsys):
    steps = gpu_session.plan()
    assert [s["step"] for s in steps] == ["speed", "relaxation", "notebooks"]
    assert sum(s["budget_s"] for s in steps) <= gpu_session.BUDGET_S <= 540
    with pytest.raises(ValueError, match="exceed"):
        gpu_session.plan(budget=100)
    assert gpu_session.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "speed: 150 s" in out and "vplr_calibration" in out and "total budget 540 s" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_without_cuda_it_says_so_and_exits_0(capsys):
    assert gpu_session.main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out


def test_notebooks_that_do_not_fit_are_skipped():
    done = gpu_session.notebooks_step(deadline=time.monotonic() + 5)
    assert [n for n, _ in done] == [n for n, _ in gpu_session.GPU_NOTEBOOKS]
    assert all(status.startswith("skipped") for _, status in done)


def test_speed_protocol_times_warm_passes_only():
    calls = []
    net = torch.nn.Conv2d(3, 4, 3)
    proto = {**profiling.SPEED_PROTOCOL, "warmup": 2, "frames": 3}
    r = profiling.protocol_speed(lambda x: calls.append(x.shape) or net(x), (1, 3, 16, 16), module=net,
                                 protocol=proto)
    assert len(calls) == 5 and r["frames"] == 3 and r["median_ms"] > 0 and r["fps"] > 0
    assert r["peak_mem_mb"] is None  # CPU
    with pytest.raises(ValueError, match="dtype"):
        profiling.protocol_speed(net, (1, 3, 8, 8), dtype="int8")
    with pytest.raises(ValueError, match="module="):
        profiling.protocol_speed(lambda x: x, (1, 3, 8, 8))


def test_speed_step_runs_end_to_end_at_a_tiny_size():
    proto = {**profiling.SPEED_PROTOCOL, "size": (64, 128), "warmup": 0, "frames": 1, "dtypes": ("fp32",)}
    df = gpu_session.speed_step(write=False, device="cpu", protocol=proto)
    assert set(df.network) >= {"swiftnet_resnet18", "bisenet_resnet18", "gsvnet_nonkey"}
    thru = df[df.interval >= 2]
    assert list(thru.interval) == [2, 3, 4, 5] and (thru.fps > 0).all()
