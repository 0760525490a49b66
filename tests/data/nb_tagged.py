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
# paperlib: writes tables/paperlib/nb_tagged_a, tables/paperlib/nb_tagged_b

# %% [markdown]
# # Harness test notebook: writes the table named by `tag`, then optionally waits
# Used to test concurrent runs (each summary lists only its own writes) and a run killed midway
# (the previous outputs stay intact).

# %% tags=["parameters"]
profile = "smoke"
tag = "a"
value = 1.0
wait_s = 0.0

# %%
import time

import pandas as pd

from paperlib.repro import write_table

write_table(pd.DataFrame({"x": [float(value)]}), "paperlib", f"nb_tagged_{tag}", profile=profile)
time.sleep(float(wait_s))  # the run is killed here in the test: its staged table must not be published
