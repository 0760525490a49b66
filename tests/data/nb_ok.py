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
# paperlib: writes tables/paperlib/nb_ok, figures/paperlib/nb_ok

# %% [markdown]
# # Harness test notebook (succeeds)
# Validates its parameters, then writes one table and one figure through `paperlib.repro`.

# %% tags=["parameters"]
profile = "smoke"
steps = 3
label = "tiny"

# %%
from paperlib.repro import check_params, save_figure, write_table


def positive_int(v):
    """must be a positive int"""
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "steps": positive_int, "label": str}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

assert os.environ["PAPERLIB_PROFILE"] == profile
df = pd.DataFrame({"method": [label] * 2, "seed": [0, 1], "mIoU": [float(steps), float(steps) + 2]})
write_table(df, "paperlib", "nb_ok", profile=profile, params=params, seeds=[0, 1])
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(steps))
save_figure(fig, "paperlib", "nb_ok", profile=profile, params=params)
