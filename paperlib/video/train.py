"""Trained GSVNet pieces on the world, cached on disk keyed by everything that made them.

The GSVNet notebooks share one trained keyframe network per architecture (``pretrained_keyframe``)
and reuse trained PF variants (``cached_module``): a later notebook, or a re-run, loads the weights
instead of training again. Both are roles of the one content-keyed cache (``paperlib.cache``):
the key is a hash of everything that made them, so a change of any parameter trains a new model.

How the flow network O is trained (Sec. 3.3 + appendix C): the paper trains PF end-to-end with
the segmentation loss only, and the authors' code starts from a *pre-trained* lightweight flow
net (``optical_flow_network_path``). We pre-train O on the world's exact backward flow
(``pretrain_flownet``: mean end-point error on the 1/8 grid, a few hundred cheap steps on
16x32 inputs), then fine-tune it end-to-end with the rest of PF, without flow supervision
(``loop.train_nonkey``). The exact flow is the world's stand-in for the authors' pre-training.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..progress import tqdm
from .gsvnet import GSVNet, resize_flow
from .loop import flow_tensor, frame_tensor

# TrainConfig fields that do not change the trained weights
_NOT_IN_KEY = ("name", "progress", "out_dir", "log_every", "workers", "device", "eval_every", "ckpt_every",
               "resume")


def cache_dir() -> Path:
    """Where the GSVNet roles live: ``paperlib.cache.cache_root()`` (kept for the old name)."""
    from paperlib.cache import cache_root
    return cache_root()


#: Bump when the way a keyframe net is trained changes (a new version trains a new role).
#: 2: trained through the one-pass training transform (``data.transforms.TrainTransform``).
KEYFRAME_VERSION = 2


def _keyframe_config(cfg) -> dict:
    """The keyframe role's key: the config without the fields that leave the weights alone.
    ``eval_every`` stays in when set: held-out evaluations during training draw from torch's
    generator (a DataLoader's base seed), so a curve-recording run is another run."""
    out = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_IN_KEY}
    if cfg.eval_every:
        out["eval_every"] = cfg.eval_every
    return {"config": out, "version": KEYFRAME_VERSION}


