"""GSVNet's propagation framework PF (Fig. 2): the non-keyframe path.

A non-keyframe ``t`` is segmented at 1/8 of the input resolution from the previous frame's 1/8
segmentation ``S_{t-1}`` and the two frames:

1. ``LightFlowNet`` O (appendix C, Fig. A8) estimates the backward flow ``m_t`` (``I_t -> I_{t-1}``)
   from the 1/8 frames; it works at 1/32 and is resized bilinearly to the 1/8 grid.
2. ``backward_warp`` (Eq. 1) warps ``S_{t-1}`` in segmentation space: ``S_t^-``.
3. ``IntraNet`` phi (Sec. 3.4.2): three 3x3 convs on the 1/8 current frame -> crude ``f_t^i``.
4. ``GuidedSVConv`` (Sec. 3.4.1 + 3.4.3, Eq. 2): ``D`` ideal-delay kernels shift ``S_t^-``; a
   guiding network G(f_t^i, E_t) gives per pixel ``D + 1`` non-negative weights with unit sum; each
   class chunk (its D shifted copies + the intra prediction of that class) is combined by them.

Flows are in pixels, (x, y) order, on the grid they are defined on (as in
``paperlib.data.synthetic``: ``flow_bw[t-1]`` is exactly the ``m_t`` of Eq. 1 at full resolution).

Facts from the authors' code (robert80203/GSVNet), used where the paper is silent: flow net
widths 32/64 and residual HFF merge; intra widths 3 -> 32 -> 32 -> C; guide U-net 32/64/128 with a
residual; ReLU weights divided by their sum + 1e-9. Differences from that code, following the
paper: the delay kernels include the identity (3x3 -> 9, 5x5 -> 17 as Table A6 counts them) and
the guide emits ``D + 1`` weights (the code emits 11: identity, 8 shifts, one all-zero kernel, intra);
the edge map defaults to the paper's ``sigmoid(Laplacian * argmax)`` (``edge="binary"`` = the code).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..profiling import runtime_breakdown

EPS = 1e-9


# --- Eq. 1: warping in segmentation space ------------------------------------------------------
def backward_warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear",
                  padding_mode: str = "border") -> torch.Tensor:
    """Eq. 1: ``out(c, y, x) = x(c, y + m_y(y, x), x + m_x(y, x))`` (bilinear sampling).

    ``x`` (N, C, h, w); ``flow`` (N, 2, h, w) in pixels of this grid, channel 0 = x, 1 = y.
    Zero flow is the identity; an integer flow ``(dx, dy)`` moves the content by ``(-dx, -dy)``.
    """
    if x.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError("backward_warp wants x (N,C,h,w) and flow (N,2,h,w), "
                         f"got {tuple(x.shape)}, {tuple(flow.shape)}")
    if flow.shape[0] != x.shape[0] or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match x {tuple(x.shape)}")
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=flow.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode=padding_mode, align_corners=True)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a pixel flow (N, 2, h, w) to ``size`` and rescale its vectors to the new grid."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device)
    return out * scale.view(1, 2, 1, 1)


class SegmentationWarp(nn.Module):
    """Module form of ``backward_warp`` (a top-level child of ``GSVNet`` for runtime breakdowns)."""

    def forward(self, seg: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return backward_warp(seg, flow)


# --- O: lightweight flow network (appendix C, Fig. A8) -----------------------------------------
def _conv_bn_lrelu(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))


class LightFlowNet(nn.Module):
    """Fig. A8: cat(I_{t-1}, I_t) at 1/8 -> two 3x3 stride-2 convs -> hierarchical feature fusion
    block (dilations 1, 2, 4, 8, each output added to the previous one, 1x1 merge of the four,
    plus the input) -> 3x3 conv to 2 channels at 1/32 -> bilinear resize to the 1/8 grid.

    Output: backward flow ``m_t`` (N, 2, h, w) in pixels of the 1/8 grid (I_t -> I_{t-1}).
    """

    def __init__(self, width: int = 32, in_channels: int = 3):
        super().__init__()
        c = 2 * width
        self.down = nn.Sequential(_conv_bn_lrelu(2 * in_channels, width, stride=2), _conv_bn_lrelu(width, c, stride=2))
        self.dilated = nn.ModuleList(_conv_bn_lrelu(c, c, dilation=d) for d in (1, 2, 4, 8))
        self.merge = _conv_bn_lrelu(4 * c, c, k=1)
        self.to_flow = nn.Conv2d(c, 2, 3, padding=1)

    def forward(self, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        x = self.down(torch.cat((prev, cur), dim=1))
        outs, acc = [], 0
        for conv in self.dilated:  # hierarchical fusion: y_k = d_k(x) + y_{k-1}
            acc = conv(x) + acc
            outs.append(acc)
        x = self.merge(torch.cat(outs, dim=1)) + x
        return F.interpolate(self.to_flow(x), size=prev.shape[-2:], mode="bilinear", align_corners=False)


# --- Sec. 3.4.1: ideal-delay kernels -----------------------------------------------------------
def ideal_delay_offsets(kernel_size: int = 3) -> list[tuple[int, int]]:
    """Offsets ``(dy, dx)`` of the ideal-delay kernels, identity first.

    3 -> 9 (identity + the 8 one-pixel neighbours); 5 -> 17 (those 9 + the 8 two-pixel ones at
    ``{-2, 0, 2}^2``: Table A6's "17 out of 25 possible patterns").
    """
    if kernel_size == 3:
        radii = (1,)
    elif kernel_size == 5:
        radii = (1, 2)
    else:
        raise ValueError(f"ideal-delay kernel_size must be 3 or 5, got {kernel_size}")
    offsets = [(0, 0)]
    for r in radii:
        offsets += [(dy, dx) for dy in (-r, 0, r) for dx in (-r, 0, r) if (dy, dx) != (0, 0)]
    return offsets


class IdealDelayKernels(nn.Module):
    """``f_{t,d} = S ⊗ theta_d`` (Sec. 3.4.1): D one-hot K x K kernels applied to every class
    channel. Kernel d with offset ``(dy, dx)`` gives ``out(c, y, x) = S(c, y + dy, x + dx)``
    (zero outside the map). ``learned=True`` makes the kernels trainable, initialised to the
    ideal delays (Table A5's "fine-tuned kernels")."""

    def __init__(self, kernel_size: int = 3, learned: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.offsets = ideal_delay_offsets(kernel_size)
        k, r = kernel_size, kernel_size // 2
        weight = torch.zeros(len(self.offsets), 1, k, k)
        for d, (dy, dx) in enumerate(self.offsets):
            weight[d, 0, r + dy, r + dx] = 1.0
        if learned:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)

    @property
    def num_filters(self) -> int:
        return len(self.offsets)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, D, h, w): the D shifted copies of every class channel."""
        n, c, h, w = seg.shape
        out = F.conv2d(seg.reshape(n * c, 1, h, w), self.weight.to(seg.dtype), padding=self.kernel_size // 2)
        return out.view(n, c, self.num_filters, h, w)


# --- Sec. 3.4.2: intra-frame network phi -------------------------------------------------------
class IntraNet(nn.Module):
    """phi: three 3x3 convs on the 1/8 current frame (3 -> width -> width -> C; BN + ReLU after the
    first two; no downscaling) -> crude segmentation ``f_t^i`` (N, C, h, w)."""

    def __init__(self, num_classes: int, width: int = 32, in_channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, num_classes, 3, padding=1))

    def forward(self, frame_small: torch.Tensor) -> torch.Tensor:
        return self.net(frame_small)


# --- Sec. 3.4.3: edge map and guiding network --------------------------------------------------
def edge_map(seg: torch.Tensor, mode: str = "sigmoid") -> torch.Tensor:
    """``E_t = sigmoid(argmax(S_t^-) ⊗ M)`` with the 8-neighbour Laplacian M (centre -8), as the
    paper writes it; ``mode="binary"`` = the authors' code: 1 where the response is non-zero.
    Borders are replicated, so the image border is not an edge. (N, C, h, w) -> (N, 1, h, w)."""
    if mode not in ("sigmoid", "binary"):
        raise ValueError(f"edge mode must be 'sigmoid' or 'binary', got {mode!r}")
    ids = seg.argmax(dim=1, keepdim=True).to(seg.dtype)
    lap = torch.ones(1, 1, 3, 3, dtype=seg.dtype, device=seg.device)
    lap[0, 0, 1, 1] = -8.0
    resp = F.conv2d(F.pad(ids, (1, 1, 1, 1), mode="replicate"), lap)
    return torch.sigmoid(resp) if mode == "sigmoid" else (resp != 0).to(seg.dtype)


def normalize_guidance(raw: torch.Tensor) -> torch.Tensor:
    """Unity-gain 1x1 kernels: ``relu(raw) / (sum over the kernel dim + 1e-9)`` (dim 1)."""
    g = F.relu(raw)
    return g / (g.sum(dim=1, keepdim=True) + EPS)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GuidingNetwork(nn.Module):
    """G(f_t^i, E_t): a small U-shaped net (width -> 2w -> 4w down by stride-2 convs, back up by
    bilinear upsampling + convs, added to the first features) -> ``out_channels`` raw weights
    per pixel (normalised by ``normalize_guidance``)."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 32):
        super().__init__()
        self.stem = _conv_bn_relu(in_channels, width)
        self.down = nn.Sequential(_conv_bn_relu(width, 2 * width, 2), _conv_bn_relu(2 * width, 4 * width, 2))
        self.up1 = _conv_bn_relu(4 * width, 2 * width)
        self.up2 = _conv_bn_relu(2 * width, width)
        self.head = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        y = self.down(s)
        y = self.up1(F.interpolate(y, size=_half(s), mode="bilinear", align_corners=False))
        y = self.up2(F.interpolate(y, size=s.shape[-2:], mode="bilinear", align_corners=False))
        return self.head(s + y)


def _half(x: torch.Tensor) -> tuple[int, int]:
    """Spatial size after one 3x3 stride-2 conv with padding 1."""
    h, w = x.shape[-2:]
    return (h + 1) // 2, (w + 1) // 2


def guided_filter(chunks: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``S_t,c(p) = <Gamma_hat(p), chunk_c(p)>``; chunks (N, C, K, h, w), guidance (N, K, h, w)."""
    return (chunks * guidance.unsqueeze(1)).sum(dim=2)  # faster than einsum on CPU here


class GuidedSVConv(nn.Module):
    """The fusion of Fig. 2: ideal-delay kernels + guiding network + Eq. 2.

    ``use_intra=False`` (Table 4's "without intra features"): no intra chunk, the guide sees the
    softmax of ``S_t^-`` and E instead of ``f_t^i`` and E, and emits D weights.
    """

    def __init__(self, num_classes: int, kernel_size: int = 3, learned_kernels: bool = False,
                 guide_width: int = 32, edge: str = "sigmoid", use_intra: bool = True):
        super().__init__()
        edge_map(torch.zeros(1, 1, 1, 1), edge)  # validate the mode early
        self.edge, self.use_intra = edge, use_intra
        self.delay = IdealDelayKernels(kernel_size, learned_kernels)
        self.num_weights = self.delay.num_filters + int(use_intra)
        self.guide = GuidingNetwork(num_classes + 1, self.num_weights, guide_width)

    def forward(self, warped: torch.Tensor, intra: Optional[torch.Tensor] = None) -> dict:
        edge = edge_map(warped, self.edge)
        context = intra if self.use_intra else warped.softmax(dim=1)
        if context is None:
            raise ValueError("GuidedSVConv(use_intra=True) needs the intra prediction")
        guidance = normalize_guidance(self.guide(torch.cat((context, edge), dim=1)))
        chunks = self.delay(warped)
        if self.use_intra:
            chunks = torch.cat((chunks, intra.unsqueeze(2)), dim=2)
        return {"out": guided_filter(chunks, guidance), "guidance": guidance, "edge": edge}


# --- PF: the whole non-keyframe step -----------------------------------------------------------
class GSVNet(nn.Module):
    """PF of Fig. 2. Children (the parts of Fig. A9's breakdown): ``flownet``, ``warp``,
    ``intra``, ``fusion``. Frames are normalised (N, 3, H, W) images; the segmentation lives on
    the 1/8 grid ``(H // 8, W // 8)``."""

    def __init__(self, num_classes: int = 19, kernel_size: int = 3, learned_kernels: bool = False,
                 flow_width: int = 32, intra_width: int = 32, guide_width: int = 32,
                 edge: str = "sigmoid", use_intra: bool = True, stride: int = 8):
        super().__init__()
        if num_classes < 1 or stride < 1:
            raise ValueError(f"need num_classes >= 1 and stride >= 1, got {num_classes}, {stride}")
        self.num_classes, self.stride = num_classes, stride
        self.flownet = LightFlowNet(flow_width)
        self.warp = SegmentationWarp()
        self.intra = IntraNet(num_classes, intra_width) if use_intra else None
        self.fusion = GuidedSVConv(num_classes, kernel_size, learned_kernels, guide_width, edge, use_intra)

    def grid_size(self, frame: torch.Tensor) -> tuple[int, int]:
        """The 1/8 grid of a full-resolution frame."""
        h, w = frame.shape[-2:]
        return max(h // self.stride, 1), max(w // self.stride, 1)

    def downscale(self, frame: torch.Tensor) -> torch.Tensor:
        return F.interpolate(frame, size=self.grid_size(frame), mode="bilinear", align_corners=False)

    def forward(self, prev_seg: torch.Tensor, prev_frame: torch.Tensor, cur_frame: torch.Tensor,
                flow: Optional[torch.Tensor] = None) -> dict:
        """One non-keyframe step. ``prev_seg`` (N, C, h, w) logits on the 1/8 grid; ``flow``: an
        optional external backward flow (N, 2, H', W') in pixels of its own grid (e.g. the world's
        exact ``flow_bw`` at full resolution), used instead of the flow network.

        Returns ``{"out", "warped", "flow", "intra", "guidance", "edge"}`` on the 1/8 grid."""
        size = self.grid_size(cur_frame)
        if prev_seg.shape[-2:] != size:
            raise ValueError(f"prev_seg must be on the 1/{self.stride} grid {size}, got {tuple(prev_seg.shape[-2:])}")
        cur_small = self.downscale(cur_frame)
        if flow is None:
            flow = self.flownet(self.downscale(prev_frame), cur_small)
        elif flow.shape[-2:] != size:
            flow = resize_flow(flow, size)
        warped = self.warp(prev_seg, flow)
        intra = self.intra(cur_small) if self.intra is not None else None
        fused = self.fusion(warped, intra)
        return {"out": fused["out"], "warped": warped, "flow": flow, "intra": intra,
                "guidance": fused["guidance"], "edge": fused["edge"]}


def nonkey_complexity(model: GSVNet, frame_size: tuple[int, int] = (1024, 2048)) -> dict:
    """Parameters (count, bytes, per part) and multiply-adds of one non-keyframe step at
    ``frame_size`` (counted on the meta device with torch's FlopCounterMode)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from paperlib.profiling import count_parameters

    n, nbytes = count_parameters(model)
    parts = {name: count_parameters(child)[0] for name, child in model.named_children()}
    parts["guide"] = count_parameters(model.fusion.guide)[0]
    net = copy.deepcopy(model).to("meta").eval()
    h, w = frame_size
    frames = torch.empty(1, 3, h, w, device="meta")
    seg = torch.empty(1, model.num_classes, *net.grid_size(frames), device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(seg, frames, frames)
    return {"params": n, "bytes": nbytes, "params_by_part": parts,
            "macs": counter.get_total_flops() // 2, "frame_size": (h, w)}


# --- profiling helpers (Fig. A9 breakdown, keyframe-loop throughput) ----------------------
NONKEY_PARTS = ("flownet", "warp", "intra", "fusion")


class NonkeyStep(nn.Module):
    """One PF step on fixed inputs, ``forward(cur_frame)``, with PF's parts as its children so that
    ``runtime_breakdown`` can hook them (PF itself is held outside the module tree)."""

    def __init__(self, pf: GSVNet, prev_seg: torch.Tensor, prev_frame: torch.Tensor):
        super().__init__()
        object.__setattr__(self, "pf", pf)
        for name in NONKEY_PARTS:
            setattr(self, name, getattr(pf, name))
        self.prev_seg, self.prev_frame = prev_seg, prev_frame

    def forward(self, cur_frame: torch.Tensor) -> torch.Tensor:
        return self.pf(self.prev_seg, self.prev_frame, cur_frame)["out"]


def nonkey_breakdown(pf: GSVNet, frame: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Fig. A9: seconds per part of one non-keyframe step (median of ``repeats`` hooked passes);
    keys ``flownet, warp, intra, fusion, other`` (other = frame downscaling) and ``total``."""
    seg = torch.zeros(1, pf.num_classes, *pf.grid_size(frame), device=frame.device)
    step = NonkeyStep(pf, seg, frame).eval()
    with torch.no_grad():
        step(frame)  # warm-up
    out = runtime_breakdown(step, frame, repeats=repeats)
    out["other"] = out.pop("(other)")
    return out


def interval_fps(t_key: float, t_nonkey: float, interval: int) -> float:
    """Frames/s of the keyframe loop at interval l: one key + (l - 1) non-key steps per l frames."""
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    return interval / (t_key + (interval - 1) * t_nonkey)
