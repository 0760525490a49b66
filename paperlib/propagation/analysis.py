"""Helpers for the VPLR notebooks (Tables 1-3, Figures 2-5, propagated-label quality).

- **Stand-in data** for Table 1 (Sec. 4.1 "Mapillary pre-training", "class uniform sampling on
  fine + coarse"): ``fine_world`` / ``WorldFineLabels`` (the ``city_fine`` domain with its
  32-class fine labels, the pre-training set), ``reset_classifier`` (a new 19-way head after
  pre-training), ``coarse_extra_world`` (coarse annotations of extra clips) and
  ``WithExtra`` (a training set whose extra images are reachable only through a class-uniform
  sampler's ``extra_index``, so they add centroids of chosen classes and no random crops).
- **Boundaries and entropy** for Figure 3: ``boundary_pixels`` (|N| > 1 in a window, the
  pixels Eq. 5 relaxes), ``softmax_entropy`` and ``entropy_by_region``.
- **Derived per-unit measures** for ``paperlib.claims`` (claims on a difference of differences,
  a slope along k, a best length): ``group_gain_gap`` (Table 3: thin vs other classes' gain),
  ``arm_difference``, ``slope_per_unit``, ``best_per_unit``, ``gap_trend`` (Figures 4, 5b: the
  gap's slope along k, the shift of the best k), ``unit_measures`` (per-clip means and slopes of
  propagated-label quality) and ``stack_frames`` (a table and its derived measures in one frame).
  Verdicts themselves come from ``paperlib.claims`` only.
- **The shared recipe**: ``vplr_config`` (the profile's config, at ``cpu`` the recipe of Table 2
  / 6 and Figures 2-5, so the cached motion models and propagated sets are shared) and
  ``recipe_text`` (that recipe in words, for the tables' notes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from paperlib.data.base import DatasetError, SegDataset
from paperlib.data.labels import IGNORE_INDEX
from paperlib.data.datasets import Cityscapes
from paperlib.data.samplers import ConcatSegDataset
from paperlib.losses import relaxation_window

#: Cityscapes train ids the paper names as gaining most (Sec. 4.2, Table 3): "small/thin object
#: classes, such as pole, street light/sign, person, rider and bicycle".
THIN_CLASSES: tuple[int, ...] = (5, 6, 7, 11, 12, 18)


#: The cpu recipe every VPLR training notebook shares (Tables 2, 3, 6, Figures 2-5): 250 steps on
#: 96x96 crops. One recipe means one cached motion model G and one set of propagated samples.
CPU_RECIPE = {"steps": 250, "crop_size": (96, 96)}


def vplr_config(profile: str, name: str, steps: int | None = None, **overrides):
    """The training config of a VPLR notebook: the ``profile``'s defaults, ``CPU_RECIPE`` at
    ``cpu``, then ``steps`` (the notebook parameter; None keeps the profile's or the recipe's),
    ``progress=False`` and ``overrides`` (e.g. ``loss="relaxation"``, Eq. 4-5). Fails fast
    (``ConfigError`` / ``ValueError``) naming a bad parameter."""
    from paperlib.config import config_from_params
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"parameter 'steps' must be an int >= 1 or None, got {steps!r}")
    over = dict(CPU_RECIPE) if profile == "cpu" else {}
    if steps is not None:
        over["steps"] = steps
    return config_from_params(profile, **{"name": name, "progress": False, **over, **overrides})


def recipe_text(cfg, extra: str = "") -> str:
    """The training recipe of a VPLR table in words, for its notes: model and width, steps, batch,
    crop, ``extra`` (e.g. the loss) and the synthetic world trained on."""
    (ch, cw), (h, w) = cfg.crop_size, cfg.world_image_size
    return (f"{cfg.model} (width {cfg.model_width}), {cfg.steps} steps (batch {cfg.batch_size}, crop {ch}x{cw})"
            + (f", {extra}" if extra else "")
            + f", on the synthetic world ({cfg.world_domain}, {h}x{w}, {cfg.world_clips} training snippets)")


# --- stand-in data for Table 1 -----------------------------------------------------------------
class WorldFineLabels(Cityscapes):
    """An exported world read with its 32-class fine labels (``*_gtFine_fineIds.png``).

    The pre-training set standing in for Mapillary Vistas (Sec. 4.1: "more classes"): the
    ``city_fine`` domain splits 13 of the 19 Cityscapes classes (``FINE_CLASSES``).
    """

    def __init__(self, root, split: str = "train", transform=None):
        from paperlib.data.synthetic import FINE_CLASSES
        super().__init__(root, split, transform)
        self.num_classes, self.class_names = len(FINE_CLASSES), FINE_CLASSES
        samples = []
        for s in self.samples:
            fine = s.label.with_name(s.label.name.replace("_gtFine_labelIds.png", "_gtFine_fineIds.png"))
            if not fine.is_file():
                raise DatasetError(f"fine label file not found: {fine} (export a world with fine labels, "
                                   f"e.g. domain 'city_fine')")
            samples.append(type(s)(s.image, fine, s.name, s.neighbours))
        self.samples = samples

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return SegDataset.decode_label(self, raw, path)  # fine ids are stored as is (255 void)


def fine_world(size, num_clips: int, split: str = "train", transform=None, seed: int = 0,
               progress: bool = True) -> WorldFineLabels:
    """The ``city_fine`` world (exported once) as a 32-class dataset."""
    from paperlib.data import export_world
    root = export_world("city_fine", tuple(size), num_clips, seed=seed, progress=progress)
    return WorldFineLabels(root, split, transform)


def reset_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the output layer(s) -- every ``Conv2d`` whose output channels equal the model's
    current number of classes and which is the last conv of the network or named ``classifier``
    -- by a freshly initialised conv with ``num_classes`` outputs (pre-train, then fine-tune)."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("reset_classifier: the model has no Conv2d layer")
    old = convs[-1][1].out_channels
    names = [n for n, m in convs if m.out_channels == old and (n == convs[-1][0] or "classifier" in n)]
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        m = getattr(parent, attr)
        new = nn.Conv2d(m.in_channels, num_classes, m.kernel_size, m.stride, m.padding, m.dilation,
                        m.groups, m.bias is not None).to(m.weight.device)
        setattr(parent, attr, new)
    return model


def coarse_extra_world(domain: str, size, num_clips: int, seed: int = 1, transform=None,
                       progress: bool = True) -> Cityscapes:
    """Coarse annotations (``gtCoarse``) of ``num_clips`` extra clips: a world of the same domain
    with another ``seed`` (other streets), read as Cityscapes' ``train_extra`` coarse split."""
    from paperlib.data import data_dir
    from paperlib.data.synthetic import SyntheticWorld
    from paperlib.data.synthetic.export import export
    h, w = size
    root = data_dir() / "world" / f"{domain}_{h}x{w}_s{seed}_coarse{num_clips}"
    world = SyntheticWorld(domain, size=(h, w), seed=seed)
    export(world, root, splits={"train": 0}, coarse_extra=num_clips, sequence=False, progress=progress)
    return Cityscapes(root, "train_extra", transform, mode="coarse")


