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
# paperlib: writes figures/duchdc/fig2_gridding, tables/duchdc/gridding_patterns, tables/duchdc/hdc_variants

# %% [markdown]
# # DUC/HDC Figure 2: the gridding problem, computed
#
# A 3x3 convolution with dilation rate `r` reads 9 pixels spread over a `(2r+1) x (2r+1)` square.
# Stack three of them at `r = 2` (Figure 2 (a)) and the top pixel sees only the *even* offsets
# of its 13x13 receptive field: a checkerboard, "at least 75%" of the information lost (Sec. 3.2).
# Hybrid dilated convolution (HDC) uses rising rates such as 1, 2, 3 instead (Figure 2 (b)): the
# same receptive field, no holes.
#
# Everything below is computed, nothing typed in:
#
# * `paperlib.gridding.coverage(rates)` — the exact footprint by brute force (every layer ORs the
#   9 shifted copies of the footprint above it);
# * `max_gap(rates)` — `M_2` of the paper's Eq. 2, `M_i = max[M_{i+1} - 2r_i, M_{i+1} - 2(M_{i+1} - r_i), r_i]`,
#   `M_n = r_n`; the design rule is `M_2 <= K = 3` (and no common factor among the rates);
# * `measured_gap(rates)` — the same "maximum distance between two non-zero values" measured on
#   the brute-force footprint of layers 2..n.
#
# The table lists where the rule and the brute force agree — and the patterns where they do not:
# Eq. 2 is exact on rising (sawtooth) patterns, a heuristic elsewhere. This notebook does no
# training; every profile runs the same seconds-long computation.

# %% tags=["parameters"]
profile = "smoke"
patterns = None   # None: the default list below; or a list of rate lists, e.g. [[1, 2, 5], [2, 2, 2]]

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from paperlib.gridding import (coverage, has_gridding, hdc_valid, hole_fraction, max_gap, measured_gap,
                               receptive_field, rf_increase)
from paperlib.models.backbones import hdc_block_rates
from paperlib.repro import check_params, save_figure, write_table

STARTED = time.time()


def rate_lists_or_none(v):
    """None or a list of lists of >= 2 positive ints"""
    return v is None or (isinstance(v, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) >= 2 and all(isinstance(r, int) and r >= 1 for r in p)
        for p in v))


ALLOWED = {"profile": ("smoke", "cpu", "gpu", "paper"), "patterns": rate_lists_or_none}
params = check_params({k: globals()[k] for k in ALLOWED}, ALLOWED)

DEFAULT_PATTERNS = [
    (2, 2, 2), (1, 2, 3),                 # Figure 2 (a), (b)
    (1, 2, 5), (1, 2, 9),                 # the paper's examples for Eq. 2 (works / does not)
    (2, 4, 8), (1, 2, 4),                 # common factor (ASPP-like) vs the same with r_1 = 1
    (1, 2, 5, 9), (3, 4, 5), (5, 9, 17),  # the zoo's groups: Dilation-bigger res4, Dilation-RF res5, Dilation-bigger res5
    (2, 1), (1, 3), (1, 4),               # Dilation-conv's pair; M_2 = K; M_2 = K + 1
    (5, 1), (1, 5, 1),                    # off the sawtooth: Eq. 2 misses holes / over-estimates
]
PATTERNS = [tuple(p) for p in (patterns or DEFAULT_PATTERNS)]

# %% [markdown]
# ## Figure 2: what the top pixel sees, layer by layer
# Column `j` shows the pixels of layer `3 - j` that reach the red centre pixel of layer 3 (the
# last column is the input); darker = reached through more paths.

# %%
def paths(rates):
    """How many kernel paths connect each input offset to the centre output (brute force, int)."""
    acc = np.ones((1, 1), dtype=np.int64)
    for r in rates:
        n = acc.shape[0] + 2 * r
        nxt = np.zeros((n, n), dtype=np.int64)
        for ty in range(3):
            for tx in range(3):
                nxt[ty * r: ty * r + acc.shape[0], tx * r: tx * r + acc.shape[1]] += acc
        acc = nxt
    return acc


def padded(a, side):
    p = (side - a.shape[0]) // 2
    return np.pad(a, p)


