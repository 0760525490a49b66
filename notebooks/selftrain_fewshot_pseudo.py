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
# paperlib: writes tables/selftrain/fewshot_pseudo

# %% [markdown]
# # Few-shot transfer: the roles and their pseudo labels (self-training Fig. 3 / Table 12, CSST Fig. 8)
#
# The few-shot notebooks (`selftrain_fig3_fewshot`: new classes, `selftrain_table12_fewshot`: same
# classes) fine-tune two initialisations at every label budget: the **source model** (trained on
# the source world's real labels) and the **self-training student** (trained from scratch on the
# source's real labels and the source model's pseudo labels on the unlabelled target pool). This
# notebook trains those roles once (cached; the students of both targets side by side) and
# measures what self-training hands the student, against the world's truth: the source model's
# pseudo labels on each target pool, scored with the pool's 19-class labels. It tests no claim; the
# two claim notebooks load the roles and only fine-tune (64 fine-tunings each at cpu). Regime:
# `paperlib.selftrain.transfer.CPU_REGIME`.

# %% tags=["parameters"]
profile = "smoke"
jobs = None     # None: processes of one thread each (smoke 1, cpu/gpu 2); does not change results

# %%
import dataclasses
import time

import pandas as pd

from paperlib.repro import check_params, positive_or_none, write_table
from paperlib.selftrain import transfer as T

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "jobs": positive_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
REGIME, _, JOBS = T.profile_setup(profile, None, jobs)
params.update(regime=dataclasses.asdict(REGIME))
print(REGIME.describe())

# %% [markdown]
# ## The source model, then one student per target

# %%
INFO = T.roles(REGIME, jobs=JOBS)
print(f"source model: {INFO['source']['mIoU']:.1f} mIoU on {REGIME.source} held out")
for case in T.CASES:
    print(f"student ({case}, target {T.CASES[case]}): {INFO[case]['source mIoU']:.1f} mIoU on {REGIME.source}")

# %% [markdown]
# ## The source model's pseudo labels on each target pool, against the truth
# Same classes: the 19 classes under another palette, light and traffic (`city_b`); new classes:
# the world's fine label set (`city_fine`), whose pool the teacher still labels with its 19
# classes (scored against the pool's 19-class truth).

# %%
QUALITY = T.pseudo_quality(REGIME)
QUALITY["student source mIoU"] = [INFO[c]["source mIoU"] for c in QUALITY["case"]]
QUALITY["source model mIoU"] = INFO["source"]["mIoU"]
QUALITY.round(1)

# %%
write_table(QUALITY, "selftrain", "fewshot_pseudo", profile=profile, params=params, started=STARTED,
            by=["case", "target"], value_cols=["frames", "pseudo-label mIoU", "pixel accuracy", "student source mIoU",
                                               "source model mIoU"], floatfmt=".1f",
            claims="the few-shot roles and the pseudo labels they train on (the claims are in fig3_fewshot and "
                   "table12)",
            notes=REGIME.describe() + ". pseudo-label mIoU / pixel accuracy: the source model's hard pseudo labels on "
                                      "each target pool against its 19-class truth; source mIoU: on the source "
                                      "world's held-out frames.")
print(f"done in {time.time() - STARTED:.0f} s")
