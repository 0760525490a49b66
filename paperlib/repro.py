"""The reproducibility harness: versioned tables and figures, and the papermill notebook runner.

Every number paperlib reports lands in ``tables/<paper>/<table_id>.<profile>.{csv,md,json}`` and
every figure in ``figures/<paper>/<figure_id>.<profile>.{png,json}``. The ``.json`` manifest beside
each says how it was made (git commit and dirty flag, paperlib version, parameters, seeds, device,
threads, torch/CUDA versions, data fingerprint, sha256 of the content, claims). What describes one
run rather than its result (wall time, timestamp) goes to ``build/runs/`` instead, and an output
whose result is already on disk is not rewritten, so an identical regeneration leaves every
tracked file as it was. Files are written atomically (temp file in the same folder +
``os.replace``); inside a notebook run every output is staged and published together when the
notebook succeeds (a failed or killed run leaves the previous outputs untouched); git is the
version history.

Output root: the ``root`` argument, else env ``PAPERLIB_OUTPUT_ROOT``, else the repository root
(the folder holding ``paperlib/``, ``notebooks/`` and ``tables/``).

Notebooks are jupytext percent-format ``notebooks/*.py``. Which tables/figures a notebook writes
is declared in a comment line anywhere in it (read by :func:`list_notebooks`)::

    # paperlib: writes tables/vplr/table2, figures/vplr/fig4

The declaration is checked against what a run actually wrote (``NotebookResult.missing``):
:func:`run_notebooks` gives each kernel ``PAPERLIB_WRITES_LOG`` and every ``write_table`` /
``save_figure`` call appends its output there, so the summary reports exact writes even when
notebooks run in parallel.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import platform
import re
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from paperlib.atomic import atomic_write_files  # noqa: F401  (re-exported: repro.atomic_write_files)
from paperlib.config import parse_overrides  # noqa: F401  (one --set parser; re-exported)
from paperlib.reference import PAPERS, check_id as _check_id, check_paper  # noqa: F401  (ids live in reference)

REPO_ROOT = Path(__file__).resolve().parents[1]
_WRITES_RE = re.compile(r"^#\s*paperlib:\s*writes\s+(.+)$", re.MULTILINE)
_TITLE_RE = re.compile(r"^#\s+#+\s+(.+)$", re.MULTILINE)


# --- names and paths -------------------------------------------------------------------------
def output_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else env ``PAPERLIB_OUTPUT_ROOT``, else the repository root."""
    if root is not None:
        return Path(root)
    env = os.environ.get("PAPERLIB_OUTPUT_ROOT")
    return Path(env) if env else REPO_ROOT


def table_paths(paper: str, table_id: str, profile: str, root=None) -> dict[str, Path]:
    """Paths of the csv / md / json of one table."""
    base = output_root(root) / "tables" / check_paper(paper)
    stem = f"{_check_id(table_id, 'table_id')}.{_check_id(profile, 'profile')}"
    return {ext: base / f"{stem}.{ext}" for ext in ("csv", "md", "json")}


def figure_paths(paper: str, figure_id: str, profile: str, root=None) -> dict[str, Path]:
    """Paths of the png / json of one figure."""
    base = output_root(root) / "figures" / check_paper(paper)
    stem = f"{_check_id(figure_id, 'figure_id')}.{_check_id(profile, 'profile')}"
    return {ext: base / f"{stem}.{ext}" for ext in ("png", "json")}


# --- provenance ------------------------------------------------------------------------------
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_info() -> dict[str, Any]:
    """Commit of the code that ran and whether the tree had local changes.

    ``dirty`` means tracked files differ from the commit (the code that ran is not the commit's).
    New untracked files are counted separately (``untracked``): committed code cannot import
    them, so they do not change what the commit reproduces. Outputs (``tables/``, ``figures/``,
    the published executed notebooks ``notebooks/executed/``) are left out, so rewriting one
    does not mark the next table dirty. Outside a git checkout
    the fields are ``"unknown"``.
    """
    if not (REPO_ROOT / ".git").exists():
        return {"commit": "unknown", "dirty": "unknown", "untracked": "unknown"}
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=normal", "--", ".",
                  ":(exclude)tables", ":(exclude)figures", ":(exclude)notebooks/executed")
    if status is None:
        return {"commit": commit or "unknown", "dirty": "unknown", "untracked": "unknown"}
    lines = [ln for ln in status.splitlines() if ln.strip()]
    untracked = sum(ln.startswith("??") for ln in lines)
    return {"commit": commit or "unknown", "dirty": len(lines) > untracked, "untracked": untracked}


def environment_info() -> dict[str, Any]:
    """Device, torch / CUDA / cuDNN versions, Python and platform."""
    import torch  # lazy: keeps `python -m paperlib list` fast

    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "num_gpus": torch.cuda.device_count() if cuda else 0,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback: dataclasses, configs with ``to_dict``, paths, numpy/torch scalars."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays / scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    return repr(obj)


