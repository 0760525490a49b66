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
# paperlib: writes tables/vplr/fig4, figures/vplr/fig4

# %% [markdown]
# # VPLR Figure 4: boundary label relaxation vs propagation length
#
# Propagated labels degrade with the propagation length `k`, mostly along object boundaries
# (the `vplr_label_quality` notebook measures this). **Boundary label relaxation** (Sec. 3.4,
# Eq. 4-5) changes the training target at exactly those pixels: with `N` the set of classes in a
# pixel's 3x3 window, the loss is `-log sum_{c in N} softmax(c)` -- the network may put its mass on
# any of the classes that meet there, and where `|N| = 1` it is plain cross-entropy
# (`paperlib.losses.boundary_relaxation_loss`, loss name `"relaxation"`).
#
# Figure 4 of the paper trains on the real set plus the samples jointly propagated (JP) to
# `±k` with the video-prediction (VPred, red) and video-reconstruction (VRec, blue) motion
# models, with relaxation (solid) and without (dashed), three runs each (mean ± sample std).
# Its claims: relaxation gives higher mIoU **at every propagation length, for both models**; the
# gap grows with `k`; with relaxation the best length moves from `±1` to `±3` (VRec: 80.54 →
# 81.35); even at `k = 0` relaxation helps (79.46 → 80.85). The paper gives numbers only for
# those points (see `paperlib/reference/vplr/fig4.csv`); the other points of the curves exist
# only as a plot and are left empty.
#
# **Here (issue #17): at the calibrated regime** (`vplr_calibration`, `experiments.CPU_REGIME`:
# 4 labelled snippets of the world at 6 fps, 128x256, `tiny_fcn` width 64, 1000 Adam steps), on
# the world annotator's labels (3-px boundary noise: the paper's gain at k = 0 is on human labels,
# and on exact labels there is nothing for relaxation to absorb), with the release's relaxation
# settings (3x3 window, thin classes kept one-hot: plain relaxation lets a low-resolution model
# drop thin classes that are nearly all boundary). Every claim is gated by the calibration's
# **noise-sensitivity control** (noisy labels must cost at least 0.5 mIoU and 0.5 points of
# boundary accuracy, `cal_noise`). G: the regime's cached VPred / VRec `MotionNet`s; k in
# {0, 1, 3, 5} at cpu (frames at 6 fps), 4 seeds. Boundary accuracy (pixels within 3 px of a
# label edge) is reported beside mIoU: it is where relaxation acts. Runs are cached (`vplr_arm`)
# and shared with the other VPLR notebooks.

# %% tags=["parameters"]
profile = "smoke"
ks = None       # None: smoke [0, 1], cpu/gpu/paper [0, 1, 3, 5]
seeds = None    # None: smoke [0, 1], otherwise [0, 1, 2, 3]
jobs = None     # None: processes of one thread each (smoke 1, else 2); does not change results

# %%
import dataclasses
import time

import numpy as np
import pandas as pd

from paperlib.propagation.experiments import profile_setup, calibration_controls, run_arms
from paperlib.repro import check_params, int_list_or_none, positive_or_none

STARTED = time.time()


def lengths_or_none(v):
    """None or a list of distinct propagation lengths in 0..5"""
    return v is None or (isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v)
                         and all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= 5 for k in v))


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "ks": lengths_or_none, "seeds": int_list_or_none,
           "jobs": positive_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
REGIME, SEEDS, JOBS = profile_setup(profile, seeds, jobs)
KS = sorted(ks or ([0, 1] if profile == "smoke" else [0, 1, 3, 5]))
MOTIONS = {"VPred": "vpred", "VRec": "vrec"}
LOSSES = {"no relaxation": "", "relaxation": "|relax"}


def arm(motion: str, k: int, loss: str) -> str:
    """The run of (motion, k, loss) (``experiments.Arm``); k = 0 is both motions' first point."""
    return ("noisy" if k == 0 else f"jp+-{k}:{MOTIONS[motion]}|noisy") + LOSSES[loss]


params.update(ks=KS, seeds=SEEDS, regime=dataclasses.asdict(REGIME))
print(REGIME.describe())
print(f"k in {KS}, seeds {SEEDS}")

# %% [markdown]
# ## The control and the runs
# The calibration's noise-sensitivity control at this regime (the same cached runs as
# `vplr_calibration`), then every (motion, k, loss) with every seed; the world's labels are the
# annotator's in every run.

# %%
from paperlib import claims

