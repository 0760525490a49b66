"""The training loop (see :mod:`paperlib.engine` for its guarantees) and its schedule."""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..config import ConfigError, TrainConfig
from ..losses import build_loss
from ..progress import tqdm
from .checkpoints import CKPT_NAME, LOG_NAME, _gather_rng, _truncate_log, load_checkpoint, save_checkpoint, set_rng_state
from .data import EpochSampler, SeededView, _worker_init, build_datasets, build_sampler, collate, epoch_plan, set_crop_size
from .distributed import _autocast, _mean_over_ranks, convert_sync_batchnorm, init_distributed, resolve_device
from .inference import evaluate


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


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
# Training
# =============================================================================================
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model



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
    "checkpoint", "wall_time", "train_time", "train_cpu_time", "step_split", "config"}``; ``metrics`` is the
    final evaluation (or ``{}``), ``train_time`` the seconds of the training loop alone (this
    call's, after a resume) and ``train_cpu_time`` the CPU seconds this process spent in it (not
    counting loader workers: a contention-free measure of a single-threaded run).
    With a crop schedule (``cfg.crop_sizes``) every ``history`` entry also has the step's
    ``crop`` and ``batch_size``. ``step_split``: seconds per step spent on ``data`` (waiting for
    the loader), ``forward`` (with the loss), ``backward``, ``optimizer``, ``eval`` (periodic
    evaluation) and ``other`` (logging, checkpoints), also shown in the bar (``data`` share) and
    logged (``time_split_s``, cumulative) -- host time, so on CUDA read it as launch time.
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
        from .. import models
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
    if cfg.resume and ckpt_path is None:
        raise ConfigError("config field 'resume' = true needs 'out_dir' (where the checkpoint is)")
    if cfg.resume and not ckpt_path.is_file() and info.main:
        print(f"resume: no checkpoint at {ckpt_path} yet; starting from step 0", flush=True)
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
    # where a step's time goes (host clock; on CUDA kernels overlap, so read it as host time)
    split = dict.fromkeys(("data", "forward", "backward", "optimizer", "eval", "other"), 0.0)
    steps_here = 0
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
        t_mark = time.perf_counter()
        for batch in loader:
            t_data = time.perf_counter()
            split["data"] += t_data - t_mark
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
            t_fwd = time.perf_counter()
            split["forward"] += t_fwd - t_data
            loss_value = _mean_over_ranks(loss.detach(), info)
            if not math.isfinite(loss_value) and not scaler.is_enabled():
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss_value}) at step {step} (epoch {epoch}) of "
                    f"run {cfg.name!r}; lower lr ({lr:.3g}), add warm-up or check the labels")
            optimizer.zero_grad(set_to_none=True)
            scale_before = scaler.get_scale() if scaler.is_enabled() else None
            scaler.scale(loss).backward()
            t_bwd = time.perf_counter()
            split["backward"] += t_bwd - t_fwd
            scaler.step(optimizer)
            scaler.update()
            t_opt = time.perf_counter()
            split["optimizer"] += t_opt - t_bwd
            steps_here += 1
            if scale_before is not None and scaler.get_scale() < scale_before:
                skipped += 1  # fp16 overflow: the scaler skipped this update
            step, in_epoch = step + 1, in_epoch + 1
            record = {"event": "train", "step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                      "time": round(time.perf_counter() - t0, 4)}
            if plan:
                record["crop"], record["batch_size"] = plan[epoch]
            history.append({k: record[k] for k in ("step", "loss", "lr", "crop", "batch_size") if k in record})
            if step % cfg.log_every == 0 or step == total:
                log({**record, "time_split_s": {k: round(v, 3) for k, v in split.items() if k != "other"}})
            busy = sum(split.values()) or 1.0
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}",
                            data=f"{100 * split['data'] / busy:.0f}%", refresh=False)
            bar.update(1)
            if ckpt_path and cfg.ckpt_every and step % cfg.ckpt_every == 0:
                checkpoint()
                saved_at = step
            if val_set is not None and cfg.eval_every and step % cfg.eval_every == 0 and step < total:
                t_eval = time.perf_counter()
                metrics = run_eval()
                split["eval"] += time.perf_counter() - t_eval
            for cb in callbacks:
                cb({"event": "step", "step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                    "model": _unwrap(model), "optimizer": optimizer})
            t_mark = time.perf_counter()
            if step >= total or in_epoch >= steps_per_epoch:
                break
        if batches == 0:
            raise RuntimeError(f"the {type(base_sampler).__name__} gave no batch of {per_rank} "
                               f"samples in epoch {epoch}")
        if step < total:
            in_epoch = steps_per_epoch  # the loader is exhausted: this epoch is done
    bar.close()
    train_time, train_cpu_time = time.perf_counter() - t_loop, time.process_time() - cpu_loop
    split["other"] = max(0.0, train_time - sum(v for k, v in split.items() if k != "other"))
    step_split = {k: v / max(1, steps_here) for k, v in split.items()}
    if ckpt_path and saved_at != step:
        checkpoint()
    if val_set is not None:
        metrics = run_eval()
    return {"model": _unwrap(model), "step": step, "epoch": epoch, "loss": loss_value,
            "history": history, "metrics": metrics, "skipped_steps": skipped,
            "checkpoint": str(ckpt_path) if ckpt_path else None,
            "wall_time": time.perf_counter() - t0, "train_time": train_time,
            "train_cpu_time": train_cpu_time, "step_split": step_split, "config": cfg}
