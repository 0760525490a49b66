"""Self-training and CSST at mechanism scale: a converged teacher, pools of new frames, students at equal steps.

Self-training (Zhu et al., Sec. 3.1, Tables 1-3, 7-9) and CSST (Tables 1-5) claim that a teacher
trained on the labelled set, labelling many *new* images, gives a student more than the labelled
set alone. That effect can only show where

1. the student is short of *labelled data*: the pool with its **true** labels (the *oracle*
   student) beats the **duplicated-real** student (the labelled set repeated where the pool would
   be, ST Table 2b / CSST Table 1b) at the same number of steps. Pseudo labels are at best the
   true labels: if the oracle does not help, no pseudo labels can, and the pseudo-label claims are
   *not testable*;
2. the teacher is *converged*: its held-out curve is flat over its last third, so a student
   copies a finished teacher, not a snapshot;
3. the students are at their plateau within the steps every arm gets (their curves).

Each is measured against the world's truth, never with a claim (item ``calibration`` of
``paperlib/reference/claims/selftrain.toml``, declared before its run). Beside them, the
mechanism itself: the **pseudo-label accuracy** (the teacher's hard labels on each pool scored
against the pool's true labels, ``pseudo_quality``) -- what the student is given.

The data (one export path, ``paperlib.data.export_world``):

- the **labelled set**: ``labelled`` training frames (evenly spaced) of the ``domain`` world (seed
  ``world_seed``, ``clips`` snippets: one labelled frame each); held-out frames: that world's
  ``val`` split (``clips / 4`` frames);
- the **pools** (``POOLS``): *new* frames: ``same`` = the same domain (Cityscapes coarse* in the
  papers), either ``pool_multiple x labelled`` frames of another world seed (new layouts and
  textures; ``same_pool="seed"``) or the labelled world's other training frames
  (``same_pool="rest"``); ``other`` = ``pool_multiple x labelled`` frames of another domain
  (Mapillary*). Only their images reach a student; their labels score
  the pseudo labels and make the oracle arm.

The arms (``Arm``; every student has the same model, steps, batch, crop and, per seed, the same
initialisation and sample stream: equal cost). An epoch holds ``n_real`` labelled samples and
``n_real x p / r`` extra ones for the mix ``r:p`` (``pipeline.mix_counts``); with ``steps`` fixed,
the mix sets what the steps are spent on, never how many there are:

- ``duplicated r:p`` -- the labelled set in place of the extra part (the control baseline);
- ``oracle r:p`` -- the ``same`` pool with its true labels;
- ``hard r:p`` / ``soft r:p`` -- the ``same`` pool with the teacher's hard / top-3 soft labels;
- ``mr r:p`` / ``online r:p`` -- hard labels under CRST's model regularizer / the student's own
  online argmax (consistency regularization): CSST Table 2's alternatives.

Suffixes: ``CS`` switches the student's sampler to CSST's centroid sampling (per part); ``PT``
pre-trains on the extra part, then fine-tunes on the labelled set, in the same steps (ST Table 8);
``Lk`` is the k-th self-training loop (ST Table 9); ``FT`` starts from the trained teacher (CSST's
teacher fine-tuning); ``@net`` trains another zoo network (ST / CSST Table 3).

The teacher (kind ``selftrain_teacher``) and every student run (kind ``selftrain_student``) are
``paperlib.cache`` roles keyed by what made them, so the notebooks share them.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..pool import run_all

if TYPE_CHECKING:
    import pandas as pd

#: Thin classes (Cityscapes train ids of pole, traffic light, traffic sign): rare, small, and the
#: first a weak teacher loses.
THIN = (5, 6, 7)
#: Version of the student / teacher roles (bump when what they compute changes; 2: students also
#: score their own labelled frames, ``fit``).
VERSION = 2


@dataclasses.dataclass(frozen=True)
class Regime:
    """Where the self-training controls (and then the claims) run. Defaults: the candidate tried
    first (``CANDIDATES["s1"]``); ``CPU_REGIME`` is the one the cpu profile uses."""

    size: tuple[int, int] = (128, 256)        # world frames (H, W)
    domain: str = "city_a"
    world_seed: int = 0                       # the labelled world (its val split is the held-out set)
    clips: int = 192                          # snippets of the labelled world (val: clips / 4 frames)
    labelled: int = 24                        # labelled frames (evenly spaced over the world's train split)
    pool_multiple: int = 8                    # pool frames per labelled frame (the papers: 7-13x)
    pool_seed: int = 100                      # world seed of the pools (new frames)
    other_domain: str = "city_c"              # the other-domain pool (Mapillary*)
    teacher_model: str = "swiftnet_resnet18"
    teacher_width: int = 16
    teacher_steps: int = 4000
    model: str = "tiny_fcn"                   # the student
    width: int = 16
    steps: int = 1000                         # every student's steps
    batch: int = 8
    crop: tuple[int, int] = (128, 128)
    scale: tuple[float, float] = (0.75, 1.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    curve_points: int = 5                     # held-out evaluations during training (the plateau)
    same_pool: str = "seed"                   # the same-domain pool: "seed" = pool_frames frames of world
                                              # pool_seed; "rest" = the labelled world's other training frames

    @property
    def pool_frames(self) -> int:
        return self.pool_multiple * self.labelled

    def config(self, seed: int, name: str, teacher: bool = False, eval_every: int = 0, centroid: bool = False):
        """The ``TrainConfig`` of the teacher (``teacher``) or of a student (the cpu profile's
        defaults for everything the regime does not set)."""
        from ..config import config_from_params
        return config_from_params(
            "cpu", name=name, model=self.teacher_model if teacher else self.model,
            model_width=self.teacher_width if teacher else self.width,
            steps=self.teacher_steps if teacher else self.steps, batch_size=self.batch, crop_size=self.crop,
            scale=self.scale, optimizer=self.optimizer, lr=self.lr, seed=int(seed), world_image_size=self.size,
            world_domain=self.domain, world_seed=self.world_seed, world_clips=self.clips,
            max_images=self.labelled, sampler="centroid" if centroid else "random", progress=False,
            eval_every=eval_every, sampler_options={"workers": 0})

    def teacher_spec(self) -> dict:
        """What makes the teacher (its cache key): the students' fields are left out."""
        return {"world": [self.domain, list(self.size), self.clips, self.world_seed, self.labelled],
                "model": self.teacher_model, "width": self.teacher_width, "steps": self.teacher_steps,
                "batch": self.batch, "crop": list(self.crop), "scale": list(self.scale),
                "optimizer": self.optimizer, "lr": self.lr, "curve_points": self.curve_points}

    def describe(self) -> str:
        (h, w), (ch, cw) = self.size, self.crop
        same = (f"the world's other {self.clips - self.labelled} training frames" if self.same_pool == "rest"
                else f"{self.pool_frames} frames of world seed {self.pool_seed}")
        return (f"{self.labelled} labelled {h}x{w} frames of the {self.domain} world; pools of new frames: {self.domain} "
                f"({same}) and {self.other_domain} ({self.pool_frames} frames of world seed {self.pool_seed}); teacher "
                f"{self.teacher_model} width {self.teacher_width}, {self.teacher_steps} steps; students {self.model} "
                f"width {self.width}, {self.steps} steps; batch {self.batch} of {ch}x{cw} crops, scale "
                f"{self.scale[0]:g}-{self.scale[1]:g}, {self.optimizer} lr {self.lr:g}")


