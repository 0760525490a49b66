"""The three-stage self-training pipeline: teacher -> pseudo labels -> student (self-training
Sec. 3.1, CSST Sec. 3.1 / Fig. 2), on top of the one engine (``paperlib.engine.train``).

1. **Teacher**: any zoo model trained on the real labels (``engine.train(teacher_cfg)``),
   optionally with centroid sampling (CSST Table 1: 78.1 -> 78.8).
2. **Pseudo labels** on unlabelled pools (``pseudo.generate_pseudo_labels``): same-domain extra
   images (Cityscapes coarse* in the papers; here more clips of the source domain from another
   world seed) and other domains (Mapillary*; here ``city_b`` / ``city_c``). Only the pools'
   *images* are used: ``unlabelled()`` drops their labels before anything sees them.
3. **Student** (any zoo model, not necessarily the teacher's) trained from scratch on
   real + pseudo labels with an exact real:pseudo mix per epoch (``mix_real_pseudo``).

The mix and the samplers
------------------------
``mix_real_pseudo(real, pseudo, ratio, epoch_size)`` returns a ``MixedDataset`` (a
``ConcatSegDataset([real, pseudo])``, ``source`` 0 = real, 1 = pseudo) carrying
``mix_counts = (n_real, n_pseudo)``: the number of samples of each part in *every* epoch.
``engine.build_sampler`` honours it:

- ``sampler="random"``  -> ``samplers.MixSampler``: ``n_real`` random crops of real images and
  ``n_pseudo`` of pseudo-labelled ones (shuffled passes over each part, so the pseudo pool is
  walked through across epochs when it is larger than ``n_pseudo``);
- ``sampler="centroid"`` -> ``samplers.CentroidSampler(real_pseudo_ratio=mix_counts,
  num_samples=n_real + n_pseudo)``: the same counts, each part class-balanced over the centroids
  of its own labels (CSST Sec. 3.2: "1.5K from the Cityscapes fine annotations and 1.5K from
  the centroids of generated pseudo labels"). The centroid index is computed over the whole
  mix (real labels and hard pseudo labels) and cached by its fingerprint.

The epoch length is ``n_real + n_pseudo`` samples, so with a fixed number of *epochs* more
pseudo labels mean more iterations; the **duplicated real labels** control
(``duplicate_real=True``: the real set stands in for the pseudo part) trains exactly as long
on real labels only (self-training Table 2b, CSST Table 1b).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from torch import nn

from ..data.base import SegDataset
from ..data.samplers import ConcatSegDataset, MixSampler
from .pseudo import PseudoLabelDataset, generate_pseudo_labels, one_hot_soft, teacher_fingerprint


# ---------------------------------------------------------------------------------------------
# Pools of unlabelled images
# ---------------------------------------------------------------------------------------------
def unlabelled(dataset: SegDataset, transform=None) -> SegDataset:
    """The images of ``dataset`` without their labels (a plain ``SegDataset`` whose samples have
    ``label=None``), with the eval transform by default: what a pool may show the pipeline."""
    from ..data.base import Sample
    from ..data.transforms import build_eval_transform
    samples = [Sample(s.image, None, s.name, dict(s.neighbours)) for s in dataset.samples]
    out = SegDataset(samples, transform or build_eval_transform(), dataset.root, dataset.split)
    out.num_classes, out.class_names = dataset.num_classes, tuple(dataset.class_names)
    return out


def world_pool(domain: str = "city_a", size=(128, 256), num_clips: int = 32, seed: int = 100,
               split: str = "train", progress: bool = True) -> tuple[SegDataset, SegDataset]:
    """An unlabelled pool from the synthetic world: ``(images, labelled)``.

    ``images`` (labels dropped, eval transform) is what self-training may use; ``labelled`` (the
    same images with their ground truth) is for *measuring* pseudo-label quality only. A
    same-domain pool is another ``seed`` of the source domain (new clips and textures, same
    look); an other-domain pool is another ``domain``.
    """
    from ..data import export_world
    from ..data.datasets import build_dataset
    from ..data.transforms import build_eval_transform
    root = export_world(domain, tuple(size), num_clips, seed=seed, progress=progress)
    labelled = build_dataset("cityscapes", root, split, build_eval_transform())
    return unlabelled(labelled), labelled


def load_pool(cfg, pool_root: str | os.PathLike | None = None, num_clips: int = 32,
              seed: int = 100) -> tuple[SegDataset, SegDataset]:
    """The same-domain unlabelled pool of a self-training notebook: ``(images, labelled)`` as
    ``world_pool`` returns them (self-training Sec. 3.1: the extra unlabelled images).

    - ``pool_root`` given: the train images of that Cityscapes-layout folder (real data);
    - else, when ``cfg`` (the config the notebook's parameters ask for, *before*
      ``alternatives.fixed_data`` rewrites a world into its exported folder) names the synthetic
      world: ``num_clips`` clips of its domain and image size from world seed ``seed``;
    - else a ``ValueError`` naming ``pool_root``: a real dataset has no built-in pool.
    """
    from ..data.datasets import build_dataset
    from ..data.transforms import build_eval_transform
    if pool_root is not None:
        labelled = build_dataset("cityscapes", pool_root, "train", build_eval_transform())
        return unlabelled(labelled), labelled
    if cfg.dataset == "world":
        return world_pool(cfg.world_domain, cfg.world_image_size, num_clips=num_clips, seed=seed,
                          progress=cfg.progress)
    raise ValueError("parameter 'pool_root' is needed: a real dataset has no built-in unlabelled pool")


# ---------------------------------------------------------------------------------------------
# The real:pseudo mix
# ---------------------------------------------------------------------------------------------
def mix_counts(n_real: int, ratio: Sequence[float] = (1, 1), epoch_size: int | None = None) -> tuple[int, int]:
    """Samples per epoch ``(real, pseudo)`` for ``ratio = (real, pseudo)``.

    - ``epoch_size=None``: one pass over the real set plus pseudo samples in proportion:
      ``(n_real, round(n_real * p / r))`` -- CSST Table 1a with ratio (1, 1), (1, 2), (1, 4) ...
    - ``epoch_size=N``: ``real = round(N r / (r + p))``, ``pseudo = N - real`` -- self-training
      Table 1 (1.5K + 1.5K = 3K: ratio (1, 1), N = len(real)) and Table 2a (ratio (1, 3), ...).
    - absolute counts (CSST's 3K real + 40K pseudo): pass them as ``ratio`` and their sum as
      ``epoch_size``.
    """
    if len(ratio) != 2:
        raise ValueError(f"ratio must be (real, pseudo), got {ratio!r}")
    r, p = (float(x) for x in ratio)
    if r < 0 or p < 0 or r + p <= 0:
        raise ValueError(f"ratio must be two non-negative numbers, not both 0, got {ratio!r}")
    if epoch_size is None:
        if r == 0:
            raise ValueError(f"ratio {ratio!r} has no real part: give epoch_size")
        return int(n_real), int(round(n_real * p / r))
    if int(epoch_size) < 1:
        raise ValueError(f"epoch_size must be >= 1, got {epoch_size}")
    n_r = int(round(int(epoch_size) * r / (r + p)))
    return n_r, int(epoch_size) - n_r


def ratio_pair(v) -> bool:
    """[real, pseudo]: two numbers >= 0, real > 0"""
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) \
        and v[0] > 0 and v[1] >= 0


def ratio_pair_or_none(v) -> bool:
    """None (the notebook's per-profile default) or [real, pseudo]: two numbers >= 0, real > 0"""
    return v is None or ratio_pair(v)


def _soft_k(ds) -> int:
    """top-k of the soft pseudo labels reachable in ``ds`` (0: hard labels only)."""
    if getattr(ds, "soft", False):
        return int(ds.top_k)
    return max((_soft_k(d) for d in getattr(ds, "datasets", ())), default=0)


class MixedDataset(ConcatSegDataset):
    """``[real, pseudo]`` with ``mix_counts`` samples of each per epoch (see the module doc).

    Items carry ``source`` (0 = real, 1 = pseudo). When the pseudo part holds soft labels, real
    items get the equivalent one-hot ``soft_index`` / ``soft_prob`` so a batch mixing both keeps
    every key (``engine.collate`` keeps only the keys all items share).
    """

    def __init__(self, real, pseudo, counts: tuple[int, int], duplicate_real: bool = False, seed: int = 0):
        super().__init__([real, pseudo])
        self.mix_counts = (int(counts[0]), int(counts[1]))
        self.duplicate_real, self.seed = bool(duplicate_real), int(seed)
        self.soft_k = _soft_k(pseudo)

    @property
    def epoch_size(self) -> int:
        return sum(self.mix_counts)

    def __getitem__(self, key):
        item = super().__getitem__(key)
        if self.soft_k and "soft_index" not in item and "label" in item:
            item["soft_index"], item["soft_prob"] = one_hot_soft(item["label"], self.soft_k)
        return item

    def sampler(self, seed: int | None = None, num_replicas: int = 1, rank: int = 0) -> MixSampler:
        """The random-crop sampler ``engine.train`` builds for this mix (with the config's seed);
        handy to inspect an epoch outside the engine."""
        return MixSampler(self.source, self.mix_counts, self.seed if seed is None else seed,
                          num_replicas, rank)

    def __repr__(self) -> str:
        kind = "duplicated real" if self.duplicate_real else "pseudo"
        return (f"MixedDataset(real={len(self.datasets[0])} images, {kind}={len(self.datasets[1])} "
                f"images, per epoch {self.mix_counts[0]} real + {self.mix_counts[1]} {kind})")


def mix_real_pseudo(real, pseudo, ratio: Sequence[float] = (1, 1), epoch_size: int | None = None,
                    duplicate_real: bool = False, seed: int = 0) -> MixedDataset:
    """A training set whose every epoch holds exactly the requested real:pseudo mix.

    ``ratio`` / ``epoch_size``: see ``mix_counts``. ``duplicate_real=True``: the control of
    self-training Table 2b / CSST Table 1b -- the real set takes the place of the pseudo set
    (``pseudo`` may then be None), so the epoch is as long but holds real labels only.
    ``seed`` is only used by ``MixedDataset.sampler()``; ``engine.train`` seeds the sampler from
    its config. Pass the result as ``engine.train(cfg, train_set=mixed)`` with
    ``cfg.sampler`` = ``"random"`` or ``"centroid"`` (centroid sampling per part).
    """
    if duplicate_real:
        pseudo = real
    elif pseudo is None:
        raise ValueError("pseudo is None: give the pseudo-labelled dataset or duplicate_real=True")
    counts = mix_counts(len(real), ratio, epoch_size)
    return MixedDataset(real, pseudo, counts, duplicate_real=duplicate_real, seed=seed)


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------
def _named_pools(pools) -> dict[str, SegDataset]:
    if isinstance(pools, Mapping):
        out = dict(pools)
    elif isinstance(pools, SegDataset):
        out = {"pool0": pools}
    else:
        out = {f"pool{k}": p for k, p in enumerate(pools)}
    if not out:
        raise ValueError("pools is empty: give at least one unlabelled dataset")
    for name, p in out.items():
        if not hasattr(p, "samples"):
            raise TypeError(f"pool {name!r} must be a SegDataset, got {type(p).__name__}")
    return out


def _teacher(teacher_cfg, teacher, train_set, val_set):
    """(model, metrics, train result or None) of the teacher: trained here (on ``train_set``, or
    the teacher config's own data when None) unless given."""
    from .. import engine
    if teacher is None:
        res = engine.train(teacher_cfg, train_set=train_set, val_set=val_set)
        return res["model"], res["metrics"], res
    if isinstance(teacher, dict):
        return teacher["model"], teacher.get("metrics") or {}, teacher
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be None, an nn.Module or an engine.train result, got {type(teacher).__name__}")
    cfg = engine.TrainConfig.from_dict(teacher_cfg) if isinstance(teacher_cfg, dict) else teacher_cfg
    metrics = engine.evaluate(teacher, val_set, **engine._eval_kwargs(cfg, next(teacher.parameters()).device))
    return teacher, metrics, None


def self_train(teacher_cfg, student_cfg, pools, *, ratio: Sequence[float] = (1, 1),
               mode: str = "hard", threshold: float | None = None, centroid: bool = True,
               teacher=None, out_dir: str | os.PathLike | None = None,
               epoch_size: int | None = None, top_k: int = 3, predict_options: dict | None = None,
               student_model: nn.Module | None = None, train_set=None, val_set=None) -> dict:
    """Teacher -> pseudo labels on ``pools`` -> student on real + pseudo (self-training Sec. 3.1).

    ``teacher_cfg`` / ``student_cfg``: ``TrainConfig`` (or dict) of each network; the student's
    dataset gives the real labels and the validation set. ``pools``: unlabelled ``SegDataset``s
    (a list, or a dict name -> dataset; e.g. ``world_pool(...)[0]``). ``teacher``: skip stage 1
    with a trained model or an ``engine.train`` result. ``train_set`` / ``val_set``: the real
    labelled set (with the training transform) and validation set, instead of building them from
    ``student_cfg`` (e.g. to keep one world across seeds). ``ratio`` / ``epoch_size``: the
    real:pseudo mix per epoch (``mix_counts``); ``centroid``: the student's sampler is
    ``"centroid"`` (else ``"random"``). ``mode`` / ``threshold`` / ``top_k`` /
    ``predict_options``: pseudo-label generation (``generate_pseudo_labels``). Pseudo labels go
    to ``out_dir/<pool name>`` (default ``data_dir()/pseudo/<teacher fingerprint>``), so reruns
    with the same teacher reuse them.

    Returns ``{"teacher", "student"`` (models), ``"teacher_metrics", "student_metrics",
    "teacher_result", "student_result"`` (``engine.train`` results; the teacher's is None when
    given as a model), ``"pseudo_dirs"`` (pool name -> folder), ``"train_set"`` (the
    ``MixedDataset``), ``"mix_counts"}``.
    """
    from .. import engine
    from ..data import data_dir
    tcfg = teacher_cfg if isinstance(teacher_cfg, engine.TrainConfig) else engine.TrainConfig.from_dict(teacher_cfg)
    scfg = student_cfg if isinstance(student_cfg, engine.TrainConfig) else engine.TrainConfig.from_dict(student_cfg)
    pools = _named_pools(pools)
    given_train = train_set
    if train_set is None or val_set is None:
        built_train, built_val = engine.build_datasets(scfg)
        train_set = built_train if train_set is None else train_set
        val_set = built_val if val_set is None else val_set
    real_train = train_set

    t_model, t_metrics, t_res = _teacher(tcfg, teacher, given_train, val_set)
    root = Path(out_dir) if out_dir else data_dir() / "pseudo" / teacher_fingerprint(t_model)
    device = engine.resolve_device(tcfg.device)
    dirs, parts = {}, []
    for name, pool in pools.items():
        dirs[name] = generate_pseudo_labels(t_model, pool, root / name, mode=mode, top_k=top_k,
                                            threshold=threshold, device=device,
                                            predict_options=predict_options, progress=scfg.progress)
        parts.append(PseudoLabelDataset(dirs[name], pool, transform=real_train.transform))
    pseudo = parts[0] if len(parts) == 1 else ConcatSegDataset(parts)
    mixed = mix_real_pseudo(real_train, pseudo, ratio, epoch_size, seed=scfg.seed)
    s_res = engine.train(scfg.replace(sampler="centroid" if centroid else "random"),
                         model=student_model, train_set=mixed, val_set=val_set)
    return {"teacher": t_model, "student": s_res["model"], "teacher_metrics": t_metrics,
            "student_metrics": s_res["metrics"], "teacher_result": t_res, "student_result": s_res,
            "pseudo_dirs": dirs, "train_set": mixed, "mix_counts": mixed.mix_counts}

