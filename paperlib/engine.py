"""The one training / evaluation loop every notebook, the CLI and ``torchrun`` use.

A flat loop in the style of torchvision's references/segmentation, driven by a
``paperlib.config.TrainConfig``::

    out = train(cfg)                       # model, datasets, loss: all built from cfg
    out = train(cfg, model=m, train_set=ds_train, val_set=ds_val)
    out["metrics"]["miou"], out["model"], out["history"]

    metrics = evaluate(model, ds_val, num_classes=19, mode="slide", crop=512, flip=True)

What it guarantees:

- **Optimisation**: SGD (momentum 0.9, weight decay 1e-4) or Adam; poly schedule
  ``lr * (1 - t / T) ** power`` per iteration or per epoch, optional linear warm-up (``lr_at``).
- **Precision**: on CUDA bf16 autocast (default) or fp16 with a ``GradScaler``; optional
  channels_last. CPU runs float32.
- **DDP**: under ``torchrun`` (env ``RANK`` / ``WORLD_SIZE``) it joins the process group (nccl on
  CUDA, gloo on CPU), converts BatchNorm to synchronized BatchNorm (``torch.nn.SyncBatchNorm`` on
  CUDA, ``CPUSyncBatchNorm`` on gloo) and wraps the model in ``DistributedDataParallel``; each rank
  takes ``batch_size / world_size`` samples of the same epoch plan. The result matches one process
  with the same global batch up to float summation order (tested) -- exactly so when every crop
  has the same number of non-ignored pixels, since each rank averages its loss over its own pixels.
- **Crop schedules** (self-training / CSST Sec. 3.3): with ``cfg.crop_sizes`` each epoch trains
  at its own crop size (``paperlib.schedules.crop_schedule``) and, with
  ``batch_scaling``, batch size; the loader is rebuilt per epoch, the poly schedule follows epoch
  progress (``lr_at``), and checkpoints / resume / DDP work unchanged.
- **Reproducibility**: sample ``k`` of epoch ``e`` is loaded (and augmented) with RNGs seeded
  from ``(seed, e, k)``, whatever the number of workers or ranks, so the same config gives the
  same weights and a resumed run continues exactly (tested bitwise on CPU).
- **Checkpoints** (``<out_dir>/last.pt``, temp file + ``os.replace``) hold model, optimizer,
  scaler, sampler position, every rank's RNG states, step and epoch; ``resume=True`` continues
  from it. They load with ``torch.load(weights_only=True)``.
- **Failure**: a non-finite loss raises ``NonFiniteLossError`` naming the step; under fp16 the
  grad scaler skips such steps instead and they are counted in ``skipped_steps``.
- **Logs**: tqdm bar (rank 0), ``<out_dir>/log.jsonl`` (one JSON record per step / evaluation)
  and ``<out_dir>/config.json``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

from .atomic import atomic_path, atomic_write_text
from .config import EVAL_MODES, ConfigError, TrainConfig
from .losses import build_loss, main_logits

CKPT_NAME = "last.pt"
LOG_NAME = "log.jsonl"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


# =============================================================================================
# Devices and processes
# =============================================================================================
@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this call created the process group (and destroys it at the end)

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` -> this process's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config field 'device' = {name!r} but CUDA is not available")
    return torch.device(f"cuda:{local_rank}" if name == "cuda" else name)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group ``torchrun`` describes (env RANK / WORLD_SIZE), if any."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or "RANK" not in os.environ:
        return DistInfo()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=True)


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with statistics over the global batch of all ranks, for the gloo backend
    (``torch.nn.SyncBatchNorm`` only runs on GPUs).

    Two differentiable all-reduces per layer: (sum, count) for the mean, then the summed squared
    deviations for the (biased) variance; autograd sends the gradients of the statistics back
    through the same all-reduces, which is what makes it equal to BatchNorm over the global batch.
    Outside training or without a process group it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        dims = [0] + list(range(2, x.dim()))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        local_n = x.new_tensor([x.numel() / x.shape[1]])
        sums = all_reduce(torch.cat([x.sum(dims), local_n]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / max(float(count) - 1, 1.0), m)
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm -> synchronized BatchNorm (torch's on CUDA, ``CPUSyncBatchNorm`` on CPU)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    out = model
    if isinstance(model, nn.modules.batchnorm._BatchNorm) and not isinstance(model, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(model.num_features, model.eps, model.momentum, model.affine,
                               model.track_running_stats)
        out.load_state_dict(model.state_dict())
        out.train(model.training)
    for name, child in model.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out


def _autocast(device: torch.device, amp: str):
    """bf16 / fp16 autocast on CUDA; a no-op on CPU or with ``amp="off"``."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


