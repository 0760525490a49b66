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
raise RuntimeError("nb_fail fails on purpose")