class WithExtra(ConcatSegDataset):
    """``primary`` followed by ``extra``, where only ``primary`` is "the dataset": ``len``,
    ``load_label`` and ``fingerprint`` are the primary's, so random crops and the centroid index
    cover the primary images only, while extra image ``j`` loads as key ``len(primary) + j``.

    Pair it with ``ClassUniformSampler(extra_index=<index of extra>, extra_classes=...)`` (the
    engine passes ``cfg.sampler_options`` through): the coarse set only adds crops of the chosen
    classes (VPLR Sec. 4.1: "we only augment these classes by providing extra coarse samples").
    """

    def __init__(self, primary, extra):
        super().__init__([primary, extra])

    def __len__(self) -> int:
        return len(self.datasets[0])

    def locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < int(self.offsets[-1]):
            raise IndexError(f"index {i} out of range for WithExtra of {int(self.offsets[-1])} images")
        d = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return d, int(i - self.offsets[d])

    def load_label(self, i: int) -> np.ndarray:
        return self.datasets[0].load_label(i)

    def fingerprint(self) -> str:
        return self.datasets[0].fingerprint()


# --- boundaries and entropy (Figure 3) ---------------------------------------------------------
def boundary_pixels(label: torch.Tensor, num_classes: int, window: int = 3,
                    ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Pixels whose ``window`` x ``window`` neighbourhood holds more than one valid class
    (|N| > 1 in Eq. 5: exactly the pixels boundary relaxation relaxes). ``label`` (H, W) or
    (N, H, W); returns a bool tensor of the same shape."""
    lab = label if label.dim() == 3 else label[None]
    lo, hi = relaxation_window(lab, num_classes, window, ignore_index)
    out = lo < hi
    return out if label.dim() == 3 else out[0]


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``-sum_c p_c log p_c`` (nats) of the softmax over dim 1: (N, C, H, W) -> (N, H, W)."""
    logp = torch.log_softmax(logits.float(), 1)
    return -(logp.exp() * logp).sum(1)


@torch.no_grad()
def entropy_by_region(model: nn.Module, dataset, num_classes: int, window: int = 3,
                      ignore_index: int = IGNORE_INDEX, keep: int = 0) -> dict:
    """Mean softmax entropy of ``model`` on boundary vs interior pixels of ``dataset``.

    Boundary = ``boundary_pixels`` of the ground truth (|N| > 1 in a ``window``), interior = the
    other labelled pixels; void pixels are left out. Items need normalised ``image`` and
    ``label``. Returns ``{"boundary", "interior", "ratio", "boundary_share"}`` plus, with
    ``keep > 0``, ``"maps"``: (image index, entropy (H, W) numpy) of the first ``keep`` items.
    """
    from paperlib.engine import predict_logits
    model.eval()
    device = next(model.parameters()).device
    sums = {"boundary": [0.0, 0], "interior": [0.0, 0]}
    maps = []
    for k in range(len(dataset)):
        item = dataset[k]
        ent = softmax_entropy(predict_logits(model, item["image"][None].to(device)))[0].cpu()
        lab = item["label"]
        edge = boundary_pixels(lab, num_classes, window, ignore_index)
        valid = lab != ignore_index
        for name, m in (("boundary", edge & valid), ("interior", ~edge & valid)):
            sums[name][0] += float(ent[m].sum())
            sums[name][1] += int(m.sum())
        if k < keep:
            maps.append((k, ent.numpy()))
    if sums["boundary"][1] == 0 or sums["interior"][1] == 0:
        raise ValueError("entropy_by_region: no boundary or no interior pixel in the dataset")
    out = {name: s / n for name, (s, n) in sums.items()}
    out["ratio"] = out["boundary"] / max(out["interior"], 1e-12)
    out["boundary_share"] = sums["boundary"][1] / (sums["boundary"][1] + sums["interior"][1])
    if keep:
        out["maps"] = maps
    return out


# --- derived per-seed measures (claims on a difference of differences, a slope) ----------------
def group_gain_gap(table, method: str, baseline: str = "Baseline", group: str = "thin classes",
                   rest: str = "other classes", *, by: str = "class", arm: str = "method",
                   value: str = "IoU", unit: str = "seed"):
    """Per ``unit`` (seed): ``method``'s gain over ``baseline`` on the ``group`` row minus its gain
    on the ``rest`` row (Table 3: "the largest improvements come from small/thin object classes").

    ``table`` is long, one row per (``by``, ``arm``, ``unit``) with ``value``. Returns one row per
    unit present in all four cells: ``{by: "<group-word> − <rest-word> gain", arm: method, unit,
    value}`` (e.g. class ``"thin − other gain"``), NaN where a cell is NaN (a failed measurement,
    which the claims layer drops and reports)."""
    import pandas as pd

    cell = table.set_index([by, arm, unit])[value]
    if cell.index.duplicated().any():
        raise ValueError(f"group_gain_gap: several rows per ({by}, {arm}, {unit})")
    units = [u for u in table[unit].drop_duplicates()
             if all((g, m, u) in cell.index for g in (group, rest) for m in (method, baseline))]
    if not units:
        raise ValueError(f"group_gain_gap: no {unit} has all of {group!r} / {rest!r} x {method!r} / {baseline!r}")
    label = f"{group.split()[0]} − {rest.split()[0]} gain"
    return pd.DataFrame([{by: label, arm: method, unit: u,
                          value: float((cell[(group, method, u)] - cell[(group, baseline, u)])
                                       - (cell[(rest, method, u)] - cell[(rest, baseline, u)]))}
                         for u in units])


def arm_difference(table, a, b, *, arm: str, value: str, on: Sequence[str]):
    """``a - b`` of ``value`` per key ``on`` (e.g. ``["motion", "k", "seed"]``): the rows of arm
    ``a`` (``table[arm] == a``) minus the matching rows of arm ``b``. Keys present in only one arm
    are left out; NaN stays NaN. Returns a frame with the ``on`` columns and ``value``."""
    on = list(on)
    sides = []
    for name in (a, b):
        rows = table[table[arm] == name]
        if rows.empty:
            raise ValueError(f"arm_difference: no rows with {arm} = {name!r}")
        if rows.duplicated(on).any():
            raise ValueError(f"arm_difference: several rows per {on} for {arm} = {name!r}")
        sides.append(rows.set_index(on)[value])
    diff = sides[0] - sides[1]
    keep = sides[0].index.intersection(sides[1].index)
    return diff.loc[keep].rename(value).reset_index()


def slope_per_unit(table, x: str, value: str, *, unit: str = "seed", by: Sequence[str] = ()):
    """Least-squares slope of ``value`` against ``x`` per ``unit`` (and ``by`` group): the per-seed
    form of "it grows with k". NaN where a group has a NaN value or fewer than two distinct ``x``.
    Returns a frame with the ``by`` columns, ``unit`` and ``value`` (the slope, value units per x)."""
    import pandas as pd

    keys = [*by, unit]
    rows = []
    for key, g in table.groupby(keys, sort=False):
        xs, ys = g[x].to_numpy(float), g[value].to_numpy(float)
        ok = len(np.unique(xs)) >= 2 and np.isfinite(ys).all()
        slope = float(np.polyfit(xs, ys, 1)[0]) if ok else float("nan")
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), value: slope})
    return pd.DataFrame(rows, columns=[*keys, value])


