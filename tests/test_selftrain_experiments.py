"""The self-training experiments layer (issue #18): student arms, the late-gain plateau measure,
the calibration's checks, and one smoke-size student run through the cache."""
import pandas as pd
import pytest

from paperlib.selftrain import experiments as X


@pytest.mark.parametrize("name", ["duplicated 1:4", "oracle 1:4", "hard 1:4 CS", "soft 3:40 [same+other]",
                                  "hard 1:1 [other] CS", "hard 1:7 PT", "hard 1:7 L3", "soft 1:7 L2 CS",
                                  "hard 1:4 FT", "mr 1:4 CS", "online 1:4"])
def test_arm_names_round_trip(name):
    assert X.Arm.parse(name).name == name


@pytest.mark.parametrize("bad", ["", "teacher 1:4", "hard 1-4", "hard 1:4 [moon]", "oracle 1:4 [same]",
                                 "duplicated 1:4 L2", "oracle 1:4 L2", "duplicated 1:4 PT", "hard 1:7 PT L2",
                                 "online 1:4 CS", "hard 1:4 L2 FT"])
def test_bad_arm_names_are_refused_with_the_name(bad):
    with pytest.raises(ValueError, match="student arm"):
        X.Arm.parse(bad)


def test_late_gain_and_plateau_checks():
    rows = [{"arm": "duplicated 1:4", "seed": s, "mIoU": 30.0, "curve": [[100, 20.0], [200, 28.0], [300, 29.0 + s]]}
            for s in (0, 1)]
    df = X.student_frame(rows)
    assert list(df["late gain"]) == [1.0, 2.0]  # (end) - (first point at or after 2/3 of the steps)
    assert X.teacher_late_gain({"curve": [[10, 1.0], [20, 5.0], [30, 5.5]]}) == pytest.approx(0.5)
    checks = X.plateau_checks({"curve": [[10, 1.0], [20, 5.0], [30, 5.5]]}, df)
    assert checks == {"cal_teacher_plateau": True, "cal_students_plateau": False}


