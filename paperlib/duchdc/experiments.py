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

**The regime** (``Regime``). The world at 256x512 (2x the cpu profile's frames), the DeepLab-v2
structure at ResNet-18 depth and base width 16 (``deeplabv2_resnet101`` with ``depth=18``; the
paper: ResNet-101, width 64), output stride 8 and the four-branch ASPP classifier with the paper's
rates scaled by our crop over the paper's (``Regime.rate_scale``). Table 2 (HDC) runs in
``HDC_REGIME``: ResNet-50's bottleneck structure, whose one 3x3 conv per block the HDC sawtooths
are defined on, and 256-px crops. With a ``Data(root)`` the arms are fine-tuned and scored on real
CamVid instead (resized to the world's frame height), from the same backbone.

- **The backbone** (``backbone``, a cached role ``duchdc_backbone``): the network under a bilinear
  classifier at output stride ``pre_ds``, trained ``pre_steps`` (its held-out curve flattening) on
  *another* world (``world_seed + 1``: the same classes, other streets), the stand-in for ImageNet
  pre-training: the evaluated world's frames are never seen before fine-tuning. Tables 1 and 3
  pre-train at stride 8 (DeepLab-v2's geometry): a plain stride-32 backbone (ImageNet's geometry,
  tried first) reached 30.1 mIoU on its world, and heads fine-tuned 300 steps from it to stride 8
  segmented the thin classes at 2.9 IoU, failing the thin-class control (4 seeds); the stride-8
  backbone reaches 47.5 (held-out curve 32.7, 37.7, 42.6, 45.5, 45.8, 47.5 every 250 steps, built
  with one thread like every role: ``paperlib.cache``). Its top features are co-adapted to the
  bilinear classifier (a bias *against* the other heads), and its stride favours DS 8 over DS 16 /
  32 in Table 1 (stated there). Table 2 pre-trains at stride 32 (every HDC
  variant then changes the rates alike). The held-out curve is recorded (``info["curve"]``).
- **An arm** (``ARMS``: head, cell, ASPP, output stride, HDC rates, patch scheme) is built with a
  freshly initialised top layer (seeded: ``torch.manual_seed(seed)``), the backbone's weights
  loaded, and the *whole* network fine-tuned for ``steps`` on the evaluated world's training
  frames (same steps, batch, data order per seed for every arm: equal cost). The bilinear arm's
  head is re-initialised too, so every head is treated the same way.

- **The cell-size rationale** (``CELL_NOISE``): Table 1's DUC cell 2 / cell 1 again on training
  labels with the world annotator's boundary noise (``Arm.noise_px``, ``CELL_NOISE_PX``), and the
  noisy targets themselves at the cell-1 and cell-2 grids (``label_noise_grid``, no model).

Scores (``score``) on the whole held-out frames: mIoU, per-class IoU, the thin classes' mean IoU
(pole, traffic light, traffic sign), the boundary F-score at 2 px (``metrics.boundary_f_score``)
and *speckle* (share of pixels unlike their 5x5 majority: the gridding artefact of Figure 5).

Honest limits: the backbone was pre-trained under a bilinear classifier (at stride ``pre_ds``),
where ImageNet's was a classification head; the world's thin objects are
rendered, not photographed; 4 paired seeds vary the heads' initialisation and data order, never
the backbone (there is one, as the paper's ImageNet weights are one).
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..data.labels import onehot
from ..pool import run_all

if TYPE_CHECKING:
    import pandas as pd

#: Cityscapes train ids of the thin classes (pole, traffic light, traffic sign).
THIN = (5, 6, 7)
#: The DeepLab-v2 ASPP classifier's rates: 4 branches (the paper's base) or 6 (Table 1's "ASPP 6").
ASPP = {4: (6, 12, 18, 24), 6: (6, 12, 18, 24, 30, 36)}


@dataclasses.dataclass(frozen=True)
class Arm:
    """One model and training recipe of Tables 1-3. ``scheme``: ``"random"`` = the regime's random
    scale and crop (Table 3); ``"fixed12"`` / ``"jitter7"`` / ``"patch_random"`` = the paper's patch
    schemes of Table 1 (``paperlib.data.patches``: no random scaling, flip only), the last being
    plain random crops of the 12-fold crop size. ``noise_px``: the training labels carry the world's
    annotator's boundary noise of at most that many pixels (``paperlib.data.synthetic.annotate``;
    held-out labels stay exact); 0 = exact labels."""

    head: str = "duc"          # bilinear | duc | deconv8 | deconv2x4
    cell: int = 2
    aspp: int = 4
    ds: int = 8                # output stride
    hdc: str | None = None     # an HDC variant of backbones.hdc_block_rates (None: standard 2, 4)
    scheme: str = "random"
    noise_px: float = 0.0

    def spec(self) -> dict:
        """The arm as a dict (cache keys, table parameters); ``noise_px`` only when set, so the
        exact-label arms keep the keys they had before it existed."""
        out = dataclasses.asdict(self)
        if not self.noise_px:
            out.pop("noise_px")
        return out

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
#: Boundary noise (px, at 256x512) of the training labels of the cell-size rationale: more than a
#: cell-2 cell (2 px), less than the thin objects' width; the world's annotator (``annotate``).
CELL_NOISE_PX = 3.0
# The cell-size rationale (Table 1's "cell 2 is slightly better"; the paper credits imprecise labels)
ARMS.update({
    "DUC, noisy labels": Arm(scheme="fixed12", noise_px=CELL_NOISE_PX),
    "DUC, cell 1, noisy labels": Arm(cell=1, scheme="fixed12", noise_px=CELL_NOISE_PX),
})
# Table 2 (HDC variants of backbones.hdc_block_rates on ResNet-DUC, cell 2; the HDC regime)
ARMS.update({
    "standard dilation (2, 4)": Arm(),
    "No dilation": Arm(hdc="no_dilation"),
    "Dilation-conv": Arm(hdc="dilation_conv"),
    "Dilation-RF": Arm(hdc="dilation_rf"),
    "Dilation-bigger": Arm(hdc="dilation_bigger"),
})
#: Arms of each table, in table order.
TABLE2 = ("standard dilation (2, 4)", "No dilation", "Dilation-conv", "Dilation-RF", "Dilation-bigger")
#: Table 2 is run as two notebooks (each within the cpu time budget), sharing the Dilation-RF and
#: Dilation-bigger runs: HDC against the standard-dilation model it starts from, with Figure 5
#: (``TABLE2_HDC``, notebooks/duchdc_table2_hdc.py), and receptive field against accuracy over the
#: four HDC variants (``TABLE2_RF``, notebooks/duchdc_table2_rf.py).
TABLE2_HDC = ("standard dilation (2, 4)", "Dilation-RF", "Dilation-bigger")
TABLE2_RF = ("No dilation", "Dilation-conv", "Dilation-RF", "Dilation-bigger")
#: Table 1 is run as three notebooks (each within the cpu time budget), sharing the base "DUC" run:
#: the top layer -- bilinear vs DUC and the cell size (``TABLE1``,
#: notebooks/duchdc_table1_architecture.py) --, the downsampling rate (``TABLE1_DOWNSAMPLING``,
#: notebooks/duchdc_table1_downsampling.py, with the label-grid ceilings) and the training recipe --
#: ASPP branches and the patch schemes (``TABLE1_TRAINING``, notebooks/duchdc_table1_protocol.py).
TABLE1 = ("bilinear baseline", "DUC", "DUC, cell 1")
TABLE1_DOWNSAMPLING = ("DUC", "DUC, DS 16", "DUC, DS 32")
TABLE1_TRAINING = ("DUC", "DUC, random crop", "DUC, ASPP 6", "DUC, 7-fold (bigger patch)")
CELL_NOISE = ("DUC", "DUC, cell 1", "DUC, noisy labels", "DUC, cell 1, noisy labels")
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
    pre_batch: int | None = None          # None: ``batch``
    pre_ds: int = 8                       # the backbone's output stride in pre-training (bilinear head)
    steps: int = 300                      # fine-tuning steps of every arm (poly decay to 0)
    batch: int = 8
    crop: tuple[int, int] = (128, 128)    # Table 3's random crops = the scaled 544-px crop of Table 1
    scale: tuple[float, float] = (0.75, 1.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    curve_points: int = 4                 # held-out evaluations during fine-tuning (the plateau)
    curve_frames: int = 0                 # 0: the curve on every curve frame, by the engine; n: on n
                                          # of them, its last point the final score (no second pass)

    def config(self, seed: int, name: str, arm: Arm | None = None, pretrain: bool = False, eval_every: int = 0):
        """The ``TrainConfig`` of the backbone's pre-training (``pretrain``) or of one arm's fine-tuning."""
        from ..config import config_from_params
        arm = self.pretrain_arm if pretrain else (arm or ARMS["bilinear (baseline)"])
        batch = (self.pre_batch or self.batch) if pretrain else self.batch
        if arm.scheme == "jitter7":  # the paper cut its batch for the bigger patches: equal labelled pixels
            sizes = self.patch_sizes()
            batch = max(1, round(self.batch * (sizes["crop"] / sizes["patch"]) ** 2))
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
        from ..data.patches import protocol_sizes
        return protocol_sizes(self.size, multiple=16)

    @property
    def pretrain_arm(self) -> Arm:
        """The backbone's pre-training model: the bilinear classifier at output stride ``pre_ds``."""
        return Arm(head="bilinear", ds=self.pre_ds)

    def backbone_spec(self) -> dict:
        """What makes the backbone (its cache key): the fine-tuning fields (``steps``,
        ``curve_points``) are left out, so regimes that differ only there share it."""
        arm = self.pretrain_arm
        return {"world": [self.domain, list(self.size), self.clips, self.world_seed + 1],
                "arm": arm.spec(), "depth": self.depth, "width": self.width, "steps": self.pre_steps,
                "crop": list(self.pre_crop), "batch": self.pre_batch or self.batch, "scale": list(self.scale),
                "optimizer": self.optimizer, "lr": self.lr,
                "rates": list(arm.model_options(self.depth, self.rate_scale)["rates"])}

    def describe(self) -> str:
        (h, w), (ch, cw) = self.size, self.crop
        return (f"the {self.domain} world at {h}x{w} ({self.clips} training frames); deeplabv2 at ResNet-{self.depth} "
                f"depth, width {self.width}; backbone pre-trained {self.pre_steps} steps at output stride {self.pre_ds} "
                f"(bilinear head) on world "
                f"seed {self.world_seed + 1}; every arm fine-tuned {self.steps} steps of batch {self.batch} on "
                f"{ch}x{cw} crops, {self.optimizer} lr {self.lr:g}")


#: The regime of the cpu profile (and gpu / paper until they have their own).
CPU_REGIME = Regime()
#: Table 2's regime: HDC sets one rate per *bottleneck* block (one 3x3 conv each), so the
#: sawtooths need ResNet-50's structure (res4 6 blocks: Dilation-RF 1, 2, 3, 1, 2, 3; Dilation-bigger
#: 1, 2, 5, 9, 1, 2; res5 3 blocks as the paper's), at base width 8 for the same cost; and a
#: feature map wider than the rates: 256-px crops (the frame height; 32x32 at stride 8, res5's
#: largest rate 17) at batch 2 (the labelled pixels per step of 8 crops of 128 px). The rates are
#: the paper's, not scaled; the ASPP rates scale with the crop as everywhere (256 / 544). Two held-out
#: points per run: mid-way on 6 held-out frames (``curve_frames``), and the final score on all of them,
#: which is also the curve's last point (a ResNet-50-structure frame costs as much to score as ~4
#: training steps, so three full passes cost about as much as the training).
HDC_REGIME = dataclasses.replace(CPU_REGIME, depth=50, width=8, crop=(256, 256), batch=2, pre_batch=8,
                                 pre_crop=(192, 192), curve_points=2, pre_ds=32, curve_frames=6)
#: Seconds per arm, only to exercise the code (the smoke profile).
SMOKE_REGIME = Regime(size=(64, 128), clips=8, width=8, pre_steps=4, pre_crop=(64, 64), steps=3, batch=2,
                      crop=(64, 64), curve_points=1)
SMOKE_HDC_REGIME = dataclasses.replace(SMOKE_REGIME, depth=50)


def profile_setup(profile: str, seeds=None, jobs=None, hdc: bool = False) -> tuple[Regime, list[int], int]:
    """A DUC/HDC notebook's (regime, seeds, processes): ``SMOKE_REGIME``, seeds [0, 1], one process
    at ``smoke``; else ``CPU_REGIME``, 4 paired seeds, 2 processes of one thread each (``hdc``:
    Table 2's ``HDC_REGIME`` / ``SMOKE_HDC_REGIME``)."""
    if hdc:
        regime = SMOKE_HDC_REGIME if profile == "smoke" else HDC_REGIME
    else:
        regime = SMOKE_REGIME if profile == "smoke" else CPU_REGIME
    return (regime, list(seeds or ([0, 1] if profile == "smoke" else [0, 1, 2, 3])),
            int(jobs or (1 if profile == "smoke" else 2)))


#: CamVid's thin classes (pole, sign/symbol), as in the earlier DUC/HDC CamVid tables.
CAMVID_THIN = (2, 6)


class Data:
    """The frames an arm is fine-tuned and scored on: the regime's world (``root`` None) or real
    CamVid under ``root`` (SegNet layout; 367 training frames, scored on the 233 test frames), resized
    to the world's frame height so that crops, patch sizes and ASPP rates are the world's."""

    def __init__(self, root=None):
        from pathlib import Path
        if root is not None and not (Path(root) / "train").is_dir():
            raise FileNotFoundError(f"data_root={str(root)!r}: no CamVid train/ folder there (SegNet layout)")
        self.root = None if root is None else str(root)

    @property
    def suffix(self) -> str:
        """Table / figure name suffix: "" (world) or "_camvid"."""
        return "" if self.root is None else "_camvid"

    @property
    def thin(self) -> tuple[int, ...]:
        return THIN if self.root is None else CAMVID_THIN

    def class_names(self) -> tuple[str, ...]:
        from ..data.labels import CITYSCAPES_CLASSES
        if self.root is None:
            return tuple(CITYSCAPES_CLASSES)
        from ..data.datasets import CamVid
        return tuple(CamVid.class_names)

    @property
    def thin_names(self) -> list[str]:
        names = self.class_names()
        return [names[c] for c in self.thin]

    def describe(self) -> str:
        return "the world" if self.root is None else "real CamVid (train 367 / test 233, resized to 256 rows)"

    def sets(self, regime: Regime, pretrain: bool = False, noise_px: float = 0.0) -> tuple:
        """Raw training frames (before ``prescale``) and normalised held-out frames (``pretrain``:
        the backbone's world; ``noise_px``: training labels with the world's annotation noise)."""
        if noise_px and self.root is not None:
            raise ValueError(f"noise_px={noise_px:g}: label noise needs the world's annotator; "
                             f"CamVid's labels ({self.root}) are what they are")
        return _sets(regime, self.root, pretrain, float(noise_px))

    def prescale(self, regime: Regime) -> float:
        """The fixed resize of the raw training frames (1 for the world)."""
        return 1.0 if self.root is None else camvid_scale(regime)

    def curve_set(self, regime: Regime):
        """The held-out frames of the training curve: all of them on the world; on CamVid as many
        as the world has (evenly spaced over the 233 test frames), as the curve only shows the
        plateau and scoring every frame five times would cost as much as the training. With
        ``regime.curve_frames``, that many of them (evenly spaced)."""
        _, val = self.sets(regime)
        n = regime.curve_frames or (len(val) if self.root is None else max(regime.clips // 4, 2))
        if n >= len(val):
            return val
        return _Transformed(val, keep=np.linspace(0, len(val) - 1, n).round().astype(int))

    def fingerprint(self, regime: Regime) -> str:
        raw, val = self.sets(regime)
        return (raw.fingerprint()[:16] + val.fingerprint()[:16])

    def key(self, regime: Regime) -> dict:
        """What identifies the data in a cached run's key (world: the regime says it all)."""
        return {} if self.root is None else {"camvid": self.fingerprint(regime), "curve_frames": len(self.curve_set(regime))}

    def config(self, cfg):
        return cfg if self.root is None else cfg.replace(dataset="camvid", data_root=self.root,
                                                           num_classes=len(self.class_names()))


WORLD = Data()


@lru_cache(maxsize=4)
def _sets(regime: Regime, root, pretrain: bool, noise_px: float = 0.0) -> tuple:
    from ..data import get_dataset
    from ..data.transforms import Compose, Normalize, build_eval_transform, scale_item
    if root is None:
        cfg = regime.config(0, "duchdc_data", pretrain=pretrain).replace(noise_px=noise_px)
        return get_dataset(cfg, cfg.train_split, None), get_dataset(cfg, cfg.val_split, build_eval_transform())
    from ..data.datasets import build_dataset
    s = camvid_scale(regime)

    def resize(it):
        return scale_item(it, s)
    return (build_dataset("camvid", root, "train", None),
            build_dataset("camvid", root, "test", Compose([resize, Normalize()])))


def camvid_scale(regime: Regime) -> float:
    """CamVid's 360x480 frames are resized by this to the world's frame height."""
    return regime.size[0] / 360


def train_set(regime: Regime, arm: Arm, raw, prescale: float = 1.0):
    """The training set of ``arm`` from raw frames resized by ``prescale``: the regime's random
    scale + crop, or one of Table 1's schemes."""
    from ..data.patches import build_patch_dataset
    from ..data.transforms import Compose, build_train_transform, scale_item
    if arm.scheme == "random":
        recipe = build_train_transform(regime.crop, scale=regime.scale, flip=True, fast=False)
        pre = [lambda it: scale_item(it, prescale)] if prescale != 1.0 else []
        return _Transformed(raw, Compose(pre + list(recipe.transforms)))
    scheme = {"patch_random": "random"}.get(arm.scheme, arm.scheme)
    return build_patch_dataset(raw, scheme, multiple=16, prescale=prescale)


class _Transformed(torch.utils.data.Dataset):
    """``raw[i]`` through ``transform`` (the raw dataset keeps no transform of its own); with
    ``keep``, only those items of ``raw``, in that order."""

    def __init__(self, raw, transform=None, keep: Sequence[int] | None = None):
        self.raw, self.transform = raw, transform
        self.keep = list(range(len(raw))) if keep is None else [int(k) for k in keep]
        self.num_classes, self.ignore_index = raw.num_classes, raw.ignore_index
        self.class_names = raw.class_names

    def __len__(self):
        return len(self.keep)

    def __getitem__(self, i):
        item = self.raw[self.keep[i]]
        return item if self.transform is None else self.transform(item)


def majority_filter(pred: torch.Tensor, num_classes: int, k: int = 5) -> torch.Tensor:
    """(H, W) labels -> the most frequent label in each k x k window (padding counts nothing)."""
    return F.avg_pool2d(onehot(pred, num_classes), k, stride=1, padding=k // 2, count_include_pad=False)[0].argmax(0)


def predictions(model, frames) -> list[torch.Tensor]:
    """Whole-frame predictions (H, W) of ``model`` on every item of ``frames``."""
    from ..engine import predict_logits
    model.eval()
    with torch.no_grad():
        return [predict_logits(model, frames[k]["image"][None]).argmax(1)[0] for k in range(len(frames))]


def score(preds: Sequence[torch.Tensor], frames, thin: Sequence[int] = THIN, tol: int = 2) -> dict:
    """mIoU, per-class IoU, thin-class mean IoU, boundary F-score at ``tol`` px and speckle (%)
    of ``preds`` against the labels of ``frames``."""
    from ..metrics import ConfusionMatrix, boundary_f_score, boundary_match_counts
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


def label_grid_ceiling(data: "Data", regime: Regime, strides: Sequence[int] = (1, 2, 8, 16, 32)) -> "pd.DataFrame":
    """The best score a prediction made at output stride ``s`` can reach: each held-out label map
    as class shares pooled over ``s x s`` cells (ignored pixels count nothing), bilinearly upsampled
    back (as the bilinear head upsamples its logits) and argmaxed, then ``score``d against the full
    labels. No model: it measures what the output grid alone loses (Table 1's DS rows; DUC cell 2
    at DS 8 predicts on a stride-2 grid, cell 1 on stride 1).

        P_s = up_s(avgpool_s(onehot(y))),   ceiling(s) = score(argmax_c P_s, y)
    """
    _, val = data.sets(regime)
    return _grid_scores(val, val, strides, data.thin)


def label_noise_grid(regime: Regime, noise_px: float, strides: Sequence[int] = (1, 2)) -> "pd.DataFrame":
    """What the annotation noise does to the *training targets* at each prediction grid: the noisy
    training labels (``noise_px``) pooled over ``s x s`` cells and upsampled back, as in
    ``label_grid_ceiling``, scored against the same frames' exact labels. Stride 1 is the noisy
    label itself (what DUC cell 1 is asked to fit), stride 2 the best a cell-2 prediction trained
    on it could hold; a higher score at 2 than at 1 means the coarser grid averages noise away (the
    paper's rationale for cell 2), a lower one that it loses more detail than noise. No model.

        score(argmax_c up_s(avgpool_s(onehot(y_noisy))), y_exact)
    """
    exact, _ = WORLD.sets(regime)
    noisy, _ = WORLD.sets(regime, noise_px=noise_px)
    return _grid_scores(noisy, exact, strides, THIN)


def _grid_scores(sources, truths, strides: Sequence[int], thin: Sequence[int]) -> "pd.DataFrame":
    """``score`` of every label map of ``sources`` pooled to each stride and upsampled back,
    against the labels of ``truths`` (same frames, same order)."""
    import pandas as pd
    nc, out = truths.num_classes, []
    onehots = [onehot(sources[k]["label"], nc) for k in range(len(sources))]
    for s in strides:
        preds = []
        for shares in onehots:
            if s > 1:
                shares = F.interpolate(F.avg_pool2d(shares, s, ceil_mode=True), size=shares.shape[-2:],
                                       mode="bilinear", align_corners=False)
            preds.append(shares[0].argmax(0))
        r = score(preds, truths, thin=thin)
        out.append({"output stride": int(s), "mIoU": r["mIoU"], "thin mean": r["thin mean"],
                    "boundary F": r["boundary F"]})
    return pd.DataFrame(out)


#: Bump when what a cached backbone or arm run holds, or how it is trained, changes.
VERSION = 1


def _key(regime: Regime, **more) -> dict:
    fields = dataclasses.asdict(regime)
    if not fields["curve_frames"]:  # the engine's curve: the keys of the runs made before the field
        del fields["curve_frames"]
    return {"version": VERSION, "regime": fields, **more}


def backbone(regime: Regime, progress: bool = False):
    """The pre-trained network (bilinear head) of ``regime``: a cached role (kind ``duchdc_backbone``)
    trained ``pre_steps`` on the backbone's world. Returns ``(model, info)``; ``info["curve"]``
    holds ``[step, held-out mIoU]`` of that world every ``pre_steps / 6`` steps (the plateau)."""
    from .. import engine, models
    from ..cache import cached
    every = max(regime.pre_steps // 6, 1)
    cfg = regime.config(0, "duchdc_backbone", pretrain=True, eval_every=every).replace(progress=progress)

    def build():
        raw, val = WORLD.sets(regime, pretrain=True)
        torch.manual_seed(0)
        curve = []
        out = engine.train(cfg, train_set=_Transformed(raw, _pretrain_transform(regime)), val_set=val,
                           callbacks=[lambda i: curve.append([i["step"], 100 * i["metrics"]["miou"]])
                                      if i["event"] == "eval" else None])
        return out["model"].cpu(), {"curve": curve, "mIoU": 100 * out["metrics"]["miou"],
                                    "train_s": round(out["train_time"], 1)}

    return cached("duchdc_backbone", {"version": VERSION, "backbone": regime.backbone_spec()}, build,
                  module=lambda: models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width,
                                              **cfg.model_options))


def _pretrain_transform(regime: Regime):
    from ..data.transforms import Compose, build_train_transform
    return Compose(build_train_transform(regime.pre_crop, scale=regime.scale, flip=True, fast=False).transforms)


def _arm(regime: Regime, name: str, seed: int, data: Data = WORLD, cache: bool = True):
    """The cached role of one arm run: ``(fine-tuned model, {"row": ...})``."""
    from .. import engine, models
    from ..cache import cached
    if name not in ARMS:
        raise ValueError(f"unknown DUC/HDC arm {name!r}; expected one of {list(ARMS)}")
    arm = ARMS[name]
    every = max(regime.steps // max(regime.curve_points, 1), 1)
    cfg = data.config(regime.config(seed, f"duchdc_{arm.head}_{seed}", arm=arm, eval_every=every))
    cfg = cfg.replace(noise_px=arm.noise_px) if arm.noise_px else cfg

    def make():
        return models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width, **cfg.model_options)

    def build():
        pre, _ = backbone(regime)
        torch.manual_seed(int(seed))
        net = make()
        net.backbone.load_state_dict(pre.backbone.state_dict())  # shapes agree for every rate / stride
        raw, val = data.sets(regime, noise_px=arm.noise_px)
        curve, frames = [], data.curve_set(regime)
        train = train_set(regime, arm, raw, data.prescale(regime))
        if regime.curve_frames:  # the curve by this callback, its last point the final score below
            def on_step(i):
                if i["event"] == "step" and i["step"] % every == 0 and i["step"] < cfg.steps:
                    m = engine.evaluate(i["model"], frames, num_classes=cfg.num_classes, mode="whole")
                    curve.append([i["step"], 100 * m["miou"]])
            out = engine.train(cfg, model=net, train_set=train, callbacks=[on_step])
        else:
            out = engine.train(cfg, model=net, train_set=train, val_set=frames,
                               callbacks=[lambda i: curve.append([i["step"], 100 * i["metrics"]["miou"]])
                                          if i["event"] == "eval" else None])
        s = score(predictions(out["model"], val), val, thin=data.thin)
        if regime.curve_frames:
            curve.append([cfg.steps, s["mIoU"]])
        row = {"seed": int(seed), "mIoU": s["mIoU"], "thin mean": s["thin mean"], "boundary F": s["boundary F"],
               "speckle %": s["speckle %"], "train_s": round(out["train_time"], 1), "curve": curve,
               "batch": cfg.batch_size, **{f"iou_{c}": s["iou"][c] for c in range(len(s["iou"]))}}
        return out["model"].cpu(), {"row": row}

    return cached("duchdc_arm", _key(regime, arm=arm.spec(), seed=int(seed), **data.key(regime)), build,
                  enabled=cache, module=make)


def run_arm(regime: Regime, name: str, seed: int, data: Data = WORLD, cache: bool = True) -> dict:
    """Fine-tune arm ``name`` (``ARMS``) from the regime's backbone with ``seed`` and score it on
    the held-out frames (``score``) with its held-out curve (``regime.curve_points`` evaluations).
    Cached (kind ``duchdc_arm``, keyed by the regime, the arm's *spec* -- so tables sharing a model
    share its run -- and the seed). Returns the row ``{arm, seed, mIoU, thin mean, ...}``."""
    _, info = _arm(regime, name, seed, data, cache)
    return dict(info["row"], arm=name)


def arm_model(regime: Regime, name: str, seed: int, data: Data = WORLD):
    """The fine-tuned model of one arm run (trained by ``run_arm`` first when not cached)."""
    return _arm(regime, name, seed, data)[0].eval()


def crf_score(regime: Regime, name: str, seed: int, data: Data = WORLD) -> dict:
    """``score`` of arm ``name``'s model with the paper's dense CRF (``paperlib.crf.dense_crf``,
    ``PAPER_CRF``) on its softmax, on every held-out frame; ``ms`` = CRF time per frame."""
    import time

    from ..crf import dense_crf
    from ..data import denormalize
    from ..engine import predict_logits
    model, (_, val) = arm_model(regime, name, seed, data), data.sets(regime)
    preds, spent = [], 0.0
    for k in range(len(val)):
        image = val[k]["image"]
        with torch.no_grad():
            probs = torch.softmax(predict_logits(model, image[None]), 1)[0].numpy()
        t0 = time.perf_counter()
        preds.append(torch.from_numpy(dense_crf(probs, denormalize(image)).astype(np.int64)))
        spent += time.perf_counter() - t0
    return dict(score(preds, val, thin=data.thin), ms=1000 * spent / max(len(val), 1))


def run_arms(regime: Regime, names: Sequence[str], seeds: Sequence[int], jobs: int = 1, data: Data = WORLD,
             progress: bool = True) -> list[dict]:
    """``run_arm`` for every (arm, seed), in ``jobs`` processes of one thread each; rows in the
    order asked. The backbone is trained (or loaded) first, in this process."""
    backbone(regime, progress=progress)
    for noise in sorted({ARMS[n].noise_px for n in names}):
        data.sets(regime, noise_px=noise)  # export / index the frames once, before forking
    return run_all(run_arm, [(regime, n, s, data) for s in seeds for n in names], jobs, "duchdc runs", progress)


# --- tables and figures ------------------------------------------------------------------------
def head_sizes(regime: Regime, names: Sequence[str], data: Data = WORLD) -> "pd.DataFrame":
    """Parameters of each arm's head (everything above the backbone) and of the whole model."""
    import pandas as pd

    from .. import models
    from ..profiling import count_parameters
    out = []
    for n in names:
        cfg = data.config(regime.config(0, "sizes", arm=ARMS[n]))
        net = models.build(cfg.model, num_classes=cfg.num_classes, width=cfg.model_width, **cfg.model_options)
        out.append({"method": n, "head params": count_parameters(net.head)[0],
                    "model params": count_parameters(net)[0]})
    df = pd.DataFrame(out)
    if "DUC (cell 2)" in set(df.method):
        df["head / DUC (cell 2)"] = (df["head params"] / float(df.set_index("method").at["DUC (cell 2)", "head params"])).round(3)
    return df


def table_frame(rows: Sequence[dict], data: Data = WORLD, head_params=None) -> "pd.DataFrame":
    """One table row per (arm, seed): mIoU, each thin class's IoU, their mean, boundary F-score and
    speckle; ``head_params`` (arm -> count) adds that column (a "+ CRF" arm counts its model's head)."""
    import pandas as pd
    out = []
    for r in rows:
        row = {"method": r["arm"]}
        if head_params is not None:
            row["head params"] = int(head_params[r["arm"].replace(" + CRF", "")])
        row.update({"seed": r["seed"], "mIoU": r["mIoU"]})
        row.update({name: r["iou_%d" % c] if "iou_%d" % c in r else r["iou"][c]
                    for c, name in zip(data.thin, data.thin_names)})
        row.update({"thin mean": r["thin mean"], "boundary F": r["boundary F"], "speckle %": r["speckle %"]})
        out.append(row)
    return pd.DataFrame(out)


def rows_param(names: Sequence[str]):
    """The check of a Table 1 notebook's ``rows`` parameter: None or a non-empty list of ``names``."""
    def check(v):
        return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(r in names for r in v))
    check.__doc__ = f"None or a non-empty list of this notebook's row names ({', '.join(names)})"
    return check


#: How Table 1's patch schemes read in its tables.
SCHEMES = {"patch_random": "random crop", "fixed12": "12-fold", "jitter7": "7-fold", "random": "random scale + crop"}


def table1_frame(rows: Sequence[dict], data: Data = WORLD) -> "pd.DataFrame":
    """``table_frame`` of Table 1's runs, with each row's setting: DS, ASPP, patch scheme, cell."""
    table = table_frame(rows, data).rename(columns={"method": "row"})
    spec = {r: ARMS[r] for r in table.row}
    table.insert(1, "DS", [spec[r].ds for r in table.row])
    table.insert(2, "ASPP", [spec[r].aspp for r in table.row])
    table.insert(3, "augmentation", [SCHEMES[spec[r].scheme] for r in table.row])
    table.insert(4, "cell", ["-" if spec[r].head == "bilinear" else str(spec[r].cell) for r in table.row])
    return table


#: Table 2's output stride: res4 and res5 dilated, as DeepLab-v2 and every variant.
TABLE2_STRIDE = 8
#: The columns that key a Table 2 row, beside its scores.
TABLE2_KEYS = ["variant", "RF increased, ResNet-101 (input px)", "RF increased, ours (input px)", "gridding (holes)"]


def table2_rf(regime: Regime, variants: Sequence[str]) -> "pd.DataFrame":
    """Table 2's computed columns per variant: the rates of the trained network, the RF increase in
    input pixels (``paperlib.gridding.rf_increase``, x output stride 8) for the paper's ResNet-101
    (23 res4 blocks, 3 res5 blocks) and for the network trained here, the RF of its res4+res5 stack
    in feature pixels and whether that stack has holes (brute-force footprint, ``has_gridding``)."""
    import pandas as pd
    from ..gridding import has_gridding, receptive_field, rf_increase
    from ..models.backbones import RESNET_DEPTHS, hdc_block_rates
    blocks = RESNET_DEPTHS[regime.depth][1][2:]
    rows = []
    for name in variants:
        v = ARMS[name].hdc or "baseline"
        paper, ours = hdc_block_rates(v, RESNET_DEPTHS[101][1][2:]), hdc_block_rates(v, blocks)
        rows.append({"variant": name, "res4 rates (ours)": " ".join(map(str, ours["layer3"])),
                     "res5 rates": " ".join(map(str, ours["layer4"])),
                     "RF increased, ResNet-101 (input px)": rf_increase(paper, stride=TABLE2_STRIDE),
                     "RF increased, ours (input px)": rf_increase(ours, stride=TABLE2_STRIDE),
                     "RF of res4+res5, ours (feature px)": receptive_field(ours),
                     "largest rate": max(max(r) for r in ours.values()),
                     "gridding (holes)": has_gridding(ours)})
    return pd.DataFrame(rows)


def table2_frame(rows: Sequence[dict], rf: "pd.DataFrame", data: Data = WORLD) -> "pd.DataFrame":
    """``table_frame`` of Table 2's runs keyed by variant, with its computed columns (``table2_rf``)."""
    table = table_frame(rows, data).rename(columns={"method": "variant"})
    by = rf.set_index("variant")
    for i, col in enumerate(TABLE2_KEYS[1:]):
        table.insert(1 + i, col, [by.loc[v, col] for v in table.variant])
    return table


#: Table 2's scores per run.
TABLE2_VALUES = ["mIoU", "speckle %", "thin mean", "boundary F"]


def table2_rates(regime: Regime, variants: Sequence[str]) -> dict:
    """Each variant's rates per res4 / res5 block of the network trained here (for the manifest)."""
    from ..models.backbones import RESNET_DEPTHS, hdc_block_rates
    blocks = RESNET_DEPTHS[regime.depth][1][2:]
    return {v: hdc_block_rates(ARMS[v].hdc or "baseline", blocks) for v in variants}


def table2_notes(regime: Regime, data: "Data") -> str:
    """The table note of Table 2's two notebooks."""
    from ..models.backbones import RESNET_DEPTHS
    blocks = RESNET_DEPTHS[regime.depth][1][2:]
    return (f"{data.describe()}; {regime.describe()}; DUC (cell 2) head, ResNet-{regime.depth} stage structure "
            f"(res4 {blocks[0]} blocks). 'RF increased' computed by paperlib.gridding.rf_increase (one 3x3 conv per "
            "block, x output stride 8). The paper's Table 2 mIoU values are lost from the text extraction, so no "
            "paper column is shown. speckle = % of predicted pixels that differ from their 5x5 majority label; "
            f"'thin mean': mean IoU of {', '.join(data.thin_names)}; 'boundary F': boundary F-score, 2-px tolerance.")


def table2_rates_fit(regime: Regime, rf: "pd.DataFrame") -> tuple[bool, str]:
    """The check that the training crop's stride-8 feature map is wider than every rate."""
    feat = regime.crop[0] // TABLE2_STRIDE
    top = int(rf["largest rate"].max())
    return top < feat, (f"{regime.crop[0]}-px training crop: {feat}x{feat} feature map; largest rate {top}; "
                        f"largest RF of res4+res5 {int(rf['RF of res4+res5, ours (feature px)'].max())} feature px")


def table1_reference(rows: Sequence[str]) -> "pd.DataFrame":
    """The paper's Table 1 numbers (``paperlib.reference``) of the given rows only."""
    from .. import reference
    ref = reference.load("duchdc", "table1")
    return ref[ref["row"].isin(list(rows))].reset_index(drop=True)


def gains_figure(table: "pd.DataFrame", pairs: Sequence[tuple[str, str]], title: str, arm: str = "row",
                 cols: Sequence[str] = ("mIoU", "thin mean", "boundary F")):
    """Paired differences ``a - b`` per seed of each pair of arms, one panel per column: bars mean
    ± SE over seeds, dots the seeds."""
    import matplotlib.pyplot as plt
    by = table.set_index([arm, "seed"])
    fig, axes = plt.subplots(1, len(cols), figsize=(5 * len(cols), 3.8), squeeze=False)
    for ax, col in zip(axes[0], cols):
        for i, (a, b) in enumerate(pairs):
            d = (by.loc[a, col] - by.loc[b, col]).dropna()
            ax.bar(i, d.mean(), yerr=d.sem() if len(d) > 1 else 0, color="tab:blue", alpha=0.7, capsize=3)
            ax.plot(np.full(len(d), i), d.values, "k.", ms=4)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(pairs)), [f"{a}\n- {b}" for a, b in pairs], rotation=30, fontsize=7, ha="right")
        ax.set_ylabel(f"{col} difference (points)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_frames(data: Data, regime: Regime, n_random: int = 1, seed: int = 0) -> list[int]:
    """Held-out frames to show: the one with the most thin-class pixels, then ``n_random`` others
    drawn with ``seed`` (so a figure is never only the most favourable frame)."""
    _, val = data.sets(regime)
    thin_px = [int(np.isin(val[k]["label"].numpy(), data.thin).sum()) for k in range(len(val))]
    first = int(np.argmax(thin_px))
    rest = [k for k in range(len(val)) if k != first]
    pick = np.random.default_rng(seed).choice(len(rest), size=min(n_random, len(rest)), replace=False)
    return [first] + [rest[int(i)] for i in sorted(pick)]


def prediction_figure(regime: Regime, names: Sequence[str], seed: int, frames: Sequence[int], data: Data = WORLD,
                      crf: bool = False):
    """A row per held-out frame: image, ground truth and each arm's prediction (seed ``seed``);
    with ``crf`` also DUC (cell 2) + CRF."""
    import matplotlib.pyplot as plt

    from ..crf import dense_crf
    from ..data import denormalize
    from ..data.labels import colorize
    from ..engine import predict_logits
    _, val = data.sets(regime)
    models_ = {n: arm_model(regime, n, seed, data) for n in names}
    cols = ["image", "ground truth", *names] + (["DUC (cell 2) + CRF"] if crf else [])
    fig, axes = plt.subplots(len(frames), len(cols), figsize=(2.6 * len(cols), 1.6 * len(frames) + 0.6), squeeze=False)
    for row, k in enumerate(frames):
        item = val[k]
        image = denormalize(item["image"])
        panels = [image, colorize(item["label"].numpy())]
        for n in names:
            with torch.no_grad():
                panels.append(colorize(predict_logits(models_[n], item["image"][None]).argmax(1)[0].numpy().astype(np.uint8)))
        if crf:
            with torch.no_grad():
                probs = torch.softmax(predict_logits(models_["DUC (cell 2)"], item["image"][None]), 1)[0].numpy()
            panels.append(colorize(dense_crf(probs, image).astype(np.uint8)))
        for col, (title, im) in enumerate(zip(cols, panels)):
            ax = axes[row, col]
            ax.imshow(im)
            ax.axis("off")
            if row == 0:
                ax.set_title(title, fontsize=8)
        axes[row, 0].set_title(f"frame {k}" if row else f"frame {k} (most thin pixels)", fontsize=8)
    fig.suptitle(f"{data.describe()}, seed {seed}", fontsize=9)
    plt.tight_layout()
    return fig


def speckle_gap_frames(regime: Regime, a: str, b: str, seed: int, n: int, data: Data = WORLD) -> tuple[list, list]:
    """Figure 5's frames: the ``n`` held-out frames where arm ``a``'s speckle exceeds arm ``b``'s
    most (seed ``seed``'s models), and ``n`` others drawn at random (seeded) -- the figure shows both,
    so the artefact is not judged on the most favourable frames alone."""
    _, val = data.sets(regime)
    pa, pb = (predictions(arm_model(regime, m, seed, data), val) for m in (a, b))
    nc = val.num_classes
    gap = [float((x != majority_filter(x, nc)).float().mean() - (y != majority_filter(y, nc)).float().mean())
           for x, y in zip(pa, pb)]
    top = [int(k) for k in np.argsort(gap)[::-1][:n]]
    rest = [k for k in range(len(val)) if k not in top]
    rng = np.random.default_rng(seed)
    return top, sorted(int(rest[i]) for i in rng.choice(len(rest), size=min(n, len(rest)), replace=False))
