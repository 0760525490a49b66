# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
# paperlib: writes tables/selftrain/table1_pseudo

# %% [markdown]
# # Self-training Table 1: teacher → pseudo labels → student, against duplicated real labels
#
# **The method** (self-training Sec. 3.1, CSST Sec. 3.1). A *teacher* is trained on the real
# labels. It then predicts every image of large *unlabelled pools* -- in the papers the 20K
# Cityscapes coarse images (same domain) and the 20K Mapillary images (other domain), their labels
# ignored -- and its argmax becomes a *hard pseudo label* (CSST Eq. 2). A *student* is trained from
# scratch on real + pseudo labels, with a controlled number of each per epoch
# (`paperlib.selftrain.mix_real_pseudo`).
#
# **Centroid sampling** (CSST Sec. 3.2). A biased teacher amplifies class imbalance in its pseudo
# labels; instead of random crops, every training crop is cut around the centroid of a connected
# region of some class, classes drawn uniformly, separately for the real and the pseudo part of
# the epoch (`sampler="centroid"`, `paperlib.data.samplers.CentroidSampler`).
#
# **What the paper reports.** Self-training Table 1: teacher 78.1 → student with coarse* pseudo
# labels 79.0 → with coarse* + Mapillary* 79.3 (1.5K real + 1.5K pseudo per epoch, the teacher's
# 3K epoch: the same steps). CSST Table 1 (pseudo sets of 1x to 13x the real set, with and without
# centroid sampling, against duplicated real labels) is `selftrain_table1_centroid` and
# `selftrain_table1_centroid_more`; the three notebooks share the duplicated-real, oracle and
# 1:1 students through the cache.
#
# **How it is tested here** (`paperlib.selftrain.experiments`, issue #18), at the regime that
# `selftrain_calibration` admits: a labelled set of world frames, a teacher of more capacity
# trained on it to a plateau (a cached role shared by every self-training notebook), pools of 8x
# as many *new* frames (same domain = coarse*, another domain = Mapillary*), and students of one
# architecture that all train **the same steps** with the same initialisation and sample stream
# per seed. The mix sets what those steps are spent on, never how many there are, so the
# duplicated-real student (the labelled frames alone) is the baseline of every pseudo-label claim,
# and it is also the papers' "teacher" row: the supervised model of the students' architecture.
# The **oracle** student (the coarse* pool with its *true* labels) is the control: pseudo labels
# are at best the true labels, and if the oracle does not beat duplicated-real by more than a
# point, the pseudo-label claims are *not testable*. Beside mIoU: the pseudo labels' own accuracy
# against the pools' truth, and the thin classes (pole, traffic light, traffic sign).

# %% tags=["parameters"]
profile = "smoke"
seeds = None    # None: the profile's seeds (smoke [0, 1], cpu/gpu [0, 1, 2, 3])
jobs = None     # None: processes of one thread each (smoke 1, cpu/gpu 2); does not change results

# %%
import dataclasses
import time

from paperlib import claims
from paperlib.repro import check_params, int_list_or_none, positive_or_none, write_table
from paperlib.selftrain import experiments as X

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "jobs": positive_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
REGIME, SEEDS, JOBS = X.profile_setup(profile, seeds, jobs)
ARMS = list(X.ST_TABLE1_ROWS.values())
params.update(seeds=SEEDS, regime=dataclasses.asdict(REGIME), arms=ARMS)
print(REGIME.describe())
print(f"students {ARMS} x seeds {SEEDS} ({len(ARMS) * len(SEEDS)} trainings, {JOBS} process(es))")

# %% [markdown]
# ## The teacher and its pseudo labels
# The cached teacher (its curve: `selftrain_calibration`) and its hard labels on both pools, scored
# against the pools' true labels (no student involved).

# %%
_, T_INFO = X.teacher(REGIME, progress=profile != "smoke")
QUALITY = X.pseudo_quality(REGIME)
print(f"teacher {REGIME.teacher_model}: held-out mIoU {T_INFO['mIoU']:.1f}")
QUALITY[["pool", "domain", "frames", "pseudo-label mIoU", "pixel accuracy", "thin mean"]].round(1)

# %% [markdown]
# ## The students
# Every arm with every seed (cached: the duplicated-real and oracle runs are the calibration's).

# %%
runs = X.student_frame(X.run_students(REGIME, ARMS, SEEDS, jobs=JOBS))
ST1 = X.st_table1_frame(runs)
ST1.groupby("row", sort=False)[["mIoU", "thin mean"]].agg(["mean", "sem"]).round(2)

# %% [markdown]
# ## Claims
# Declared before this run in `paperlib/reference/claims/selftrain.toml` (`table1_pseudo`);
# verdicts from `paperlib.claims`, paired by seed. The pseudo-label claims are gated on the oracle
# control (the same runs as the calibration's).

# %%
CLAIMS_ST = claims.evaluate(claims.declared("selftrain", "table1_pseudo"), ST1, arm="row", value="mIoU")
claims.show(CLAIMS_ST)

# %%
write_table(ST1.drop(columns="arm"), "selftrain", "table1_pseudo", profile=profile, params=params, seeds=SEEDS,
            started=STARTED, reference=True, claims=CLAIMS_ST, by=["row"], value_cols=["mIoU", "thin mean"],
            notes=X.students_note(REGIME, T_INFO, QUALITY) + " Rows -> student arms: "
                  + "; ".join(f"{r}: {a}" for r, a in X.ST_TABLE1_ROWS.items())
                  + ". 'Teacher: fine' is the supervised model of the students' architecture at the same steps.")
print(f"done in {time.time() - STARTED:.0f} s")