CONTROLS = [c for c in calibration_controls(REGIME, SEEDS, offsets=(), jobs=JOBS) if c.claim.id == "cal_noise"]
claims.show(CONTROLS)
ARMS = sorted({arm(m, k, loss) for m in MOTIONS for k in KS for loss in LOSSES})
runs = {(r["arm"], r["seed"]): r for r in run_arms(REGIME, ARMS, SEEDS, jobs=JOBS)}
table = pd.DataFrame([{"motion": m, "k": k, "loss": loss, "seed": s,
                       "mIoU": runs[(arm(m, k, loss), s)]["mIoU"],
                       "boundary_acc": runs[(arm(m, k, loss), s)]["boundary_acc"]}
                      for m in MOTIONS for k in KS for loss in LOSSES for s in SEEDS])
agg = table.groupby(["motion", "k", "loss"], sort=False)["mIoU"].agg(["mean", "sem"]).reset_index()
agg.round(2)

# %% [markdown]
# ## Figure 4
# Left: this run, mean ± sample std over seeds (solid = relaxation, dashed = without, as in the
# paper). Right: the points the paper states in the text.

# %%
import matplotlib.pyplot as plt

from paperlib.reference import load as load_reference
from paperlib.repro import save_figure, write_table

ref = load_reference("vplr", "fig4")
COLORS = {"VPred": "tab:red", "VRec": "tab:blue"}
STYLES = {"relaxation": "-", "no relaxation": "--"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for (motion, loss), g in agg.groupby(["motion", "loss"], sort=False):
    axes[0].errorbar(g.k + (0.04 if loss == "relaxation" else -0.04), g["mean"], yerr=g["sem"].fillna(0),
                     color=COLORS[motion], ls=STYLES[loss], marker="o", ms=4, capsize=3, label=f"{motion}, {loss}")
    p = ref[(ref.motion == motion) & (ref.loss == loss)].dropna(subset=["mIoU"])
    if len(p):
        axes[1].plot(p.k, p.mIoU, color=COLORS[motion], ls=STYLES[loss], marker="o", label=f"{motion}, {loss}")
for ax, title in zip(axes, (f"this run ({profile}, {len(SEEDS)} seeds, ± SE)",
                            "paper, Fig. 4 (only the values stated in the text)")):
    ax.set_xlabel("propagation length ±k (0 = real data only)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
plt.tight_layout()
save_figure(fig, "vplr", "fig4", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes="mIoU vs propagation length with / without boundary relaxation, VPred and VRec JP sets, on the "
                  "world annotator's labels. " + REGIME.describe())

# %% [markdown]
# ## Claims
# Declared in `paperlib/reference/claims/vplr.toml` before this run; verdicts from
# `paperlib.claims`, paired by seed (both losses and every length share each seed's
# initialisation and data order). One claim per (model, k): relaxation > cross-entropy (a tie is
# no gain); `k = 0` separately (the paper's 79.46 -> 80.85). "The gap grows with k" is tested as
# each seed's least-squares slope of the gap along `k`, and "the best length moves from ±1 to
# ±3" as each seed's best `k` with relaxation minus without (`gap_trend`), both against 0. A
# length this run did not train leaves its claims *not testable*.

# %%
from paperlib import claims
from paperlib.propagation.analysis import gap_trend, stack_frames

TREND = gap_trend(table, "relaxation", "no relaxation", arm="loss", by=["motion"])
RUN_CHECKS = {f"f4_k{k}_run": (k in KS, f"lengths trained: {KS}") for k in range(6)}
RUN_CHECKS["f4_several_lengths"] = (len(KS) >= 2, f"lengths trained: {KS}")
CLAIMS = claims.evaluate(claims.declared("vplr", "fig4"), stack_frames(table, TREND),
                         value="mIoU", checks=RUN_CHECKS, given=CONTROLS)
claims.show(CLAIMS)
TREND.pivot_table(index="measure", columns="motion", values="value", aggfunc="mean").round(3)

# %% [markdown]
# ## The table
# Every seed's mIoU in the csv; mean ± std in the markdown beside the paper's stated values,
# then the claims.

# %%
write_table(table, "vplr", "fig4", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            reference=True, by=["motion", "k", "loss"], value_cols=["mIoU", "boundary_acc"], claims=CLAIMS,
            notes=(REGIME.describe() + f". Labels: the world annotator's ({REGIME.noise_px:g}-px boundary noise) in "
                   "every run; the labelled frames plus the JP samples at ±k (non-accumulated) of the regime's "
                   f"VPred / VRec MotionNet; k = 0: the labelled frames only (one run serves both motions). Loss: "
                   f"cross-entropy or boundary relaxation ({dict(REGIME.relax)}). Gated by the calibration's "
                   "noise-sensitivity control. Seeds: initialisation and sample order."))
print(f"done in {time.time() - STARTED:.0f} s")
