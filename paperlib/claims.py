"""Claims: one place where a paper's claim is declared, tested and rendered.

A claim is *declared before the run that tests it*, as data in
``paperlib/reference/claims/<paper>.toml`` (one ``[[claim]]`` table each)::

    [[claim]]
    id = "nonacc_gt_acc"                 # unique within the paper
    item = "table6"                      # the table (or figure) that tests it
    text = "Non-accumulated propagation beats accumulated at k = 3"
    kind = "directional"                 # directional | null | control | check
    a = "Non-accumulated"                # arm A: a value of the arm column, or {col = value, ...}
    b = "Accumulated"                    # arm B, or `value = 0.0` to compare A with a number
    direction = 1                        # the paper's sign of A - B
    paper = {table = "table6", col = "mIoU"}   # the paper's effect, from the reference CSV
    control = "oracle_gt_baseline"       # optional: a control (or check) this claim depends on

``paper`` may also be a number (``paper = 0.23``) when the paper states the effect in words; the
numbers still live only under ``paperlib/reference/``. ``expand = {k = [1, 3, 5]}`` declares one
claim per value, with ``{k}`` substituted in every string (a string that is exactly ``"{k}"``
becomes the value itself).

**Verdicts** (one definition for the whole project). Arms are *paired by unit* (the training
seed: same initialisation and data order in both arms): ``d_i = A_i - B_i`` (or ``A_i - value``)
over the units present in both arms; a failed run (NaN, or ``failed`` true) is reported and
dropped from the pair, never averaged. With ``n`` pairs, mean ``d``, standard error
``se = sd(d) / sqrt(n)`` and ``t = (d - m) / se`` on ``n - 1`` degrees of freedom:

- *directional* ("A > B"): **reproduced** if ``direction * d > min_effect`` and the one-sided
  paired t-test in the paper's direction has ``p < alpha`` (5%); **reversed** if the test in the
  opposite direction has ``p < alpha``; else **inconclusive**. The minimum detectable effect at
  this ``n`` (one-sided 5%, power 80%) is ``(t_{0.95} + t_{0.80}) * se``.
- *null* ("no gain", "within 0.1"): two one-sided tests against the declared ``margin``:
  **reproduced** if both ``d > -margin`` and ``d < margin`` are significant (equivalence);
  **not reproduced** if ``|d| > margin`` significantly; else **inconclusive**. Never a one-sided
  "not worse".
- *control* (a positive control, e.g. "oracle labels beat the baseline"): the directional test;
  **pass** if it would be *reproduced*, else **fail**. Claims whose ``control`` failed are
  **not testable**, with the reason.
- *check* (structural or analytic: parameter matching, the gridding rule): **pass** / **fail**
  from a boolean the notebook computes; shown apart and never counted as a reproduction.

With ``se = 0`` (identical differences) ``t`` is infinite when ``d != m`` and the test is
decided by the sign; a tie (every ``d_i = 0``) is never a gain. With ``n < 2`` nothing is
significant: the verdict is *inconclusive* (a control *fails*).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

ALPHA = 0.05
POWER = 0.80
KINDS = ("directional", "null", "control", "check")
VERDICTS = ("reproduced", "reversed", "inconclusive", "not reproduced", "not testable", "pass", "fail")
DECLARATIONS = Path(__file__).resolve().parent / "reference" / "claims"
_FIELDS = {"id", "item", "text", "kind", "a", "b", "value", "direction", "margin", "min_effect",
           "paper", "control", "metric", "unit", "note", "expand"}


# --- declaration -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Claim:
    """One declared claim (see the module docstring for the fields)."""

    id: str
    paper: str                      # paper key: vplr, selftrain, csst, duchdc, gsvnet
    item: str                       # table / figure id that tests it
    text: str                       # the paper's sentence, short
    kind: str                       # directional | null | control | check
    a: Any = None                   # arm A selector (value of the arm column, or {col: value})
    b: Any = None                   # arm B selector, or None (then `value`)
    value: float | None = None      # compare arm A with this number when b is None
    direction: int = 1              # the paper's sign of A - B
    margin: float | None = None     # equivalence margin of a null claim
    min_effect: float = 0.0         # directional/control: A - B must exceed this (paper's direction)
    paper_effect: float | None = None  # the paper's A - B (from paperlib/reference)
    control: str | None = None      # id of the control / check this claim depends on
    metric: str | None = None       # column tested (default: evaluate's `value`)
    unit: str | None = None         # pairing column (default: evaluate's `unit`, "seed")
    note: str | None = None

    def definition(self) -> dict[str, Any]:
        """The declaration as plain data (what the hash covers)."""
        return dataclasses.asdict(self)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.definition(), sort_keys=True, default=str)
                              .encode()).hexdigest()

    @property
    def arms_text(self) -> str:
        if self.kind == "check":
            return "structural check"
        sign = ">" if self.direction > 0 else "<"
        b = _arm_text(self.b) if self.b is not None else f"{self.value:g}"
        if self.kind == "null":
            return f"{_arm_text(self.a)} - {b} within ±{self.margin:g}"
        extra = f" + {self.min_effect:g}" if self.min_effect else ""
        return f"{_arm_text(self.a)} {sign} {b}{extra}"


def _arm_text(arm) -> str:
    if isinstance(arm, Mapping):
        return ", ".join(f"{k}={v}" for k, v in arm.items())
    return str(arm)


def _substitute(obj, name: str, val):
    token = "{" + name + "}"
    if isinstance(obj, str):
        return val if obj == token else obj.replace(token, str(val))
    if isinstance(obj, Mapping):
        return {k: _substitute(v, name, val) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, name, val) for v in obj]
    return obj


def _expand(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = [dict(entry)]
    for name, values in dict(entry.get("expand") or {}).items():
        entries = [_substitute({k: v for k, v in e.items() if k != "expand"}, name, v)
                   for e in entries for v in values]
    for e in entries:
        e.pop("expand", None)
    return entries


def _paper_effect(paper: str, spec, a, b, where: str) -> float | None:
    """The paper's A - B: a number, or ``{table, col[, by]}`` looked up in the reference CSV."""
    if spec is None or isinstance(spec, (int, float)):
        return None if spec is None else float(spec)
    from paperlib import reference

    if not isinstance(spec, Mapping) or "table" not in spec or "col" not in spec:
        raise ValueError(f"{where}: 'paper' must be a number or {{table = ..., col = ...}}, got {spec!r}")
    ref = reference.load(spec.get("paper", paper), spec["table"])

    def pick(arm) -> float:
        sel = arm if isinstance(arm, Mapping) else {spec.get("by", ref.columns[0]): arm}
        mask = pd.Series(True, index=ref.index)
        for col, val in sel.items():
            if col in ref.columns:
                mask &= ref[col].astype(str) == str(val)
        rows = ref[mask]
        if len(rows) != 1:
            raise ValueError(f"{where}: the paper's {spec['table']} has {len(rows)} rows for {arm!r}")
        return float(rows[spec["col"]].iloc[0])

    av = pick(a)
    return round(av - (pick(b) if b is not None else float(spec.get("value", 0.0))), 6)


