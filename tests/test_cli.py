"""python -m paperlib: list, reproduce argument handling, train delegation."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from paperlib.__main__ import main

DATA = Path(__file__).parent / "data"


def test_list_shows_notebooks_and_their_outputs(capsys):
    assert main(["list", "--notebooks-dir", str(DATA)]) == 0
    out = capsys.readouterr().out.splitlines()
    i = next(i for i, line in enumerate(out) if line.startswith("nb_fail"))
    assert "fails on purpose" in out[i] and out[i + 1].strip() == "tables/paperlib/nb_fail"
    i = next(i for i, line in enumerate(out) if line.startswith("nb_ok"))
    assert [s.strip() for s in out[i + 1:i + 3]] == ["tables/paperlib/nb_ok", "figures/paperlib/nb_ok"]


def test_list_as_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "paperlib", "list", "--notebooks-dir", str(DATA)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "nb_ok" in proc.stdout and "figures/paperlib/nb_ok" in proc.stdout


def test_reproduce_unknown_notebook_is_an_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--profile", "smoke", "--only", "nonexistent",
              "--notebooks-dir", str(DATA), "--output-root", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "nonexistent" in err and "available:" in err and "nb_fail" in err and "nb_ok" in err


def test_reproduce_bad_set_is_an_error(capsys, tmp_path):
    for bad in (["--set", "steps"], ["--set", "nosuchparam=3"]):
        with pytest.raises(SystemExit) as e:
            main(["reproduce", "--profile", "smoke", "--only", "nb_ok", "--notebooks-dir", str(DATA),
                  "--output-root", str(tmp_path), *bad])
        assert e.value.code == 2
    assert "nosuchparam" in capsys.readouterr().err
    assert not (tmp_path / "build" / "executed").exists()


def test_reproduce_exit_code_follows_failures(monkeypatch, tmp_path):
    from paperlib import repro

    seen = {}

    def fake_run(names, profile, **kw):
        seen.update(names=names, profile=profile, **kw)
        status = "failed" if "bad" in names else "ok"
        return [repro.NotebookResult(n, status, 0.1, []) for n in names]

    monkeypatch.setattr(repro, "run_notebooks", fake_run)
    assert main(["reproduce", "--only", "a", "--jobs", "2", "--set", "steps=5", "lr=0.1"]) == 0
    assert seen["names"] == ["a"] and seen["profile"] == "cpu" and seen["jobs"] == 2
    assert seen["overrides"] == {"steps": 5, "lr": 0.1}
    assert main(["reproduce", "--profile", "smoke", "--only", "a", "bad"]) == 1


def test_train_delegates_to_paperlib_train(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("paperlib.train")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "paperlib.train", fake)
    import paperlib

    monkeypatch.setattr(paperlib, "train", fake, raising=False)
    cfg = tmp_path / "run.json"
    assert main(["train", "--config", str(cfg), "--resume"]) == 0
    assert calls == [["--config", str(cfg), "--resume"]]
