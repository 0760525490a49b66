"""Command line: ``python -m paperlib {reproduce,status,list,report,lab,gpu,train,evaluate}``.

    python -m paperlib reproduce [--profile cpu] [--only NAME ...] [--jobs N] [--set key=value ...]
                                 [--executor slurm [--partition P --time MIN --gpus G ...] [--no-wait]] [--dry-run]
    python -m paperlib status                     (the last slurm submission; collects when done)
    python -m paperlib gpu [--dry-run]            (every GPU table in one call: make gpu)
    python -m paperlib list
    python -m paperlib report [--profile P]       (tables/index.csv and tables/REPRODUCTION.md)
    python -m paperlib lab [jupyter lab options]  (JupyterLab on the notebooks, .py <-> .ipynb paired)
    python -m paperlib train --config FILE [more train options]   (torchrun entry: paperlib.train)
    python -m paperlib evaluate --checkpoint FILE --format F --data-root DIR   (released weights)

``reproduce`` exits 1 when any notebook failed and 2 on bad arguments (unknown notebook or
parameter), like argparse.
"""
from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m paperlib", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run notebooks with papermill, write tables/ and figures/")
    r.add_argument("--profile", default="cpu", help="smoke | cpu | gpu | paper (default: cpu)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="notebook names (default: all)")
    r.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel (default: 1)")
    r.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="notebook parameter overrides (repeatable); values parse as JSON, else as "
                        "text; a relative path given to a *_root parameter is taken from the "
                        "current folder")
    r.add_argument("--notebooks-dir", default=None, help="folder of jupytext notebooks (default: notebooks/)")
    r.add_argument("--output-root", default=None,
                   help="where tables/, figures/, build/ go (default: $PAPERLIB_OUTPUT_ROOT or the repo)")
    r.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    r.add_argument("--dry-run", action="store_true", help="print the plan (notebooks, parameters, "
                                                          "Slurm options) and run nothing")
    c = r.add_argument_group("cluster (--executor slurm: one job per notebook through submitit)")
    c.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local (default): this machine, --jobs at a time; slurm: one job per notebook")
    c.add_argument("--partition", default=None, help="Slurm partition")
    c.add_argument("--time", dest="time_min", type=int, default=60, help="minutes per notebook job (default 60)")
    c.add_argument("--gpus", type=int, default=0, help="GPUs per job (default 0)")
    c.add_argument("--cpus", type=int, default=2, help="CPUs per job (default 2)")
    c.add_argument("--mem-gb", type=float, default=None, help="memory per job in GB")
    c.add_argument("--array-parallelism", type=int, default=16, help="jobs running at once (default 16)")
    c.add_argument("--slurm-logs", default=None,
                   help="logs and submission record, on the shared file system (default <root>/build/slurm)")
    c.add_argument("--no-wait", action="store_true", help="submit and return; `python -m paperlib status` collects")

    st = sub.add_parser("status", help="state of the last `reproduce --executor slurm` submission; "
                                       "collects the results once every job is done")
    st.add_argument("--slurm-logs", default=None, help="as given to reproduce (default <root>/build/slurm)")
    st.add_argument("--output-root", default=None)
    st.add_argument("--profile", default="cpu", help="the profile the jobs ran (for publishing executed notebooks)")

    ls = sub.add_parser("list", help="notebooks and the tables/figures each writes")
    ls.add_argument("--notebooks-dir", default=None)

    rp = sub.add_parser("report", help="write the results index tables/index.csv and tables/REPRODUCTION.md")
    rp.add_argument("--profile", default=None,
                    help="collect only this profile's tables (default: every profile but smoke)")
    rp.add_argument("--output-root", default=None, help="where tables/ is (default: $PAPERLIB_OUTPUT_ROOT or the repo)")

    sub.add_parser("lab", help="JupyterLab rooted at the repository, opening notebooks/ (jupytext pairing); "
                               "other options go to jupyter lab")

    si = sub.add_parser("site", help="build the static companion site (build/site/index.html) from the committed "
                                     "tables, results index and executed notebooks; executes nothing")
    si.add_argument("--output-root", default=None, help="where tables/ and notebooks/executed/ are (default: the repo)")
    si.add_argument("--out", default=None, help="site folder (default <root>/build/site)")

    sub.add_parser("gpu", help="every GPU table in one call that fits a short GPU loan (make gpu; "
                               "--dry-run prints the plan); exits 0 without CUDA")

    t = sub.add_parser("train", help="train one config (what torchrun runs)")
    t.add_argument("--config", required=True, help="JSON config file")  # other options: passed on

    from paperlib.checkpoints.cli import add_parser as add_evaluate_parser  # no torch import
    add_evaluate_parser(sub)
    return p


