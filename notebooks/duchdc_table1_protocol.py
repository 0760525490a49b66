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
# paperlib: writes tables/duchdc/table1, figures/duchdc/table1_patches

# %% [markdown]
# # DUC/HDC Table 1: downsampling rate, ASPP, patch scheme and cell size
#
# Sec. 4.1 ("Ablation Studies") varies four settings of ResNet-DUC and reports mIoU on Cityscapes val:
#
# 1. the **downsampling rate** (DS) of the network, 8, 16 or 32: a smaller output stride keeps
#    more detail but costs more (the DUC top layer has `(DS / cell)^2 * L` channels);
# 2. the **ASPP** classifier on top: four parallel dilated 3x3 convolutions (rates 6, 12, 18, 24,
#    summed) or six (6 .. 36, "a 0.2% boost");
# 3. the **training patches**: plain random crops, or the 12-fold scheme (each 1024x2048 image cut
#    into a 2x6 grid of overlapping 800x800 tiles, 544x544 crops drawn inside a tile: "another 1.5%"),
#    and, in the "Bigger Patch Size" paragraph, the 7-fold scheme (7 jittered 880x880 patches per
#    image centred at y = 512, x = 256 i: 75.7%, "a 1% improvement");
# 4. the **cell size** of DUC: cell 1 predicts every pixel, cell 2 predicts one label per 2x2 cell
#    (labels nearest-downsampled) -- "slightly better" and 4x fewer top-layer channels.
#
# The patch schemes live in `paperlib.data.patches` (`build_patch_dataset`): sizes are the paper's
# pixel sizes scaled by `H / 1024` and rounded to a multiple of 16 (at 128x256: crops 64, tiles 96,
# 7-fold patches 112, jitter +-15 px). No random scaling or colour jitter in any scheme, so
# the schemes differ only in where the training pixels come from (and, for 7-fold, the bigger patch).
#
# **Design.** Table 1's numbers are lost from the text extraction; the prose gives the baseline
# (72.3, bilinear), ResNet-DUC (74.3) and the bigger-patch DUC (75.7). We run one factor at a
# time around a base model "DUC, DS 8, ASPP 4, 12-fold, cell 2", plus the bilinear baseline,
# and report mIoU and the thin classes' IoU (pole, traffic light, traffic sign; on CamVid pole and
# sign/symbol), where DUC is meant to help.
#
# **Scale.** At `smoke`/`cpu` the network is the zoo's `deeplabv2_resnet101` scaled down:
# ResNet-18 depth (basic blocks 2-2-2-2: the same stem / four-stage / dilated res4-res5 structure)
# with base width 8 instead of 64, trained from scratch, on the synthetic world (or CamVid frames
# resized by `prescale`). At this scale the ASPP rates (6 .. 36 at stride 8) exceed the 8x8
# feature map of a 64x64 crop, so most ASPP taps see padding: the ASPP-4-vs-6 claim depends on a
# check (the feature map at the training crop is wider than the largest rate) and is reported
# "not testable" where that check fails.

# %% tags=["parameters"]
profile = "smoke"
dataset = "world"     # "world" or a real dataset, e.g. "camvid" with data_root
data_root = None
prescale = None       # resize real frames first; None: 0.35 for real data at smoke/cpu (CamVid 360x480 -> 126x168), else 1.0
steps = None          # None: the per-profile number below
seeds = None          # None: the per-profile seeds below
depth = None          # None: 18 at smoke/cpu, 101 at gpu/paper
width = None          # None: 8 at smoke/cpu, the paper's 64 at gpu/paper
rows = None           # None: every row below; or a list of row names

# %%
import time

import numpy as np
import pandas as pd

from paperlib.config import config_from_params
from paperlib.repro import check_params, config_overrides, int_list_or_none, profile_sizes

STARTED = time.time()

