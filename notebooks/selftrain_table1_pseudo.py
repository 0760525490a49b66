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
# paperlib: writes tables/selftrain/table1_pseudo, tables/csst/table1_centroid, figures/csst/table1_centroid

# %% [markdown]
# # Self-training Table 1 and CSST Table 1: teacher → pseudo labels → student, centroid sampling, duplicated real labels
#
# **The method** (self-training Sec. 3.1, CSST Sec. 3.1). A *teacher* is trained on the real
# labels. It then predicts every image of large *unlabelled pools* — in the papers the 20K
# Cityscapes coarse images (same domain) and the 20K Mapillary images (other domain), their labels
# ignored — and its argmax becomes a *hard pseudo label* (CSST Eq. 2). A *student* is trained from
# scratch on real + pseudo labels, with a controlled number of each per epoch
# (`paperlib.selftrain.mix_real_pseudo`).
#
# **Centroid sampling** (CSST Sec. 3.2). A biased teacher amplifies class imbalance in its pseudo
# labels; instead of random crops, every training crop is cut around the centroid of a connected
# region of some class, classes drawn uniformly, separately for the real and the pseudo part of
# the epoch (`sampler="centroid"`, `paperlib.data.samplers.CentroidSampler`).
#
# **The duplicated-real control** (self-training Table 2b / CSST Table 1b). More pseudo labels per
# epoch also means more iterations; duplicating the real labels to the same epoch length
# separates "more data" from "longer training".
#
# **What the papers report.** Self-training Table 1: teacher 78.1 → student with coarse* pseudo
# labels 79.0 → with coarse* + Mapillary* 79.3 (1.5K real + 1.5K pseudo per epoch, the teacher's
# 3K epoch). CSST Table 1a: 3K real + 3K / 6K / 12K / 40K pseudo per epoch, 78.6 … 80.2 with and
# 78.6 … 78.8 without centroid sampling (which also lifts the teacher 78.1 → 78.8); Table 1b:
# duplicated real labels saturate around 79.1–79.3.
#
# **Our analogue.** The embedded world: real labels = `real_images` training frames of `city_a`;
# pool "coarse*" = another world seed of `city_a` (new clips, same look); pool "Mapillary*" = the
# `other_domain` (default `city_c`: foggy dusk suburb). Only the pools' images are used; their
# ground truth only *measures* the pseudo labels. Every student trains for the same number of
# **epochs** as the teacher (`teacher_steps` × epoch length / real-set size), as in the papers
# (fixed 180 epochs), so students with more pseudo labels per epoch train longer — which the
# duplicated-real rows control for. Pseudo labels per epoch are multiples of the real set
# (`pseudo_multiples`; the paper's 1x, 2x, 4x, 13x ↔ 3K, 6K, 12K, 40K).
#
# **Scale (cpu profile).** `tiny_fcn` width 16, crop 96, batch 8, 48 real images, teacher 100
# steps, pseudo multiples 1x and 2x, pools of 48 images each, 2 seeds (training randomness; the
# world is fixed): 24 teacher-lengths of training per seed, about 6 minutes on a quiet 2-core
# machine. Tiny networks trained this briefly are far from converged, so the absolute mIoUs are
# low; the question is whether the papers' *directions* hold.

# %% tags=["parameters"]
profile = "smoke"
seeds = None              # None: per profile ([0] smoke, [0, 1] cpu)
teacher_steps = None      # None: per profile; students train the same number of epochs
pseudo_multiples = None   # pseudo labels per epoch, in multiples of the real set (CSST Table 1a)
real_images = None        # real labelled images (None: per profile)
pool_clips = None         # images per unlabelled pool (None: per profile)
other_domain = "city_c"   # the "Mapillary*" pool's domain
model = "tiny_fcn"

# %%
import time

import numpy as np
import pandas as pd

from paperlib.config import config_from_params
from paperlib.repro import check_params, int_list_or_none

