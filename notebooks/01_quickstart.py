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
# paperlib: writes tables/paperlib/quickstart_world, figures/paperlib/quickstart_world

# %% [markdown]
# # Quickstart: train, evaluate, write a versioned table
#
# The whole of paperlib in one page. Every paper's table is "train a segmentation model under
# setting X, evaluate mIoU", and every notebook follows the same five steps:
#
# 1. **parameters** (the cell tagged `parameters`; papermill fills it in, e.g. `profile="cpu"`),
# 2. a **config** built from the profile's sizes plus overrides (`paperlib.config.config_from_params`),
#    validated before any data is touched — a typo fails here, naming the parameter,
# 3. **train** with the one engine (`paperlib.engine.train`: SGD + poly schedule, cross-entropy),
# 4. **evaluate** (`paperlib.engine.evaluate` → `paperlib.metrics.ConfusionMatrix`),
# 5. **write** the table and figures through `paperlib.repro` (versioned, with a manifest).
#
# By default the data is the embedded synthetic driving world, exported to disk in Cityscapes'
# layout and read back by the Cityscapes loader (so the real-data code path is the one that runs).
# Set `dataset="camvid"` and `data_root` to the CamVid folder to train on real CamVid. An absolute
# path is safest; a relative one is read from this notebook's folder (`notebooks/`) -- with
# `python -m paperlib reproduce --set data_root=...` it is read from where you run the command.

# %% tags=["parameters"]
profile = "smoke"
dataset = "world"
data_root = None
model = "tiny_fcn"
steps = None          # None: the profile's number of steps
seed = 0

# %%
import time

from paperlib.config import config_from_params
from paperlib.repro import check_params

STARTED = time.time()
ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "dataset": str, "data_root": (str, type(None)),
           "model": str, "steps": (int, type(None)), "seed": int}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

overrides = dict(dataset=dataset, data_root=data_root, model=model, seed=seed, name=f"quickstart_{dataset}")
if steps is not None:
    overrides["steps"] = steps
if dataset != "world":
    from paperlib.data import dataset_num_classes
    overrides["num_classes"] = dataset_num_classes(dataset)
cfg = config_from_params(profile, **overrides)   # fails fast, naming a bad parameter
cfg

# %% [markdown]
# ## Data
# A few training items after the joint transforms (random scale, crop with ignore padding, flip).

# %%
import matplotlib.pyplot as plt
import numpy as np

from paperlib.data import denormalize
from paperlib.data.labels import colorize
from paperlib.engine import build_datasets

train_set, val_set = build_datasets(cfg)
print(f"{len(train_set)} training and {len(val_set)} validation images; "
      f"{train_set.num_classes} classes: {', '.join(train_set.class_names)}")

fig, axes = plt.subplots(2, 4, figsize=(12, 4))
for k in range(4):  # items repeat when the split is tiny (smoke)
    item = train_set[k % len(train_set)]
    axes[0, k].imshow(denormalize(item["image"]))
    axes[1, k].imshow(colorize(item["label"].numpy()))
    for a in axes[:, k]:
        a.axis("off")
axes[0, 0].set_title("image (augmented)", loc="left")
axes[1, 0].set_title("label", loc="left")
plt.tight_layout()

# %% [markdown]
# ## Train and evaluate
# One call: the engine builds the model from the registry, the optimizer and poly schedule, and
# shows a progress bar. It evaluates on the validation split at the end.

# %%
from paperlib import engine

result = engine.train(cfg, train_set=train_set, val_set=val_set)
metrics = result["metrics"]
print(f"mIoU {100 * metrics['miou']:.1f} after {result['step']} steps "
      f"({result['wall_time']:.0f} s)")

# %%
losses = [h["loss"] for h in result["history"] if "loss" in h]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.set_title("training curve")
plt.tight_layout()

# %% [markdown]
# ## Predictions next to the ground truth

# %%
import torch

from paperlib.engine import predict_logits

net = result["model"].eval()
n_show = min(3, len(val_set))
fig, axes = plt.subplots(n_show, 3, figsize=(10, 2.6 * n_show), squeeze=False)
for r in range(n_show):
    item = val_set[r]
    with torch.no_grad():
        pred = predict_logits(net, item["image"][None]).argmax(1)[0].numpy()
    for a, im, title in zip(axes[r], (denormalize(item["image"]), colorize(item["label"].numpy()),
                                      colorize(pred.astype(np.uint8))),
                            ("image", "ground truth", "prediction")):
        a.imshow(im)
        a.set_title(title)
        a.axis("off")
plt.tight_layout()
from paperlib.repro import save_figure

save_figure(fig, "paperlib", f"quickstart_{dataset}", profile=profile, params=cfg.to_dict(),
            seeds=[seed], started=STARTED)

# %% [markdown]
# ## The table
# Per-class IoU and mIoU (in %), written to `tables/paperlib/quickstart_<dataset>.<profile>.*`
# with a manifest (commit, parameters, device, versions, data fingerprint, wall time).

# %%
import pandas as pd

from paperlib.repro import write_table

iou = metrics["per_class_iou"]
df = pd.DataFrame({"class": list(train_set.class_names) + ["mIoU"],
                   "IoU": [100 * float(v) for v in iou] + [100 * metrics["miou"]]})
write_table(df, "paperlib", f"quickstart_{dataset}", profile=profile, params=cfg.to_dict(), seeds=[seed],
            data_fingerprint=train_set.fingerprint(), started=STARTED,
            notes=f"{cfg.model} trained for {result['step']} steps on {dataset} ({profile} profile).")
df.round(1)
