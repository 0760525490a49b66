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
# paperlib: writes tables/gsvnet/calibration, tables/gsvnet/calibration_keyframes, figures/gsvnet/calibration_flow, figures/gsvnet/calibration_keyframes

# %% [markdown]
# # GSVNet calibration: can propagation act here? (controls only)
#
# GSVNet segments a keyframe with an image network and every other frame by **propagating** the
# previous 1/8-scale segmentation with a light flow net O (Eq. 1), then correcting it with the
# guided spatially-varying convolution. Its claims (Table 1: Ours at l = 4 beats the image network
# at equal speed; graceful degradation with l; Fig. 3: a heavier flow estimator changes little)
# only mean something where
#
# 1. **warping can act at all**: on the 1/8 grid, moving the previous labels with the *true* motion
#    must beat copying them (a property of the world and the grid: at small frames the motion per
#    frame is a fraction of a 1/8 pixel);
# 2. **the flow net O is at least as good as DIS** for warping labels (the flow control of issue
#    #20): O is pre-trained on the world's exact flow (the authors start from a pre-trained flow
#    net) and runs on the 1/8 frames; DIS (OpenCV) runs on the full frames;
# 3. **the keyframe networks are at a plateau**, so the propagation gap is not measured against
#    a keyframe quality that is still moving.
#
# This notebook runs those controls only, declared before it in
# `paperlib/reference/claims/gsvnet.toml` (`calibration`); the GSVNet claim notebooks then run in
# the regime the controls admit. Everything is measured against the world's truth (dense labels
# and exact flow in every frame), with no segmentation network in the way
# (`paperlib.video.calibration`): the **true** label of frame t - d, pooled to the 1/8 grid,
# warped to frame t by d chained one-step warps of each flow, upsampled and scored against the
# true label of t, at the cpu profile's 128x256 frames (256x512: `gsvnet_calibration_2x`).

# %% tags=["parameters"]
profile = "smoke"
seeds = None          # None: the profile's flow-net seeds (smoke [0, 1], else [0, 1, 2, 3])
flow_steps = None     # None: the profile's flow-net pre-training steps
key_steps = None      # None: the profile's keyframe-network training steps
jobs = None           # None: processes of one thread each (smoke 1, else 2); does not change results
flow_recipe = None    # None: the regime's (paperlib.video.experiments.REGIMES); else one of calibration.FLOW_RECIPES

# %%
import dataclasses
import time

import numpy as np
import pandas as pd

from paperlib import claims
from paperlib.pool import run_all
from paperlib.profiles import get_profile
from paperlib.repro import check_params, int_list_or_none, positive_or_none, save_figure, write_table
from paperlib.video import calibration as C
from paperlib.video import experiments as X

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "flow_steps": positive_or_none,
           "key_steps": positive_or_none, "jobs": positive_or_none, "flow_recipe": (None, *C.FLOW_RECIPES)}
params = check_params({name: globals()[name] for name in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
claims.declared("gsvnet", "calibration")  # fail fast: the controls must be declared before the run
# The regime's sizes (one definition: paperlib.video.experiments.REGIMES); the recipe names its clips.
S, flow_recipe, RECIPE = X.flow_settings(profile, flow_recipe, flow_steps=flow_steps, key_steps=key_steps)
params["flow_recipe"] = flow_recipe
SEEDS = list(seeds or ([0, 1] if profile == "smoke" else [0, 1, 2, 3]))
JOBS = int(jobs or (1 if profile == "smoke" else 2))
H, W = get_profile(profile).world_image_size
KEY_NETS = {"SN": ("SwiftNet-R18", "swiftnet_resnet18"), "BN": ("BiSeNet-R18", "bisenet_resnet18")}
DISTANCES = (1, 3)
params.update(settings=S, seeds=SEEDS, sizes=[f"{H}x{W}"], distances=list(DISTANCES))
print(f"{profile}: {S}; flow-net seeds {SEEDS}; frames {H}x{W}")

# %% [markdown]
# ## The keyframe networks, to a plateau
# SwiftNet-R18 and BiSeNet-R18 at the profile's width, trained on the world (cached `keyframe`
# roles, one process each), evaluated on the held-out split six times during training.

# %%
KEY_CFGS = {tag: C.keyframe_config(profile, reg, S["key_width"], S["key_steps"], tag=tag)
            for tag, (_, reg) in KEY_NETS.items()}
from paperlib.data import get_dataset

for cfg in KEY_CFGS.values():  # export the world once, before the processes fork
    get_dataset(cfg, cfg.train_split), get_dataset(cfg, cfg.val_split)
KEY_INFO = dict(zip(KEY_CFGS, run_all(C.keyframe_curve, [(cfg,) for cfg in KEY_CFGS.values()], JOBS,
                                      "keyframe nets", True)))
KEYS = pd.DataFrame([{"network": KEY_NETS[tag][0], "tag": tag, "step": s, "held-out mIoU": m}
                     for tag, info in KEY_INFO.items() for s, m in info["curve"]])
PLATEAU = {tag: C.plateau_gain(info["curve"]) for tag, info in KEY_INFO.items()}
for tag, info in KEY_INFO.items():
    print(f"{KEY_NETS[tag][0]}: {info['steps']} steps, {info['wall_time'] / 60:.1f} min; held-out mIoU "
          f"{[round(m, 1) for _, m in info['curve']]}; last-interval gain {PLATEAU[tag]:+.2f}")

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5.5, 3.2))
for tag, g in KEYS.groupby("tag", sort=False):
    ax.plot(g["step"], g["held-out mIoU"], "o-", label=KEY_NETS[tag][0])
