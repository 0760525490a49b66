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
# paperlib: writes tables/selftrain/table1_pseudo, tables/csst/table1_centroid, figures/csst/table1_centroid

# %% [markdown]
# # Self-training Table 1 and CSST Table 1: teacher → pseudo labels → student, centroid sampling, duplicated real labels
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
# **What the papers report.** Self-training Table 1: teacher 78.1 → student with coarse* pseudo
# labels 79.0 → with coarse* + Mapillary* 79.3 (1.5K real + 1.5K pseudo per epoch, the teacher's
# 3K epoch: the same steps). CSST Table 1a: 3K real + 3K / 6K / 12K / 40K pseudo per epoch, 78.6 …
# 80.2 with and 78.6 … 78.8 without centroid sampling (which also lifts the teacher 78.1 → 78.8);
# Table 1b: duplicated real labels at the same epoch lengths saturate around 79.1–79.3.
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

import matplotlib.pyplot as plt
import numpy as np

from paperlib import claims, reference
from paperlib.repro import check_params, int_list_or_none, positive_or_none, save_figure, write_table
from paperlib.selftrain import experiments as X

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "jobs": positive_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
REGIME, SEEDS, JOBS = X.profile_setup(profile, seeds, jobs)
ARMS = list(X.TABLE1_ARMS)
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
CSST1 = X.csst_table1_frame(runs)
ST1.groupby("row", sort=False)[["mIoU", "thin mean"]].agg(["mean", "sem"]).round(2)

# %%
CSST1.groupby(["labels", "real:extra", "sampler"], sort=False)["mIoU"].agg(["mean", "sem"]).unstack("sampler").round(2)

# %% [markdown]
# ## mIoU against the share of pseudo labels
# Left: ours, each student minus the duplicated-real student of its sampler, per seed (mean ± SE;
# every arm trains the same steps). Right: the paper's CSST Table 1 (its students at 1:m also train
# (1 + m) / 2 times longer than at 1:1; its duplicated rows match those lengths).

# %%
ref = reference.load("csst", "table1_centroid_long")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
share = {r: float(r.split(":")[1]) / float(r.split(":")[0]) for r in X.CSST_RATIOS}
by = CSST1.set_index(["labels", "real:extra", "sampler", "seed"])["mIoU"]
for sampler, ls in (("centroid", "-"), ("random", "--")):
    gains = [(by.loc["real + pseudo", r, sampler] - by.loc["real, duplicated", r, sampler]).dropna()
             for r in X.CSST_RATIOS]
    axes[0].errorbar([share[r] for r in X.CSST_RATIOS], [g.mean() for g in gains],
                     yerr=[g.sem() if len(g) > 1 else 0 for g in gains], marker="o", ls=ls, capsize=3,
                     label=f"pseudo - duplicated, {sampler}")
    for labels, marker in (("real + pseudo", "o"), ("real, duplicated", "s")):
        sub = ref[(ref["labels"] == labels) & (ref["sampler"] == sampler)]
        axes[1].plot([share[r] for r in sub["real:extra"]], sub["mIoU"], marker=marker, ls=ls,
                     label=f"{labels}, {sampler}")
axes[0].axhline(0, color="k", lw=0.6)
axes[0].set_ylabel("mIoU difference (points)")
axes[1].set_ylabel("mIoU (%)")
for ax, title in zip(axes, (f"ours ({profile}, {len(SEEDS)} paired seeds, equal steps)", "paper (CSST Table 1)")):
    ax.set_xscale("log")
    ax.set_xlabel("pseudo : real samples per epoch")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
plt.tight_layout()
save_figure(fig, "csst", "table1_centroid", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes="CSST Table 1: students (real + pseudo) minus the duplicated-real student at equal steps, with / "
                  "without centroid sampling, beside the paper's rows. " + REGIME.describe())

# %% [markdown]
# ## Claims
# Declared before this run in `paperlib/reference/claims/selftrain.toml` (Table 1) and
# `paperlib/reference/claims/csst.toml` (Table 1); verdicts from `paperlib.claims`, paired by seed.
# The pseudo-label claims are gated on the oracle control (the same runs as the calibration's).

# %%
CLAIMS_ST = claims.evaluate(claims.declared("selftrain", "table1_pseudo"), ST1, arm="row", value="mIoU")
claims.show(CLAIMS_ST)
CLAIMS_CSST = claims.evaluate(claims.declared("csst", "table1_centroid"), CSST1, value="mIoU")
claims.show(CLAIMS_CSST)

# %%
pseudo_note = "; ".join(f"{q['pool']} pool ({q['domain']}, {q['frames']} frames): pseudo-label mIoU "
                        f"{q['pseudo-label mIoU']:.1f}" for _, q in QUALITY.iterrows())
common = (f"{REGIME.describe()}. Teacher held-out mIoU {T_INFO['mIoU']:.2f}; {pseudo_note}. Every row trains "
          f"{REGIME.steps} steps (same initialisation and sample stream per seed).")
write_table(ST1.drop(columns="arm"), "selftrain", "table1_pseudo", profile=profile, params=params, seeds=SEEDS,
            started=STARTED, reference=True, claims=CLAIMS_ST, by=["row"], value_cols=["mIoU", "thin mean"],
            notes=common + " Rows -> student arms: " + "; ".join(f"{r}: {a}" for r, a in X.ST_TABLE1_ROWS.items())
                  + ". 'Teacher: fine' is the supervised model of the students' architecture at the same steps.")
write_table(CSST1, "csst", "table1_centroid", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            reference="csst/table1_centroid_long", claims=CLAIMS_CSST, by=["labels", "real:extra", "sampler", "arm"], value_cols=["mIoU", "thin mean"],
            notes=common + " 'real (teacher)' and 'real, duplicated' (every ratio) are the duplicated-real run of "
                  "each sampler: at equal steps they are one training. Pseudo labels from both pools.")
print(f"done in {time.time() - STARTED:.0f} s")
