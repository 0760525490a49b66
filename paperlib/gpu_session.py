"""``make gpu``: every GPU number the project claims, in one call that fits a short GPU loan.

GPU time here comes in loans of about 15 minutes, start-up included, so the GPU work is one
prepared command of at most ``BUDGET_S`` (9 minutes on one H100) made of steps, each with a
budget it checks itself: a step starts only while its budget fits in the time left, and a
notebook step runs in a subprocess killed at the end of its budget (nothing half-written stays:
tables are published only when a notebook succeeds). Everything lands under ``tables/`` and
``figures/`` as ``*.gpu.*`` with manifests, so one run on a GPU machine plus a commit brings the
numbers home. On a machine without CUDA it says so and exits 0.

Steps, in order:

1. ``speed`` -- ``profiling.SPEED_PROTOCOL`` at 1024x2048: SwiftNet-R18 and BiSeNet-R18 at input
   scales 0.75 and 0.5, GSVNet's non-key step, and the GSVNet throughput at keyframe intervals
   l = 2..5, in fp32 and fp16 -> ``tables/gsvnet/speed.gpu``;
2. ``relaxation`` -- time of VPLR's boundary relaxation loss over cross-entropy (forward +
   backward) at (2, 19, 1024, 2048) -> ``tables/vplr/relaxation_speed.gpu``;
3. ``notebooks`` -- the ``gpu`` profile of the notebooks in ``GPU_NOTEBOOKS`` (most valuable
   first), each started only if its estimated minutes fit what is left.

    python -m paperlib gpu [--dry-run] [--budget 540]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Callable

#: The whole call's budget (seconds): 9 minutes of a ~15-minute loan (start-up and copy-back
#: take the rest).
BUDGET_S = 540

#: (step, budget in seconds).
STEPS = (("speed", 150), ("relaxation", 40), ("notebooks", 330))

#: gpu-profile notebooks worth running, most valuable first, with their estimated minutes on
#: one H100 (estimates until a first GPU run measures them; the runner never starts one that
#: does not fit).
GPU_NOTEBOOKS = (("gsvnet_table2_complexity", 2.0), ("vplr_calibration", 4.0), ("duchdc_fig2_gridding", 1.0),
                 ("vplr_label_quality", 3.0))


def plan(budget: float = BUDGET_S) -> list[dict]:
    """The steps with their budgets, and the notebooks step's notebooks in order."""
    rows = [{"step": s, "budget_s": b} for s, b in STEPS]
    rows[-1]["notebooks"] = [f"{n} (~{m:g} min)" for n, m in GPU_NOTEBOOKS]
    total = sum(b for _, b in STEPS)
    if total > budget:
        raise ValueError(f"the steps' budgets ({total} s) exceed the session budget ({budget} s)")
    return rows


def speed_step(write: bool = True, device: str = "cuda", protocol: dict | None = None) -> "pd.DataFrame":
    """SPEED_PROTOCOL rows for the keyframe networks and GSVNet's non-key step at 1024x2048
    (``protocol`` / ``device`` other than the defaults only to exercise the code in tests)."""
    import pandas as pd
    import torch

    from .models import build
    from .profiling import SPEED_PROTOCOL, protocol_speed
    from .video import GSVNet, KeyframeSegmenter
    from .video.gsvnet import interval_fps

    protocol = protocol or SPEED_PROTOCOL
    h, w = protocol["size"]
    dev = torch.device(device)
    rows = []
    for dtype in protocol["dtypes"]:
        key_t = {}
        for name in ("swiftnet_resnet18", "bisenet_resnet18"):
            for scale in (0.75, 0.5):
                net = KeyframeSegmenter(build(name), scale).to(dev)
                r = protocol_speed(net, (1, 3, h, w), dtype=dtype, protocol=protocol)
                rows.append({"network": name, "scale": scale, "interval": 1, "dtype": dtype, **r})
                key_t[(name, scale)] = r["median_ms"]
        pf = GSVNet().to(dev)
        seg8 = torch.randn(1, pf.num_classes, *pf.grid_size(torch.empty(1, 3, h, w)), device=dev)
        r = protocol_speed(lambda a, b: pf(seg8, a, b), (1, 3, h, w), dtype=dtype, inputs=2, module=pf,
                           protocol=protocol)
        rows.append({"network": "gsvnet_nonkey", "scale": 1.0, "interval": 0, "dtype": dtype, **r})
        for l in range(2, 6):
            fps = interval_fps(key_t[("swiftnet_resnet18", 0.75)] / 1e3, r["median_ms"] / 1e3, l)
            rows.append({"network": "gsvnet (swiftnet_resnet18 @0.75 keyframes)", "scale": 0.75, "interval": l,
                         "dtype": dtype, "fps": fps})
    df = pd.DataFrame(rows)
    if write:
        from .repro import write_table
        write_table(df, "gsvnet", "speed", profile="gpu", params={"protocol": protocol},
                    claims="describes: GPU speed under paperlib.profiling.SPEED_PROTOCOL (no claim is tested here)",
                    notes=f"Batch 1 at {h}x{w}; " + protocol["text"])
    return df


