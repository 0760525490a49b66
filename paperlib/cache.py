"""Expensive trained roles, built once and shared: one content-keyed cache.

A *role* is a network that several notebooks need trained the same way: a converged teacher,
a pretrained backbone, VPLR's motion model G, GSVNet's flow net and keyframe nets. Training one
takes minutes to hours, so the first notebook that needs it trains it and every later call, in
any notebook, loads it::

    model, info = cached("keyframe", {"config": cfg.to_dict(), "version": 1},
                         build=lambda: train_it(),          # -> (trained module, info dict)
                         module=lambda: make_untrained())    # the architecture to load into

The key is the SHA-256 of ``kind`` and ``config``: ``config`` must hold *everything that made the
role* (its training config, the identity of its data -- e.g. the world's export stamp -- and a
``version`` the role's code bumps when its training changes). A change of any of them trains a
new role; nothing is ever overwritten. Files live in ``<data_dir>/cache/<kind>/<key>.pt`` and
are written atomically and loaded with ``weights_only=True``.

**Two notebooks at once.** Building holds an exclusive lock (``<key>.pt.lock``, ``fcntl.flock``)
around "check, else build and save", so a second process asking for the same role waits for the
first and then loads its result instead of training it twice.

**One thread.** Float sums change with the thread count, so a role built in a two-thread
notebook and one built in a one-thread pool worker differ in their last bits, and then in every
result trained from them. On a machine without CUDA a role is therefore always built with
``BUILD_THREADS`` CPU threads (the cpu profile's), whoever asks for it: its weights are a function
of its key alone.

**Provenance.** Every role used in this process is remembered (:func:`used`) and
``repro.write_table`` / ``save_figure`` record them in the manifest (``roles``: kind and key;
whether it was loaded or trained is a fact of one run, not of the result, so it is not recorded).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

_USED: dict[str, dict[str, Any]] = {}
#: CPU threads every role is built with where there is no CUDA (see "One thread" above).
BUILD_THREADS = 1


def cache_root() -> Path:
    """``<data_dir>/cache`` (``$PAPERLIB_DATA`` or ``<repo>/data``)."""
    from paperlib.data import data_dir

    return data_dir() / "cache"


def role_key(kind: str, config: Mapping[str, Any]) -> str:
    """The content key of a role: SHA-256 of its kind and config (key order does not matter)."""
    text = json.dumps({"kind": kind, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def role_path(kind: str, config: Mapping[str, Any]) -> Path:
    """Where the role ``kind`` with ``config`` is (or will be) stored."""
    if not kind or "/" in kind or kind.startswith("."):
        raise ValueError(f"cached: bad role kind {kind!r}")
    return cache_root() / kind / f"{role_key(kind, config)}.pt"


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process to finish building {path.parent.name}/{path.name} ...",
                  flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def cached(kind: str, config: Mapping[str, Any], build: Callable[[], tuple[Any, Mapping[str, Any]]],
           *, module: Callable[[], Any] | Any | None = None, enabled: bool = True) -> tuple[Any, dict[str, Any]]:
    """The role ``kind`` made from ``config``: loaded when cached, else built and saved.

    ``build()`` trains it and returns ``(module, info)`` (``info``: JSON-able facts such as its
    validation mIoU, steps, history). ``module`` is the untrained architecture to load cached
    weights into: an ``nn.Module`` or a zero-argument factory. Returns ``(module, info)``, where
    ``info`` also has ``cached`` (True when loaded), ``key``, ``path`` and ``build_time_s``.
    ``enabled=False`` builds without reading or writing the cache.
    """
    from paperlib.atomic import atomic_path

    import torch

    path = role_path(kind, config)
    key = path.stem
    if not enabled:
        with _build_threads(torch):
            mod, info = build()
        return mod, {**dict(info or {}), "cached": False, "key": key, "path": None}
    with _locked(path):
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            if module is None:
                raise ValueError(f"cached({kind!r}): pass module= (the architecture to load the cached weights into)")
            mod = module() if callable(module) and not hasattr(module, "load_state_dict") else module
            mod.load_state_dict(state["model"])
            info = {**state["info"], "cached": True, "key": key, "path": str(path)}
        else:
            t0 = time.perf_counter()
            with _build_threads(torch):
                mod, info = build()
            info = {**_jsonable(dict(info or {})), "build_time_s": round(time.perf_counter() - t0, 2)}
            with atomic_path(path) as tmp:
                torch.save({"model": mod.state_dict(), "kind": kind, "config": _jsonable(dict(config)),
                            "info": info}, tmp)
            info = {**info, "cached": False, "key": key, "path": str(path)}
    _USED[f"{kind}/{key}"] = {"kind": kind, "key": key}
    return mod, info


@contextlib.contextmanager
def _build_threads(torch):
    """``BUILD_THREADS`` CPU threads for the duration of a build, where there is no CUDA."""
    before = torch.get_num_threads()
    fixed = not torch.cuda.is_available() and before != BUILD_THREADS
    if fixed:
        torch.set_num_threads(BUILD_THREADS)
    try:
        yield
    finally:
        if fixed:
            torch.set_num_threads(before)


def used() -> list[dict[str, Any]]:
    """The roles this process used so far (what a manifest records), in a stable order."""
    return [dict(v) for _, v in sorted(_USED.items())]


def forget() -> None:
    """Clear the record of used roles (tests)."""
    _USED.clear()


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """The kind, config and info stored with a cached role (for inspection)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return {"kind": state.get("kind"), "config": state.get("config"), "info": state.get("info")}
