"""Self-training / CSST fast schedules in use: :func:`run_schedules` trains one run per crop
schedule side by side and measures its speed-up (ST Table 4 / CSST Table 4 / Table 5).

The schedules themselves (``crop_schedule``, ``batch_for_crop``, ``relative_cost``) live below
the engine in :mod:`paperlib.schedules` and are re-exported here.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ..schedules import SCHEDULES, batch_for_crop, crop_schedule, relative_cost  # noqa: F401


def run_schedules(cfg, runs: Mapping[str, dict], train_set, val_set=None, seeds: Sequence[int] = (0,),
                  baseline: str | None = None, jobs: int = 1) -> list[dict]:
    """Train ``cfg.replace(seed=s, **runs[label])`` for every seed and run and return one row per
    run (ST Table 4 / CSST Table 4 / Table 5 measurements).

    With ``jobs <= 1`` the runs share this process, interleaved seed by seed, and the order of the
    runs rotates from one seed to the next, so a change in machine load does not favour one
    schedule; with ``jobs > 1`` they run in that many one-thread processes (``paperlib.pool``),
    where the CPU time of each run is its contention-free cost. All runs share ``train_set`` (its
    crop is reset to the run's ``crop_size`` first) and ``val_set`` (``None``: no mIoU).

    Row keys: ``run``, ``seed``, ``train_time`` (s, the training loop alone), ``train_cpu_time``
    (CPU s of the process in it: what a quiet machine's wall-clock would be for a single-threaded
    run without loader workers), ``miou``, ``steps``, ``samples`` (trained on), ``crops`` and
    ``batches`` (per epoch), ``ideal_speedup`` (``1 / relative_cost(crops)``) and, with
    ``baseline`` (a key of ``runs``), ``speedup`` / ``cpu_speedup``: the baseline's time per
    training sample / this run's, same seed. Per sample, because an epoch drops its last partial
    batch: with a few dozen images and batches of 10, 14, 20 an epoch can lose up to a sixth of
    its samples, which would otherwise pass for speed (on the papers' 3K+ images it is < 2 %).
    """
    from ..pool import run_all
    if baseline is not None and baseline not in runs:
        raise ValueError(f"run_schedules: baseline {baseline!r} is not one of the runs {list(runs)}")
    labels = list(runs)
    tasks = [(cfg, label, dict(runs[label]), int(seed), train_set, val_set)
             for k, seed in enumerate(seeds) for label in labels[k % len(labels):] + labels[:k % len(labels)]]
    rows = run_all(_schedule_run, tasks, jobs, "schedules", False)
    if baseline is not None:
        for key, name in (("train_time", "speedup"), ("train_cpu_time", "cpu_speedup")):
            base = {r["seed"]: r[key] / r["samples"] for r in rows if r["run"] == baseline}
            for r in rows:
                r[name] = base[r["seed"]] / (r[key] / r["samples"])
    order = {label: i for i, label in enumerate(labels)}
    return sorted(rows, key=lambda r: (order[r["run"]], r["seed"]))


def _schedule_run(cfg, label: str, run: dict, seed: int, train_set, val_set) -> dict:
    """One run of ``run_schedules``."""
    from .. import engine
    run_cfg = cfg.replace(seed=seed, name=f"{cfg.name}_{label}_s{seed}", **run)
    engine.set_crop_size(train_set, run_cfg.crop_size)
    out = engine.train(run_cfg, train_set=train_set, val_set=val_set)
    plan = engine.epoch_plan(run_cfg) or [(run_cfg.crop_size[0], run_cfg.batch_size)] * run_cfg.epochs
    samples = sum(h.get("batch_size", run_cfg.batch_size) for h in out["history"])
    return {"run": label, "seed": seed, "train_time": out["train_time"], "train_cpu_time": out["train_cpu_time"],
            "miou": out["metrics"].get("miou"), "steps": out["step"], "samples": samples,
            "crops": [c for c, _ in plan], "batches": [b for _, b in plan],
            "ideal_speedup": 1.0 / relative_cost([c for c, _ in plan])}
