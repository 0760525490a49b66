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
# paperlib: writes figures/duchdc/erf, tables/duchdc/erf_stats

# %% [markdown]
# # DUC/HDC: effective receptive fields of the HDC variants
#
# Figure 2 shows the *theoretical* footprint of a dilated stack. Here we measure what a real
# dilated ResNet sees: the **effective receptive field** (ERF; Luo et al., 2016) is the map
# `|d y(p) / d x|` of the gradient of one output pixel `p` (the centre, summed over channels) with
# respect to every input pixel, averaged over random inputs (`paperlib.gridding.effective_receptive_field`).
#
# The network is DeepLab-v2's ResNet (`deeplabv2_resnet101` in the zoo) with the paper's dilation
# variants of Sec. 4.1 (`hdc_block_rates`): DeepLab-v2's standard dilation (res4 r = 2, res5 r = 4),
# No dilation, Dilation-conv (2, 1 pairs), Dilation-RF (1, 2, 3 groups; res5 3, 4, 5) and
# Dilation-bigger (1, 2, 5, 9 groups; res5 5, 9, 17). Two views:
#
# * **feature level**: the dilated stages alone (res4 + res5 = `layer3`, `layer4`) fed a
#   `layer2`-shaped input. One feature pixel is one input pixel, so gridding shows exactly: with
#   only even rates, odd offsets get *exactly zero* gradient (the checkerboard of Figure 2 (a)).
# * **image level**: the whole backbone from the image to one `layer4` (res5) pixel (stem and
#   res2/res3 included, which blur the grid at the image scale; the DUC/ASPP head is left out
#   because its rates 6..24 at stride 8 alone span 392 px, more than the image).
#
# Statistics (`erf_stats`): `hole fraction` = zero-gradient pixels inside the bounding box of the
# ERF's support (the checkerboard score: ~0.75 for a rate-2 grid, 0 without holes), `RF used` =
# fraction of the theoretical RF square with non-zero gradient, `radius50` = radius holding half
# the gradient mass. Each variant is measured untrained and after a short training run on the
# synthetic world (`train_steps`).
#
# **Scaled down** at `smoke`/`cpu` (documented, not hidden): `width` = the profile's base channels
# (8 / 16 instead of 64), ResNet-50 depth at `smoke` and `cpu` (res4 has 6 blocks, so the sawtooth
# patterns are cycled over 6 blocks: Dilation-RF = 1, 2, 3, 1, 2, 3; Dilation-bigger = 1, 2, 5, 9,
# 1, 2) and ResNet-101 at `gpu` and above (the paper's 23 res4 blocks). The ERF maps are clipped
# to `feature_size`, smaller than the theoretical RF of the largest variants. Cost on 2 CPU cores
# (measured in session 1): the width-16 ResNet-101 took ~12 s per training step (batch 8,
# 128x128) and ~47 s per feature-level ERF (8 samples), ~15 minutes for `cpu`; the ResNet-50 at
# `cpu` (feature map 81, 4 samples, 10 steps) is sized to fit ~6 minutes; `smoke` ~20 s.
# Training here is only long enough to move the weights off their initialisation: the gridding
# checks are structural and hold at any training length.

# %% tags=["parameters"]
profile = "smoke"
variants = None        # None: baseline + the paper's four HDC variants
depth = None           # None: 50 at smoke and cpu, 101 otherwise
feature_size = None    # None: 49 at smoke, 81 at cpu, 97 otherwise (side of the layer2-shaped input, feature pixels)
image_size = None      # None: 64 at smoke, 128 otherwise
n_samples = None       # None: 2 at smoke, 4 at cpu, 8 otherwise (random inputs averaged)
train_steps = None     # None: 2 at smoke, 10 at cpu, else the profile steps; 0 = untrained only
seed = 0

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from paperlib.config import config_from_params
from paperlib.gridding import effective_receptive_field, erf_stats, receptive_field, rf_increase
from paperlib.models import build
from paperlib.models.backbones import RESNET_DEPTHS, hdc_block_rates
from paperlib.profiles import get_profile
from paperlib.repro import check_params, positive_or_none, save_figure, write_table

STARTED = time.time()
ALL_VARIANTS = ["baseline", "no_dilation", "dilation_conv", "dilation_rf", "dilation_bigger"]


