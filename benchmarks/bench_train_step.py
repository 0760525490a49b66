"""The engine's training step against the bare loop this CPU allows, side by side in one run.

For each model: ``engine.train`` on the cpu world (real data path: decoding, joint transforms,
seeded per-sample loading, collation) for ``--steps`` steps, and a *bare loop* on the same model,
batch and optimizer (SGD, momentum 0.9, weight decay 1e-4, cross-entropy) that feeds batches
pre-made in memory -- the floor. Rounds are interleaved (engine, bare, engine, bare, ...) and the
median time per step of each is reported with the engine's own split of its step (data,
forward, backward, optimizer, other) and ``engine_over_bare``.

Models (1 thread by default, the cpu profile's setting):

- ``tiny_fcn``: width 16, crop 96, batch 8 (VPLR's cpu recipe);
- ``deeplabv3plus_resnet18``: width 8, crop 128, batch 8;
- ``gsvnet_pf``: GSVNet's non-key step (PF: flow net, warp, guided spatially-varying fusion) as
  ``video.train_nonkey`` trains it, on cpu-world clips (128x256, interval 5, batch 4) with an
  untrained SwiftNet-R18 w8 as the frozen keyframe network (the step's cost does not depend on
  its weights); the bare loop runs ``nonkey_loss`` on the same batches made beforehand.

``--compute`` adds, per engine model, the bare step with ``channels_last`` and (if a C++
compiler is there) ``torch.compile`` (inductor), as ratios to the plain bare step, with the
first-step (compile) time.

    python benchmarks/bench_train_step.py [--steps 60] [--rounds 3] [--threads 1] [--json] [--compute]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.nn import functional as F

from paperlib import engine, models
from paperlib.config import config_from_params

MODELS = {
    "tiny_fcn": dict(model="tiny_fcn", model_width=16, crop_size=(96, 96), batch_size=8),
    "deeplabv3plus_resnet18": dict(model="deeplabv3plus_resnet18", model_width=8, crop_size=(128, 128), batch_size=8),
    "gsvnet_pf": None,  # measure_pf: its own loop (video.train_nonkey), not engine.train
}


def engine_step(cfg, train_set) -> tuple[float, dict]:
    out = engine.train(cfg, train_set=train_set)
    return out["train_time"] / out["step"], out["step_split"]


def bare_step(cfg, batches, channels_last: bool = False, compiled: bool = False) -> float | tuple[float, float]:
    torch.manual_seed(cfg.seed)
    model = models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    forward = torch.compile(model) if compiled else model
    if compiled:  # the first step compiles: timed apart, then left out of the step time
        t0 = time.perf_counter()
        _train_batch(forward, opt, *batches[0])
        first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for image, label in batches:
        _train_batch(forward, opt, image, label)
    per_step = (time.perf_counter() - t0) / len(batches)
    return (per_step, first) if compiled else per_step


def _train_batch(model, opt, image, label) -> None:
    out = model(image)
    out = out["out"] if isinstance(out, dict) else out
    if out.shape[-2:] != label.shape[-2:]:
        out = F.interpolate(out, size=label.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(out, label, ignore_index=255)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def measure(name: str, steps: int, rounds: int, compute: bool = False) -> dict:
    if name == "gsvnet_pf":
        return measure_pf(steps, rounds)
    cfg = config_from_params("cpu", name=f"bench_{name}", steps=steps, progress=False, **MODELS[name])
    train_set, _ = engine.build_datasets(cfg)
    # the bare loop's batches: the engine's own first batches, made once, held in memory
    view = engine.SeededView(train_set, cfg.seed)
    items = [view[(k, k % len(train_set))] for k in range(steps * cfg.batch_size)]
    batches = [(torch.stack([it["image"] for it in items[i:i + cfg.batch_size]]),
                torch.stack([it["label"] for it in items[i:i + cfg.batch_size]]))
               for i in range(0, len(items), cfg.batch_size)]
    engine_step(cfg.replace(steps=3), train_set)  # warm-up (first-call costs)
    bare_step(cfg, batches[:3])
    eng, bare, splits = [], [], []
    for _ in range(rounds):
        t, split = engine_step(cfg, train_set)
        eng.append(t)
        splits.append(split)
        bare.append(bare_step(cfg, batches))
    e, b = statistics.median(eng), statistics.median(bare)
    split = {k: round(statistics.median(s[k] for s in splits) * 1000, 2) for k in splits[0]}
    out = {"engine_step_ms": round(e * 1000, 2), "bare_step_ms": round(b * 1000, 2),
           "engine_over_bare": round(e / b, 3), "engine_split_ms": split,
           "steps": steps, "rounds": rounds, "batch": cfg.batch_size, "crop": list(cfg.crop_size),
           "width": cfg.model_width}
    if compute:
        out["compute"] = compute_options(cfg, batches, rounds, b)
    return out


def compute_options(cfg, batches, rounds: int, bare: float) -> dict:
    """Bare step with channels_last and with torch.compile, as ratios to the plain bare step
    (interleaved with fresh plain rounds, so drift on the machine cancels)."""
    plain, cl, comp, first = [], [], [], None
    for _ in range(rounds):
        plain.append(bare_step(cfg, batches))
        cl.append(bare_step(cfg, batches, channels_last=True))
    out = {"channels_last_over_plain": round(statistics.median(cl) / statistics.median(plain), 3)}
    try:
        for r in range(max(1, rounds - 1)):
            t, f = bare_step(cfg, batches, compiled=True)
            comp.append(t)
            first = f if r == 0 else first  # later rounds reuse the compiled graph
        out["compile_over_plain"] = round(statistics.median(comp) / statistics.median(plain), 3)
        out["compile_first_step_s"] = round(first, 1)
    except Exception as e:  # no compiler, or inductor cannot handle the model here
        out["compile_over_plain"] = None
        out["compile_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return out


def measure_pf(steps: int, rounds: int) -> dict:
    """GSVNet's PF step: ``train_nonkey`` (sampling sequences from clips each step) against
    ``nonkey_loss`` + SGD on the same batches made beforehand."""
    from itertools import islice

    from paperlib.data.synthetic import SyntheticWorld
    from paperlib.video import GSVNet, nonkey_loss, sample_sequences, train_nonkey
    from paperlib.video.loop import _as_key

    world = SyntheticWorld("city_a", size=(128, 256), seed=0)
    clips = [world.clip(i, length=6) for i in range(4)]
    torch.manual_seed(0)
    key_net = models.build("swiftnet_resnet18", num_classes=19, width=8).eval()
    interval, batch = 5, 4
    batches = list(islice(sample_sequences(clips, interval, batch, seed=0), steps))

    def engine_run(n: int) -> float:
        torch.manual_seed(0)
        gsv = GSVNet()
        t0 = time.perf_counter()
        train_nonkey(gsv, key_net, sample_sequences(clips, interval, batch, seed=0), n, progress=False)
        return (time.perf_counter() - t0) / n

    def bare_run(items) -> float:
        torch.manual_seed(0)
        gsv = GSVNet().train()
        key = _as_key(key_net, 0.75, gsv.stride).eval()
        for p in key.parameters():
            p.requires_grad_(False)
        opt = torch.optim.SGD([p for p in gsv.parameters() if p.requires_grad], lr=0.002, momentum=0.9,
                              weight_decay=5e-4)
        t0 = time.perf_counter()
        for b in items:
            loss, _ = nonkey_loss(gsv, key, b["frames"], b["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) / len(items)

    engine_run(2)
    bare_run(batches[:2])
    eng, bare = [], []
    for _ in range(rounds):
        eng.append(engine_run(steps))
        bare.append(bare_run(batches))
    e, b = statistics.median(eng), statistics.median(bare)
    return {"engine_step_ms": round(e * 1000, 2), "bare_step_ms": round(b * 1000, 2),
            "engine_over_bare": round(e / b, 3), "steps": steps, "rounds": rounds, "batch": batch,
            "frames": [128, 256], "interval": interval}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by model name")
    p.add_argument("--compute", action="store_true",
                   help="also time channels_last and torch.compile on the bare loop of the engine models")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {name: measure(name, args.steps, args.rounds, args.compute) for name in args.models}
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            print(f"{name}: engine {r['engine_step_ms']} ms/step, bare {r['bare_step_ms']} ms/step, "
                  f"engine/bare {r['engine_over_bare']}; engine split (ms): {r.get('engine_split_ms', '-')}"
                  + (f"; compute options: {r['compute']}" if "compute" in r else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
