"""Every notebook runs end to end at the ``smoke`` profile through papermill (the harness the
batch job uses), writing its tables and figures to a temporary output root."""
from __future__ import annotations

import json

import pytest

from fixtures import real_camvid
from paperlib import repro

NOTEBOOKS = [nb["name"] for nb in repro.list_notebooks()]
CAMVID = real_camvid()


def _run(name, tmp_path, **overrides):
    results = repro.run_notebooks([name], "smoke", overrides=overrides or None, root=tmp_path, verbose=False)
    (r,) = results
    assert r.status == "ok", f"{name} failed: {r.error}"
    return r


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_smoke(name, tmp_path):
    r = _run(name, tmp_path)
    assert r.written, f"{name} wrote no table or figure"
    assert not r.missing, f"{name} declared outputs it did not write: {r.missing}"
    for w in r.written:
        kind, paper, stem = w.split("/")
        manifest = json.loads((tmp_path / kind / paper / f"{stem}.json").read_text())
        assert manifest["profile"] == "smoke"
        if kind == "tables" and paper != "paperlib":  # every paper table tests claims or says it describes
            md = (tmp_path / kind / paper / f"{stem}.md").read_text()
            assert "## Claims" in md, f"{w} has no claims section"
            assert manifest.get("claims") or manifest.get("describes"), f"{w}: no claims in the manifest"


@pytest.mark.slow
@pytest.mark.skipif(not CAMVID.is_dir(), reason=f"real CamVid not found at {CAMVID}")
def test_quickstart_on_real_camvid(tmp_path):
    r = _run("01_quickstart", tmp_path, dataset="camvid", data_root=str(CAMVID.resolve()))
    table = tmp_path / "tables" / "paperlib" / "quickstart_camvid.smoke.csv"
    assert table.is_file(), r.written
    rows = table.read_text().splitlines()
    assert rows[1].startswith("sky") and rows[-1].startswith("mIoU")  # CamVid's 11 classes + mIoU
    assert len(rows) == 1 + 11 + 1