def _wall_time(started: float | datetime | None) -> float | None:
    if started is None:
        return None
    if isinstance(started, datetime):
        started = started.timestamp()
    return round(time.time() - float(started), 3)


def make_manifest(kind: str, paper: str, item_id: str, profile: str, content: bytes, *,
                  files: Sequence[Path], params=None, seeds=None, data_fingerprint=None,
                  started=None, notes=None, extra: Mapping | None = None) -> dict[str, Any]:
    """Everything needed to tell how ``content`` was made (see the module docstring)."""
    from paperlib import __version__

    manifest = {
        "kind": kind, "paper": paper, "id": item_id, "profile": profile,
        "files": [p.name for p in files],
        "content_sha256": hashlib.sha256(content).hexdigest(),
        "git": git_info(),
        "paperlib_version": __version__,
        "params": params or {},
        "seeds": list(seeds) if seeds is not None else None,
        "data_fingerprint": data_fingerprint,
        **environment_info(),
        "notebook": os.environ.get("PAPERLIB_NOTEBOOK"),
        "notes": notes,
    }
    from paperlib import cache

    if cache.used():  # the cached trained roles (teachers, G, flow nets, ...) this run used
        manifest["roles"] = cache.used()
    manifest.update(extra or {})
    return manifest


def run_record(started=None) -> dict[str, Any]:
    """What describes one run rather than its result (kept out of the tracked manifest, so an
    identical regeneration leaves identical files): wall time and timestamp."""
    return {"wall_time_s": _wall_time(started),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=_jsonable, allow_nan=True) + "\n").encode()


_COMMIT_RE = re.compile(rb"commit `[0-9a-z]+`( \(dirty\))?")


def _same_output(files: Mapping[Path, bytes], manifest_path: Path) -> bool:
    """True when the files on disk already hold this result: the manifests agree on everything
    but the git commit (the earlier clean commit made the same bytes), and every other file is
    byte-identical (a table's markdown up to its "made at commit" line)."""
    if not manifest_path.is_file():
        return False
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    new = json.loads(files[manifest_path])
    if old.get("git", {}).get("dirty") is not False or new.get("git", {}).get("dirty") is not False:
        return False
    if {k: v for k, v in old.items() if k != "git"} != {k: v for k, v in new.items() if k != "git"}:
        return False
    for path, data in files.items():
        if path == manifest_path:
            continue
        if not path.is_file():
            return False
        cur = path.read_bytes()
        if path.suffix == ".md":
            cur, data = _COMMIT_RE.sub(b"commit", cur), _COMMIT_RE.sub(b"commit", data)
        if cur != data:
            return False
    return True


def publish(files: Mapping[Path, bytes], manifest_path: Path) -> bool:
    """Write one output's files (csv/md/json or png/json) atomically, unless they already hold
    the same result (then nothing is touched, so a regeneration leaves ``git status`` clean).
    Returns whether anything was written."""
    if _same_output(files, manifest_path):
        return False
    atomic_write_files(files)
    return True


def _emit(files: dict[Path, bytes], manifest_path: Path, entry: str, root, started) -> None:
    """Write an output: straight into place (through :func:`publish`), or, inside a notebook run
    of :func:`run_notebooks` (env ``PAPERLIB_STAGE_DIR``), into the run's staging folder, which
    the runner publishes as a whole when the notebook succeeds. The run record (wall time,
    timestamp) goes to ``build/runs/``."""
    real = output_root(root).resolve()
    stage = os.environ.get("PAPERLIB_STAGE_DIR") if root is None else None
    record = {real / "build" / "runs" / f"{entry}.json": _dump_json(run_record(started))}
    if stage:
        staged = {Path(stage) / Path(p).resolve().relative_to(real): d for p, d in files.items()}
        atomic_write_files({**staged, **record})
    else:
        publish(files, manifest_path)
        atomic_write_files(record)
    _log_write(entry)