def _reproduce(args, parser) -> int:
    from paperlib import repro

    try:
        overrides = repro.parse_overrides(args.overrides)
        for key, value in overrides.items():  # notebooks run in notebooks/: make paths absolute
            if key.endswith("_root") and isinstance(value, str) and not os.path.isabs(value):
                overrides[key] = os.path.abspath(value)
        slurm = None
        if args.executor == "slurm":
            from paperlib.cluster import SlurmOptions
            slurm = SlurmOptions(partition=args.partition, time_min=args.time_min, gpus=args.gpus, cpus=args.cpus,
                                 mem_gb=args.mem_gb, array_parallelism=args.array_parallelism,
                                 logs=args.slurm_logs, wait=not args.no_wait)
        results = repro.run_notebooks(args.only, args.profile, jobs=args.jobs, overrides=overrides,
                                      root=args.output_root, notebooks_dir=args.notebooks_dir,
                                      timeout=args.timeout, executor=args.executor, slurm=slurm,
                                      dry_run=args.dry_run)
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    failed = [r.name for r in results if r.status != "ok"]
    if failed:
        print(f"{len(failed)} of {len(results)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _status(args) -> int:
    from pathlib import Path

    from paperlib import cluster, repro
    from paperlib.executed import PUBLISHED_PROFILES, publish, published_dir

    root = repro.output_root(args.output_root).resolve()
    folder = Path(args.slurm_logs) if args.slurm_logs else root / "build" / "slurm"
    try:
        rows, done = cluster.status(folder)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, job_id, state in rows:
        print(f"{name}: job {job_id} {state}")
    if not done:
        print("not all done yet: run `python -m paperlib status` again later")
        return 0
    names, jobs = cluster.recorded_jobs(folder)
    results = cluster.collect(names, jobs, repro.failed_result)
    for r in results:
        if r.status == "ok" and args.profile in PUBLISHED_PROFILES and r.executed:
            publish(Path(r.executed), published_dir(root, args.profile) / f"{r.name}.ipynb")
    print(repro.format_summary(results))
    return 1 if any(r.status != "ok" for r in results) else 0


def _list(args) -> int:
    from paperlib import repro

    books = repro.list_notebooks(args.notebooks_dir)
    if not books:
        print("(no notebooks)")
    for nb in books:
        title = f"  {nb['title']}" if nb["title"] else ""
        print(f"{nb['name']}{title}")
        for w in nb["writes"] or ["(declares no outputs)"]:
            print(f"    {w}")
    return 0


def _report(args, parser) -> int:
    from paperlib import report

    try:
        paths = report.write_report(args.output_root, args.profile)
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def lab_command(root=None, extra=()) -> list[str]:
    """The ``jupyter lab`` command ``make lab`` runs: rooted at the repository (so jupytext finds
    ``jupytext.toml`` and pairs each ``.py`` with an ``.ipynb``), opening ``notebooks/``, with
    ``--allow-root`` when run as root. ``extra`` options are appended."""
    from paperlib.repro import REPO_ROOT

    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root or REPO_ROOT}",
           "--LabApp.default_url=/lab/tree/notebooks"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(extra)


def _lab(rest: list[str]) -> int:
    import subprocess

    return subprocess.call(lab_command(extra=rest))


def _train(args, rest: list[str]) -> int:
    try:
        from paperlib import train
    except ImportError as e:
        print(f"error: paperlib.train is not available: {e}", file=sys.stderr)
        return 2
    out = train.main(["--config", args.config, *rest])
    return int(out) if isinstance(out, int) else 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        return _train(args, rest)
    if args.command == "lab":
        return _lab(rest)
    if args.command == "gpu":
        from paperlib.gpu_session import main as gpu_main
        return gpu_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "reproduce":
        return _reproduce(args, parser)
    if args.command == "report":
        return _report(args, parser)
    if args.command == "status":
        return _status(args)
    if args.command == "site":
        from paperlib.repro import output_root
        from paperlib.site import build_site
        print(f"site: {build_site(output_root(args.output_root), args.out)}")
        return 0
    if args.command == "evaluate":
        from paperlib.checkpoints.cli import run
        return run(args, parser)
    return _list(args)


if __name__ == "__main__":
    sys.exit(main())
