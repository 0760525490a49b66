"""DUC/HDC at mechanism scale: change only the top layer of a trained backbone, where thin things exist.

The paper (Wang et al., WACV 2018, Sec. 4.1) changes *only the top layer* of an ImageNet-pretrained
DeepLab-v2 ResNet-101 (bilinear -> DUC -> deconvolution) and trains each model the same way. Its
claims can only show where

1. every head starts from the **same trained backbone**, so heads compete on what they do with
   its features, not on how fast 2M parameters train from scratch next to 44K;
2. the **thin classes exist** at the training resolution: DUC's argument is detail below the
   output stride, so the bilinear baseline must already segment poles, lights and signs (the
   *thin-class control*: its thin-class IoU is clearly above zero; at 128x256 they are 1-3 px wide
   and sit at IoU 0).

**The regime** (``Regime``). The world at 256x512 (CamVid-like 2x the cpu profile's frames), the
DeepLab-v2 structure at ResNet-18 depth and base width 16 (``deeplabv2_resnet101`` with
``depth=18``; the paper: ResNet-101, width 64), output stride 8 and the four-branch ASPP
classifier (rates 6, 12, 18, 24).

- **The backbone** (``backbone``, a cached role ``duchdc_backbone``): the network with the
  bilinear head trained to a plateau on *another* world (``world_seed + 1``: the same classes,
  other streets), the stand-in for ImageNet pre-training: the evaluated world's frames are never
  seen before fine-tuning. Its held-out curve is recorded (``info["curve"]``).
- **An arm** (``ARMS``: head, cell, ASPP, output stride, HDC rates, patch scheme) is built with a
  freshly initialised top layer (seeded: ``torch.manual_seed(seed)``), the backbone's weights
  loaded, and the *whole* network fine-tuned for ``steps`` on the evaluated world's training
  frames (same steps, batch, data order per seed for every arm: equal cost). The bilinear arm's
  head is re-initialised too, so every head is treated the same way.

Scores (``score``) on the whole held-out frames: mIoU, per-class IoU, the thin classes' mean IoU
(pole, traffic light, traffic sign), the boundary F-score at 2 px (``metrics.boundary_f_score``)
and *speckle* (share of pixels unlike their 5x5 majority: the gridding artefact of Figure 5).

Honest limits: the backbone was pre-trained with the bilinear head, so its top features are
co-adapted to bilinear upsampling (ImageNet features are not); the world's thin objects are
rendered, not photographed; 4 paired seeds vary the heads' initialisation and data order, never
the backbone (there is one, as the paper's ImageNet weights are one).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .pool import run_all

#: Cityscapes train ids of the thin classes (pole, traffic light, traffic sign).
THIN = (5, 6, 7)
#: The DeepLab-v2 ASPP classifier's rates: 4 branches (the paper's base) or 6 (Table 1's "ASPP 6").
ASPP = {4: (6, 12, 18, 24), 6: (6, 12, 18, 24, 30, 36)}


@dataclasses.dataclass(frozen=True)
class Arm:
    """One model and training recipe of Tables 1-3. ``scheme``: ``"random"`` = the regime's random
    scale and crop (Table 3); ``"fixed12"`` / ``"jitter7"`` / ``"patch_random"`` = the paper's patch
    schemes of Table 1 (``paperlib.data.patches``: no random scaling, flip only), the last being
    plain random crops of the 12-fold crop size."""

    head: str = "duc"          # bilinear | duc | deconv8 | deconv2x4
    cell: int = 2
    aspp: int = 4
    ds: int = 8                # output stride
    hdc: str | None = None     # an HDC variant of backbones.hdc_block_rates (None: standard 2, 4)
    scheme: str = "random"

    def model_options(self, depth: int, rate_scale: float = 1.0) -> dict:
        """The ``deeplabv2_resnet101`` options; ASPP rates times ``rate_scale`` (rounded, >= 1)."""
        rates = tuple(max(1, round(r * rate_scale)) for r in ASPP[self.aspp])
        opts = {"depth": depth, "head": self.head, "cell": self.cell, "rates": rates, "output_stride": self.ds}
        if self.hdc:
            opts["hdc"] = self.hdc
        return opts


#: Every arm of the DUC/HDC notebooks by the name their tables and claims use.
ARMS = {
    # Table 3 (regime's random scale + crop)
    "bilinear (baseline)": Arm(head="bilinear"),
    "deconv x8": Arm(head="deconv8"),
    "deconv x2 then x4": Arm(head="deconv2x4"),
    "DUC (cell 2)": Arm(),
    "DUC (cell 1)": Arm(cell=1),
    # Table 1 (the paper's patch schemes, one factor at a time around "DUC")
    "bilinear baseline": Arm(head="bilinear", scheme="fixed12"),
    "DUC, random crop": Arm(scheme="patch_random"),
    "DUC": Arm(scheme="fixed12"),
    "DUC, cell 1": Arm(cell=1, scheme="fixed12"),
    "DUC, ASPP 6": Arm(aspp=6, scheme="fixed12"),
    "DUC, DS 16": Arm(ds=16, scheme="fixed12"),
    "DUC, DS 32": Arm(ds=32, scheme="fixed12"),
    "DUC, 7-fold (bigger patch)": Arm(scheme="jitter7"),
}
#: Arms of each table, in table order.
TABLE1 = ("bilinear baseline", "DUC, random crop", "DUC", "DUC, cell 1", "DUC, ASPP 6", "DUC, DS 16",
          "DUC, DS 32", "DUC, 7-fold (bigger patch)")
TABLE3 = ("bilinear (baseline)", "deconv x8", "deconv x2 then x4", "DUC (cell 2)", "DUC (cell 1)")


@dataclasses.dataclass(frozen=True)
class Regime:
    """Where the DUC/HDC claims run: world, network, pre-training and fine-tuning schedule."""

    size: tuple[int, int] = (256, 512)    # world frames (H, W)
    clips: int = 96                       # training snippets (one labelled frame each; val = 1/4)
    domain: str = "city_a"
    world_seed: int = 0                   # the evaluated world; the backbone trains on world_seed + 1
    depth: int = 18
    width: int = 16
    pre_steps: int = 1500                 # backbone pre-training (bilinear head), to its plateau
    pre_crop: tuple[int, int] = (192, 192)
    steps: int = 300                      # fine-tuning steps of every arm
    batch: int = 8
    crop: tuple[int, int] = (128, 128)    # Table 3's random crops = the scaled 544-px crop of Table 1
    scale: tuple[float, float] = (0.75, 1.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    curve_points: int = 3                 # held-out evaluations during fine-tuning (the plateau)

    def config(self, seed: int, name: str, arm: Arm | None = None, pretrain: bool = False, eval_every: int = 0):
        """The ``TrainConfig`` of the backbone's pre-training (``pretrain``) or of one arm's fine-tuning."""
        from .config import config_from_params
        arm = arm or ARMS["bilinear (baseline)"]
        batch = self.batch
        if arm.scheme == "jitter7":  # the paper cut its batch for the bigger patches: equal labelled pixels
            batch = max(1, round(self.batch * (self.patch_sizes()["crop"] / self.patch_sizes()["patch"]) ** 2))
        return config_from_params(
            "cpu", name=name, model="deeplabv2_resnet101", model_width=self.width,
            model_options=arm.model_options(self.depth, self.rate_scale), world_image_size=self.size, world_clips=self.clips,
            world_domain=self.domain, world_seed=self.world_seed + (1 if pretrain else 0),
            steps=self.pre_steps if pretrain else self.steps, batch_size=batch,
            crop_size=self.pre_crop if pretrain else self.crop, scale=self.scale, optimizer=self.optimizer,
            lr=self.lr, seed=int(seed), progress=False, eval_every=eval_every)

    @property
    def rate_scale(self) -> float:
        """ASPP rates are the paper's times ``crop / 544``: our training crop over the paper's, so
        every branch sees the same share of the training feature map as in the paper (544-px crops,
        a 68x68 map at stride 8; at 128-px crops the map is 16x16 and rates 6..24 become 1, 3, 4, 6,
        ASPP 6's 30, 36 become 7, 8). Unscaled, the 18- and 24-rate taps would read only padding in
        training and untrained weights at evaluation."""
        return self.crop[0] / 544

    def patch_sizes(self) -> dict:
        """Table 1's patch sizes at this frame size (the paper's scaled by H / 1024, multiples of 16)."""
        from .data.patches import protocol_sizes
        return protocol_sizes(self.size, multiple=16)

    def describe(self) -> str:
        (h, w), (ch, cw) = self.size, self.crop
        return (f"the {self.domain} world at {h}x{w} ({self.clips} training frames); deeplabv2 at ResNet-{self.depth} "
                f"depth, width {self.width}; backbone pre-trained {self.pre_steps} steps (bilinear head) on world "
                f"seed {self.world_seed + 1}; every arm fine-tuned {self.steps} steps of batch {self.batch} on "
                f"{ch}x{cw} crops, {self.optimizer} lr {self.lr:g}")


#: The regime of the cpu profile (and gpu / paper until they have their own).
CPU_REGIME = Regime()
#: Seconds per arm, only to exercise the code (the smoke profile).
SMOKE_REGIME = Regime(size=(64, 128), clips=8, width=8, pre_steps=4, pre_crop=(64, 64), steps=3, batch=2,
                      crop=(64, 64), curve_points=1)


def profile_setup(profile: str, seeds=None, jobs=None) -> tuple[Regime, list[int], int]:
    """A DUC/HDC notebook's (regime, seeds, processes): ``SMOKE_REGIME``, seeds [0, 1], one process
    at ``smoke``; else ``CPU_REGIME``, 4 paired seeds, 2 processes of one thread each."""
    regime = SMOKE_REGIME if profile == "smoke" else CPU_REGIME
    return (regime, list(seeds or ([0, 1] if profile == "smoke" else [0, 1, 2, 3])),
            int(jobs or (1 if profile == "smoke" else 2)))


def datasets(regime: Regime, pretrain: bool = False) -> tuple:
    """The world's raw training frames and normalised held-out frames (``pretrain``: the backbone's world)."""
    from .data import get_dataset
    from .data.transforms import build_eval_transform
    cfg = regime.config(0, "duchdc_data", pretrain=pretrain)
    return get_dataset(cfg, cfg.train_split, None), get_dataset(cfg, cfg.val_split, build_eval_transform())


def train_set(regime: Regime, arm: Arm, raw):
    """The training set of ``arm``: the regime's random scale + crop, or one of Table 1's schemes."""
    from .data.patches import build_patch_dataset
    from .data.transforms import Compose, build_train_transform
    if arm.scheme == "random":
        recipe = build_train_transform(regime.crop, scale=regime.scale, flip=True, fast=False)
        return _Transformed(raw, Compose(recipe.transforms))
    scheme = {"patch_random": "random"}.get(arm.scheme, arm.scheme)
    return build_patch_dataset(raw, scheme, multiple=16)


class _Transformed(torch.utils.data.Dataset):
    """``raw[i]`` through ``transform`` (the raw dataset keeps no transform of its own)."""

    def __init__(self, raw, transform):
        self.raw, self.transform = raw, transform
        self.num_classes, self.ignore_index = raw.num_classes, raw.ignore_index
        self.class_names = raw.class_names

    def __len__(self):
        return len(self.raw)

    def __getitem__(self, i):
        return self.transform(self.raw[i])


def majority_filter(pred: torch.Tensor, num_classes: int, k: int = 5) -> torch.Tensor:
    """(H, W) labels -> the most frequent label in each k x k window (padding counts nothing)."""
    onehot = F.one_hot(pred.long(), num_classes).permute(2, 0, 1)[None].float()
    return F.avg_pool2d(onehot, k, stride=1, padding=k // 2, count_include_pad=False)[0].argmax(0)


def predictions(model, frames) -> list[torch.Tensor]:
    """Whole-frame predictions (H, W) of ``model`` on every item of ``frames``."""
    from .engine import predict_logits
    model.eval()
    with torch.no_grad():
        return [predict_logits(model, frames[k]["image"][None]).argmax(1)[0] for k in range(len(frames))]


def score(preds: Sequence[torch.Tensor], frames, thin: Sequence[int] = THIN, tol: int = 2) -> dict:
    """mIoU, per-class IoU, thin-class mean IoU, boundary F-score at ``tol`` px and speckle (%)
    of ``preds`` against the labels of ``frames``."""
    from .metrics import ConfusionMatrix, boundary_f_score, boundary_match_counts
    nc = frames.num_classes
    conf, bcounts, speck = ConfusionMatrix(nc), np.zeros(4, np.int64), []
    for k, pred in enumerate(preds):
        label = frames[k]["label"]
        conf.update(pred, label)
        bcounts += boundary_match_counts(pred.numpy(), label.numpy(), tol=tol)
        speck.append(float((pred != majority_filter(pred, nc)).float().mean()))
    iou = [100 * float(v) for v in conf.per_class_iou()]
    thin_iou = [iou[c] for c in thin]
    return {"mIoU": 100 * conf.miou(), "iou": iou,
            "thin mean": float(np.nanmean(thin_iou)) if np.isfinite(thin_iou).any() else float("nan"),
            "boundary F": 100 * boundary_f_score(bcounts), "speckle %": 100 * float(np.mean(speck))}


#: Bump when what a cached backbone or arm run holds, or how it is trained, changes.
VERSION = 1


def _key(regime: Regime, **more) -> dict:
    return {"version": VERSION, "regime": dataclasses.asdict(regime), **more}


def backbone(regime: Regime, progress: bool = False):
    """The pre-trained network (bilinear head) of ``regime``: a cached role (kind ``duchdc_backbone``)
    trained ``pre_steps`` on the backbone's world. Returns ``(model, info)``; ``info["curve"]``
    holds ``[step, held-out mIoU]`` of that world every ``pre_steps / 6`` steps (the plateau)."""
    from . import engine, models
    from .cache import cached
    every = max(regime.pre_steps // 6, 1)
    cfg = regime.config(0, "duchdc_backbone", pretrain=True, eval_every=every).replace(progress=progress)

    def build():
        raw, val = datasets(regime, pretrain=True)
        torch.manual_seed(0)
        curve = []
        out = engine.train(cfg, train_set=_Transformed(raw, _pretrain_transform(regime)), val_set=val,
                           callbacks=[lambda i: curve.append([i["step"], 100 * i["metrics"]["miou"]])
                                      if i["event"] == "eval" else None])
        return out["model"].cpu(), {"curve": curve, "mIoU": 100 * out["metrics"]["miou"],
                                    "train_s": round(out["train_time"], 1)}

    return cached("duchdc_backbone", _key(regime, role="backbone"), build,
                  module=lambda: models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width,
                                              **cfg.model_options))


def _pretrain_transform(regime: Regime):
    from .data.transforms import Compose, build_train_transform
    return Compose(build_train_transform(regime.pre_crop, scale=regime.scale, flip=True, fast=False).transforms)


def run_arm(regime: Regime, name: str, seed: int, cache: bool = True) -> dict:
    """Fine-tune arm ``name`` (``ARMS``) from the regime's backbone with ``seed`` and score it on
    the held-out frames (``score``) with its held-out curve (``regime.curve_points`` evaluations).
    Cached (kind ``duchdc_arm``, keyed by the regime, the arm's *spec* -- so tables sharing a model
    share its run -- and the seed). Returns the row ``{arm, seed, mIoU, thin mean, ...}``."""
    from . import engine, models
    from .cache import cached
    if name not in ARMS:
        raise ValueError(f"unknown DUC/HDC arm {name!r}; expected one of {list(ARMS)}")
    arm = ARMS[name]
    every = max(regime.steps // max(regime.curve_points, 1), 1)
    cfg = regime.config(seed, f"duchdc_{arm.head}_{seed}", arm=arm, eval_every=every)

    def make():
        return models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width, **cfg.model_options)

    def build():
        pre, _ = backbone(regime)
        torch.manual_seed(int(seed))
        net = make()
        net.backbone.load_state_dict(pre.backbone.state_dict())  # shapes agree for every rate / stride
        raw, val = datasets(regime)
        curve = []
        out = engine.train(cfg, model=net, train_set=train_set(regime, arm, raw), val_set=val,
                           callbacks=[lambda i: curve.append([i["step"], 100 * i["metrics"]["miou"]])
                                      if i["event"] == "eval" else None])
        s = score(predictions(out["model"], val), val)
        row = {"seed": int(seed), "mIoU": s["mIoU"], "thin mean": s["thin mean"], "boundary F": s["boundary F"],
               "speckle %": s["speckle %"], "train_s": round(out["train_time"], 1), "curve": curve,
               "batch": cfg.batch_size, **{f"iou_{c}": s["iou"][c] for c in range(len(s["iou"]))}}
        return out["model"].cpu(), {"row": row}

    _, info = cached("duchdc_arm", _key(regime, arm=dataclasses.asdict(arm), seed=int(seed)), build,
                     enabled=cache, module=make)
    return dict(info["row"], arm=name)


def run_arms(regime: Regime, names: Sequence[str], seeds: Sequence[int], jobs: int = 1,
             progress: bool = True) -> list[dict]:
    """``run_arm`` for every (arm, seed), in ``jobs`` processes of one thread each; rows in the
    order asked. The backbone is trained (or loaded) first, in this process."""
    backbone(regime, progress=progress)
    datasets(regime)  # export the world once, before forking
    return run_all(run_arm, [(regime, n, s) for s in seeds for n in names], jobs, "duchdc runs", progress)
