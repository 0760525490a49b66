"""The content-keyed cache of trained roles: built once, loaded after, keyed by everything that
made it, safe when two processes ask at once, recorded in manifests."""
import json
import multiprocessing as mp

import torch

from paperlib import cache, repro


def _build_in_child(root, out):
    import os
    import time

    os.environ["PAPERLIB_DATA"] = root

    def build():
        time.sleep(1.0)  # long enough for the other process to find the lock taken
        m = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(m.weight, 5.0)
        return m, {"built_by": os.getpid()}

    _, info = cache.cached("race", {"v": 1}, build, module=lambda: torch.nn.Linear(2, 2))
    out.put(info["cached"])


def test_built_once_loaded_after_and_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    cache.forget()
    calls = []

    def build():
        calls.append(1)
        m = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(m.weight, 2.0)
        return m, {"miou": 0.5}

    a, ia = cache.cached("teacher", {"steps": 10, "version": 1}, build, module=lambda: torch.nn.Linear(2, 2))
    b, ib = cache.cached("teacher", {"version": 1, "steps": 10}, build, module=lambda: torch.nn.Linear(2, 2))
    c, ic = cache.cached("teacher", {"steps": 11, "version": 1}, build, module=lambda: torch.nn.Linear(2, 2))
    assert len(calls) == 2 and not ia["cached"] and ib["cached"] and not ic["cached"]
    assert torch.equal(b.weight, a.weight) and ib["miou"] == 0.5 and ib["key"] == ia["key"] != ic["key"]
    assert cache.describe(ib["path"])["config"] == {"steps": 10, "version": 1}
    assert [r["kind"] for r in cache.used()] == ["teacher", "teacher"]
    paths = repro.write_table(__import__("pandas").DataFrame({"x": [1.0]}), "paperlib", "t",
                              profile="smoke", root=tmp_path)
    assert json.loads(paths["json"].read_text())["roles"] == cache.used()
    cache.forget()


def test_two_processes_build_a_role_once(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path), out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(out.get(timeout=5) for _ in procs) == [False, True]  # one built, the other loaded
    assert len(list((tmp_path / "cache" / "race").glob("*.pt"))) == 1


def test_a_role_is_built_with_one_thread_whoever_asks(tmp_path, monkeypatch):
    """Float sums change with the thread count: a role's weights must not depend on the caller's."""
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    seen = []

    def build():
        seen.append(torch.get_num_threads())
        return torch.nn.Linear(2, 2), {}

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cache.cached("thread_probe", {"v": 1}, build, module=lambda: torch.nn.Linear(2, 2))
        cache.cached("thread_probe", {"v": 2}, build, enabled=False)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    assert seen == [cache.BUILD_THREADS] * 2
