"""Model size and speed: parameters (count and bytes), FLOPs / multiply-adds, latency, breakdown.

The papers mix units, so every number here says what it is:

* ``count_parameters`` -> ``(n, bytes)``; GSVNet's Table 2 reports *bytes* ("47.2M" for
  SwiftNet-R18 = 11.8M fp32 parameters x 4 bytes).
* ``count_flops`` -> :class:`FlopCount` with ``flops`` (torch's ``FlopCounterMode``: 2 per
  multiply-add of every convolution / matmul, forward pass only; elementwise ops, BatchNorm,
  pooling and interpolation are not counted) and ``macs = flops / 2`` (multiply-adds). Papers that
  say "GFLOPs" for real-time networks usually mean G multiply-adds: SwiftNet's "104 GFLOPs" at
  1024x2048 is 103.6 G multiply-adds as counted here.
* ``measure_latency`` -> median wall time of a forward pass over ``repeats`` after ``warmup``
  passes (``torch.cuda.synchronize`` around each timed pass on GPU), and the FPS it implies.
* ``runtime_breakdown`` -> time spent in each top-level submodule (forward hooks), for GSVNet's
  Figure A9-style breakdowns.
"""
from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from collections import defaultdict
from typing import Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> tuple[int, int]:
    """``(number of parameters, bytes they occupy)`` (shared tensors counted once; buffers such
    as BatchNorm running statistics are not parameters and are excluded)."""
    seen, n, nbytes = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
        nbytes += p.numel() * p.element_size()
    return n, nbytes


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Forward-pass cost at one input size: ``flops`` = 2 x ``macs`` (multiply-adds)."""

    flops: int
    input_size: tuple[int, ...]
    by_module: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def macs(self) -> int:
        """Multiply-adds (= FLOPs / 2): the unit most segmentation papers call "FLOPs"."""
        return self.flops // 2

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def _input_shape(input_size: Sequence[int]) -> tuple[int, ...]:
    """(H, W) -> (1, 3, H, W); (C, H, W) -> (1, C, H, W); 4-d shapes pass through."""
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        size = (1, 3) + size
    elif len(size) == 3:
        size = (1,) + size
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"input_size must be (H, W), (C, H, W) or (N, C, H, W) of positive ints, got {input_size!r}")
    return size


class _TopLevelTimer:
    """Forward hooks on every descendant of the chosen top-level children of ``model``, calling
    ``measure()`` at the outermost entry into and exit from each child's subtree. A model that
    calls a child's submodules directly (e.g. ``self.backbone.layer1(x)``) is still attributed."""

    def __init__(self, model: nn.Module, names: Sequence[str], measure):
        children = dict(model.named_children())
        unknown = [n for n in names if n not in children]
        if unknown:
            raise ValueError(f"{type(model).__name__} has no submodule(s) {unknown}; children: {list(children)}")
        self.names, self.measure = list(names), measure
        self.totals: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)
        self._start: dict[str, float] = {}
        self._handles = []
        for name in self.names:
            for module in children[name].modules():
                self._handles.append(module.register_forward_pre_hook(self._enter(name)))
                self._handles.append(module.register_forward_hook(self._exit(name)))

    def _enter(self, name):
        def hook(_module, _inputs):
            if self._depth[name] == 0:
                self._start[name] = self.measure()
            self._depth[name] += 1
        return hook

    def _exit(self, name):
        def hook(_module, _inputs, _output):
            self._depth[name] -= 1
            if self._depth[name] == 0:
                self.totals[name] += self.measure() - self._start[name]
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def count_flops(model: nn.Module, input_size: Sequence[int], *, device: str = "meta") -> FlopCount:
    """FLOPs of one eval-mode forward pass at ``input_size`` ((H, W) means batch 1, RGB).

    By default the count runs on a copy of the model on the ``meta`` device: no memory for
    activations and no arithmetic, so 1024x2048 counts take about a second per model.
    ``by_module`` holds the FLOPs spent inside each top-level submodule.
    """
    shape = _input_shape(input_size)
    net = copy.deepcopy(model).to("meta") if device == "meta" else model
    was_training = net.training
    net.eval()
    x = torch.empty(shape, device=device) if device == "meta" else torch.zeros(shape, device=device)
    counter = FlopCounterMode(display=False, depth=1)
    timer = _TopLevelTimer(net, [n for n, _ in net.named_children()], counter.get_total_flops)
    try:
        with torch.no_grad(), counter:
            net(x)
    finally:
        timer.remove()
        net.train(was_training)
    by_module = {n: int(timer.totals[n]) for n in timer.names}
    return FlopCount(int(counter.get_total_flops()), shape, by_module)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(model: nn.Module, input_size: Sequence[int], warmup: int = 3, repeats: int = 10,
                    device: Optional[str] = None) -> dict:
    """Median forward latency of ``model`` (eval mode, no grad) at ``input_size``.

    Returns ``{"median_s", "fps", "times_s", "device", "input_size"}`` where ``fps`` counts images
    (batch size / median). ``device`` defaults to the model's (the model is moved there); on
    CUDA every timed pass is bracketed by ``torch.cuda.synchronize``.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    shape = _input_shape(input_size)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval().to(dev)
    x = torch.randn(shape, device=dev)
    times = []
    try:
        for i in range(warmup + repeats):
            _sync(dev)
            t0 = time.perf_counter()
            model(x)
            _sync(dev)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    median = statistics.median(times)
    return {"median_s": median, "fps": shape[0] / median, "times_s": times, "device": str(dev),
            "input_size": shape}


@torch.no_grad()
def runtime_breakdown(model: nn.Module, x: torch.Tensor, repeats: int = 1,
                      modules: Optional[Sequence[str]] = None) -> dict[str, float]:
    """Seconds spent in each top-level submodule during a forward pass of ``x`` (eval mode).

    Forward hooks time every call into each child of ``model`` (or the named ``modules``),
    including direct calls of its submodules; repeated calls are summed. ``"(other)"`` is the rest
    of the pass (functional ops in ``model.forward``), ``"total"`` the whole pass. With
    ``repeats > 1`` each entry is the median over passes. On CUDA the hooks synchronise, so each
    entry is exact but the pass runs slower than without hooks.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    dev = x.device

    def clock() -> float:
        _sync(dev)
        return time.perf_counter()

    names = list(modules) if modules is not None else [n for n, _ in model.named_children()]
    timer = _TopLevelTimer(model, names, clock)
    samples: dict[str, list[float]] = defaultdict(list)
    was_training = model.training
    model.eval()
    try:
        for _ in range(repeats):
            timer.totals.clear()
            t0 = clock()
            model(x)
            total = clock() - t0
            for name in names:
                samples[name].append(timer.totals[name])
            samples["(other)"].append(max(0.0, total - sum(timer.totals[n] for n in names)))
            samples["total"].append(total)
    finally:
        timer.remove()
        model.train(was_training)
    return {name: statistics.median(v) for name, v in samples.items()}