def parse(paper: str, entries: Iterable[Mapping[str, Any]], source: str = "<declarations>") -> list[Claim]:
    """Claims from declaration tables (as read from TOML); raises ``ValueError`` naming the bad one."""
    out: list[Claim] = []
    for raw in entries:
        for e in _expand(raw):
            where = f"{source}: claim {e.get('id', '?')!r}"
            unknown = sorted(set(e) - _FIELDS)
            if unknown:
                raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
            for f in ("id", "item", "text", "kind"):
                if not e.get(f):
                    raise ValueError(f"{where}: missing {f!r}")
            kind = e["kind"]
            if kind not in KINDS:
                raise ValueError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
            if kind != "check":
                if e.get("a") is None:
                    raise ValueError(f"{where}: a {kind} claim needs arm 'a'")
                if e.get("b") is None and e.get("value") is None:
                    raise ValueError(f"{where}: give arm 'b' or a 'value' to compare 'a' with")
            if kind == "null" and not (isinstance(e.get("margin"), (int, float)) and e["margin"] > 0):
                raise ValueError(f"{where}: a null claim needs a positive equivalence 'margin'")
            if kind != "null" and e.get("margin") is not None:
                raise ValueError(f"{where}: 'margin' is for null claims (use 'min_effect' for a "
                                 "directional claim that needs a clear margin)")
            direction = int(e.get("direction", 1))
            if direction not in (1, -1):
                raise ValueError(f"{where}: direction must be 1 or -1, got {direction}")
            out.append(Claim(
                id=e["id"], paper=paper, item=e["item"], text=e["text"], kind=kind,
                a=e.get("a"), b=e.get("b"),
                value=None if e.get("value") is None else float(e["value"]),
                direction=direction,
                margin=None if e.get("margin") is None else float(e["margin"]),
                min_effect=float(e.get("min_effect", 0.0)),
                paper_effect=_paper_effect(paper, e.get("paper"), e.get("a"), e.get("b"), where),
                control=e.get("control"), metric=e.get("metric"), unit=e.get("unit"),
                note=e.get("note")))
    ids = [c.id for c in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{source}: duplicate claim id(s) {dup}")
    known = set(ids)
    for c in out:
        if c.control and c.control not in known:
            raise ValueError(f"{source}: claim {c.id!r} depends on unknown control {c.control!r}")
        if c.control and next(x for x in out if x.id == c.control).kind not in ("control", "check"):
            raise ValueError(f"{source}: claim {c.id!r} depends on {c.control!r}, which is not a control or check")
    return out


@lru_cache(maxsize=None)
def _load(paper: str) -> tuple[Claim, ...]:
    from paperlib.reference import check_paper

    path = DECLARATIONS / f"{check_paper(paper)}.toml"
    if not path.is_file():
        return ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from None
    return tuple(parse(paper, data.get("claim", []), source=str(path)))


def declared(paper: str, item: str | None = None, ids: Sequence[str] | None = None) -> list[Claim]:
    """The claims declared for ``paper`` (optionally one item's, or the given ``ids``, in order)."""
    claims = list(_load(paper))
    if ids is not None:
        by_id = {c.id: c for c in claims}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"no claim(s) {missing} declared for {paper}; declared: {sorted(by_id)}")
        return [by_id[i] for i in ids]
    if item is not None:
        claims = [c for c in claims if c.item == item]
        if not claims:
            raise KeyError(f"no claims declared for {paper}/{item} in {DECLARATIONS / (paper + '.toml')}")
    return claims