#: The regimes tried, in order, each declared before its calibration run (controls only):
#:
#: - ``s1``: a teacher of more capacity than the student, trained long on the labelled set
#:   (SwiftNet-R18 width 16, 4000 steps), students ``tiny_fcn`` width 16 at 1000 steps. The
#:   issue's probe (teacher ``tiny_fcn`` w32, 3000 steps, 40.6 mIoU; 144-frame pool at 1:4; 3
#:   seeds) had the oracle control at +2.77 +- 0.34 and hard pseudo labels at -0.40 +- 0.34.
#:   Run 2026-12-07 (4 seeds): teacher 40.8 at its plateau, pseudo labels 37.4 mIoU on the
#:   same-domain pool; students at their plateau, but the oracle control failed (-0.76 +- 0.13):
#:   a 15K-parameter student cannot use more frames.
#: - ``s2``: students of the teacher's own architecture (SwiftNet-R18 w16, as the papers' Table 1:
#:   student and teacher alike), 12 labelled frames and 16x as many new ones (the same 192-frame
#:   pools). Chosen on single-seed probes of the controls only (seed 0): at 24 labelled frames the
#:   SwiftNet student fit its own frames at 41.7 vs 31.1 held out, oracle +1.2; at 12, 42.9 vs 30.4,
#:   oracle +3.1 (teacher 36.4 after 4000 steps, +0.4 over the last third). Run 2026-12-07 (4
#:   seeds): capacity +11.4 +- 0.5, plateaus pass, pseudo labels 34.9 on the same-domain pool; the
#:   oracle control failed, +1.30 +- 0.67 per seed 3.09, 1.43, 0.72, -0.06: too weak and too
#:   variable for "clearly more than a point".
#: - ``s3``: s2 with the same-domain pool drawn from the labelled world itself -- its other 180
#:   training frames (15x; Cityscapes coarse* are more frames of the same cities) -- instead of
#:   another world seed, whose new layouts and textures the held-out frames (the labelled world's
#:   own val split) never show. Declared after s2's run, before any run of s3.
CANDIDATES = {
    "s1": Regime(),
    "s2": Regime(labelled=12, pool_multiple=16, model="swiftnet_resnet18", width=16),
    "s3": Regime(labelled=12, pool_multiple=16, model="swiftnet_resnet18", width=16, same_pool="rest"),
}
#: The regime of the cpu (and gpu / paper, until they have their own) self-training experiments.
CPU_REGIME = CANDIDATES["s3"]
#: A few seconds per arm, only to exercise the code (the smoke profile).
SMOKE_REGIME = Regime(size=(64, 128), clips=8, labelled=4, pool_multiple=2, teacher_model="tiny_fcn",
                      teacher_width=8, teacher_steps=6, width=8, steps=4, batch=2, crop=(48, 48), curve_points=2)


def profile_setup(profile: str, seeds=None, jobs=None) -> tuple[Regime, list[int], int]:
    """A self-training notebook's (regime, seeds, processes) for ``profile``: ``SMOKE_REGIME``
    with seeds [0, 1] in one process at ``smoke``, else ``CPU_REGIME`` with 4 paired seeds in 2
    processes of one thread each (``seeds`` / ``jobs`` override; the processes do not change
    results)."""
    regime = SMOKE_REGIME if profile == "smoke" else CPU_REGIME
    return (regime, list(seeds or ([0, 1] if profile == "smoke" else [0, 1, 2, 3])),
            int(jobs or (1 if profile == "smoke" else 2)))


# --- data --------------------------------------------------------------------------------------
#: The unlabelled pools: name -> (domain field of the regime, what the papers used).
POOLS = {"same": ("domain", "Cityscapes coarse*"), "other": ("other_domain", "Mapillary*")}


def labelled_sets(regime: Regime) -> tuple:
    """``(train, val)``: the labelled frames with the regime's training transform, and the
    held-out frames (eval transform)."""
    from ..data import data_dir
    return _labelled_sets(regime, str(data_dir()))


@lru_cache(maxsize=8)
def _labelled_sets(regime: Regime, root: str) -> tuple:
    from .. import engine
    return tuple(engine.build_datasets(regime.config(0, "data")))


def own_frames(regime: Regime):
    """The labelled frames under the eval transform (what ``fit`` scores: capacity, not data)."""
    from ..data.transforms import build_eval_transform
    return _with_transform(labelled_sets(regime)[0], build_eval_transform())


def pool(regime: Regime, name: str) -> tuple:
    """Pool ``name`` (``POOLS``): ``(images, labelled)`` as ``pipeline.world_pool`` returns them
    -- the images without labels (what self-training may use), and the same frames with their
    true labels (the oracle arm, and scoring the pseudo labels)."""
    from ..data import data_dir
    if name not in POOLS:
        raise ValueError(f"unknown pool {name!r}; expected one of {list(POOLS)}")
    return _pool(regime, name, str(data_dir()))


@lru_cache(maxsize=8)
def _pool(regime: Regime, name: str, root: str) -> tuple:
    from .pipeline import unlabelled, world_pool
    if name == "same" and regime.same_pool == "rest":
        from ..data import get_dataset
        from ..data.transforms import build_eval_transform
        cfg = regime.config(0, "pool")
        labelled = {s.name for s in get_dataset(cfg, cfg.train_split).samples}
        truth = get_dataset(cfg.replace(max_images=None), cfg.train_split, build_eval_transform())
        truth.samples = [s for s in truth.samples if s.name not in labelled]
        return unlabelled(truth), truth
    if regime.same_pool not in ("seed", "rest"):
        raise ValueError(f"same_pool={regime.same_pool!r}: expected 'seed' or 'rest'")
    domain = getattr(regime, POOLS[name][0])
    return world_pool(domain, regime.size, regime.pool_frames, seed=regime.pool_seed, progress=False)


# --- the teacher -------------------------------------------------------------------------------
def teacher(regime: Regime, progress: bool = False):
    """The teacher: ``regime.teacher_model`` trained ``teacher_steps`` on the labelled set, a
    cached role (kind ``selftrain_teacher``). Returns ``(model, info)``; ``info``: held-out
    ``mIoU``, per-class ``iou``, ``curve`` (``[step, mIoU]`` every ``teacher_steps /
    curve_points`` steps) and ``train_s``."""
    import torch

    from .. import engine, models
    from ..cache import cached
    every = max(regime.teacher_steps // max(regime.curve_points, 1), 1)
    cfg = regime.config(0, "selftrain_teacher", teacher=True, eval_every=every).replace(progress=progress)

    def build():
        train, val = labelled_sets(regime)
        torch.manual_seed(0)
        curve = []
        out = engine.train(cfg, train_set=train, val_set=val,
                           callbacks=[lambda i: curve.append([i["step"], 100 * i["metrics"]["miou"]])
                                      if i["event"] == "eval" else None])
        m = out["metrics"]
        return out["model"].cpu(), {"mIoU": 100 * m["miou"], "iou": [100 * v for v in m["per_class_iou"]],
                                    "curve": curve, "train_s": round(out["train_time"], 1)}

    return cached("selftrain_teacher", {"version": VERSION, "teacher": regime.teacher_spec()}, build,
                  module=lambda: models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width))


