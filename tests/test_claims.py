"""The claims layer: verdict rules on hand-made paired data, declarations, rendering, the report."""
import json
import math

import pandas as pd
import pytest
from scipy import stats

from paperlib import claims as C
from paperlib import report


def claim(kind="directional", **kw):
    base = dict(id="x", paper="vplr", item="t", text="A beats B", kind=kind, a="A", b="B")
    base.update(kw)
    return C.Claim(**base)


def data(a, b, seeds=None, arm="method", metric="mIoU"):
    seeds = seeds or list(range(len(a)))
    return pd.DataFrame([{arm: "A", "seed": s, metric: v} for s, v in zip(seeds, a)]
                        + [{arm: "B", "seed": s, metric: v} for s, v in zip(seeds, b)])


def verdict(c, df, **kw):
    return C.evaluate([c], df, arm="method", **kw)[0]


# --- directional ---------------------------------------------------------------------------------
def test_clear_gain_is_reproduced_and_matches_scipy():
    df = data([21.0, 22.1, 20.9, 21.6], [20.0, 20.9, 20.1, 20.3])
    r = verdict(claim(), df)
    assert r.verdict == "reproduced"
    d = [1.0, 1.2, 0.8, 1.3]
    assert r.delta == pytest.approx(sum(d) / 4)
    assert r.p == pytest.approx(stats.ttest_1samp(d, 0, alternative="greater").pvalue)
    assert r.n == 4 and r.mde > 0


def test_reversed_effect_is_never_reproduced():
    df = data([20.0, 20.9, 20.1, 20.3], [21.0, 22.1, 20.9, 21.6])
    r = verdict(claim(), df)
    assert r.verdict == "reversed"
    r2 = verdict(claim(direction=-1), df)  # the paper says A < B: now it is reproduced
    assert r2.verdict == "reproduced"


def test_pairing_matters_unpaired_spread_would_hide_it():
    # large seed-to-seed spread, tiny but consistent paired gain
    a = [10.3, 20.3, 30.3, 40.3]
    b = [10.0, 20.0, 30.0, 40.0]
    assert verdict(claim(), data(a, b)).verdict == "reproduced"


def test_tie_is_never_a_gain():
    df = data([20.0, 21.0, 22.0], [20.0, 21.0, 22.0])
    r = verdict(claim(), df)
    assert r.verdict == "inconclusive" and r.delta == 0
    noisy_tie = data([20.0, 21.5, 22.0, 19.0], [20.5, 21.0, 21.5, 19.5])
    assert verdict(claim(), noisy_tie).verdict == "inconclusive"


def test_small_positive_within_noise_is_inconclusive():
    r = verdict(claim(), data([20.1, 19.0, 21.2], [20.0, 20.0, 20.0]))
    assert r.verdict == "inconclusive"


def test_one_seed_is_never_significant():
    r = verdict(claim(), data([25.0], [20.0]))
    assert r.verdict == "inconclusive" and "only 1" in r.detail


def test_min_effect_requires_a_clear_margin():
    df = data([21.0, 21.1, 20.9, 21.0], [20.0, 20.0, 20.0, 20.0])
    assert verdict(claim(min_effect=0.5), df).verdict == "reproduced"
    assert verdict(claim(min_effect=2.0), df).verdict == "inconclusive"


def test_compare_with_a_value():
    df = pd.DataFrame({"method": ["A"] * 4, "seed": range(4), "mIoU": [0.5, 0.7, 0.6, 0.4]})
    c = claim(b=None, value=0.0)
    assert verdict(c, df).verdict == "reproduced"
    assert verdict(claim(b=None, value=1.0), df).verdict == "reversed"


def test_dict_arms_select_on_several_columns():
    df = pd.DataFrame([{"m": m, "k": k, "seed": s, "mIoU": 20 + (k if m == "JP" else 0) + 0.1 * s}
                       for m in ("JP", "LP") for k in (1, 3) for s in range(3)])
    c = claim(a={"m": "JP", "k": 3}, b={"m": "LP", "k": 3})
    r = C.evaluate([c], df)[0]
    assert r.verdict == "reproduced" and r.delta == pytest.approx(3.0)


# --- failed runs ---------------------------------------------------------------------------------
def test_failed_run_is_reported_not_averaged():
    df = data([21.0, 22.0, float("nan"), 21.5], [20.0, 21.0, 20.0, 20.4])
    r = verdict(claim(), df)
    assert r.n == 3 and 2 not in r.units
    assert any("non-finite" in f for f in r.failures)
    df2 = data([21.0, 22.0, 3.0, 21.5], [20.0, 21.0, 20.0, 20.4]).assign(failed=[False, False, True, False] + [False] * 4)
    r2 = verdict(claim(), df2)
    assert r2.n == 3 and any("failed run" in f for f in r2.failures)
    assert r2.delta == pytest.approx((1.0 + 1.0 + 1.1) / 3)


