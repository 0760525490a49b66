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
# paperlib: writes figures/paperlib/world_frames, figures/paperlib/world_flow, figures/paperlib/world_annotation, figures/paperlib/world_domains, figures/paperlib/world_class_frequency, tables/paperlib/world_class_frequency

# %% [markdown]
# # The embedded world: a procedurally generated driving video with exact ground truth
#
# The five papers train on Cityscapes, CamVid, Mapillary and BDD100K with 8 GPUs. paperlib's
# default data is instead a **synthetic driving world** (`paperlib.data.synthetic`) that renders,
# deterministically from `(domain, seed, clip index)`:
#
# - RGB frames of 2.5D street scenes with all 19 Cityscapes classes, camera ego-motion
#   (perspective expansion, turns), independently moving cars, persons and riders;
# - **dense labels on every frame** (Cityscapes train ids) and instance ids;
# - **exact optical flow** both ways with validity masks (false where a point is occluded or
#   leaves the view) — the ground truth VPLR's propagation and GSVNet's warping are built on;
# - human-style **annotations**: one labelled frame per snippet (Cityscapes: frame 19 of 30;
#   CamVid: every 30th) with boundary noise or coarse polygons (what label relaxation relaxes);
# - several **domains** (palette, texture, weather, density, class frequencies) for
#   self-training transfer, and a finer label set for new-class transfer.
#
# This notebook shows each of these and compares the world's class frequencies with Cityscapes'.

# %% tags=["parameters"]
profile = "smoke"
seed = 0

# %%
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import paperlib
from paperlib.data.labels import CITYSCAPES_CLASSES, colorize
from paperlib.data.synthetic import DOMAINS, SyntheticWorld
from paperlib.data.synthetic.annotate import annotate
from paperlib.profiles import get_profile
from paperlib.repro import check_params, save_figure, write_table

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seed": int}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
prof = get_profile(profile)
# Display size and how many clips the class-frequency estimate averages over, per profile.
SIZE = {"smoke": (128, 256), "cpu": (256, 512), "gpu": (256, 512), "paper": (512, 1024)}[profile]
N_CLIPS = {"smoke": 3, "cpu": 24, "gpu": 60, "paper": 60}[profile]
FREQ_FRAMES = {"smoke": 2, "cpu": 4, "gpu": 6, "paper": 6}[profile]   # frames per clip counted
world = SyntheticWorld("city_a", size=SIZE, seed=seed)
clip = world.clip(0, length=30)
world

# %% [markdown]
# ## Frames and dense labels
# Five frames of one 30-frame clip (17 fps): the camera drives forward, objects move on their own.

# %%
ts = [0, 7, 14, 21, 29]
fig, axes = plt.subplots(2, len(ts), figsize=(3.2 * len(ts), 3.4))
for k, t in enumerate(ts):
    axes[0, k].imshow(clip.frames[t]); axes[0, k].set_title(f"frame {t}")
    axes[1, k].imshow(colorize(clip.labels[t]))
    for a in axes[:, k]:
        a.axis("off")
plt.tight_layout()
save_figure(fig, "paperlib", "world_frames", profile=profile, params=params, started=STARTED)

# %% [markdown]
# ## Exact optical flow, and what it is good for
# `flow_fw[t]` sends pixel p of frame t to p + flow in frame t+1. Backward-warping frame t+1
# with it reproduces frame t wherever the point stays visible (`valid_fw`); where it does not
# (occlusion, leaving the view) the error is large — exactly the pixels propagation must not trust.

# %%
import cv2


