"""GSVNet speed, side by side in one run: non-keyframe step vs SwiftNet-R18 keyframe (scale 0.75),
throughput at keyframe intervals l = 2, 3, 4 vs keyframe-only, output-space vs feature-space
warping, and the per-part runtime of a non-keyframe (GSVNet Fig. A9).

* key step: ``KeyframeSegmenter(swiftnet_resnet18, 0.75)`` on a full frame -> 1/8 logits
  (paper: 58.5 G multiply-adds at 1024x2048).
* non-key step: ``GSVNet`` (flow net on the 1/8 frames, Eq. 1 warp, intra net, guided SV conv)
  from the previous 1/8 logits (paper: 2.8 G).
* throughput at interval l: ``l / (t_key + (l - 1) t_nonkey)`` frames/s from the best step times
  (``--loop`` also times the real keyframe loop, ``paperlib.video.propagate``, over l frames);
  paper (GTX 1080Ti): 63.2 FPS keyframe-only, 142 at l = 4 (2.25x).
* warp: ``backward_warp`` of the 19-class logits at 1/8 vs 256-channel features at 1/16 (what a
  feature-propagation scheme such as Accel warps); the paper: 3.3x more data in feature space.
* breakdown: forward hooks on PF's parts (flow net, warp, intra features, fusion = guided SV conv;
  "other" = downscaling the two frames to 1/8).

Measurements are interleaved round by round (every timed call once per round; the best of
``--repeats`` rounds after one warm-up round: on a shared machine the minimum is the time least
disturbed by other jobs, as ``timeit`` advises), with ``torch.cuda.synchronize`` on GPU. Weights are
random (speed does not depend on them). Targets (issue 8, CPU at 1024x2048): non-key <= 1/10 of
key, l = 4 throughput >= 2.5x keyframe-only, feature-space warp >= 3x output-space warp.

    python benchmarks/gsvnet_speed.py [--size 1024 2048] [--repeats 3] [--threads 1]
                                      [--device cpu|cuda] [--loop] [--json]
"""
from __future__ import annotations

import argparse
import json

import torch

from paperlib.models import build
from paperlib.profiling import count_flops, count_parameters, interleaved_best
from paperlib.video import GSVNet, KeyframeSegmenter, backward_warp, nonkey_complexity, propagate
from paperlib.video.gsvnet import NONKEY_PARTS, NonkeyStep, interval_fps, nonkey_breakdown  # noqa: F401  (re-exported for tests)

INTERVALS = (2, 3, 4)