def pseudo_dir(regime: Regime, pool_name: str, mode: str = "hard", labeller=None):
    """The pseudo labels (``mode`` hard / soft) of ``labeller`` (default: the teacher) on pool
    ``pool_name``, generated once into ``data_dir()/pseudo/<labeller fingerprint>/<pool>_<hash of
    its frames>_<mode>`` (one teacher labels different pools under different regimes); returns
    the folder."""
    from ..data import data_dir
    from .pseudo import generate_pseudo_labels, teacher_fingerprint
    import hashlib
    model = teacher(regime)[0] if labeller is None else labeller
    images, _ = pool(regime, pool_name)
    frames = hashlib.sha1("\n".join(str(s.image) for s in images.samples).encode()).hexdigest()[:8]
    out = data_dir() / "pseudo" / teacher_fingerprint(model) / f"{pool_name}_{frames}_{mode}"
    return generate_pseudo_labels(model.eval(), images, out, mode=mode, progress=False)


def pseudo_quality(regime: Regime, pool_names: Sequence[str] = tuple(POOLS)) -> "pd.DataFrame":
    """The mechanism's input, measured against the world's truth: the teacher's hard pseudo
    labels on each pool scored against the pool's true labels (mIoU, pixel accuracy, thin-class
    mean IoU, per-class IoU), beside the teacher's held-out mIoU."""
    import pandas as pd

    from ..data.labels import CITYSCAPES_CLASSES
    from .pseudo import pseudo_label_quality
    _, info = teacher(regime)
    rows = []
    for name in pool_names:
        q = pseudo_label_quality(pseudo_dir(regime, name), pool(regime, name)[1])
        iou = [100 * v for v in q["per_class_iou"]]
        rows.append({"pool": name, "frames": len(pool(regime, name)[0]), "domain": getattr(regime, POOLS[name][0]),
                     "teacher held-out mIoU": info["mIoU"], "pseudo-label mIoU": 100 * q["miou"],
                     "pixel accuracy": 100 * q["pixel_accuracy"],
                     "thin mean": float(np.nanmean([iou[c] for c in THIN])),
                     **{CITYSCAPES_CLASSES[c]: iou[c] for c in range(len(iou))}})
    return pd.DataFrame(rows)


# --- students ----------------------------------------------------------------------------------
#: What the extra part of a student's epoch holds: the labelled set again, the pool's true labels,
#: the teacher's hard / top-3 soft pseudo labels, hard ones under CRST's model regularizer (CSST
#: Eq. 7), or labels the student makes of the pool online, its own argmax (consistency
#: regularization, CSST Eq. 4).
LABELS = ("duplicated", "oracle", "hard", "soft", "mr", "online")
#: Width of the students of other architectures (ST / CSST Table 3) where the regime's width does
#: not suit them (ResNet-50 trunks at cpu).
STUDENT_WIDTHS = {"icnet_resnet50": 8}
#: The losses of the label kinds that are not plain cross-entropy (``paperlib.losses``); CSST gives
#: no model-regularizer weight.
MR_WEIGHT = 0.1
LOSSES = {"soft": ("soft_pseudo_label", {}), "mr": ("model_regularizer", {"weight": MR_WEIGHT}),
          "online": ("consistency", {"threshold": None, "unlabeled_weight": 1.0})}


@dataclasses.dataclass(frozen=True)
class Arm:
    """A student: ``labels`` of the extra part (``LABELS``) on ``pools`` at the real:extra mix
    ``ratio``, with or without centroid sampling. ``pretrain``: instead of training on the mix
    (joint learning), the same steps split as the mix splits them -- the extra part's share on
    the extra part alone, then the labelled share on the labelled frames alone (ST Table 8's
    "pre-training then fine-tuning"). ``loop`` k > 1: the pseudo labels come from this arm's
    round k - 1 student of the same seed, not from the teacher (ST Table 9). ``finetune``: the
    student starts from the trained teacher (its architecture) instead of from scratch (CSST
    Eq. 5, teacher fine-tuning). ``student``: another zoo network than the regime's student (ST /
    CSST Table 3; width ``STUDENT_WIDTHS``)."""

    labels: str
    ratio: tuple[int, int] = (1, 4)
    pools: tuple[str, ...] = ("same",)
    centroid: bool = False
    pretrain: bool = False
    loop: int = 1
    finetune: bool = False
    student: str | None = None

    @property
    def name(self) -> str:
        pools = "" if self.labels == "duplicated" or self.pools == ("same",) else " [" + "+".join(self.pools) + "]"
        return (f"{self.labels} {self.ratio[0]}:{self.ratio[1]}{pools}" + (" PT" if self.pretrain else "")
                + (f" L{self.loop}" if self.loop > 1 else "") + (" FT" if self.finetune else "")
                + (" CS" if self.centroid else "") + (f" @{self.student}" if self.student else ""))

    @property
    def previous(self) -> "Arm":
        """The round before (``loop - 1``): its student labels this round's pool."""
        return dataclasses.replace(self, loop=self.loop - 1)

    @classmethod
    def parse(cls, name: str) -> "Arm":
        """``"hard 1:4 [same+other] CS"`` -> ``Arm("hard", (1, 4), ("same", "other"), True)``;
        ``"hard 1:7 PT"``, ``"hard 1:7 L2"``: pre-trained then fine-tuned, the second loop."""
        usage = (f"student arm {name!r}: expected '<labels> <r>:<p> [pools] [PT] [Lk] [FT] [CS] [@student]' with labels one of "
                 f"{LABELS} and pools among {list(POOLS)}")
        words = name.split()
        try:
            labels, ratio = words[0], tuple(int(x) for x in words[1].split(":"))
            rest = words[2:]
            pools = tuple(rest.pop(0).strip("[]").split("+")) if rest and rest[0].startswith("[") else ("same",)
            loop = next((int(w[1:]) for w in rest if w.startswith("L")), 1)
            student = next((w[1:] for w in rest if w.startswith("@")), None)
        except (IndexError, ValueError):
            raise ValueError(usage) from None
        arm = cls(labels, ratio, pools, "CS" in rest, "PT" in rest, loop, "FT" in rest, student)
        if labels not in LABELS or len(ratio) != 2 or any(p not in POOLS for p in pools) or arm.name != name:
            raise ValueError(usage)
        from .. import models
        if student is not None and student not in models.available():
            raise ValueError(f"student arm {name!r}: {student!r} is not a zoo network; choose from {models.available()}")
        if (arm.loop > 1 and labels not in ("hard", "soft")) or (arm.pretrain and labels == "duplicated") \
                or arm.pretrain + (arm.loop > 1) + arm.finetune > 1 or (labels == "online" and arm.centroid) \
                or (arm.finetune and student is not None):
            raise ValueError(f"student arm {name!r}: loops need pseudo labels (hard / soft), pre-training an extra "
                             "part that is not the labelled set, online labels random crops (they have no "
                             "centroids), and PT, Lk and FT do not combine")
        return arm