# row -> settings; the base row is "DUC", the others change one thing
ROWS = {
    "bilinear baseline": dict(head="bilinear", ds=8, aspp=4, scheme="fixed12", cell=None),
    "DUC, random crop": dict(head="duc", ds=8, aspp=4, scheme="random", cell=2),
    "DUC": dict(head="duc", ds=8, aspp=4, scheme="fixed12", cell=2),
    "DUC, cell 1": dict(head="duc", ds=8, aspp=4, scheme="fixed12", cell=1),
    "DUC, ASPP 6": dict(head="duc", ds=8, aspp=6, scheme="fixed12", cell=2),
    "DUC, DS 16": dict(head="duc", ds=16, aspp=4, scheme="fixed12", cell=2),
    "DUC, DS 32": dict(head="duc", ds=32, aspp=4, scheme="fixed12", cell=2),
    "DUC, 7-fold (bigger patch)": dict(head="duc", ds=8, aspp=4, scheme="jitter7", cell=2),
}
SCHEME_NAMES = {"random": "random crop", "fixed12": "12-fold", "jitter7": "7-fold"}


def rows_or_none(v):
    """None or a non-empty list of Table 1 row names"""
    return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(r in ROWS for r in v))


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "dataset": str, "data_root": (str, type(None)),
           "prescale": (float, int, type(None)), "steps": (int, type(None)), "seeds": int_list_or_none,
           "depth": (18, 34, 50, 101, 152, None), "width": (int, type(None)), "rows": rows_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

# Per-profile scale: a profile changes sizes, never code paths.
SCALE = {
    "smoke": dict(depth=18, width=8, steps=2, seeds=[0], batch_size=2),
    "cpu": dict(depth=18, width=8, steps=150, seeds=[0, 1], batch_size=8),
    "gpu": dict(depth=101, width=None, steps=None, seeds=[0, 1], batch_size=None),
    "paper": dict(depth=101, width=None, steps=None, seeds=[0], batch_size=None),
}[profile]
SIZES = profile_sizes(SCALE, depth=depth, width=width, seeds=seeds, steps=steps)  # a parameter, else the profile's
DEPTH, WIDTH, SEEDS = SIZES["depth"], SIZES["width"], list(SIZES["seeds"])
ROW_NAMES = list(rows or ROWS)
REAL = dataset != "world"
PRESCALE = float(prescale) if prescale is not None else (0.35 if REAL and profile in ("smoke", "cpu") else 1.0)
TABLE_ID = "table1" if not REAL else f"table1_{dataset}"
from paperlib import claims

claims.declared("duchdc", TABLE_ID)  # fail fast: this table's claims must be declared before the run
ASPP = {4: (6, 12, 18, 24), 6: (6, 12, 18, 24, 30, 36)}

base_over = dict(dataset=dataset, data_root=data_root, model="deeplabv2_resnet101", model_width=WIDTH,
                 **config_overrides(SIZES, "steps", "batch_size"))  # None: the profile's default
if REAL:
    from paperlib.data import dataset_num_classes
    base_over["num_classes"] = dataset_num_classes(dataset)


def make_config(row: str, seed: int):
    """One training run: the profile's sizes, this row's model, this seed."""
    r = ROWS[row]
    opts = {"depth": DEPTH, "head": r["head"], "output_stride": r["ds"], "rates": ASPP[r["aspp"]]}
    if r["cell"] is not None:
        opts["cell"] = r["cell"]
    return config_from_params(profile, **base_over, seed=seed, model_options=opts,
                              name=f"duchdc_{TABLE_ID}_{row.replace(' ', '_')}_{seed}")


configs = {(r, s): make_config(r, s) for r in ROW_NAMES for s in SEEDS}
base_cfg = next(iter(configs.values()))
print(f"{len(configs)} runs: {len(ROW_NAMES)} rows x seeds {SEEDS}; ResNet-{DEPTH} structure, width "
      f"{WIDTH or 64}, {base_cfg.steps} steps, batch {base_cfg.batch_size}, {dataset} (prescale {PRESCALE})")

# %% [markdown]
# ## The three patch schemes
# Where the training pixels of one frame come from: the 12 fixed tiles (a random crop is then
# drawn inside each), and the 7 jittered bigger patches (one draw of the jitter), against the frame.

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from paperlib.data import get_dataset
from paperlib.data.patches import build_patch_dataset, protocol_sizes, tile_origins
from paperlib.data.transforms import Compose, Normalize, scale_item

