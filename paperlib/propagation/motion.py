"""VPLR's motion model G (Sec. 3.1, 3.3, appendix A) and the classical flow that feeds it.

G is the vector-based video prediction network of SDCNet: a fully convolutional U-Net that maps
frames and optical flows to a per-pixel motion vector ``m`` (pixels, (x, y)) such that
``I(t+1)(p) ~ I(t)(p + m(p))`` -- the sampling T of Eq. 1 is ``warp.warp``.

- *prediction* (Eq. 1): input I(t-1), I(t) and the flow F(t) between them: 8 channels;
- *reconstruction* (Eq. 3): adds I(t+1) and F(t+1): 13 channels.

Flows follow the warp convention: ``F(t)`` is the backward flow of frame t, ``I(t)(p) ~
I(t-1)(p + F(t)(p))``. By default they come from OpenCV's DIS (``dis_flow``, standing in for the
paper's FlowNet2); the world's exact flow can be passed instead for an ablation.

Training is self-supervised (``motion_loss``): reconstruct I(t+1) by sampling I(t). The loss is
the public SDCNet's: 0.7 L1 on colour + 0.2 L1 on image gradients + 0.1 motion smoothness
(mean absolute first differences of m, in pixels / 10). Optimiser: Adam, lr 1e-4, betas (0.9,
0.999), weight decay 1e-4 (appendix A).
"""
from __future__ import annotations

import hashlib
import time
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..progress import tqdm
from .warp import warp

MODES = {"prediction": 8, "reconstruction": 13}
FLOW_SCALE = 20.0  # flows / motions are divided by this inside the network (pixels -> O(1))


# --- classical flow ---------------------------------------------------------------------------

def dis_flow(frame: np.ndarray, other: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> np.ndarray:
    """OpenCV DIS optical flow (H, W, 2) float32 with ``frame(p) ~ other(p + flow(p))``.

    ``dis_flow(I(t+1), I(t))`` is therefore a motion that warps I(t) to I(t+1)."""
    if frame.shape != other.shape or frame.ndim not in (2, 3):
        raise ValueError(f"dis_flow: frames must be equal-sized (H, W[, 3]) arrays, got {frame.shape}, {other.shape}")
    gray = [np.ascontiguousarray(f if f.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY)) for f in (frame, other)]
    dis = cv2.DISOpticalFlow_create(preset)
    return dis.calc(gray[0], gray[1], None).astype(np.float32)


# --- the network --------------------------------------------------------------------------------

def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.LeakyReLU(0.1, inplace=True))


def _deconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True))


class MotionNet(nn.Module):
    """G: 10 encoder convs (7x7/2->32, 5x5/2->64, 5x5/2->128, 3x3/2->256, 256, 512, the last
    four each followed by a 3x3/1 conv), 6 transposed convs (4x4/2: 256, 128, 64, 32, 16, 8)
    each concatenated with the encoder feature (or the input) of the same size, and a final
    3x3 conv to the 2-channel motion. Inputs of any size are padded (replicate) to a multiple
    of the stride 64 and the output is cropped back. ``width`` scales every channel count
    (1.0 = the paper's network; smaller for the fast profiles).

    ``forward(x)``: x (N, 8|13, H, W) as built by ``motion_inputs``; returns (N, 2, H, W) pixels.
    """

    stride = 64

    def __init__(self, mode: str = "prediction", width: float = 1.0):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"MotionNet mode must be one of {sorted(MODES)}, got {mode!r}")
        if width <= 0:
            raise ValueError(f"MotionNet width must be > 0, got {width}")
        self.mode, cin = mode, MODES[mode]
        c = lambda n: max(4, int(round(n * width)))  # noqa: E731  (width < 1: small profiles)
        enc = [(cin, c(32), 7, 2), (c(32), c(64), 5, 2), (c(64), c(128), 5, 2), (c(128), c(128), 3, 1),
               (c(128), c(256), 3, 2), (c(256), c(256), 3, 1), (c(256), c(256), 3, 2),
               (c(256), c(256), 3, 1), (c(256), c(512), 3, 2), (c(512), c(512), 3, 1)]
        self.encoder = nn.ModuleList(_conv(*a) for a in enc)
        # skip features, deepest first: c5_1 (256), c4_1 (256), c3_1 (128), c2 (64), c1 (32), input
        skips = [c(256), c(256), c(128), c(64), c(32), cin]
        outs = [c(256), c(128), c(64), c(32), c(16), c(8)]
        ins = [c(512)] + [o + s for o, s in zip(outs[:-1], skips[:-1])]
        self.decoder = nn.ModuleList(_deconv(i, o) for i, o in zip(ins, outs))
        self.head = nn.Conv2d(outs[-1] + skips[-1], 2, 3, 1, 1)
        nn.init.normal_(self.head.weight, std=1e-3)  # start near zero motion
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != MODES[self.mode]:
            raise ValueError(f"MotionNet({self.mode}) expects (N, {MODES[self.mode]}, H, W), got {tuple(x.shape)}")
        H, W = x.shape[-2:]
        ph, pw = -H % self.stride, -W % self.stride
        h = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        feats = [h]
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i in (0, 1, 3, 5, 7):  # c1, c2, c3_1, c4_1, c5_1
                feats.append(h)
        for layer in self.decoder:
            h = torch.cat([layer(h), feats.pop()], 1)
        return self.head(h)[..., :H, :W] * FLOW_SCALE