def extra_part(regime: Regime, arm: Arm, seed: int = 0):
    """The extra part of ``arm``'s epoch, under the training transform: the pools with their
    true labels (oracle) or with pseudo labels -- the teacher's, or at ``loop`` k > 1 those of the
    round k - 1 student of ``seed``."""
    from ..data.samplers import ConcatSegDataset
    from .pseudo import PseudoLabelDataset
    real, _ = labelled_sets(regime)
    labeller = _student(regime, arm.previous.name, seed)[0] if arm.loop > 1 else None
    parts = []
    for name in arm.pools:
        images, truth = pool(regime, name)
        if arm.labels == "oracle":
            parts.append(_with_transform(truth, real.transform))
        elif arm.labels == "online":
            from .alternatives import OnlineLabelDataset
            parts.append(OnlineLabelDataset(images, real.transform))
        else:
            parts.append(PseudoLabelDataset(pseudo_dir(regime, name, _mode(arm), labeller), images,
                                            transform=real.transform))
    return parts[0] if len(parts) == 1 else ConcatSegDataset(parts)


def _mode(arm: Arm) -> str:
    """The pseudo-label mode an arm trains on (the model regularizer's are hard labels)."""
    return "soft" if arm.labels == "soft" else "hard"


def student_set(regime: Regime, arm: Arm, seed: int = 0):
    """The student's training set: the labelled frames mixed ``arm.ratio`` with the extra part
    (``pipeline.mix_real_pseudo``)."""
    from .pipeline import mix_real_pseudo
    real, _ = labelled_sets(regime)
    if arm.labels == "duplicated":
        return mix_real_pseudo(real, None, arm.ratio, duplicate_real=True)
    return mix_real_pseudo(real, extra_part(regime, arm, seed), arm.ratio)


def _with_transform(dataset, transform):
    """A shallow copy of a ``SegDataset`` with another transform (the pool's true labels under the
    student's training transform; the labelled frames under the eval transform)."""
    import copy
    out = copy.copy(dataset)
    out.transform = transform
    return out


def prepare(regime: Regime, arms: Sequence[str]) -> None:
    """Everything the students share, made once in this process before any fork: the labelled
    sets, the pools, the teacher and its pseudo labels (a later loop's labels come from its
    students, in ``run_students``' stages)."""
    labelled_sets(regime)
    for a in map(Arm.parse, arms):
        for name in a.pools if a.labels != "duplicated" else ():
            pool(regime, name)
            if a.labels in ("hard", "soft", "mr"):
                pseudo_dir(regime, name, _mode(a))


