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
# paperlib: writes tables/paperlib/nb_fail

# %% [markdown]
# # Harness test notebook (fails on purpose)

# %% tags=["parameters"]
profile = "smoke"

# %%
import pandas as pd

from paperlib.repro import write_table

# a half-finished run: one output written, then the notebook fails
write_table(pd.DataFrame({"x": [99.0]}), "paperlib", "nb_fail", profile=profile)

# %%
raise RuntimeError("nb_fail fails on purpose")
