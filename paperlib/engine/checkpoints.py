"""Checkpoints: atomic save, safe load (``weights_only=True``), every RNG state, the run log."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..atomic import atomic_path, atomic_write_text
from .distributed import DistInfo


CKPT_NAME = "last.pt"
LOG_NAME = "log.jsonl"


# =============================================================================================
# Checkpoints
# =============================================================================================
def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save`` to a temp file in the same folder, then ``os.replace`` (atomic)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state() -> dict:
    """This process's torch / CUDA / numpy / python RNG states as tensors and plain types."""
    _, key, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
            "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _gather_rng(info: DistInfo) -> list[dict]:
    """Every rank's RNG state (a collective under DDP)."""
    if info.world == 1:
        return [rng_state()]
    states: list = [None] * info.world
    dist.all_gather_object(states, rng_state())
    return states



def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log records written after the checkpoint's step (they are re-run)."""
    if path.is_file():
        keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))