def _log_write(entry: str) -> None:
    """Tell a running :func:`run_notebooks` what this kernel wrote (env ``PAPERLIB_WRITES_LOG``)."""
    log = os.environ.get("PAPERLIB_WRITES_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(entry + "\n")


# --- seeds and markdown ----------------------------------------------------------------------
def _default_columns(df: pd.DataFrame, by, value_cols, seed_col: str):
    if value_cols is None:
        value_cols = [c for c in df.columns
                      if c != seed_col and pd.api.types.is_float_dtype(df[c])]
    if by is None:
        by = [c for c in df.columns if c != seed_col and c not in value_cols]
    return list(by), list(value_cols)


def aggregate_seeds(df: pd.DataFrame, by: Sequence[str] | None = None,
                    value_cols: Sequence[str] | None = None, seed_col: str = "seed") -> pd.DataFrame:
    """Mean and sample std (ddof=1) of ``value_cols`` over repeated seeds, one row per ``by`` group.

    Columns: ``by...``, then ``<v>_mean`` and ``<v>_std`` for each value column, then ``n_seeds``.
    Defaults: value columns are the float columns, ``by`` is every other column but ``seed_col``.
    Group order follows first appearance in ``df``.
    """
    by, value_cols = _default_columns(df, by, value_cols, seed_col)
    missing = [c for c in [*by, *value_cols] if c not in df.columns]
    if missing:
        raise ValueError(f"aggregate_seeds: columns {missing} not in table (has {list(df.columns)})")
    if not value_cols:
        raise ValueError("aggregate_seeds: no value columns (pass value_cols=)")
    grouped = df.groupby(by, sort=False, dropna=False) if by else df.groupby(lambda _: 0)
    stats = grouped[value_cols].agg(["mean", "std"])
    stats.columns = [f"{v}_{s}" for v, s in stats.columns]
    stats["n_seeds"] = grouped.size()
    return stats.reset_index() if by else stats.reset_index(drop=True)


def _fmt(value: Any, floatfmt: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value)


def _mean_std_frame(df, by, value_cols, seed_col, floatfmt) -> pd.DataFrame:
    """Seed-repeated table -> one row per group, values as ``mean ± std`` strings."""
    agg = aggregate_seeds(df, by, value_cols, seed_col)
    out = agg[by].copy()
    for v in value_cols:
        out[v] = [f"{_fmt(m, floatfmt)} ± {_fmt(s, floatfmt)}" if n > 1 else _fmt(m, floatfmt)
                  for m, s, n in zip(agg[f"{v}_mean"], agg[f"{v}_std"], agg["n_seeds"])]
    out["seeds"] = agg["n_seeds"].astype("Int64")
    return out


def _merge_reference(ours: pd.DataFrame, ref: pd.DataFrame, value_cols: Sequence[str]) -> pd.DataFrame:
    """Left-join the paper's numbers (as ``paper: <col>`` columns) on the shared key columns.

    Paper rows we did not reproduce are appended with our columns empty.
    """
    keys = [c for c in ref.columns if c in ours.columns and c not in value_cols]
    if not keys:
        raise ValueError(f"reference shares no key column with the table "
                         f"(ours: {list(ours.columns)}, paper: {list(ref.columns)})")
    ref = ref.rename(columns={c: f"paper: {c}" for c in ref.columns if c not in keys})
    ours, ref = ours.copy(), ref.copy()
    for k in keys:  # compare keys as text when the dtypes differ (e.g. 1 vs "1")
        if ours[k].dtype != ref[k].dtype:
            ours[k], ref[k] = ours[k].astype(str), ref[k].astype(str)
    merged = ours.merge(ref, on=keys, how="left", sort=False)
    unmatched = ref.merge(ours[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    unmatched = unmatched[unmatched["_merge"] == "left_only"].drop(columns="_merge")
    merged = pd.concat([merged, unmatched], ignore_index=True) if len(unmatched) else merged
    order = [c for c in ours.columns]
    for c in ref.columns:
        if c in keys:
            continue
        base = c.removeprefix("paper: ")
        order.insert(order.index(base) + 1 if base in order else len(order), c)
    return merged[order]


def table_markdown(df: pd.DataFrame, reference: pd.DataFrame | None = None, *, by=None,
                   value_cols=None, seed_col: str = "seed", floatfmt: str = ".2f") -> str:
    """Markdown of ``df`` (``mean ± std`` over seeds when it has ``seed_col``) beside the paper's
    numbers from ``reference`` in ``paper: <col>`` columns."""
    by, value_cols = _default_columns(df, by, value_cols, seed_col)
    if seed_col in df.columns:
        shown = _mean_std_frame(df, by, value_cols, seed_col, floatfmt)
    else:
        shown = df.copy()
    ints = [c for c in shown.columns if pd.api.types.is_integer_dtype(shown[c])]
    shown = shown.astype({c: "Int64" for c in ints})  # stay ints when paper-only rows add gaps
    if reference is not None:
        shown = _merge_reference(shown, reference, value_cols)
    cells = shown.astype(object).map(lambda v: _fmt(v, floatfmt))
    return cells.to_markdown(index=False, disable_numparse=True)


def _resolve_reference(reference, paper: str, table_id: str) -> pd.DataFrame | None:
    if reference is None or reference is False:
        return None
    if isinstance(reference, pd.DataFrame):
        return reference
    from paperlib import reference as ref_mod

    if reference is True:
        return ref_mod.load(paper, table_id)
    if isinstance(reference, str):  # "vplr/table1" or "table1"
        p, _, t = reference.rpartition("/")
        return ref_mod.load(p or paper, t)
    raise ValueError(f"reference must be a DataFrame, True or 'paper/table_id', got {type(reference).__name__}")


# --- tables and figures ----------------------------------------------------------------------
def write_table(df: pd.DataFrame, paper: str, table_id: str, *, profile: str, params=None,
                seeds=None, reference=None, data_fingerprint=None, started=None, root=None,
                notes=None, by=None, value_cols=None, floatfmt: str = ".2f",
                claims=None) -> dict[str, Path]:
    """Write ``tables/<paper>/<table_id>.<profile>.{csv,md,json}`` atomically; return the paths.

    - csv: ``df`` as is (every seed's row), the data of record; its sha256 is in the manifest.
    - md: ``df`` (``mean ± std`` and a ``seeds`` count where ``df`` has a ``seed`` column) with
      the paper's reported numbers in ``paper: <col>`` columns. ``reference`` is a DataFrame,
      ``True`` (load ``paperlib.reference`` for ``paper/table_id``), or ``"paper/table_id"``.
      Rows are matched on the columns both tables share (other than value columns).
    - json: the manifest (:func:`make_manifest`); ``started`` (``time.time()`` or a datetime)
      gives the wall time.
    ``by`` / ``value_cols`` override which columns are group keys vs values (default: float
    columns are values).
    ``claims``: the :func:`paperlib.claims.evaluate` results tested on this table, rendered as a
    ``## Claims`` section and recorded in the manifest (with the hash of their definitions); a
    string says the table only describes (model card, world statistics). Every table of a paper
    (any key but ``paperlib``) must say one or the other.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"write_table expects a pandas DataFrame, got {type(df).__name__}")
    paths = table_paths(paper, table_id, profile, root)
    if claims is None and paper != "paperlib":
        raise ValueError(f"write_table({paper}/{table_id}): pass claims= (the evaluated claims of this "
                         "table, or a string saying it only describes)")
    if claims is not None and not isinstance(claims, str):
        from paperlib.claims import ClaimResult

        claims = list(claims)
        bad = [type(c).__name__ for c in claims if not isinstance(c, ClaimResult)]
        if bad or not claims:
            raise ValueError(f"write_table({paper}/{table_id}): claims must be a non-empty list of "
                             f"paperlib.claims.ClaimResult (got {bad or 'an empty list'}) or a string")
    ref = _resolve_reference(reference, paper, table_id)
    csv = df.to_csv(index=False, lineterminator="\n").encode()
    sha = hashlib.sha256(csv).hexdigest()
    git = git_info()
    lines = [f"# {paper} {table_id} ({profile} profile)", "",
             table_markdown(df, ref, by=by, value_cols=value_cols, floatfmt=floatfmt), ""]
    if ref is not None:
        lines += [f"`paper:` columns: {ref.attrs.get('source', 'numbers reported in the paper')}", ""]
    if notes:
        lines += [str(notes), ""]
    claims_extra: dict[str, Any] = {}
    if claims is not None:
        from paperlib import claims as claims_mod

        lines += [claims_mod.markdown(claims)]
        claims_extra = ({"claims": [], "describes": claims} if isinstance(claims, str) else
                        {"claims": [r.record() for r in claims],
                         "claims_sha256": claims_mod.definitions_sha256(r.claim for r in claims)})
    lines += [f"Made by paperlib at commit `{str(git['commit'])[:12]}`"
              f"{' (dirty)' if git['dirty'] is True else ''}; csv sha256 `{sha[:16]}`; "
              f"manifest `{paths['json'].name}`.", ""]
    md = "\n".join(lines).encode()
    manifest = make_manifest("table", paper, table_id, profile, csv, files=list(paths.values()),
                             params=params, seeds=seeds, data_fingerprint=data_fingerprint,
                             started=started, notes=notes,
                             extra={"reference": ref.attrs.get("source", "given") if ref is not None else None,
                                    **claims_extra})
    _emit({paths["csv"]: csv, paths["md"]: md, paths["json"]: _dump_json(manifest)}, paths["json"],
          f"tables/{paper}/{table_id}.{profile}", root, started)
    return paths


def save_figure(fig, paper: str, figure_id: str, *, profile: str, params=None, root=None,
                seeds=None, data_fingerprint=None, started=None, notes=None,
                dpi: int = 120) -> dict[str, Path]:
    """Write ``figures/<paper>/<figure_id>.<profile>.{png,json}`` atomically; return the paths.

    The PNG is rendered in memory, hashed, then written through a temp file and ``os.replace``.
    """
    paths = figure_paths(paper, figure_id, profile, root)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    png = buf.getvalue()
    manifest = make_manifest("figure", paper, figure_id, profile, png, files=list(paths.values()),
                             params=params, seeds=seeds, data_fingerprint=data_fingerprint,
                             started=started, notes=notes)
    _emit({paths["png"]: png, paths["json"]: _dump_json(manifest)}, paths["json"],
          f"figures/{paper}/{figure_id}.{profile}", root, started)
    return paths


# --- notebook parameters ---------------------------------------------------------------------
def _is_types(rule) -> bool:
    return isinstance(rule, type) or (isinstance(rule, tuple) and rule
                                      and all(isinstance(t, type) for t in rule))


def _check_one(name: str, value: Any, rule: Any) -> None:
    if rule is None:
        return
    if _is_types(rule):
        types = rule if isinstance(rule, tuple) else (rule,)
        if float in types and int not in types:
            types = (*types, int)  # an int is a fine float
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"parameter {name!r} must be {names}, got {value!r} ({type(value).__name__})")
    elif isinstance(rule, (list, tuple, set, frozenset, range)):
        if value not in rule:
            raise ValueError(f"parameter {name!r} must be one of {list(rule)}, got {value!r}")
    elif callable(rule):
        if not rule(value):
            what = (rule.__doc__ or "").strip().splitlines()[0] if rule.__doc__ else getattr(rule, "__name__", "check")
            raise ValueError(f"parameter {name!r}={value!r} is invalid: {what}")
    else:
        raise TypeError(f"check_params: bad rule for {name!r}: {rule!r}")


def int_list_or_none(v) -> bool:
    """None or a non-empty list of distinct ints >= 0"""
    return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and len(set(v)) == len(v)
                         and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v))


def positive_or_none(v) -> bool:
    """None or a positive int"""
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)


def profile_sizes(scale: Mapping[str, Any], **given) -> dict[str, Any]:
    """The sizes of this run: a notebook's per-profile ``scale`` row (its ``SCALE[profile]``) with
    every parameter of ``given`` that is not None in its place -- a notebook parameter left None
    means "the profile's value". Each name in ``given`` must be a key of ``scale``::

        SIZES = profile_sizes(SCALE, seeds=seeds, steps=steps)   # seeds=None -> SCALE["seeds"]
    """
    unknown = sorted(set(given) - set(scale))
    if unknown:
        raise ValueError(f"profile_sizes: parameter(s) {unknown} have no per-profile value; "
                         f"the scale row has {sorted(scale)}")
    return {k: given[k] if given.get(k) is not None else v for k, v in scale.items()}


def config_overrides(sizes: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``{key: sizes[key]}`` for each of ``keys`` whose size is not None: config overrides that
    leave the profile's default in place where the sizes say None (e.g. steps at gpu/paper)."""
    missing = [k for k in keys if k not in sizes]
    if missing:
        raise ValueError(f"config_overrides: {missing} not among the sizes {sorted(sizes)}")
    return {k: sizes[k] for k in keys if sizes[k] is not None}


def check_params(params: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict[str, Any]:
    """Validate notebook parameters before any work; return them as a dict.

    ``allowed`` maps each parameter name to a rule: a type or tuple of types (``isinstance``;
    an int passes for float, a bool never passes for int), a list/tuple/set of allowed values,
    a predicate (its docstring's first line is the message), or ``None`` (anything). Unknown
    names or bad values raise ``ValueError`` naming the parameter. Notebooks call this in the
    first cell after the parameters cell::

        params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
    """
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
    for name, value in params.items():
        _check_one(name, value, allowed[name])
    return dict(params)


# --- notebooks -------------------------------------------------------------------------------
def discover_notebooks(notebooks_dir=None) -> dict[str, Path]:
    """``name -> path`` of the jupytext notebooks ``<notebooks_dir>/*.py`` (default ``notebooks/``)."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else REPO_ROOT / "notebooks"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def notebook_writes(path: Path) -> list[str]:
    """Tables/figures a notebook declares with ``# paperlib: writes tables/p/t, figures/p/f``."""
    text = Path(path).read_text(encoding="utf-8")
    items = [w for line in _WRITES_RE.findall(text) for w in re.split(r"[,\s]+", line) if w]
    return list(dict.fromkeys(items))


def list_notebooks(notebooks_dir=None) -> list[dict[str, Any]]:
    """Each notebook's name, path, title (first markdown heading) and declared writes."""
    out = []
    for name, path in discover_notebooks(notebooks_dir).items():
        title = _TITLE_RE.search(path.read_text(encoding="utf-8"))
        out.append({"name": name, "path": path, "title": title.group(1).strip() if title else "",
                    "writes": notebook_writes(path)})
    return out


@dataclasses.dataclass
class NotebookResult:
    """What one notebook run did."""

    name: str
    status: str  # "ok" | "failed"
    wall_s: float
    written: list[str]
    error: str | None = None
    executed: str | None = None
    missing: list[str] = dataclasses.field(default_factory=list)  # declared but not written


def failed_result(name: str, error: str) -> NotebookResult:
    """The result of a notebook whose run never reported back (e.g. a cluster job that died)."""
    return NotebookResult(name, "failed", 0.0, [], error, None)


def _select(names: Sequence[str] | None, available: Mapping[str, Path]) -> list[str]:
    if not names:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown}; available: {', '.join(available) or '(none)'}")
    return list(dict.fromkeys(names))


def pair_notebook(path: Path, build_dir: Path, kernel: str = "python3") -> Path:
    """jupytext ``.py`` -> ``build_dir/<name>.ipynb`` (build output, never committed)."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    data = jupytext.writes(nb, fmt="ipynb").encode()
    dest = build_dir / f"{path.stem}.ipynb"
    atomic_write_files({dest: data})
    return dest


def _notebook_parameters(ipynb: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(ipynb)))


def _plan_parameters(declared: Mapping[str, set[str]], profile: str,
                     overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each notebook gets ``profile`` plus the overrides its parameters cell declares.

    An override no selected notebook declares is a typo: ``ValueError`` before anything runs.
    """
    if "profile" in overrides:
        raise ValueError("set the profile with profile= / --profile, not as an override")
    unused = sorted(k for k in overrides if not any(k in d for d in declared.values()))
    if unused:
        known = sorted(set().union(*declared.values())) if declared else []
        raise ValueError(f"unknown parameter(s) {unused}: no selected notebook declares them "
                         f"(their parameters: {known})")
    return {name: {"profile": profile, **{k: v for k, v in overrides.items() if k in d}}
            for name, d in declared.items()}


@contextlib.contextmanager
def _env(values: Mapping[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Threads per profile: part of a result's identity (float sums change with the thread count),
#: so the runner fixes them and the manifest records them (``cpu_threads``). ``None``: leave as is.
PROFILE_THREADS = {"smoke": 1, "cpu": 1, "gpu": None, "paper": None}


def _thread_env(profile: str) -> dict[str, str]:
    n = PROFILE_THREADS.get(profile)
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")  # OpenCV too
    return {} if n is None else {v: str(n) for v in names}


def _staged_outputs(stage: Path, real: Path, written: Sequence[str]) -> list[tuple[dict[Path, bytes], Path]]:
    """Each written output's staged files, as ``({destination: bytes}, destination manifest)``."""
    out = []
    for entry in written:
        folder, stem = (stage / entry).parent, Path(entry).name
        files = {real / entry.rsplit("/", 1)[0] / p.name: p.read_bytes()
                 for p in sorted(folder.glob(f"{stem}.*")) if not p.name.endswith(".tmp")}
        manifest = real / f"{entry}.json"
        if manifest in files:
            out.append((files, manifest))
    return out


class _Watch:
    """The terminal line of one running notebook: its name, current cell, elapsed time (ticking
    even inside an hour-long cell) and the kernel's own status (``paperlib.progress``: the
    engine's training step and time left)."""

    def __init__(self, name: str, cells: int, status_file: str, position: int, enabled: bool):
        import threading

        from tqdm.auto import tqdm

        self.status_file = status_file
        self.bar = tqdm(total=cells, desc=name, position=position, leave=False, disable=not enabled,
                        bar_format="{desc}: cell {n}/{total} [{elapsed}] {postfix}", dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def cell(self, index: int) -> None:
        self.bar.n = int(index) + 1
        self.bar.refresh()

    def _loop(self) -> None:
        from paperlib import progress

        while not self._stop.wait(2.0):
            self.bar.set_postfix_str(progress.read(self.status_file), refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.bar.close()


def _watched_engine(watch: _Watch) -> str:
    """Register a papermill engine that tells ``watch`` which cell runs; return its name."""
    from papermill.engines import NBClientEngine, papermill_engines

    class Watched(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            watch.bar.total = len(nb_man.nb.cells)  # papermill added the injected-parameters cell
            start = nb_man.cell_start

            def cell_start(cell, cell_index=None, **kw):
                watch.cell(cell_index or 0)
                return start(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("paperlib-watched", Watched)
    return "paperlib-watched"


_SLOT = [1]  # this process's terminal row for its running notebook (the overall bar is row 0)


def _init_worker(counter) -> None:
    with counter.get_lock():
        counter.value += 1
        _SLOT[0] = counter.value


def _execute(name: str, ipynb: str, executed: str, params: dict, cwd: str, kernel: str,
             env: dict, timeout: float | None, declared: list[str], verbose: bool = True) -> NotebookResult:
    """Run one notebook with papermill (in this process; the kernel inherits ``env``). Its
    outputs are staged in ``env["PAPERLIB_STAGE_DIR"]`` and published together when it succeeds;
    a failed run publishes nothing, so the previous outputs stay as they were."""
    import shutil

    import papermill

    log = Path(env["PAPERLIB_WRITES_LOG"])
    stage = Path(env["PAPERLIB_STAGE_DIR"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    Path(executed).parent.mkdir(parents=True, exist_ok=True)
    t0, error = time.perf_counter(), None
    import nbformat

    watch = _Watch(name, len(nbformat.read(ipynb, as_version=4).cells), env["PAPERLIB_STATUS_FILE"],
                   _SLOT[0], verbose)
    try:
        with _env(env):
            try:
                papermill.execute_notebook(ipynb, executed, parameters=params, kernel_name=kernel,
                                           cwd=cwd, progress_bar=False, execution_timeout=timeout,
                                           engine_name=_watched_engine(watch))
            except papermill.PapermillExecutionError as e:
                error = f"{e.ename}: {e.evalue} (cell {e.exec_count})"
            except Exception as e:  # kernel died, timeout, bad notebook: record it and go on
                error = f"{type(e).__name__}: {e}"
        written = list(dict.fromkeys(log.read_text().split()))
        if not error:
            for files, manifest in _staged_outputs(stage, Path(env["PAPERLIB_OUTPUT_ROOT"]), written):
                publish(files, manifest)
    finally:
        watch.close()
        shutil.rmtree(stage, ignore_errors=True)
        log.unlink(missing_ok=True)
        Path(env["PAPERLIB_STATUS_FILE"]).unlink(missing_ok=True)
    missing = [d for d in declared if not any(w.startswith(d + ".") for w in written)]
    return NotebookResult(name, "failed" if error else "ok", round(time.perf_counter() - t0, 2),
                          written if not error else [], error, executed, missing if not error else [])


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for ``jobs > 1``. Forked where the OS allows, after importing papermill
    here, so workers skip its ~3 s import (nbformat's schema checks); the real work runs in the
    kernels, which are fresh processes either way."""
    import multiprocessing as mp

    import papermill  # noqa: F401  (preloaded for forked workers)

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(ctx.Value("i", 0),))


def format_summary(results: Sequence[NotebookResult]) -> str:
    """The run summary table (markdown)."""
    rows = [{"notebook": r.name, "status": r.status, "wall (s)": f"{r.wall_s:.1f}",
             "written": ", ".join(r.written) or "—",
             "note": (r.error or (f"not written by this run (other parameters write them): {', '.join(r.missing)}"
                                  if r.missing else ""))[:160]}
            for r in results]
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) if rows else "(no notebooks)"


def run_notebooks(names: Sequence[str] | None = None, profile: str = "cpu", jobs: int = 1,
                  overrides: Mapping[str, Any] | None = None, root=None, kernel: str = "python3",
                  *, notebooks_dir=None, timeout: float | None = None,
                  verbose: bool = True, executor: str = "local", slurm=None,
                  dry_run: bool = False) -> list[NotebookResult]:
    """Pair, parameterise and run notebooks with papermill; keep going when one fails.

    ``names`` (default: all in ``notebooks_dir``) are notebook stems; an unknown one raises
    ``ValueError`` listing the available names. Each notebook gets the parameters ``profile`` and
    the ``overrides`` its parameters cell declares (an override none declares raises before any
    kernel starts), runs with cwd = its folder and env ``PAPERLIB_PROFILE``,
    ``PAPERLIB_OUTPUT_ROOT``, ``PAPERLIB_NOTEBOOK``, ``PAPERLIB_WRITES_LOG``, and is saved to
    ``<root>/build/executed/<profile>/<name>.ipynb``; at a published profile, a successful run
    without overrides is also kept as ``<root>/notebooks/executed/<profile>/<name>.ipynb``
    (``paperlib.executed``). ``jobs > 1`` runs notebooks in parallel
    processes. Prints a summary (status, wall time, tables/figures written) and returns one
    :class:`NotebookResult` per notebook, in the order asked.

    ``executor="slurm"`` submits one job per notebook through submitit instead
    (``paperlib.cluster``; ``slurm`` a ``cluster.SlurmOptions``); with ``slurm.wait`` False it
    returns ``[]`` right after submitting (``python -m paperlib status`` collects later).
    ``dry_run`` prints the plan and starts nothing.
    """
    from tqdm.auto import tqdm

    _check_id(profile, "profile")
    if executor not in ("local", "slurm"):
        raise ValueError(f"executor must be 'local' or 'slurm', got {executor!r}")
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    available = discover_notebooks(notebooks_dir)
    selected = _select(names, available)
    out = output_root(root).resolve()
    build = out / "build"
    ipynbs = {n: pair_notebook(available[n], build / "notebooks", kernel) for n in selected}
    plan = _plan_parameters({n: _notebook_parameters(p) for n, p in ipynbs.items()},
                            profile, dict(overrides or {}))
    tasks = {}
    run_id = f"{os.getpid()}-{time.time_ns()}"  # concurrent runs of one notebook never share a log
    _remove_dead_staging(build / "staging" / profile)
    ipython_dir = _quiet_ipython_dir(build)
    for n in selected:
        env = {"PAPERLIB_PROFILE": profile, "PAPERLIB_OUTPUT_ROOT": str(out), "PAPERLIB_NOTEBOOK": n,
               "PAPERLIB_WRITES_LOG": str(build / "logs" / profile / f"{n}.{run_id}.writes"),
               "PAPERLIB_STAGE_DIR": str(build / "staging" / profile / f"{n}.{run_id}"),
               "PAPERLIB_STATUS_FILE": str(build / "logs" / profile / f"{n}.{run_id}.status"),
               "IPYTHONDIR": str(ipython_dir),
               **_thread_env(profile)}
        tasks[n] = (n, str(ipynbs[n]), str(build / "executed" / profile / f"{n}.ipynb"), plan[n],
                    str(available[n].parent.resolve()), kernel, env, timeout,
                    notebook_writes(available[n]), verbose)
    results: dict[str, NotebookResult] = {}
    t_start = time.perf_counter()
    if executor == "slurm":
        from . import cluster
        slurm = slurm or cluster.SlurmOptions()
        if dry_run:
            print(cluster.plan_text(tasks, slurm, out), flush=True)
            return []
    elif dry_run:
        for n, args in tasks.items():
            print(f"{n}: parameters {json.dumps(args[3], sort_keys=True)}", flush=True)
        return []

    from .executed import PUBLISHED_PROFILES, publish, published_dir

    def done(r: NotebookResult) -> None:
        results[r.name] = r
        if r.status == "ok" and profile in PUBLISHED_PROFILES and not overrides:
            publish(Path(r.executed), published_dir(out, profile) / f"{r.name}.ipynb")
        bar.update()
        if verbose:
            tqdm.write(f"{r.name}: {r.status} in {_clock(r.wall_s)}"
                       + (f" -- {r.error[:200]}; executed notebook: {r.executed}" if r.error else ""))

    if executor == "slurm":
        jobs_ = cluster.submit(tasks, slurm, out, _execute)
        if verbose:
            print(f"submitted {len(jobs_)} slurm job(s): "
                  + ", ".join(f"{n}={j.job_id}" for n, j in zip(tasks, jobs_)), flush=True)
        if not slurm.wait:
            print(f"not waiting: `python -m paperlib status` reports them and collects the results "
                  f"(record in {cluster.logs_dir(slurm, out) / cluster.RECORD})", flush=True)
            return []
        bar = tqdm(total=len(tasks), desc=f"slurm jobs ({profile})", unit="nb", disable=not verbose, position=0)
        cluster.collect(list(tasks), jobs_, failed_result, done)
    elif int(jobs) == 1 or len(tasks) == 1:
        bar = tqdm(total=len(tasks), desc=f"notebooks ({profile})", unit="nb", disable=not verbose, position=0)
        for n, args in tasks.items():
            done(_execute(*args))
    else:
        with _pool(min(int(jobs), len(tasks))) as pool:  # before tqdm starts its monitor thread
            bar = tqdm(total=len(tasks), desc=f"notebooks ({profile})", unit="nb", disable=not verbose, position=0)
            futures = {pool.submit(_execute, *args): n for n, args in tasks.items()}
            for fut in as_completed(futures):
                done(fut.result())
    bar.close()
    ordered = [results[n] for n in selected]
    if verbose:
        print(format_summary(ordered), flush=True)
        print(f"total: {_clock(time.perf_counter() - t_start)} wall for {len(ordered)} notebook(s) "
              f"({_clock(sum(r.wall_s for r in ordered))} of notebook time, {jobs} job(s)); "
              f"executed notebooks in {build / 'executed' / profile}", flush=True)
    return ordered


def _quiet_ipython_dir(build: Path) -> Path:
    """An IPython folder for the kernels whose config keeps ipykernel's own log lines (the
    "running over TCP" warning, "KeyboardInterrupt caught in kernel" at shutdown) off the
    terminal; a cell's errors still reach the summary and the executed notebook."""
    folder = build / "ipython"
    config = folder / "profile_default" / "ipython_kernel_config.py"
    text = b'c.IPKernelApp.log_level = "CRITICAL"  # written by paperlib.repro.run_notebooks\n'
    if not config.is_file() or config.read_bytes() != text:
        atomic_write_files({config: text})
    return folder


def _remove_dead_staging(folder: Path) -> None:
    """Staging folders (``<name>.<pid>-<ns>``) of runs that were killed: their process is gone."""
    import shutil

    if not folder.is_dir():
        return
    for p in folder.iterdir():
        m = re.match(r"^.+\.(\d+)-\d+$", p.name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except PermissionError:
            pass


def _clock(seconds: float) -> str:
    """``1234.5`` -> ``"20m35s"``."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"

