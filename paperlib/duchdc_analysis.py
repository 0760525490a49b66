"""DUC/HDC: the per-seed derived measures and structural checks behind the paper's claims.

The claims themselves are declared in ``paperlib/reference/claims/duchdc.toml`` and decided by
:mod:`paperlib.claims`; nothing here gives a verdict. This module only

- picks the declared claims one run can test (:func:`testable_here`: a notebook run with a subset
  of rows, or without the cell-1 / CRF arms, has no data for some of them);
- computes the derived per-seed quantity of Table 2's "increasing receptive field size generally
  yields higher accuracy" (:func:`rank_correlation_per_unit`: Spearman's rho between the variants'
  RF increase and their mIoU, one value per seed) and of Table 1's cell-size rationale
  (:func:`difference_per_unit`: cell 2 minus cell 1 per seed, on exact and on noisy labels);
- computes the booleans of the structural checks the claims depend on (:func:`aspp_rates_fit`,
  :func:`same_order`, :func:`params_matched`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd


def _selects(df: pd.DataFrame, arm, arm_col: str | None) -> bool:
    """Whether ``arm`` (a value of ``arm_col`` or ``{col: value}``) selects at least one row."""
    sel = dict(arm) if isinstance(arm, Mapping) else ({arm_col: arm} if arm_col else None)
    if not sel or any(col not in df.columns for col in sel):
        return False
    mask = pd.Series(True, index=df.index)
    for col, val in sel.items():
        mask &= df[col].astype(str) == str(val)
    return bool(mask.any())


def testable_here(declared: Sequence[Any], df: pd.DataFrame, arm: str | None,
                  checks: Mapping[str, Any] = (), value: str = "mIoU") -> tuple[list, list[str]]:
    """The declared claims this run has data for, and why the others were left out.

    A check is kept when ``checks`` has its result; any other claim when both of its arms select
    rows of ``df`` and its metric column exists. A claim whose control (or check) was left out is
    left out too. Returns ``(kept, dropped)``, ``dropped`` as ``"<id>: <reason>"`` lines.
    """
    checks = dict(checks or {})
    kept, dropped = {}, {}
    for c in declared:
        if c.kind == "check":
            if c.id in checks:
                kept[c.id] = c
            else:
                dropped[c.id] = "check not computed in this run"
            continue
        metric = c.metric or value
        missing = [a for a in ([c.a] + ([c.b] if c.b is not None else [])) if not _selects(df, a, arm)]
        if metric not in df.columns:
            dropped[c.id] = f"no column {metric!r}"
        elif missing:
            dropped[c.id] = "arm(s) not run: " + ", ".join(f"'{a}'" if isinstance(a, str) else str(a) for a in missing)
        else:
            kept[c.id] = c
    changed = True
    while changed:  # a claim whose control is gone cannot be evaluated
        changed = False
        for cid, c in list(kept.items()):
            if c.control and c.control not in kept:
                dropped[cid] = f"its control {c.control!r} is not testable here"
                del kept[cid]
                changed = True
    return [c for c in declared if c.id in kept], [f"{cid}: {why}" for cid, why in dropped.items()]


def rank_correlation_per_unit(df: pd.DataFrame, x: str, y: str, arm: str, arms: Iterable[str],
                              name: str, unit: str = "seed", out: str = "rho") -> pd.DataFrame:
    """Spearman's rho between columns ``x`` and ``y`` across ``arms``, one row per ``unit``.

    ``df`` has one row per arm and unit. Returns a long frame ``{arm: name, unit: u, out: rho}``
    to evaluate a claim "rho > 0" paired by unit. A unit missing an arm, or with a failed
    (``failed`` true) or non-finite row, gets ``rho = NaN`` (a failed unit, never averaged); so
    does a unit whose ``y`` is constant over the arms (no ranking).
    """
    arms = list(arms)
    rows = []
    for u, g in df[df[arm].isin(arms)].groupby(unit, sort=True):
        g = g.set_index(arm)
        bad = (g["failed"].astype(bool).any() if "failed" in g.columns else False)
        xs, ys = g.reindex(arms)[x].astype(float), g.reindex(arms)[y].astype(float)
        rho = float("nan")
        if not bad and len(g) == len(arms) and np.isfinite(xs).all() and np.isfinite(ys).all() \
                and xs.nunique() > 1 and ys.nunique() > 1:
            rho = float(xs.rank().corr(ys.rank()))
        rows.append({arm: name, unit: u, out: rho})
    return pd.DataFrame(rows, columns=[arm, unit, out])


def difference_per_unit(df: pd.DataFrame, a: str, b: str, arm: str, name: str, cols: Sequence[str],
                        unit: str = "seed") -> pd.DataFrame:
    """Arm ``a`` minus arm ``b`` in each of ``cols``, one row per ``unit``: a long frame
    ``{arm: name, unit: u, col: A_u - B_u}``. Two such rows per unit make an *interaction* a paired
    claim ("the gain of a over b is larger here than there"). A unit missing either arm, or with
    a failed (``failed`` true) row, gets NaN (a failed unit, never averaged)."""
    rows = []
    for u, g in df[df[arm].isin([a, b])].groupby(unit, sort=True):
        g = g.set_index(arm)
        bad = g["failed"].astype(bool).any() if "failed" in g.columns else False
        ok = not bad and a in g.index and b in g.index
        rows.append({arm: name, unit: u, **{c: float(g.at[a, c] - g.at[b, c]) if ok else float("nan") for c in cols}})
    return pd.DataFrame(rows, columns=[arm, unit, *cols])


def aspp_rates_fit(crop: int | Sequence[int], stride: int, rates: Sequence[int]) -> tuple[bool, str]:
    """Whether the feature map of a training ``crop`` at output ``stride`` is wider than the
    largest ASPP ``rate``: otherwise every off-centre tap of that branch falls outside the map
    (zero padding) for every pixel, and the branch adds nothing but a centre tap."""
    side = min(crop) if isinstance(crop, (list, tuple)) else int(crop)
    feat = side // int(stride)
    top = max(int(r) for r in rates)
    return feat > top, (f"{side}-px training crop at stride {stride}: {feat}x{feat} feature map; "
                        f"largest ASPP rate {top}")


def same_order(reference: Mapping[str, float], ours: Mapping[str, float]) -> tuple[bool, str]:
    """Whether ``ours`` ranks the keys exactly as ``reference`` does (ties included) and is not
    constant: the variants still differ in the quantity and in the same order."""
    keys = list(reference)
    ref = pd.Series([float(reference[k]) for k in keys], index=keys)
    our = pd.Series([float(ours[k]) for k in keys], index=keys)
    ok = bool(our.nunique() > 1 and (ref.rank(method="min") == our.rank(method="min")).all())
    return ok, "; ".join(f"{k}: {ref[k]:g} vs {our[k]:g}" for k in keys)


def params_matched(counts: Mapping[str, int], target: str, tol: float = 0.05) -> tuple[bool, str]:
    """Whether every head in ``counts`` other than ``target`` has within ``tol`` (relative) of
    ``target``'s parameter count."""
    base = float(counts[target])
    ratios = {k: float(v) / base for k, v in counts.items() if k != target}
    ok = bool(ratios) and all(abs(r - 1.0) <= tol for r in ratios.values())
    return ok, ", ".join(f"{k}: {r:.3f}x {target}" for k, r in ratios.items()) + f" (tolerance {tol:.0%})"
