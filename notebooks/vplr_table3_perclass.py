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
# paperlib: writes tables/vplr/table3, figures/vplr/table3

# %% [markdown]
# # VPLR Table 3 (top): where the gains come from, class by class
#
# The top of Table 3 (Sec. 4.2, "Comparison to State-of-the-Art") breaks the ablation down per
# class on Cityscapes val:
#
# 1. **Baseline** -- the Table 1 recipe (79.5 mIoU);
# 2. **+ VRec with JP** -- plus the samples jointly propagated to `±1` by the video-reconstruction
#    motion model (Table 2's best; 80.5);
# 3. **+ Label Relaxation** -- plus boundary label relaxation (Eq. 5), which lets the propagated
#    set go further, `±3` (Figure 4's best; 81.4).
#
# The paper's reading: "the largest improvements come from small/thin object classes, such as
# pole, street light/sign, person, rider and bicycle", because propagation adds variation of
# exactly those objects. We test it per class *group* -- the thin classes (pole, traffic light,
# traffic sign, person, rider, bicycle) gain more than all the others, per seed -- and per thin
# class, each only where the baseline learns the class at all (its IoU above 0).
#
# **Here (issue #17): at the calibrated regime** (`vplr_calibration`, `experiments.CPU_REGIME`:
# 4 labelled snippets of the world at 6 fps, 128x256, `tiny_fcn` width 64 -- wide enough that
# pole, traffic light and traffic sign are predicted at all -- 1000 Adam steps). All three rows
# train on the world annotator's labels (3-px boundary noise, as the paper's human labels carry
# noise that relaxation can absorb); G is the regime's cached VRec `MotionNet`. The relaxation
# uses the release's settings (3x3 window, thin classes kept one-hot). Gates: the calibration's
# oracle control at ±1 for "+ VRec with JP", its noise-sensitivity control for "+ Label
# Relaxation", and per class a control that the baseline's IoU of that class is above 1 point.
# Runs are cached (`vplr_arm`) and shared with the other VPLR notebooks. Classes absent from the
# validation labels and predictions have no IoU (empty).

# %% tags=["parameters"]
profile = "smoke"
seeds = None        # None: the profile's seeds (smoke [0, 1], cpu/gpu/paper [0, 1, 2, 3])
jobs = None         # None: processes of one thread each (smoke 1, else 2); does not change results
k_jp = 1            # "+ VRec with JP": propagation length (paper: ±1)
k_relax = 3         # "+ Label Relaxation": propagation length (paper: ±3)

# %%
import dataclasses
import time

import numpy as np
import pandas as pd

from paperlib.propagation.experiments import profile_setup, calibration_controls, run_arms
from paperlib.repro import check_params, int_list_or_none, positive_or_none

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "jobs": positive_or_none,
           "k_jp": (1, 3, 5), "k_relax": (1, 3, 5)}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
REGIME, SEEDS, JOBS = profile_setup(profile, seeds, jobs)
#: row -> arm (``experiments.Arm``), all on the annotator's labels
ROWS = {"Baseline": "noisy", "+ VRec with JP": f"jp+-{k_jp}:vrec|noisy",
        "+ Label Relaxation": f"jp+-{k_relax}:vrec|noisy|relax"}
params.update(seeds=SEEDS, regime=dataclasses.asdict(REGIME), arms=ROWS)
print(REGIME.describe())
print(f"rows {ROWS}, seeds {SEEDS}")

# %% [markdown]
# ## The controls and the three rows
# The calibration's controls at this regime (the same cached runs as `vplr_calibration`), then
# every row with every seed.

# %%
from paperlib import claims

CONTROLS = calibration_controls(REGIME, SEEDS, offsets=sorted({k_jp, k_relax}), jobs=JOBS)
claims.show(CONTROLS)
runs = {(r["arm"], r["seed"]): r for r in run_arms(REGIME, list(ROWS.values()), SEEDS, jobs=JOBS)}

# %% [markdown]
# ## The table
# IoU (%) per class, method and seed (written with the claims at the end, `mean ± std` over
# seeds in the markdown, beside the paper's value). `thin classes` / `other classes` are the
# means over the two groups.

# %%
from paperlib.data.labels import CITYSCAPES_CLASSES
from paperlib.propagation.analysis import THIN_CLASSES
from paperlib.repro import save_figure, write_table