def _student(regime: Regime, arm: str, seed: int, cache: bool = True):
    """``(model, info)`` of the student of ``arm`` with ``seed``: a cached role (kind
    ``selftrain_student``: regime, arm, seed); ``info["row"]`` is its scores."""
    import torch

    from .. import engine, models
    from ..cache import cached
    spec = Arm.parse(arm)
    every = max(regime.steps // max(regime.curve_points, 1), 1)
    cfg = regime.config(seed, f"selftrain_{spec.labels}_{seed}", eval_every=every, centroid=spec.centroid)
    if spec.labels in LOSSES:  # on the extra items; cross-entropy on the real ones
        cfg = cfg.replace(loss=LOSSES[spec.labels][0], loss_options=dict(LOSSES[spec.labels][1]))
    if spec.finetune:  # the teacher's network, from its trained weights
        cfg = cfg.replace(model=regime.teacher_model, model_width=regime.teacher_width)
    if spec.student:
        cfg = cfg.replace(model=spec.student, model_width=STUDENT_WIDTHS.get(spec.student, regime.width))

    def build():
        import copy
        real, val = labelled_sets(regime)
        torch.manual_seed(int(seed))
        model = copy.deepcopy(teacher(regime)[0]) if spec.finetune else None
        curve, offset, train_s = [], 0, 0.0
        stages = [(cfg, student_set(regime, spec, seed))]
        if spec.pretrain:  # the mix's steps, split as the mix splits its samples
            r, p = spec.ratio
            pre = min(regime.steps - 1, max(1, round(regime.steps * p / (r + p))))
            stages = [(cfg.replace(steps=pre, eval_every=0, name=cfg.name + "_pretrain"), extra_part(regime, spec, seed)),
                      (cfg.replace(steps=regime.steps - pre, eval_every=max((regime.steps - pre) // max(regime.curve_points, 1), 1)),
                       real)]
        for k, (c, data) in enumerate(stages):
            last = k == len(stages) - 1
            out = engine.train(c, model=model, train_set=data, val_set=val if last else None,
                               callbacks=[lambda i, o=offset: curve.append([o + i["step"], 100 * i["metrics"]["miou"]])
                                          if i["event"] == "eval" else None])
            model, offset, train_s = out["model"], offset + c.steps, train_s + out["train_time"]
        iou = [100 * v for v in out["metrics"]["per_class_iou"]]
        fit = engine.evaluate(model, own_frames(regime), num_classes=cfg.num_classes, mode="whole")
        row = {"seed": int(seed), "mIoU": 100 * out["metrics"]["miou"], "fit": 100 * fit["miou"],
               "thin mean": float(np.nanmean([iou[c] for c in THIN])), "train_s": round(train_s, 1),
               "curve": curve, **{f"iou_{c}": iou[c] for c in range(len(iou))}}
        return model.cpu(), {"row": row}

    fields = dataclasses.asdict(regime)
    if fields["same_pool"] == "seed":  # the candidates before the field keep their keys
        del fields["same_pool"]
    key = {"version": VERSION, "regime": fields, "arm": spec.name, "seed": int(seed)}
    return cached("selftrain_student", key, build, enabled=cache,
                  module=lambda: models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width))


def run_student(regime: Regime, arm: str, seed: int, cache: bool = True) -> dict:
    """Train the student of ``arm`` with ``seed`` for ``regime.steps`` and score it on the held-out
    frames (mIoU, per-class IoU, thin-class mean, and ``fit`` on its own labelled frames) with its
    held-out curve (``curve_points`` evaluations). A cached role (``_student``). Returns the row."""
    return dict(_student(regime, arm, seed, cache)[1]["row"], arm=arm)


def run_students(regime: Regime, arms: Sequence[str], seeds: Sequence[int], jobs: int = 1,
                 progress: bool = True) -> list[dict]:
    """``run_student`` for every (arm, seed), in ``jobs`` processes of one thread each; rows in
    the order asked. The teacher, pools and pseudo labels are made first, in this process; arms
    of a later loop run in a later stage, after the students that label their pools."""
    prepare(regime, arms)
    tasks = [(regime, a, s) for s in seeds for a in arms]
    rows = {}
    for loop in sorted({Arm.parse(a).loop for a in arms}):
        stage = [t for t in tasks if Arm.parse(t[1]).loop == loop]
        rows.update(zip(stage, run_all(run_student, stage, jobs, f"students (loop {loop})" if loop > 1 else "students",
                                       progress)))
    return [rows[t] for t in tasks]


def loop_pseudo_quality(regime: Regime, arm: str, seeds: Sequence[int]) -> "pd.DataFrame":
    """The pseudo labels each round of ``arm``'s loops trained on, scored against the same-domain
    pool's true labels: round 1 the teacher's (one labelling, repeated per seed), round k the
    round k - 1 student's of that seed (ST Table 9's mechanism: does relabelling improve them?)."""
    import pandas as pd

    from .pseudo import pseudo_label_quality
    spec = Arm.parse(arm)
    truth = pool(regime, "same")[1]
    rows = []
    for k in range(1, spec.loop + 1):
        for s in seeds:
            labeller = _student(regime, dataclasses.replace(spec, loop=k - 1).name, s)[0] if k > 1 else None
            q = pseudo_label_quality(pseudo_dir(regime, "same", _mode(spec), labeller), truth)
            rows.append({"round": k, "seed": int(s), "pseudo-label mIoU": 100 * q["miou"],
                         "pixel accuracy": 100 * q["pixel_accuracy"]})
    return pd.DataFrame(rows)


def student_frame(rows: Sequence[dict]) -> "pd.DataFrame":
    """The runs as one frame for ``paperlib.claims``: a row per (arm, seed), the curve's last
    third as ``late gain`` (held-out mIoU at the end minus at two thirds of the steps: the
    plateau)."""
    import pandas as pd
    out = []
    for r in rows:
        c = r.get("curve") or []
        late = [m for s, m in c if s >= 2 * c[-1][0] / 3] if c else []
        out.append({**{k: v for k, v in r.items() if k != "curve"},
                    "late gain": (late[-1] - late[0]) if len(late) > 1 else float("nan")})
    df = pd.DataFrame(out)
    df = df[["arm", "seed"] + [c for c in df.columns if c not in ("arm", "seed")]]
    if "fit" not in df.columns:
        return df
    base = df[df["arm"] == CALIBRATION_ARMS[0]]  # the capacity control's arm: its fit to its own frames
    return pd.concat([df, base.assign(arm=OWN_FRAMES, mIoU=base["fit"])], ignore_index=True)


def teacher_late_gain(info: dict) -> float:
    """The teacher's held-out mIoU at the end minus at two thirds of its steps."""
    c = info["curve"]
    late = [m for s, m in c if s >= 2 * c[-1][0] / 3]
    return late[-1] - late[0] if len(late) > 1 else float("nan")


#: The arms of the calibration (controls only): the duplicated-real baseline and the oracle.
CALIBRATION_ARMS = ("duplicated 1:4", "oracle 1:4")
#: ``student_frame``'s arm holding the duplicated-real students' mIoU on their own labelled frames.
OWN_FRAMES = "duplicated 1:4 (own labelled frames)"


def plateau_checks(teacher_info: dict, students: "pd.DataFrame", baseline: str = "duplicated 1:4",
                   tolerance: float = 1.0) -> dict[str, bool]:
    """The calibration's plateau checks (``selftrain.toml`` item ``calibration``): the teacher's
    late gain, and the mean late gain of the ``baseline`` students, below ``tolerance`` points."""
    late = students.loc[students["arm"] == baseline, "late gain"]
    return {"cal_teacher_plateau": bool(teacher_late_gain(teacher_info) < tolerance),
            "cal_students_plateau": bool(len(late) > 0 and late.mean() < tolerance)}


# --- ST Table 1 / CSST Table 1 (notebook selftrain_table1_pseudo) ------------------------------
#: CSST Table 1's real:pseudo mixes (3K:3K, 3K:6K, 3K:12K, 3K:40K).
CSST_RATIOS = ("1:1", "1:2", "1:4", "3:40")
#: The students of ST Table 1 and CSST Table 1, every one at the regime's steps. The
#: duplicated-real students (real labels only) are the same-architecture, same-steps baselines:
#: at fixed steps "duplicated 1:m" trains on the labelled set alone for every m, so one run (with
#: and one without centroid sampling) serves every ratio. CSST's pseudo labels come from both
#: pools (coarse* and Mapillary*, 40K in the paper).
#: ST Table 1's rows -> the student arm that plays each. Its students are half real, half pseudo
#: per epoch with centroid sampling (ST Table 2a's 1:1 w CS is Table 1's 79.3); its "Teacher: fine"
#: is the supervised model of the students' architecture -- here the duplicated-real student at
#: the same steps (the regime's teacher, a stronger network, is only the source of the labels).
ST_TABLE1_ROWS = {"Teacher: fine": "duplicated 1:4", "Teacher: fine, centroid sampling": "duplicated 1:4 CS",
                  "Oracle: fine + coarse* true labels": "oracle 1:4",
                  "Student: fine + coarse*": "hard 1:1 CS",
                  "Student: fine + coarse* + Mapillary*": "hard 1:1 [same+other] CS"}
#: CSST Table 1 is run as two notebooks (each within the cpu time budget): the smaller pseudo sets
#: (1:1, 1:2; table ``table1_centroid``) and the larger ones (1:4, 3:40; ``table1_centroid_more``,
#: with 1:1 again, the reference of its "more pseudo labels keep helping" claims). Both share the
#: duplicated-real and oracle runs (the calibration's) and the 1:1 students through the cache.
#: The oracle control's pool share ("oracle 1:4": the coarse* pool with its true labels).
ORACLE_RATIO = "1:4"
CSST_TABLE1_RATIOS = {"table1_centroid": ("1:1", "1:2"), "table1_centroid_more": ("1:1", "1:4", "3:40")}


def csst_table1_arms(ratios: Sequence[str]) -> tuple[str, ...]:
    """The student arms of CSST Table 1 at ``ratios``: both duplicated-real baselines, the oracle
    control and the pseudo-label students on both pools, with and without centroid sampling."""
    return (("duplicated 1:4", "duplicated 1:4 CS", "oracle 1:4")
            + tuple(f"hard {r} [same+other]{cs}" for cs in ("", " CS") for r in ratios))


def rows_frame(runs: "pd.DataFrame", rows: dict[str, str], col: str = "row") -> "pd.DataFrame":
    """A paper table's rows from the student runs (``student_frame``): ``rows`` maps each row
    name (column ``col``) to the student arm that plays it (one arm may play several rows)."""
    import pandas as pd
    parts = [runs[runs["arm"] == arm].assign(**{col: row}) for row, arm in rows.items()]
    return pd.concat(parts, ignore_index=True)[[col, "arm", "seed", "mIoU", "thin mean"]]


def st_table1_frame(runs: "pd.DataFrame") -> "pd.DataFrame":
    """ST Table 1's rows (``ST_TABLE1_ROWS``) from the student runs (``student_frame``)."""
    return rows_frame(runs, ST_TABLE1_ROWS)


#: Self-training Appendix A (Tables 7-9) -> rows -> student arms, at real:pseudo 1:7 (the
#: appendix's 7:1) on the same-domain pool. "baseline (teacher)" is the duplicated-real student
#: (the supervised model of the students' architecture at the same steps); the oracle row is the
#: control (the calibration's runs); the hard / joint / 1-loop student is one run.
APPENDIX_ROWS = {
    "table7": {"baseline (teacher)": "duplicated 1:4", "oracle (pool's true labels)": "oracle 1:4",
               "soft pseudo labels": "soft 1:7", "hard pseudo labels (ours)": "hard 1:7"},
    "table8": {"baseline (teacher)": "duplicated 1:4", "oracle (pool's true labels)": "oracle 1:4",
               "pre-training then fine-tuning": "hard 1:7 PT", "joint learning (ours)": "hard 1:7"},
    "table9": {"baseline (teacher)": "duplicated 1:4", "oracle (pool's true labels)": "oracle 1:4",
               "1-loop": "hard 1:7", "2-loop": "hard 1:7 L2", "3-loop": "hard 1:7 L3"},
}


def csst_table1_frame(runs: "pd.DataFrame", ratios: Sequence[str] = CSST_RATIOS) -> "pd.DataFrame":
    """CSST Table 1 in the long form of ``paperlib/reference/csst/table1_centroid_long.csv``: a row
    per (labels, real:extra, sampler, seed). "real (teacher)" and "real, duplicated" at every
    ratio are the duplicated-real runs (one per sampler: at fixed steps they are the same
    training), "real + pseudo" the students on both pools, "real + oracle" the pool's true labels
    (the control)."""
    import pandas as pd

    def pick(arm: str, **cols) -> "pd.DataFrame":
        sub = runs[runs["arm"] == arm]
        return sub.assign(**cols)[list(cols) + ["arm", "seed", "mIoU", "thin mean"]]

    parts = []
    for cs, sampler in (("", "random"), (" CS", "centroid")):
        dup = f"duplicated 1:4{cs}"
        parts.append(pick(dup, labels="real (teacher)", **{"real:extra": "1:0"}, sampler=sampler))
        for r in ratios:
            parts.append(pick(f"hard {r} [same+other]{cs}", labels="real + pseudo", **{"real:extra": r}, sampler=sampler))
            parts.append(pick(dup, labels="real, duplicated", **{"real:extra": r}, sampler=sampler))
        if ORACLE_RATIO not in ratios and not cs:  # the oracle control's baseline row
            parts.append(pick(dup, labels="real, duplicated", **{"real:extra": ORACLE_RATIO}, sampler=sampler))
    parts.append(pick("oracle 1:4", labels="real + oracle", **{"real:extra": ORACLE_RATIO}, sampler="random"))
    return pd.concat(parts, ignore_index=True)


def csst_table1_reference(table: "pd.DataFrame") -> "pd.DataFrame":
    """The paper's CSST Table 1 rows (``csst/table1_centroid_long``) that ``table`` has."""
    from .. import reference
    ref = reference.load("csst", "table1_centroid_long")
    keys = ["labels", "real:extra", "sampler"]
    have = set(map(tuple, table[keys].drop_duplicates().itertuples(index=False)))
    out = ref[[tuple(k) in have for k in ref[keys].itertuples(index=False)]].copy()
    out.attrs.update(ref.attrs)
    return out


def csst_table1_figure(table: "pd.DataFrame", ratios: Sequence[str], title: str):
    """CSST Table 1 beside the paper: left, ours -- each pseudo-label student minus the
    duplicated-real student of its sampler, per seed (mean +- SE; every arm trains the same steps);
    right, the paper's rows at the same ratios (its students at 1:m also train (1 + m) / 2 times
    longer than at 1:1; its duplicated rows match those lengths)."""
    import matplotlib.pyplot as plt

    from .. import reference
    ref = reference.load("csst", "table1_centroid_long")
    ref = ref[ref["real:extra"].isin(ratios)]
    share = {r: float(r.split(":")[1]) / float(r.split(":")[0]) for r in ratios}
    by = table.set_index(["labels", "real:extra", "sampler", "seed"])["mIoU"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for sampler, ls in (("centroid", "-"), ("random", "--")):
        gains = [(by.loc["real + pseudo", r, sampler] - by.loc["real, duplicated", r, sampler]).dropna() for r in ratios]
        axes[0].errorbar([share[r] for r in ratios], [g.mean() for g in gains],
                         yerr=[g.sem() if len(g) > 1 else 0 for g in gains], marker="o", ls=ls, capsize=3,
                         label=f"pseudo - duplicated, {sampler}")
        for labels, marker in (("real + pseudo", "o"), ("real, duplicated", "s")):
            sub = ref[(ref["labels"] == labels) & (ref["sampler"] == sampler)]
            axes[1].plot([share[r] for r in sub["real:extra"]], sub["mIoU"], marker=marker, ls=ls,
                         label=f"{labels}, {sampler}")
    axes[0].axhline(0, color="k", lw=0.6)
    axes[0].set_ylabel("mIoU difference (points)")
    axes[1].set_ylabel("mIoU (%)")
    for ax, t in zip(axes, (title, "paper (CSST Table 1)")):
        ax.set_xscale("log")
        ax.set_xlabel("pseudo : real samples per epoch")
        ax.set_title(t, fontsize=9)
        ax.legend(fontsize=7)
    plt.tight_layout()
    return fig


def students_note(regime: Regime, teacher_info: dict, quality: "pd.DataFrame") -> str:
    """The table note of a student table: the regime, the teacher's held-out mIoU and its pseudo
    labels' mIoU on each pool (``pseudo_quality``)."""
    pools = "; ".join(f"{q['pool']} pool ({q['domain']}, {q['frames']} frames): pseudo-label mIoU "
                      f"{q['pseudo-label mIoU']:.1f}" for _, q in quality.iterrows())
    return (f"{regime.describe()}. Teacher held-out mIoU {teacher_info['mIoU']:.2f}; {pools}. Every row trains "
            f"{regime.steps} steps (same initialisation and sample stream per seed).")


#: CSST Table 2 (self-training against its alternatives, Sec. 3.1.1) -> rows -> student arms, at
#: real:pseudo 1:4 on the same-domain pool with random crops (online labels have no centroids),
#: every row the same steps. "teacher (baseline)" is the duplicated-real student; teacher
#: fine-tuning continues from the trained teacher for those steps; the oracle row is the control.
CSST_TABLE2_ROWS = {"teacher (baseline)": "duplicated 1:4", "oracle (pool's true labels)": "oracle 1:4",
                    "self-training (ours)": "hard 1:4", "consistency regularization": "online 1:4",
                    "teacher fine-tuning": "hard 1:4 FT", "soft pseudo labels": "soft 1:4",
                    "model regularizer": "mr 1:4"}


def baseline_gains_figure(panels: dict, baseline: str = "teacher (baseline)", col: str = "method", label: str = ""):
    """Per panel ``title -> (table, paper, paper_base)``: each row of ``table`` (``rows_frame``)
    minus its ``baseline`` row, per seed (bars: mean +- SE, dots: seeds), beside the paper's row
    (``paper``: row -> mIoU) minus ``paper_base`` (grey)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.9), squeeze=False)
    for ax, (title, (df, paper, paper_base)) in zip(axes[0], panels.items()):
        base = df[df[col] == baseline].set_index("seed")["mIoU"]
        names = [n for n in dict.fromkeys(df[col]) if n != baseline]
        for k, n in enumerate(names):
            d = df[df[col] == n].set_index("seed")["mIoU"] - base
            ax.bar(k - 0.2, d.mean(), width=0.4, color="tab:blue", yerr=d.sem() if len(d) > 1 else 0, capsize=3)
            ax.scatter(np.full(len(d), k - 0.2), d, color="k", s=10, zorder=3)
            if n in paper and np.isfinite(paper[n]):
                ax.bar(k + 0.2, paper[n] - paper_base, width=0.4, color="tab:gray", alpha=0.7)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
        ax.set_ylabel(f"mIoU - {baseline} (points)")
        ax.set_title(title, loc="left")
    fig.legend(handles=[Patch(color="tab:blue", label=f"ours{label} (equal steps; dots: seeds)"),
                        Patch(color="tab:gray", alpha=0.7, label="paper")], loc="upper center", ncol=2, fontsize=8)
    plt.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


#: ST / CSST Table 3 ("generalizing to other students"): per student, the duplicated-real baseline,
#: the oracle control, and the teacher's hard pseudo labels without and with centroid sampling --
#: the paper's self-training student is the latter (CSST's recipe); the former separates what the
#: pseudo labels do from what the sampler does. Arm -> (labels, sampler) of the long table.
TABLE3_ROWS = {"duplicated 1:4": ("real, duplicated", "random"), "oracle 1:4": ("real + oracle", "random"),
               "hard 1:4": ("real + pseudo", "random"), "hard 1:4 CS": ("real + pseudo", "centroid")}
#: The arms of a student whose sampler effect is not separated (the notebooks' time budget).
TABLE3_RECIPE = ("duplicated 1:4", "oracle 1:4", "hard 1:4 CS")


def table3_arms(regime: Regime, student: str, separate: bool = True) -> tuple[str, ...]:
    """``student``'s arms of Table 3 (``TABLE3_ROWS``, or ``TABLE3_RECIPE`` without ``separate``);
    the regime's own student keeps the plain names (the runs other tables share)."""
    return tuple(a if student == regime.model else f"{a} @{student}"
                 for a in (TABLE3_ROWS if separate else TABLE3_RECIPE))


def table3_frame(runs: "pd.DataFrame", regime: Regime) -> "pd.DataFrame":
    """Table 3 in long form (``paperlib/reference/*/table3_students_long.csv``): a row per
    (student, labels, sampler, seed) from the student runs (``student_frame``) of ``table3_arms``."""
    import pandas as pd
    rows = []
    for r in runs.to_dict("records"):
        if r["arm"] == OWN_FRAMES:
            continue
        spec = Arm.parse(r["arm"])
        base = dataclasses.replace(spec, student=None).name
        if base not in TABLE3_ROWS:
            continue
        labels, sampler = TABLE3_ROWS[base]
        rows.append({"student": spec.student or regime.model, "labels": labels, "sampler": sampler,
                     "arm": r["arm"], "seed": r["seed"], "mIoU": r["mIoU"], "thin mean": r["thin mean"]})
    return pd.DataFrame(rows)


def student_params(regime: Regime, students: Sequence[str]) -> dict[str, int]:
    """Parameters of each student network as the regime builds it (width ``STUDENT_WIDTHS``)."""
    from .. import models
    from ..profiling import count_parameters
    cfg = regime.config(0, "sizes")
    return {s: int(count_parameters(models.build(s, num_classes=cfg.num_classes,
                                                 width=STUDENT_WIDTHS.get(s, regime.width)))[0]) for s in students}


#: The Table 3 notebooks' tables and the students each adds with ``TABLE3_RECIPE`` (cpu; the heavy
#: ones from the gpu profile). Every table also shows the separated students (the regime's own and
#: FastSCNN, trained once and shared through the cache). CSST's real-time students are two tables
#: so that each notebook trains at most 12 new students (about 14 min on 2 cores): 24 in one took
#: 29 min at cpu.
TABLE3_TABLES = {"selftrain": {"table3_students": ([], ["deeplabv3plus_wrn38", "pspnet_resnet101"])},
                 "csst": {"table3_students": (["bisenet_resnet18"],
                                              ["pspnet_resnet101", "deeplabv3plus_wrn38", "ocr_hrnet_w48"]),
                          "table3_students_icnet": (["icnet_resnet50"], [])}}


def table3_students(profile: str, paper: str, table: str = "table3_students") -> tuple[list[str], list[str]]:
    """``(separated, recipe)`` students of ``paper``'s Table 3 table ``table`` (``TABLE3_TABLES``)
    at ``profile``: the first get every arm of ``TABLE3_ROWS`` (pseudo labels and sampler apart),
    the second ``TABLE3_RECIPE``. At cpu the regime's own student and FastSCNN are separated
    (shared by every Table 3 notebook), CSST adds BiSeNet-R18 (``table3_students``) and ICNet-R50
    (``table3_students_icnet``); the heavy students (PSPNet-R101, WRN38, HRNet-W48) train only
    from the gpu profile."""
    if table not in TABLE3_TABLES.get(paper, {}):
        raise ValueError(f"unknown Table 3 table {paper}/{table}; expected one of "
                         f"{[f'{p}/{t}' for p, ts in TABLE3_TABLES.items() for t in ts]}")
    regime = SMOKE_REGIME if profile == "smoke" else CPU_REGIME
    separated = [regime.model, "fastscnn"]
    recipe, heavy = TABLE3_TABLES[paper][table]
    if profile == "smoke":  # a table of its own students (ICNet) keeps them, so that it has claims to show
        return separated, [] if table == "table3_students" else list(recipe)
    return separated, list(recipe) + (list(heavy) if profile in ("gpu", "paper") else [])


@dataclasses.dataclass
class Table3Study:
    """One Table 3 notebook's run (``table3_study``): its regime, seeds, students, the teacher's
    info, the pseudo labels' quality and the long-form table (``table3_frame`` with each student's
    parameter count)."""
    regime: Regime
    seeds: list
    separated: list
    recipe: list
    teacher_info: dict
    quality: "pd.DataFrame"
    table: "pd.DataFrame"

    def params(self) -> dict:
        """What the notebook's manifest records beside its parameters."""
        students = self.separated + self.recipe
        return {"seeds": self.seeds, "regime": dataclasses.asdict(self.regime),
                "students": {"separated": self.separated, "recipe": self.recipe},
                "widths": {s: STUDENT_WIDTHS.get(s, self.regime.width) for s in students}}

    def notes(self) -> str:
        """The table note: ``students_note`` and the students with their widths."""
        students = self.separated + self.recipe
        return (students_note(self.regime, self.teacher_info, self.quality) + " Students: " + ", ".join(
            f"{s} (width {STUDENT_WIDTHS.get(s, self.regime.width)})" for s in students)
            + "; pseudo labels and sampler separated for " + ", ".join(self.separated) + ".")


def table3_study(profile: str, paper: str, table: str = "table3_students", seeds=None, jobs=None) -> Table3Study:
    """Run (or load) every student of ``paper``'s Table 3 table ``table`` (``table3_students``) at
    ``profile``: the teacher, its pseudo labels on the same-domain pool and each student's arms
    (``table3_arms``) for every seed, in ``jobs`` one-thread processes (``profile_setup``)."""
    regime, seeds, jobs = profile_setup(profile, seeds, jobs)
    separated, recipe = table3_students(profile, paper, table)
    arms = [a for s in separated for a in table3_arms(regime, s)] + \
           [a for s in recipe for a in table3_arms(regime, s, separate=False)]
    sizes = student_params(regime, separated + recipe)
    print(regime.describe())
    print(f"students {separated + recipe} (parameters {sizes}); {len(arms)} arms x seeds {seeds}, {jobs} process(es)")
    _, t_info = teacher(regime, progress=profile != "smoke")
    quality = pseudo_quality(regime, ["same"])
    frame = table3_frame(student_frame(run_students(regime, arms, seeds, jobs=jobs)), regime)
    frame.insert(1, "params", [sizes[s] for s in frame["student"]])
    return Table3Study(regime, seeds, separated, recipe, t_info, quality, frame)


def table3_figure(table: "pd.DataFrame", paper_long: "pd.DataFrame", title: str):
    """Per student, per seed minus its duplicated-real baseline: the oracle (the control), the
    pseudo labels alone and with centroid sampling (the paper's self-training), beside the
    paper's self-training gain (grey)."""
    import matplotlib.pyplot as plt
    by = table.set_index(["student", "labels", "sampler", "seed"])["mIoU"]
    ref = paper_long.set_index(["student", "labels", "sampler"])["mIoU"]
    students = list(dict.fromkeys(table["student"]))
    bars = [("real + oracle", "random", "oracle (control)", "tab:green"),
            ("real + pseudo", "random", "pseudo labels, random crops", "tab:orange"),
            ("real + pseudo", "centroid", "pseudo labels + centroid sampling", "tab:blue")]
    fig, ax = plt.subplots(figsize=(1.9 * len(students) + 3, 3.8))
    w = 0.8 / (len(bars) + 1)
    for k, (labels, sampler, name, color) in enumerate(bars):
        for i, s in enumerate(students):
            try:
                d = (by.loc[s, labels, sampler] - by.loc[s, "real, duplicated", "random"]).dropna()
            except KeyError:
                continue
            x = i + (k - len(bars) / 2) * w
            ax.bar(x, d.mean(), w, color=color, yerr=d.sem() if len(d) > 1 else 0, capsize=2,
                   label=name if i == 0 else None)
            ax.scatter(np.full(len(d), x), d, color="k", s=6, zorder=3)
    shown = False
    for i, s in enumerate(students):
        if (s, "real + pseudo", "centroid") in ref.index:
            ax.bar(i + (len(bars) / 2) * w, ref[s, "real + pseudo", "centroid"] - ref[s, "real, duplicated", "random"],
                   w, color="tab:gray", alpha=0.7, label=None if shown else "paper: self-training gain")
            shown = True
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(students)), students, rotation=10, fontsize=8)
    ax.set_ylabel("mIoU - duplicated real (points)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    plt.tight_layout()
    return fig


#: ST / CSST Table 4 (fast crop schedules) at mechanism scale (issue #18): the regime's student
#: network on every labelled training frame of its world for tens of epochs, so that the crop
#: sizes -- not the number of optimizer steps -- are what a fast schedule changes: 36 epochs with
#: a 4-epoch crop warm-up (the papers' 20 of 180, 11 %), crops 64..128 (the papers' 400..800
#: ratio), batch 8 at 128 scaled up to 32 at 64 (pixels per batch kept, ``batch_for_crop``).
SCHEDULE_PROTOCOL = {"epochs": 36, "warmup": 4, "sizes": (64, 80, 96, 112, 128)}
SMOKE_SCHEDULE_PROTOCOL = {"epochs": 3, "warmup": 1, "sizes": (32, 48)}


def schedule_setup(profile: str) -> tuple[Regime, dict, "object"]:
    """``(regime, protocol, config)`` of the schedule runs at ``profile``: the baseline's
    ``TrainConfig`` (constant largest crop; epochs, not steps; poly power 0.9 as the papers)."""
    regime = SMOKE_REGIME if profile == "smoke" else CPU_REGIME
    proto = SMOKE_SCHEDULE_PROTOCOL if profile == "smoke" else SCHEDULE_PROTOCOL
    cfg = regime.config(0, "st_table4").replace(
        steps=None, epochs=proto["epochs"], max_images=None, crop_size=(max(proto["sizes"]),) * 2,
        crop_sizes=list(proto["sizes"]), batch_scaling=True, poly_power=0.9, eval_every=0)
    return regime, proto, cfg


def schedule_runs(proto: dict) -> dict[str, dict]:
    """The runs of Table 4: the baseline (largest crop every epoch), the same baseline for 2/3 of
    the epochs (its plateau check), and each fast schedule without and with warm-up."""
    from .schedules import SCHEDULES
    runs = {"baseline": {"crop_schedule": "constant"},
            "baseline, 2/3 epochs": {"crop_schedule": "constant", "epochs": round(2 * proto["epochs"] / 3)}}
    for name in SCHEDULES[1:]:
        runs[f"{name}|no"] = {"crop_schedule": name}
        runs[f"{name}|yes"] = {"crop_schedule": name, "crop_warmup_epochs": proto["warmup"]}
    return runs


def schedule_frame(rows: Sequence[dict]) -> "pd.DataFrame":
    """``run_schedules`` rows as the table: schedule, warm-up, seed, mIoU, times, speed-ups (and
    their share of the ideal pixel speed-up), steps, samples."""
    import pandas as pd
    return pd.DataFrame([{
        "schedule": r["run"].split("|")[0], "warm-up": (r["run"].split("|") + ["-"])[1], "seed": r["seed"],
        "mIoU": 100 * r["miou"], "time (s)": r["train_time"], "cpu time (s)": r["train_cpu_time"],
        "speed-up": r["speedup"], "cpu speed-up": r["cpu_speedup"], "ideal speed-up": r["ideal_speedup"],
        "share of ideal": r["cpu_speedup"] / r["ideal_speedup"], "steps": r["steps"], "samples": r["samples"]}
        for r in rows])


def distinct_sequences(rows: Sequence[dict]) -> dict[str, list[str]]:
    """Runs with the same crop sequence as an earlier run (run -> the runs it repeats): such
    rows can differ only by noise, so claims comparing them are left out."""
    seen, same = {}, {}
    for r in rows:
        key = tuple(r["crops"])
        if key in seen and seen[key] != r["run"]:
            same.setdefault(r["run"], []).append(seen[key])
        seen.setdefault(key, r["run"])
    return {k: sorted(set(v)) for k, v in same.items()}
