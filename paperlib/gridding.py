"""The gridding problem and hybrid dilated convolution, computed (DUC/HDC paper, Sec. 3.2).

A stack of ``k x k`` convolutions with dilation rates ``[r_1, ..., r_n]`` (``r_1`` nearest the
input, stride 1) lets one output pixel see the input offsets

    S = r_1 * {-h..h} + r_2 * {-h..h} + ... + r_n * {-h..h},   h = (k - 1) / 2

(a Minkowski sum; the 2-D set is the product of the 1-D one with itself because the kernels
are square). :func:`coverage` builds that footprint by brute force; "gridding" (Figure 2 (a)) is
a footprint with holes, e.g. rates ``(2, 2, 2)`` see only the even offsets (75% lost).

Eq. 2 is the paper's design rule: with ``M_n = r_n`` and

    M_i = max[M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i],

the "maximum distance between two non-zero values" seen by layers ``2..n`` is ``M_2``, and the
goal is ``M_2 <= K`` so that the first layer fills the gaps. :func:`max_gap` implements Eq. 2
literally; :func:`measured_gap` measures the same quantity on the brute-force footprint.
:func:`hdc_valid` is the paper's rule (``M_2 <= K`` plus Sec. 3.2's "no common factor"
condition); :func:`has_gridding` is the ground truth. On the paper's sawtooth groups (rising
rates) Eq. 2 is exact -- ``M_2`` equals the measured gap, and with ``r_1 = 1`` the rule holds iff
there are no holes (checked exhaustively in the tests for up to 4 layers, rates <= 9) -- but off
the sawtooth it is a heuristic, not an equivalence: it ignores how large
``r_1`` is (``(5, 1)`` passes the rule yet has holes) and over-estimates the gap when a rate
falls (``(1, 5, 1)`` fails the rule yet covers its square) -- the tests and the Figure 2
notebook list such patterns rather than hide them.

The *effective* receptive field (Luo et al., 2016) of a real network is measured by
back-propagating from one output pixel (:func:`effective_receptive_field`); :func:`erf_stats`
summarises it (support inside the theoretical RF, hole fraction = the gridding visible in it).
"""
from __future__ import annotations

from math import gcd
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

Rates = Union[Sequence[int], Mapping[str, Sequence[int]]]


# --- theoretical footprints -----------------------------------------------------------------
def _check_rates(rates: Rates, kernel: int = 3, minimum: int = 1) -> list[int]:
    """``rates`` as a flat list of positive ints (a ``{"layer3": [...], "layer4": [...]}`` dict is
    flattened in order); ``kernel`` must be an odd int >= 1."""
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
    if isinstance(rates, Mapping):
        rates = [r for layer in rates.values() for r in layer]
    rates = list(rates)
    if len(rates) < minimum or not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool)
                                       and r >= 1 for r in rates):
        raise ValueError(f"rates must be at least {minimum} positive int(s), got {rates!r}")
    return [int(r) for r in rates]


def offsets_1d(rates: Rates, kernel: int = 3) -> np.ndarray:
    """Sorted 1-D offsets (input pixels) that reach one output pixel through the stack:
    the Minkowski sum of ``r_i * {-h..h}`` (Sec. 3.2, the 1-D dilated convolution)."""
    rates = _check_rates(rates, kernel)
    h = (kernel - 1) // 2
    reach = np.zeros(1, dtype=bool)
    reach[0] = True
    for r in rates:  # shift-and-OR over the kernel taps: exact brute force
        width = reach.size + 2 * h * r
        nxt = np.zeros(width, dtype=bool)
        for t in range(kernel):
            nxt[t * r: t * r + reach.size] |= reach
        reach = nxt
    return np.flatnonzero(reach) - (reach.size - 1) // 2


def coverage(rates: Rates, kernel: int = 3) -> np.ndarray:
    """The exact footprint of one output pixel of a stack of ``kernel x kernel`` convolutions
    with dilation ``rates`` (Figure 2): a square bool array of side ``receptive_field(rates)``
    centred on the output pixel, True where an input pixel contributes. Brute force: every
    layer ORs ``kernel^2`` shifted copies of the previous footprint."""
    rates = _check_rates(rates, kernel)
    h = (kernel - 1) // 2
    reach = np.ones((1, 1), dtype=bool)
    for r in rates:
        n = reach.shape[0] + 2 * h * r
        nxt = np.zeros((n, n), dtype=bool)
        for ty in range(kernel):
            for tx in range(kernel):
                nxt[ty * r: ty * r + reach.shape[0], tx * r: tx * r + reach.shape[1]] |= reach
        reach = nxt
    return reach


