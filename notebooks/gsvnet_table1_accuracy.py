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
# paperlib: writes tables/gsvnet/table1, tables/gsvnet/tradeoff, figures/gsvnet/fig3_flow, figures/gsvnet/figA5_tradeoff, figures/gsvnet/figA6_tradeoff, figures/gsvnet/miou_by_distance, figures/gsvnet/overlay_demo

# %% [markdown]
# # GSVNet Table 1 and Figures 3 / A5 / A6: accuracy against throughput
#
# GSVNet segments every l-th frame (the **keyframe**) with an image network N -- SwiftNet-R18 or
# BiSeNet-R18 on the frame downscaled by 0.75 -- and every other frame with its propagation
# framework **PF** (`paperlib.video.GSVNet`, Fig. 2): a lightweight flow network O estimates the
# backward flow at 1/8 of the frame (computed at 1/32, appendix C), the previous 1/8 segmentation
# is warped with it in *output space* (Eq. 1), three convs give crude intra-frame features of the
# current frame, and the guided spatially-varying convolution (Eq. 2) mixes, per pixel, nine
# one-pixel shifts of the warped segmentation and the intra prediction with weights a small
# guiding network reads off the intra features and the edge map of the warped segmentation.
#
# **Protocol (Sec. 4.1).** For a clip labelled at frame b, and keyframe interval l, the pairs
# (b - i, b), i = 0..l-1, start at keyframe b - i and propagate to b. *Average mIoU* pools one
# confusion matrix over the l distances; *minimum mIoU* is the farthest distance, l - 1. The world
# labels every frame, so we label frame b = `length - 1` of short clips and also report mIoU per
# distance. One evaluation at l = 5 contains every shorter interval's pairs
# (`paperlib.video.interval_metrics`). Image-based baselines run the image network on the
# downscaled frame (input scale 1, 0.75, 0.6, 0.5) and upsample its output to full resolution;
# every score is at full resolution.
#
# **Training here.** The keyframe networks are trained once with `paperlib.engine.train` on the
# world (`pretrained_keyframe`, cached under the data directory and shared with the ablation
# notebook) at reduced width. PF is trained with the keyframe network frozen, as in the paper:
# the flow net O is first pre-trained on the world's exact flow (end-point error; the authors start
# from a pre-trained light flow net too), then everything is trained end-to-end with no flow
# supervision by cross-entropy on the propagated frame plus 10 x KL to the keyframe network's
# prediction on that frame (the authors' public code), on sequences of 1..4 steps.
#
# **Speed.** `fps_cpu_<H>x<W>` is measured on this CPU (one thread) at the profile's frame size
# with the networks as trained (reduced width): ``l / (t_key + (l - 1) t_nonkey)`` for the video
# loop from the best of several interleaved rounds. At these tiny frames fixed per-call costs
# dominate PF (dozens of small ops), so a second speed axis is given: **multiply-adds of the
# paper-size networks at 1024x2048** (`GMACs_avg_1024x2048`, averaged over the interval as in
# Table 2; counted, not timed). Neither is the paper's GTX 1080Ti FPS; only trends compare.
#
# **Fig. 3** compares flow estimators inside the same trained PF: our O, a heavier classical flow
# (OpenCV DIS, standing in for FlowNet2s; its CPU time is added to the non-key step) and the
# world's exact flow (an upper bound; no estimation cost counted) -- and the paper's third curve,
# **A-Lite** (Sec. 4.3): Accel (Jain et al. 2019) trained with *our* light flow net and light
# feature extractor. Accel propagates in **feature space**: the keyframe network's last feature
# map (before its classifier) is warped frame to frame with the flow, each frame from the previous
# frame's warped features, and the keyframe network's own classifier turns it into a *reference*
# score map; an *update* branch (here PF's 3-conv intra network on the 1/8 frame) gives a second
# score map from the current frame, and a 1x1 conv over the two fuses them
# (`paperlib.video.ALite`). Nothing corrects the warped features spatially (no guided
# spatially-varying convolution), and the warp moves the feature map (128 channels at stride 4 of
# the 0.75 frame for SwiftNet-R18) instead of 19 class maps on the 1/8 grid. A-Lite uses the same
# SwiftNet-R18 keyframes at 0.75, starts from the same pre-trained flow net and is trained with the
# same recipe and number of steps as PF (CE + 10 x KL, keyframe net frozen), for every seed. (The
# paper's Fig. 4 names BiSeNet-R18 (0.75) as A-Lite's keyframe net; `ALite` accepts either.)
# The paper: A-Lite "suffers a significant mIoU drop" against Ours at a similar throughput, with
# "seriously distorted object boundaries".

