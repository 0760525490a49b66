"""Command-line training: ``python -m paperlib.train --config FILE [--set key=value ...]``.

Multi-GPU is the same command under torchrun (DDP, SyncBatchNorm, per-rank batch =
batch_size / world size; see ``paperlib.engine``)::

    torchrun --nproc-per-node 8 -m paperlib.train --config run.json --set resume=true

A thin wrapper: the config file is a ``TrainConfig`` JSON (``cfg.save(path)`` writes one);
``--set`` values are parsed as JSON when they can be (``steps=400``, ``crop_size=[512,1024]``,
``resume=true``) and taken as strings otherwise (``name=baseline``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .config import ConfigError, TrainConfig, parse_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperlib.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="TrainConfig JSON file")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    args = parser.parse_args(argv)
    try:
        cfg = TrainConfig.load(args.config)
        cfg = cfg.replace(**parse_overrides(args.set)) if args.set else cfg
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .engine import train
    out = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        summary = {"name": cfg.name, "step": out["step"], "loss": out["loss"],
                   "skipped_steps": out["skipped_steps"], "wall_time_s": round(out["wall_time"], 2),
                   "checkpoint": out["checkpoint"]}
        if out["metrics"]:
            summary.update(miou=out["metrics"]["miou"], pixel_accuracy=out["metrics"]["pixel_accuracy"])
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
