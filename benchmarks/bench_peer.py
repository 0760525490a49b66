"""Training-step time of our ``deeplabv3plus_resnet50`` vs peer implementations, side by side.

Peers (benchmark-only extras, never runtime dependencies of paperlib):

* torchvision ``deeplabv3_resnet50`` (DeepLabV3, no decoder; output stride 8 as built);
* segmentation_models_pytorch ``DeepLabV3Plus(resnet50)`` at encoder output stride 8, with the
  plain (non-separable) ASPP so the architecture matches ours - skipped if not installed
  (``pip install segmentation-models-pytorch``).

Every model: random init, output stride 8, same batch and crop, SGD step on pixel-wise cross
entropy. Steps are interleaved round-robin (one step of each model in turn) so background load
hits all models alike; the median step time is reported, and ``peer / ours`` ratios (> 1 means
ours is faster).

    python benchmarks/bench_peer.py [--batch 2] [--crop 128] [--steps 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from torch.nn import functional as F

from paperlib import models
from paperlib.profiling import count_flops, count_parameters


def build_models(num_classes: int) -> dict:
    """name -> model (ours first), all at output stride 8."""
    out = {"ours: deeplabv3plus_resnet50": models.build("deeplabv3plus_resnet50", num_classes=num_classes),
           "torchvision: deeplabv3_resnet50": torchvision.models.segmentation.deeplabv3_resnet50(
               weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)}
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        print("segmentation_models_pytorch not installed: skipping that peer")
    else:
        out["smp: DeepLabV3Plus(resnet50)"] = smp.DeepLabV3Plus(
            encoder_name="resnet50", encoder_weights=None, encoder_output_stride=8,
            decoder_aspp_separable=False, classes=num_classes)
    return out


def logits(output) -> torch.Tensor:
    if isinstance(output, dict):
        return output["out"]
    return output


def make_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(model(x)), y, ignore_index=255)
        loss.backward()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - t0
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per model (after 1 warm-up step)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--classes", type=int, default=19)
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    x = torch.randn(args.batch, 3, args.crop, args.crop, device=dev)
    y = torch.randint(0, args.classes, (args.batch, args.crop, args.crop), device=dev)
    nets = {k: m.to(dev) for k, m in build_models(args.classes).items()}
    steps = {k: make_step(m, x, y) for k, m in nets.items()}
    times = {k: [] for k in nets}
    print(f"device {dev}, batch {args.batch}, crop {args.crop}x{args.crop}, output stride 8, "
          f"{args.steps} timed steps each (interleaved), {torch.get_num_threads()} CPU threads")
    for s in steps.values():  # warm-up
        s()
    for _ in range(args.steps):
        for k, s in steps.items():
            times[k].append(s())
    ours_key = next(iter(nets))
    ours = statistics.median(times[ours_key])
    # The architectures differ in their heads (DeepLabV3+ paper: two 3x3 256-ch decoder convs at
    # 1/4; smp: one separable conv; torchvision's DeepLabV3: no decoder), so time per multiply-add
    # is printed too: it separates "more arithmetic" from "slower code".
    gmacs = {k: count_flops(m, (args.crop, args.crop)).gmacs * args.batch for k, m in nets.items()}
    print(f"{'model':36s} {'params (M)':>10s} {'GMACs/step-fwd':>14s} {'step (s)':>9s} {'peer/ours':>9s} "
          f"{'s per GMAC, peer/ours':>21s}")
    for k, t in times.items():
        med = statistics.median(t)
        per = (med / gmacs[k]) / (ours / gmacs[ours_key])
        print(f"{k:36s} {count_parameters(nets[k])[0] / 1e6:10.2f} {gmacs[k]:14.2f} {med:9.3f} "
              f"{med / ours:9.2f} {per:21.2f}")
    peers = [statistics.median(t) for k, t in times.items() if k != ours_key]
    print(f"ours vs the faster peer: {min(peers) / ours:.2f}x (>= 1.0 means ours is at least as fast)")


if __name__ == "__main__":
    main()