def variants_or_none(v):
    """None or a list of hdc_block_rates variant names"""
    return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(x in ALL_VARIANTS for x in v))


def nonneg_or_none(v):
    """None or an int >= 0"""
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "variants": variants_or_none,
           "depth": (None, 50, 101, 152), "feature_size": positive_or_none, "image_size": positive_or_none,
           "n_samples": positive_or_none, "train_steps": nonneg_or_none, "seed": int}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
small = profile == "smoke"
prof = get_profile(profile)
VARIANTS = list(variants or ALL_VARIANTS)
DEPTH = depth or (50 if profile in ("smoke", "cpu") else 101)
FEATURE = feature_size or {"smoke": 49, "cpu": 81}.get(profile, 97)
IMAGE = image_size or (64 if small else 128)
SAMPLES = n_samples or {"smoke": 2, "cpu": 4}.get(profile, 8)
STEPS = {"smoke": 2, "cpu": 10}.get(profile, prof.steps or 100) if train_steps is None else train_steps
WIDTH = prof.model_width
BLOCKS = RESNET_DEPTHS[DEPTH][1][2:]
print(f"{profile}: depth {DEPTH} (res4 {BLOCKS[0]} blocks, res5 {BLOCKS[1]}), width {WIDTH}, "
      f"feature map {FEATURE}, image {IMAGE}, {SAMPLES} samples, {STEPS} training steps")

# %% [markdown]
# ## Models: untrained and briefly trained
# The same seed builds every variant, so the untrained networks differ only in their dilation
# rates. Training uses the one engine (`paperlib.engine.train`) on the synthetic world.

# %%
from paperlib import engine


def make(variant):
    torch.manual_seed(seed)
    return build("deeplabv2_resnet101", num_classes=19, width=WIDTH, depth=DEPTH, hdc=variant, head="duc")


models = {("untrained", v): make(v).eval() for v in VARIANTS}
fingerprint = None
if STEPS > 0:
    train_set, _ = engine.build_datasets(config_from_params(profile, seed=seed))
    fingerprint = train_set.fingerprint()
    for v in VARIANTS:
        cfg = config_from_params(profile, model="deeplabv2_resnet101", seed=seed, steps=STEPS,
                                 model_options={"depth": DEPTH, "hdc": v, "head": "duc"},
                                 name=f"duchdc_erf_{v}")
        result = engine.train(cfg, model=make(v), train_set=train_set)  # no val_set: no evaluation
        models[("trained", v)] = result["model"].eval().cpu()
        print(f"{v}: trained {result['step']} steps, final loss {result['loss']:.3f}")

# %% [markdown]
# ## Measure the ERFs

# %%
def dilated_stages(model):
    return nn.Sequential(model.backbone.layer3, model.backbone.layer4)


erfs, rows = {}, []
for (state, v), model in models.items():
    rates = model.backbone.block_dilations()
    stack = rates["layer3"] + rates["layer4"]
    assert stack == hdc_block_rates(v, BLOCKS)["layer3"] + hdc_block_rates(v, BLOCKS)["layer4"]
    rf = receptive_field(stack)
    feat = effective_receptive_field(dilated_stages(model), (FEATURE, FEATURE), n_samples=SAMPLES,
                                     channels=model.backbone.channels["layer2"], seed=seed)
    img = effective_receptive_field(model.backbone, (IMAGE, IMAGE), n_samples=SAMPLES, seed=seed)
    erfs[(state, v)] = (feat, img)
    fs, is_ = erf_stats(feat, rf=rf), erf_stats(img)
    rows.append({"state": state, "variant": v, "RF increased (feature px)": rf_increase(stack),
                 "theoretical RF (feature px)": rf,
                 "feature: hole fraction": fs["hole_fraction"], "feature: RF used": fs["rf_fraction"],
                 "feature: radius50": fs["radius50"], "image: radius50": is_["radius50"],
                 "image: support fraction": is_["support"] / IMAGE ** 2})
stats = pd.DataFrame(rows)
stats

# %%
states = sorted({s for s, _ in erfs}, key=["untrained", "trained"].index)
fig, axes = plt.subplots(2 * len(states), len(VARIANTS), figsize=(2.5 * len(VARIANTS), 2.6 * 2 * len(states)),
                         squeeze=False)
