"""The runner's terminal line: library bars report their status through paperlib.progress."""
from paperlib import progress


def test_bars_report_their_line_only_inside_a_run(tmp_path, monkeypatch):
    status = tmp_path / "nb.status"
    for _ in progress.tqdm(range(3), desc="quiet"):
        pass
    assert not status.exists()
    monkeypatch.setenv("PAPERLIB_STATUS_FILE", str(status))
    progress._LAST[0] = 0.0
    bar = progress.tqdm(total=250, desc="train run")
    bar.update(10)
    bar.close()
    assert progress.read(status).startswith("train run: 10/250")
    assert progress.eta_text(120, 250, 60.0) == "120/250, 1:05 left"
