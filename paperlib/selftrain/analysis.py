"""Derived per-seed measures for the self-training / CSST claims (``paperlib.claims``).

A claim compares two arms paired by seed. Some of the papers' statements are about a quantity
derived per seed rather than about one arm's metric: "the gap between self-training and
fine-tuning is larger with fewer labels" (a difference of two gaps), "duplicated real labels
saturate, pseudo labels keep helping" (a gap that grows with the epoch length), "heavier models
gain more from the fast schedule" (a rank correlation across models). The functions here turn a
notebook's per-seed table into rows of that quantity, one per seed, in the same long format
(an arm column, the pairing column, the value), so the claim is declared and tested like any
other (``paperlib/reference/claims/{selftrain,csst}.toml``). They compute measures, never
verdicts.

``runnable`` picks the declared claims that a run can test: the claims of a profile that did not
train an arm (fewer label budgets, students or ratios at ``smoke``) are left out, and listed.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

__all__ = ["arm_gap", "rank_correlation", "runnable"]


def _failed(rows: pd.DataFrame, value: str) -> pd.Series:
    v = pd.to_numeric(rows[value], errors="coerce").astype(float)
    bad = ~v.map(math.isfinite)
    if "failed" in rows.columns:
        bad |= rows["failed"].fillna(False).astype(bool)
    return bad


def arm_gap(df: pd.DataFrame, *, arm: str, a: Any, b: Any, by: Sequence[str], value: str,
            unit: str = "seed", label: str | None = None) -> pd.DataFrame:
    """Per ``by`` group and ``unit``: ``A - B`` of ``value`` between arm ``a`` and arm ``b`` of
    column ``arm``, as rows ``{arm: label, *by, unit, value}`` (``label`` defaults to
    ``"a − b"``).

    Units present in only one arm are left out; a failed run on either side (non-finite value,
    or a true ``failed`` column) gives a NaN gap, which ``paperlib.claims`` reports as a failed
    run. Append the rows to ``df`` and declare a claim on the new arm, e.g. "the gap at 1-shot
    exceeds the gap with the full set" = arm ``{labels = "1-shot", method = label}`` against
    ``{labels = "full", method = label}``, paired by ``unit``.
    """
    by = list(by)
    for col in [arm, value, unit, *by]:
        if col not in df.columns:
            raise ValueError(f"arm_gap: column {col!r} is not in the data (columns {list(df.columns)})")
    label = label if label is not None else f"{a} − {b}"
    keys = by + [unit]

    def side(name) -> pd.DataFrame:
        rows = df[df[arm].astype(str) == str(name)]
        if rows.empty:
            raise ValueError(f"arm_gap: no rows with {arm} = {name!r}")
        if rows.duplicated(keys).any():
            raise ValueError(f"arm_gap: several rows of {arm} = {name!r} per {keys}")
        v = pd.to_numeric(rows[value], errors="coerce").where(~_failed(rows, value))
        return rows[keys].assign(_v=v.to_numpy())

    merged = side(a).merge(side(b), on=keys, suffixes=("_a", "_b"), sort=False)
    out = merged[keys].copy()
    out.insert(0, arm, label)
    out[value] = (merged["_v_a"] - merged["_v_b"]).to_numpy()
    return out.reset_index(drop=True)


def rank_correlation(df: pd.DataFrame, *, x: str, y: str, unit: str = "seed", arm: str = "quantity",
                     label: str | None = None, min_items: int = 3) -> pd.DataFrame:
    """Per ``unit``: Spearman's rank correlation between columns ``x`` and ``y`` over the rows of
    that unit (e.g. the models of one timing round), as rows ``{arm: label, unit, "rho": r}``.

    A unit with fewer than ``min_items`` finite pairs gives no row (two points always correlate
    perfectly); a unit whose ranks are constant gives NaN. Test the claim "heavier models gain
    more" as ``rho`` against ``value = 0.0``.
    """
    for col in (x, y, unit):
        if col not in df.columns:
            raise ValueError(f"rank_correlation: column {col!r} is not in the data (columns {list(df.columns)})")
    label = label if label is not None else f"rank correlation of {x} and {y}"
    rows = []
    for u, g in df.groupby(unit, sort=False):
        g = g[[x, y]].apply(pd.to_numeric, errors="coerce").dropna()
        if len(g) < min_items:
            continue
        rx, ry = g[x].rank(), g[y].rank()
        r = float(rx.corr(ry)) if rx.nunique() > 1 and ry.nunique() > 1 else math.nan
        rows.append({arm: label, unit: u, "rho": r, "items": len(g)})
    return pd.DataFrame(rows, columns=[arm, unit, "rho", "items"])


def _selects(data: pd.DataFrame, arm, arm_col: str | None) -> bool:
    sel = dict(arm) if isinstance(arm, Mapping) else ({arm_col: arm} if arm_col else None)
    if sel is None:
        return False
    mask = pd.Series(True, index=data.index)
    for col, val in sel.items():
        if col not in data.columns:
            return False
        mask &= data[col].astype(str) == str(val)
    return bool(mask.any())


def runnable(claims: Sequence, data: pd.DataFrame, *, arm: str | None = None, value: str = "mIoU",
             checks: Mapping[str, Any] | None = None, verbose: bool = True) -> list:
    """The claims of ``claims`` that this run can test on ``data``: both arms select rows, the
    metric column exists, a check has its result in ``checks``, and the claim's control (if any)
    is kept. The others (arms this profile did not train) are printed when ``verbose`` and left
    out; they are not verdicts."""
    checks = dict(checks or {})
    keep, skipped = {}, []
    for c in claims:                      # controls and checks first, so dependants can see them
        if c.kind == "check":
            if c.id in checks:
                keep[c.id] = c
            else:
                skipped.append((c, "no check result at this run"))
    for c in claims:
        if c.kind == "check":
            continue
        metric = c.metric or value
        why = None
        if metric not in data.columns:
            why = f"no column {metric!r}"
        elif not _selects(data, c.a, arm):
            why = f"arm {c.a!r} not run"
        elif c.b is not None and not _selects(data, c.b, arm):
            why = f"arm {c.b!r} not run"
        if why:
            skipped.append((c, why))
        else:
            keep[c.id] = c
    for c in list(keep.values()):
        if c.control and c.control not in keep:
            keep.pop(c.id)
            skipped.append((c, f"its control {c.control!r} was not run"))
    if verbose and skipped:
        print("claims this run cannot test (arms not trained at this profile), left out: "
              + "; ".join(f"{c.id} ({why})" for c, why in skipped))
    return [c for c in claims if c.id in keep]
