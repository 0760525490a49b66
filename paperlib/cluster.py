"""Regenerate on a cluster: one papermill job per notebook on Slurm, through ``submitit``.

Papermill has no distributed mode of its own; the established way is one job per notebook,
submitted from Python with ``submitit`` (Meta's Slurm submitter: job arrays, pickled results,
logs per job). ``python -m paperlib reproduce --executor slurm`` builds exactly the tasks the
local runner would (paired notebooks, parameters, environment), submits them as one job array
(``--array-parallelism`` at a time) and waits; each job runs the notebook on a node with the
repository on a shared file system, so its tables, figures and executed notebook land where a
local run puts them (staged, published only when the notebook succeeds). The runner then
collects each job's ``NotebookResult``; a failed notebook or a job that died is reported with
its job id and the tail of its log, and the other notebooks still complete.

``--no-wait`` submits and returns; ``python -m paperlib status`` later reports each job's state
and, once all are done, collects the results (and publishes the executed notebooks) as a
waiting run would. ``--dry-run`` prints the plan (notebooks, parameters, Slurm options) and
submits nothing. Logs and the record of the last submission live in ``--slurm-logs`` (default
``<output root>/build/slurm``), which must be on the shared file system.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

RECORD = "last_submission.json"


@dataclasses.dataclass
class SlurmOptions:
    """What ``sbatch`` is asked for, per notebook job."""

    partition: str | None = None
    time_min: int = 60             # wall time limit of one notebook's job
    gpus: int = 0                  # GPUs per job (the gpu / paper profiles)
    cpus: int = 2                  # CPUs per job
    mem_gb: float | None = None
    array_parallelism: int = 16    # jobs of the array running at once
    logs: str | None = None        # folder on the shared file system (default <root>/build/slurm)
    wait: bool = True

    def parameters(self) -> dict[str, Any]:
        p = {"time": int(self.time_min), "cpus_per_task": int(self.cpus), "array_parallelism": int(self.array_parallelism),
             "job_name": "paperlib", "use_srun": False, "ntasks_per_node": 1, "nodes": 1}
        if self.partition:
            p["partition"] = self.partition
        if self.gpus:
            p["gpus_per_node"] = int(self.gpus)
        if self.mem_gb:
            p["mem"] = f"{int(self.mem_gb * 1024)}MB"
        return p


def logs_dir(opts: SlurmOptions, root: Path) -> Path:
    return Path(opts.logs) if opts.logs else Path(root) / "build" / "slurm"


def plan_text(tasks: Mapping[str, tuple], opts: SlurmOptions, root: Path) -> str:
    """What ``--dry-run`` prints: one line per notebook job with its parameters, then the options."""
    lines = [f"slurm plan: {len(tasks)} notebook job(s) as one array, logs in {logs_dir(opts, root)}"]
    for i, (name, args) in enumerate(tasks.items()):
        lines.append(f"  [{i}] {name}: parameters {json.dumps(args[3], sort_keys=True)}")
    lines.append(f"  sbatch options: {json.dumps(opts.parameters(), sort_keys=True)}")
    return "\n".join(lines)


def submit(tasks: Mapping[str, tuple], opts: SlurmOptions, root: Path, execute: Callable) -> list:
    """Submit one job array, one job per notebook: job ``i`` runs ``execute(*task_i)`` (the local
    runner's ``repro._execute``: papermill on the node). Records the submission for ``status``."""
    try:
        import submitit
    except ImportError:  # pragma: no cover - submitit is a dependency
        raise RuntimeError("--executor slurm needs submitit (pip install submitit)") from None
    folder = logs_dir(opts, root)
    folder.mkdir(parents=True, exist_ok=True)
    executor = submitit.SlurmExecutor(folder=folder / "%j")
    executor.update_parameters(**opts.parameters())
    # no live progress lines from a job: its log is the record
    jobs = executor.map_array(execute, *zip(*(args[:-1] + (False,) for args in tasks.values())))
    record = {"submitted": time.strftime("%Y-%m-%dT%H:%M:%S"), "folder": str(folder),
              "jobs": [{"name": n, "job_id": j.job_id} for n, j in zip(tasks, jobs)]}
    from .atomic import atomic_write_files
    atomic_write_files({folder / RECORD: (json.dumps(record, indent=1) + "\n").encode()})
    return jobs


def _tail(job, lines: int = 15) -> str:
    text = "\n".join(t for t in ((job.stderr() or ""), (job.stdout() or "")) if t)
    return "\n".join(text.strip().splitlines()[-lines:])


def collect(names, jobs, failed: Callable[[str, str], Any], on_done: Callable | None = None,
            poll_s: float = 2.0) -> list:
    """Wait for every job and return each one's result (a ``NotebookResult``), calling ``on_done``
    as each finishes; a notebook that failed carries its job id and log tail in ``error``, and a
    job that died becomes ``failed(name, error)``. Results in the order of ``names``."""
    pending, results = dict(zip(names, jobs)), {}
    while pending:
        for name, job in list(pending.items()):
            if not job.done():
                continue
            del pending[name]
            try:
                r = job.result()
                if r.status != "ok":
                    r.error = f"{r.error} [slurm job {job.job_id}; log tail:\n{_tail(job)}]"
            except Exception as e:  # the job itself failed: killed, out of time, node lost
                r = failed(name, f"slurm job {job.job_id} failed: {type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}; log tail:\n{_tail(job)}")
            results[name] = r
            if on_done is not None:
                on_done(r)
        if pending:
            time.sleep(poll_s)
    return [results[n] for n in names]


def recorded_jobs(folder: Path) -> tuple[list[str], list]:
    """(names, jobs) of the last submission recorded in ``folder``."""
    import submitit
    path = Path(folder) / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"no slurm submission recorded in {folder} (missing {RECORD})")
    rec = json.loads(path.read_text())
    names = [j["name"] for j in rec["jobs"]]
    jobs = [submitit.SlurmJob(folder=Path(rec["folder"]) / "%j", job_id=j["job_id"]) for j in rec["jobs"]]
    return names, jobs


def status(folder: Path) -> tuple[list[tuple[str, str, str]], bool]:
    """``[(notebook, job id, state)]`` of the last submission and whether all are done."""
    names, jobs = recorded_jobs(folder)
    rows = [(n, j.job_id, j.state) for n, j in zip(names, jobs)]
    return rows, all(j.done() for j in jobs)
