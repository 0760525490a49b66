"""The training data path of the engine: seeded per-sample loading (``SeededView``), the epoch
sampler, collation, the sampler a config names, crop schedules and datasets from a config."""
from __future__ import annotations

import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..config import ConfigError, TrainConfig


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
        # numpy's and Python's global generators are seeded (and restored) only when some
        # transform or dataset in the chain is not paperlib's: saving numpy's state alone costs
        # about 0.1 ms a sample, and paperlib draws from torch only
        self.seed_all = not draws_from_torch_only(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, pos_key):
        pos, key = pos_key
        s = np.random.SeedSequence([self.seed, self.epoch, int(pos)]).generate_state(2)
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also queue CUDA / XPU / MTIA seeding,
            # recording a stack trace each time (about 1 ms a sample); transforms run on the CPU
            torch.default_generator.manual_seed(int(s[0]))
            if not self.seed_all:
                return self.dataset[key]
            np_state, py_state = np.random.get_state(), random.getstate()
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
        from ..data.samplers import MixSampler
        return MixSampler(dataset.source, mix, seed=cfg.seed, num_replicas=world, rank=rank)
    if cfg.sampler == "random":
        return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    from ..data import samplers
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
    from ..schedules import batch_for_crop, crop_schedule
    crops = crop_schedule(cfg.crop_schedule, cfg.epochs, cfg.crop_sizes, cfg.crop_warmup_epochs,
                          cfg.crop_period)
    if not cfg.batch_scaling:
        return [(c, cfg.batch_size) for c in crops]
    base, most = max(cfg.crop_sizes), cfg.max_batch_size or 4 * cfg.batch_size
    return [(c, batch_for_crop(c, base, cfg.batch_size, most, multiple_of=world)) for c in crops]


def _reachable(dataset):
    """Every object reachable from ``dataset`` through its ``transform`` and wrapper datasets
    (``Subset`` / ``ConcatDataset`` / a real + pseudo mix, ``Compose`` lists), each once."""
    seen, stack = set(), [dataset]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (list, tuple)):
            stack.extend(v for v in obj if isinstance(v, Dataset) or (callable(v) and not isinstance(v, type)))
        elif isinstance(obj, Dataset) or hasattr(obj, "transforms") or hasattr(obj, "reference"):
            stack.extend(v for v in getattr(obj, "__dict__", {}).values()
                         if isinstance(v, (Dataset, list, tuple))
                         or (callable(v) and hasattr(v, "__dict__") and not isinstance(v, type)))


def set_crop_size(dataset, size: int | tuple[int, int]) -> int:
    """Set the size of every ``paperlib.data.transforms.RandomCrop`` reachable from ``dataset``
    (its ``transform``, through wrapper datasets such as ``Subset`` / ``ConcatDataset`` / a
    real + pseudo mix); returns how many crops it changed (0: nothing to schedule)."""
    from ..data.transforms import RandomCrop
    size, changed = _pair(size), 0
    for obj in _reachable(dataset):
        if isinstance(obj, RandomCrop):
            obj.size, changed = size, changed + 1
    return changed


def draws_from_torch_only(dataset) -> bool:
    """True when every dataset and transform reachable from ``dataset`` is paperlib's or
    torch's / torchvision's: those draw their randomness from torch's generator alone, so
    ``SeededView`` need not seed (nor save and restore) numpy's and Python's global ones."""
    ours = ("paperlib.", "torch.", "torchvision.")
    return all(type(obj).__module__.startswith(ours) for obj in _reachable(dataset)
               if not isinstance(obj, (list, tuple)))


def build_datasets(cfg: TrainConfig):
    """(train, val) datasets from the config, with the training / evaluation transforms."""
    from ..data import get_dataset
    from ..data.transforms import build_eval_transform, build_train_transform
    train_tf = build_train_transform(cfg.crop_size, scale=cfg.scale, flip=cfg.flip, **cfg.transform_options)
    return (get_dataset(cfg, cfg.train_split, train_tf),
            get_dataset(cfg, cfg.val_split, build_eval_transform()))


def _worker_init(worker_id: int) -> None:
    """Workers get distinct, seeded numpy/python RNGs (torch already seeds each worker)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)



def _pair(v) -> tuple[int, int] | None:
    return None if v is None else (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))
