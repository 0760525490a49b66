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
# paperlib: writes tables/gsvnet/calibration_2x, figures/gsvnet/calibration_flow_2x

# %% [markdown]
# # GSVNet calibration at twice the frames: the flow controls at 256x512 (controls only)
#
# `gsvnet_calibration` asks, at the cpu profile's 128x256 frames, whether warping on PF's 1/8 grid
# can act (the exact flow beats copying the labels) and whether the flow net O, pre-trained on the
# world's exact flow, warps labels at least as well as DIS. At 128x256 the 1/8 grid is 16x32 and a
# frame's motion there is a fraction of a grid pixel; this notebook runs the same flow study
# (`paperlib.video.calibration.flow_study`, the same recipe, steps and seeds) at 256x512, where O
# sees 32x64 frames -- to say whether a failure of the flow control is a property of the tiny grid.
# Controls only, declared before the run (`calibration_2x` in `paperlib/reference/claims/gsvnet.toml`).

# %% tags=["parameters"]
profile = "smoke"
seeds = None          # None: the profile's flow-net seeds (smoke [0, 1], else [0, 1, 2, 3])
flow_steps = None     # None: the regime's flow-net pre-training steps
jobs = None           # None: processes of one thread each (smoke 1, else 2); does not change results
flow_recipe = None    # None: the regime's (paperlib.video.experiments.REGIMES); else one of calibration.FLOW_RECIPES

# %%
import time

import numpy as np

from paperlib import claims
from paperlib.profiles import get_profile
from paperlib.repro import check_params, int_list_or_none, positive_or_none, save_figure, write_table
from paperlib.video import calibration as C
from paperlib.video import experiments as X

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none, "flow_steps": positive_or_none,
           "jobs": positive_or_none, "flow_recipe": (None, *C.FLOW_RECIPES)}
params = check_params({name: globals()[name] for name in ALLOWED}, ALLOWED)
params.pop("jobs")  # how many processes ran it is not part of the result
claims.declared("gsvnet", "calibration_2x")  # fail fast: the controls must be declared before the run
S, flow_recipe, RECIPE = X.flow_settings(profile, flow_recipe, flow_steps=flow_steps)
S = {k: S[k] for k in ("flow_steps", "train_clips", "val_clips", "length")}
params["flow_recipe"] = flow_recipe
SEEDS = list(seeds or ([0, 1] if profile == "smoke" else [0, 1, 2, 3]))
JOBS = int(jobs or (1 if profile == "smoke" else 2))
H, W = (2 * x for x in get_profile(profile).world_image_size)
SIZE, DISTANCES = f"{H}x{W}", (1, 3)
params.update(settings=S, seeds=SEEDS, sizes=[SIZE], distances=list(DISTANCES))
print(f"{profile}: {S}; flow-net seeds {SEEDS}; frames {SIZE}")

# %% [markdown]
# ## O at 256x512, and the true labels warped by each flow

# %%
table, EPE = C.flow_study((H, W), S["train_clips"], S["val_clips"], S["length"], S["flow_steps"], SEEDS, RECIPE, JOBS,
                          DISTANCES)
last = [float(np.mean(EPE[s][-max(len(EPE[s]) // 10, 1):])) for s in SEEDS]
print(f"{SIZE}: training EPE over the last tenth, per seed: {np.round(last, 3).tolist()}")
VALUES = ["mIoU", "pixel acc", "boundary acc", "EPE"]
table.groupby(["size", "distance", "flow"], sort=False)[VALUES].agg(["mean", "sem"]).round(2)

# %%
fig = C.flow_figure(table, {SIZE: EPE}, DISTANCES)
save_figure(fig, "gsvnet", "calibration_flow_2x", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            notes=f"As calibration_flow at {SIZE}.")

# %% [markdown]
# ## Controls
# Verdicts from `paperlib.claims`, paired by flow-net seed; the O controls depend on the check that
# the exact flow beats copying at this frame size.

# %%
CLAIMS = claims.evaluate(C.declared_at("gsvnet", "calibration_2x", SIZE), table, arm="flow", value="mIoU",
                         unit="seed", checks={f"calib_exact_beats_copy_{SIZE}": C.exact_beats_copy(table, SIZE)})
claims.show(CLAIMS)
CLAIMS = CLAIMS or f"{SIZE}: no controls are declared at this frame size (they are at the cpu profile's 256x512)"
write_table(table, "gsvnet", "calibration_2x", profile=profile, by=["size", "distance", "flow"], value_cols=VALUES,
            floatfmt=".2f", seeds=SEEDS, started=STARTED, claims=CLAIMS, params=params,
            notes=f"As the calibration table at {SIZE}: {S['val_clips']} held-out world clips of {S['length']} frames; "
                  f"O pre-trained {S['flow_steps']} steps on {S['train_clips']} clips (recipe {flow_recipe}).")
print(f"done in {time.time() - STARTED:.0f} s")
