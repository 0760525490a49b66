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
from .checkpoints import (CKPT_NAME, LOG_NAME, load_checkpoint, rng_state, save_checkpoint,  # noqa: F401
                          set_rng_state)
from .data import (INDEX_OPTIONS, EpochSampler, SeededView, build_datasets, build_sampler, collate,  # noqa: F401
                   epoch_plan, set_crop_size)
from .distributed import (CPUSyncBatchNorm, DistInfo, convert_sync_batchnorm, init_distributed,  # noqa: F401
                          resolve_device)
from .inference import evaluate, predict_logits  # noqa: F401
from .loop import NonFiniteLossError, _eval_kwargs, build_optimizer, lr_at, train  # noqa: F401
from ..config import TrainConfig  # noqa: F401  (engine.TrainConfig)
