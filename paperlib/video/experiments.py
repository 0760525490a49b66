"""The protocol of GSVNet's Table 1 and Figures 3 / 4 / A5 / A6 (``gsvnet_table1_accuracy``).

- :func:`with_dis_flow`: evaluation clips whose backward flow is OpenCV DIS flow (Fig. 3's heavier
  flow estimator, standing in for FlowNet2s), for ``evaluate_intervals(exact_flow=True)``;
- :func:`accuracy_frame`: every accuracy point -- the image networks at each input scale (their own
  output, upsampled), Ours (PF with its flow net O, keyframes at 0.75 and 1.0; for SwiftNet-R18
  also DIS and exact flow) and A-Lite at l = 1..max_l, per PF seed (Sec. 4.1: avg / min mIoU of
  the labelled frame);
- :func:`boundary_frame`: pixel accuracy on the boundary band and elsewhere at the farthest frame
  (Fig. 4's "distorted object boundaries"), Ours vs A-Lite;
- :func:`paper_size_networks`, :func:`time_steps`, :func:`keyframe_gmacs`: one-thread CPU step
  times at the profile's frame size and multiply-adds of the paper-size networks at 1024x2048;
- :func:`add_speed`: the speed columns of every point from step timings and paper-size
  multiply-adds (``l / (t_key + (l - 1) t_nonkey)``; GMACs averaged over the interval);
- :func:`table1_frame`: the rows of Table 1 (image networks at 0.75 / 0.5, Ours at l = 2, 3, 4).

The per-seed measures the claims test are in :mod:`paperlib.video.analysis`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..progress import tqdm
from .alite import boundary_accuracy
from .gsvnet import backward_warp
from .loop import KeyframeSegmenter, evaluate_intervals, frame_tensor, interval_metrics, propagate

PAPER_SIZE = (1024, 2048)   # the paper's Cityscapes frames: multiply-adds and warped data are counted there


class WithFlows:
    """A clip whose ``flow_bw`` is replaced (e.g. by DIS flow) for ``evaluate_intervals(exact_flow=True)``."""

    def __init__(self, clip, flows):
        self.frames, self.labels, self.flow_bw = clip.frames, clip.labels, flows


def with_dis_flow(clips: Sequence, progress: bool = True) -> list[WithFlows]:
    """``clips`` with OpenCV DIS backward flow (frame t -> t - 1) in place of the exact flow."""
    from paperlib.propagation.motion import dis_flow

    return [WithFlows(c, np.stack([dis_flow(c.frames[t], c.frames[t - 1]) for t in range(1, len(c.frames))]))
            for c in tqdm(clips, desc="DIS flow", disable=not progress)]


def interval_confusions(clips, key, pf, key_scale: float, stride: int, max_l: int, label_index: int,
                        exact: bool = False, num_classes: int = 19) -> list:
    """One confusion matrix per distance 0..max_l-1 from the keyframe (``evaluate_intervals``):
    keyframes through ``KeyframeSegmenter(key, key_scale, stride)``, the others through ``pf``."""
    k = KeyframeSegmenter(key, key_scale, stride)
    return evaluate_intervals(clips, k, pf, max_l, label_index=label_index, exact_flow=exact,
                              num_classes=num_classes, progress=False)["confusions"]


def accuracy_frame(keys: Mapping, pfs: Mapping, alites: Mapping, clips: Sequence, dis_clips: Sequence,
                   key_nets: Mapping[str, tuple], seeds: Sequence[int], scales: Sequence[float], max_l: int,
                   label_index: int, progress: bool = True) -> pd.DataFrame:
    """Every accuracy point of Table 1 and Figs. 3 / A5 / A6, one row per curve, interval and seed.

    ``keys[tag]``: the keyframe network of ``key_nets[tag] = (label, registry name)``; ``pfs[tag,
    seed]`` and ``alites[seed]`` (SwiftNet keyframes, tag ``"SN"``) the trained non-key parts.
    Image rows (``kind="image"``, seed 0: they do not depend on PF) run the network on the frame
    downscaled by each of ``scales``; hold rows (``kind="hold"``, repeated per seed: the control)
    keep the keyframe's output (keyframes at 0.75) for every frame of the interval; video rows (``kind="video"``: flow O with keyframes at 0.75
    and 1.0, and for ``"SN"`` DIS flow (``dis_clips``) and the exact flow at 0.75) and A-Lite rows
    (``kind="alite"``) give avg / min mIoU (%) at l = 1..max_l from one evaluation at ``max_l``. The
    l = max_l row of Ours (flow O, 0.75) and of A-Lite also holds ``miou_by_distance``."""
    rows = []
    for tag, (label, _) in key_nets.items():
        for s in scales:  # image-based: the network's own output, upsampled to full resolution
            cms = interval_confusions(clips, keys[tag], HoldKeyframe(), s, 1, 1, label_index)
            m = 100 * cms[0].miou()
            rows.append(dict(curve=f"{label} (image)", key=tag, flow="-", key_scale=s, interval=1, seed=0,
                             avg_miou=m, min_miou=m, kind="image"))
        held = interval_confusions(clips, keys[tag], HoldKeyframe(), 0.75, 8, max_l, label_index)
        for seed in seeds:  # the control: the keyframe's output held (no propagation), repeated per seed
            for l in range(1, max_l + 1):
                m = interval_metrics(held, l)
                rows.append(dict(curve=f"hold {label} (key 0.75)", key=tag, flow="-", key_scale=0.75, interval=l,
                                 seed=seed, avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"], kind="hold"))
        for seed in seeds:
            variants = [("O", 0.75, clips, False), ("O", 1.0, clips, False)]
            if tag == "SN":
                variants += [("DIS", 0.75, dis_clips, True), ("exact", 0.75, clips, True)]
            for flow, ks, cl, exact in tqdm(variants, desc=f"eval {tag} seed {seed}", disable=not progress):
                cms = interval_confusions(cl, keys[tag], pfs[tag, seed], ks, 8, max_l, label_index, exact)
                for l in range(1, max_l + 1):
                    m = interval_metrics(cms, l)
                    rows.append(dict(curve=f"Ours-{tag}-R18 ({flow} flow, key {ks})", key=tag, flow=flow,
                                     key_scale=ks, interval=l, seed=seed, avg_miou=100 * m["avg_miou"],
                                     min_miou=100 * m["min_miou"], kind="video"))
                if flow == "O" and ks == 0.75:
                    rows[-1]["miou_by_distance"] = [100 * cm.miou() for cm in cms]
    for seed in seeds:  # A-Lite: SwiftNet-R18 keyframes at 0.75, its own flow net
        cms = interval_confusions(clips, keys["SN"], alites[seed], 0.75, 8, max_l, label_index)
        for l in range(1, max_l + 1):
            m = interval_metrics(cms, l)
            rows.append(dict(curve="A-Lite-SN-R18 (O flow, key 0.75)", key="SN", flow="O", key_scale=0.75,
                             interval=l, seed=seed, avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"],
                             kind="alite"))
        rows[-1]["miou_by_distance"] = [100 * cm.miou() for cm in cms]
    return pd.DataFrame(rows)


@torch.no_grad()
def boundary_scores(key, net, clips: Sequence, label_index: int, max_l: int) -> dict:
    """Pixel accuracy (%) on the 2-px boundary band and elsewhere of the labelled frame propagated
    ``max_l - 1`` steps from its keyframe (``key`` at 0.75, non-key frames through ``net``), pooled
    over ``clips``: ``{"boundary_acc", "interior_acc"}``."""
    k, first = KeyframeSegmenter(key, 0.75, 8), label_index - (max_l - 1)
    tot = {"boundary": np.zeros(2), "interior": np.zeros(2)}
    for clip in clips:
        *_, seg = propagate(clip.frames[first:label_index + 1], k, net, max_l)
        label = np.asarray(clip.labels[label_index])
        pred = torch.nn.functional.interpolate(seg, size=label.shape, mode="bilinear", align_corners=False).argmax(1)[0]
        for name, counts in boundary_accuracy(pred.numpy(), label).items():
            tot[name] += counts
    return {f"{name}_acc": 100 * c / max(n, 1) for name, (c, n) in tot.items()}


def boundary_frame(key, pfs: Mapping, alites: Mapping, clips: Sequence, seeds: Sequence[int], label_index: int,
                   max_l: int) -> pd.DataFrame:
    """:func:`boundary_scores` of Ours (``pfs["SN", seed]``) and A-Lite (``alites[seed]``) with the
    SwiftNet-R18 keyframe net ``key``, one row per method and seed."""
    return pd.DataFrame([{"method": m, "seed": seed, **boundary_scores(key, net, clips, label_index, max_l)}
                         for seed in seeds
                         for m, net in (("Ours-SN-R18", pfs["SN", seed]), ("A-Lite-SN-R18", alites[seed]))])


def paper_size_networks(key_nets: Mapping[str, tuple], num_classes: int = 19) -> dict:
    """The keyframe networks at the paper's width (``key_nets[tag] = (label, registry name)``;
    BiSeNet-R18 without its training-only auxiliary heads), for counting multiply-adds."""
    from paperlib.models import build

    return {tag: build(reg, num_classes=num_classes, **({"aux": False} if reg == "bisenet_resnet18" else {}))
            for tag, (_, reg) in key_nets.items()}


def time_steps(keys: Mapping, pf, alite, clip, scales: Sequence[float], repeats: int,
               alite_feature_shape: Sequence[int], paper_size: tuple[int, int] = PAPER_SIZE) -> dict[str, float]:
    """Best seconds of every step on the first two frames of ``clip`` (``interleaved_best``: each
    step once per round): ``"image <tag> <scale>"`` (the network on the downscaled frame), ``"key
    <tag> <scale>"`` (``KeyframeSegmenter`` at 0.75 / 1.0, logits on the 1/8 grid), ``"PF"`` (one
    non-key step of ``pf``), ``"PF (given flow)"`` (without its flow net), ``"DIS"`` (OpenCV DIS
    flow), ``"A-Lite"`` (one non-key step of ``alite``), and ``"warp output"`` / ``"warp
    features"``: the warp alone at ``paper_size`` of 19 maps on the 1/8 grid and of A-Lite's
    features (``alite_feature_shape``), the data each moves."""
    from paperlib.profiling import interleaved_best
    from paperlib.propagation.motion import dis_flow

    f0, f1 = frame_tensor(clip.frames[0]), frame_tensor(clip.frames[1])
    h, w = f0.shape[-2:]
    seg8 = torch.zeros(1, 19, *pf.grid_size(f0))
    flow_full = torch.zeros(1, 2, h, w)
    big = {"output": torch.randn(1, 19, paper_size[0] // 8, paper_size[1] // 8),
           "features": torch.randn(1, *alite_feature_shape)}
    fns = {}
    with torch.no_grad():
        for tag in keys:
            for s in scales:
                fns[f"image {tag} {s}"] = (lambda m=keys[tag], s=s: m(
                    torch.nn.functional.interpolate(f0, scale_factor=s, mode="bilinear") if s != 1 else f0))
            for s in (0.75, 1.0):
                fns[f"key {tag} {s}"] = (lambda m=KeyframeSegmenter(keys[tag], s, 8): m(f0))
        fns["PF"] = lambda: pf(seg8, f0, f1)
        fns["PF (given flow)"] = lambda: pf(seg8, f0, f1, flow=flow_full)
        fns["DIS"] = lambda: dis_flow(clip.frames[1], clip.frames[0])
        feat0 = alite.keyframe(f0)["state"]
        fns["A-Lite"] = lambda: alite(feat0, f0, f1)
        zero_flow = {k: torch.zeros(1, 2, *v.shape[-2:]) for k, v in big.items()}
        fns["warp output"] = lambda: backward_warp(big["output"], zero_flow["output"])
        fns["warp features"] = lambda: backward_warp(big["features"], zero_flow["features"])
        return interleaved_best(fns, repeats)


def keyframe_gmacs(full: Mapping, scales: Sequence[float], paper_size: tuple[int, int] = PAPER_SIZE) -> dict:
    """``{(tag, scale): G multiply-adds}`` of ``KeyframeSegmenter(full[tag], scale)`` at ``paper_size``."""
    from paperlib.profiling import count_flops

    return {(tag, s): count_flops(KeyframeSegmenter(full[tag], s, 1), paper_size).gmacs for tag in full for s in scales}


def add_speed(acc: pd.DataFrame, T: Mapping[str, float], gmacs: Mapping, nonkey_gmacs: float, alite_gmacs: float,
              fps_col: str) -> pd.DataFrame:
    """Set ``fps_col`` (frames/s from the step times ``T``: ``"image <tag> <scale>"``, ``"key <tag>
    <scale>"``, ``"PF"``, ``"PF (given flow)"``, ``"DIS"``, ``"A-Lite"``) and ``GMACs_avg_1024x2048``
    (``gmacs[tag, scale]`` of the keyframe, the non-key step's ``nonkey_gmacs`` / ``alite_gmacs``,
    averaged over the interval; NaN for DIS flow, whose cost is not counted, and for the hold
    control) on every row of ``acc``, in place; returns ``acc``."""
    def speed(r):
        if r.kind == "image":
            return 1 / T[f"image {r.key} {r.key_scale}"], gmacs[r.key, r.key_scale]
        if r.kind == "hold":  # a control, not a method: no speed
            return np.nan, np.nan
        l, t_key = r.interval, T[f"key {r.key} {r.key_scale}"]
        if r.kind == "alite":
            return l / (t_key + (l - 1) * T["A-Lite"]), (gmacs[r.key, r.key_scale] + (l - 1) * alite_gmacs) / l
        t_nk = {"O": T["PF"], "DIS": T["PF (given flow)"] + T["DIS"], "exact": T["PF (given flow)"]}[r.flow]
        g = np.nan if r.flow == "DIS" else (gmacs[r.key, r.key_scale] + (l - 1) * nonkey_gmacs) / l
        return l / (t_key + (l - 1) * t_nk), g

    acc[[fps_col, "GMACs_avg_1024x2048"]] = [speed(r) for r in acc.itertuples()]
    return acc


def table1_frame(acc: pd.DataFrame, names: Mapping[str, tuple], fps_col: str, key_mb: Mapping[str, float],
                 nonkey_mb: float) -> pd.DataFrame:
    """Table 1's rows from :func:`accuracy_frame` (with :func:`add_speed`): the image networks at
    input 0.75 / 0.5 (``names[tag][0]``) and Ours with flow O and keyframes at 0.75 at l = 2, 3, 4
    (``f"{names[tag][1]} (l=<l>)"``), with the parameter bytes (MB) of the keyframe and non-key
    networks."""
    t1 = []
    for r in acc.itertuples():
        if r.kind == "image" and r.key_scale in (0.75, 0.5):
            method = names[r.key][0]
        elif r.kind == "video" and r.flow == "O" and r.key_scale == 0.75 and r.interval in (2, 3, 4):
            method = f"{names[r.key][1]} (l={r.interval})"
        else:
            continue
        t1.append({"method": method, "input": r.key_scale, "seed": r.seed, "avg_miou": r.avg_miou,
                   "min_miou": r.min_miou, fps_col: getattr(r, fps_col), "GMACs_avg_1024x2048": r.GMACs_avg_1024x2048,
                   "key_params_MB": key_mb[r.key], "nonkey_params_MB": nonkey_mb if r.kind == "video" else np.nan})
    return pd.DataFrame(t1)


# --- the regime (issue #20): one set of sizes, roles and budgets for every GSVNet notebook -------
#: Sizes, trained roles and budgets per profile, shared by the calibration's PF section and the
#: claim notebooks (Tables 1, 3, 4), so that every notebook loads the same cached roles:
#:
#: - ``key_*``: the keyframe nets (``train.keyframe_config``; ``key_points`` held-out evaluations
#:   during training: the calibration's curve-recording roles, at a plateau there);
#: - ``flow_steps`` / ``flow_recipe`` / ``train_clips``: the flow net O's pre-training on exact
#:   flow (``calibration.FLOW_RECIPES``; shared by PF for every keyframe net and A-Lite);
#: - ``pf_steps``: PF / A-Lite end-to-end steps per seed, with a held-out ``Curve`` every
#:   ``curve_every`` steps (the plateau check); ``batch``: sequences per step; ``pf_lr``: their SGD
#:   learning rate (the paper's 0.002; at 0.01 two of six calibration runs -- seed 1 of both
#:   keyframe nets -- collapsed to ~9 mIoU within 250 steps and never recovered); ``pf_train_flow``:
#:   whether (2) fine-tunes the flow net (the paper) or keeps its pre-training;
#: - ``val_clips`` x ``length``: the evaluation clips (labelled frame ``length - 1``).
#:
#: cpu: chosen on the calibration's controls only (``gsvnet_calibration``): the keyframe nets of
#: its plateau check (3000 steps, width 16), O pre-trained 3000 steps with recipe ``flow_recipe``;
#: PF at lr 0.002 (a probe of seed 1, the seed that collapsed at 0.01: held-out avg mIoU at l = 5
#: every 250 steps SwiftNet 20.0 23.6 28.8 29.9 30.3 29.4, BiSeNet 14.5 26.3 26.9 27.0 27.1 27.2 --
#: no collapse). With the flow net fine-tuned end-to-end (the paper), ``gsvnet_calibration_pf`` at
#: 1500 steps (commit 3ab83ac) failed its controls: O came out as bad as zero flow (EPE 0.28; labels
#: warped 3 frames 36.8 mIoU vs copying 38.3) and PF did not beat holding the keyframe (-0.26 SN,
#: -0.41 BN). So at cpu the flow net keeps its pre-training (``pf_train_flow=False``; the probe,
#: seed 0: PF-SN 30.2-30.4 from step 250 vs hold 30.16, min 27.1 vs 26.2; O warps 39.7 vs copy
#: 38.3): flat from 250 steps, hence 1000.
REGIMES = {
    "smoke": dict(key_width=8, key_steps=10, key_points=2, train_clips=2, val_clips=2, length=6, flow_steps=3,
                  flow_recipe="v1", pf_steps=4, pf_lr=0.002, pf_train_flow=False, curve_every=2, batch=2, seeds=2,
                  repeats=1, video_len=6),
    "cpu": dict(key_width=16, key_steps=3000, key_points=6, train_clips=96, val_clips=16, length=12, flow_steps=3000,
                flow_recipe="v2", pf_steps=1000, pf_lr=0.002, pf_train_flow=False, curve_every=250, batch=4, seeds=4,
                repeats=5, video_len=30),
    "gpu": dict(key_width=None, key_steps=4000, key_points=None, train_clips=128, val_clips=64, length=20,
                flow_steps=2000, flow_recipe="v1", pf_steps=3000, pf_lr=0.002, pf_train_flow=True, curve_every=500,
                batch=8, seeds=4, repeats=10, video_len=60),
}
REGIMES["paper"] = REGIMES["gpu"]

#: The keyframe networks of Table 1 (tag -> (label, registry name)).
KEY_NETS = {"SN": ("SwiftNet-R18", "swiftnet_resnet18"), "BN": ("BiSeNet-R18", "bisenet_resnet18")}

#: The longest keyframe interval evaluated (Fig. A5: l = 1..5); one evaluation at it holds every shorter one.
MAX_L = 5

#: A PF / A-Lite run is *collapsed* (a failed run: reported, never averaged) when its held-out avg
#: mIoU at l = MAX_L is more than this many points below the median of the other seeds of the same
#: role. Declared before the regime's first claim run (issue #20: one BiSeNet-keyframe seed fell
#: 4.6 points below its sibling at l = 2 in the 100-step regime).
COLLAPSE_MARGIN = 5.0


def regime(profile: str, **overrides) -> dict:
    """``REGIMES[profile]`` with ``overrides`` (None values ignored); unknown names raise."""
    if profile not in REGIMES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(REGIMES)}")
    R = dict(REGIMES[profile])
    unknown = set(overrides) - set(R)
    if unknown:
        raise ValueError(f"unknown regime setting(s) {sorted(unknown)}; expected some of {sorted(R)}")
    R.update({k: v for k, v in overrides.items() if v is not None})
    return R


def flow_settings(profile: str, flow_recipe: str | None = None, **overrides) -> tuple[dict, str, dict | None]:
    """The flow calibration's sizes: ``(settings, recipe name, recipe options)`` from the regime
    (``regime``; smoke or cpu, ``overrides`` applied), its recipe unless
    ``flow_recipe`` names one of ``calibration.FLOW_RECIPES``, whose own number of training clips wins
    outside smoke."""
    from .calibration import FLOW_RECIPES
    R = regime("smoke" if profile == "smoke" else "cpu", **overrides)
    name = flow_recipe or R["flow_recipe"]
    S = {k: R[k] for k in ("flow_steps", "key_steps", "train_clips", "val_clips", "length", "key_width")}
    if FLOW_RECIPES[name]["train_clips"] and profile != "smoke":
        S["train_clips"] = FLOW_RECIPES[name]["train_clips"]
    return S, name, FLOW_RECIPES[name]["recipe"]


def regime_setup(profile: str, R: dict, key_nets: Mapping[str, tuple] = KEY_NETS, domain: str = "city_a",
                 size: tuple | None = None, progress: bool = False):
    """``train.video_setup`` with the regime's keyframe nets and clips (``size``: the frames,
    default the profile's world size)."""
    from .train import video_setup
    return video_setup(profile, {tag: reg for tag, (_, reg) in key_nets.items()}, key_width=R["key_width"],
                       key_steps=R["key_steps"], key_points=R["key_points"], train_clips=R["train_clips"],
                       val_clips=R["val_clips"], length=R["length"], domain=domain, size=size, progress=progress)


def _recipe(R: dict):
    from .calibration import FLOW_RECIPES
    return FLOW_RECIPES[R["flow_recipe"]]["recipe"]


def regime_curve(setup, R: dict, num_classes: int = 19):
    """The held-out ``train.Curve`` every regime PF / A-Lite run records (None without ``curve_every``)."""
    from .train import Curve
    if not R.get("curve_every"):
        return None
    return Curve(setup.val_clips, setup.val_idx, label_index=R["length"] - 1, interval=MAX_L, every=R["curve_every"],
                 num_classes=num_classes)


def regime_pf(setup, R: dict, tag: str, seed: int, pf_options: Mapping | None = None):
    """PF for keyframe net ``tag`` and ``seed`` trained as the regime says (``train.trained_pf``,
    cached): ``(pf, info)``."""
    from .train import trained_pf
    opts = dict(pf_options or {})
    return trained_pf(setup.keys[tag], setup.train_clips, setup.cache[tag], pf_options=opts,
                      steps=R["pf_steps"], flow_steps=R["flow_steps"], batch_size=R["batch"], seed=seed,
                      lr=R["pf_lr"], train_flow=R["pf_train_flow"], flow_recipe=_recipe(R),
                      curve=regime_curve(setup, R, opts.get("num_classes", 19)),
                      progress=False)


def regime_alite(setup, R: dict, seed: int, tag: str = "SN"):
    """A-Lite with keyframe net ``tag``, trained like ``regime_pf`` (``alite.trained_alite``)."""
    from .alite import trained_alite
    return trained_alite(setup.keys[tag], setup.train_clips, setup.cache[tag], steps=R["pf_steps"],
                         flow_steps=R["flow_steps"], batch_size=R["batch"], seed=seed, lr=R["pf_lr"],
                         train_flow=R["pf_train_flow"], flow_recipe=_recipe(R), curve=regime_curve(setup, R),
                         progress=False)


def _call(fn, args: tuple):
    return fn(*args)


def prepare_roles(profile: str, R: dict, key_nets: Mapping[str, tuple] = KEY_NETS, domain: str = "city_a",
                  size: tuple | None = None, jobs: int = 1, progress: bool = True) -> list:
    """Train (or load) the roles PF depends on, which do not depend on each other, side by side in
    ``jobs`` one-thread processes: the keyframe nets (``calibration.keyframe_curve``) and the flow
    net O's pre-training per seed (``calibration.flow_role``, the cached role ``regime_pf`` shares).
    Returns their infos / EPE curves in order (keyframe nets first)."""
    from ..data import get_dataset
    from ..pool import run_all
    from ..profiles import get_profile
    from .calibration import flow_role, keyframe_curve
    from .train import keyframe_config
    size = tuple(size or get_profile(profile).world_image_size)
    cfgs = [keyframe_config(profile, reg, R["key_width"], R["key_steps"], points=R["key_points"], domain=domain,
                            tag=tag, size=size) for tag, (_, reg) in key_nets.items()]
    for cfg in cfgs:  # export the world once, before the processes fork
        get_dataset(cfg, cfg.train_split), get_dataset(cfg, cfg.val_split)
    tasks = [(keyframe_curve, (cfg,)) for cfg in cfgs] + [
        (flow_role, (size, R["train_clips"], R["length"], R["flow_steps"], s, domain, _recipe(R)))
        for s in range(R["seeds"])]
    return run_all(_call, tasks, jobs, "keyframe and flow roles", progress)


_FORKED: dict = {}   # the setup a forked pool worker trains from (``train_roles``)


def _train_role(R: dict, kind: str, tag: str, seed: int, pf_options: dict) -> dict:
    setup = _FORKED["setup"]
    _, info = regime_alite(setup, R, seed, tag) if kind == "alite" else regime_pf(setup, R, tag, seed, pf_options)
    return info


def train_roles(setup, R: dict, roles: Sequence[tuple], jobs: int = 1, progress: bool = True) -> list[dict]:
    """Train (or load) the regime's roles ``(kind, tag, seed, pf_options)`` (kind ``"pf"`` or
    ``"alite"``) in ``jobs`` forked one-thread processes that inherit ``setup``; returns their
    infos in order. The modules are loaded afterwards from the cache (``regime_pf`` /
    ``regime_alite``): the workers send back only the infos."""
    from ..pool import run_all
    _FORKED["setup"] = setup
    try:
        return run_all(_train_role, [(R, kind, tag, seed, dict(opts or {})) for kind, tag, seed, opts in roles],
                       jobs, "PF / A-Lite roles", progress)
    finally:
        _FORKED.clear()


def role_curves(infos: Mapping[tuple, dict]) -> pd.DataFrame:
    """One row per role, seed and recorded step: ``infos[(role, seed)]`` -> columns role, seed,
    step, avg_miou, min_miou (held-out, l = MAX_L)."""
    rows = [{"role": role, "seed": seed, "step": s, "avg_miou": a, "min_miou": m}
            for (role, seed), info in infos.items()
            for (s, a), (_, m) in zip(info.get("curve", []), info.get("curve_min", []))]
    return pd.DataFrame(rows, columns=["role", "seed", "step", "avg_miou", "min_miou"])


def collapsed(final: pd.Series, margin: float = COLLAPSE_MARGIN) -> pd.Series:
    """Which runs of one role collapsed: ``final`` (index: seed) holds each run's held-out avg mIoU;
    a run is collapsed when it is more than ``margin`` points below the median of the *other*
    seeds (a single run cannot be judged: False)."""
    out = {}
    for s, v in final.items():
        others = final.drop(s)
        out[s] = bool(len(others) and v < others.median() - margin)
    return pd.Series(out, name="collapsed", dtype=bool)


class HoldKeyframe(torch.nn.Module):
    """The "no propagation" control: every non-key frame keeps the keyframe's 1/8 output (what
    PF's warp and correction must beat; as ``GSVNet`` it takes ``(state, prev, cur)``)."""

    stride = 8

    def forward(self, state, prev=None, cur=None, flow=None) -> dict:
        return {"out": state}


# --- ablations (Table 4, Tables A5 / A6): PF variants trained like the regime's PF ----------------
#: name -> ``GSVNet`` options of the ablated PF variants; ``"3x3 IDK"`` is the regime's PF itself
#: (the same cached role as the calibration's and Table 1's PF-SN).
VARIANTS = {
    "no intra": {"use_intra": False},                              # Table 4
    "3x3 learned": {"learned_kernels": True},                      # Table A5
    "5x5 learned": {"kernel_size": 5, "learned_kernels": True},    # Table A6 (learned, as the paper)
    "3x3 IDK": {},
}
BASELINE = "3x3 IDK"


def variant_study(setup, R: dict, names: Sequence[str], tag: str = "SN", jobs: int = 1,
                  progress: bool = True) -> dict:
    """PF variants ``names`` (of ``VARIANTS``; the baseline is always included) with keyframe net
    ``tag``, every regime seed, trained like ``regime_pf`` (same flow-net pre-training, recipe,
    steps, seed and data order; cached; ``jobs`` processes), each with its held-out curve; then
    evaluated at l = 1..``MAX_L`` on the regime's evaluation clips, and the "hold the keyframe"
    control at ``MAX_L``. A run more than ``COLLAPSE_MARGIN`` below its sibling seeds is failed:
    flagged in ``res`` (column ``failed``), never to be averaged.

    Returns ``{"pfs": {(name, seed): pf}, "curves", "failed": {name: {seeds}}, "res": one row per
    variant, seed and interval (avg / min mIoU %), "held": interval_metrics of holding at MAX_L}``."""
    names = list(dict.fromkeys([*names, BASELINE]))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown PF variant(s) {unknown}; expected some of {list(VARIANTS)}")
    seeds = list(range(R["seeds"]))
    train_roles(setup, R, [("pf", tag, s, VARIANTS[n]) for n in names for s in seeds], jobs, progress)
    pfs, infos = {}, {}
    for n in names:
        for s in seeds:
            pfs[n, s], infos[n, s] = regime_pf(setup, R, tag, s, VARIANTS[n])
    curves = role_curves(infos)
    final = curves.sort_values("step").groupby(["role", "seed"]).last()["avg_miou"]
    failed = {n: set(collapsed(final[n])[lambda b: b].index) for n in names}
    label = R["length"] - 1
    key = KeyframeSegmenter(setup.keys[tag], 0.75)
    rows = []
    for (n, s), pf in tqdm(pfs.items(), desc="evaluate variants", disable=not progress):
        cms = evaluate_intervals(setup.val_clips, key, pf, MAX_L, label_index=label, progress=False)["confusions"]
        for l in range(1, MAX_L + 1):
            m = interval_metrics(cms, l)
            rows.append({"variant": n, "seed": s, "interval": l, "avg_miou": 100 * m["avg_miou"],
                         "min_miou": 100 * m["min_miou"], "failed": s in failed[n]})
    held = interval_metrics(evaluate_intervals(setup.val_clips, key, HoldKeyframe(), MAX_L, label_index=label,
                                               progress=False)["confusions"], MAX_L)
    return {"pfs": pfs, "curves": curves, "failed": failed, "res": pd.DataFrame(rows), "held": held, "key": key}


def variant_step_times(study: dict, clip, repeats: int) -> tuple[dict, float]:
    """Best seconds of one non-key step per variant of ``study`` (seed 0's PF, one thread, the
    frame size of ``clip``; interleaved, ``profiling.interleaved_best``) and of the keyframe net."""
    from ..profiling import interleaved_best
    f0, f1 = frame_tensor(clip.frames[0]), frame_tensor(clip.frames[1])
    names = list(dict.fromkeys(n for n, _ in study["pfs"]))
    seg8 = torch.zeros(1, 19, *study["pfs"][names[0], 0].grid_size(f0))
    with torch.no_grad():
        T = interleaved_best({n: (lambda pf=study["pfs"][n, 0]: pf(seg8, f0, f1)) for n in names}, repeats)
        t_key = interleaved_best({"key": lambda: study["key"].eval()(f0)}, repeats)["key"]
    return T, t_key


# --- Table 3 (CamVid) ------------------------------------------------------------------------------
#: GSVNet Table 3 (CamVid test): BiSeNet-R18 at input 0.75 and 0.5 against Ours-BN-R18 at l = 2, 3
#: with keyframes at 0.75. The shared CamVid copy has no video, so the video rows run on the world
#: styled as CamVid (domain ``camvid``: CamVid's 11 classes, its 3:4 frames) and the image rows
#: both there and on real CamVid (``camvid_image_rows``).
TABLE3_KEY = {"BN": ("BiSeNet-R18", "bisenet_resnet18")}
TABLE3_SCALES = (0.75, 0.5)
TABLE3_INTERVALS = (2, 3)
#: The world styled as CamVid per profile: CamVid's 3:4 aspect at the cpu profile's width 256
#: (CamVid is 720x960; the SegNet copy 360x480).
CAMVID_WORLD_SIZES = {"smoke": (48, 64), "cpu": (192, 256), "gpu": (360, 480), "paper": (720, 960)}
CAMVID_PAPER_SIZE = (720, 960)   # CamVid's frames: multiply-adds are counted there
CAMVID_CLASSES = 11


def table3_rows(key, pfs: Mapping[int, torch.nn.Module], clips: Sequence, label_index: int,
                num_classes: int = CAMVID_CLASSES, label: str = "BiSeNet-R18", ours: str = "Ours-BN-R18") -> pd.DataFrame:
    """Table 3's accuracy rows on video clips, one per method and seed (``pfs[seed]``): the image
    network at each of ``TABLE3_SCALES`` (its own output, upsampled; one model, repeated per seed),
    Ours at ``TABLE3_INTERVALS`` (keyframes at 0.75), and ``hold`` (the keyframe's output kept,
    l = 3; repeated per seed). Columns: method, kind, input, interval, seed, avg_miou, min_miou (%)."""
    hold = HoldKeyframe()
    max_l = max(TABLE3_INTERVALS)
    image = {s: 100 * interval_confusions(clips, key, hold, s, 1, 1, label_index, num_classes=num_classes)[0].miou()
             for s in TABLE3_SCALES}
    held = interval_confusions(clips, key, hold, 0.75, 8, max_l, label_index, num_classes=num_classes)
    rows = []
    for seed, pf in pfs.items():
        for s, m in image.items():
            rows.append(dict(method=label, kind="image", input=s, interval=1, seed=seed, avg_miou=m, min_miou=m))
        cms = interval_confusions(clips, key, pf, 0.75, 8, max_l, label_index, num_classes=num_classes)
        for l in TABLE3_INTERVALS:
            m = interval_metrics(cms, l)
            rows.append(dict(method=f"{ours} (l={l})", kind="video", input=0.75, interval=l, seed=seed,
                             avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"]))
        m = interval_metrics(held, max_l)
        rows.append(dict(method=f"hold (l={max_l})", kind="hold", input=0.75, interval=max_l, seed=seed,
                         avg_miou=100 * m["avg_miou"], min_miou=100 * m["min_miou"]))
    return pd.DataFrame(rows)


def table3_gmacs(num_classes: int = CAMVID_CLASSES, size: tuple[int, int] = CAMVID_PAPER_SIZE) -> dict:
    """Multiply-adds (G) per frame at CamVid's ``size`` of the paper-size networks: the image
    network at each of ``TABLE3_SCALES`` and Ours at each of ``TABLE3_INTERVALS`` (keyframe at 0.75
    plus l - 1 non-key steps, averaged over the interval as in Table 2), keyed by ``(method, input)``
    as in ``table3_rows``."""
    from .gsvnet import GSVNet, nonkey_complexity
    full = paper_size_networks(TABLE3_KEY, num_classes)
    key = keyframe_gmacs(full, TABLE3_SCALES, size)
    nonkey = nonkey_complexity(GSVNet(num_classes=num_classes), size)["macs"] / 1e9
    out = {(TABLE3_KEY["BN"][0], s): key["BN", s] for s in TABLE3_SCALES}
    out.update({(f"Ours-BN-R18 (l={l})", 0.75): (key["BN", 0.75] + (l - 1) * nonkey) / l for l in TABLE3_INTERVALS})
    return out


@torch.no_grad()
def image_scores(model, dataset, scales: Sequence[float] = TABLE3_SCALES, num_classes: int = CAMVID_CLASSES) -> dict:
    """mIoU (%) of an image network on every frame of ``dataset`` (items with ``load_image(i)``
    uint8 RGB and ``load_label(i)``, e.g. real CamVid's test split) downscaled by each of
    ``scales``, its output upsampled bilinearly to the full frame: ``{scale: mIoU}``."""
    from ..metrics import ConfusionMatrix
    model = model.eval()
    conf = {s: ConfusionMatrix(num_classes) for s in scales}
    for i in range(len(dataset)):
        x = frame_tensor(dataset.load_image(i))
        label = torch.as_tensor(np.asarray(dataset.load_label(i))).long()
        for s in scales:
            out = KeyframeSegmenter(model, s, 1)(x)
            pred = torch.nn.functional.interpolate(out, size=label.shape, mode="bilinear", align_corners=False)
            conf[s].update(pred.argmax(1)[0], label)
    return {s: 100 * c.miou() for s, c in conf.items()}