# %% tags=["parameters"]
profile = "smoke"
seeds = None         # None: the profile's number of PF training seeds (smoke 1, cpu 2, gpu/paper 3)
key_steps = None     # None: the profile's keyframe-network training steps
pf_steps = None      # None: the profile's PF training steps
domain = "city_a"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from paperlib import reference
from paperlib.models import build
from paperlib.profiles import get_profile
from paperlib.profiling import count_flops, count_parameters, interleaved_best
from paperlib.propagation.motion import dis_flow
from paperlib.repro import check_params, positive_or_none, save_figure, write_table
from paperlib.video import (ALite, KeyframeSegmenter, alite_complexity, backward_warp, evaluate_intervals, frame_tensor,
                            interval_metrics, nonkey_complexity, propagate, save_overlay_video, segment_video,
                            trained_alite, trained_pf, video_setup)
from paperlib.video.alite import boundary_accuracy
from paperlib.video.analysis import compare_with_spread, image_miou_at_speed

STARTED = time.time()


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": positive_or_none, "key_steps": positive_or_none,
           "pf_steps": positive_or_none, "domain": ("city_a", "city_b", "city_c")}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

# Sizes per profile. cpu: 128x256 world, width-16 keyframe nets (400 steps, cached), PF at the paper's
# width (0.40M parameters) trained 100 steps per seed after 100 flow pre-training steps (A-Lite: the same
# pre-trained flow net, the same 100 steps); 12 training and 8 evaluation clips of 12 frames. Chosen to
# fit ~8 min on a quiet 2-core machine (keyframe nets cached).
SIZES = {
    "smoke": dict(key_width=8, key_steps=10, train_clips=2, val_clips=2, length=6, flow_steps=3, pf_steps=3,
                  batch=2, seeds=1, repeats=1, video_len=6),
    "cpu": dict(key_width=16, key_steps=400, train_clips=12, val_clips=8, length=12, flow_steps=100, pf_steps=100,
                batch=4, seeds=2, repeats=5, video_len=30),
    "gpu": dict(key_width=None, key_steps=4000, train_clips=128, val_clips=64, length=20, flow_steps=2000,
                pf_steps=3000, batch=8, seeds=3, repeats=10, video_len=60),
}
SIZES["paper"] = SIZES["gpu"]
S = dict(SIZES[profile])
S.update({k: v for k, v in (("key_steps", key_steps), ("pf_steps", pf_steps), ("seeds", seeds)) if v})
PROF = get_profile(profile)
H, W = PROF.world_image_size
LABEL = S["length"] - 1            # the labelled frame b of every evaluation clip
MAX_L = 5                          # intervals 1..5 (Fig. A5); Table 1 shows l = 2, 3, 4
SCALES = (1.0, 0.75, 0.6, 0.5)     # image-based input scales (Fig. A5)
KEY_NETS = {"SN": ("SwiftNet-R18", "swiftnet_resnet18"), "BN": ("BiSeNet-R18", "bisenet_resnet18")}
SEEDS = list(range(S["seeds"]))
FPS_COL = f"fps_cpu_{H}x{W}"
torch.set_num_threads(1)  # timings and training on a shared machine: one thread each
params.update(sizes=S, frame=[H, W])
print(f"profile {profile}: world {domain} {H}x{W}, keyframe width {S['key_width']}, seeds {SEEDS}; sizes {S}")

# %% [markdown]
# ## The keyframe networks (trained once, cached) and the clips
# `video_setup` (shared with the ablation notebook): training clips are world clips 0.. (the keyframe
# networks saw only their frame 19 at most); evaluation clips start at index 1000, disjoint from every
# exported split.

# %%
setup = video_setup(profile, {tag: reg for tag, (_, reg) in KEY_NETS.items()}, key_width=S["key_width"],
                    key_steps=S["key_steps"], train_clips=S["train_clips"], val_clips=S["val_clips"],
                    length=S["length"], domain=domain)
keys, key_info, world = setup.keys, setup.key_info, setup.world
train_clips, val_clips, val_idx = setup.train_clips, setup.val_clips, setup.val_idx
for tag, (label, _) in KEY_NETS.items():
    i = key_info[tag]
    how = "cached" if i["cached"] else f"trained in {i['wall_time']:.0f} s"
    print(f"{label}: val mIoU {100 * i['miou']:.1f} (image, full scale) after {i['steps']} steps ({how})")


class WithFlows:
    """A clip whose ``flow_bw`` is replaced (e.g. by DIS flow) for ``evaluate_intervals(exact_flow=True)``."""

    def __init__(self, clip, flows):
        self.frames, self.labels, self.flow_bw = clip.frames, clip.labels, flows