def best_per_unit(table, x: str, value: str, *, unit: str = "seed", by: Sequence[str] = ()):
    """The ``x`` with the highest ``value`` per ``unit`` (and ``by`` group): e.g. the best
    propagation length of one seed's curve. A tie goes to the smallest ``x`` (so a flat curve has
    no "longer" best); NaN if any value of the group is NaN. Returns ``by``, ``unit``, ``x``."""
    import pandas as pd

    keys = [*by, unit]
    rows = []
    for key, g in table.groupby(keys, sort=False):
        g = g.sort_values(x)
        ys = g[value].to_numpy(float)
        best = float(g[x].to_numpy(float)[int(np.argmax(ys))]) if np.isfinite(ys).all() else float("nan")
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), x: best})
    return pd.DataFrame(rows, columns=[*keys, x])


def gap_trend(table, a, b, *, arm: str, x: str = "k", by: Sequence[str] = (), value: str = "mIoU",
              unit: str = "seed", min_x: float | None = None):
    """Derived per-seed measures of how arm ``a`` vs arm ``b`` changes along ``x`` (Figures 4, 5b):

    * ``measure = "gap slope"``: the least-squares slope over ``x`` (``x >= min_x`` if given) of
      the gap ``a - b`` ("the gap becomes larger as we propagate longer");
    * ``measure = "best shift"``: the best ``x`` of ``a``'s curve minus that of ``b``'s
      (``best_per_unit``; "the best length moves from ±1 to ±3"; a tie is 0).

    ``table``: one row per (``by``..., ``x``, ``arm``, ``unit``). Returns a long frame with
    ``measure``, the ``by`` columns, ``unit`` and ``value`` (column named ``"value"``), one row per
    measure, group and unit, for ``paperlib.claims`` (arms ``{measure = ..., <by> = ...}``)."""
    import pandas as pd

    by = list(by)
    gap = arm_difference(table, a, b, arm=arm, value=value, on=[*by, x, unit])
    if min_x is not None:
        gap = gap[gap[x] >= min_x]
    slope = slope_per_unit(gap, x, value, unit=unit, by=by).rename(columns={value: "value"})
    best = {name: best_per_unit(table[table[arm] == name], x, value, unit=unit, by=by).set_index([*by, unit])[x]
            for name in (a, b)}
    shift = (best[a] - best[b]).rename("value").reset_index()
    return pd.concat([slope.assign(measure="gap slope"), shift.assign(measure="best shift")],
                     ignore_index=True)[["measure", *by, unit, "value"]]