for i, state in enumerate(states):
    for j, v in enumerate(VARIANTS):
        feat, img = erfs[(state, v)]
        row = stats[(stats.state == state) & (stats.variant == v)].iloc[0]
        a = axes[2 * i, j]
        a.imshow(np.sqrt(feat), cmap="magma", interpolation="nearest")
        a.set_title(f"{v}\n{state}, res4+res5; holes {row['feature: hole fraction']:.2f}", fontsize=8)
        a = axes[2 * i + 1, j]
        a.imshow(np.sqrt(img), cmap="magma")
        a.set_title(f"{state}, image -> res5 (backbone)", fontsize=8)
for a in axes.flat:
    a.axis("off")
fig.suptitle("Effective receptive field (sqrt of |gradient| of the centre output, max 1)")
plt.tight_layout()
save_figure(fig, "duchdc", "erf", profile=profile, params={**params, "depth": DEPTH, "width": WIDTH,
            "feature_size": FEATURE, "image_size": IMAGE, "n_samples": SAMPLES, "train_steps": STEPS},
            seeds=[seed], data_fingerprint=fingerprint, started=STARTED)

# %% [markdown]
# ## Claims (sanity checks)
# The ERF results are structural `check`s declared in `paperlib/reference/claims/duchdc.toml`
# (pass / fail, never counted as reproductions): the checkerboard of standard dilation, its
# absence under HDC, and a wider ERF for the larger theoretical RF. The thresholds (hole fraction
# above 0.5 for a checkerboard, below 0.05 for none) are this notebook's, not the paper's. Only the
# checks this run can compute (its variants and states) are evaluated.

# %%
from paperlib import claims


def hole(state, v):
    return float(stats[(stats.state == state) & (stats.variant == v)]["feature: hole fraction"].iloc[0])


CHECKS = {}
hdc = [v for v in VARIANTS if v.startswith("dilation")]
for state in states:
    if "baseline" in VARIANTS:
        CHECKS[f"erf_checkerboard_{state}"] = (hole(state, "baseline") > 0.5,
                                               f"hole fraction {hole(state, 'baseline'):.3f}")
    if hdc:
        CHECKS[f"erf_hdc_no_holes_{state}"] = (all(hole(state, v) < 0.05 for v in hdc),
                                               ", ".join(f"{v} {hole(state, v):.3f}" for v in hdc))
if {"no_dilation", "dilation_bigger"} <= set(VARIANTS):
    u = stats[stats.state == "untrained"].set_index("variant")
    CHECKS["erf_bigger_wider"] = (bool(u.loc["dilation_bigger", "feature: radius50"] > u.loc["no_dilation", "feature: radius50"]),
                                  f"radius50 {u.loc['dilation_bigger', 'feature: radius50']:.1f} vs "
                                  f"{u.loc['no_dilation', 'feature: radius50']:.1f} feature px")
DECLARED = [c for c in claims.declared("duchdc", "erf_stats") if c.id in CHECKS]
CLAIMS = claims.evaluate(DECLARED, checks=CHECKS) if DECLARED else \
    f"effective-receptive-field statistics of the variants {VARIANTS} (no declared check applies to them)"
if DECLARED:
    claims.show(CLAIMS)

# %% [markdown]
# ## The table

# %%
write_table(stats, "duchdc", "erf_stats", profile=profile,
            params={**params, "depth": DEPTH, "width": WIDTH, "feature_size": FEATURE, "image_size": IMAGE,
                    "n_samples": SAMPLES, "train_steps": STEPS},
            seeds=[seed], data_fingerprint=fingerprint, started=STARTED, floatfmt=".3f",
            value_cols=[c for c in stats.columns if c.startswith(("feature:", "image:"))], claims=CLAIMS,
            notes=f"deeplabv2_resnet101 scaled down: depth {DEPTH}, width {WIDTH}; ERF from the centre output "
                  f"pixel, {SAMPLES} standard-normal inputs; feature level = layer3+layer4 on a "
                  f"{FEATURE}x{FEATURE} layer2-shaped input; image level = the backbone (image -> layer4) on {IMAGE}x{IMAGE}.")

print(f"done in {time.time() - STARTED:.1f} s")