def relaxation_step(write: bool = True) -> "pd.DataFrame":
    """Forward + backward time of the boundary relaxation loss over cross-entropy on the GPU."""
    import pandas as pd
    import torch

    from .losses import boundary_relaxation_loss, cross_entropy
    from .profiling import interleaved_best

    dev = torch.device("cuda")
    logits = torch.randn(2, 19, 1024, 2048, device=dev, requires_grad=True)
    target = torch.randint(0, 19, (2, 1024, 2048), device=dev)

    def run(fn: Callable) -> Callable:
        return lambda: fn(logits, target).backward()

    t = interleaved_best({"ce": run(cross_entropy), "relaxation": run(boundary_relaxation_loss)}, 5,
                         lambda: torch.cuda.synchronize(dev))
    df = pd.DataFrame([{"shape": "2x19x1024x2048", "ce_ms": 1e3 * t["ce"], "relaxation_ms": 1e3 * t["relaxation"],
                        "relaxation_over_ce": t["relaxation"] / t["ce"], "device": torch.cuda.get_device_name(dev)}])
    if write:
        from .repro import write_table
        write_table(df, "vplr", "relaxation_speed", profile="gpu", params={"shape": [2, 19, 1024, 2048]},
                    claims="describes: the cost of boundary relaxation over cross-entropy on the GPU (no claim)",
                    notes="Best of 5 interleaved rounds of forward + backward, torch.cuda.synchronize around each.")
    return df


def notebooks_step(deadline: float) -> list[tuple[str, str]]:
    """Run the GPU_NOTEBOOKS that fit before ``deadline`` (time.monotonic), each in a subprocess
    killed at the deadline; returns (name, status)."""
    done = []
    for name, minutes in GPU_NOTEBOOKS:
        left = deadline - time.monotonic()
        if 60 * minutes > left:
            done.append((name, f"skipped: ~{minutes:g} min does not fit the {left:.0f} s left"))
            continue
        try:
            rc = subprocess.run([sys.executable, "-m", "paperlib", "reproduce", "--profile", "gpu", "--only", name],
                                timeout=left).returncode
            done.append((name, "ok" if rc == 0 else f"failed (exit {rc})"))
        except subprocess.TimeoutExpired:
            done.append((name, "stopped at the budget's end"))
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib gpu", description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="print the plan (steps, budgets, notebooks) and exit")
    p.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for the whole call (default {BUDGET_S})")
    args = p.parse_args(argv)
    steps = plan(args.budget)
    if args.dry_run:
        for s in steps:
            print(f"{s['step']}: {s['budget_s']} s" + (f"; notebooks: {', '.join(s['notebooks'])}" if "notebooks" in s else ""))
        print(f"total budget {args.budget:.0f} s")
        return 0
    import torch
    if not torch.cuda.is_available():
        print("make gpu: no CUDA device on this machine; nothing to run (this is not an error).")
        return 0
    torch.backends.cudnn.benchmark = True
    start = time.monotonic()
    for s in steps:
        left = args.budget - (time.monotonic() - start)
        if s["budget_s"] > left:
            print(f"{s['step']}: skipped ({s['budget_s']} s budget, {left:.0f} s left)", flush=True)
            continue
        t0 = time.monotonic()
        if s["step"] == "speed":
            print(speed_step().to_string(), flush=True)
        elif s["step"] == "relaxation":
            print(relaxation_step().to_string(), flush=True)
        else:
            for name, status in notebooks_step(min(start + args.budget, t0 + s["budget_s"])):
                print(f"  {name}: {status}", flush=True)
        print(f"{s['step']}: {time.monotonic() - t0:.0f} s of {s['budget_s']} s", flush=True)
    print(f"make gpu: {time.monotonic() - start:.0f} s of {args.budget:.0f} s; commit tables/ and figures/", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
