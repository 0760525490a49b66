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
# paperlib: writes tables/vplr/label_quality, figures/vplr/label_quality, figures/vplr/label_quality_examples

# %% [markdown]
# # VPLR: how good are propagated labels? (a table no paper has)
#
# VPLR (Zhu et al., CVPR 2019) makes new training pairs from a labelled frame `(I_i, L_i)` by
# moving it through the video. A motion `m` warps the most recent frame, `I~_{t+1} = T(m, I_t)`
# (Eq. 1), where `T` samples `I_t` bilinearly at `p + m(p)`; the same motion warps the label,
# `L~_{t+1} = T(m, L_t)` (Eq. 2), sampled nearest so classes stay classes (void stays void, and a
# pixel sampled from outside the frame becomes void). In the paper `m` comes from a learned
# video-*prediction* network G that sees past frames and flows (Eq. 1-2), or a video-*reconstruction*
# network that also sees the future frame (Eq. 3); its baseline is plain optical flow (FlowNet2).
# Propagation is auto-regressive: step `k` warps the result of step `k-1`, forward (`+k`) and
# backward (`-k`, the same on the reversed clip).
#
# The propagated label `L~_{i+k}` is then paired with an image in one of two ways (Sec. 3.2):
#
# * **label propagation (LP)** pairs it with the *real* frame `I_{i+k}`. Where the motion is
#   wrong, the label no longer matches what the image shows (the paper's Figure 2: poles and legs);
# * **joint propagation (JP)** pairs it with the *propagated* frame `I~_{i+k}`, warped by the same
#   motion, so image and label stay aligned even where the motion is wrong -- the price is an
#   image that is distorted rather than real.
#
# Cityscapes has one label per 30-frame snippet, so the paper can only measure these pairs
# indirectly (by training on them). The synthetic world has a clean label on *every* frame, so we
# can score them directly:
#
# * **LP**: the propagated label against the clean label of frame `i+k`;
# * **JP**: the *same* label array, but the image is `I~_{i+k}`, whose pixel `p` is a bilinear mix
#   of source pixels of `I_i`. Its true class is the class that makes most of that mix, which we
#   get by warping the one-hot label exactly like the image (bilinear, border padding, same
#   steps) and taking the argmax (`paperlib.propagation.quality.soft_propagate`). Scoring the
#   JP label against the clean label of frame `i+k` would just repeat the LP number: it measures
#   the label, not the pair. JP's cost shows in a second number instead: how far the propagated
#   frame is from the real one (mean absolute difference, grey levels, on the labelled pixels).
#
# Void pixels of the propagated label are ignored by training, so they are not scored as
# errors: accuracy and mIoU are over pixels labelled in both maps, and `coverage` reports how many
# of the truth's labelled pixels still carry a label. `boundary errors` is the share of errors
# within `radius` = 2 px of a class edge of the truth, next to `boundary px`, the share of scored
# pixels there; `boundary_acc` / `interior_acc` are the accuracies on either side, which the
# boundary claim compares.
#
# Two mechanisms to keep in mind when reading the numbers. (1) Even exact flow is exact only for
# points visible in both frames: at disocclusions no backward flow points at the right content,
# (the backward flow of a newly revealed background pixel points at where that point was, behind
# the occluder, so the label copies the occluder -- the paper's own argument for learned motion
# vectors in Sec. 3.1), and nearest-neighbour sampling of a label at a sub-pixel position can pick
# the neighbour across an edge. A classical flow such as DIS, which follows appearance and is
# smooth, can therefore beat the exact flow for LP. (2) A JP pair is perfectly consistent at k = 1 (label and image sample the same point),
# but from k = 2 on, the label is re-sampled at *rounded* positions step after step while the image
# is re-sampled bilinearly at the exact ones, so the two drift apart by up to half a pixel per
# step -- at edges, and more at small image sizes where a large share of pixels is near an edge.
#
# Motions: the world's **exact** flow (an upper bound for any flow), OpenCV **DIS** flow (the
# classical-flow stand-in for FlowNet2), and **copy** (zero motion: the label of frame `i` reused
# unchanged -- what propagation has to beat). A learned motion model (MotionNet, Eq. 1/3) is not a
# row here: training it is not cheap at these profiles (about 1 s per step at 64x128 on this CPU),
# and it is the subject of the Figure 5b notebook in the next slice.

# %% tags=["parameters"]
profile = "smoke"
clips = None       # None: the profile's number of clips (smoke 2, cpu 8, gpu 32, paper 64)
k_max = 5          # propagation lengths 1..k_max, forward and backward
radius = 2         # boundary band half-width in pixels
domain = "city_a"
seed = 0

# %%
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from paperlib.data.labels import colorize
from paperlib.data.synthetic import SyntheticWorld
from paperlib.profiles import get_profile
from paperlib.propagation import dis_flows, exact_flow, flow_motion, propagate
from paperlib.propagation.quality import clip_quality, soft_propagate
from paperlib.repro import check_params, save_figure, write_table

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "clips": (int, type(None)),
           "k_max": lambda v: isinstance(v, int) and 1 <= v <= 12,
           "radius": lambda v: isinstance(v, int) and 0 <= v <= 16,
           "domain": ("city_a", "city_b", "city_c", "city_fine"), "seed": int}