def flow_to_rgb(flow):
    """Middlebury-style colour coding: hue = direction, saturation = magnitude."""
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (ang * 90 / np.pi).astype(np.uint8)
    hsv[..., 1] = np.clip(mag / max(np.percentile(mag, 99), 1e-6) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def backward_warp(img, flow):
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


t = 14
warped = backward_warp(clip.frames[t + 1], clip.flow_fw[t])
err = np.abs(warped.astype(np.float32) - clip.frames[t].astype(np.float32)).mean(-1)
valid = clip.valid_fw[t]
fig, axes = plt.subplots(1, 5, figsize=(17, 3))
for a, im, title in zip(axes, (clip.frames[t], flow_to_rgb(clip.flow_fw[t]), valid, warped, err),
                        (f"frame {t}", "flow t→t+1", "valid (not occluded, in view)",
                         "frame t+1 warped back", "|warped − frame t|")):
    a.imshow(im, cmap="gray" if im.ndim == 2 else None)
    a.set_title(title); a.axis("off")
plt.tight_layout()
save_figure(fig, "paperlib", "world_flow", profile=profile, params=params, started=STARTED)
print(f"mean |error| at valid pixels: {err[valid].mean():.2f} grey levels; "
      f"at occluded / out-of-view pixels: {err[~valid].mean() if (~valid).any() else float('nan'):.2f}; "
      f"valid: {100 * valid.mean():.1f}% of pixels; max |flow| {np.abs(clip.flow_fw[t]).max():.1f} px")

# %% [markdown]
# ## Human-style annotation: clean vs noisy vs coarse
# The clean labels of every frame stay available for evaluation; training sees what an annotator
# would have drawn: boundaries off by a few pixels, or coarse polygons with unlabelled (black) gaps.

# %%
clean = annotate(clip, "cityscapes", noise_px=0)
noisy = annotate(clip, "cityscapes", noise_px=3, seed=seed)
coarse = annotate(clip, "cityscapes", noise_px=0, coarse=True, seed=seed)
diff = noisy.labels[0] != clean.labels[0]
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for a, im, title in zip(axes, (colorize(clean.labels[0]), colorize(noisy.labels[0]), diff,
                               colorize(coarse.labels[0])),
                        (f"clean, frame {clean.indices[0]}", "noisy (3 px)",
                         f"changed pixels ({100 * diff.mean():.1f}%)", "coarse polygons")):
    a.imshow(im, cmap="gray" if im.ndim == 2 else None)
    a.set_title(title); a.axis("off")
plt.tight_layout()
save_figure(fig, "paperlib", "world_annotation", profile=profile, params=params, started=STARTED)

# %% [markdown]
# ## Domains side by side
# `city_a` is the source domain, `city_b` the target of the self-training transfer experiments,
# `city_c` a third city; `city_fine` carries a finer label set for new-class transfer.

# %%
names = list(DOMAINS)
fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 3.6))
for k, name in enumerate(names):
    c = SyntheticWorld(name, size=SIZE, seed=seed).clip(0, length=20, flow=False)
    axes[0, k].imshow(c.frames[19]); axes[0, k].set_title(name)
    axes[1, k].imshow(colorize(c.labels[19]))
    for a in axes[:, k]:
        a.axis("off")
plt.tight_layout()
save_figure(fig, "paperlib", "world_domains", profile=profile, params=params, started=STARTED)

# %% [markdown]
# ## Class frequencies beside Cityscapes'
# Share of labelled pixels per class over `N_CLIPS` clips of `city_a`, next to Cityscapes'
# (fine annotations; source in `paperlib/reference/cityscapes_class_frequency.json`). The world
# should be long-tailed in the same order: road, building, vegetation common; train, motorcycle,
# rider rare.

# %%
ref_file = Path(paperlib.__file__).parent / "reference" / "cityscapes_class_frequency.json"
ref = json.loads(ref_file.read_text())
counts = np.zeros(19, np.int64)
for i in range(N_CLIPS):
    for rec in world.frames(i, np.linspace(0, 29, FREQ_FRAMES).round().astype(int).tolist(), length=30):
        counts += np.bincount(rec.label[rec.label < 19].ravel(), minlength=19)[:19]
ours = 100 * counts / counts.sum()
cs = np.array([ref["percent_of_labelled_19"][c] for c in CITYSCAPES_CLASSES])
df = pd.DataFrame({"class": CITYSCAPES_CLASSES, "world city_a (%)": ours.round(3),
                   "Cityscapes fine (%)": cs})
df["rank world"] = (-df["world city_a (%)"]).rank(method="min").astype(int)
df["rank Cityscapes"] = (-df["Cityscapes fine (%)"]).rank(method="min").astype(int)

fig, ax = plt.subplots(figsize=(11, 3.6))
x = np.arange(19)
ax.bar(x - 0.2, ours, 0.4, label="world city_a")
ax.bar(x + 0.2, cs, 0.4, label="Cityscapes (fine)")
ax.set_yscale("log"); ax.set_ylabel("% of labelled pixels")
ax.set_xticks(x, CITYSCAPES_CLASSES, rotation=60, ha="right")
ax.legend(); ax.set_title("class frequencies (log scale)")
plt.tight_layout()
save_figure(fig, "paperlib", "world_class_frequency", profile=profile, params=params, started=STARTED)

rho = np.corrcoef(df["rank world"], df["rank Cityscapes"])[0, 1]  # Spearman = Pearson of ranks
print(f"Spearman rank correlation with Cityscapes: {rho:.2f}")
write_table(df, "paperlib", "world_class_frequency", profile=profile, params=params, seeds=[seed],
            started=STARTED, by=["class"], value_cols=["world city_a (%)"],
            notes=f"{N_CLIPS} clips x {FREQ_FRAMES} frames of city_a at {SIZE[0]}x{SIZE[1]}. "
                  f"Cityscapes column: {ref['source']['table']} (renormalised over the 19 classes). "
                  f"Spearman rank correlation {rho:.2f}.")
df