def receptive_field(rates: Rates, kernel: int = 3) -> int:
    """Side of the theoretical receptive field: ``1 + (k - 1) * sum(r_i)`` (Sec. 3.2: a dilated
    kernel spans ``k_d = k + (k - 1)(r - 1)`` pixels; stride 1 stacks add ``k_d - 1`` each)."""
    rates = _check_rates(rates, kernel)
    return 1 + (kernel - 1) * sum(rates)


def has_gridding(rates: Rates, kernel: int = 3) -> bool:
    """True when the footprint has holes inside its square (ground truth for Eq. 2's rule)."""
    offs = offsets_1d(rates, kernel)
    return bool(offs.size != offs[-1] - offs[0] + 1)


def hole_fraction(rates: Rates, kernel: int = 3) -> float:
    """Fraction of the receptive-field square whose pixels do not contribute: ``1 - (|S| / RF)^2``
    (Sec. 3.2: "at least 75% when r = 2"; (2, 2, 2) gives 1 - (7/13)^2 = 0.71 on its 13x13 square)."""
    offs = offsets_1d(rates, kernel)
    side = offs[-1] - offs[0] + 1
    return float(1.0 - (offs.size / side) ** 2)


def max_gap(rates: Rates, kernel: int = 3) -> int:
    """``M_2`` of Eq. 2 (Sec. 3.2): the maximum distance between two non-zero values seen by
    layers ``2..n``, by the recursion ``M_i = max[M_{i+1} - 2 r_i, M_{i+1} - 2(M_{i+1} - r_i), r_i]``
    with ``M_n = r_n``. The paper states Eq. 2 for 3x3 kernels (the factor 2); needs n >= 2."""
    rates = _check_rates(rates, kernel, minimum=2)
    if kernel != 3:
        raise ValueError(f"Eq. 2 (max_gap) is stated for kernel 3, got kernel={kernel}")
    m = rates[-1]
    for r in reversed(rates[1:-1]):
        m = max(m - 2 * r, m - 2 * (m - r), r)
    return int(m)


def measured_gap(rates: Rates, kernel: int = 3) -> int:
    """The quantity Eq. 2 estimates, measured: the largest distance between consecutive
    contributing offsets of layers ``2..n`` (brute force; 1 means no holes). Needs n >= 2."""
    rates = _check_rates(rates, kernel, minimum=2)
    offs = offsets_1d(rates[1:], kernel)
    return int(np.diff(offs).max()) if offs.size > 1 else 1


def hdc_valid(rates: Rates, kernel: int = 3) -> bool:
    """The paper's HDC rule (Sec. 3.2): ``M_2 <= K`` (Eq. 2) and the rates share no common
    factor ("like 2, 4, 8 ... otherwise the gridding problem will still hold"). A design rule:
    see the module docstring for where it disagrees with :func:`has_gridding`."""
    rates = _check_rates(rates, kernel, minimum=2)
    common = 0
    for r in rates:
        common = gcd(common, r)
    return max_gap(rates, kernel) <= kernel and common == 1