@torch.no_grad()
def run(size=(1024, 2048), repeats: int = 3, device: str = "cpu", key_model: str = "swiftnet_resnet18",
        key_scale: float = 0.75, feature_channels: int = 256, loop: bool = False, width=None) -> dict:
    """All measurements; returns a flat dict of seconds, ratios and counts (see ``main``)."""
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    h, w = size
    torch.manual_seed(0)
    pf = GSVNet().eval().to(dev)
    key = KeyframeSegmenter(build(key_model, **({"width": width} if width else {})), key_scale).eval().to(dev)
    frame, frame2 = torch.randn(1, 3, h, w, device=dev), torch.randn(1, 3, h, w, device=dev)
    seg8 = torch.randn(1, pf.num_classes, *pf.grid_size(frame), device=dev)
    flow8 = torch.randn(1, 2, *seg8.shape[-2:], device=dev)
    g16 = (max(h // 16, 1), max(w // 16, 1))
    feat16 = torch.randn(1, feature_channels, *g16, device=dev)
    flow16 = torch.randn(1, 2, *g16, device=dev)
    fns = {"key": lambda: key(frame), "nonkey": lambda: pf(seg8, frame, frame2),
           "warp_output": lambda: backward_warp(seg8, flow8), "warp_feature": lambda: backward_warp(feat16, flow16)}
    t = interleaved_best(fns, repeats, sync)
    res = {"device": str(dev), "threads": torch.get_num_threads(), "size": [h, w], "repeats": repeats,
           "key_model": key_model, "key_scale": key_scale,
           "key_s": t["key"], "nonkey_s": t["nonkey"], "nonkey_over_key": t["nonkey"] / t["key"],
           "warp_output_s": t["warp_output"], "warp_feature_s": t["warp_feature"],
           "feature_warp_over_output_warp": t["warp_feature"] / t["warp_output"],
           "warp_data_ratio": feature_channels * g16[0] * g16[1] / (pf.num_classes * seg8.shape[-2] * seg8.shape[-1]),
           "keyonly_fps": 1.0 / t["key"]}
    for l in INTERVALS:
        res[f"l{l}_fps"] = interval_fps(t["key"], t["nonkey"], l)
        res[f"l{l}_throughput_over_keyonly"] = res[f"l{l}_fps"] / res["keyonly_fps"]
    if loop:  # the real loop: 1 key + (l - 1) non-key steps, per-frame conversions included
        frames = [torch.randn(1, 3, h, w, device=dev) for _ in range(max(INTERVALS))]
        loops = {f"loop_l{l}": (lambda l=l: list(propagate(frames[:l], key, pf, l))) for l in (1, *INTERVALS)}
        tl = interleaved_best(loops, repeats, sync)
        for l in (1, *INTERVALS):
            res[f"loop_l{l}_fps"] = l / tl[f"loop_l{l}"]
    res["breakdown_s"] = nonkey_breakdown(pf, frame, repeats)
    nk = nonkey_complexity(pf.cpu(), (h, w))
    res["nonkey_gmacs"], res["nonkey_param_MB"] = nk["macs"] / 1e9, nk["bytes"] / 1e6
    res["key_gmacs"] = count_flops(key.cpu(), (h, w)).gmacs
    res["key_param_MB"] = count_parameters(key)[1] / 1e6
    return res


def report(res: dict) -> str:
    """The human-readable table of ``run``'s result."""
    ms = lambda s: f"{1e3 * s:9.2f} ms"  # noqa: E731
    h, w = res["size"]
    lines = [f"GSVNet speed on {res['device']} ({res['threads']} threads), input {h}x{w}, "
             f"best of {res['repeats']} interleaved rounds; random weights",
             f"{'key step (' + res['key_model'] + ' @' + str(res['key_scale']) + ')':42s}{ms(res['key_s'])}"
             f"   {res['key_gmacs']:6.2f} GMAC  {res['key_param_MB']:5.1f} MB",
             f"{'non-key step (GSVNet PF)':42s}{ms(res['nonkey_s'])}"
             f"   {res['nonkey_gmacs']:6.2f} GMAC  {res['nonkey_param_MB']:5.2f} MB",
             f"  non-key / key time {res['nonkey_over_key']:.3f} (target <= 0.10; paper FLOPs 2.8/58.5 = 0.048; "
             f"our MACs {res['nonkey_gmacs'] / res['key_gmacs']:.3f})",
             f"{'keyframe-only':42s}{res['keyonly_fps']:9.2f} FPS"]
    for l in INTERVALS:
        extra = f"   (measured loop {res[f'loop_l{l}_fps']:.2f} FPS)" if f"loop_l{l}_fps" in res else ""
        lines.append(f"{'interval l=' + str(l):42s}{res[f'l{l}_fps']:9.2f} FPS   "
                     f"x{res[f'l{l}_throughput_over_keyonly']:.2f} keyframe-only{extra}")
    lines += [f"  l=4 throughput / keyframe-only {res['l4_throughput_over_keyonly']:.2f} "
              "(target >= 2.5; paper 142 / 63.2 = 2.25)",
              f"{'warp, output space (19 ch @ 1/8)':42s}{ms(res['warp_output_s'])}",
              f"{'warp, feature space (256 ch @ 1/16)':42s}{ms(res['warp_feature_s'])}",
              f"  feature / output warp time {res['feature_warp_over_output_warp']:.2f} "
              f"(data ratio {res['warp_data_ratio']:.2f}; target >= 3; paper 3.3x data)",
              "non-key runtime breakdown (Fig. A9, hooked pass):"]
    b = res["breakdown_s"]
    for part in (*NONKEY_PARTS, "other"):
        lines.append(f"  {part:40s}{ms(b[part])}   {100 * b[part] / b['total']:5.1f}%")
    lines.append(f"  {'total':40s}{ms(b['total'])}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (after one warm-up round)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core machine, 2 OpenMP threads get "
                         "descheduled at every barrier and many-small-op PF slows down far more than the key net)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--key-model", default="swiftnet_resnet18", choices=("swiftnet_resnet18", "bisenet_resnet18"))
    ap.add_argument("--key-scale", type=float, default=0.75)
    ap.add_argument("--loop", action="store_true", help="also time the real keyframe loop at l = 1..4")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if min(args.size) < 16:
        raise ValueError(f"--size must be at least 16x16, got {args.size}")
    res = run(tuple(args.size), args.repeats, args.device, args.key_model, args.key_scale, loop=args.loop)
    print(json.dumps(res) if args.json else report(res))
    return res


if __name__ == "__main__":
    main()