def definitions_sha256(claims: Iterable[Claim]) -> str:
    """One hash of the claim definitions a table used (recorded in its manifest)."""
    h = hashlib.sha256()
    for c in sorted(claims, key=lambda c: c.id):
        h.update(c.sha256().encode())
    return h.hexdigest()


# --- the tests -------------------------------------------------------------------------------
def _t():
    from scipy import stats  # scipy.stats.t: the t distribution's tails for the paired tests

    return stats.t


def _sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (t may be +-inf)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    return float(_t().sf(t, df))


@dataclasses.dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    se: float
    sd: float

    @classmethod
    def of(cls, diffs: Sequence[float]) -> "Stats":
        d = [float(x) for x in diffs]
        n = len(d)
        mean = sum(d) / n if n else math.nan
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else math.nan
        return cls(n, mean, sd / math.sqrt(n) if n > 1 else math.nan, sd)

    def p_greater(self, m: float = 0.0) -> float:
        """One-sided p of H1: mean > m."""
        if self.n < 2:
            return 1.0
        if self.se == 0:
            return 0.0 if self.mean > m else 1.0
        return _sf((self.mean - m) / self.se, self.n - 1)

    def p_less(self, m: float = 0.0) -> float:
        """One-sided p of H1: mean < m."""
        if self.n < 2:
            return 1.0
        if self.se == 0:
            return 0.0 if self.mean < m else 1.0
        return _sf((m - self.mean) / self.se, self.n - 1)

    def mde(self, alpha: float = ALPHA, power: float = POWER) -> float:
        """Minimum detectable effect (one-sided ``alpha``, ``power``) at this n and spread."""
        if self.n < 2 or math.isnan(self.se):
            return math.nan
        t = _t()
        return float((t.ppf(1 - alpha, self.n - 1) + t.ppf(power, self.n - 1)) * self.se)