# --- null ----------------------------------------------------------------------------------------
def test_null_claim_with_effect_larger_than_margin_fails():
    df = data([21.0, 21.1, 20.9, 21.05], [20.0, 20.0, 20.0, 20.0])
    r = verdict(claim("null", margin=0.5), df)
    assert r.verdict == "not reproduced"


def test_null_claim_equivalent_within_margin():
    df = data([20.02, 19.98, 20.01, 20.0, 19.99], [20.0, 20.0, 20.0, 20.0, 20.0])
    r = verdict(claim("null", margin=0.5), df)
    assert r.verdict == "reproduced"
    p1 = stats.ttest_1samp(r.diffs, -0.5, alternative="greater").pvalue
    p2 = stats.ttest_1samp(r.diffs, 0.5, alternative="less").pvalue
    assert r.p == pytest.approx(max(p1, p2))


def test_null_claim_noisy_is_inconclusive_not_a_pass():
    # a one-sided "not worse" would pass this (mean -0.1); equivalence cannot
    df = data([19.0, 21.0, 18.5, 21.1], [20.0, 20.0, 20.0, 20.0])
    assert verdict(claim("null", margin=0.5), df).verdict == "inconclusive"


def test_null_claim_clear_loss_is_not_reproduced():
    df = data([18.0, 18.1, 17.9, 18.0], [20.0, 20.0, 20.0, 20.0])
    assert verdict(claim("null", margin=0.5), df).verdict == "not reproduced"


# --- controls and checks -----------------------------------------------------------------------
def test_failed_control_makes_dependants_not_testable():
    ctrl = claim("control", id="oracle", a="Oracle", b="B", text="oracle labels beat the baseline")
    dep = claim(id="dep", control="oracle")
    df = pd.concat([data([21.0, 21.2, 20.9], [20.0, 20.1, 19.8]),
                    pd.DataFrame({"method": "Oracle", "seed": range(3), "mIoU": [20.0, 20.1, 19.8]})])
    rc, rd = C.evaluate([ctrl, dep], df, arm="method")
    assert rc.verdict == "fail"
    assert rd.verdict == "not testable" and "oracle" in rd.detail and rd.control_status == "oracle: fail"
    assert rd.delta == pytest.approx(1.0667, abs=1e-3)  # the numbers are still shown


def test_passing_control_lets_dependants_be_tested():
    ctrl = claim("control", id="oracle", a="Oracle", b="B", text="oracle labels beat the baseline")
    dep = claim(id="dep", control="oracle")
    df = pd.concat([data([21.0, 21.2, 20.9], [20.0, 20.1, 19.8]),
                    pd.DataFrame({"method": "Oracle", "seed": range(3), "mIoU": [25.0, 25.3, 24.8]})])
    rd = C.evaluate([dep, ctrl], df, arm="method")[0]  # order of declaration does not matter
    assert rd.verdict == "reproduced" and rd.control_status == "oracle: pass"


def test_failed_check_gates_and_checks_are_pass_fail():
    chk = claim("check", id="fits", a=None, b=None, text="feature map holds the rate")
    dep = claim(id="dep", control="fits")
    df = data([21.0, 21.2, 20.9], [20.0, 20.1, 19.8])
    rc, rd = C.evaluate([chk, dep], df, arm="method", checks={"fits": (False, "8x8 map, rate 12")})
    assert rc.verdict == "fail" and rd.verdict == "not testable"
    with pytest.raises(ValueError, match="needs its result"):
        C.evaluate([chk], df, arm="method")


def test_missing_control_is_an_error():
    with pytest.raises(ValueError, match="was not evaluated"):
        C.evaluate([claim(control="nowhere")], data([1.0, 2.0], [0.0, 1.0]), arm="method")


# --- declarations ------------------------------------------------------------------------------
def test_parse_expands_and_validates():
    entries = [{"id": "jp_gt_lp_k{k}", "item": "table2", "text": "JP > LP at k={k}", "kind": "directional",
                "a": {"method": "JP", "k": "{k}"}, "b": {"method": "LP", "k": "{k}"}, "expand": {"k": [1, 3]}}]
    out = C.parse("vplr", entries)
    assert [c.id for c in out] == ["jp_gt_lp_k1", "jp_gt_lp_k3"]
    assert out[1].a == {"method": "JP", "k": 3}
    with pytest.raises(ValueError, match="margin"):
        C.parse("vplr", [{"id": "n", "item": "t", "text": "no gain", "kind": "null", "a": "A", "b": "B"}])
    with pytest.raises(ValueError, match="unknown field"):
        C.parse("vplr", [{"id": "n", "item": "t", "text": "x", "kind": "directional", "a": "A", "b": "B", "sign": 1}])
    with pytest.raises(ValueError, match="duplicate"):
        C.parse("vplr", [{"id": "n", "item": "t", "text": "x", "kind": "directional", "a": "A", "b": "B"}] * 2)
    with pytest.raises(ValueError, match="unknown control"):
        C.parse("vplr", [{"id": "n", "item": "t", "text": "x", "kind": "directional", "a": "A", "b": "B",
                          "control": "zz"}])