def interleaved_best(fns: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Best (minimum) seconds of each ``fns[name]()``: one warm-up round, then ``repeats`` rounds in
    which every function runs once (interleaving spreads the load of a shared machine evenly)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = {k: [] for k in fns}
    for r in range(repeats + 1):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            if r > 0:
                times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


#: The one speed protocol every FPS row of a GPU table cites (``make gpu``, ``paperlib.gpu_session``).
SPEED_PROTOCOL = {
    "size": (1024, 2048), "batch": 1, "warmup": 10, "frames": 50, "dtypes": ("fp32", "fp16"),
    "cudnn_benchmark": True,
    "text": ("batch 1, 10 warm-up passes, then 50 timed passes, each bracketed by torch.cuda.synchronize; "
             "median time; fp32, and fp16 under torch.autocast; torch.backends.cudnn.benchmark = True; peak "
             "memory from torch.cuda.max_memory_allocated over the timed passes; no grad, eval mode"),
}


@torch.no_grad()
def protocol_speed(model, input_size: Sequence[int], dtype: str = "fp32", inputs: int = 1,
                   module: Optional[nn.Module] = None, protocol: dict = SPEED_PROTOCOL) -> dict:
    """Time ``model`` (a module, or a callable of ``inputs`` tensors whose weights live in
    ``module``) under ``protocol``: ``{"median_ms", "fps", "peak_mem_mb", "frames", "cudnn_benchmark"}``.
    On CPU (tests) the same passes run without synchronisation and ``peak_mem_mb`` is None."""
    if dtype not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"dtype must be fp32, fp16 or bf16, got {dtype!r}")
    owner = module if module is not None else model
    if not isinstance(owner, nn.Module):
        raise ValueError("protocol_speed: pass module= when model is not an nn.Module")
    dev = next(owner.parameters()).device
    owner.eval()
    xs = [torch.randn(_input_shape(input_size), device=dev) for _ in range(inputs)]
    cast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
    ctx = (lambda: torch.autocast(dev.type, dtype=cast)) if cast is not None else (lambda: torch.autocast(dev.type, enabled=False))
    times = []
    for i in range(protocol["warmup"] + protocol["frames"]):
        if i == protocol["warmup"] and dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        _sync(dev)
        t0 = time.perf_counter()
        with ctx():
            model(*xs)
        _sync(dev)
        if i >= protocol["warmup"]:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"median_ms": 1e3 * median, "fps": xs[0].shape[0] / median,
            "peak_mem_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
            "frames": len(times), "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