def rf_increase(rates: Rates, baseline: Optional[Rates] = None, kernel: int = 3, stride: int = 1) -> int:
    """Table 2's "RF increased": "the total size of receptive field increase along a single
    dimension compared to the layer before the dilation operation" (Sec. 4.1).

    One 3x3 conv with rate ``r`` widens the RF by ``(k - 1) r`` feature pixels, ``(k - 1)(r - 1)``
    more than without dilation. With ``baseline=None`` this returns the total widening that the
    dilation adds over the same convolutions undilated, ``(k - 1) * sum(r_i - 1)`` -- 0 for "No
    dilation", the reading under which that row is the reference; pass ``baseline`` (rates of the
    same length, e.g. DeepLab-v2's 2s and 4s) for the increase over another pattern. ``stride``
    converts feature pixels to input pixels (8 at output stride 8). ``rates`` may be a layer dict
    such as :func:`paperlib.models.backbones.hdc_block_rates` returns (one 3x3 conv per block)."""
    rates = _check_rates(rates, kernel)
    base = [1] * len(rates) if baseline is None else _check_rates(baseline, kernel)
    if len(base) != len(rates):
        raise ValueError(f"baseline has {len(base)} rates, rates has {len(rates)}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    return int((kernel - 1) * (sum(rates) - sum(base)) * stride)


# --- effective receptive field ----------------------------------------------------------------
def _output_tensor(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        return out["out"] if "out" in out else list(out.values())[-1]
    if isinstance(out, (tuple, list)):
        return out[0]
    raise ValueError(f"effective_receptive_field: model returned {type(out).__name__}, expected a tensor")


def effective_receptive_field(model: Union[nn.Module, Callable], input_size: Sequence[int], *,
                              channels: int = 3, n_samples: int = 4, batch_size: int = 4,
                              position: Optional[Sequence[int]] = None, seed: int = 0,
                              inputs: Optional[torch.Tensor] = None) -> np.ndarray:
    """Effective receptive field (Luo et al., 2016): ``|d y_c(p) / d x|`` for one output pixel
    ``p`` (default the centre), summed over output channels ``c``, input channels and
    ``n_samples`` standard-normal inputs of shape ``(channels, *input_size)``; returns an
    ``input_size`` float64 map normalised to max 1 (all zeros if no gradient reaches the input).

    ``model`` maps ``(N, C, H, W)`` to a tensor ``(N, C', H', W')`` (or a dict with ``"out"``,
    or a tuple); it is run as is (call ``.eval()`` first to freeze BatchNorm statistics). Pass
    ``inputs`` to use real images instead of noise. To see gridding exactly, apply it to the
    dilated stages alone (e.g. ``nn.Sequential(backbone.layer3, backbone.layer4)`` on a
    ``layer2``-shaped input), where one feature pixel is one input pixel.
    """
    if len(input_size) != 2 or min(int(s) for s in input_size) < 1:
        raise ValueError(f"input_size must be (H, W) positive ints, got {input_size!r}")
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be >= 1, got {n_samples}, {batch_size}")
    h, w = (int(s) for s in input_size)
    if inputs is None:
        gen = torch.Generator().manual_seed(int(seed))
        inputs = torch.randn(n_samples, channels, h, w, generator=gen)
    elif inputs.dim() != 4 or tuple(inputs.shape[-2:]) != (h, w):
        raise ValueError(f"inputs must be (N, C, {h}, {w}), got {tuple(inputs.shape)}")
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    device = params[0].device if params else torch.device("cpu")
    total = torch.zeros(h, w, dtype=torch.float64)
    for start in range(0, inputs.shape[0], batch_size):
        x = inputs[start:start + batch_size].to(device).clone().requires_grad_(True)
        y = _output_tensor(model(x))
        if y.dim() != 4:
            raise ValueError(f"effective_receptive_field: model output must be (N, C, H, W), got {tuple(y.shape)}")
        py, px = (y.shape[-2] // 2, y.shape[-1] // 2) if position is None else (int(p) for p in position)
        if not (0 <= py < y.shape[-2] and 0 <= px < y.shape[-1]):
            raise ValueError(f"position {(py, px)} outside the output of size {tuple(y.shape[-2:])}")
        (grad,) = torch.autograd.grad(y[:, :, py, px].sum(), x)
        total += grad.abs().sum(dim=(0, 1)).double().cpu()
    peak = total.max()
    return (total / peak).numpy() if peak > 0 else total.numpy()


def erf_stats(erf: np.ndarray, rf: Optional[int] = None, *, eps: float = 1e-6) -> dict[str, float]:
    """Summary of an ERF map (:func:`effective_receptive_field`, max 1):

    * ``support``: pixels with gradient > ``eps`` (their count);
    * ``rf_fraction``: that support divided by the theoretical RF square ``rf x rf`` (clipped to
      the map) centred on the map's centre of mass -- "how much of the RF is used";
    * ``hole_fraction``: zero-gradient pixels inside the bounding box of the support (the
      gridding/checkerboard visible in the ERF: ~0.75 for a rate-2 grid, ~0 for HDC);
    * ``radius50``: radius (pixels) of the centred disc holding half the gradient mass.
    """
    erf = np.asarray(erf, dtype=np.float64)
    if erf.ndim != 2:
        raise ValueError(f"erf must be a 2-D map, got shape {erf.shape}")
    mask = erf > eps
    out = {"support": float(mask.sum()), "rf_fraction": float("nan"), "hole_fraction": float("nan"),
           "radius50": float("nan")}
    if not mask.any():
        return out
    ys, xs = np.nonzero(mask)
    box = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    out["hole_fraction"] = float(1.0 - box.mean())
    mass = erf.sum()
    yy, xx = np.indices(erf.shape)
    cy, cx = (yy * erf).sum() / mass, (xx * erf).sum() / mass
    if rf is not None:  # the square around the (rounded) centre of mass
        cy, cx, half = round(cy), round(cx), (int(rf) - 1) / 2
        inside = (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
        out["rf_fraction"] = float((mask & inside).sum() / max(inside.sum(), 1))
    dist = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(dist)
    cum = np.cumsum(erf.ravel()[order])
    out["radius50"] = float(dist[order][np.searchsorted(cum, 0.5 * mass)])
    return out


__all__ = ["offsets_1d", "coverage", "receptive_field", "has_gridding", "hole_fraction", "max_gap",
           "measured_gap", "hdc_valid", "rf_increase", "effective_receptive_field", "erf_stats"]
