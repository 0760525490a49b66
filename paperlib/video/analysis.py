"""Small computations behind the GSVNet claims: accuracy at equal speed (Fig. 3 / A5), the
edge-map vs error-map statistics of Fig. A7, and the derived per-seed measures the claims in
``paperlib/reference/claims/gsvnet.toml`` test (a long frame ``measure, seed, value``; arm column
``measure``). The measure names here are the arms named in that file."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .gsvnet import edge_map
from .loop import frame_tensor


def image_miou_at_speed(image_speed, image_miou, speed) -> np.ndarray:
    """The image-based accuracy-throughput curve (points at several input scales) read at
    ``speed`` by linear interpolation. Outside the curve's range it is clamped to the nearest end:
    a video point faster than the fastest image point is compared with that (slower) point, one
    slower than the slowest with the slowest (which is then faster). ``speed``: FPS or any
    "higher is faster" measure (e.g. 1 / GMACs)."""
    xs, ys = np.asarray(image_speed, float), np.asarray(image_miou, float)
    if xs.shape != ys.shape or xs.size < 1:
        raise ValueError(f"image_speed and image_miou must be equal-length, non-empty, got {xs.shape}, {ys.shape}")
    order = np.argsort(xs)
    return np.interp(np.asarray(speed, float), xs[order], ys[order])


@torch.no_grad()
def edge_error_maps(warped: torch.Tensor, label: torch.Tensor,
                    edge_mode: str = "binary") -> tuple[np.ndarray, np.ndarray]:
    """Fig. A7 for one frame: the edge map ``E_t`` of the warped 1/8 segmentation (``edge_map``,
    upsampled nearest to the label) and the error map (argmax of the bilinearly upsampled warped
    logits != label), both flattened over the labelled pixels. ``warped`` (1, C, h, w) logits,
    ``label`` (H, W) with 255 = void. For ``edge_mode="sigmoid"`` the map is ``|E - 0.5| * 2``
    (0 on flat regions, towards 1 at class changes of either sign)."""
    size = tuple(label.shape[-2:])
    e = edge_map(warped, edge_mode)
    if edge_mode == "sigmoid":
        e = (e - 0.5).abs() * 2
    e = F.interpolate(e, size=size, mode="nearest")[0, 0]
    pred = F.interpolate(warped, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
    valid = label != 255
    return e[valid].cpu().numpy().astype(np.float64), (pred != label)[valid].cpu().numpy().astype(np.float64)


def edge_error_stats(edge: np.ndarray, error: np.ndarray) -> dict:
    """Pearson correlation of an edge map and an error map (pixels pooled), and the error rate on
    edge pixels (edge > 0.5) vs elsewhere."""
    edge, error = np.asarray(edge, float).ravel(), np.asarray(error, float).ravel()
    if edge.shape != error.shape or edge.size < 2:
        raise ValueError(f"edge and error maps must have the same >= 2 pixels, got {edge.shape}, {error.shape}")
    on = edge > 0.5
    corr = float(np.corrcoef(edge, error)[0, 1]) if edge.std() > 0 and error.std() > 0 else float("nan")
    rate_on = float(error[on].mean()) if on.any() else float("nan")
    rate_off = float(error[~on].mean()) if (~on).any() else float("nan")
    return {"correlation": corr, "error_rate_on_edges": rate_on, "error_rate_elsewhere": rate_off,
            "edge_share": float(on.mean()), "errors_on_edges": float(error[on].sum() / max(error.sum(), 1))}


# --- derived per-seed measures (the arms of the gsvnet claims) ------------------------------------
def select(df: pd.DataFrame, **sel) -> pd.DataFrame:
    """The rows of ``df`` whose columns equal every ``column=value`` given; raises if none."""
    mask = pd.Series(True, index=df.index)
    for col, val in sel.items():
        if col not in df.columns:
            raise KeyError(f"no column {col!r} (columns {list(df.columns)})")
        mask &= df[col] == val
    if not mask.any():
        raise KeyError(f"no rows for {sel}")
    return df[mask]


def per_seed(df: pd.DataFrame, value: str, seed: str = "seed", **sel) -> pd.Series:
    """``value`` of the selected rows, one per seed (index: seed); raises on duplicated seeds."""
    rows = select(df, **sel)
    if rows[seed].duplicated().any():
        raise ValueError(f"several rows per {seed} for {sel}: select more narrowly")
    return pd.Series(rows[value].to_numpy(float), index=rows[seed].to_numpy(), name=value)


def shared(df: pd.DataFrame, value: str, **sel) -> float:
    """``value`` of the one selected row: a result every seed shares (e.g. the image network,
    trained once, is scored once)."""
    rows = select(df, **sel)
    if len(rows) != 1:
        raise ValueError(f"expected one row for {sel}, got {len(rows)}")
    return float(rows[value].iloc[0])


def drop(df: pd.DataFrame, value: str, start, end, by: str = "interval", **sel) -> pd.Series:
    """Per seed, ``value`` at ``by == start`` minus at ``by == end`` (e.g. mIoU(l=1) - mIoU(l=4):
    positive when it falls)."""
    return per_seed(df, value, **{by: start}, **sel) - per_seed(df, value, **{by: end}, **sel)


def mean_gap(df: pd.DataFrame, a: Mapping, b: Mapping, intervals: Sequence[int], value: str = "avg_miou",
             by: str = "interval") -> pd.Series:
    """Per seed, the mean over ``intervals`` of ``value`` in arm ``a`` minus arm ``b`` (both
    ``{column: value}`` selections), seeds present in both arms."""
    gaps = [per_seed(df, value, **a, **{by: l}) - per_seed(df, value, **b, **{by: l}) for l in intervals]
    return pd.concat(gaps, axis=1).mean(axis=1, skipna=False).dropna()


def equal_speed_gap(df: pd.DataFrame, image: Mapping, video: Mapping, speed: str, intervals: Sequence[int],
                    value: str = "avg_miou", inverse: bool = False, by: str = "interval") -> pd.Series:
    """Per seed, the mean over ``intervals`` of the video curve's ``value`` minus the image-based
    curve (the ``image`` rows: one point per input scale) read at the same speed
    (:func:`image_miou_at_speed`). ``speed`` is a "higher is faster" column (frames/s), or with
    ``inverse`` a cost (GMACs per frame) whose inverse is the speed."""
    img = select(df, **image)
    xs = img[speed].to_numpy(float)
    gaps = []
    for l in intervals:
        vid = select(df, **video, **{by: l})
        vx = vid[speed].to_numpy(float)
        ref = image_miou_at_speed(1 / xs if inverse else xs, img[value], 1 / vx if inverse else vx)
        gaps.append(pd.Series(vid[value].to_numpy(float) - ref, index=vid["seed"].to_numpy()))
    return pd.concat(gaps, axis=1).mean(axis=1, skipna=False).dropna()


def distance_slope(curves: Mapping) -> pd.Series:
    """Per seed, the least-squares slope of a curve against its index (``curves``: seed ->
    mIoU at distance 0, 1, ... from the keyframe): points per frame, negative when it falls."""
    out = {}
    for s, ys in curves.items():
        ys = np.asarray(ys, float)
        if ys.size < 2:
            raise ValueError(f"seed {s}: a slope needs >= 2 points, got {ys.size}")
        out[s] = float(np.polyfit(np.arange(ys.size), ys, 1)[0]) if np.isfinite(ys).all() else float("nan")
    return pd.Series(out, dtype=float)


def measure_frame(measures: Mapping[str, pd.Series | float], seeds: Sequence) -> pd.DataFrame:
    """The long frame the claims test: one row per measure and seed (``measure, seed, value``). A
    float is a seed-independent quantity (e.g. an image network's score) repeated for every seed;
    a seed missing from a series gets NaN (a failed run, reported by the claims layer)."""
    rows = []
    for name, m in measures.items():
        for s in seeds:
            v = m if np.isscalar(m) else m.get(s, np.nan)
            rows.append({"measure": name, "seed": s, "value": float(v)})
    return pd.DataFrame(rows, columns=["measure", "seed", "value"])


OURS_75 = {"kind": "video", "flow": "O", "key_scale": 0.75}   # Ours: PF with its flow net O, keyframes at 0.75


def table1_measures(acc: pd.DataFrame, keys: Sequence[str], seeds: Sequence) -> pd.DataFrame:
    """The Table 1 claims' per-seed measures from the accuracy frame of ``gsvnet_table1_accuracy``
    (columns curve, kind, key, flow, key_scale, interval, seed, avg_miou, miou_by_distance; image
    rows are seed 0 only, their score is shared by every PF seed). For each keyframe net ``key``:

    - ``"<key>: Ours (l=4) - image (0.5)"``: Ours' avg mIoU at l = 4 minus the image net at 0.5;
    - ``"<key>: Ours drop l=1->4"``: Ours' avg mIoU at l = 1 minus at l = 4;
    - ``"<key>: image drop 0.75->0.5"``: the image net at 0.75 minus at 0.5 (shared);
    - ``"<key>: mIoU slope per frame from the keyframe"``: :func:`distance_slope` of the mIoU at
      distance 0..4 (the l = 5 evaluation of Ours)."""
    m: dict[str, pd.Series | float] = {}
    for key in keys:
        img = {"kind": "image", "key": key}
        ours = {**OURS_75, "key": key}
        m[f"{key}: Ours (l=4) - image (0.5)"] = (per_seed(acc, "avg_miou", **ours, interval=4)
                                                - shared(acc, "avg_miou", **img, key_scale=0.5))
        m[f"{key}: Ours drop l=1->4"] = drop(acc, "avg_miou", 1, 4, **ours)
        m[f"{key}: image drop 0.75->0.5"] = (shared(acc, "avg_miou", **img, key_scale=0.75)
                                             - shared(acc, "avg_miou", **img, key_scale=0.5))
        curves = select(acc[acc["miou_by_distance"].notna()], **ours)
        m[f"{key}: mIoU slope per frame from the keyframe"] = distance_slope(
            dict(zip(curves["seed"], curves["miou_by_distance"])))
    return measure_frame(m, seeds)


def control_measures(acc: pd.DataFrame, flows: pd.DataFrame, keys: Sequence[str], seeds: Sequence,
                     interval: int = 5, distance: int = 3) -> pd.DataFrame:
    """The controls of the GSVNet claim notebooks, per seed, for each keyframe net ``key``:

    - ``"<key>: Ours - hold (avg mIoU, l=<interval>)"``: Ours (flow O, keyframes at 0.75) minus
      holding the keyframe's output (``acc`` rows of kind ``"hold"``, repeated per seed);
    - ``"<key>: O after PF - DIS (warped-label mIoU, d=<distance>)"``: from ``flows`` (rows of
      ``calibration.flow_table`` with the trained PF's flow net renamed ``"O after PF-<key>"``): the
      true labels warped ``distance`` steps by it minus by DIS."""
    m: dict[str, pd.Series | float] = {}
    for key in keys:
        ours = {**OURS_75, "key": key}
        m[f"{key}: Ours - hold (avg mIoU, l={interval})"] = (
            per_seed(acc, "avg_miou", **ours, interval=interval)
            - per_seed(acc, "avg_miou", kind="hold", key=key, interval=interval))
        m[f"{key}: O after PF - DIS (warped-label mIoU, d={distance})"] = (
            per_seed(flows, "mIoU", flow=f"O after PF-{key}", distance=distance)
            - per_seed(flows, "mIoU", flow="DIS", distance=distance))
    return measure_frame(m, seeds)


def tradeoff_measures(acc: pd.DataFrame, boundary: pd.DataFrame, keys: Sequence[str], seeds: Sequence,
                      fps_col: str, intervals: Sequence[int] = (2, 3, 4, 5)) -> pd.DataFrame:
    """The Fig. 3 / 4 / A5 claims' per-seed measures (``intervals``: the video points beyond the
    keyframe-only l = 1):

    - ``"<key>: equal-speed gap (cpu fps)"`` / ``"(gmacs)"``: :func:`equal_speed_gap` of Ours
      against the image-based curve of the same network, on ``fps_col`` / on 1 / GMACs at 1024x2048;
    - ``"A-Lite - Ours (avg mIoU, l=2..5)"`` and ``"DIS - O flow (avg mIoU, l=2..5)"``:
      :func:`mean_gap` (SwiftNet-R18 keyframes at 0.75);
    - ``"A-Lite - Ours (boundary accuracy)"``: from ``boundary`` (method, seed, boundary_acc), the
      methods ``A-Lite-SN-R18`` and ``Ours-SN-R18``."""
    span = f"l={min(intervals)}..{max(intervals)}"
    m: dict[str, pd.Series | float] = {}
    for key in keys:
        img, ours = {"kind": "image", "key": key}, {**OURS_75, "key": key}
        m[f"{key}: equal-speed gap (cpu fps)"] = equal_speed_gap(acc, img, ours, fps_col, intervals)
        m[f"{key}: equal-speed gap (gmacs)"] = equal_speed_gap(acc, img, ours, "GMACs_avg_1024x2048", intervals,
                                                              inverse=True)
    sn = {**OURS_75, "key": "SN"}
    m[f"A-Lite - Ours (avg mIoU, {span})"] = mean_gap(acc, {"kind": "alite"}, sn, intervals)
    m[f"DIS - O flow (avg mIoU, {span})"] = mean_gap(acc, {**sn, "flow": "DIS"}, sn, intervals)
    m["A-Lite - Ours (boundary accuracy)"] = (per_seed(boundary, "boundary_acc", method="A-Lite-SN-R18")
                                              - per_seed(boundary, "boundary_acc", method="Ours-SN-R18"))
    return measure_frame(m, seeds)


def table4_measures(res: pd.DataFrame, seeds: Sequence, with_intra: str = "3x3 IDK",
                    without_intra: str = "no intra", start: int = 1, end: int = 5) -> pd.DataFrame:
    """Table 4's per-seed measures from the ablation frame (variant, seed, interval, min_miou):
    ``"min-mIoU drop l=1->5: with intra"`` / ``"...: without intra"`` (min mIoU at l = ``start``
    minus at l = ``end``)."""
    return measure_frame({f"min-mIoU drop l={start}->{end}: {name}": drop(res, "min_miou", start, end, variant=v)
                          for name, v in (("with intra", with_intra), ("without intra", without_intra))}, seeds)


def edge_error_measures(stats: Mapping) -> pd.DataFrame:
    """Fig. A7's per-seed measures from ``{seed: edge_error_stats(...)}``: ``"error rate on edges -
    elsewhere (points)"`` (percentage points) and ``"edge/error correlation"``."""
    m = {"error rate on edges - elsewhere (points)":
         pd.Series({s: 100 * (st["error_rate_on_edges"] - st["error_rate_elsewhere"]) for s, st in stats.items()}),
         "edge/error correlation": pd.Series({s: st["correlation"] for s, st in stats.items()})}
    return measure_frame(m, list(stats))


@torch.no_grad()
def warped_edge_errors(pf, keyframe, clips, label_index: int) -> dict:
    """Fig. A7 over ``clips``: for each, the keyframe is frame ``label_index - 1`` and ``pf`` steps
    once to the labelled frame; returns ``edge_error_stats`` of the pooled binary edge map
    (``"binary"``) and of the folded sigmoid form (``"sigmoid"``) against the error map of the
    warped segmentation ``S_t^-``, and the first clip's ``(frame, pf output, label)``
    (``"example"``)."""
    edges, edges_sig, errors, example = [], [], [], None
    for clip in clips:
        prev, cur = frame_tensor(clip.frames[label_index - 1]), frame_tensor(clip.frames[label_index])
        out = pf(keyframe(prev), prev, cur)
        label = torch.as_tensor(clip.labels[label_index]).long()
        e, r = edge_error_maps(out["warped"], label, "binary")
        edges.append(e), errors.append(r)
        edges_sig.append(edge_error_maps(out["warped"], label, "sigmoid")[0])
        if example is None:
            example = (clip.frames[label_index], out, label)
    return {"binary": edge_error_stats(np.concatenate(edges), np.concatenate(errors)),
            "sigmoid": edge_error_stats(np.concatenate(edges_sig), np.concatenate(errors)),
            "example": example}