fig, axes = plt.subplots(2, 4, figsize=(11, 5.6))
for row, rates in enumerate([(2, 2, 2), (1, 2, 3)]):
    side = receptive_field(rates)
    for j in range(4):
        ax = axes[row, j]
        top = rates[len(rates) - j:] if j else ()
        cnt = paths(top) if top else np.ones((1, 1), dtype=np.int64)
        img = padded(cnt.astype(float), side)
        ax.imshow(np.where(img > 0, 0.25 + 0.75 * img / img.max(), 0), cmap="Blues", vmin=0, vmax=1)
        c = side // 2
        ax.add_patch(plt.Rectangle((c - 0.5, c - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
        ax.set_xticks(np.arange(-0.5, side, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, side, 1), minor=True)
        ax.grid(which="minor", color="0.85", lw=0.4)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        used = int((img > 0).sum())
        ax.set_title(f"layer {3 - j}" + (" (input)" if j == 3 else "") + f": {used} px", fontsize=9)
    axes[row, 0].set_ylabel(f"rates {rates}\n({'gridding' if has_gridding(rates) else 'no holes'})")
fig.suptitle("Figure 2: pixels reaching the red pixel through three 3x3 dilated convolutions")
plt.tight_layout()
fig_top = fig

# %% [markdown]
# ## A grid of patterns with the Eq. 2 verdict
# Each panel is the input footprint (`coverage`) of one pattern; the title gives `M_2` from Eq. 2,
# the rule's verdict, and what the brute force finds.

# %%
rows = []
for rates in PATTERNS:
    m2, valid, holes = max_gap(rates), hdc_valid(rates), has_gridding(rates)
    rows.append({"pattern": " ".join(map(str, rates)), "M_2 (Eq. 2)": m2, "measured gap": measured_gap(rates),
                 "Eq. 2 valid": valid, "holes (brute force)": holes,
                 "hole fraction": round(hole_fraction(rates), 4), "RF": receptive_field(rates),
                 "rising from 1": rates[0] == 1 and list(rates) == sorted(rates),
                 "agree": valid is (not holes)})
table = pd.DataFrame(rows)

ncol = 5
nrow = -(-len(PATTERNS) // ncol)
fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 3.3 * nrow), squeeze=False)
for ax in axes.flat:
    ax.axis("off")
for ax, rates, row in zip(axes.flat, PATTERNS, rows):
    ax.imshow(coverage(rates), cmap="Blues", vmin=-0.3, vmax=1, interpolation="nearest")
    verdict = "valid" if row["Eq. 2 valid"] else "invalid"
    found = "holes" if row["holes (brute force)"] else "full"
    ax.set_title(f"r = {rates}\nM2 = {row['M_2 (Eq. 2)']} ({verdict}); {found}",
                 fontsize=8, color="black" if row["agree"] else "crimson")
fig.suptitle("Coverage of each pattern; red titles: Eq. 2's rule and the brute force disagree")
plt.tight_layout()
fig_grid = fig

# %%
# one figure file: the Figure 2 pair on top, the pattern grid below
from matplotlib.figure import Figure

from io import BytesIO


def stack(figs):
    """Render figures to arrays and stack them vertically into one matplotlib figure."""
    arrays = []
    for f in figs:
        buf = BytesIO()
        f.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        buf.seek(0)
        arrays.append(plt.imread(buf))
    width = max(a.shape[1] for a in arrays)
    arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=1.0) for a in arrays]
    out = np.concatenate(arrays, axis=0)
    f = Figure(figsize=(out.shape[1] / 100, out.shape[0] / 100))
    ax = f.add_axes([0, 0, 1, 1])
    ax.imshow(out)
    ax.axis("off")
    return f


params_out = {"profile": profile, "patterns": [list(p) for p in PATTERNS]}
save_figure(stack([fig_top, fig_grid]), "duchdc", "fig2_gridding", profile=profile, params=params_out,
            started=STARTED, dpi=100,
            notes="Top: Figure 2 (a) rates 2,2,2 vs (b) 1,2,3. Bottom: coverage of each pattern with Eq. 2's verdict.")

# %% [markdown]
# ## Claims: Figure 2 and Eq. 2 (sanity checks)
# Declared in `paperlib/reference/claims/duchdc.toml`; each is a structural `check` (pass / fail
# from the computation above, never counted as a reproduction). The numbers of the paper's worked
# examples (9 of 25 pixels; `M_2` = 2 and 5) come from `paperlib/reference/duchdc/fig2.csv`.

# %%
from paperlib import claims, reference