dis_clips = [WithFlows(c, np.stack([dis_flow(c.frames[t], c.frames[t - 1]) for t in range(1, len(c.frames))]))
             for c in tqdm(val_clips, desc="DIS flow")]

# %% [markdown]
# ## Train PF for each keyframe network and seed, and A-Lite for SwiftNet-R18 (cached)

# %%
pfs, alites = {}, {}
for tag in KEY_NETS:
    for seed in SEEDS:
        pfs[tag, seed], info = trained_pf(keys[tag], train_clips, setup.cache[tag], steps=S["pf_steps"],
                                          flow_steps=S["flow_steps"], batch_size=S["batch"], seed=seed, progress=False)
        print(f"PF for {tag}, seed {seed}: loss {info['loss_first']:.3f} -> {info['loss_last']:.3f}, flow EPE after "
              f"pre-training {info['flow_epe_last']:.3f} px (1/8 grid) ({'cached' if info['cached'] else 'trained'})")
for seed in SEEDS:  # same keyframe net, pre-trained flow net, recipe and steps as PF
    alites[seed], info = trained_alite(keys["SN"], train_clips, setup.cache["SN"], steps=S["pf_steps"],
                                       flow_steps=S["flow_steps"], batch_size=S["batch"], seed=seed, progress=False)
    print(f"A-Lite (SN), seed {seed}: loss {info['loss_first']:.3f} -> {info['loss_last']:.3f} "
          f"({'cached' if info['cached'] else 'trained'})")

# %% [markdown]
# ## Evaluate: image-based at four input scales, video-based at l = 1..5

# %%
def run_eval(clips, key, pf, key_scale, stride, max_l, exact):
    k = KeyframeSegmenter(key, key_scale, stride)
    return evaluate_intervals(clips, k, pf, max_l, label_index=LABEL, exact_flow=exact, progress=False)["confusions"]


rows = []
for tag, (label, _) in KEY_NETS.items():
    for s in SCALES:  # image-based: the network's own output, upsampled to full resolution
        cms = run_eval(val_clips, keys[tag], pfs[tag, 0], s, 1, 1, False)
        m = 100 * cms[0].miou()
        rows.append(dict(curve=f"{label} (image)", key=tag, flow="-", key_scale=s, interval=1, seed=0,
                         avg_miou=m, min_miou=m, kind="image"))
    for seed in SEEDS:
        variants = [("O", 0.75, val_clips, False), ("O", 1.0, val_clips, False)]
        if tag == "SN":
            variants += [("DIS", 0.75, dis_clips, True), ("exact", 0.75, val_clips, True)]
        for flow, ks, clips, exact in tqdm(variants, desc=f"eval {tag} seed {seed}"):
            cms = run_eval(clips, keys[tag], pfs[tag, seed], ks, 8, MAX_L, exact)
            for l in range(1, MAX_L + 1):
                m = interval_metrics(cms, l)
                rows.append(dict(curve=f"Ours-{tag}-R18 ({flow} flow, key {ks})", key=tag, flow=flow, key_scale=ks,
                                 interval=l, seed=seed, avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"],
                                 kind="video"))
            if flow == "O" and ks == 0.75:
                rows[-1]["miou_by_distance"] = [100 * cm.miou() for cm in cms]