def unit_measures(table, *, unit: str, by: Sequence[str], means: Sequence[str] = (),
                  slopes: Sequence[str] = (), x: str = "k", abs_x: bool = True):
    """Per ``unit`` (e.g. a validation clip) and ``by`` group (e.g. motion and pairing), derived
    measures over the rows of that unit (e.g. its propagation offsets), as one long frame for
    ``paperlib.claims``:

    * for each column in ``means``: ``measure = <column>``, the mean over the rows;
    * for each column in ``slopes``: ``measure = "<column> slope"``, the least-squares slope
      against ``|x|`` (``abs_x``, both directions of propagation pooled) or ``x``.

    A measure is NaN where one of its values is NaN (e.g. the image error of an LP pair, which
    has none) or, for a slope, where there are fewer than two distinct ``x``. Returns the columns
    ``measure``, ``by``..., ``unit``, ``value``."""
    import pandas as pd

    by = list(by)
    keys = [*by, unit]
    t = table.assign(**{"_x": table[x].abs() if abs_x else table[x]}) if slopes else table
    frames = []
    for col in means:
        g = t.groupby(keys, sort=False)[col]
        m = g.apply(lambda v: float(v.mean()) if np.isfinite(v.to_numpy(float)).all() else float("nan"))
        frames.append(m.rename("value").reset_index().assign(measure=col))
    for col in slopes:
        sl = slope_per_unit(t, "_x", col, unit=unit, by=by).rename(columns={col: "value"})
        frames.append(sl.assign(measure=f"{col} slope"))
    if not frames:
        raise ValueError("unit_measures: give at least one column in means or slopes")
    return pd.concat(frames, ignore_index=True)[["measure", *by, unit, "value"]]


def stack_frames(*frames):
    """One long frame for ``paperlib.claims.evaluate`` from a table and its derived measures
    (e.g. ``table`` and ``gap_trend(table, ...)``). Columns are stacked as objects, so an integer
    column that one frame lacks (``k``) keeps its values (``0``, not ``0.0``) for the claims' arm
    selection (which compares values as text)."""
    import pandas as pd

    return pd.concat([f.astype(object) for f in frames], ignore_index=True)