ALLOWED["k_max"].__doc__ = "k_max must be an int in 1..12"
ALLOWED["radius"].__doc__ = "radius must be an int in 0..16"
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)
if clips is not None and clips < 1:
    raise ValueError(f"clips must be >= 1 or None, got {clips}")

SIZE = get_profile(profile).world_image_size
N_CLIPS = clips or {"smoke": 2, "cpu": 8, "gpu": 32, "paper": 64}[profile]
START = k_max                     # the labelled frame, with k_max frames on each side
LENGTH = 2 * k_max + 1
NUM_CLASSES = 19
world = SyntheticWorld(domain, size=SIZE, seed=seed)
params.update(size=list(SIZE), n_clips=N_CLIPS, start=START, length=LENGTH, world=world.params())
print(f"{world}: {N_CLIPS} clips of {LENGTH} frames, labelled frame {START}, k = ±1..±{k_max}")

# %% [markdown]
# ## Propagate and score
# For each clip: render it with its exact flow, compute DIS flow between neighbouring frames,
# propagate frame `START`'s image and clean label `k_max` steps each way with each motion, and
# score every step as LP and as JP. Counts are pooled over clips (the table's numbers); the
# per-clip accuracies give the spread.

# %%
MOTIONS = {"exact": lambda clip: flow_motion(exact_flow(clip)),
           "DIS": lambda clip: flow_motion(dis_flows(clip.frames)),
           "copy": lambda clip: (lambda j, s: np.zeros((*clip.frames.shape[1:3], 2), np.float32))}

pooled, per_clip = {}, []
for index in tqdm(range(N_CLIPS), desc="clips"):
    clip = world.clip(index, length=LENGTH)
    for motion, make in MOTIONS.items():
        scores = clip_quality(clip.frames, clip.labels, START, k_max, make(clip), NUM_CLASSES, radius)
        for (pairing, k), q in scores.items():
            key = (motion, pairing, k)
            pooled[key] = pooled[key].merge(q) if key in pooled else q
            qs = q.summary()
            per_clip.append({"motion": motion, "pairing": pairing, "k": k, "clip": index,
                             "accuracy": qs["accuracy"], "boundary_acc": qs["boundary_acc"],
                             "interior_acc": qs["interior_acc"], "image_error": qs["image_error"]})
    if index == 0:
        example = clip

spread = pd.DataFrame(per_clip).groupby(["motion", "pairing", "k"])["accuracy"].std()
rows = []
for (motion, pairing, k), q in pooled.items():
    s = q.summary()
    rows.append({"motion": motion, "pairing": pairing, "direction": "forward" if k > 0 else "backward",
                 "k": k, "accuracy": 100 * s["accuracy"],
                 "accuracy_std_clips": 100 * spread.get((motion, pairing, k), np.nan),
                 "miou": 100 * s["miou"], "coverage": 100 * s["coverage"],
                 "boundary_px": 100 * s["boundary_px"], "boundary_errors": 100 * s["boundary_errors"],
                 "boundary_acc": 100 * s["boundary_acc"], "interior_acc": 100 * s["interior_acc"],
                 "image_error": s["image_error"]})
df = (pd.DataFrame(rows).sort_values(["motion", "pairing", "k"], key=lambda c: c.map(
      {"exact": 0, "DIS": 1, "copy": 2, "LP": 0, "JP": 1}) if c.name in ("motion", "pairing") else c)
      .reset_index(drop=True))
df.round(2)

# %% [markdown]
# ## Accuracy vs propagation length
# Left: pixel accuracy of the pair (LP solid, JP dashed) vs signed `k`; the band is ± one
# standard deviation over clips. Middle: mIoU. Right: the share of errors within 2 px of a
# boundary (solid) next to the share of pixels there (dotted): the gap is how strongly errors
# concentrate on edges.

# %%
import matplotlib.pyplot as plt

COLORS = {"exact": "tab:blue", "DIS": "tab:orange", "copy": "tab:gray"}
STYLE = {"LP": "-", "JP": "--"}
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for (motion, pairing), g in df.groupby(["motion", "pairing"], sort=False):
    g = g.sort_values("k")
    label = f"{pairing}, {motion}"
    kw = dict(color=COLORS[motion], ls=STYLE[pairing], marker="o", ms=3)
    axes[0].plot(g.k, g.accuracy, label=label, **kw)
    axes[0].fill_between(g.k, g.accuracy - g.accuracy_std_clips, g.accuracy + g.accuracy_std_clips,
                         color=COLORS[motion], alpha=0.1)
    axes[1].plot(g.k, g.miou, label=label, **kw)
    if pairing == "LP":
        axes[2].plot(g.k, g.boundary_errors, label=f"errors, {motion}", **kw)
        axes[2].plot(g.k, g.boundary_px, color=COLORS[motion], ls=":", label=f"pixels, {motion}")
