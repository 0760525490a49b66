"""Progress a notebook run can show in the terminal while its kernel works.

Inside a notebook started by ``python -m paperlib reproduce``, the kernel's output goes into the
executed notebook, not the terminal. Every long loop of the library therefore uses this module's
:class:`tqdm` (tqdm's own bar, which also reports its line through :func:`report`), and
:func:`report` writes that line to the file named by ``$PAPERLIB_STATUS_FILE`` (at most once a
second); the runner reads it and shows it beside the notebook's name, elapsed time and current
cell. Outside a run the bars are plain tqdm bars and nothing is written.
"""
from __future__ import annotations

import os
import time

from tqdm.auto import tqdm as _tqdm

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


def eta_text(done: int, total: int | None, elapsed: float) -> str:
    """``"120/250, 0:40 left"`` from the work done so far."""
    if not total:
        return f"{done}"
    if done <= 0:
        return f"{done}/{total}"
    left = elapsed / done * max(0, total - done)
    return f"{done}/{total}, {int(left // 60)}:{int(left % 60):02d} left"


class tqdm(_tqdm):
    """tqdm's progress bar that also tells the runner its line (see the module docstring)."""

    def update(self, n=1):
        out = super().update(n)
        if not self.disable and os.environ.get("PAPERLIB_STATUS_FILE"):
            d = self.format_dict
            post = f", {d['postfix']}" if d.get("postfix") else ""
            report(f"{self.desc}: {eta_text(d['n'], d['total'], d['elapsed'])}{post}")
        return out
