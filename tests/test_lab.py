"""`make lab` pairs: JupyterLab started the way `make lab` starts it, a notebook saved through
its REST API gets its paired .ipynb, and saving an unedited notebook leaves the .py unchanged."""
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from paperlib import repro
from paperlib.__main__ import lab_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url, token, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


@pytest.mark.slow
def test_lab_pairs_and_saving_leaves_the_py_unchanged(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(repro.REPO_ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    src = repro.REPO_ROOT / "notebooks" / "vplr_table6_accumulation.py"
    nb = tmp_path / "notebooks" / src.name
    shutil.copy(src, nb)
    port, token = _free_port(), "paperlib-test"
    cmd = lab_command(tmp_path, ["--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
                                 "--ServerApp.open_browser=False"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api/contents/notebooks/{src.name}"
    try:
        for _ in range(120):
            try:
                model = _call(base + "?type=notebook&content=1", token)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {proc.stdout.read()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not answer in 60 s")
        assert model["type"] == "notebook"
        _call(base, token, "PUT", {"type": "notebook", "format": "json", "content": model["content"]})
        assert (tmp_path / "notebooks" / (src.stem + ".ipynb")).is_file()  # paired
        assert nb.read_bytes() == src.read_bytes()  # unedited save: .py unchanged
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = ""
    assert "ExtensionLoadingError" not in (out or "")
