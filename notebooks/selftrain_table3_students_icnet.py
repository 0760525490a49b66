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
# paperlib: writes tables/csst/table3_students_icnet, figures/csst/table3_students_icnet

# %% [markdown]
# # CSST Table 3, continued: the ICNet-R50 student
#
# The second half of CSST Table 3's real-time students (`selftrain_table3_students_csst` has the
# rest and the protocol); the same teacher, pool, regime and arms.
#
# Self-training is model-agnostic (self-training Sec. 4.3 "Generalizing to other students", CSST
# Sec. 4.3.4): the pseudo labels of **one fixed teacher** (DeepLabV3+ ResNeXt50 in the papers)
# improve students of other backbones and architectures. CSST Table 3: PSPNet-R101 +2.0, DeepLabV3+ WRN38 +1.7, OCR HRNet-W48 +1.4, and the
# real-time ones most: ICNet-R50 +4.4, BiSeNet-R18 +3.5, FastSCNN +3.9 (Cityscapes val).
#
# **How it is tested here** (`paperlib.selftrain.experiments`, issue #18), at the regime that
# `selftrain_calibration` admits (see `selftrain_table1_pseudo`): the cached teacher labels the
# same-domain pool (15x the labelled frames, *new* frames) once, and every student trains **the
# same steps** per arm with the same initialisation per seed (`TABLE3_ROWS`): its supervised
# baseline (the labelled frames alone, duplicated to the same steps), its **oracle** control (the
# pool with its true labels: a network that cannot use more frames cannot show what pseudo labels
# add, so each student's claims are gated on its own control), and the teacher's hard pseudo
# labels at real:pseudo 1:4 with centroid sampling (CSST's recipe: the paper's self-training
# student). For the regime's own student (the teacher's architecture) and FastSCNN the pseudo
# labels are also trained with random crops, which separates the pseudo labels from the sampler.
# At cpu: ICNet-R50 (width 8), beside the regime's own student and FastSCNN (the runs of
# `selftrain_table3_students`, shared through the cache; `make reproduce` runs that one first).

# %% tags=["parameters"]
profile = "smoke"
seeds = None    # None: the profile's seeds (smoke [0, 1], cpu/gpu [0, 1, 2, 3])
jobs = None     # None: processes of one thread each (smoke 1, cpu/gpu 2); does not change results

# %%
import time

from paperlib import claims, reference
from paperlib.repro import check_params, int_list_or_none, positive_or_none, save_figure, write_table
from paperlib.selftrain import analysis
from paperlib.selftrain import experiments as X

STARTED = time.time()
PAPER, TABLE = "csst", "table3_students_icnet"
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "jobs": positive_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result

# %% [markdown]
# ## The teacher, its pseudo labels and every student

# %%
STUDY = X.table3_study(profile, PAPER, TABLE, seeds, jobs)
params.update(STUDY.params())
table = STUDY.table
display(STUDY.quality[["pool", "domain", "frames", "pseudo-label mIoU", "pixel accuracy", "thin mean"]].round(1))
table.groupby(["student", "labels", "sampler"], sort=False)["mIoU"].agg(["mean", "sem"]).round(2)

# %% [markdown]
# ## Gains per student, ours and the paper's

# %%
REF = reference.load(PAPER, "table3_students_long")
fig = X.table3_figure(table, REF, f"CSST Table 3 (ICNet-R50) ({profile}, {len(STUDY.seeds)} paired seeds, equal steps)")
save_figure(fig, PAPER, TABLE, profile=profile, params=params, seeds=STUDY.seeds, started=STARTED,
            notes="Per student, each arm minus its duplicated-real baseline at equal steps (per-seed dots) beside "
                  "the paper's self-training gain. " + STUDY.regime.describe())

# %% [markdown]
# ## Claims
# Declared before this run in `paperlib/reference/claims/csst.toml` (`table3_students_icnet`,
# the ICNet-R50 claims of Table 3); verdicts from
# `paperlib.claims`, paired by seed; each student's claims are gated on its oracle control.
# Students this profile does not train are listed and left out (not verdicts).

# %%
CLAIMS = claims.evaluate(analysis.runnable(claims.declared(PAPER, TABLE), table), table, value="mIoU")
claims.show(CLAIMS)
write_table(table, PAPER, TABLE, profile=profile, params=params, seeds=STUDY.seeds, started=STARTED, reference=REF,
            claims=CLAIMS, by=["student", "params", "labels", "sampler", "arm"], value_cols=["mIoU", "thin mean"],
            floatfmt=".2f", notes=STUDY.notes())
print(f"done in {time.time() - STARTED:.0f} s")
