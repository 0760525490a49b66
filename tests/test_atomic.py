import os

import pytest

from paperlib.atomic import atomic_path, atomic_write_text


def test_error_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "ckpt.pt"
    atomic_write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("crash while writing")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_success_replaces_and_creates_folders(tmp_path):
    dest = tmp_path / "a" / "b" / "cfg.json"
    atomic_write_text(dest, "{}")
    atomic_write_text(dest, '{"x": 1}')
    assert dest.read_text() == '{"x": 1}'
    assert [p.name for p in dest.parent.iterdir()] == ["cfg.json"]


def test_stale_temp_dirs_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    from paperlib.atomic import remove_stale_temp_dirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    root = tmp_path / "world"
    (tmp_path / f".world.tmp-{dead}").mkdir()            # a killed export
    (tmp_path / f".world.tmp-{os.getpid()}").mkdir()     # ours, in progress
    (tmp_path / ".other.tmp-1").mkdir()                  # another folder's
    assert remove_stale_temp_dirs(root) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".world.tmp-{os.getpid()}", ".other.tmp-1"])