STARTED = time.time()


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none,
           "teacher_steps": (int, type(None)), "pseudo_multiples": int_list_or_none,
           "real_images": (int, type(None)), "pool_clips": (int, type(None)),
           "other_domain": ("city_b", "city_c"), "model": str}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

SCALE = {
    "smoke": dict(seeds=[0], steps=3, multiples=[1, 2], real=8, pool=4, crop=(64, 64), batch=4),
    "cpu": dict(seeds=[0, 1], steps=100, multiples=[1, 2], real=48, pool=48, crop=(96, 96), batch=8),
    "gpu": dict(seeds=[0, 1, 2], steps=1500, multiples=[1, 2, 4], real=None, pool=600, crop=None, batch=None),
    "paper": dict(seeds=[0], steps=None, multiples=[1, 2, 4, 13], real=None, pool=None, crop=None, batch=None),
}[profile]
SEEDS = list(seeds or SCALE["seeds"])
T_STEPS = teacher_steps or SCALE["steps"]
MULTIPLES = list(pseudo_multiples or SCALE["multiples"])
REAL = real_images or SCALE["real"]
POOL = pool_clips or SCALE["pool"]
params["sizes"] = dict(seeds=SEEDS, teacher_steps=T_STEPS, pseudo_multiples=MULTIPLES,  # resolved, for the manifest
                       real_images=REAL, pool_clips=POOL)
if profile == "paper":
    raise NotImplementedError("profile='paper' needs Cityscapes coarse + Mapillary images as pools: "
                              "build them with paperlib.selftrain.unlabelled(build_dataset(...)) and "
                              "run the same cells with data_root set")


def make_cfg(seed, steps, sampler="random", name="selftrain_t1"):
    over = dict(model=model, seed=seed, steps=steps, sampler=sampler, poly_power=0.9, name=name,
                progress=False, sampler_options={"workers": 1})
    if REAL:
        over["max_images"] = REAL
    if SCALE["crop"]:
        over["crop_size"] = SCALE["crop"]
    if SCALE["batch"]:
        over["batch_size"] = SCALE["batch"]
    return config_from_params(profile, **over)


base_cfg = make_cfg(SEEDS[0], T_STEPS)
base_cfg

# %% [markdown]
# ## Data: real labels and the two unlabelled pools
# The pools are exported once (cached under `data/world/`). `world_pool` returns the images
# without labels (what self-training may use) and, separately, the labelled copy used only to
# measure pseudo-label quality.

# %%
from paperlib import engine
from paperlib.selftrain import world_pool

real_train, val_set = engine.build_datasets(base_cfg)   # one world for every seed
size = base_cfg.world_image_size
POOLS = {"coarse*": ("city_a", 100), "Mapillary*": (other_domain, 100)}
pools, pools_gt = {}, {}
for name, (domain, wseed) in POOLS.items():
    pools[name], pools_gt[name] = world_pool(domain, size, POOL, seed=wseed, progress=False)
print(f"real: {len(real_train)} labelled {size[0]}x{size[1]} frames of city_a; val: {len(val_set)}; "
      + "; ".join(f"pool {k}: {len(v)} unlabelled frames ({POOLS[k][0]}, world seed {POOLS[k][1]})"
                  for k, v in pools.items()))

# %% [markdown]
# ## Run every row, seed by seed
# Per seed: the teacher (random crops), the teacher with centroid sampling, pseudo labels of both
# pools from the (random-crop) teacher, then
# - self-training Table 1: students on real + pseudo of one pool / both pools, half real and half
#   pseudo in an epoch as long as the teacher's (`ratio=(1, 1), epoch_size=len(real)`), with
#   centroid sampling — built end to end by `paperlib.selftrain.self_train`;
# - CSST Table 1a: one pass over the real set + `m` times as many pseudo samples per epoch, with and
#   without centroid sampling; Table 1b: the same epoch lengths with the real set duplicated.

