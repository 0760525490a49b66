"""paperlib.repro: versioned tables/figures, manifests, atomic writes, the papermill harness."""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from paperlib import reference, repro

DATA = Path(__file__).parent / "data"


def seeded_table() -> pd.DataFrame:
    return pd.DataFrame({"method": ["Baseline"] * 3 + ["+ Mapillary Pre-training"] * 2,
                         "seed": [0, 1, 2, 0, 1],
                         "mIoU": [1.0, 2.0, 3.0, 4.0, 6.0]})


def files_in(folder: Path) -> list[str]:
    """Output files under ``folder`` (run records under ``build/`` are not outputs)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and "build" not in p.relative_to(folder).parts) \
        if folder.exists() else []


# --- names -----------------------------------------------------------------------------------
def test_unknown_paper_and_bad_ids_are_named(tmp_path):
    with pytest.raises(ValueError, match="'vplr2'"):
        repro.write_table(seeded_table(), "vplr2", "t1", profile="smoke", root=tmp_path)
    with pytest.raises(ValueError, match="table_id 'a.b'"):
        repro.table_paths("vplr", "a.b", "smoke", tmp_path)
    with pytest.raises(ValueError, match="profile '../x'"):
        repro.figure_paths("vplr", "fig4", "../x", tmp_path)
    assert files_in(tmp_path) == []


def test_output_root_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_OUTPUT_ROOT", str(tmp_path))
    assert repro.output_root() == tmp_path
    assert repro.output_root("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv("PAPERLIB_OUTPUT_ROOT")
    assert (repro.output_root() / "paperlib" / "repro.py").is_file()


# --- seeds and markdown ----------------------------------------------------------------------
def test_aggregate_seeds_hand_computed():
    agg = repro.aggregate_seeds(seeded_table())
    assert list(agg.columns) == ["method", "mIoU_mean", "mIoU_std", "n_seeds"]
    assert agg["method"].tolist() == ["Baseline", "+ Mapillary Pre-training"]  # first-seen order
    # [1, 2, 3]: mean 2, sample std sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1
    # [4, 6]:    mean 5, sample std sqrt((1 + 1) / 1) = sqrt(2)
    assert agg["mIoU_mean"].tolist() == [2.0, 5.0]
    assert agg["mIoU_std"].tolist() == pytest.approx([1.0, 2 ** 0.5])
    assert agg["n_seeds"].tolist() == [3, 2]


def test_markdown_mean_std_beside_paper_column():
    ref = reference.load("vplr", "table1")
    md = repro.table_markdown(seeded_table(), ref)
    header = md.splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "mIoU", "paper: mIoU", "seeds"]
    assert "| Baseline " in md and "2.00 ± 1.00" in md and "76.60" in md
    assert "5.00 ± 1.41" in md and "78.32" in md
    # the paper row we did not run is shown, with our cell empty
    row = next(line for line in md.splitlines() if "Class Uniform" in line)
    assert "79.46" in row and "—" in row


def test_markdown_without_seeds_keeps_ints_and_single_runs():
    df = pd.DataFrame({"k": [0, 1], "mIoU": [70.0, 71.5]})
    ref = pd.DataFrame({"k": [0, 1, 2], "mIoU": [79.46, 80.0, 80.5]})
    lines = repro.table_markdown(df, ref, floatfmt=".1f").splitlines()
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["0", "70.0", "79.5"]
    assert [c.strip() for c in lines[4].strip("|").split("|")] == ["2", "—", "80.5"]
    with pytest.raises(ValueError, match="shares no key column"):
        repro.table_markdown(df, pd.DataFrame({"method": ["x"], "mIoU": [1.0]}))


# --- write_table / save_figure ---------------------------------------------------------------
def test_write_table_files_and_manifest(tmp_path):
    started = datetime.now().timestamp() - 5.0
    paths = repro.write_table(seeded_table(), "vplr", "table1", profile="smoke", claims="a test table",
                              params={"steps": 3, "root": Path("/x")}, seeds=[0, 1, 2],
                              reference=True, data_fingerprint="abc123", started=started,
                              root=tmp_path, notes="test run")
    base = tmp_path / "tables" / "vplr"
    assert paths == {"csv": base / "table1.smoke.csv", "md": base / "table1.smoke.md",
                     "json": base / "table1.smoke.json"}
    pd.testing.assert_frame_equal(pd.read_csv(paths["csv"]), seeded_table())
    man = json.loads(paths["json"].read_text())
    for key in ("git", "paperlib_version", "params", "seeds", "device", "torch", "cuda",
                "data_fingerprint", "content_sha256", "cpu_threads"):
        assert key in man, key
    assert "timestamp" not in man and "wall_time_s" not in man  # what describes one run lives apart
    run = json.loads((tmp_path / "build/runs/tables/vplr/table1.smoke.json").read_text())
    assert man["content_sha256"] == hashlib.sha256(paths["csv"].read_bytes()).hexdigest()
    assert man["params"] == {"steps": 3, "root": "/x"} and man["seeds"] == [0, 1, 2]
    import torch

    cuda = torch.cuda.is_available()
    assert man["data_fingerprint"] == "abc123" and man["torch"] == torch.__version__
    assert man["device"] == (torch.cuda.get_device_name(0) if cuda else "cpu")
    assert 5.0 <= run["wall_time_s"] < 120
    assert datetime.fromisoformat(run["timestamp"]).utcoffset().total_seconds() == 0
    assert set(man["git"]) == {"commit", "dirty", "untracked"} and man["git"]["commit"] != ""
    assert "Table 1" in man["reference"]
    md = paths["md"].read_text()
    assert "paper: mIoU" in md and "2.00 ± 1.00" in md and "Table 1" in md and "test run" in md
    assert not [p for p in base.iterdir() if p.name.endswith(".tmp")]


def test_identical_result_leaves_files_untouched(tmp_path, monkeypatch):
    clean = {"commit": "a" * 40, "dirty": False, "untracked": 0}
    monkeypatch.setattr(repro, "git_info", lambda: dict(clean))
    paths = repro.write_table(seeded_table(), "vplr", "table1", profile="smoke", claims="a test table",
                              root=tmp_path, started=0.0)
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in paths.items()}
    monkeypatch.setattr(repro, "git_info", lambda: {**clean, "commit": "b" * 40})  # a later commit
    repro.write_table(seeded_table(), "vplr", "table1", profile="smoke", claims="a test table",
                      root=tmp_path, started=1.0)
    assert {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in paths.items()} == before
    repro.write_table(seeded_table().assign(mIoU=1.0), "vplr", "table1", profile="smoke",
                      claims="a test table", root=tmp_path)
    assert json.loads(paths["json"].read_text())["git"]["commit"] == "b" * 40  # a new result is written


def test_git_info_outside_a_repo(tmp_path, monkeypatch):
    monkeypatch.setattr(repro, "REPO_ROOT", tmp_path)
    assert repro.git_info() == {"commit": "unknown", "dirty": "unknown", "untracked": "unknown"}


def test_failed_write_leaves_no_partial_or_temp_file(tmp_path, monkeypatch):
    df = seeded_table()
    repro.write_table(df, "vplr", "table1", profile="smoke", claims="a test table", root=tmp_path)
    folder = tmp_path / "tables" / "vplr"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(repro.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        repro.write_table(df.assign(mIoU=df.mIoU * 2), "vplr", "table1", profile="smoke", claims="a test table", root=tmp_path)
    with pytest.raises(OSError, match="simulated"):
        repro.write_table(df, "vplr", "table9", profile="smoke", claims="a test table", root=tmp_path)
    monkeypatch.undo()

    def broken_to_csv(self, *a, **k):
        raise RuntimeError("to_csv failed (simulated)")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(RuntimeError, match="simulated"):
        repro.write_table(df, "vplr", "table2", profile="smoke", claims="a test table", root=tmp_path)
    # old files untouched, nothing new, no temp files left behind
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_failure_between_replaces_keeps_every_file_whole(tmp_path, monkeypatch):
    real = os.replace
    calls = []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("crash after the first rename (simulated)")
        real(src, dst)

    monkeypatch.setattr(repro.os, "replace", replace_then_fail)
    with pytest.raises(OSError):
        repro.write_table(seeded_table(), "csst", "table2", profile="smoke", claims="a test table", root=tmp_path)
    assert files_in(tmp_path) == ["table2.smoke.csv"]  # the renamed file is complete
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tables/csst/table2.smoke.csv"), seeded_table())


def test_save_figure_png_and_manifest(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    paths = repro.save_figure(fig, "gsvnet", "fig3", profile="smoke", params={"l": 4}, root=tmp_path)
    plt.close(fig)
    png = paths["png"].read_bytes()
    assert paths["png"] == tmp_path / "figures/gsvnet/fig3.smoke.png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    man = json.loads(paths["json"].read_text())
    assert man["kind"] == "figure" and man["params"] == {"l": 4}
    assert man["content_sha256"] == hashlib.sha256(png).hexdigest()
    assert files_in(tmp_path) == ["fig3.smoke.json", "fig3.smoke.png"]


# --- references --------------------------------------------------------------------------------
def test_reference_vplr_table1_transcribed():
    ref = reference.load("vplr", "table1")
    assert ref["mIoU"].tolist() == [76.60, 78.32, 79.46]
    assert ref["method"].iloc[0] == "Baseline"
    assert "Table 1" in ref.attrs["source"] and "VPLR" in ref.attrs["source"]
    assert "vplr/table1" in reference.available()


def test_reference_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="vplr/table99.*available: .*vplr/table1"):
        reference.load("vplr", "table99")
    with pytest.raises(ValueError, match="unknown paper key 'nope'"):
        reference.load("nope", "table1")
    (tmp_path / "gsvnet").mkdir()
    (tmp_path / "gsvnet" / "table1.csv").write_text("# transcribed by hand\nmethod,mIoU\nx,1\n")
    monkeypatch.setattr(reference, "HERE", tmp_path)
    with pytest.raises(ValueError, match="source"):
        reference.load("gsvnet", "table1")


# --- parameters --------------------------------------------------------------------------------
def test_check_params_names_the_parameter():
    def positive(v):
        """must be > 0"""
        return v > 0

    allowed = {"profile": ("smoke", "cpu"), "steps": int, "lr": float, "warm": positive, "x": None}
    ok = {"profile": "cpu", "steps": 3, "lr": 1, "warm": 2, "x": object}
    assert repro.check_params(ok, allowed) == ok  # int is fine for float
    bad = [({"stepz": 3}, "stepz"), ({"profile": "fast"}, "'profile' must be one of"),
           ({"steps": "3"}, "'steps' must be int"), ({"steps": True}, "'steps' must be int"),
           ({"lr": "0.1"}, "'lr' must be float"), ({"warm": -1}, "'warm'=-1 is invalid: must be > 0")]
    for params, msg in bad:
        with pytest.raises(ValueError, match=msg):
            repro.check_params(params, allowed)


def test_parse_overrides():
    got = repro.parse_overrides(["steps=10", "lr=0.01", "name=abc", "flip=true", "k=[1, 2]",
                                 "off=False", "path=../a=b"])
    assert got == {"steps": 10, "lr": 0.01, "name": "abc", "flip": True, "k": [1, 2],
                   "off": False, "path": "../a=b"}
    for bad in ["steps", "=3", "a b=1"]:
        with pytest.raises(ValueError, match="bad override"):
            repro.parse_overrides([bad])


# --- notebooks ---------------------------------------------------------------------------------
def test_list_notebooks_reads_declared_writes():
    books = {b["name"]: b for b in repro.list_notebooks(DATA)}
    assert {"nb_ok", "nb_fail"} <= set(books)
    assert books["nb_fail"]["writes"] == ["tables/paperlib/nb_fail"]
    assert books["nb_ok"]["writes"] == ["tables/paperlib/nb_ok", "figures/paperlib/nb_ok"]
    assert books["nb_ok"]["title"] == "Harness test notebook (succeeds)"


def test_unknown_notebook_or_parameter_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"unknown notebook\(s\) \['nope'\]; available: .*nb_fail, .*nb_ok"):
        repro.run_notebooks(["nope"], "smoke", root=tmp_path, notebooks_dir=DATA)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['stepz'\]"):
        repro.run_notebooks(["nb_ok"], "smoke", overrides={"stepz": 1}, root=tmp_path, notebooks_dir=DATA)
    with pytest.raises(ValueError, match="--profile"):
        repro.run_notebooks(["nb_ok"], "smoke", overrides={"profile": "cpu"}, root=tmp_path,
                            notebooks_dir=DATA)
    assert not (tmp_path / "build" / "executed").exists()  # no kernel was started


@pytest.mark.slow
def test_run_notebooks_keeps_going_and_reports(tmp_path, capsys):
    results = repro.run_notebooks(["nb_fail", "nb_ok"], "smoke", jobs=2, overrides={"steps": 4},
                                  root=tmp_path, notebooks_dir=DATA)
    fail, ok = results
    assert (fail.name, fail.status, ok.name, ok.status) == ("nb_fail", "failed", "nb_ok", "ok")
    assert "RuntimeError: nb_fail fails on purpose" in fail.error and fail.written == []
    assert ok.written == ["tables/paperlib/nb_ok.smoke", "figures/paperlib/nb_ok.smoke"]
    assert ok.missing == [] and ok.wall_s > 0
    for r in results:
        assert Path(r.executed) == tmp_path / "build/executed/smoke" / f"{r.name}.ipynb"
        assert Path(r.executed).is_file()
    df = pd.read_csv(tmp_path / "tables/paperlib/nb_ok.smoke.csv")
    assert df["mIoU"].tolist() == [4.0, 6.0]  # the override reached the notebook
    man = json.loads((tmp_path / "tables/paperlib/nb_ok.smoke.json").read_text())
    assert man["notebook"] == "nb_ok" and man["params"]["steps"] == 4 and man["profile"] == "smoke"
    assert "5.00 ± 1.41" in (tmp_path / "tables/paperlib/nb_ok.smoke.md").read_text()
    summary = capsys.readouterr().out
    assert "nb_fail" in summary and "failed" in summary and "tables/paperlib/nb_ok.smoke" in summary
    assert not (tmp_path / "tables/paperlib/nb_fail.smoke.csv").exists()  # the failed run published nothing
    assert not any((tmp_path / "build/staging").rglob("*.*"))


@pytest.mark.slow
def test_failed_notebook_leaves_the_previous_outputs_intact(tmp_path):
    old = repro.write_table(pd.DataFrame({"x": [1.0]}), "paperlib", "nb_fail", profile="smoke", root=tmp_path)
    before = {k: p.read_bytes() for k, p in old.items()}
    (r,) = repro.run_notebooks(["nb_fail"], "smoke", root=tmp_path, notebooks_dir=DATA, verbose=False)
    assert r.status == "failed"
    assert {k: p.read_bytes() for k, p in old.items()} == before


@pytest.mark.slow
def test_bad_parameter_value_fails_fast_naming_it(tmp_path, capsys):
    (res,) = repro.run_notebooks(["nb_ok"], "smoke", overrides={"steps": -2}, root=tmp_path,
                                 notebooks_dir=DATA, verbose=False)
    assert res.status == "failed" and "'steps'=-2" in res.error
    assert res.written == [] and not (tmp_path / "tables").exists()
    assert capsys.readouterr().out == ""


def test_summary_flags_declared_but_unwritten_outputs():
    rows = [repro.NotebookResult("a", "ok", 1.25, ["tables/vplr/table2.smoke"], missing=["figures/vplr/fig4"]),
            repro.NotebookResult("b", "failed", 0.5, [], error="ValueError: bad 'steps'")]
    lines = repro.format_summary(rows).splitlines()
    assert "not written by this run (other parameters write them): figures/vplr/fig4" in lines[2] and "1.2" in lines[2]
    assert "failed" in lines[3] and "bad 'steps'" in lines[3] and "—" in lines[3]


def test_git_info_dirty_only_for_tracked_changes(tmp_path, monkeypatch):
    """A new untracked file is counted but does not make the tree dirty; an edited tracked one does."""
    import subprocess
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    run("init", "-q")
    run("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    (tmp_path / "code.py").write_text("a = 1\n")
    page = tmp_path / "notebooks" / "executed" / "cpu" / "nb.ipynb"
    page.parent.mkdir(parents=True)
    page.write_text("{}")
    run("add", "code.py", str(page))
    run("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-q", "-m", "code")
    monkeypatch.setattr(repro, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert repro.git_info()["dirty"] is False
    page.write_text('{"cells": []}')  # a run published its executed notebook: an output, not code
    assert repro.git_info()["dirty"] is False
    (tmp_path / "new.py").write_text("b = 2\n")
    info = repro.git_info()
    assert info["dirty"] is False and info["untracked"] == 1
    (tmp_path / "code.py").write_text("a = 2\n")
    assert repro.git_info()["dirty"] is True


def test_shared_parameter_rules():
    assert repro.int_list_or_none(None) and repro.int_list_or_none([0, 1, 2])
    for bad in ([], [0, 0], [-1], [True], [1.0], "0,1", 3):
        assert not repro.int_list_or_none(bad), bad
    assert repro.positive_or_none(None) and repro.positive_or_none(3)
    for bad in (0, -2, 1.5, True, "3"):
        assert not repro.positive_or_none(bad), bad
    with pytest.raises(Exception, match="seeds"):
        repro.check_params({"seeds": [1, 1]}, {"seeds": repro.int_list_or_none})


@pytest.mark.slow
def test_concurrent_runs_each_list_only_their_own_writes(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "paperlib", "reproduce", "--profile", "smoke", "--only", "nb_tagged",
           "--notebooks-dir", str(DATA), "--output-root", str(tmp_path)]
    procs = [subprocess.Popen(cmd + ["--set", f"tag={t}", "wait_s=3"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for t in ("a", "b")]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for mine, other, out in (("a", "b", outs[0]), ("b", "a", outs[1])):
        summary = out[out.index("| notebook"):]
        assert f"nb_tagged_{mine}.smoke" in summary and f"nb_tagged_{other}.smoke" not in summary
    assert (tmp_path / "tables/paperlib/nb_tagged_a.smoke.csv").is_file()
    assert (tmp_path / "tables/paperlib/nb_tagged_b.smoke.csv").is_file()


@pytest.mark.slow
def test_run_killed_midway_leaves_the_previous_outputs_intact(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    old = repro.write_table(pd.DataFrame({"x": [1.0]}), "paperlib", "nb_tagged_a", profile="smoke", root=tmp_path)
    before = {k: p.read_bytes() for k, p in old.items()}
    cmd = [sys.executable, "-m", "paperlib", "reproduce", "--profile", "smoke", "--only", "nb_tagged",
           "--notebooks-dir", str(DATA), "--output-root", str(tmp_path), "--set", "value=99", "wait_s=120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staged = tmp_path / "build" / "staging" / "smoke"
    for _ in range(240):  # until the new table is written (staged), then kill everything
        if any(staged.rglob("nb_tagged_a.smoke.csv")):
            break
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the notebook never staged its table")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert {k: p.read_bytes() for k, p in old.items()} == before
    repro.run_notebooks(["nb_tagged"], "smoke", root=tmp_path, notebooks_dir=DATA, verbose=False,
                        overrides={"tag": "b"})  # the next run clears the killed run's staging folder
    assert not any(staged.rglob("nb_tagged_a.smoke.csv"))
