"""Independent trainings in a few one-thread processes: the experiments layers' one pool.

A CPU notebook runs its arms as ``jobs`` forked processes of one thread each (two on the 2-core
machine): one thread per run is the contention-free setting, and a run's result does not depend
on how many run beside it (each seeds its own initialisation and data order).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence


def _one(task) -> dict:
    import torch
    torch.set_num_threads(1)
    fn, args = task
    return fn(*args)


def run_all(fn: Callable, tasks: Sequence[tuple], jobs: int, desc: str, progress: bool) -> list:
    """``fn(*t)`` for every task, in ``jobs`` forked processes of one thread each, in order
    (``jobs <= 1``: in this process, as it is)."""
    from .progress import tqdm
    if jobs <= 1:
        return [fn(*t) for t in tqdm(tasks, desc=desc, disable=not progress)]
    import multiprocessing as mp
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
        return list(tqdm(pool.map(_one, [(fn, t) for t in tasks]), total=len(tasks), desc=desc,
                         disable=not progress))
