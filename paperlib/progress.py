"""Progress a notebook run can show in the terminal while its kernel works.

Inside a notebook started by ``python -m paperlib reproduce``, the kernel's output goes into the
executed notebook, not the terminal. Long work (the engine's training loop, for one) therefore
also reports a one-line status through :func:`report`, which writes it to the file named by
``$PAPERLIB_STATUS_FILE`` (at most once a second); the runner reads it and shows it beside the
notebook's name, elapsed time and current cell. Outside a run it does nothing.
"""
from __future__ import annotations

import os
import time

_LAST = [0.0]


def report(text: str, *, force: bool = False) -> None:
    """Publish ``text`` as the current status of this kernel's work (throttled to 1/s)."""
    path = os.environ.get("PAPERLIB_STATUS_FILE")
    now = time.monotonic()
    if not path or (not force and now - _LAST[0] < 1.0):
        return
    _LAST[0] = now
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text.replace("\n", " ")[:200])
        os.replace(tmp, path)
    except OSError:  # progress is best effort: never fail a run for it
        pass


def read(path: str | os.PathLike) -> str:
    """The last status written to ``path`` ('' if none yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def eta_text(done: int, total: int, elapsed: float) -> str:
    """``"120/250 steps, 0:40 left"`` from the work done so far."""
    if done <= 0 or total <= 0:
        return f"{done}/{total} steps"
    left = elapsed / done * max(0, total - done)
    return f"{done}/{total} steps, {int(left // 60)}:{int(left % 60):02d} left"