for ax, title in zip(axes, ("pixel accuracy of the pair (%)", "mIoU of the pair (%)",
                            "LP: share within 2 px of a boundary (%)")):
    ax.set_xlabel("propagation length k (− backward, + forward)")
    ax.set_title(title)
    ax.axvline(0, color="k", lw=0.5)
    ax.legend(fontsize=7)
plt.tight_layout()
save_figure(fig, "vplr", "label_quality", profile=profile, params=params, seeds=[seed], started=STARTED)

# %% [markdown]
# ## What the pairs look like
# Clip 0 at `+k_max` with DIS flow. LP: the real frame with the propagated label's errors in red
# (against the frame's clean label). JP: the propagated frame with its errors (against the label
# of the propagated frame). Void (unlabelled) pixels are black in the label panels.

# %%
def overlay_errors(img: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = img.copy()
    wrong = (pred != truth) & (pred != 255) & (truth != 255)
    out[wrong] = (255, 0, 0)
    return out


motion = MOTIONS["DIS"](example)
images, labels = propagate(example.frames, example.labels[START], START, k_max, motion)
jp_truth = soft_propagate(example.labels[START], START, k_max, motion, NUM_CLASSES)[-1]
prop_img, prop_lab, real = images[-1], labels[-1], example.frames[START + k_max]
panels = [(example.frames[START], f"labelled frame {START}"), (colorize(example.labels[START]), "its label"),
          (colorize(prop_lab), f"propagated label, k=+{k_max}"),
          (real, f"real frame {START + k_max} (LP image)"),
          (overlay_errors(real, prop_lab, example.labels[START + k_max]), "LP errors (red)"),
          (prop_img, "propagated frame (JP image)"),
          (overlay_errors(prop_img, prop_lab, jp_truth), "JP errors (red)"),
          (colorize(example.labels[START + k_max]), f"clean label of frame {START + k_max}")]
fig, axes = plt.subplots(2, 4, figsize=(16, 4.6))
for ax, (im, title) in zip(axes.flat, panels):
    ax.imshow(im)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.tight_layout()
save_figure(fig, "vplr", "label_quality_examples", profile=profile, params=params, seeds=[seed],
            started=STARTED)

# %% [markdown]
# ## Claims
# Declared in `paperlib/reference/claims/vplr.toml` before this run; verdicts from
# `paperlib.claims`, paired by clip: each clip gives one value per measure -- its mean over the
# offsets `±1..±k_max`, or its least-squares slope against `|k|` (`unit_measures`). The paper's
# statements, per motion (exact, DIS): JP pairs are better aligned than LP pairs (Fig. 2);
# longer propagation gives lower-quality labels (LP accuracy falls with `|k|`) and samples (the
# JP frame drifts from the real one); labels at boundaries are less trustworthy than inside
# objects. Each is gated by a positive control that the motion propagates at all: its LP labels
# beat copying the labelled frame's label unchanged. Exact vs DIS is no claim (see mechanism (1)
# above: DIS may beat the exact flow for LP).

# %%
from paperlib import claims
from paperlib.propagation.analysis import unit_measures

PCT = ["accuracy", "boundary_acc", "interior_acc"]
CLIP = pd.DataFrame(per_clip)
CLIP[PCT] = 100 * CLIP[PCT]
MEASURES = unit_measures(CLIP, unit="clip", by=["motion", "pairing"], means=[*PCT, "image_error"],
                         slopes=["accuracy", "image_error"])
CLAIMS = claims.evaluate(claims.declared("vplr", "label_quality"), MEASURES, value="value", unit="clip")
claims.show(CLAIMS)
MEASURES.pivot_table(index=["motion", "pairing"], columns="measure", values="value", aggfunc="mean").round(2)

# %% [markdown]
# ## The table
# All values in %, except `image_error` (mean |propagated − real frame| in grey levels on the
# labelled pixels; empty for LP, whose image is the real frame). `accuracy_std_clips` is the
# standard deviation of the per-clip accuracy. Then the claims.

# %%
notes = (f"Propagated-label quality on the synthetic world ({domain}, {SIZE[0]}x{SIZE[1]}, "
         f"{N_CLIPS} clips, labelled frame {START} of {LENGTH}). LP: propagated label vs the clean "
         f"label of the real frame i+k. JP: the same label vs the label of the propagated frame "
         f"(one-hot label warped like the image, argmax). Pixels void in either map are not scored "
         f"(coverage = scored / labelled truth pixels). boundary_*: within {radius} px of a class edge "
         f"of the truth. Motions: exact world flow, OpenCV DIS, copy (zero motion). No paper reports "
         f"these numbers.")
write_table(df, "vplr", "label_quality", profile=profile, params=params, seeds=[seed], started=STARTED,
            notes=notes, by=["motion", "pairing", "direction", "k"], claims=CLAIMS)
df.round(2)

# %%
print(f"({profile} profile, {N_CLIPS} clips, {SIZE[0]}x{SIZE[1]}, {time.time() - STARTED:.0f} s)")