def directional_verdict(s: Stats, direction: int, min_effect: float = 0.0, alpha: float = ALPHA) -> tuple[str, float]:
    """(verdict, p in the paper's direction) of a directional claim from paired differences."""
    if direction > 0:
        p_dir, p_opp = s.p_greater(min_effect), s.p_less(0.0)
    else:
        p_dir, p_opp = s.p_less(-min_effect), s.p_greater(0.0)
    if p_dir < alpha and direction * s.mean > min_effect:
        return "reproduced", p_dir
    if p_opp < alpha and direction * s.mean < 0:
        return "reversed", p_dir
    return "inconclusive", p_dir


def null_verdict(s: Stats, margin: float, alpha: float = ALPHA) -> tuple[str, float]:
    """(verdict, TOST p) of an equivalence claim |A - B| < margin from paired differences."""
    p_tost = max(s.p_greater(-margin), s.p_less(margin))
    if p_tost < alpha:
        return "reproduced", p_tost
    if min(s.p_greater(margin), s.p_less(-margin)) < alpha:  # significantly outside the band
        return "not reproduced", p_tost
    return "inconclusive", p_tost


# --- evaluation ------------------------------------------------------------------------------
@dataclasses.dataclass
class ClaimResult:
    """A claim with its evaluation: the record written into a table's manifest and the index."""

    claim: Claim
    verdict: str
    n: int = 0
    delta: float = math.nan        # mean of A - B over paired units
    se: float = math.nan
    p: float = math.nan            # one-sided p in the paper's direction (TOST p for null)
    mde: float = math.nan
    a_mean: float = math.nan
    b_mean: float = math.nan
    units: list = dataclasses.field(default_factory=list)
    diffs: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)   # "arm unit: why"
    control_status: str = ""       # "<id>: pass|fail" of the control this depends on
    detail: str = ""
    unit: str = ""                 # what the arms were paired by (seed, clip, ...)

    def record(self) -> dict[str, Any]:
        c = self.claim
        return {"paper": c.paper, "item": c.item, "claim_id": c.id, "text": c.text, "kind": c.kind,
                "arms": c.arms_text, "direction": c.direction if c.kind != "check" else None,
                "margin": c.margin, "min_effect": c.min_effect or None,
                "paper_effect": c.paper_effect,
                "ours_delta": _num(self.delta), "ours_se": _num(self.se), "n": self.n,
                "p": _num(self.p), "mde": _num(self.mde), "a_mean": _num(self.a_mean),
                "b_mean": _num(self.b_mean), "unit": self.unit or None, "units": list(self.units),
                "diffs": [_num(d) for d in self.diffs],
                "failures": list(self.failures), "verdict": self.verdict,
                "control": c.control, "control_status": self.control_status, "detail": self.detail,
                "note": c.note,
                "definition_sha256": c.sha256()}


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _select(df: pd.DataFrame, arm, arm_col: str | None, where: str) -> pd.DataFrame:
    if isinstance(arm, Mapping):
        sel = dict(arm)
    else:
        if arm_col is None:
            raise ValueError(f"{where}: arm {arm!r} is a plain value; pass arm=<column> to evaluate()")
        sel = {arm_col: arm}
    mask = pd.Series(True, index=df.index)
    for col, val in sel.items():
        if col not in df.columns:
            raise ValueError(f"{where}: arm column {col!r} is not in the data (columns {list(df.columns)})")
        mask &= df[col].astype(str) == str(val)
    rows = df[mask]
    if rows.empty:
        raise ValueError(f"{where}: no rows for arm {arm!r}")
    return rows


def _per_unit(rows: pd.DataFrame, metric: str, unit: str, where: str) -> tuple[dict, dict]:
    """{unit: value} of the healthy runs and {unit: why} of the failed ones."""
    if metric not in rows.columns:
        raise ValueError(f"{where}: metric column {metric!r} is not in the data")
    if unit not in rows.columns:
        rows = rows.assign(**{unit: 0})
    if rows[unit].duplicated().any():
        raise ValueError(f"{where}: several rows per {unit} for one arm (select the arm more narrowly)")
    ok, bad = {}, {}
    failed = rows["failed"] if "failed" in rows.columns else pd.Series(False, index=rows.index)
    for u, v, f in zip(rows[unit], rows[metric], failed):
        v = float(v)
        if bool(f) or not math.isfinite(v):
            bad[u] = "failed run" if bool(f) else f"non-finite {metric} ({v})"
        else:
            ok[u] = v
    return ok, bad