raw_train = get_dataset(base_cfg, base_cfg.train_split, None)   # raw frames; the schemes crop them
eval_tf = Compose(([lambda it: scale_item(it, PRESCALE)] if PRESCALE != 1.0 else []) + [Normalize()])
val_set = get_dataset(base_cfg, base_cfg.val_split, eval_tf)
train_sets = {s: build_patch_dataset(raw_train, s, multiple=16, prescale=PRESCALE) for s in SCHEME_NAMES}
class_names = list(raw_train.class_names)
THIN = [c for c in ("pole", "traffic light", "traffic sign", "sign/symbol") if c in class_names]
thin_idx = [class_names.index(c) for c in THIN]
frame = train_sets["fixed12"].raw(0)
H, W = frame["image"].shape[-2:]
sizes = protocol_sizes((H, W), multiple=16)
print(f"{len(raw_train)} training frames ({H}x{W} after prescale), {len(val_set)} validation; "
      f"scaled sizes {sizes}; patches per epoch: " + ", ".join(f"{SCHEME_NAMES[s]} {len(d)}" for s, d in train_sets.items()))

fig, axes = plt.subplots(1, 2, figsize=(11, 3))
img = frame["image"].permute(1, 2, 0).numpy()
for ax, title in zip(axes, ("12-fold: 2x6 tiles of %d px" % sizes["tile"],
                            "7-fold: jittered %d px patches (+-%d px)" % (sizes["patch"], sizes["jitter"]))):
    ax.imshow(img)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
for k, (y0, x0) in enumerate(tile_origins((H, W), sizes["tile"])):
    axes[0].add_patch(Rectangle((x0, y0), sizes["tile"], sizes["tile"], fill=False, lw=1, color=plt.cm.tab20(k)))
jit = train_sets["jitter7"]
for p in range(jit.patches_per_image):
    y0, x0, h, w = jit.box(p, (H, W))
    axes[1].add_patch(Rectangle((x0, y0), w, h, fill=False, lw=1, color=plt.cm.tab10(p)))
axes[1].set_xlim(-sizes["patch"] / 2, W + sizes["patch"] / 2)
axes[1].set_ylim(H + sizes["patch"] / 2, -sizes["patch"] / 2)
plt.tight_layout()
from paperlib.repro import save_figure

save_figure(fig, "duchdc", "table1_patches" if not REAL else f"table1_patches_{dataset}", profile=profile,
            params={**params, "sizes": sizes, "prescale": PRESCALE}, seeds=SEEDS, started=STARTED,
            data_fingerprint=raw_train.fingerprint(),
            notes="The 12-fold tiles and 7-fold jittered patches (Sec. 4.1) on one training frame, sizes scaled by H/1024.")

# %% [markdown]
# ## Train every row
# Same seeds, same steps; each row's training set is its patch scheme. Evaluation: whole
# validation frames.

# %%
from paperlib import engine

results = {}
for (r, s), cfg in configs.items():
    t0 = time.time()
    results[(r, s)] = engine.train(cfg, train_set=train_sets[ROWS[r]["scheme"]], val_set=val_set)
    print(f"{r:28s} seed {s}: mIoU {100 * results[(r, s)]['metrics']['miou']:5.1f}  ({time.time() - t0:.0f} s)")

# %% [markdown]
# ## The table
# mIoU and thin-class IoU (%), one row per model and seed, with the paper's numbers beside ours
# (only the three the text quotes).

# %%
def table_row(r, s):
    met = results[(r, s)]["metrics"]
    iou = np.asarray(met["per_class_iou"], dtype=float) * 100
    thin = iou[thin_idx]
    spec = ROWS[r]
    return {"row": r, "DS": spec["ds"], "ASPP": spec["aspp"], "augmentation": SCHEME_NAMES[spec["scheme"]],
            "cell": "-" if spec["cell"] is None else str(spec["cell"]), "seed": s, "mIoU": 100 * met["miou"],
            **{c: float(v) for c, v in zip(THIN, thin)},
            "thin mean": float(np.nanmean(thin)) if np.isfinite(thin).any() else float("nan")}