for seed in SEEDS:  # A-Lite: SwiftNet-R18 keyframes at 0.75, its own flow net
    cms = run_eval(val_clips, keys["SN"], alites[seed], 0.75, 8, MAX_L, False)
    for l in range(1, MAX_L + 1):
        m = interval_metrics(cms, l)
        rows.append(dict(curve="A-Lite-SN-R18 (O flow, key 0.75)", key="SN", flow="O", key_scale=0.75, interval=l,
                         seed=seed, avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"], kind="alite"))
    rows[-1]["miou_by_distance"] = [100 * cm.miou() for cm in cms]
acc = pd.DataFrame(rows)
acc.groupby(["curve", "interval"])[["avg_miou", "min_miou"]].mean().round(1).unstack("interval")

# %% [markdown]
# ## Object boundaries at the farthest frame (Sec. 4.4, Fig. 4)
# The paper shows A-Lite's "seriously distorted object boundaries". We score pixel accuracy on the
# boundary band (within 2 px of a label change, `paperlib.video.alite.boundary_accuracy`) and on the
# rest, on the labelled frame propagated l - 1 = 4 steps from its keyframe, for Ours and A-Lite
# (SwiftNet-R18 keyframes at 0.75, every seed).


# %%
@torch.no_grad()
def boundary_scores(net):
    k, first = KeyframeSegmenter(keys["SN"], 0.75, 8), LABEL - (MAX_L - 1)
    tot = {"boundary": np.zeros(2), "interior": np.zeros(2)}
    for clip in val_clips:
        *_, seg = propagate(clip.frames[first:LABEL + 1], k, net, MAX_L)
        label = np.asarray(clip.labels[LABEL])
        pred = torch.nn.functional.interpolate(seg, size=label.shape, mode="bilinear", align_corners=False).argmax(1)[0]
        for name, counts in boundary_accuracy(pred.numpy(), label).items():
            tot[name] += counts
    return {f"{name}_acc": 100 * c / max(n, 1) for name, (c, n) in tot.items()}


bnd = pd.DataFrame([{"method": m, "seed": seed, **boundary_scores(net)} for seed in SEEDS
                    for m, net in (("Ours-SN-R18", pfs["SN", seed]), ("A-Lite-SN-R18", alites[seed]))])
bnd_stats = bnd.groupby("method")[["boundary_acc", "interior_acc"]].agg(["mean", "std"])
bnd_stats.round(1)

# %% [markdown]
# ## Time every step on this CPU, count paper-size multiply-adds
#
# Interleaved rounds (each step once per round, best of the rounds). `key` = the keyframe network
# at the scale, logits resized to the 1/8 grid; `image` = the network at the scale (its output is
# upsampled and arg-maxed like every other method's, which is not counted); `PF` = one non-key step
# with its flow net; `PF (given flow)` skips the flow net; `DIS` = OpenCV DIS flow on two frames;
# `A-Lite` = one A-Lite non-key step (flow net, feature warp, classifier, update branch, fusion; its
# keyframe step is the keyframe net's); `warp output` / `warp features` = the warp alone (Eq. 1), at
# the paper's 1024x2048 frames with paper-size networks, of PF's 19 class maps on the 1/8 grid and of
# A-Lite's SwiftNet-R18 features (128 channels at stride 4 of the 0.75 frame) -- the data each moves.
# Multiply-adds count convolutions, not the warp (a memory-bound sampling op), so A-Lite's GMACs (no
# guiding network) understate its non-key cost; the warp timings show what the counts miss.

# %%
clip0 = val_clips[0]
f0, f1 = frame_tensor(clip0.frames[0]), frame_tensor(clip0.frames[1])
pf0 = pfs["SN", 0]
seg8 = torch.zeros(1, 19, *pf0.grid_size(f0))
flow_full = torch.zeros(1, 2, H, W)
PAPER = (1024, 2048)
full = {tag: build(reg, **({"aux": False} if reg == "bisenet_resnet18" else {})) for tag, (_, reg) in KEY_NETS.items()}
alite_paper = alite_complexity(ALite(full["SN"]), PAPER)
big = {"output": torch.randn(1, 19, PAPER[0] // 8, PAPER[1] // 8), "features": torch.randn(1, *alite_paper["feature_shape"])}
fns = {}
with torch.no_grad():
    for tag in KEY_NETS:
        for s in SCALES:
            fns[f"image {tag} {s}"] = (lambda m=keys[tag], s=s: m(
                torch.nn.functional.interpolate(f0, scale_factor=s, mode="bilinear") if s != 1 else f0))
        for s in (0.75, 1.0):
            fns[f"key {tag} {s}"] = (lambda m=KeyframeSegmenter(keys[tag], s, 8): m(f0))
    fns["PF"] = lambda: pf0(seg8, f0, f1)
    fns["PF (given flow)"] = lambda: pf0(seg8, f0, f1, flow=flow_full)
    fns["DIS"] = lambda: dis_flow(clip0.frames[1], clip0.frames[0])
    al0 = alites[0]
    feat0 = al0.keyframe(f0)["state"]
    fns["A-Lite"] = lambda: al0(feat0, f0, f1)
    zero_flow = {k: torch.zeros(1, 2, *v.shape[-2:]) for k, v in big.items()}
    fns["warp output"] = lambda: backward_warp(big["output"], zero_flow["output"])
    fns["warp features"] = lambda: backward_warp(big["features"], zero_flow["features"])
    T = interleaved_best(fns, S["repeats"])
print(pd.Series({k: round(1e3 * v, 2) for k, v in T.items()}, name="ms (CPU, 1 thread)").to_string())

gmacs = {(tag, s): count_flops(KeyframeSegmenter(full[tag], s, 1), PAPER).gmacs
         for tag in KEY_NETS for s in SCALES}
NK_GMACS = nonkey_complexity(pfs["SN", 0], PAPER)["macs"] / 1e9
AL_GMACS = alite_paper["macs"] / 1e9
nonkey_mb = count_parameters(pfs["SN", 0])[1] / 1e6
key_mb = {tag: count_parameters(keys[tag])[1] / 1e6 for tag in KEY_NETS}
print(f"paper-size GMACs: PF {NK_GMACS:.2f}, A-Lite non-key step {AL_GMACS:.2f}; keyframes",
      {k: round(v, 1) for k, v in gmacs.items()})
# data each warp moves per non-key frame at 1024x2048 (paper-size nets): PF 19 maps on the 1/8 grid
warp_elems = {"output (PF)": 19 * (PAPER[0] // 8) * (PAPER[1] // 8),
              "features (A-Lite)": int(np.prod(alite_paper["feature_shape"]))}
warp_ratio = warp_elems["features (A-Lite)"] / warp_elems["output (PF)"]
print(f"warped elements per frame at 1024x2048: {warp_elems} -> features / output = {warp_ratio:.1f}x "
      f"(A-Lite features {alite_paper['feature_shape']}); CPU time of the warp alone at 1024x2048: "
      f"output {1e3 * T['warp output']:.2f} ms, features {1e3 * T['warp features']:.2f} ms")


def speed(r):
    """(fps on this CPU, GMACs per frame at 1024x2048 averaged over the interval) of one row."""
    if r.kind == "image":
        return 1 / T[f"image {r.key} {r.key_scale}"], gmacs[r.key, r.key_scale]
    l, t_key = r.interval, T[f"key {r.key} {r.key_scale}"]
    if r.kind == "alite":
        return l / (t_key + (l - 1) * T["A-Lite"]), (gmacs[r.key, r.key_scale] + (l - 1) * AL_GMACS) / l
    t_nk = {"O": T["PF"], "DIS": T["PF (given flow)"] + T["DIS"], "exact": T["PF (given flow)"]}[r.flow]
    g = np.nan if r.flow == "DIS" else (gmacs[r.key, r.key_scale] + (l - 1) * NK_GMACS) / l
    return l / (t_key + (l - 1) * t_nk), g


acc[[FPS_COL, "GMACs_avg_1024x2048"]] = [speed(r) for r in acc.itertuples()]

# %% [markdown]
# ## Table 1

# %%
NAMES = {"SN": ("SwiftNet-R18", "Ours-SN-R18"), "BN": ("BiSeNet-R18", "Ours-BN-R18")}
t1 = []
for r in acc.itertuples():
    if r.kind == "image" and r.key_scale in (0.75, 0.5):
        method = NAMES[r.key][0]
    elif r.kind == "video" and r.flow == "O" and r.key_scale == 0.75 and r.interval in (2, 3, 4):
        method = f"{NAMES[r.key][1]} (l={r.interval})"
    else:
        continue
    t1.append({"method": method, "input": r.key_scale, "seed": r.seed, "avg_miou": r.avg_miou, "min_miou": r.min_miou,
               FPS_COL: getattr(r, FPS_COL), "GMACs_avg_1024x2048": r.GMACs_avg_1024x2048,
               "key_params_MB": key_mb[r.key], "nonkey_params_MB": nonkey_mb if r.kind == "video" else np.nan})
t1 = pd.DataFrame(t1)
summary = t1.groupby(["method", "input"], sort=False).agg(["mean", "std"]).drop(columns="seed")
summary.round(2)

# %% [markdown]
# ## Figures 3, A5, A6 and the per-distance mIoU

# %%
mean = acc.groupby(["curve", "kind", "key", "flow", "key_scale", "interval"], as_index=False)[
    ["avg_miou", "min_miou", FPS_COL, "GMACs_avg_1024x2048"]].mean()
std = acc.groupby(["curve", "key_scale", "interval"])["avg_miou"].std()  # over PF seeds (image rows: one)
mean["avg_std"] = [std.get((r.curve, r.key_scale, r.interval), np.nan) for r in mean.itertuples()]
COL = {"SN": "tab:blue", "BN": "tab:orange"}


def plot_curves(ax, sel, x, xlabel):
    for curve, d in sel.groupby("curve", sort=False):
        d = d.sort_values(x)
        video = d.kind.iloc[0] != "image"
        style = "-" if video else "--"
        if d.kind.iloc[0] == "alite":
            colour = "tab:red"
        else:
            colour = COL[d.key.iloc[0]] if d.flow.iloc[0] in ("O", "-") else {"DIS": "tab:green", "exact": "tab:gray"}[d.flow.iloc[0]]
        ax.errorbar(d[x], d.avg_miou, yerr=d.avg_std.fillna(0), fmt=style + "o", ms=4, color=colour, label=curve,
                    alpha=0.9 if video else 0.6, capsize=2)
        for _, p in d.iterrows():
            ax.annotate(f"l={p.interval}" if video else f"{p.key_scale}", (p[x], p.avg_miou), fontsize=6,
                        textcoords="offset points", xytext=(2, 2))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("avg mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def figure(sel, title):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    plot_curves(axes[0], sel, FPS_COL, f"frames/s, CPU 1 thread, {H}x{W}, width-{S['key_width']} keyframe nets")
    g = sel[sel.GMACs_avg_1024x2048.notna()].assign(speed=lambda d: 1 / d.GMACs_avg_1024x2048)
    plot_curves(axes[1], g, "speed", "1 / GMACs per frame (paper-size networks at 1024x2048)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


notes = (f"world {domain} {H}x{W}; accuracy of width-{S['key_width']} keyframe nets + PF trained on the world "
         f"({len(SEEDS)} PF seed(s), error bars = std over seeds); left: CPU frames/s at {H}x{W}; right: "
         "multiply-adds of paper-size networks at 1024x2048 (not the paper's GTX 1080Ti FPS).")
image = mean[mean.kind == "image"]
ours75 = mean[(mean.kind == "video") & (mean.flow == "O") & (mean.key_scale == 0.75)]
fig = figure(pd.concat([image[image.key == "SN"],
                        mean[(mean.key == "SN") & (mean.key_scale == 0.75) & mean.kind.isin(["video", "alite"])]]),
             "Fig. 3: our flow net O vs DIS vs exact flow inside PF, and A-Lite (SwiftNet-R18 keyframes), l = 1..5")
save_figure(fig, "gsvnet", "fig3_flow", profile=profile, params=params, started=STARTED, notes=notes)
fig = figure(pd.concat([image, ours75]), "Fig. A5: image-based (dashed, input scale 1..0.5) vs ours (solid, l = 1..5)")
save_figure(fig, "gsvnet", "figA5_tradeoff", profile=profile, params=params, started=STARTED, notes=notes)
fig = figure(pd.concat([image, mean[(mean.kind == "video") & (mean.flow == "O")]]),
             "Fig. A6: ours with keyframes at input scale 1.0 and 0.75")
save_figure(fig, "gsvnet", "figA6_tradeoff", profile=profile, params=params, started=STARTED, notes=notes)

dist = acc[acc.miou_by_distance.notna()] if "miou_by_distance" in acc else acc.iloc[:0]
fig, ax = plt.subplots(figsize=(6, 4))
by_dist = {}
for tag, kind, label, colour in [(t, "video", f"Ours-{t}-R18 (key 0.75)", COL[t]) for t in KEY_NETS] + [
        ("SN", "alite", "A-Lite-SN-R18 (key 0.75)", "tab:red")]:
    d = np.array([v for v in dist[(dist.key == tag) & (dist.kind == kind)].miou_by_distance])
    by_dist[tag if kind == "video" else "A-Lite"] = d
    ax.errorbar(range(MAX_L), d.mean(0), yerr=d.std(0) if len(d) > 1 else None, fmt="-o", color=colour,
                label=label, capsize=2)
ax.set_xlabel("distance from the keyframe (frames)")
ax.set_ylabel("mIoU (%) of the frame at that distance")
ax.set_title("mIoU per distance from the keyframe")
ax.grid(alpha=0.3)
ax.legend()
save_figure(fig, "gsvnet", "miou_by_distance", profile=profile, params=params, started=STARTED, notes=notes)

# %% [markdown]
# ## Overlay video demo
# A synthetic clip segmented with SwiftNet-R18 keyframes every 4 frames and PF between them
# (`segment_video`), blended with the frames at alpha 0.5, written as an MJPG `.avi` with a manifest.

# %%
demo = world.clip(2000, length=S["video_len"], flow=False)
preds = segment_video(demo.frames, keys["SN"], pfs["SN", 0], interval=4, key_scale=0.75)
save_overlay_video(demo.frames, preds.numpy(), "gsvnet", "overlay_demo", profile=profile, params=params,
                   started=STARTED, fps=8, alpha=0.5,
                   notes="Ours-SN-R18, l = 4, keyframe scale 0.75; overlay = 0.5 frame + 0.5 Cityscapes colours")
print(f"{len(preds)} frames segmented; one map per frame: {tuple(preds.shape)}")

# %% [markdown]
# ## Verdicts
#
# Each claim is checked on the seed means; "within spread" means the difference is not larger than
# the standard deviation over PF seeds (with one seed there is no spread and only the sign counts);
# A-Lite against Ours uses the larger of the two curves' seed standard deviations.

# %%
verdicts = []


def verdict(claim, ok, detail):
    ok = bool(ok)
    verdicts.append({"claim": claim, "reproduced": ok, "detail": detail})
    print(f"[{'REPRODUCED' if ok else 'NOT REPRODUCED'}] {claim}: {detail}")


for axis, col, label in ((FPS_COL, FPS_COL, f"CPU FPS at {H}x{W}"), ("gmacs", "GMACs_avg_1024x2048", "paper-size GMACs")):
    for tag in KEY_NETS:
        img = image[image.key == tag]
        vid = ours75[(ours75.key == tag) & (ours75.interval >= 2)]
        if axis == "gmacs":
            ref = image_miou_at_speed(1 / img[col], img.avg_miou, 1 / vid[col])
        else:
            ref = image_miou_at_speed(img[col], img.avg_miou, vid[col])
        diffs = vid.avg_miou.to_numpy() - ref
        outcome = [compare_with_spread(d, s) for d, s in zip(diffs, vid.avg_std)]
        wins = sum(o == "better" for o in outcome)
        verdict(f"video-based beats image-based at equal speed ({NAMES[tag][1]}, {label})", wins > len(diffs) / 2,
                ", ".join(f"l={l}: {d:+.1f} ({o})" for l, d, o in zip(vid.interval, diffs, outcome))
                + " (mIoU points vs the image-based curve interpolated at the same speed)")

sn = summary.loc[("SwiftNet-R18", 0.5)] if ("SwiftNet-R18", 0.5) in summary.index else None
o4 = summary.loc[("Ours-SN-R18 (l=4)", 0.75)]
if sn is not None:
    d = o4[("avg_miou", "mean")] - sn[("avg_miou", "mean")]
    verdict("Ours-SN-R18 (l=4) is more accurate than SwiftNet-R18 (0.5) (paper: +3.1)",
            compare_with_spread(d, o4[("avg_miou", "std")]) == "better",
            f"{d:+.1f} mIoU points; speed {o4[(FPS_COL, 'mean')]:.0f} vs {sn[(FPS_COL, 'mean')]:.0f} FPS (CPU), "
            f"{o4[('GMACs_avg_1024x2048', 'mean')]:.1f} vs {sn[('GMACs_avg_1024x2048', 'mean')]:.1f} GMACs (paper size)")
for tag in KEY_NETS:
    c = ours75[ours75.key == tag].set_index("interval").avg_miou
    drop, paper_drop = c[1] - c[4], {"SN": 74.4 - 71.8, "BN": 73.7 - 71.2}[tag]
    verdict(f"{NAMES[tag][1]}: average mIoU degrades gracefully from l=1 to l=4 (paper: -{paper_drop:.1f})",
            drop <= 2 * paper_drop, f"-{drop:.1f} points ({c[1]:.1f} -> {c[4]:.1f})")
    d = by_dist[tag].mean(0)
    verdict(f"{NAMES[tag][1]}: mIoU falls with the distance from the keyframe", bool(np.all(np.diff(d) <= 0.5)),
            " -> ".join(f"{v:.1f}" for v in d))
sn_curves = mean[(mean.key == "SN") & (mean.key_scale == 0.75) & (mean.kind == "video")].set_index(["flow", "interval"])
d_dis = sn_curves.loc[("DIS", 4), "avg_miou"] - sn_curves.loc[("O", 4), "avg_miou"]
slower = sn_curves.loc[("DIS", 4), FPS_COL] < sn_curves.loc[("O", 4), FPS_COL]
verdict("a heavier flow estimator (DIS here, FlowNet2s in the paper) changes mIoU little but costs throughput",
        abs(d_dis) <= 2 and slower, f"l=4: DIS {d_dis:+.1f} mIoU vs our O, FPS {sn_curves.loc[('DIS', 4), FPS_COL]:.0f} "
        f"vs {sn_curves.loc[('O', 4), FPS_COL]:.0f}; exact flow (upper bound) "
        f"{sn_curves.loc[('exact', 4), 'avg_miou'] - sn_curves.loc[('O', 4), 'avg_miou']:+.1f}")
alite_c = mean[mean.kind == "alite"].set_index("interval")
ours_c = ours75[ours75.key == "SN"].set_index("interval")
ls = list(range(2, MAX_L + 1))  # l = 1 is the keyframe net alone for both
d_al = [alite_c.avg_miou[l] - ours_c.avg_miou[l] for l in ls]
spread = [max(np.nan_to_num(alite_c.avg_std[l]), np.nan_to_num(ours_c.avg_std[l])) for l in ls]  # larger seed std
outcome = [compare_with_spread(d, sp) for d, sp in zip(d_al, spread)]
verdict("A-Lite (feature-space propagation) is below Ours at equal l (SwiftNet-R18 keyframes, avg mIoU)",
        sum(o == "worse" for o in outcome) > len(ls) / 2,
        ", ".join(f"l={l}: {d:+.1f} +/- {sp:.1f} ({o})" for l, d, sp, o in zip(ls, d_al, spread, outcome))
        + f" (A-Lite minus Ours; paper: a significant drop); non-key step on this CPU: A-Lite "
        f"{1e3 * T['A-Lite']:.1f} ms vs PF {1e3 * T['PF']:.1f} ms; paper-size GMACs {AL_GMACS:.2f} vs {NK_GMACS:.2f}")
b = {c: bnd_stats.loc["A-Lite-SN-R18", (c, "mean")] - bnd_stats.loc["Ours-SN-R18", (c, "mean")]
     for c in ("boundary_acc", "interior_acc")}
b_spread = max(np.nan_to_num(bnd_stats.loc[m, ("boundary_acc", "std")]) for m in ("A-Lite-SN-R18", "Ours-SN-R18"))
verdict("A-Lite distorts object boundaries more than Ours (farthest frame, l = 5)",
        compare_with_spread(b["boundary_acc"], b_spread) == "worse",
        f"pixel accuracy on the 2-px boundary band: A-Lite minus Ours {b['boundary_acc']:+.1f} +/- {b_spread:.1f} "
        f"points ({compare_with_spread(b['boundary_acc'], b_spread)}); elsewhere {b['interior_acc']:+.1f}")
verdict("feature-space warping moves more data than output-space warping (paper appendix: 3.3x for A-X39)",
        warp_ratio > 1 and T["warp features"] > T["warp output"],
        f"{warp_ratio:.1f}x the elements at 1024x2048 (paper-size SwiftNet-R18 features vs 19 maps on the 1/8 grid); "
        f"the warp alone at 1024x2048 on this CPU (1 thread) {1e3 * T['warp features']:.0f} vs "
        f"{1e3 * T['warp output']:.0f} ms")
if profile == "smoke":
    print("\n(smoke: a few training steps on tiny frames; these verdicts say nothing about the paper.)")
pd.DataFrame(verdicts)

# %% [markdown]
# ## Write the tables

# %%
ref = reference.load("gsvnet", "table1")
write_table(t1, "gsvnet", "table1", profile=profile, params=params, seeds=SEEDS, reference=ref, started=STARTED,
            by=["method", "input"], value_cols=["avg_miou", "min_miou", FPS_COL, "GMACs_avg_1024x2048",
                                                "key_params_MB", "nonkey_params_MB"],
            notes=(f"avg / min mIoU (%) on {len(val_idx)} world clips ({H}x{W}, labelled frame {LABEL}), full "
                   f"resolution; keyframe nets at width {S['key_width']} ({S['key_steps']} steps, engine.train; "
                   f"val mIoU SN {100 * key_info['SN']['miou']:.1f}, BN {100 * key_info['BN']['miou']:.1f}), PF "
                   f"{S['flow_steps']} flow pre-training + {S['pf_steps']} end-to-end steps per seed. {FPS_COL}: "
                   f"CPU, 1 thread, these networks; GMACs_avg_1024x2048: paper-size networks, averaged over "
                   f"the interval. Verdicts: " + "; ".join(f"{v['claim']}: {v['reproduced']}" for v in verdicts)))
trade = acc.drop(columns=[c for c in ("miou_by_distance",) if c in acc])
write_table(trade, "gsvnet", "tradeoff", profile=profile, params=params, seeds=SEEDS, started=STARTED,
            by=["curve", "kind", "key", "flow", "key_scale", "interval"],
            value_cols=["avg_miou", "min_miou", FPS_COL, "GMACs_avg_1024x2048"],
            notes="Every point of Figs. 3 / A5 / A6 (image rows: seed 0 only; they do not depend on PF). kind: "
                  "image = image-based, video = Ours (PF), alite = A-Lite (Accel with our flow net and intra "
                  f"network as update branch, {S['pf_steps']} steps per seed like PF). Verdicts: "
                  + "; ".join(f"{v['claim']}: {v['reproduced']}" for v in verdicts))
print(f"wall time {time.time() - STARTED:.0f} s")