# %%
from paperlib.data import data_dir
from paperlib.data.samplers import ConcatSegDataset
from paperlib.selftrain import (PseudoLabelDataset, generate_pseudo_labels, mix_real_pseudo,
                                pseudo_label_quality, self_train, teacher_fingerprint)

n_real = len(real_train)
rows_st, rows_csst, quality = [], [], []


def train_row(cfg, train_set):
    t0 = time.time()
    res = engine.train(cfg, train_set=train_set, val_set=val_set)
    return 100 * res["metrics"]["miou"], time.time() - t0, res


for seed in SEEDS:
    t_cfg = make_cfg(seed, T_STEPS, name=f"teacher_s{seed}")
    m_teacher, sec, teacher = train_row(t_cfg, real_train)
    m_teacher_cs, _, _ = train_row(t_cfg.replace(sampler="centroid", name=f"teacher_cs_s{seed}"), real_train)
    print(f"seed {seed}: teacher {m_teacher:.1f} ({sec:.0f} s), with centroid sampling {m_teacher_cs:.1f}")
    out_root = data_dir() / "pseudo" / teacher_fingerprint(teacher["model"])
    pseudo = {}
    for name, images in pools.items():
        d = generate_pseudo_labels(teacher["model"], images, out_root / name.strip("*"), progress=False)
        pseudo[name] = PseudoLabelDataset(d, images, transform=real_train.transform)
        q = pseudo_label_quality(d, pools_gt[name])
        quality.append({"seed": seed, "pool": name, "pseudo-label mIoU": 100 * q["miou"],
                        "pixel accuracy": 100 * q["pixel_accuracy"]})
    # --- self-training Table 1 (through the one-call pipeline) ---
    rows_st.append({"row": "Teacher: fine", "seed": seed, "mIoU": m_teacher})
    for label, names in [("Student: fine + coarse*", ["coarse*"]),
                         ("Student: fine + coarse* + Mapillary*", ["coarse*", "Mapillary*"])]:
        out = self_train(t_cfg, make_cfg(seed, T_STEPS, "centroid", f"st1_{len(names)}_s{seed}"),
                         {n.strip("*"): pools[n] for n in names}, ratio=(1, 1), epoch_size=n_real,
                         teacher=teacher, out_dir=out_root, centroid=True, train_set=real_train, val_set=val_set)
        rows_st.append({"row": label, "seed": seed, "mIoU": 100 * out["student_metrics"]["miou"]})
    # --- CSST Table 1 ---
    both = ConcatSegDataset([pseudo["coarse*"], pseudo["Mapillary*"]])
    rows_csst.append({"labels": "real (teacher)", "real:extra": "1:0", "seed": seed,
                      "mIoU w/o CS": m_teacher, "mIoU w CS": m_teacher_cs, "steps": T_STEPS})
    for m in MULTIPLES:
        steps = T_STEPS * (1 + m)   # same number of epochs as the teacher
        for labels, dup in [("real + pseudo", False), ("real, duplicated", True)]:
            mixed = mix_real_pseudo(real_train, None if dup else both, (1, m), duplicate_real=dup)
            row = {"labels": labels, "real:extra": f"1:{m}", "seed": seed, "steps": steps}
            for col, sampler in [("mIoU w/o CS", "random"), ("mIoU w CS", "centroid")]:
                row[col], sec, _ = train_row(make_cfg(seed, steps, sampler, f"csst_{m}_{int(dup)}_s{seed}"), mixed)
            rows_csst.append(row)
            print(f"  {labels:16s} 1:{m}: w/o CS {row['mIoU w/o CS']:.1f}, w CS {row['mIoU w CS']:.1f}")

quality = pd.DataFrame(quality)
quality.groupby("pool")[["pseudo-label mIoU", "pixel accuracy"]].mean().round(1)