ax.set_xlabel("training step")
ax.set_ylabel("held-out mIoU (%)")
ax.legend(fontsize=8)
ax.set_title(f"Keyframe networks on the world ({H}x{W}, width {S['key_width']})", fontsize=9)
plt.tight_layout()
save_figure(fig, "gsvnet", "calibration_keyframes", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes="Held-out mIoU of the keyframe networks during training (the plateau check).")

# %% [markdown]
# ## The flow net O, pre-trained on the world's exact flow
# One flow net per seed, pre-trained on consecutive pairs of the training clips (end-point error on
# the 1/8 grid; cached `flownet` roles, the ones PF starts from), then measured on held-out clips
# (`calibration.flow_study`). The pre-training recipe is the parameter `flow_recipe`
# (`C.FLOW_RECIPES`, each declared before its run): `v1` (48 clips, constant learning rate) failed
# the flow control; `v2` doubles the clips, mirrors pairs left-right and decays the learning rate.
# The same study at twice the frame size is `gsvnet_calibration_2x`.
#
# Warped-label accuracy: per distance d (1 = one step; 3 = the farthest frame of an l = 4
# interval) and flow: mIoU, pixel accuracy and accuracy in the 2-px band around the true
# boundaries; EPE is the one-step end-point error on the 1/8 grid. Exact, DIS and zero do not
# depend on the seed.

# %%
table, EPE = C.flow_study((H, W), S["train_clips"], S["val_clips"], S["length"], S["flow_steps"], SEEDS, RECIPE, JOBS,
                          DISTANCES)
SIZE = f"{H}x{W}"
last = [float(np.mean(EPE[s][-max(len(EPE[s]) // 10, 1):])) for s in SEEDS]
print(f"{SIZE}: training EPE over the last tenth, per seed: {np.round(last, 3).tolist()}")
VALUES = ["mIoU", "pixel acc", "boundary acc", "EPE"]
table.groupby(["size", "distance", "flow"], sort=False)[VALUES].agg(["mean", "sem"]).round(2)

# %%
fig = C.flow_figure(table, {SIZE: EPE}, DISTANCES)
save_figure(fig, "gsvnet", "calibration_flow", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes="Flow-net pre-training (EPE) and the true labels of t - d warped to t on the 1/8 grid by "
                  "each flow, against the true labels of t.")

# %% [markdown]
# ## Controls
# Verdicts from `paperlib.claims`, paired by flow-net seed. The O controls depend on the check
# that the exact flow beats copying; the keyframe plateau is a check (gain over the last sixth of
# training < 1 point).

# %%
CHECKS = {f"calib_exact_beats_copy_{SIZE}": C.exact_beats_copy(table, SIZE)}
CHECKS.update({f"calib_keyframe_plateau_{tag}": (bool(PLATEAU[tag] < 1.0), f"last-interval gain {PLATEAU[tag]:+.2f}")
               for tag in KEY_NETS})
CLAIMS = claims.evaluate(C.declared_at("gsvnet", "calibration", SIZE), table, arm="flow", value="mIoU", unit="seed",
                         checks=CHECKS)
claims.show(CLAIMS)

# %%
write_table(KEYS, "gsvnet", "calibration_keyframes", profile=profile, by=["network", "step"],
            value_cols=["held-out mIoU"], floatfmt=".1f", seeds=SEEDS, started=STARTED, params=params,
            claims="the keyframe networks' held-out curves (the plateau checks are in calibration)",
            notes=f"SwiftNet-R18 / BiSeNet-R18 at width {S['key_width']}, {S['key_steps']} steps on the world at "
                  f"{H}x{W} (engine.train, the profile's recipe), held-out mIoU every {S['key_steps'] // 6} steps.")
write_table(table, "gsvnet", "calibration", profile=profile, by=["size", "distance", "flow"], value_cols=VALUES,
            floatfmt=".2f", seeds=SEEDS, started=STARTED, claims=CLAIMS, params=params,
            notes=f"The true label of frame t - d pooled to the 1/8 grid, warped by d chained one-step warps of "
                  f"each flow, bilinearly upsampled and scored against the true label of t, on {S['val_clips']} "
                  f"held-out world clips of {S['length']} frames. O: LightFlowNet pre-trained {S['flow_steps']} "
                  f"steps on the exact flow of {S['train_clips']} training clips (one per seed; recipe {flow_recipe}: "
                  f"{C.FLOW_RECIPES[flow_recipe]['recipe'] or 'constant lr, no augmentation'}); DIS: OpenCV DIS "
                  "(medium preset) on the full frames; zero: the previous label copied. 'boundary acc': pixel "
                  "accuracy within 2 px of a true boundary; EPE: one-step end-point error, 1/8-grid pixels.")
print(f"done in {time.time() - STARTED:.0f} s")
