"""The papers' reported numbers, transcribed once, shown beside ours in every table's markdown.

One CSV per paper table: ``paperlib/reference/<paper>/<table_id>.csv``. It starts with ``#``
comment lines; one of them must be ``# source: ...`` naming the paper and table (further
comments, e.g. ``# transcribed from: ...`` or ``# note: ...``, are kept too). The column names
are the ones our notebooks use for the same quantity, so ``repro.write_table`` can match rows on
the shared key columns and show the paper's values in ``paper: <col>`` columns.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent

#: The paper keys: every table, figure, reference CSV and claim belongs to one of them.
PAPERS = ("vplr", "selftrain", "csst", "duchdc", "gsvnet", "paperlib")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # no dots: they separate id and profile


def check_paper(paper: str) -> str:
    """Return ``paper`` if it is one of :data:`PAPERS`, else raise ``ValueError`` naming it."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper key {paper!r}; expected one of {', '.join(PAPERS)}")
    return paper


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid table / figure / profile id, else raise ``ValueError``."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"bad {what} {value!r}: use letters, digits, '_' or '-' (no dots or slashes)")
    return value


def path(paper: str, table_id: str) -> Path:
    """Where the reference CSV of ``paper``/``table_id`` lives."""
    return HERE / check_paper(paper) / f"{check_id(table_id, 'table_id')}.csv"


def available() -> list[str]:
    """``"paper/table_id"`` for every transcribed table."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in HERE.glob("*/*.csv"))


def load(paper: str, table_id: str) -> pd.DataFrame:
    """The paper's numbers as a DataFrame; ``df.attrs["source"]`` names the source table and
    ``df.attrs["comments"]`` holds every header comment (``key: value`` lines as a dict)."""
    p = path(paper, table_id)
    if not p.is_file():
        raise FileNotFoundError(f"no reference numbers for {paper}/{table_id} (expected {p}); "
                                f"available: {', '.join(available()) or '(none)'}")
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    comments = {}
    for line in lines[:n]:
        key, _, value = line.lstrip("#").strip().partition(":")
        comments[key.strip()] = value.strip()
    if not comments.get("source"):
        raise ValueError(f"{p}: the header must have a '# source: <paper, table>' comment line")
    df = pd.read_csv(io.StringIO("".join(lines[n:])))
    df.attrs["source"] = comments["source"]
    df.attrs["comments"] = comments
    return df
