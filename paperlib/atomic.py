"""Atomic file writes: nothing half-written is ever left where a reader looks.

Every writer in paperlib (configs, checkpoints, centroid-index caches) goes through
:func:`atomic_path`: write to a temp file in the destination's folder, then ``os.replace`` it
onto the destination (atomic on POSIX); on any error the temp file is removed and the old
destination, if any, is untouched. (Tables and figures use ``repro.atomic_write_files``, which
does the same for several files at once.)
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