# --- inputs, loss, training ---------------------------------------------------------------------

def _img(frame) -> torch.Tensor:
    """(H, W, 3) uint8 array or (N, 3, H, W) tensor in [0, 255] -> (N, 3, H, W) float in [-0.5, 0.5]."""
    t = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None] if isinstance(frame, np.ndarray) else frame
    return t.float() / 255.0 - 0.5


def _flow(flow) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)[None] \
        if isinstance(flow, np.ndarray) else flow
    return t.float() / FLOW_SCALE


def motion_inputs(mode: str, prev, cur, flow_cur, nxt=None, flow_next=None) -> torch.Tensor:
    """Stack G's input: I(t-1), I(t), F(t) [, I(t+1), F(t+1)] -> (N, 8|13, H, W).

    Frames are uint8 (H, W, 3) arrays or (N, 3, H, W) tensors in [0, 255]; flows (H, W, 2)
    arrays or (N, 2, H, W) tensors in pixels (backward flows: ``F(t) = dis_flow(I(t), I(t-1))``).
    """
    parts = [_img(prev), _img(cur), _flow(flow_cur)]
    if mode == "reconstruction":
        if nxt is None or flow_next is None:
            raise ValueError("reconstruction needs I(t+1) and F(t+1)")
        parts += [_img(nxt), _flow(flow_next)]
    elif mode != "prediction":
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    return torch.cat(parts, 1)


def _grad_xy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def motion_loss(motion: torch.Tensor, cur: torch.Tensor, nxt: torch.Tensor,
                weights: Sequence[float] = (0.7, 0.2, 0.1)) -> torch.Tensor:
    """Self-supervised loss of G: warp I(t) by ``motion`` and compare with I(t+1).

    ``cur``/``nxt`` (N, 3, H, W) float images (any fixed scale); ``weights`` = (colour L1,
    image-gradient L1, motion smoothness) -- the public SDCNet's 0.7 / 0.2 / 0.1.
    """
    pred = warp(cur, motion)
    gx, gy = _grad_xy(pred)
    tx, ty = _grad_xy(nxt)
    mx, my = _grad_xy(motion / FLOW_SCALE * 2)
    return (weights[0] * (pred - nxt).abs().mean()
            + weights[1] * ((gx - tx).abs().mean() + (gy - ty).abs().mean())
            + weights[2] * (mx.abs().mean() + my.abs().mean()))