table = pd.DataFrame([table_row(r, s) for (r, s) in configs])
VALUES = ["mIoU", *THIN, "thin mean"]
KEYS = ["row", "DS", "ASPP", "augmentation", "cell"]
table.drop(columns="seed").groupby(KEYS, sort=False).mean().round(1)

# %% [markdown]
# ## Claims
# Declared in `paperlib/reference/claims/duchdc.toml` (`table1`; the CamVid run tests the same
# claims as `table1_camvid`) before this run; verdicts from `paperlib.claims`, paired by seed
# (every row shares each seed's initialisation and data order). Claims whose rows were not run
# (the `rows` parameter) are left out and listed. Two are gated:
#
# * ASPP 6 vs 4 depends on the check that the DS-8 feature map of the training crop is wider than
#   the largest ASPP-6 rate: otherwise the added branches read only padding ("not testable");
# * the thin-class claim depends on the control "the bilinear baseline's thin-class IoU > 0".
#
# The 7-fold vs 12-fold claim is confounded here: the bigger patches are trained at the same batch
# size as the 12-fold crops, so they carry `(patch / crop)^2` (about 3x) the labelled pixels per
# step, where the paper lowered its batch for them; no pixel-matched arm exists, so the claim's
# note says so (the ratio is printed below).

# %%
from paperlib.duchdc_analysis import aspp_rates_fit, testable_here

aspp_row = ROWS["DUC, ASPP 6"]
CHECKS = {f"{TABLE_ID}_aspp_rates_fit": aspp_rates_fit(sizes["crop"], aspp_row["ds"], ASPP[aspp_row["aspp"]])}
DECLARED, LEFT_OUT = testable_here(claims.declared("duchdc", TABLE_ID), table, arm="row", checks=CHECKS)
CLAIMS = claims.evaluate(DECLARED, table, arm="row", value="mIoU", unit="seed", checks=CHECKS)
claims.show(CLAIMS)
for line in LEFT_OUT:
    print("left out:", line)
print(f"7-fold vs 12-fold: {sizes['patch']}-px patches vs {sizes['crop']}-px crops at batch {base_cfg.batch_size}: "
      f"{(sizes['patch'] / sizes['crop']) ** 2:.1f}x the labelled pixels per step (the confound of the 7-fold claim)")
if profile == "smoke":
    print("(smoke trains for a handful of steps: the numbers test the code path, not the paper.)")

# %%
from paperlib.repro import write_table

write_table(table, "duchdc", TABLE_ID, profile=profile, reference="duchdc/table1" if not REAL else None,
            by=KEYS, value_cols=VALUES, floatfmt=".1f", seeds=SEEDS, started=STARTED, claims=CLAIMS,
            params={**params, "depth": DEPTH, "width": WIDTH, "seeds": SEEDS, "prescale": PRESCALE,
                    "sizes": sizes, "config": base_cfg.to_dict(), "rows": {r: ROWS[r] for r in ROW_NAMES}},
            data_fingerprint=raw_train.fingerprint(),
            notes=f"deeplabv2_resnet101 scaled down: ResNet-{DEPTH} stage structure, base width {WIDTH or 64}; "
                  f"{base_cfg.steps} steps, batch {base_cfg.batch_size}, from scratch on {dataset} "
                  f"({H}x{W} frames) at the {profile} profile. Patch sizes = the paper's scaled by H/1024, "
                  f"multiple of 16: {sizes}. No random scaling / colour jitter; flip only. The 7-fold row is "
                  f"confounded with data volume: {sizes['patch']}-px patches vs {sizes['crop']}-px crops at the same "
                  f"batch = {(sizes['patch'] / sizes['crop']) ** 2:.1f}x the labelled pixels per step."
                  + (" Claims not tested here: " + "; ".join(LEFT_OUT) + "." if LEFT_OUT else ""))
print(f"done in {time.time() - STARTED:.0f} s")
