"""Boundary label relaxation (VPLR Eq. 5) vs plain cross-entropy: forward + backward time.

Logits (2, 19, 512, 1024) float32 (random), labels = two frames of the embedded world at
512x1024 (a few % boundary pixels, some void). Times, side by side in one run and interleaved
round by round, ``F.cross_entropy``, ``boundary_relaxation_loss`` (analytic backward, relaxed
term only where |N| > 1) and ``boundary_relaxation_loss_naive`` (one-hot + 3x3 max-pool +
masked logsumexp + autograd), and prints each median time and its ratio to CE.

    python benchmarks/bench_relaxation.py [--device cpu|cuda] [--rounds 5] [--threads 1] [--bf16]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from paperlib.data.synthetic import SyntheticWorld
from paperlib.losses import (boundary_relaxation_loss, boundary_relaxation_loss_naive,
                             relaxation_window)


def realistic_labels(size=(512, 1024)) -> torch.Tensor:
    """Frames 0 and 15 of world clip 0 (train ids, 255 void) as a (2, H, W) int64 tensor."""
    recs = SyntheticWorld("city_a", size=size, seed=0).frames(0, [0, 15])
    return torch.from_numpy(np.stack([r.label for r in recs])).long()


def time_fwd_bwd(fn, logits, target, sync) -> float:
    x = logits.detach().requires_grad_(True)
    sync()
    t0 = time.perf_counter()
    fn(x, target).backward()
    sync()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="logits in bfloat16 (losses upcast)")
    ap.add_argument("--no-naive", action="store_true", help="skip the slow straightforward version")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    target = realistic_labels().to(dev)
    lo, hi = relaxation_window(target, 19)
    torch.manual_seed(0)
    logits = torch.randn(2, 19, *target.shape[-2:], device=dev) * 3
    if args.bf16:
        logits = logits.bfloat16()
    fns = {"cross_entropy": lambda x, t: F.cross_entropy(x.float(), t, ignore_index=255),
           "relaxation": boundary_relaxation_loss}
    if not args.no_naive:
        fns["relaxation_naive"] = boundary_relaxation_loss_naive
    times = {k: [] for k in fns}
    for k, fn in fns.items():  # warm-up
        time_fwd_bwd(fn, logits, target, sync)
    for _ in range(args.rounds):
        for k, fn in fns.items():
            times[k].append(time_fwd_bwd(fn, logits, target, sync))
    print(f"device={dev} threads={args.threads} logits={tuple(logits.shape)} {logits.dtype}; "
          f"boundary pixels (|N|>1) {float((lo < hi).float().mean()):.1%}, "
          f"void {float((target == 255).float().mean()):.1%}; median of {args.rounds} rounds")
    ce = statistics.median(times["cross_entropy"])
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"{k:18s} {m * 1000:9.1f} ms   x{m / ce:5.2f} CE")


if __name__ == "__main__":
    main()
