"""Atomic file writes: nothing half-written is ever left where a reader looks.

Every writer in paperlib (configs, checkpoints, centroid-index caches, tables, figures) goes
through this module: write to a temp file in the destination's folder, then ``os.replace`` it
onto the destination (atomic on POSIX); on any error the temp file is removed and the old
destination, if any, is untouched. :func:`atomic_path` does one file, :func:`atomic_write_files`
several (every temp file first, then the renames). New files get the mode an ordinary ``open``
would give under the current umask (``mkstemp`` alone would give 0600).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping


def _file_mode() -> int:
    """Mode an ordinary new file gets under the current umask (mkstemp would give 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(dest: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.fchmod(fd, _file_mode())
    return fd, tmp


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on normal exit rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
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


def atomic_write_files(files: Mapping[Path, bytes]) -> list[Path]:
    """Write several files atomically: every temp file first, then one ``os.replace`` each.

    Content is rendered to bytes before this is called, so an error while rendering touches no
    file; an error here removes every temp file it made. Each file on disk is always whole.
    """
    temps: dict[Path, Path] = {}
    try:
        for dest, data in files.items():
            dest = Path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _temp_beside(dest)
            temps[dest] = Path(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for dest, tmp in temps.items():
            os.replace(tmp, dest)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return list(files)


def remove_stale_temp_dirs(root: str | os.PathLike) -> int:
    """Remove ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` siblings of folder ``root`` left by a
    process that was killed mid-write (its pid no longer runs). Returns how many were removed."""
    import re
    import shutil

    root = Path(root)
    if not root.parent.is_dir():
        return 0
    pattern = re.compile(rf"^\.{re.escape(root.name)}\.(tmp|old)-(\d+)$")
    removed = 0
    for p in root.parent.iterdir():
        m = pattern.match(p.name)
        if not m or int(m.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(2)), 0)
            continue  # that writer is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed += 1
    return removed

