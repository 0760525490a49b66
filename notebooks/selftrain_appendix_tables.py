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
# paperlib: writes tables/selftrain/table7, tables/selftrain/table8, tables/selftrain/table9, figures/selftrain/appendix_tables

# %% [markdown]
# # Self-training Appendix A: hard vs soft labels, joint vs pre-training, 1/2/3 loops
#
# The self-training paper (Zhu et al., 2020) ablates three design choices of its teacher ->
# pseudo labels -> student pipeline in Appendix A (Cityscapes val, DeepLabV3+ ResNeXt-50, teacher
# 78.1, mean of five runs):
#
# - **Table 7, hard vs soft labels** (A.1). Hard pseudo labels are the teacher's argmax, trained
#   with cross-entropy; soft ones keep the teacher's probabilities. Storing all 19 probabilities
#   per pixel is too big, so (as CSST Eq. 6 spells out) the top-k classes and their probabilities
#   are stored (k = 3: 6 bytes per pixel, `paperlib.selftrain.pseudo`) and the
#   `soft_pseudo_label` loss uses them, renormalised over the k classes, as the target
#   distribution. Paper: hard 80.0 > soft 79.6 ("dense prediction problems favor hard labels").
# - **Table 8, joint learning vs pre-training** (A.2). The pipeline trains the student on real and
#   pseudo labels *jointly*; the conventional alternative pre-trains on the pseudo labels and then
#   fine-tunes on the real ones. Paper: joint 80.0 > pre-train then fine-tune 79.2.
# - **Table 9, loops** (A.3). The student can become the next teacher, relabel the pool, and a new
#   student is trained from scratch. Paper: 1-loop 80.0, 2-loop 79.9, 3-loop 80.2 -- no real gain,
#   so one loop is the trade-off they keep.
#
# **Protocol** (as in CSST Table 2's notebook): fixed data -- the synthetic world `city_a` (world
# seed 0), a small labelled subset of its training frames, all its validation frames, and an
# unlabelled pool from another seed of the same domain; training seeds vary initialisation and
# sample order only. Each run trains for a fixed number of epochs (teacher: over the real set;
# students: over the real:pseudo mix, `ratio` samples of each per epoch). The hard, joint and
# 1-loop students are one and the same run. **Pre-training then fine-tuning** gets the joint
# student's sample budget split the way the mix splits it: the pseudo share of its steps on pseudo
# labels only, then the real share on real labels only (each stage with its own poly schedule).
# The paper's appendix uses pseudo:real 7:1. That is the default from the cpu profile up; smoke uses
# 1:1 to stay fast (`ratio=[1, 1]` at cpu takes a quarter of the student iterations).

# %% tags=["parameters"]
profile = "smoke"
seeds = None        # None: per profile ([0] smoke, [0, 1] cpu)
epochs = None       # None: per profile; teacher epochs over the real set, student epochs over the mix
labelled = None     # labelled training frames (evenly spaced); None: per profile
pool_clips = None   # unlabelled frames of the same domain (another world seed); None: per profile
pool_root = None    # real data: a Cityscapes-layout folder whose train images are the pool
ratio = None        # real : pseudo samples per epoch; None: per profile ([1, 1] smoke, else the paper's [1, 7])
loops = 3           # Table 9: up to this many teacher -> student rounds
centroid = False    # centroid sampling for every student
top_k = 3           # soft pseudo labels: classes kept per pixel

# %%
import time

import numpy as np
import pandas as pd

from paperlib.config import config_from_params
from paperlib.repro import check_params, int_list_or_none, positive_or_none, profile_sizes
from paperlib.selftrain.alternatives import PROTOCOL_SCALE, fixed_data
from paperlib.selftrain.pipeline import ratio_pair_or_none

STARTED = time.time()


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "seeds": int_list_or_none,
           "epochs": positive_or_none, "labelled": positive_or_none, "pool_clips": positive_or_none,
           "pool_root": (str, type(None)), "ratio": ratio_pair_or_none, "loops": (1, 2, 3, 4, 5),
           "centroid": bool, "top_k": int}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

# Per-profile scale (`PROTOCOL_SCALE`, shared with CSST Table 2). cpu: tiny_fcn width 16, 128x128
# crops, batch 8, 32 labelled frames, a pool of 48 frames; teacher 32 epochs (128 steps), each
# student 32 epochs over 32 real + 224 pseudo samples at 1:7 (1024 steps); per seed: teacher +
# 3 loops + soft + pre-train/fine-tune.
SIZES = profile_sizes(PROTOCOL_SCALE[profile], seeds=seeds, epochs=epochs, labelled=labelled,
                      pool_clips=pool_clips)
SEEDS, EPOCHS, LABELLED, POOL_CLIPS = list(SIZES["seeds"]), SIZES["epochs"], SIZES["labelled"], SIZES["pool_clips"]
RATIO = tuple(float(x) for x in (ratio or ([1, 1] if profile == "smoke" else [1, 7])))
params["sizes"] = dict(SIZES, ratio=list(RATIO))  # resolved, for the manifest