# %% [markdown]
# ## Self-training Table 1
# mIoU (%) on the `city_a` validation split, mean ± std over seeds (the paper's beside it in the
# written table below).

# %%
st1 = pd.DataFrame(rows_st)
st1.groupby("row", sort=False)["mIoU"].agg(["mean", "std"]).round(1)

# %% [markdown]
# ## CSST Table 1
# (a) students on real + pseudo labels and (b) the duplicated-real control, with and without
# centroid sampling (CS). `real:extra` = real samples : pseudo (or duplicated real) samples per
# epoch; the paper's 3K:3K, 3K:6K, 3K:12K, 3K:40K are 1:1, 1:2, 1:4, 3:40. Rows the cpu sweep
# does not run show the paper's numbers only.

# %%
csst1 = pd.DataFrame(rows_csst)
agg = csst1.groupby(["labels", "real:extra"], sort=False)[["mIoU w/o CS", "mIoU w CS"]].agg(["mean", "std"])
agg.round(1)

# %% [markdown]
# ## mIoU against epoch length
# Left: ours (mean ± std over seeds). Right: the paper's CSST Table 1.

# %%
import matplotlib.pyplot as plt

from paperlib import reference
from paperlib.repro import save_figure

ref = reference.load("csst", "table1_centroid")


def epoch_length(ratio: str) -> float:
    """Epoch length in units of the real set: "1:2" -> 3, "3:40" -> 1 + 40/3."""
    r, p = (float(x) for x in ratio.split(":"))
    return 1 + p / r


fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, src in zip(axes, ("ours", "paper")):
    for labels, marker in [("real + pseudo", "o"), ("real, duplicated", "s")]:
        for col, ls in [("mIoU w CS", "-"), ("mIoU w/o CS", "--")]:
            if src == "ours":
                sub = csst1[csst1["labels"].isin([labels, "real (teacher)"])]
                g = sub.groupby("real:extra", sort=False)[col].agg(["mean", "std"])
                ratios = list(g.index)
                mean, std = g["mean"].to_numpy(), np.nan_to_num(g["std"].to_numpy())
            else:
                sub = ref[ref["labels"].isin([labels, "real (teacher)"])].dropna(subset=[col])
                ratios, mean, std = list(sub["real:extra"]), sub[col].to_numpy(float), None
            x = [epoch_length(r) for r in ratios]
            ax.errorbar(x, mean, yerr=std, marker=marker, ls=ls, capsize=3, label=f"{labels}, {col[5:]}")
    ax.set_xscale("log")
    ax.set_xlabel("epoch length (x real set)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{src}" + (f" ({profile} profile, seeds {SEEDS})" if src == "ours" else " (CSST Table 1, Cityscapes val)"))
axes[0].legend(fontsize=7)
plt.tight_layout()
save_figure(fig, "csst", "table1_centroid", profile=profile, seeds=SEEDS, started=STARTED,
            params={**params, "config": base_cfg.to_dict()}, data_fingerprint=real_train.fingerprint(),
            notes="CSST Table 1 as curves: students (real + pseudo) vs duplicated real, with / without centroid sampling.")

# %% [markdown]
# ## Claims
# Declared before this run in `paperlib/reference/claims/selftrain.toml` (Table 1) and
# `paperlib/reference/claims/csst.toml` (Table 1); verdicts from `paperlib.claims`, paired by seed
# (every run of a seed shares its world and its teacher's pseudo labels).
#
# - **Self-training Table 1.** The students train as many steps as the teacher, but with centroid
#   sampling while the teacher row uses random crops; "pseudo labels help" is therefore tested
#   against the teacher trained *with* centroid sampling (same steps, same sampler: CSST Table 1's
#   "real (teacher), w CS" run of the same seed), added to the claims' data only.
# - **CSST Table 1.** A student with m times as many pseudo as real samples per epoch trains
#   (1 + m) times the teacher's steps, so "student > teacher" mixes pseudo labels with longer
#   training. The paper's control for that, and ours, is the duplicated-real row of the same epoch
#   length: pseudo labels are tested against it, and "more pseudo labels keep helping" is tested on
#   the per-seed gap pseudo − duplicated (`paperlib.selftrain.analysis.arm_gap`), larger at 1:m than
#   at 1:1. Centroid sampling is tested row by row against random crops (same data, same steps).
#
# Ratios this profile does not run are left out (listed).

