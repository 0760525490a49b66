"""Executed notebooks kept in the repository: the run's noise is taken out, a rerun with the same
results rewrites nothing, and only successful default-parameter runs at a published profile are
kept."""
import json
from pathlib import Path

import pytest

from paperlib import executed, repro

DATA = Path(__file__).parent / "data"


def _nb(start: str, cell_id: str, progress: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"papermill": {"start_time": start, "duration": 1.5, "input_path": "/tmp/x",
                                       "parameters": {"profile": "cpu"}, "version": "2.7.0"}},
            "cells": [{"cell_type": "code", "id": cell_id, "source": "print(1)", "execution_count": 1,
                       "metadata": {"execution": {"iopub.status.busy": start},
                                    "papermill": {"duration": 0.1}},
                       "outputs": [{"output_type": "stream", "name": "stderr", "text": progress},
                                   {"output_type": "stream", "name": "stdout", "text": "mIoU 31.2\n"},
                                   {"output_type": "display_data", "metadata": {},
                                    "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                             "text/plain": "bar"}}]}]}


def test_stable_drops_clocks_progress_and_random_ids(tmp_path):
    a = executed.stable(_nb("2026-12-06T10:00", "ab12", "12/300 [00:04 left]"))
    b = executed.stable(_nb("2026-12-07T11:30", "ff00", "200/300 [00:01 left]"))
    assert a == b
    assert a["metadata"]["papermill"] == {"parameters": {"profile": "cpu"}, "version": "2.7.0"}
    cell = a["cells"][0]
    assert cell["id"] == "cell-0" and cell["metadata"] == {}
    assert [o.get("name") for o in cell["outputs"]] == ["stdout"]  # the number stays, the bar goes
    src, dst = tmp_path / "run.ipynb", tmp_path / "pub" / "nb.ipynb"
    src.write_text(json.dumps(_nb("t1", "a", "p")))
    assert executed.publish(src, dst) is True
    first = dst.read_bytes()
    src.write_text(json.dumps(_nb("t2", "b", "q")))
    assert executed.publish(src, dst) is False and dst.read_bytes() == first  # nothing rewritten


@pytest.mark.slow
def test_only_successful_default_runs_are_published(tmp_path):
    pub = executed.published_dir(tmp_path, "cpu")
    results = repro.run_notebooks(["nb_fail", "nb_ok"], "cpu", jobs=1, root=tmp_path, notebooks_dir=DATA,
                                  verbose=False)
    assert [r.status for r in results] == ["failed", "ok"]
    assert sorted(p.name for p in pub.iterdir()) == ["nb_ok.ipynb"]
    page = json.loads((pub / "nb_ok.ipynb").read_text())
    assert "start_time" not in page["metadata"]["papermill"]
    before = (pub / "nb_ok.ipynb").read_bytes()
    repro.run_notebooks(["nb_ok"], "cpu", overrides={"steps": 4}, root=tmp_path, notebooks_dir=DATA, verbose=False)
    assert (pub / "nb_ok.ipynb").read_bytes() == before  # another experiment: the page stays
    repro.run_notebooks(["nb_ok"], "smoke", root=tmp_path, notebooks_dir=DATA, verbose=False)
    assert not executed.published_dir(tmp_path, "smoke").exists()