def test_every_declared_claim_loads_with_its_paper_effect():
    for paper in report.PAPER_TITLES:
        for c in C.declared(paper):
            assert c.kind in C.KINDS
            assert c.paper_effect is None or math.isfinite(c.paper_effect)


def test_definition_hash_changes_with_the_definition():
    c = claim()
    assert C.definitions_sha256([c]) != C.definitions_sha256([claim(direction=-1)])
    assert C.definitions_sha256([c]) == C.definitions_sha256([claim()])


# --- tables and the report ---------------------------------------------------------------------
def test_write_table_renders_claims_and_report_indexes_them(tmp_path):
    from paperlib.repro import write_table

    df = data([21.0, 22.1, 20.9, 21.6], [20.0, 20.9, 20.1, 20.3])
    res = C.evaluate([claim(), claim("null", id="eq", margin=0.1)], df, arm="method")
    with pytest.raises(ValueError, match="claims="):
        write_table(df, "vplr", "t", profile="cpu", root=tmp_path)
    paths = write_table(df, "vplr", "t", profile="cpu", root=tmp_path, claims=res)
    md = paths["md"].read_text()
    assert "## Claims" in md and "**reproduced**" in md and "**not reproduced**" in md
    man = json.loads(paths["json"].read_text())
    assert [r["claim_id"] for r in man["claims"]] == ["x", "eq"] and man["claims_sha256"]
    write_table(df, "duchdc", "d", profile="cpu", root=tmp_path, claims="per-class statistics")
    assert "only describes" in (tmp_path / "tables/duchdc/d.cpu.md").read_text()
    out = report.write_report(tmp_path)
    index = pd.read_csv(out["index"])
    for col in ["paper", "item", "claim_id", "kind", "direction", "margin", "ours_delta", "ours_se",
                "n", "verdict", "control", "table", "commit", "profile"]:
        assert col in index.columns
    row = index.set_index("claim_id").loc["x"]
    t = row.ours_delta / row.ours_se
    assert row.verdict == "reproduced" and t > stats.t.ppf(0.95, row.n - 1)
    text = out["report"].read_text()
    assert "## vplr" in text and "What reproduced" in text and "only describe" in text
    assert "**Not done:** Table 5 (KITTI test set)" in text
    assert f"{sum(len(v) for v in report.NOT_DONE.values())} paper table(s) not done" in text
    before = out["index"].read_bytes(), out["report"].read_bytes()
    report.write_report(tmp_path)
    assert (out["index"].read_bytes(), out["report"].read_bytes()) == before  # deterministic


def test_checks_without_arms_render_and_notes_are_shown(tmp_path):
    from paperlib.repro import write_table

    chk = claim("check", id="fits", a=None, b=None, text="feature map holds the rate", note="8x8 at 64 px")
    dep = claim(id="dep", note="confounded: 3x the labelled pixels")
    res = C.evaluate([chk, dep], data([21.0, 21.2, 20.9], [20.0, 20.1, 19.8]), arm="method",
                     checks={"fits": True})
    md = C.markdown(res)
    assert "confounded: 3x the labelled pixels" in md and "8x8 at 64 px" in md
    paths = write_table(data([1.0, 2.0], [0.0, 1.0]), "vplr", "t", profile="cpu", root=tmp_path, claims=res)
    man = json.loads(paths["json"].read_text())
    assert man["claims"][0]["arms"] == "structural check" and man["claims"][1]["note"].startswith("confounded")


def test_the_pairing_unit_is_recorded_and_rendered():
    df = data([0.9, 0.8, 0.95], [0.7, 0.6, 0.8]).rename(columns={"seed": "clip"})
    res = C.evaluate([claim()], df, arm="method", unit="clip")
    assert res[0].unit == "clip" and res[0].record()["unit"] == "clip"
    assert "paired by clip" in C.markdown(res)


def test_committed_tables_use_the_current_claim_definitions():
    """A claim's definition changed after its table was made means that table must be rerun."""
    from paperlib.repro import REPO_ROOT

    stale = []
    for path in sorted((REPO_ROOT / "tables").glob("*/*.json")):
        man = json.loads(path.read_text())
        if man.get("kind") != "table":
            continue
        for rec in man.get("claims") or []:
            current = C.declared(rec["paper"], ids=[rec["claim_id"]])[0]
            if current.sha256() != rec["definition_sha256"]:
                stale.append(f"{path.name}: {rec['claim_id']}")
    assert stale == [], f"claim definitions changed since these tables were made (rerun them): {stale}"