def _evaluate_one(c: Claim, df: pd.DataFrame | None, arm_col, metric_default, unit_default,
                  checks: Mapping[str, Any]) -> ClaimResult:
    where = f"claim {c.paper}/{c.id}"
    if c.kind == "check":
        if c.id not in checks:
            raise ValueError(f"{where}: a check needs its result: evaluate(..., checks={{{c.id!r}: (bool, detail)}})")
        res = checks[c.id]
        passed, detail = (res if isinstance(res, tuple) else (res, ""))
        return ClaimResult(c, "pass" if bool(passed) else "fail", detail=str(detail))
    if df is None:
        raise ValueError(f"{where}: no data given")
    metric = c.metric or metric_default
    unit = c.unit or unit_default
    a_ok, a_bad = _per_unit(_select(df, c.a, arm_col, where), metric, unit, where)
    failures = [f"{_arm_text(c.a)} {unit} {u}: {why}" for u, why in a_bad.items()]
    if c.b is not None:
        b_ok, b_bad = _per_unit(_select(df, c.b, arm_col, where), metric, unit, where)
        failures += [f"{_arm_text(c.b)} {unit} {u}: {why}" for u, why in b_bad.items()]
        units = [u for u in a_ok if u in b_ok]
        pairs = [(a_ok[u], b_ok[u]) for u in units]
    else:
        units = list(a_ok)
        pairs = [(a_ok[u], c.value) for u in units]
    diffs = [a - b for a, b in pairs]
    s = Stats.of(diffs)
    if c.kind == "null":
        verdict, p = null_verdict(s, c.margin)
    else:
        verdict, p = directional_verdict(s, c.direction, c.min_effect)
        if c.kind == "control":
            verdict = "pass" if verdict == "reproduced" else "fail"
    detail = "" if s.n >= 2 else f"only {s.n} paired {unit}(s): no test"
    return ClaimResult(c, verdict, s.n, s.mean, s.se, p, s.mde(),
                       a_mean=(sum(a for a, _ in pairs) / len(pairs)) if pairs else math.nan,
                       b_mean=(sum(b for _, b in pairs) / len(pairs)) if pairs else math.nan,
                       units=[_jsonable_unit(u) for u in units], diffs=diffs, failures=failures,
                       detail=detail, unit=unit)


def _jsonable_unit(u):
    return u.item() if hasattr(u, "item") else u


def evaluate(claims: Sequence[Claim], data: pd.DataFrame | None = None, *, arm: str | None = None,
             value: str = "mIoU", unit: str = "seed", checks: Mapping[str, Any] | None = None,
             given: Sequence[ClaimResult] = ()) -> list[ClaimResult]:
    """Test ``claims`` on ``data`` (one row per arm and unit; see the module docstring).

    ``arm`` is the column whose values name the arms (claims may instead select rows with
    ``{column: value}`` tables); ``value`` the metric column (a claim's ``metric`` overrides it);
    ``unit`` the pairing column (default ``seed``). A row with ``failed`` true or a non-finite
    metric is a failed run. ``checks`` gives each check claim's result as ``bool`` or
    ``(bool, detail)``. Controls are evaluated first; a claim whose control failed (or was not
    evaluated, here or in ``given``) is *not testable*. Returns the results in ``claims`` order.
    """
    checks = dict(checks or {})
    done = {r.claim.id: r for r in given}
    order = sorted(claims, key=lambda c: c.kind not in ("control", "check"))
    results: dict[str, ClaimResult] = {}
    for c in order:
        gate = None
        if c.control:
            gate = results.get(c.control) or done.get(c.control)
            if gate is None:
                raise ValueError(f"claim {c.paper}/{c.id} depends on control {c.control!r}, which "
                                 "was not evaluated (evaluate it in the same call or pass given=)")
        if gate is not None and gate.verdict != "pass":
            r = ClaimResult(c, "not testable", control_status=f"{gate.claim.id}: {gate.verdict}",
                            detail=f"control {gate.claim.id!r} ({gate.claim.text}) did not pass"
                                   + (f": Δ {gate.delta:+.2f} ± {gate.se:.2f}, n {gate.n}" if gate.n else
                                      (f": {gate.detail}" if gate.detail else "")))
            if c.kind != "check" and data is not None:  # still show the numbers when they exist
                try:
                    measured = _evaluate_one(c, data, arm, value, unit, checks)
                    r = dataclasses.replace(measured, verdict="not testable",
                                            control_status=r.control_status, detail=r.detail)
                except ValueError:
                    pass
        else:
            r = _evaluate_one(c, data, arm, value, unit, checks)
            if gate is not None:
                r.control_status = f"{gate.claim.id}: {gate.verdict}"
        results[c.id] = r
    return [results[c.id] for c in claims]