def test_smoke_student_runs_are_cached_and_paired(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    rows = X.run_students(X.SMOKE_REGIME, ["duplicated 1:4", "hard 1:4"], [0], progress=False)
    assert [r["arm"] for r in rows] == ["duplicated 1:4", "hard 1:4"]
    assert all(0 <= r["mIoU"] <= 100 and 0 <= r["fit"] <= 100 and len(r["curve"]) == X.SMOKE_REGIME.curve_points
               for r in rows)
    frame = X.student_frame(rows)  # the duplicated-real students' fit becomes the capacity control's arm
    own = frame[frame["arm"] == X.OWN_FRAMES]
    assert list(own["mIoU"]) == [rows[0]["fit"]] and len(frame) == 3
    again = X.run_student(X.SMOKE_REGIME, "hard 1:4", 0)
    assert again["mIoU"] == rows[1]["mIoU"]  # from the cache: the same run, not a retrain
    q = X.pseudo_quality(X.SMOKE_REGIME, ["same"])
    assert isinstance(q, pd.DataFrame) and 0 <= float(q["pseudo-label mIoU"].iloc[0]) <= 100


def test_the_rest_of_the_labelled_world_is_a_pool_of_new_frames(tmp_path, monkeypatch):
    import dataclasses
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    regime = dataclasses.replace(X.SMOKE_REGIME, same_pool="rest")
    images, truth = X.pool(regime, "same")
    labelled = {s.name for s in X.labelled_sets(regime)[0].samples}
    assert len(images) == regime.clips - regime.labelled and not labelled & {s.name for s in truth.samples}
    assert all(s.label is None for s in images.samples) and all(s.label is not None for s in truth.samples)
    with pytest.raises(ValueError, match="same_pool"):
        X.pool(dataclasses.replace(X.SMOKE_REGIME, same_pool="moon"), "other")


def test_csst_table1_parts_cover_every_ratio_and_each_keeps_its_oracle_control():
    import pandas as pd
    parts = X.CSST_TABLE1_RATIOS
    assert set().union(*parts.values()) == set(X.CSST_RATIOS)
    small, big = (set(X.csst_table1_arms(r)) for r in parts.values())
    assert small & big == {"duplicated 1:4", "duplicated 1:4 CS", "oracle 1:4", "hard 1:1 [same+other]",
                           "hard 1:1 [same+other] CS"}  # shared through the cache
    runs = pd.DataFrame([{"arm": a, "seed": s, "mIoU": float(i + s), "thin mean": 0.0}
                         for i, a in enumerate(sorted(small)) for s in (0, 1)])
    table = X.csst_table1_frame(runs, parts["table1_centroid"])
    assert not (table["real:extra"].isin(["3:40"])).any()
    # the oracle's baseline (duplicated real at the oracle's share) is there even without that ratio's students
    base = table[(table["labels"] == "real, duplicated") & (table["real:extra"] == X.ORACLE_RATIO)]
    assert list(base["sampler"].unique()) == ["random"] and len(base) == 2
    ref = X.csst_table1_reference(table)
    assert set(ref["real:extra"]) <= {"1:0", "1:1", "1:2", "1:4"} and len(ref) > 0
    assert not ((ref["labels"] == "real + pseudo") & (ref["real:extra"] == "1:4")).any()


def test_loops_relabel_with_the_previous_student_and_pretraining_splits_the_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    r = X.SMOKE_REGIME
    rows = X.run_students(r, ["hard 1:7 L2", "hard 1:7 PT", "soft 1:7"], [0, 1], progress=False)
    assert [x["arm"] for x in rows] == ["hard 1:7 L2", "hard 1:7 PT", "soft 1:7"] * 2
    # the second loop's labels are its first-round student's (per seed), not the teacher's
    rounds = X.loop_pseudo_quality(r, "hard 1:7 L2", [0, 1]).set_index(["round", "seed"])["pseudo-label mIoU"]
    assert rounds[(1, 0)] == rounds[(1, 1)]  # one teacher
    first = X._student(r, "hard 1:7", 0)[0]
    assert X.pseudo_dir(r, "same", "hard", first) != X.pseudo_dir(r, "same", "hard")
    # pre-training then fine-tuning: its held-out curve starts after the pseudo-label stage
    pre = min(r.steps - 1, max(1, round(r.steps * 7 / 8)))
    pt = next(x for x in rows if x["arm"] == "hard 1:7 PT")
    assert min(step for step, _ in pt["curve"]) > pre and max(step for step, _ in pt["curve"]) == r.steps


def test_table3_students_keep_the_regimes_run_names_and_map_to_the_long_table():
    r = X.CPU_REGIME
    own, other = X.table3_arms(r, r.model), X.table3_arms(r, "fastscnn", separate=False)
    assert own == tuple(X.TABLE3_ROWS)  # the regime's student: the runs other tables share
    assert other == ("duplicated 1:4 @fastscnn", "oracle 1:4 @fastscnn", "hard 1:4 CS @fastscnn")
    runs = pd.DataFrame([{"arm": a, "seed": 0, "mIoU": 1.0, "thin mean": 0.0} for a in own + other]
                        + [{"arm": X.OWN_FRAMES, "seed": 0, "mIoU": 9.0, "thin mean": 0.0}])
    t = X.table3_frame(runs, r)
    assert len(t) == 7 and set(t["student"]) == {r.model, "fastscnn"}
    row = t[(t["student"] == "fastscnn") & (t["labels"] == "real + pseudo")]
    assert list(row["sampler"]) == ["centroid"]
    separated, recipe = X.table3_students("cpu", "csst")
    assert "fastscnn" in separated and "bisenet_resnet18" in recipe and "pspnet_resnet101" not in recipe
    assert "pspnet_resnet101" in X.table3_students("gpu", "selftrain")[1]
    # CSST's real-time students are two notebooks' tables, each with at most 12 new cpu runs
    icnet = X.table3_students("cpu", "csst", "table3_students_icnet")[1]
    assert icnet == ["icnet_resnet50"] and "icnet_resnet50" not in recipe
    with pytest.raises(ValueError, match="table3_students_icnet"):
        X.table3_students("cpu", "selftrain", "table3_students_icnet")