asked = config_from_params(profile, name="st_appendix", steps=None, epochs=EPOCHS, max_images=LABELLED,
                           poly_power=0.9)   # self-training Sec. 4: poly power 0.9
base = fixed_data(asked)   # the world read from its export (seed 0); fails fast, naming a bad parameter
print(f"seeds {SEEDS}; {EPOCHS} epochs; {LABELLED} labelled frames; ratio real:pseudo {RATIO}; {loops} loops; "
      f"{base.model} width {base.model_width}, crop {base.crop_size}, batch {base.batch_size}")

# %% [markdown]
# ## Data: real labels, the unlabelled pool, the validation set

# %%
from paperlib import engine
from paperlib.selftrain import mix_counts
from paperlib.selftrain.pipeline import load_pool

real_set, val_set = engine.build_datasets(base)
# the pool: `pool_root`'s train images, or POOL_CLIPS clips of the asked world from world seed 100
pool, pool_labelled = load_pool(asked, pool_root, num_clips=POOL_CLIPS, seed=100)
pools = {"same_domain": pool}
n_real, n_pseudo = mix_counts(len(real_set), RATIO)
student_steps = EPOCHS * ((n_real + n_pseudo) // base.batch_size)
PRETRAIN_STEPS = max(1, round(student_steps * n_pseudo / (n_real + n_pseudo)))
FINETUNE_STEPS = max(1, student_steps - PRETRAIN_STEPS)
print(f"{len(real_set)} labelled training frames, {len(pool)} unlabelled pool frames, {len(val_set)} "
      f"validation frames; per student epoch {n_real} real + {n_pseudo} pseudo samples; pre-training "
      f"{PRETRAIN_STEPS} steps on pseudo labels, then {FINETUNE_STEPS} on real labels")

# %% [markdown]
# ## Train, seed by seed
# Per seed: the teacher; `loops` rounds of self-training (round 1 is the hard / joint / 1-loop
# student); the soft-label student; pre-training then fine-tuning. Each round's pseudo labels are
# stored under `data/pseudo/<its teacher's fingerprint>_<mode>`.

# %%
from paperlib.selftrain import pseudo_label_quality
from paperlib.selftrain import alternatives as alt

runs, quality = {}, {}
for s in SEEDS:
    cfg = base.replace(seed=s, name=f"st_app_teacher_s{s}")
    student = base.replace(seed=s, name=f"st_app_student_s{s}")
    common = dict(ratio=RATIO, centroid=centroid)
    t0 = time.time()
    teacher = engine.train(cfg, train_set=real_set, val_set=val_set)
    runs[("teacher", s)] = teacher["metrics"]
    rounds = alt.self_training_loops(cfg, student, pools, teacher, loops, **common)
    for k, r in enumerate(rounds, 1):
        runs[(f"{k}-loop", s)] = r["metrics"]
        quality[(k, s)] = pseudo_label_quality(r["pipeline"]["pseudo_dirs"]["same_domain"], pool_labelled)
    runs[("soft", s)] = alt.soft_self_train(cfg, student.replace(name=f"st_app_soft_s{s}"), pools, teacher,
                                            top_k=top_k, **common)["metrics"]
    runs[("pretrain", s)] = alt.pretrain_then_finetune(
        student.replace(name=f"st_app_pre_s{s}"), pools, teacher, pretrain_steps=PRETRAIN_STEPS,
        finetune_steps=FINETUNE_STEPS, centroid=centroid)["metrics"]
    print(f"seed {s} ({time.time() - t0:.0f} s): " + ", ".join(
        f"{name} {100 * runs[(name, s)]['miou']:.1f}" for name, ss in runs if ss == s))
    print("  pseudo-label mIoU on the pool by round (its teacher's quality): " + ", ".join(
        f"round {k}: {100 * quality[(k, s)]['miou']:.1f}" for k in range(1, loops + 1)))

# %% [markdown]
# ## The three tables
# mIoU (%) on the validation frames; the baseline is the teacher. Table 9 also lists the mIoU of
# the pseudo labels each round trained on (measured against the pool's hidden ground truth).

# %%
TABLES = {  # table id -> [(our run, row name as in the paper's table)]
    "table7": [("teacher", "baseline (teacher)"), ("soft", "soft pseudo labels"),
               ("1-loop", "hard pseudo labels (ours)")],
    "table8": [("teacher", "baseline (teacher)"), ("pretrain", "pre-training then fine-tuning"),
               ("1-loop", "joint learning (ours)")],
    "table9": [("teacher", "baseline (teacher)")] + [(f"{k}-loop", f"{k}-loop") for k in range(1, loops + 1)],
}
frames = {}
for tid, rows in TABLES.items():
    recs = []
    for run, name in rows:
        for s in SEEDS:
            rec = {"method": name, "seed": s, "mIoU": 100 * runs[(run, s)]["miou"],
                   "pixel accuracy": 100 * runs[(run, s)]["pixel_accuracy"]}
            if tid == "table9":
                k = int(run.split("-")[0]) if run.endswith("loop") else 0
                rec["pseudo-label mIoU"] = 100 * quality[(k, s)]["miou"] if k else float("nan")
            recs.append(rec)
    frames[tid] = pd.DataFrame(recs)
    print(tid)
    print(frames[tid].drop(columns="seed").groupby("method", sort=False).agg(["mean", "std"]).round(1))

# %%
import matplotlib.pyplot as plt

from paperlib.reference import load as load_reference
from paperlib.repro import save_figure

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, (tid, rows) in zip(axes, TABLES.items()):
    ref = load_reference("selftrain", tid).set_index("method")["mIoU"]
    names = [name for _, name in rows]
    df = frames[tid]
    means = [df.loc[df.method == n, "mIoU"].mean() for n in names]
    ax.bar(np.arange(len(names)) - 0.2, means, width=0.4, color="tab:blue")
    for k, n in enumerate(names):
        v = df.loc[df.method == n, "mIoU"].to_numpy()
        ax.scatter(np.full(len(v), k - 0.2), v, color="k", s=10, zorder=3)
    ax2 = ax.twinx()
    ax2.bar(np.arange(len(names)) + 0.2, [ref.get(n, np.nan) for n in names], width=0.4, color="tab:gray",
            alpha=0.7)
    ax2.set_ylim(77, 81)
    ax2.set_ylabel("paper mIoU (%)", color="tab:gray")
    ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
    ax.set_ylabel("our mIoU (%)", color="tab:blue")
    ax.set_ylim(max(0, min(df.mIoU) - 5), max(df.mIoU) + 2)
    ax.set_title(f"Table {tid[-1]}", loc="left")
from matplotlib.patches import Patch

fig.legend(handles=[Patch(color="tab:blue", label=f"ours ({profile}), left axis"),
                    Patch(color="tab:gray", alpha=0.7, label="paper, right axis")], loc="upper right", fontsize=8)
plt.tight_layout()
save_figure(fig, "selftrain", "appendix_tables", profile=profile, seeds=SEEDS, started=STARTED, params=params,
            data_fingerprint=real_set.fingerprint(),
            notes="Self-training Appendix Tables 7-9: ours (blue, per-seed dots; left axis) beside the paper "
                  "(grey; right axis).")

# %% [markdown]
# ## Claims
# Declared before this run in `paperlib/reference/claims/selftrain.toml` (Tables 7-9); verdicts
# from `paperlib.claims`, paired by seed (every run of a seed starts from that seed's teacher).
# Hard > soft (Table 7) and joint > pre-train then fine-tune (Table 8) are directional. The loop
# statements ("2-loop slightly worse, 3-loop slightly better": no real gain from more loops) are
# null claims, two one-sided tests against a margin of 0.4 mIoU taken from the paper (the smallest
# Appendix A difference it treats as an effect), so a clear loss or a clear gain is "not
# reproduced". Pre-training then fine-tuning gets the joint student's optimizer steps and samples,
# but a restarted learning-rate schedule for its second stage (see the claim's note). "Student
# beats its teacher" compares runs of different lengths (the student takes 1 + pseudo/real times
# the teacher's steps) and has no step-matched control here (CSST Table 1's notebook has it).
# Loops this run does not train are left out (listed).

# %%
from paperlib import claims
from paperlib.selftrain import analysis

CLAIMS = {}
for tid, frame in frames.items():
    CLAIMS[tid] = claims.evaluate(analysis.runnable(claims.declared("selftrain", tid), frame, arm="method"),
                                  frame, arm="method", value="mIoU")
    print(f"Table {tid[-1]}:")
    claims.show(CLAIMS[tid])
if profile == "smoke":
    print("(smoke trains for a handful of steps: the numbers test the code path, not the paper.)")

# %% [markdown]
# ## Writing the tables
# Every seed's row in the csv; mean ± std over seeds in the markdown beside the paper's, then the
# claims.

# %%
from paperlib.repro import write_table

for tid, frame in frames.items():
    values = [c for c in frame.columns if c not in ("method", "seed")]
    write_table(frame, "selftrain", tid, profile=profile, reference=True, by=["method"], value_cols=values,
                floatfmt=".1f", seeds=SEEDS, started=STARTED, claims=CLAIMS[tid],
                params={**params, "epochs": EPOCHS, "labelled": LABELLED, "pool_clips": POOL_CLIPS,
                        "pretrain_steps": PRETRAIN_STEPS, "finetune_steps": FINETUNE_STEPS,
                        "config": base.to_dict()},
                data_fingerprint=real_set.fingerprint(),
                notes=f"{base.model} (width {base.model_width}) for teacher and students; {EPOCHS} epochs; "
                      f"{len(real_set)} labelled frames, a same-domain pool of {len(pool)} frames, real:pseudo "
                      f"{RATIO[0]:g}:{RATIO[1]:g} per epoch (paper: 1:7); {'centroid' if centroid else 'random'} "
                      f"crops {base.crop_size}, batch {base.batch_size} ({profile} profile). The hard / joint / "
                      f"1-loop student is one run. Pre-training: {PRETRAIN_STEPS} steps on pseudo labels, "
                      f"then {FINETUNE_STEPS} on real labels. Soft labels: top-{top_k}.")
print(f"done in {time.time() - STARTED:.0f} s")
