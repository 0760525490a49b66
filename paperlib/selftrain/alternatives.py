"""Self-training alternatives: CSST Sec. 3.1.1 (Table 2) and self-training Appendix A (Tables 7-9).

Every function here is one row of those tables, built from the same parts as the three-stage
pipeline (``pipeline.self_train``: teacher -> pseudo labels -> student) and trained by the one
engine (``engine.train``); only the loss, the starting weights or the data order change.

=========================  =============================================================  ======
function                   what changes against ``self_train``                             paper
=========================  =============================================================  ======
consistency_regularization one network, no teacher: unlabelled pixels are labelled by the   Eq. 4
                           network itself, re-estimated at every step (``consistency`` loss)
teacher_finetune           no new student: the teacher keeps training on real + pseudo      Eq. 5
soft_self_train            top-k soft pseudo labels, ``soft_pseudo_label`` loss             Eq. 6
regularized_self_train     hard labels + CRST model regularizer, ``model_regularizer``      Eq. 7
pretrain_then_finetune     pseudo labels only, then real labels only (not jointly)          ST A.2
self_training_loops        the student becomes the next teacher, n times                    ST A.3
=========================  =============================================================  ======

Consistency regularization, the design. Eq. 4 treats the pseudo labels y' as hidden variables
learned with the network. For fixed weights, the one-hot y' minimising ``-sum y' log p(x')`` is
``argmax p(x')``; so the simplest exact scheme is alternation at every step: the unlabelled
images enter the batch with label ``ONLINE_LABEL`` (``OnlineLabelDataset``), and the loss replaces
it by the argmax of the very forward pass it is computing (no gradient through the argmax), then
takes cross-entropy over real and online pixels. No second network, no second forward pass, no
label store to refresh: the labels used at step t are those of the model at step t. Padding from
crops stays ``255`` (ignored), and ``threshold`` optionally ignores unconfident online pixels.

Pseudo labels are written under ``out_dir`` (default ``data_dir()/pseudo``) in a folder per
teacher fingerprint *and* mode, so hard and soft labels of one teacher never collide and reruns
reuse them.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torchvision import tv_tensors

from .. import engine
from ..data.base import SegDataset
from ..data.samplers import ConcatSegDataset
from ..losses import ONLINE_LABEL
from .pipeline import _named_pools, mix_real_pseudo, self_train
from .pseudo import PseudoLabelDataset, generate_pseudo_labels, teacher_fingerprint


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _cfg(cfg) -> engine.TrainConfig:
    return cfg if isinstance(cfg, engine.TrainConfig) else engine.TrainConfig.from_dict(cfg)


def teacher_model(teacher) -> nn.Module:
    """The network of ``teacher``: an ``nn.Module`` or an ``engine.train`` / ``self_train``
    result (``"model"`` or ``"student"`` entry)."""
    if isinstance(teacher, nn.Module):
        return teacher
    if isinstance(teacher, dict):
        for key in ("model", "student"):
            if isinstance(teacher.get(key), nn.Module):
                return teacher[key]
    raise TypeError(f"teacher must be an nn.Module or an engine.train result, got {type(teacher).__name__}")


def pseudo_root(teacher, mode: str, out_dir: str | os.PathLike | None = None) -> Path:
    """``<out_dir or data_dir()/pseudo>/<teacher fingerprint>_<mode>``: one folder per teacher
    and label mode (``generate_pseudo_labels`` refuses to mix modes in one folder)."""
    from ..data import data_dir
    base = Path(out_dir) if out_dir else data_dir() / "pseudo"
    return base / f"{teacher_fingerprint(teacher_model(teacher))}_{mode}"


class OnlineLabelDataset(SegDataset):
    """The images of an unlabelled pool, every pixel labelled ``ONLINE_LABEL`` ("to be labelled by
    the network during training", CSST Eq. 4) *before* the joint transform, so crops pad with
    ``255`` as usual. Labels of the pool, if it has any, are never read."""

    def __init__(self, images: SegDataset, transform=None):
        super().__init__(images.samples, transform, images.root, f"{images.split}:online")
        self.num_classes = images.num_classes
        self.class_names = tuple(images.class_names)

    def load_label(self, i: int):
        raise TypeError("OnlineLabelDataset has no stored labels (they are made online by the "
                        "consistency loss); use sampler='random'")

    def __getitem__(self, key):
        i = key[0] if isinstance(key, (tuple, list)) else key
        img = self.load_image(i)
        s = self.samples[i]
        item = {"image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
                "label": tv_tensors.Mask(torch.full(img.shape[:2], ONLINE_LABEL, dtype=torch.long)),
                "index": i, "name": s.name or s.image.stem}
        return self.transform(item) if self.transform is not None else item


def pseudo_dataset(teacher, pools, transform, *, mode: str = "hard", out_dir=None, top_k: int = 3,
                   threshold: float | None = None, progress: bool = True):
    """Generate (or reuse) ``teacher``'s pseudo labels on every pool and return them as one
    training dataset with ``transform`` (CSST Eq. 2 / Eq. 6 labels)."""
    model = teacher_model(teacher)
    root = pseudo_root(model, mode, out_dir)
    device = next(model.parameters()).device
    parts = [PseudoLabelDataset(generate_pseudo_labels(model, pool, root / name, mode=mode, top_k=top_k,
                                                       threshold=threshold, device=device,
                                                       progress=progress), pool, transform=transform)
             for name, pool in _named_pools(pools).items()]
    return parts[0] if len(parts) == 1 else ConcatSegDataset(parts)


def _summary(res: dict) -> dict:
    """``{"model", "metrics", "result"}`` of an ``engine.train`` result, plus ``"pipeline"`` (the
    whole dict: teacher, pseudo-label folders, mix) for a ``self_train`` result."""
    if "student_result" in res:
        return {"model": res["student"], "metrics": res["student_metrics"], "result": res["student_result"],
                "pipeline": res}
    return {"model": res["model"], "metrics": res["metrics"], "result": res}


# ---------------------------------------------------------------------------------------------
# CSST Sec. 3.1.1 / Table 2
# ---------------------------------------------------------------------------------------------
def consistency_regularization(student_cfg, pools, *, ratio: Sequence[float] = (1, 1),
                               epoch_size: int | None = None, threshold: float | None = None,
                               unlabeled_weight: float = 1.0, model: nn.Module | None = None) -> dict:
    """Consistency regularization, CSST Eq. 4: one network trained once on real labels and on the
    pools' images, whose pseudo labels are its own current argmax (re-estimated every step; see
    the module docstring). Same real:pseudo mix per epoch as ``self_train``; random crops (the
    online labels have no centroids). Returns ``{"model", "metrics", "result"}``."""
    cfg = _cfg(student_cfg)
    real, val = engine.build_datasets(cfg)
    online = [OnlineLabelDataset(p, real.transform) for p in _named_pools(pools).values()]
    mixed = mix_real_pseudo(real, online[0] if len(online) == 1 else ConcatSegDataset(online), ratio, epoch_size)
    cfg = cfg.replace(loss="consistency", sampler="random", sampler_options={},
                      loss_options={"threshold": threshold, "unlabeled_weight": unlabeled_weight})
    return _summary(engine.train(cfg, model=model, train_set=mixed, val_set=val))


def teacher_finetune(teacher_cfg, finetune_cfg, pools, teacher, *, ratio: Sequence[float] = (1, 1),
                     epoch_size: int | None = None, centroid: bool = False, out_dir=None) -> dict:
    """Teacher fine-tuning, CSST Eq. 5: no separate student -- a copy of the trained ``teacher``
    continues training on real + its own (fixed, hard) pseudo labels with ``finetune_cfg``
    (same model name as the teacher). Returns ``{"model", "metrics", "result"}``."""
    start = copy.deepcopy(teacher_model(teacher))
    res = self_train(teacher_cfg, finetune_cfg, pools, teacher=teacher, ratio=ratio, epoch_size=epoch_size,
                     mode="hard", centroid=centroid, out_dir=pseudo_root(teacher, "hard", out_dir),
                     student_model=start)
    return _summary(res)


def soft_self_train(teacher_cfg, student_cfg, pools, teacher, *, top_k: int = 3,
                    ratio: Sequence[float] = (1, 1), epoch_size: int | None = None, centroid: bool = False,
                    out_dir=None) -> dict:
    """Soft pseudo labels, CSST Eq. 6 / self-training Table 7: the teacher's top-``top_k`` classes
    and probabilities per pixel, renormalised over the k, as the student's targets
    (``soft_pseudo_label`` loss; real labels stay one-hot). Returns ``{"model", "metrics", "result"}``."""
    cfg = _cfg(student_cfg).replace(loss="soft_pseudo_label", loss_options={})
    res = self_train(teacher_cfg, cfg, pools, teacher=teacher, ratio=ratio, epoch_size=epoch_size,
                     mode="soft", top_k=top_k, centroid=centroid, out_dir=pseudo_root(teacher, "soft", out_dir))
    return _summary(res)


def regularized_self_train(teacher_cfg, student_cfg, pools, teacher, *, weight: float = 0.1,
                           ratio: Sequence[float] = (1, 1), epoch_size: int | None = None,
                           centroid: bool = False, out_dir=None) -> dict:
    """Model regularizer, CSST Eq. 7 (CRST's MR): hard pseudo labels plus ``weight`` x
    ``-(1/C) sum_c log p_c`` on the pseudo-labelled items (``model_regularizer`` loss), which
    punishes over-confident student outputs. Returns ``{"model", "metrics", "result"}``."""
    cfg = _cfg(student_cfg).replace(loss="model_regularizer", loss_options={"weight": float(weight)})
    res = self_train(teacher_cfg, cfg, pools, teacher=teacher, ratio=ratio, epoch_size=epoch_size,
                     mode="hard", centroid=centroid, out_dir=pseudo_root(teacher, "hard", out_dir))
    return _summary(res)


# ---------------------------------------------------------------------------------------------
# Self-training Appendix A.2 / A.3 (Tables 8, 9)
# ---------------------------------------------------------------------------------------------
def pretrain_then_finetune(student_cfg, pools, teacher, *, pretrain_steps: int, finetune_steps: int,
                           centroid: bool = False, out_dir=None) -> dict:
    """Self-training Appendix A.2 / Table 8, the "conventional alternative" to joint learning:
    train a fresh student on the teacher's hard pseudo labels only for ``pretrain_steps``, then
    fine-tune it on the real labels only for ``finetune_steps`` (each stage its own poly
    schedule). Returns ``{"model", "metrics", "result", "pretrain_result"}``."""
    cfg = _cfg(student_cfg).replace(sampler="centroid" if centroid else "random")
    real, val = engine.build_datasets(cfg)
    pseudo = pseudo_dataset(teacher, pools, real.transform, mode="hard", out_dir=out_dir, progress=cfg.progress)
    pre = engine.train(cfg.replace(steps=int(pretrain_steps), name=f"{cfg.name}_pretrain"), train_set=pseudo)
    ft = engine.train(cfg.replace(steps=int(finetune_steps), name=f"{cfg.name}_finetune"),
                      model=pre["model"], train_set=real, val_set=val)
    return {**_summary(ft), "pretrain_result": pre}


def self_training_loops(teacher_cfg, student_cfg, pools, teacher, loops: int, *,
                        ratio: Sequence[float] = (1, 1), epoch_size: int | None = None,
                        centroid: bool = False, out_dir=None) -> list[dict]:
    """Self-training Appendix A.3 / Table 9: ``loops`` rounds of teacher -> pseudo labels ->
    student, where each round's student (trained from scratch) becomes the next round's teacher
    and relabels the pools. Returns one ``{"model", "metrics", "result"}`` per round."""
    if int(loops) < 1:
        raise ValueError(f"loops must be >= 1, got {loops}")
    cfg, rounds, current = _cfg(student_cfg), [], teacher
    for k in range(int(loops)):
        res = self_train(teacher_cfg, cfg.replace(name=f"{cfg.name}_loop{k + 1}"), pools, teacher=current,
                         ratio=ratio, epoch_size=epoch_size, mode="hard", centroid=centroid,
                         out_dir=pseudo_root(current, "hard", out_dir))
        rounds.append(_summary(res))
        current = res["student"]
    return rounds


#: Run sizes per profile of the fixed-data protocol (CSST Table 2 and self-training Tables 7-9
#: share it): training seeds, epochs (teacher: over the real set; students: over the real:pseudo
#: mix), labelled training frames and unlabelled pool frames (None: the whole dataset). cpu fits
#: ~9 core-minutes for 2 seeds with ``tiny_fcn`` width 16, 128x128 crops, batch 8.
PROTOCOL_SCALE = {
    "smoke": dict(seeds=[0], epochs=2, labelled=8, pool_clips=4),
    "cpu": dict(seeds=[0, 1], epochs=32, labelled=32, pool_clips=48),
    "gpu": dict(seeds=[0, 1, 2], epochs=60, labelled=150, pool_clips=600),
    "paper": dict(seeds=[0], epochs=180, labelled=None, pool_clips=None),
}


def fixed_data(cfg) -> engine.TrainConfig:
    """``cfg`` reading the synthetic world it names (world seed 0) from its exported folder as a
    Cityscapes-layout dataset. Real datasets are returned unchanged.

    Kept for the notebooks whose committed manifests record the resulting config: the data are the
    same as ``cfg`` itself gives now that ``TrainConfig.world_seed`` (default 0) picks the world
    and the training seed changes only initialisation and data order. New code should not need it.
    """
    cfg = _cfg(cfg)
    if cfg.dataset != "world":
        return cfg
    from ..data import export_world
    root = export_world(cfg.world_domain, cfg.world_image_size, cfg.world_clips, seed=0, progress=cfg.progress)
    return cfg.replace(dataset="cityscapes", data_root=str(root))