ref = reference.load("duchdc", "fig2")
ref_val = ref.set_index(["quantity", "rates"])["value"]
one_r2 = coverage((2,))
examples = ref[ref["quantity"] == "M_2 (Eq. 2)"]
example_rates = [tuple(int(r) for r in str(p).split()) for p in examples["rates"]]
sawtooth = table[table["rising from 1"]]
rising = np.array([list(p) == sorted(p) for p in PATTERNS])
CHECKS = {
    "f2_figure2_gridding": (bool(has_gridding((2, 2, 2)) and not has_gridding((1, 2, 3))),
                            f"hole fraction {hole_fraction((2, 2, 2)):.3f} vs {hole_fraction((1, 2, 3)):.3f}"),
    "f2_figure2_same_region": (receptive_field((1, 2, 3)) == receptive_field((2, 2, 2)),
                               f"RF {receptive_field((1, 2, 3))} vs {receptive_field((2, 2, 2))}"),
    "f2_nine_of_25": (int(one_r2.sum()) == int(ref_val[("pixels used", "2")])
                      and one_r2.size == int(ref_val[("region pixels", "2")]),
                      f"{int(one_r2.sum())} of {one_r2.size} pixels"),
    "f2_eq2_examples": (all(max_gap(r) == int(v) and hdc_valid(r) == (str(ok) == "True")
                            for r, v, ok in zip(example_rates, examples["value"], examples["valid"])),
                        "; ".join(f"{r}: M_2 = {max_gap(r)}, {'valid' if hdc_valid(r) else 'invalid'}"
                                  for r in example_rates)),
    "f2_eq2_exact_rising": (bool((table["M_2 (Eq. 2)"] == table["measured gap"])[rising].all()),
                            f"{int(rising.sum())} rising pattern(s)"),
    "f2_eq2_rule_sawtooth": (bool(sawtooth["agree"].all()), f"{len(sawtooth)} sawtooth pattern(s)"),
}
CLAIMS = claims.evaluate(claims.declared("duchdc", "gridding_patterns"), checks=CHECKS)
claims.show(CLAIMS)
disagree = table[~table["agree"]]
print("Eq. 2's rule and the brute force disagree on:", ", ".join(disagree["pattern"]) or "none")

# %% [markdown]
# ## The table: Eq. 2 vs brute force

# %%
write_table(table, "duchdc", "gridding_patterns", profile=profile, params=params_out, started=STARTED,
            value_cols=["hole fraction"], floatfmt=".4f", claims=CLAIMS,
            notes="M_2 by Eq. 2 (3x3 kernels); 'measured gap' = the same quantity on the brute-force "
                  "footprint of layers 2..n; 'Eq. 2 valid' = M_2 <= 3 and no common factor; "
                  "'holes' = brute-force coverage has holes inside its square.")
table

# %% [markdown]
# ## The HDC variants of ResNet-101 (Sec. 4.1): whole dilated stack and "RF increased"
# The paper's variants give one rate per res4/res5 block (`hdc_block_rates`). "RF increased" is
# "the total size of receptive field increase along a single dimension compared to the layer
# before the dilation operation": each block's 3x3 conv at rate `r` widens the RF by `2(r - 1)`
# feature pixels more than undilated, so the column is `2 * sum(r - 1)` (x8 for input pixels at
# output stride 8) — 0 for "No dilation". The paper's own numbers for this column did not survive
# the text extraction, so no `paper:` column is given. DeepLab-v2 (all 2s, then 4s) is added as the
# standard-dilation reference.

# %%
variants = ["baseline", "no_dilation", "dilation_conv", "dilation_rf", "dilation_bigger"]
vrows = []
for v in variants:
    br = hdc_block_rates(v)
    vrows.append({"variant": v, "res4 rates": " ".join(map(str, br["layer3"])),
                  "res5 rates": " ".join(map(str, br["layer4"])),
                  "RF increased (feature px)": rf_increase(br), "RF increased (input px)": rf_increase(br, stride=8),
                  "RF of res4+res5 (feature px)": receptive_field(br),
                  "stack has holes": has_gridding(br), "stack hole fraction": round(hole_fraction(br), 4)})
variants_table = pd.DataFrame(vrows)

# %% [markdown]
# ## Claims: the HDC variants (sanity checks)
# Structural `check`s on the whole res4+res5 stack of ResNet-101 (declared in
# `paperlib/reference/claims/duchdc.toml`).

# %%
vt = variants_table.set_index("variant")
VARIANT_CHECKS = {
    "f2_variants_gridding": (bool(vt.loc["baseline", "stack has holes"]
                                  and not vt.drop(index="baseline")["stack has holes"].any()),
                             "holes: " + ", ".join(f"{v} {bool(h)}" for v, h in vt["stack has holes"].items())),
    "f2_dilation_rf_keeps_rf": (int(vt.loc["dilation_rf", "RF of res4+res5 (feature px)"])
                                == int(vt.loc["baseline", "RF of res4+res5 (feature px)"]),
                                f"RF {vt.loc['dilation_rf', 'RF of res4+res5 (feature px)']} vs "
                                f"{vt.loc['baseline', 'RF of res4+res5 (feature px)']} feature px"),
}
VARIANT_CLAIMS = claims.evaluate(claims.declared("duchdc", "hdc_variants"), checks=VARIANT_CHECKS)
claims.show(VARIANT_CLAIMS);

# %%
write_table(variants_table, "duchdc", "hdc_variants", profile=profile, params={"profile": profile},
            started=STARTED, value_cols=["stack hole fraction"], floatfmt=".4f", claims=VARIANT_CLAIMS,
            notes="Computed from paperlib.models.backbones.hdc_block_rates (ResNet-101: 23 res4 and 3 res5 "
                  "blocks, one 3x3 conv per block). 'stack' = the whole res4+res5 sequence as one "
                  "stride-1 stack at the feature resolution.")
variants_table.drop(columns=["res4 rates"])

# %%
print(f"done in {time.time() - STARTED:.1f} s")