THIN = [CITYSCAPES_CLASSES[c] for c in THIN_CLASSES]
OTHER = [c for c in CITYSCAPES_CLASSES if c not in THIN]
rows = []
for name, arm in ROWS.items():
    for s in SEEDS:
        r = runs[(arm, s)]
        iou = {c: r[f"iou_{c.replace(' ', '_')}"] for c in CITYSCAPES_CLASSES}
        iou["mIoU"] = r["mIoU"]
        iou["thin classes"] = float(np.nanmean([iou[c] for c in THIN]))
        iou["other classes"] = float(np.nanmean([iou[c] for c in OTHER]))
        iou["boundary accuracy"] = r["boundary_acc"]
        rows += [{"class": c, "method": name, "seed": s, "IoU": v} for c, v in iou.items()]
table = pd.DataFrame(rows)
wide = table.groupby(["method", "class"], sort=False)["IoU"].mean().unstack("class")[list(CITYSCAPES_CLASSES) + ["mIoU"]]
wide.round(1)

# %% [markdown]
# ## Gains per class over the baseline
# Ours (mean over seeds) next to the paper's, thin classes highlighted.

# %%
import matplotlib.pyplot as plt

from paperlib.reference import load as load_reference

ref = load_reference("vplr", "table3").pivot(index="method", columns="class", values="IoU")
classes = list(CITYSCAPES_CLASSES)
x = np.arange(len(classes))
fig, axes = plt.subplots(2, 1, figsize=(14, 6), sharex=True)
for ax, src, title in ((axes[0], wide, f"this run ({profile}, {len(SEEDS)} seed(s))"), (axes[1], ref, "paper (Cityscapes val)")):
    for j, (name, color) in enumerate((("+ VRec with JP", "tab:blue"), ("+ Label Relaxation", "tab:green"))):
        gain = src.loc[name, classes].to_numpy(float) - src.loc["Baseline", classes].to_numpy(float)
        ax.bar(x + (j - 0.5) * 0.38, gain, 0.38, color=color, label=f"{name} − Baseline")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("IoU gain (points)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    for c in THIN_CLASSES:
        ax.axvspan(c - 0.5, c + 0.5, color="gold", alpha=0.15, lw=0)
axes[1].set_xticks(x, classes, rotation=45, ha="right", fontsize=8)
plt.tight_layout()
save_figure(fig, "vplr", "table3", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes="Per-class IoU gain over the baseline (ours vs the paper); thin classes shaded.")

# %% [markdown]
# ## Claims
# Declared in `paperlib/reference/claims/vplr.toml` before this run; verdicts from
# `paperlib.claims`, paired by seed (every row shares each seed's initialisation and data order).
# The mIoU rows, then the paper's reading per group -- per seed, the thin classes' mean gain over
# the baseline minus the other classes' (`group_gain_gap`), against 0 -- and per thin class. A
# class the tiny model never predicts has IoU 0 in every row, so a "gain" there is no evidence:
# each per-class claim is gated by a control that the baseline's IoU of that class is above 0
# over the seeds, here "above 1 point" (the group claims by the same control on the thin-class
# mean). The mIoU claims are gated by the calibration: "+ VRec with JP" by the oracle control at
# ±1, "+ Label Relaxation" by the noise-sensitivity control. The relaxation row adds relaxation
# *and* lengthens the propagation (±1 -> ±3), as in the paper.

# %%
from paperlib import claims
from paperlib.propagation.analysis import group_gain_gap, stack_frames

GAPS = pd.concat([group_gain_gap(table, m) for m in ("+ VRec with JP", "+ Label Relaxation")], ignore_index=True)
CLAIMS = claims.evaluate(claims.declared("vplr", "table3"), stack_frames(table, GAPS),
                         value="IoU", given=CONTROLS)
claims.show(CLAIMS)
gains = wide.loc[["+ VRec with JP", "+ Label Relaxation"]] - wide.loc["Baseline"]
gains.round(1)  # mean gain over the baseline per class (descriptive)

# %% [markdown]
# ## Write the table

# %%
write_table(table, "vplr", "table3", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            reference=True, by=["class", "method"], value_cols=["IoU"], floatfmt=".1f", claims=CLAIMS,
            notes=(REGIME.describe() + f". Labels: the world annotator's ({REGIME.noise_px:g}-px boundary noise) in "
                   f"every row. + VRec with JP: the labelled frames + JP samples at ±{k_jp} (the regime's VRec "
                   f"MotionNet); + Label Relaxation: + JP at ±{k_relax} trained with boundary relaxation "
                   f"({dict(REGIME.relax)}). thin classes = {', '.join(THIN)}; 'boundary accuracy' = pixel accuracy "
                   "within 3 px of a label edge. Seeds: initialisation and sample order."))
print(f"done in {time.time() - STARTED:.0f} s")