# =============================================================================================
# Schedule
# =============================================================================================
def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int,
          progress: float | None = None) -> float:
    """Learning rate before optimiser step ``step`` (0-based).

    Poly policy ``lr * (1 - t / T) ** power`` (VPLR Sec. 4.1, power 1.0; self-training Sec. 4,
    power 0.9) with t/T = step / total_steps (``lr_step="iter"``) or epoch / epochs
    (``"epoch"``, constant within an epoch); during the first ``warmup_steps`` steps it is also
    multiplied by a linear ramp from ``warmup_start`` to 1.

    When epochs differ in length (a crop schedule with batch scaling) the caller passes
    ``progress``, the epochs done so far (``epoch + in_epoch / steps_of_this_epoch``), and t/T is
    ``progress / cfg.epochs`` (``floor(progress) / cfg.epochs`` per epoch): an epoch of few large
    batches advances the schedule as much as an epoch of many small ones, as in the papers'
    per-epoch poly policy. With equal epochs this is exactly step / total_steps.
    """
    if progress is not None:
        frac = (math.floor(progress) if cfg.lr_step == "epoch" else progress) / cfg.epochs
    elif cfg.lr_step == "epoch":
        frac = (step // steps_per_epoch) / math.ceil(total_steps / steps_per_epoch)
    else:
        frac = step / total_steps
    factor = max(0.0, 1.0 - frac) ** cfg.poly_power
    if step < cfg.warmup_steps:
        factor *= cfg.warmup_start + (1.0 - cfg.warmup_start) * step / cfg.warmup_steps
    return cfg.lr * factor


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


# =============================================================================================
# Data
# =============================================================================================
class SeededView(Dataset):
    """Loads sample ``(k, key)`` of epoch ``epoch`` with torch/numpy/python RNGs seeded from
    ``(seed, epoch, k)``; ``k`` is the sample's position in the global epoch plan.

    Augmentations therefore depend on neither the worker that loads a sample, nor the rank, nor
    whether the run was resumed. The caller's RNG states are restored afterwards.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, pos_key):
        pos, key = pos_key
        s = np.random.SeedSequence([self.seed, self.epoch, int(pos)]).generate_state(2)
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s[0]))
            np.random.seed(int(s[1]))
            random.seed(int(s[0]))
            try:
                return self.dataset[key]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)


class EpochSampler(Sampler):
    """One epoch of ``base`` as ``(global position, key)`` pairs, starting at position ``start``.

    ``skip`` keys of ``base`` are dropped first (for samplers that restart every epoch from the
    beginning, e.g. ``DistributedSampler``); samplers that resume themselves use ``skip=0``.
    Rank ``r`` of ``w`` holds plan rows ``r::w``, so its ``j``-th key is global position ``j*w + r``.
    """

    def __init__(self, base: Sampler, rank: int, world: int, start: int = 0, skip: int = 0):
        self.base, self.rank, self.world, self.start, self.skip = base, rank, world, start, skip

    def __iter__(self):
        for j, key in enumerate(self.base):
            if j >= self.skip:
                yield ((self.start + j - self.skip) * self.world + self.rank, key)

    def __len__(self) -> int:
        return max(0, len(self.base) - self.start)


def collate(items: list[dict]) -> dict:
    """``default_collate`` over the keys every item has (e.g. ``centroid`` only on some)."""
    keys = [k for k in items[0] if all(k in it for it in items[1:])]
    return torch.utils.data.default_collate([{k: it[k] for k in keys} for it in items])


#: ``sampler_options`` keys that go to ``build_centroid_index`` (the rest go to the sampler).
INDEX_OPTIONS = ("mode", "tile", "min_pixels", "workers", "cache_dir", "cache")


def build_sampler(cfg: TrainConfig, dataset, rank: int, world: int) -> Sampler:
    """``random``: ``DistributedSampler``; ``class_uniform`` (VPLR Sec. 4.1, per-tile centroids)
    / ``centroid`` (CSST Sec. 3.2, connected-component centroids): the DDP-aware samplers of
    ``paperlib.data.samplers`` over a centroid index, built by rank 0 first and then read from
    its on-disk cache by the other ranks.

    A dataset with ``mix_counts`` (``paperlib.selftrain.pipeline.mix_real_pseudo``) fixes how
    many samples of each part (real, pseudo) every epoch holds: ``random`` then gives a
    ``MixSampler``, ``centroid`` a ``CentroidSampler`` with ``real_pseudo_ratio=mix_counts``."""
    mix = getattr(dataset, "mix_counts", None)
    if cfg.sampler == "random" and mix is not None:
        from .data.samplers import MixSampler
        return MixSampler(dataset.source, mix, seed=cfg.seed, num_replicas=world, rank=rank)
    if cfg.sampler == "random":
        return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    from .data import samplers
    opts = dict(cfg.sampler_options)
    if mix is not None:
        if cfg.sampler != "centroid":
            raise ConfigError(f"config field 'sampler' = {cfg.sampler!r} cannot keep a real:pseudo "
                              "mix; use 'random' or 'centroid'")
        opts.setdefault("real_pseudo_ratio", tuple(mix))
        opts.setdefault("num_samples", int(sum(mix)))
    index_opts = {k: opts.pop(k) for k in INDEX_OPTIONS if k in opts}
    index_opts.setdefault("mode", "tiles" if cfg.sampler == "class_uniform" else "components")
    if world > 1 and rank != 0:
        dist.barrier()
    index = samplers.build_centroid_index(dataset, cfg.num_classes, progress=cfg.progress and rank == 0,
                                          **index_opts)
    if world > 1 and rank == 0:
        dist.barrier()
    cls = samplers.ClassUniformSampler if cfg.sampler == "class_uniform" else samplers.CentroidSampler
    return cls(dataset, index, seed=cfg.seed, num_replicas=world, rank=rank, **opts)


def epoch_plan(cfg: TrainConfig, world: int = 1) -> list[tuple[int, int]] | None:
    """``(crop, global batch)`` of every epoch when the config has a crop schedule (self-training /
    CSST Sec. 3.3, ``paperlib.schedules``), else None. With ``batch_scaling`` the batch
    grows as the crop shrinks (``batch_for_crop``, a multiple of the ``world`` processes)."""
    if not cfg.crop_sizes:
        return None
    from .schedules import batch_for_crop, crop_schedule
    crops = crop_schedule(cfg.crop_schedule, cfg.epochs, cfg.crop_sizes, cfg.crop_warmup_epochs,
                          cfg.crop_period)
    if not cfg.batch_scaling:
        return [(c, cfg.batch_size) for c in crops]
    base, most = max(cfg.crop_sizes), cfg.max_batch_size or 4 * cfg.batch_size
    return [(c, batch_for_crop(c, base, cfg.batch_size, most, multiple_of=world)) for c in crops]


def set_crop_size(dataset, size: int | tuple[int, int]) -> int:
    """Set the size of every ``paperlib.data.transforms.RandomCrop`` reachable from ``dataset``
    (its ``transform``, through wrapper datasets such as ``Subset`` / ``ConcatDataset`` / a
    real + pseudo mix); returns how many crops it changed (0: nothing to schedule)."""
    from .data.transforms import RandomCrop
    size, seen, changed = _pair(size), set(), 0

    def visit(obj) -> None:
        nonlocal changed
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, RandomCrop):
            obj.size, changed = size, changed + 1
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                if isinstance(v, Dataset) or (callable(v) and not isinstance(v, type)):
                    visit(v)
        elif isinstance(obj, Dataset) or hasattr(obj, "transforms"):
            for v in getattr(obj, "__dict__", {}).values():
                if isinstance(v, (Dataset, list, tuple)) or (callable(v) and hasattr(v, "__dict__")
                                                             and not isinstance(v, type)):
                    visit(v)

    visit(dataset)
    return changed


def build_datasets(cfg: TrainConfig):
    """(train, val) datasets from the config, with the training / evaluation transforms."""
    from .data import get_dataset
    from .data.transforms import build_eval_transform, build_train_transform
    train_tf = build_train_transform(cfg.crop_size, scale=cfg.scale, flip=cfg.flip, **cfg.transform_options)
    return (get_dataset(cfg, cfg.train_split, train_tf),
            get_dataset(cfg, cfg.val_split, build_eval_transform()))


def _worker_init(worker_id: int) -> None:
    """Workers get distinct, seeded numpy/python RNGs (torch already seeds each worker)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# =============================================================================================
# Checkpoints
# =============================================================================================
def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save`` to a temp file in the same folder, then ``os.replace`` (atomic)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state() -> dict:
    """This process's torch / CUDA / numpy / python RNG states as tensors and plain types."""
    _, key, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
            "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _gather_rng(info: DistInfo) -> list[dict]:
    """Every rank's RNG state (a collective under DDP)."""
    if info.world == 1:
        return [rng_state()]
    states: list = [None] * info.world
    dist.all_gather_object(states, rng_state())
    return states


# =============================================================================================
# Inference
# =============================================================================================
def _pair(v) -> tuple[int, int] | None:
    return None if v is None else (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Model logits as float32 at the resolution of ``x``."""
    y = main_logits(model(x)).float()
    if y.shape[-2:] != x.shape[-2:]:
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return y


def _starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, length - window + 1, stride))
    return starts if starts[-1] == length - window else starts + [length - window]


def _sliding(model: nn.Module, x: torch.Tensor, crop: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Overlapping ``crop`` windows every ``stride`` pixels (the last one flush with the border);
    each pixel's logits are the mean over the windows that cover it."""
    H, W = x.shape[-2:]
    ch, cw = min(crop[0], H), min(crop[1], W)
    out, count = None, x.new_zeros((1, 1, H, W), dtype=torch.float32)
    for y0 in _starts(H, ch, stride[0]):
        for x0 in _starts(W, cw, stride[1]):
            y = _forward(model, x[..., y0:y0 + ch, x0:x0 + cw])
            if out is None:
                out = y.new_zeros((x.shape[0], y.shape[1], H, W))
            out[..., y0:y0 + ch, x0:x0 + cw] += y
            count[..., y0:y0 + ch, x0:x0 + cw] += 1
    return out / count


@torch.no_grad()
def predict_logits(model: nn.Module, image: torch.Tensor, mode: str = "whole",
                   scales: Iterable[float] = (0.5, 1.0, 2.0), flip: bool = False,
                   crop: int | tuple[int, int] | None = None,
                   stride: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Logits (N, C, H, W) float32 at the resolution of ``image`` (N, 3, H, W): the one inference
    function behind ``evaluate``.

    - ``whole``: one forward pass over the full image.
    - ``slide``: overlapping ``crop`` windows, ``stride`` apart (default 2/3 of the window),
      logits averaged where windows overlap.
    - ``multiscale``: the image resized by each of ``scales`` (sliding windows where it exceeds
      ``crop``, if given), logits resized back to full resolution and averaged (the inference of
      VPLR Sec. 4.4 / CSST Sec. 4.6: scales 0.5, 1.0, 2.0, flipped, overlapping tiles).

    ``flip`` adds the horizontally flipped image in every mode (its logits flipped back).
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of: {', '.join(EVAL_MODES)}")
    crop, stride = _pair(crop), _pair(stride)
    if mode == "slide" and crop is None:
        raise ValueError("mode='slide' needs crop (the window size)")
    stride = stride or (crop and (max(1, 2 * crop[0] // 3), max(1, 2 * crop[1] // 3)))
    scales = tuple(scales) if mode == "multiscale" else (1.0,)
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be positive, got {scales}")
    H, W = image.shape[-2:]
    total, n = None, 0
    for s in scales:
        x = image if s == 1.0 else F.interpolate(
            image, size=(max(1, round(H * s)), max(1, round(W * s))), mode="bilinear", align_corners=False)
        tiled = mode != "whole" and crop is not None and (x.shape[-2] > crop[0] or x.shape[-1] > crop[1])
        for flipped in (False, True) if flip else (False,):
            xi = x.flip(-1) if flipped else x
            y = _sliding(model, xi, crop, stride) if tiled else _forward(model, xi)
            y = y.flip(-1) if flipped else y
            if y.shape[-2:] != (H, W):
                y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
            total = y if total is None else total + y
            n += 1
    return total / n


def _shard(dataset: Dataset) -> tuple[Dataset, bool]:
    """This rank's share ``rank::world`` of an evaluation set (no padding, no duplicates)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dataset, False
    idx = list(range(dist.get_rank(), len(dataset), dist.get_world_size()))
    return torch.utils.data.Subset(dataset, idx), True


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset | DataLoader, num_classes: int, mode: str = "whole",
             scales: Iterable[float] = (0.5, 1.0, 2.0), flip: bool = False,
             crop: int | tuple[int, int] | None = None, stride: int | tuple[int, int] | None = None,
             device: str | torch.device | None = None, amp: str = "off", ignore_index: int = 255,
             channels_last: bool = False, progress: bool = False) -> dict:
    """mIoU, per-class IoU and pixel accuracy of ``model`` on ``data`` (items: normalised float
    ``image`` (3, H, W) and int64 ``label`` (H, W)), through ``predict_logits``.

    A dataset is loaded one image at a time; under DDP each rank evaluates its shard and the
    confusion matrices are summed. A ``DataLoader`` is used as given (shard it yourself).
    Returns ``{"miou", "per_class_iou", "pixel_accuracy", "confusion"}`` (the ``ConfusionMatrix``).
    """
    from .metrics import ConfusionMatrix
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if isinstance(data, DataLoader):
        loader, sharded = data, False
    else:
        data, sharded = _shard(data)
        loader = DataLoader(data, batch_size=1, shuffle=False, collate_fn=collate)
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    was_training = model.training
    model.eval()
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        image = batch["image"]
        if not image.is_floating_point():
            raise ValueError("evaluate expects normalised float images: build the dataset with "
                             "paperlib.data.transforms.build_eval_transform()")
        image = image.to(device, non_blocking=True)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = predict_logits(model, image, mode, scales, flip, crop, stride)
        cm.update(logits.argmax(1), batch["label"].to(device))
    if sharded:
        cm.reduce_()
    model.train(was_training)
    return {"miou": float(cm.miou()), "per_class_iou": [float(v) for v in cm.per_class_iou()],
            "pixel_accuracy": float(cm.pixel_accuracy()), "confusion": cm}


# =============================================================================================
# Training
# =============================================================================================
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log records written after the checkpoint's step (they are re-run)."""
    if path.is_file():
        keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= step]
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))


def _eval_kwargs(cfg: TrainConfig, device: torch.device) -> dict:
    return dict(num_classes=cfg.num_classes, mode=cfg.eval_mode, scales=cfg.eval_scales,
                flip=cfg.eval_flip, crop=cfg.eval_crop or cfg.crop_size, stride=cfg.eval_stride,
                device=device, amp=cfg.amp, channels_last=cfg.channels_last)


def train(cfg: TrainConfig | dict, model: nn.Module | None = None, train_set: Dataset | None = None,
          val_set: Dataset | None = None, callbacks: Iterable[Callable[[dict], None]] | None = None) -> dict:
    """Train (and evaluate) as ``cfg`` says; see the module docstring for the guarantees.

    ``model`` / ``train_set`` / ``val_set`` default to ``paperlib.models.build(cfg.model, ...)``
    and ``paperlib.data.get_dataset(cfg, split, transform)``; with a ``train_set`` given and no
    ``val_set`` there is no evaluation. ``val_set`` items must be normalised (eval transform).
    Each callback is called as ``cb(info)`` after every step (``info["event"] == "step"``: step,
    epoch, loss, lr, model, optimizer) and evaluation (``"eval"``: step, metrics); raising
    stops training (the last checkpoint stays).

    Returns ``{"model", "step", "epoch", "loss", "history", "metrics", "skipped_steps",
    "checkpoint", "wall_time", "train_time", "train_cpu_time", "config"}``; ``metrics`` is the
    final evaluation (or ``{}``), ``train_time`` the seconds of the training loop alone (this
    call's, after a resume) and ``train_cpu_time`` the CPU seconds this process spent in it (not
    counting loader workers: a contention-free measure of a single-threaded run).
    With a crop schedule (``cfg.crop_sizes``) every ``history`` entry also has the step's
    ``crop`` and ``batch_size``.
    """
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    info = init_distributed(device)
    try:
        return _train(cfg, device, info, model, train_set, val_set, list(callbacks or ()))
    finally:
        if info.owned:
            dist.destroy_process_group()


def _train(cfg, device, info, model, train_set, val_set, callbacks) -> dict:
    t0 = time.perf_counter()
    if cfg.batch_size % info.world:
        raise ConfigError(f"config field 'batch_size' = {cfg.batch_size} is not divisible by the "
                          f"{info.world} processes")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # --- data -------------------------------------------------------------------------------
    if train_set is None:
        train_set, built_val = build_datasets(cfg)
        val_set = built_val if val_set is None else val_set
    base_sampler = build_sampler(cfg, train_set, info.rank, info.world)
    # DistributedSampler restarts every epoch from its first index (resume skips ahead); the
    # paperlib samplers keep their position in their state_dict.
    restarts = isinstance(base_sampler, DistributedSampler)
    # a crop schedule (Sec. 3.3) sets each epoch's crop and batch, hence its number of steps
    plan = epoch_plan(cfg, info.world)
    epoch_batches = [b for _, b in plan] if plan else [cfg.batch_size]
    epoch_steps = [len(base_sampler) // (b // info.world) for b in epoch_batches]
    if min(epoch_steps) == 0:
        field = "max_batch_size" if plan and cfg.batch_scaling else "batch_size"
        raise ConfigError(f"config field {field!r}: a batch of {max(epoch_batches)} exceeds the "
                          f"{len(base_sampler) * info.world} samples of an epoch")
    if plan and set_crop_size(train_set, plan[0][0]) == 0:
        raise ConfigError(f"config field 'crop_sizes' = {cfg.crop_sizes}: the training set's transform "
                          "has no paperlib RandomCrop whose size the schedule could change")

    def shape(e: int) -> tuple[int, int]:
        """(per-rank batch, steps) of epoch ``e``."""
        e = min(e, len(epoch_batches) - 1)
        return epoch_batches[e] // info.world, epoch_steps[e]

    per_rank, steps_per_epoch = shape(0)
    total = cfg.steps or (sum(epoch_steps) if plan else cfg.epochs * steps_per_epoch)
    view = SeededView(train_set, cfg.seed)

    # --- model, optimiser, loss -------------------------------------------------------------
    if model is None:
        from . import models
        opts = dict(cfg.model_options, **({"width": cfg.model_width} if cfg.model_width else {}))
        model = models.build(cfg.model, num_classes=cfg.num_classes, **opts)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if info.world > 1:
        model = convert_sync_batchnorm(model, device)
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp == "fp16")
    loss_fn = build_loss(cfg.loss, **cfg.loss_options)

    # --- resume -----------------------------------------------------------------------------
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    ckpt_path = out_dir / CKPT_NAME if out_dir else None
    step, epoch, in_epoch, skipped, history = 0, 0, 0, 0, []
    rng_to_restore = sampler_state = None
    if cfg.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state["config"]["model"] != cfg.model or state["config"]["num_classes"] != cfg.num_classes:
            raise ConfigError(f"{ckpt_path} is a {state['config']['model']} checkpoint with "
                              f"{state['config']['num_classes']} classes, config says {cfg.model} / "
                              f"{cfg.num_classes}")
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, epoch, in_epoch, skipped = state["step"], state["epoch"], state["in_epoch"], state["skipped_steps"]
        history = list(state["history"])
        rngs = state["rng"]
        rng_to_restore = rngs[info.rank] if len(rngs) == info.world else rngs[0]
        sampler_state = state["sampler"]
    if info.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if out_dir and info.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / "config.json")
        if cfg.resume:
            _truncate_log(out_dir / LOG_NAME, step)
        elif (out_dir / LOG_NAME).exists():
            (out_dir / LOG_NAME).unlink()
    if rng_to_restore is not None:
        set_rng_state(rng_to_restore)

    def log(record: dict) -> None:
        if out_dir and info.main:
            with open(out_dir / LOG_NAME, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def checkpoint() -> None:
        rngs = _gather_rng(info)
        if not (out_dir and info.main):
            return
        save_checkpoint(ckpt_path, {
            "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(), "step": step, "epoch": epoch, "in_epoch": in_epoch,
            "skipped_steps": skipped, "rng": rngs, "history": history, "config": cfg.to_dict(),
            "sampler": None if restarts else base_sampler.state_dict(consumed=in_epoch * per_rank)})

    def run_eval() -> dict:
        metrics = evaluate(_unwrap(model), val_set, progress=cfg.progress and info.main,
                           **_eval_kwargs(cfg, device))
        log({"event": "eval", "step": step, "epoch": epoch, "miou": metrics["miou"],
             "pixel_accuracy": metrics["pixel_accuracy"], "per_class_iou": metrics["per_class_iou"]})
        for cb in callbacks:
            cb({"event": "eval", "step": step, "epoch": epoch, "metrics": metrics})
        return metrics

    # --- loop -------------------------------------------------------------------------------
    model.train()
    bar = tqdm(total=total, initial=step, desc=cfg.name, disable=not (cfg.progress and info.main),
               dynamic_ncols=True)
    loss_value, metrics, saved_at = float("nan"), {}, step
    t_loop, cpu_loop = time.perf_counter(), time.process_time()
    while step < total:
        per_rank, steps_per_epoch = shape(epoch)
        if in_epoch >= steps_per_epoch:
            epoch, in_epoch = epoch + 1, 0
            per_rank, steps_per_epoch = shape(epoch)
        if plan:  # this epoch's crop; the loader below is rebuilt with its batch size
            set_crop_size(train_set, plan[epoch][0])
            if in_epoch == 0:
                log({"event": "epoch", "step": step, "epoch": epoch, "crop": plan[epoch][0],
                     "batch_size": plan[epoch][1], "steps": steps_per_epoch})
        consumed = in_epoch * per_rank
        if sampler_state is not None:  # the sampler restores its own position
            base_sampler.load_state_dict(sampler_state)
            sampler_state, skip = None, 0
        else:
            skip = consumed if restarts else 0
        base_sampler.set_epoch(epoch)
        view.epoch = epoch
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        loader = DataLoader(view, batch_size=per_rank, drop_last=True, collate_fn=collate,
                            sampler=EpochSampler(base_sampler, info.rank, info.world, consumed, skip),
                            num_workers=cfg.workers, worker_init_fn=_worker_init, generator=gen,
                            pin_memory=device.type == "cuda", persistent_workers=False)
        batches = 0
        for batch in loader:
            batches += 1
            lr = lr_at(cfg, step, steps_per_epoch, total,
                       progress=epoch + in_epoch / steps_per_epoch if plan else None)
            for group in optimizer.param_groups:
                group["lr"] = lr
            image = batch["image"].to(device, non_blocking=True)
            if cfg.channels_last:
                image = image.contiguous(memory_format=torch.channels_last)
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            batch["epoch"], batch["step"] = epoch, step  # for schedule-aware losses (VPLR relaxation)
            with _autocast(device, cfg.amp):
                output = model(image)
            loss = loss_fn(output, batch)
            loss_value = _mean_over_ranks(loss.detach(), info)
            if not math.isfinite(loss_value) and not scaler.is_enabled():
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss_value}) at step {step} (epoch {epoch}) of "
                    f"run {cfg.name!r}; lower lr ({lr:.3g}), add warm-up or check the labels")
            optimizer.zero_grad(set_to_none=True)
            scale_before = scaler.get_scale() if scaler.is_enabled() else None
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scale_before is not None and scaler.get_scale() < scale_before:
                skipped += 1  # fp16 overflow: the scaler skipped this update
            step, in_epoch = step + 1, in_epoch + 1
            record = {"event": "train", "step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                      "time": round(time.perf_counter() - t0, 4)}
            if plan:
                record["crop"], record["batch_size"] = plan[epoch]
            history.append({k: record[k] for k in ("step", "loss", "lr", "crop", "batch_size") if k in record})
            if step % cfg.log_every == 0 or step == total:
                log(record)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", refresh=False)
            if ckpt_path and cfg.ckpt_every and step % cfg.ckpt_every == 0:
                checkpoint()
                saved_at = step
            if val_set is not None and cfg.eval_every and step % cfg.eval_every == 0 and step < total:
                metrics = run_eval()
            for cb in callbacks:
                cb({"event": "step", "step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                    "model": _unwrap(model), "optimizer": optimizer})
            if step >= total or in_epoch >= steps_per_epoch:
                break
        if batches == 0:
            raise RuntimeError(f"the {type(base_sampler).__name__} gave no batch of {per_rank} "
                               f"samples in epoch {epoch}")
        if step < total:
            in_epoch = steps_per_epoch  # the loader is exhausted: this epoch is done
    bar.close()
    train_time, train_cpu_time = time.perf_counter() - t_loop, time.process_time() - cpu_loop
    if ckpt_path and saved_at != step:
        checkpoint()
    if val_set is not None:
        metrics = run_eval()
    return {"model": _unwrap(model), "step": step, "epoch": epoch, "loss": loss_value,
            "history": history, "metrics": metrics, "skipped_steps": skipped,
            "checkpoint": str(ckpt_path) if ckpt_path else None,
            "wall_time": time.perf_counter() - t0, "train_time": train_time,
            "train_cpu_time": train_cpu_time, "config": cfg}


def _mean_over_ranks(x: torch.Tensor, info: DistInfo) -> float:
    """The loss averaged over ranks (a collective, so every rank sees the same value)."""
    if info.world > 1:
        x = x.clone().float()
        dist.all_reduce(x)
        x /= info.world
    return float(x)