def keyframe_config(profile: str, model: str, width: Optional[int], steps: int, *, points: Optional[int] = None,
                    domain: str = "city_a", tag: str = "key", size: Optional[tuple] = None):
    """The ``TrainConfig`` of a GSVNet keyframe network on the world ``domain`` (registry name
    ``model`` at ``width``, ``steps`` steps, the profile's recipe); ``points``: evaluated that many
    times on the held-out split during training (a curve-recording run: another role). ``size``:
    the world's frame size (default the profile's); a CamVid-styled domain
    (``data.synthetic.CAMVID_STYLED``) trains on its 11 classes."""
    from paperlib.config import config_from_params
    from paperlib.data.synthetic import CAMVID_STYLED
    extra = {"eval_every": max(steps // points, 1)} if points else {}
    if size is not None:
        extra["world_image_size"] = tuple(size)
    if domain in CAMVID_STYLED:
        extra["num_classes"] = 11
    return config_from_params(profile, model=model, model_width=width, steps=steps, world_domain=domain,
                              name=f"gsvnet_key_{tag}", progress=False, **extra)


def keyframe_cache_path(cfg) -> Path:
    """Where ``pretrained_keyframe(cfg)`` keeps its weights."""
    from paperlib.cache import role_path
    return role_path("keyframe", _keyframe_config(cfg))


def pretrained_keyframe(cfg, progress: bool = True) -> tuple[nn.Module, dict]:
    """The keyframe network N of Fig. 1 trained as ``cfg`` (a ``TrainConfig``) says, once (a
    ``paperlib.cache`` role shared by every notebook).

    The first call trains with ``paperlib.engine.train(cfg)`` (which also evaluates on the
    validation split); later calls with the same config load the weights. Returns ``(model in
    eval mode, info)``; ``info``: ``miou`` (validation, 0..1), ``steps``, ``wall_time`` (of the
    training), ``cached`` (True when loaded), ``path``; with ``cfg.eval_every`` also ``curve``,
    ``[[step, validation mIoU %], ...]`` (the plateau)."""
    from paperlib.cache import cached
    from paperlib.engine import train
    from paperlib.models import build

    opts = dict(cfg.model_options, **({"width": cfg.model_width} if cfg.model_width else {}))

    def make():
        curve = []
        res = train(cfg.replace(progress=progress),
                    callbacks=[lambda e: curve.append([e["step"], 100 * e["metrics"]["miou"]])
                               if e["event"] == "eval" else None])
        info = {"miou": res["metrics"].get("miou"), "steps": res["step"], "wall_time": res["wall_time"]}
        return res["model"].cpu(), dict(info, curve=curve) if cfg.eval_every else info

    model, info = cached("keyframe", _keyframe_config(cfg), make,
                         module=lambda: build(cfg.model, num_classes=cfg.num_classes, **opts))
    return model.eval(), info


def cached_module(kind: str, params: dict, module: nn.Module,
                  make: Callable[[nn.Module], dict]) -> tuple[nn.Module, dict]:
    """``module`` trained by ``make(module)`` (in place; returns a JSON-able info dict), once: a
    ``paperlib.cache`` role keyed by ``kind`` and ``params``, which must describe everything
    ``make`` depends on. Returns ``(module, info)`` with ``info["cached"]``."""
    from paperlib.cache import cached

    def build():
        t0 = time.perf_counter()
        info = dict(make(module) or {})
        info["wall_time"] = time.perf_counter() - t0
        return module, info

    return cached(kind, params, build, module=module)


def flow_pairs(clips: Sequence, batch_size: int, seed: int = 0):
    """Endless batches of consecutive frame pairs with their exact backward flow:
    ``(prev (N, 3, H, W), cur (N, 3, H, W), flow_bw (N, 2, H, W))`` (flow of cur -> prev)."""
    if not clips:
        raise ValueError("flow_pairs needs at least one clip")
    rng = np.random.default_rng(seed)
    while True:
        prev, cur, flow = [], [], []
        for _ in range(batch_size):
            clip = clips[int(rng.integers(len(clips)))]
            if clip.flow_bw is None or len(clip.frames) < 2:
                raise ValueError("flow_pairs needs clips of >= 2 frames rendered with flow")
            t = int(rng.integers(1, len(clip.frames)))
            prev.append(frame_tensor(clip.frames[t - 1]))
            cur.append(frame_tensor(clip.frames[t]))
            flow.append(flow_tensor(clip.flow_bw[t - 1]))
        yield torch.cat(prev), torch.cat(cur), torch.cat(flow)


def mirror_pair(prev: torch.Tensor, cur: torch.Tensor, flow: torch.Tensor) -> tuple:
    """A frame pair and its backward flow (N, 2, H, W) mirrored left-right: both frames flipped,
    the flow field flipped and its horizontal component negated, ``u'(W-1-x, y) = -u(x, y)``."""
    sign = torch.tensor([-1.0, 1.0], dtype=flow.dtype).view(1, 2, 1, 1)
    return prev.flip(-1), cur.flip(-1), flow.flip(-1) * sign


#: The flow net's first pre-training recipe (constant lr, no augmentation): the default, so roles
#: made with it keep their cache keys. ``pretrain_flownet``'s ``poly`` / ``flip`` give the others.
FLOW_RECIPE_V1 = {"poly": False, "flip": False}


def pretrain_flownet(gsv: GSVNet, clips: Sequence, steps: int = 300, batch_size: int = 8, lr: float = 1e-3,
                     seed: int = 0, progress: bool = True, poly: bool = False, flip: bool = False) -> list[float]:
    """Pre-train PF's flow net O (appendix C) on exact backward flows: Adam on the mean
    end-point error ``|O(I_{t-1}, I_t) - m_t|`` on the 1/8 grid (``m_t`` resized with its vectors
    rescaled). Returns the EPE per step (pixels of the 1/8 grid).

    ``poly``: the learning rate decays as ``lr (1 - i / steps)^0.9`` (else constant). ``flip``:
    each batch is mirrored left-right with probability 1/2 -- both frames and the flow, whose
    horizontal component changes sign (``u'(W-1-x, y) = -u(x, y)``) -- so O sees twice the motions
    its clips hold."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    net = gsv.flownet.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    it, losses = flow_pairs(clips, batch_size, seed), []
    coin = np.random.default_rng(seed + 1)
    bar = tqdm(range(steps), desc="pre-train flow net (EPE)", disable=not progress)
    for i in bar:
        prev, cur, flow = next(it)
        if flip and coin.random() < 0.5:
            prev, cur, flow = mirror_pair(prev, cur, flow)
        if poly:
            for group in opt.param_groups:
                group["lr"] = lr * (1 - i / steps) ** 0.9
        pred = net(gsv.downscale(prev), gsv.downscale(cur))
        epe = (pred - resize_flow(flow, pred.shape[-2:])).norm(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        epe.backward()
        opt.step()
        losses.append(epe.item())
        bar.set_postfix(epe=f"{losses[-1]:.3f}")
    return losses


@torch.no_grad()
def flow_epe(gsv: GSVNet, clips: Sequence, flows: Optional[Sequence] = None) -> float:
    """Mean end-point error (pixels of the 1/8 grid) of PF's flow net on every consecutive pair
    of ``clips`` against their exact ``flow_bw``; ``flows[c][t]`` replaces the flow net by a given
    full-resolution flow (e.g. DIS) resized to the 1/8 grid; zeros = the copy baseline."""
    was = gsv.training
    gsv.eval()
    total, n = 0.0, 0
    for c, clip in enumerate(clips):
        for t in range(1, len(clip.frames)):
            prev, cur = frame_tensor(clip.frames[t - 1]), frame_tensor(clip.frames[t])
            grid = gsv.grid_size(cur)
            target = resize_flow(flow_tensor(clip.flow_bw[t - 1]), grid)
            pred = gsv.flownet(gsv.downscale(prev), gsv.downscale(cur)) if flows is None \
                else resize_flow(flow_tensor(flows[c][t - 1]), grid)
            total += float((pred - target).norm(dim=1).mean())
            n += 1
    gsv.train(was)
    return total / max(n, 1)


def _full_recipe(recipe: Optional[dict]) -> dict:
    recipe = {**FLOW_RECIPE_V1, **(recipe or {})}
    if set(recipe) != set(FLOW_RECIPE_V1):
        raise ValueError(f"recipe: unknown option(s) {sorted(set(recipe) - set(FLOW_RECIPE_V1))}; "
                         f"expected {sorted(FLOW_RECIPE_V1)}")
    return recipe


def flow_recipe_key(recipe: Optional[dict]) -> dict:
    """The part of a cache key that names a flow pre-training recipe: ``{}`` for the first one
    (``FLOW_RECIPE_V1``: roles made with it keep their keys), else ``{"recipe": <every option>}``."""
    recipe = _full_recipe(recipe)
    return {} if recipe == FLOW_RECIPE_V1 else {"recipe": recipe}


def pretrained_flownet(flownet: nn.Module, clips: Sequence, cache_params: dict, flow_steps: int, *, seed: int = 0,
                       stride: int = 8, flow_width: int = 32, progress: bool = True,
                       recipe: Optional[dict] = None) -> list[float]:
    """Load into ``flownet`` (a ``LightFlowNet``) its pre-training on the clips' exact flow
    (``pretrain_flownet``, ``flow_steps`` steps; ``recipe`` its ``poly`` / ``flip`` options, default
    ``FLOW_RECIPE_V1``), cached by ``cache_params`` + these settings and shared by every propagation
    model that uses the same flow net (PF variants, A-Lite, every keyframe net, the calibration's
    flow control). ``cache_params`` identifies the clips (world, clip indices, length); its
    ``"key"`` entry, if any, is left out of the key: pre-training never sees the keyframe net.
    Returns the EPE per pre-training step ([] when ``flow_steps`` is 0: nothing is loaded)."""
    if not flow_steps:
        return []
    recipe = _full_recipe(recipe)

    def pretrain(net: nn.Module) -> dict:
        gsv = GSVNet(flow_width=flow_width, stride=stride)
        gsv.flownet = net
        return {"epe": pretrain_flownet(gsv, clips, flow_steps, seed=seed, progress=progress, **recipe)}

    flow_params = {**{k: v for k, v in cache_params.items() if k != "key"}, "flow_steps": flow_steps, "seed": seed,
                   "stride": stride, "flow_width": flow_width, **flow_recipe_key(recipe)}
    return cached_module("flownet", flow_params, flownet, pretrain)[1]["epe"]


@dataclass
class Curve:
    """A held-out curve recorded while PF (or A-Lite) trains end-to-end: every ``every`` steps,
    ``evaluate_intervals`` at ``interval`` on ``clips`` (labelled at ``label_index``) gives the avg
    and min mIoU (%). ``ids`` names the clips in the cache key (e.g. their world indices). The
    evaluation draws no random numbers and restores the training mode, so the trained weights are
    those of a run without it; the curve is the plateau check of the training budget."""
    clips: Sequence
    ids: Sequence
    label_index: int
    interval: int = 5
    every: int = 100
    num_classes: int = 19

    def key(self) -> dict:
        out = {"ids": list(self.ids), "label_index": self.label_index, "interval": self.interval, "every": self.every}
        return out if self.num_classes == 19 else {**out, "num_classes": self.num_classes}

    def recorder(self, key: nn.Module, net: nn.Module, key_scale: float) -> tuple[Callable[[int], None], dict]:
        """``(on_step for train_nonkey, {"curve": [[step, avg]], "curve_min": [[step, min]]})``."""
        from .loop import evaluate_intervals
        out = {"curve": [], "curve_min": []}

        def on_step(i: int) -> None:
            if i % self.every == 0:
                r = evaluate_intervals(self.clips, key, net, self.interval, label_index=self.label_index,
                                       key_scale=key_scale, num_classes=self.num_classes, progress=False)
                out["curve"].append([i, 100 * r["avg_miou"]])
                out["curve_min"].append([i, 100 * r["min_miou"]])
        return on_step, out


def trained_pf(key: nn.Module, clips: Sequence, cache_params: dict, *, pf_options: Optional[dict] = None,
               steps: int = 200, flow_steps: int = 300, batch_size: int = 4, lr: float = 0.01, interval: int = 5,
               seed: int = 0, distill_weight: float = 10.0, key_scale: float = 0.75, flow_recipe: Optional[dict] = None,
               curve: Optional[Curve] = None, train_flow: bool = True, progress: bool = True) -> tuple[GSVNet, dict]:
    """PF (``GSVNet(**pf_options)``) trained in two stages, cached by ``cache_params`` (which must
    identify ``key`` and ``clips``, e.g. the keyframe cache file and the clip indices) plus every
    argument here: (1) ``pretrain_flownet`` on the clips' exact flow for ``flow_steps``; (2)
    ``train_nonkey`` end-to-end (flow net included, no flow supervision; keyframe net frozen) for
    ``steps`` on sequences of 1..interval-1 steps, loss CE + ``distill_weight`` x KL to the keyframe
    net on the labelled frame (the authors' code). ``flow_recipe``: ``pretrain_flownet``'s options
    (``pretrained_flownet``; the calibration's ``FLOW_RECIPES``). ``curve``: record a held-out
    ``Curve`` during (2) into ``info`` (a curve-recording run is its own role; same weights).
    ``train_flow=False``: the flow net keeps its pre-training in (2) (the paper fine-tunes it).
    Returns ``(pf in eval mode, info)``."""
    opts = dict(pf_options or {})
    params = {**cache_params, "pf": opts, "steps": steps, "flow_steps": flow_steps, "batch_size": batch_size,
              "lr": lr, "interval": interval, "seed": seed, "distill_weight": distill_weight, "key_scale": key_scale,
              **flow_recipe_key(flow_recipe), **({"curve": curve.key()} if curve else {}),
              **({} if train_flow else {"train_flow": False})}

    def make(pf: GSVNet) -> dict:
        epe = pretrained_flownet(pf.flownet, clips, cache_params, flow_steps, seed=seed, stride=opts.get("stride", 8),
                                 flow_width=opts.get("flow_width", 32), progress=progress, recipe=flow_recipe)
        return nonkey_training(pf, key, clips, epe, steps=steps, batch_size=batch_size, lr=lr, interval=interval,
                               seed=seed, distill_weight=distill_weight, key_scale=key_scale, curve=curve,
                               train_flow=train_flow, progress=progress)

    torch.manual_seed(seed)
    pf, info = cached_module("pf", params, GSVNet(**opts), make)
    return pf.eval(), info


def nonkey_training(net: nn.Module, key: nn.Module, clips: Sequence, flow_epe: Sequence[float], *, steps: int,
                    batch_size: int, lr: float, interval: int, seed: int, distill_weight: float, key_scale: float,
                    curve: Optional[Curve] = None, train_flow: bool = True, progress: bool = True) -> dict:
    """Stage (2) of ``trained_pf`` / ``alite.trained_alite``: ``train_nonkey`` on
    ``sample_sequences(clips)``, recording ``curve`` if given. Returns the role's info: the flow
    net's last pre-training EPE (``flow_epe``: its EPE per step), the first and last losses, and
    the curve."""
    from .loop import sample_sequences, train_nonkey

    on_step, recorded = curve.recorder(key, net, key_scale) if curve else (None, {})
    losses = train_nonkey(net, key, sample_sequences(clips, interval, batch_size, seed=seed), steps, lr=lr,
                          distill_weight=distill_weight, key_scale=key_scale, train_flow=train_flow, on_step=on_step,
                          progress=progress)
    return {"flow_epe_last": float(np.mean(flow_epe[-20:])) if flow_epe else None,
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:])), **recorded}


@dataclass
class VideoSetup:
    """What every GSVNet notebook starts from (``video_setup``): trained keyframe nets per tag,
    their training info, the world, the train / evaluation clips and their indices, and per tag the
    ``cache_params`` that ``trained_pf`` / ``trained_alite`` need."""
    keys: dict
    key_info: dict
    world: object
    train_idx: list
    val_idx: list
    train_clips: list
    val_clips: list
    cache: dict


def video_setup(profile: str, key_models: dict, *, key_width: Optional[int], key_steps: int, train_clips: int,
                val_clips: int, length: int, domain: str = "city_a", key_points: Optional[int] = None,
                size: Optional[tuple] = None, progress: bool = False) -> VideoSetup:
    """The keyframe networks and clips of the GSVNet notebooks, built the same way everywhere.

    ``key_models``: tag -> registry name (e.g. ``{"SN": "swiftnet_resnet18"}``); each is trained once
    on the world ``domain`` at ``profile`` (``pretrained_keyframe``, width ``key_width``, ``key_steps``
    steps, cached). Clips of ``length`` frames at the profile's world size: training clips are world
    clips 0..``train_clips``-1 (the keyframe nets saw at most their frame 19), evaluation clips start
    at index 1000, disjoint from every exported split. ``key_points``: load the keyframe roles
    that recorded that many held-out points (the calibration's, ``calibration.KEY_POINTS``).
    ``size``: the frames (default the profile's world size). A CamVid-styled domain
    (``data.synthetic.CAMVID_STYLED``) gives clips whose labels are CamVid's 11 classes
    (``data.labels.to_camvid``) and keyframe nets trained on them."""
    import dataclasses

    from paperlib.data.labels import to_camvid
    from paperlib.data.synthetic import CAMVID_STYLED, SyntheticWorld
    from paperlib.profiles import get_profile

    if not key_models:
        raise ValueError("video_setup needs at least one keyframe model (key_models)")
    if min(train_clips, val_clips) < 1 or length < 2:
        raise ValueError(f"need train_clips, val_clips >= 1 and length >= 2, got {train_clips}, {val_clips}, {length}")
    h, w = size or get_profile(profile).world_image_size
    world = SyntheticWorld(domain, size=(h, w), seed=0)
    train_idx, val_idx = list(range(train_clips)), list(range(1000, 1000 + val_clips))
    keys, info, cache = {}, {}, {}
    for tag, reg in key_models.items():
        cfg = keyframe_config(profile, reg, key_width, key_steps, points=key_points, domain=domain, tag=tag,
                              size=size)
        keys[tag], info[tag] = pretrained_keyframe(cfg, progress=progress)
        cache[tag] = {"key": keyframe_cache_path(cfg).name, "world": world.params(), "clips": train_idx,
                      "length": length}

    def render(idx: list, what: str) -> list:
        clips = [world.clip(i, length=length) for i in tqdm(idx, desc=f"render {what} clips")]
        if domain in CAMVID_STYLED:
            clips = [dataclasses.replace(c, labels=to_camvid(c.labels)) for c in clips]
        return clips

    return VideoSetup(keys, info, world, train_idx, val_idx, render(train_idx, "train"), render(val_idx, "eval"), cache)
