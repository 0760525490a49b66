"""Executed notebooks kept in the repository, so a reader sees every page without running it.

``run_notebooks`` saves each executed notebook to ``build/executed/<profile>/<name>.ipynb``
(ignored by git). For the profiles in ``PUBLISHED_PROFILES``, a run of a notebook with its
default parameters that succeeds is also *published*: copied to
``notebooks/executed/<profile>/<name>.ipynb`` (committed; GitHub, nbviewer, JupyterLab and the
companion site show it) with everything that changes from run to run when the results do not
taken out:

- the run's clock: papermill's start/end/duration, IPython's ``execution`` timestamps, the
  absolute input/output paths;
- progress bars and other stderr streams (tqdm redraws, with their timings), widget views;
- cell ids, which the .py -> .ipynb pairing draws at random: they become ``cell-<n>``.

So a rerun that gives identical results leaves the published notebook byte-identical, and one
that changes a number shows just that number in the diff. Printed timings (``... (12 s)``) stay:
they are part of what the notebook says. A failed run, or one with ``--set`` overrides (a
different experiment from the committed tables), never replaces the published page.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .atomic import atomic_write_files

#: Profiles whose executed notebooks are committed (smoke runs are tests, not pages).
PUBLISHED_PROFILES = ("cpu", "gpu", "paper")

_NOTEBOOK_PAPERMILL_KEEP = ("parameters", "default_parameters", "version")
_WIDGET = "application/vnd.jupyter.widget-view+json"


def published_dir(root: Path, profile: str) -> Path:
    """``<root>/notebooks/executed/<profile>``."""
    return Path(root) / "notebooks" / "executed" / profile


def stable(nb: dict[str, Any]) -> dict[str, Any]:
    """``nb`` (nbformat JSON) without run-to-run noise (see the module docstring)."""
    nb = copy.deepcopy(nb)
    pm = nb.get("metadata", {}).get("papermill")
    if isinstance(pm, dict):
        nb["metadata"]["papermill"] = {k: pm[k] for k in _NOTEBOOK_PAPERMILL_KEEP if k in pm}
    for i, cell in enumerate(nb.get("cells", [])):
        cell["id"] = f"cell-{i}"
        meta = cell.get("metadata", {})
        meta.pop("execution", None)
        meta.pop("papermill", None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if _kept(o)]
    return nb


def _kept(output: dict) -> bool:
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return False
    return _WIDGET not in output.get("data", {})


def publish(executed: Path, destination: Path) -> bool:
    """Write ``stable(executed)`` to ``destination`` (atomically); False when it already holds
    exactly that (nothing written)."""
    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    text = (json.dumps(stable(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    destination = Path(destination)
    if destination.is_file() and destination.read_bytes() == text:
        return False
    atomic_write_files({destination: text})
    return True