# --- rendering -------------------------------------------------------------------------------
def _f(x, fmt="+.2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def summary_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """One row per claim: what a notebook shows and the table's ``## Claims`` section renders."""
    rows = []
    for r in results:
        c = r.claim
        if c.kind == "check":
            continue
        ours = (f"{_f(r.delta)} ± {_f(r.se, '.2f')} (n {r.n})" if r.n >= 2 else
                f"{_f(r.delta)} (n {r.n})")
        rows.append({"claim": f"`{c.id}`: {c.text}", "kind": c.kind, "test": c.arms_text,
                     "paper Δ": _f(c.paper_effect), "ours Δ ± SE": ours, "MDE": _f(r.mde, ".2f"),
                     "p": _f(r.p, ".3f"), "verdict": f"**{r.verdict}**",
                     "note": "; ".join(x for x in [c.note, r.detail, *r.failures] if x)})
    return pd.DataFrame(rows)


def checks_frame(results: Sequence[ClaimResult]) -> pd.DataFrame:
    return pd.DataFrame([{"check": f"`{r.claim.id}`: {r.claim.text}", "result": f"**{r.verdict}**",
                          "detail": "; ".join(x for x in [r.detail, r.claim.note] if x)}
                         for r in results if r.claim.kind == "check"])


def markdown(results: Sequence[ClaimResult] | str) -> str:
    """The ``## Claims`` section of a table (``results`` a string: the table only describes)."""
    lines = ["## Claims", ""]
    if isinstance(results, str):
        return "\n".join(lines + [f"This table only describes: {results}. It tests no paper claim.", ""])
    unit = " / ".join(dict.fromkeys(r.unit for r in results if r.unit)) or "seed"
    lines += ["Verdicts from `paperlib.claims`, paired by " + unit + ": a directional claim is "
              "*reproduced* when the one-sided paired t-test at 5% agrees with the paper's direction, "
              "*reversed* when it is significant the other way, else *inconclusive*; a null claim needs "
              "two one-sided tests against its declared margin; a claim whose control failed is "
              "*not testable*. MDE: the smallest effect these seeds could detect (80% power).", ""]
    claims_df = summary_frame(results)
    if len(claims_df):
        lines += [claims_df.to_markdown(index=False, disable_numparse=True), ""]
    checks = checks_frame(results)
    if len(checks):
        lines += ["Sanity checks (structural; not reproductions):", "",
                  checks.to_markdown(index=False, disable_numparse=True), ""]
    counts = pd.Series([r.verdict for r in results if r.claim.kind != "check"]).value_counts()
    if len(counts):
        lines += ["Counts: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".", ""]
    sha = definitions_sha256(r.claim for r in results)
    lines += [f"Claim definitions sha256 `{sha[:16]}` (`paperlib/reference/claims/`).", ""]
    return "\n".join(lines)


def show(results: Sequence[ClaimResult]) -> pd.DataFrame:
    """Print every verdict (a notebook's claims cell) and return the summary frame."""
    df = summary_frame(results)
    for _, row in df.iterrows():
        print(f"{row['verdict'].strip('*'):>14}  {row['claim'].replace('`', '')}  "
              f"[{row['test']}; ours {row['ours Δ ± SE']}, paper {row['paper Δ']}]"
              + (f"  ({row['note']})" if row["note"] else ""))
    for r in results:
        if r.claim.kind == "check":
            print(f"{'check ' + r.verdict:>14}  {r.claim.id}: {r.claim.text}"
                  + (f" ({r.detail})" if r.detail else ""))
    return df
