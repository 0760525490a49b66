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

from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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
