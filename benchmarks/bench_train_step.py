"""The engine's training step against the bare loop this CPU allows, side by side in one run.

For each model: ``engine.train`` on the cpu world (real data path: decoding, joint transforms,
seeded per-sample loading, collation) for ``--steps`` steps, and a *bare loop* on the same model,
batch and optimizer (SGD, momentum 0.9, weight decay 1e-4, cross-entropy) that feeds batches
pre-made in memory -- the floor. Rounds are interleaved (engine, bare, engine, bare, ...) and the
median time per step of each is reported with the engine's own split of its step (data,
forward, backward, optimizer, other) and ``engine_over_bare``.

Models (1 thread by default, the cpu profile's setting):

- ``tiny_fcn``: width 16, crop 96, batch 8 (VPLR's cpu recipe);
- ``deeplabv3plus_resnet18``: width 8, crop 128, batch 8.

    python benchmarks/bench_train_step.py [--steps 60] [--rounds 3] [--threads 1] [--json]
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
}


def engine_step(cfg, train_set) -> tuple[float, dict]:
    out = engine.train(cfg, train_set=train_set)
    return out["train_time"] / out["step"], out["step_split"]


def bare_step(cfg, batches) -> float:
    torch.manual_seed(cfg.seed)
    model = models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    for image, label in batches:
        out = model(image)
        out = out["out"] if isinstance(out, dict) else out
        if out.shape[-2:] != label.shape[-2:]:
            out = F.interpolate(out, size=label.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(out, label, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / len(batches)


def measure(name: str, steps: int, rounds: int) -> dict:
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
    return {"engine_step_ms": round(e * 1000, 2), "bare_step_ms": round(b * 1000, 2),
            "engine_over_bare": round(e / b, 3), "engine_split_ms": split,
            "steps": steps, "rounds": rounds, "batch": cfg.batch_size, "crop": list(cfg.crop_size),
            "width": cfg.model_width}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by model name")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {name: measure(name, args.steps, args.rounds) for name in args.models}
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            print(f"{name}: engine {r['engine_step_ms']} ms/step, bare {r['bare_step_ms']} ms/step, "
                  f"engine/bare {r['engine_over_bare']}; engine split (ms): {r['engine_split_ms']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