# %%
from paperlib import claims
from paperlib.selftrain import analysis

teacher_cs = csst1[csst1["labels"] == "real (teacher)"]
st1_data = pd.concat([st1, pd.DataFrame({"row": "Teacher: fine, centroid sampling", "seed": teacher_cs["seed"],
                                         "mIoU": teacher_cs["mIoU w CS"]})], ignore_index=True)
declared = analysis.runnable(claims.declared("selftrain", "table1_pseudo"), st1_data, arm="row")
CLAIMS_ST = claims.evaluate(declared, st1_data, arm="row", value="mIoU")
print("self-training Table 1:")
claims.show(CLAIMS_ST)

SAMPLER = {"mIoU w/o CS": "random", "mIoU w CS": "centroid"}
csst_long = csst1.melt(id_vars=["labels", "real:extra", "seed", "steps"], value_vars=list(SAMPLER),
                       var_name="sampler", value_name="mIoU").replace({"sampler": SAMPLER})
students = csst_long[csst_long["labels"] != "real (teacher)"]
csst_data = pd.concat([csst_long, analysis.arm_gap(students, arm="labels", a="real + pseudo", b="real, duplicated",
                                                   by=["real:extra", "sampler"], value="mIoU",
                                                   label="real + pseudo − real, duplicated")], ignore_index=True)
declared = analysis.runnable(claims.declared("csst", "table1_centroid"), csst_data, value="mIoU")
CLAIMS_CSST = claims.evaluate(declared, csst_data, value="mIoU")
print("CSST Table 1:")
claims.show(CLAIMS_CSST);

# %% [markdown]
# ## The tables
# mIoU (%), mean ± std over seeds beside the paper's, then the claims. CSST Table 1: every row
# trains the teacher's number of epochs (`steps` column).

# %%
from paperlib.repro import write_table

notes_common = (f"{model} (width {base_cfg.model_width}), crop {base_cfg.crop_size}, batch {base_cfg.batch_size}, "
                f"{n_real} real city_a frames {size[0]}x{size[1]}; teacher {T_STEPS} steps; pools of {POOL} "
                f"frames: coarse* = city_a world seed 100, Mapillary* = {other_domain}; seeds {SEEDS} "
                f"({profile} profile). Pseudo-label mIoU vs the pools' hidden ground truth: "
                + ", ".join(f"{p} {v:.1f}" for p, v in quality.groupby('pool')['pseudo-label mIoU'].mean().items()) + ".")
write_table(st1, "selftrain", "table1_pseudo", profile=profile, reference=True, by=["row"], value_cols=["mIoU"],
            floatfmt=".1f", seeds=SEEDS, started=STARTED, params={**params, "config": base_cfg.to_dict()},
            data_fingerprint=real_train.fingerprint(), claims=CLAIMS_ST,
            notes="Students: half real, half pseudo (centroid sampling) in an epoch as long as the teacher's, "
                  "trained as long as the teacher. " + notes_common)
write_table(csst1, "csst", "table1_centroid", profile=profile, reference=True, by=["labels", "real:extra", "steps"],
            value_cols=["mIoU w/o CS", "mIoU w CS"], floatfmt=".1f", seeds=SEEDS, started=STARTED,
            params={**params, "config": base_cfg.to_dict()}, data_fingerprint=real_train.fingerprint(),
            claims=CLAIMS_CSST, notes="Every row trains the teacher's number of epochs (steps column). " + notes_common)
