"""Cluster batch regeneration through submitit, tested for real against stand-in Slurm tools
(sbatch / sacct / squeue / scancel / srun in tests/data/fake_slurm run each job on this machine): two
notebooks run as one job array, their tables come back, a failing notebook's job is reported
with its job id and log tail, and `status` collects a --no-wait submission."""
import os
from pathlib import Path

import pandas as pd
import pytest

from paperlib import cluster, repro

DATA = Path(__file__).parent / "data"
FAKE = DATA / "fake_slurm"


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKE}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "slurm_state"))
    return tmp_path


def test_dry_run_prints_the_plan_and_submits_nothing(fake_slurm, capsys):
    out = repro.run_notebooks(["nb_ok"], "smoke", root=fake_slurm, notebooks_dir=DATA, executor="slurm",
                              slurm=cluster.SlurmOptions(partition="gpu", gpus=1), dry_run=True, verbose=False)
    text = capsys.readouterr().out
    assert out == [] and "nb_ok" in text and '"partition": "gpu"' in text and '"gpus_per_node": 1' in text
    assert not (fake_slurm / "slurm_state").exists()


@pytest.mark.slow
def test_two_notebooks_through_slurm_come_back_with_their_tables(fake_slurm):
    opts = cluster.SlurmOptions(logs=str(fake_slurm / "logs"))
    fail, ok = repro.run_notebooks(["nb_fail", "nb_ok"], "smoke", root=fake_slurm, notebooks_dir=DATA,
                                   executor="slurm", slurm=opts, verbose=False)
    assert (ok.name, ok.status) == ("nb_ok", "ok")
    assert ok.written == ["tables/paperlib/nb_ok.smoke", "figures/paperlib/nb_ok.smoke"]
    assert len(pd.read_csv(fake_slurm / "tables/paperlib/nb_ok.smoke.csv")) == 2
    assert (fail.name, fail.status) == ("nb_fail", "failed")
    assert "nb_fail fails on purpose" in fail.error and "slurm job 1000_0" in fail.error and "log tail" in fail.error
    assert not (fake_slurm / "tables/paperlib/nb_fail.smoke.csv").exists()


@pytest.mark.slow
def test_no_wait_then_status_collects(fake_slurm, capsys):
    from paperlib.__main__ import main
    opts = cluster.SlurmOptions(logs=str(fake_slurm / "logs"), wait=False)
    assert repro.run_notebooks(["nb_ok"], "smoke", root=fake_slurm, notebooks_dir=DATA, executor="slurm",
                               slurm=opts, verbose=False) == []
    rows, _ = cluster.status(fake_slurm / "logs")
    assert [r[0] for r in rows] == ["nb_ok"]
    names, jobs = cluster.recorded_jobs(fake_slurm / "logs")
    results = cluster.collect(names, jobs, repro.failed_result, poll_s=0.5)
    assert results[0].status == "ok"
    assert main(["status", "--slurm-logs", str(fake_slurm / "logs"), "--output-root", str(fake_slurm),
                 "--profile", "smoke"]) == 0
    assert "nb_ok: job" in capsys.readouterr().out