def make_optimizer(model: nn.Module, lr: float = 1e-4) -> torch.optim.Optimizer:
    """Adam(lr, betas 0.9/0.999, weight decay 1e-4), as in appendix A."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=1e-4)


def training_example(frames: np.ndarray, t: int, mode: str, flows=None) -> tuple[torch.Tensor, ...]:
    """(input, I(t), I(t+1)) for step t -> t+1 of a (T, H, W, 3) clip.

    ``flows``: None for DIS, or (T, H, W, 2) backward flows with ``flows[t] = F(t)`` (e.g. the
    world's exact flow: ``F(t) = flow_bw[t-1]``)."""
    if not 1 <= t < len(frames) - 1:
        raise ValueError(f"training_example: need 1 <= t < {len(frames) - 1}, got t={t}")
    flow = (lambda s: dis_flow(frames[s], frames[s - 1])) if flows is None else (lambda s: flows[s])
    x = motion_inputs(mode, frames[t - 1], frames[t], flow(t), frames[t + 1], flow(t + 1))
    return x, _img(frames[t]), _img(frames[t + 1])


# --- training G (self-supervised, appendix A) ----------------------------------------------------

#: Per-profile sizes of G's training. The paper (appendix A): 256x256 crops, batch 128, Adam
#: lr 1e-4, 400 epochs of Cityscapes sequence frames, full width. The fast profiles shrink the
#: network (``width``) and the schedule, and use lr 1e-3 so that a few hundred steps suffice.
#: Measured at cpu (reconstruction, 400 steps, loss on 32 held-out 128x128 crops of the cpu
#: world): zero motion 0.0511, DIS flow used as the motion 0.0238, G with lr 1e-3 0.0239, G with
#: lr 1e-4 0.0271 -- lr 1e-4 has not converged after 400 steps.
MOTION_DEFAULTS: dict[str, dict] = {
    "smoke": dict(steps=12, lr=1e-3, batch_size=2, crop=(64, 64), width=0.125),
    "cpu": dict(steps=400, lr=1e-3, batch_size=4, crop=(128, 128), width=0.25),
    "gpu": dict(steps=8000, lr=1e-4, batch_size=16, crop=(256, 256), width=1.0),
    "paper": dict(steps=280000, lr=1e-4, batch_size=128, crop=(256, 256), width=1.0),
}
FLOWS = ("dis", "exact")
_MOTION_FORMAT = 1


def motion_defaults(profile: str) -> dict:
    """G's training sizes for a profile (``MOTION_DEFAULTS``): pass them to ``train_motion`` so
    that every notebook of a profile shares one cached model."""
    if profile not in MOTION_DEFAULTS:
        raise ValueError(f"motion_defaults: unknown profile {profile!r}; choose one of {sorted(MOTION_DEFAULTS)}")
    return dict(MOTION_DEFAULTS[profile])


class _ArrayFrames:
    """In-memory clips (a (T, H, W, 3) uint8 array or a list of them) as a frame source."""

    def __init__(self, clips):
        clips = [clips] if isinstance(clips, np.ndarray) and clips.ndim == 4 else list(clips)
        for c in clips:
            if not (isinstance(c, np.ndarray) and c.ndim == 4 and c.shape[-1] == 3 and c.dtype == np.uint8):
                raise ValueError("train_motion: frames_source clips must be (T, H, W, 3) uint8 arrays")
            if len(c) < 3:
                raise ValueError(f"train_motion: a clip needs >= 3 frames (t-1, t, t+1), got {len(c)}")
        self.clips = clips
        self.lengths = [len(c) for c in clips]

    def identity(self) -> dict:
        h = hashlib.sha1()
        for c in self.clips:
            h.update(str(c.shape).encode())
            h.update(np.ascontiguousarray(c).tobytes())
        return {"arrays": h.hexdigest()[:16]}

    def frame(self, c: int, f: int) -> np.ndarray:
        return self.clips[c][f]

    def exact_flow(self, c: int, a: int, b: int) -> np.ndarray:
        raise ValueError("train_motion: flow='exact' needs a world (a config or an exported root "
                         "with flow_sequence/), not frame arrays")


def _frame_source(frames_source, flow: str, split: str | None, progress: bool):
    """Arrays -> ``_ArrayFrames``; a config or a Cityscapes-layout root -> ``SequenceFrames``."""
    if isinstance(frames_source, np.ndarray) or (isinstance(frames_source, (list, tuple))
                                                 and frames_source and isinstance(frames_source[0], np.ndarray)):
        return _ArrayFrames(frames_source)
    from .frames import SequenceFrames, sequence_root
    root, split = sequence_root(frames_source, split=split, flow=flow == "exact", progress=progress)
    return SequenceFrames(root, split, flow=flow == "exact")


def _example(src, rng: np.random.Generator, mode: str, flow: str, crop: tuple[int, int]):
    """One random (input, I(t), I(t+s)) training triple, s = +-1 at random (G also serves the
    backward propagation, which runs it on the reversed clip), randomly cropped."""
    c = int(rng.integers(len(src.lengths)))
    t = int(rng.integers(1, src.lengths[c] - 1))
    s = 1 if rng.random() < 0.5 else -1
    prev, cur, nxt = (src.frame(c, t - s), src.frame(c, t), src.frame(c, t + s))
    if flow == "dis":
        f_cur, f_nxt = dis_flow(cur, prev), dis_flow(nxt, cur)
    else:
        f_cur, f_nxt = src.exact_flow(c, t, t - s), src.exact_flow(c, t + s, t)
    H, W = cur.shape[:2]
    ch, cw = min(crop[0], H), min(crop[1], W)
    y, x = int(rng.integers(H - ch + 1)), int(rng.integers(W - cw + 1))
    sl = (slice(y, y + ch), slice(x, x + cw))
    x_in = motion_inputs(mode, prev[sl], cur[sl], f_cur[sl], nxt[sl], f_nxt[sl])
    return x_in, _img(cur[sl]), _img(nxt[sl])


def train_motion(frames_source, mode: str = "prediction", flow: str = "dis", steps: int = 400,
                 lr: float = 1e-4, *, batch_size: int = 4, crop=(128, 128), width: float = 0.25,
                 seed: int = 0, split: str | None = None, weights: Sequence[float] = (0.7, 0.2, 0.1),
                 cache: bool = True, progress: bool = True, device: str = "cpu") -> MotionNet:
    """Train G self-supervised on unlabelled frames (Sec. 3.1 / 3.3, appendix A); return it (eval).

    Each step draws ``batch_size`` random triples (I(t-s), I(t), I(t+s)), s = +-1, from random
    clips, randomly cropped to ``crop``; G sees the prediction (8-channel) or reconstruction
    (13-channel) input and is trained to reconstruct I(t+s) by bilinearly sampling I(t) with its
    motion, using ``motion_loss``: the public SDCNet's 0.7 colour L1 + 0.2 image-gradient L1 +
    0.1 motion smoothness (``weights``). Adam, ``lr``, betas (0.9, 0.999), weight decay 1e-4.
    Input flows are OpenCV DIS (``flow="dis"``, the FlowNet2 stand-in) or the world's exact flow
    (``"exact"``). Frames of any size work (G pads to its stride 64 and crops back).

    ``frames_source``: a ``TrainConfig`` (its world, exported with sequence frames, or its
    Cityscapes ``data_root``), a Cityscapes-layout root with ``leftImg8bit_sequence/<split>``,
    or (T, H, W, 3) uint8 clip array(s). With ``cache`` the trained weights are saved under
    ``paperlib.cache`` (role ``motion``), keyed by every parameter and the source, and reused.
    ``model.history`` holds the per-step losses, ``model.input_flow`` the flow it was trained
    with (``export_propagated`` feeds it the same), ``model.info`` the parameters and wall time.
    """
    if mode not in MODES:
        raise ValueError(f"train_motion: mode must be one of {sorted(MODES)}, got {mode!r}")
    if flow not in FLOWS:
        raise ValueError(f"train_motion: flow must be one of {FLOWS}, got {flow!r}")
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"train_motion: {name} must be an int >= 1, got {v!r}")
    if not lr > 0:
        raise ValueError(f"train_motion: lr must be > 0, got {lr!r}")
    crop = (int(crop), int(crop)) if np.isscalar(crop) else tuple(int(c) for c in crop)
    if len(crop) != 2 or min(crop) < 1:
        raise ValueError(f"train_motion: crop must be a size >= 1 or (H, W), got {crop!r}")
    if len(weights) != 3:
        raise ValueError(f"train_motion: weights must be (colour, gradient, smoothness), got {weights!r}")
    src = _frame_source(frames_source, flow, split, progress)
    key = {"format": _MOTION_FORMAT, "source": src.identity(), "mode": mode, "flow": flow,
           "steps": int(steps), "lr": float(lr), "batch_size": int(batch_size), "crop": list(crop),
           "width": float(width), "seed": int(seed), "weights": [float(w) for w in weights]}
    from ..cache import cached

    def build():
        torch.manual_seed(seed)
        model = MotionNet(mode, width).to(device)
        opt = make_optimizer(model, lr)
        rng = np.random.default_rng(seed)
        history, t0 = [], time.perf_counter()
        bar = tqdm(range(int(steps)), desc=f"train G ({mode}, {flow} flow)", disable=not progress)
        for _ in bar:
            batch = [_example(src, rng, mode, flow, crop) for _ in range(batch_size)]
            x, cur, nxt = (torch.cat([b[i] for b in batch]).to(device) for i in range(3))
            loss = motion_loss(model(x), cur, nxt, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
            bar.set_postfix(loss=f"{history[-1]:.4f}")
        return model.cpu(), dict(key, wall_time=time.perf_counter() - t0, history=history)

    model, info = cached("motion", key, build, module=lambda: MotionNet(mode, width), enabled=cache)
    model = model.eval()
    model.history, model.input_flow = list(info.pop("history")), flow
    model.info = {k: v for k, v in info.items() if k not in ("key", "path", "build_time_s")}
    if info.get("cached"):
        model.info["cached"] = info["path"]
    else:
        model.info.pop("cached", None)
    return model
