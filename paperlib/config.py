"""One typed, validated, JSON-serialisable config that fully describes a training run.

``TrainConfig`` is what notebooks (papermill parameters), the CLI and ``torchrun -m
paperlib.train --config FILE`` fill in; ``paperlib.engine.train`` reads nothing else. Every value
is checked on construction and a bad one raises ``ConfigError`` naming the field and the value,
so a typo in a papermill parameter fails before any data is touched::

    cfg = config_from_params("cpu", model="tiny_fcn", steps=400)   # profile defaults + overrides
    cfg2 = TrainConfig.from_json(cfg.to_json())                      # == cfg
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .atomic import atomic_write_text  # noqa: F401  (re-exported: config.atomic_write_text)


class ConfigError(ValueError):
    """A bad config value or key; the message names the field and the offending value."""


DATASETS = ("world", "cityscapes", "camvid", "kitti", "mapillary", "bdd100k", "voc")
#: Native (H, W) of real datasets whose frames all share one size (as paperlib loads them).
NATIVE_SIZES = {"cityscapes": (1024, 2048), "camvid": (360, 480), "bdd100k": (720, 1280)}
OPTIMIZERS = ("sgd", "adam")
SAMPLERS = ("random", "class_uniform", "centroid")
AMP_MODES = ("bf16", "fp16", "off")
LR_STEPS = ("iter", "epoch")
EVAL_MODES = ("whole", "slide", "multiscale")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Sizes come from a profile (``paperlib.profiles``)."""

    # --- identity -----------------------------------------------------------------------
    name: str = "run"
    profile: str = "smoke"
    seed: int = 0                              # training seed: initialisation and data order only
    # --- data ---------------------------------------------------------------------------
    dataset: str = "world"
    data_root: Optional[str] = None
    train_split: str = "train"
    val_split: str = "val"
    num_classes: int = 19
    max_images: Optional[int] = None          # cap on training images (None = all)
    max_eval_images: Optional[int] = None     # cap on validation images (None = all)
    world_domain: str = "city_a"               # synthetic world only
    world_seed: int = 0                        # which world (its layout, clips, textures): not the training seed
    noise_px: float = 0.0                      # the world's annotation noise on training labels (px; 0 = exact)
    world_image_size: tuple[int, int] = (64, 128)
    world_clips: int = 4
    clip_length: int = 8
    crop_size: tuple[int, int] = (64, 64)      # an int is read as a square crop
    scale: tuple[float, float] = (0.5, 2.0)    # random scale range before cropping
    flip: bool = True
    pad_crop: bool = True                      # pad (with ignore) crops larger than the image
    transform_options: dict = field(default_factory=dict)
    # fast crop schedules (self-training / CSST Sec. 3.3; paperlib.schedules): with
    # ``crop_sizes`` set, epoch e trains on square crops of crop_schedule(...)[e] and crop_size
    # becomes the largest of them; ``batch_scaling`` raises the batch as the crop shrinks (pixels
    # per batch ~ constant, at most ``max_batch_size``, default 4 x batch_size: 16 -> 64)
    crop_schedule: str = "constant"
    crop_sizes: tuple[int, ...] = ()           # ascending square sizes; () = fixed crop_size
    crop_warmup_epochs: int = 0                # first epochs at the largest size
    crop_period: Optional[int] = None          # epochs per size (coarse2fine / fine2coarse)
    batch_scaling: bool = False
    max_batch_size: Optional[int] = None
    sampler: str = "random"
    sampler_options: dict = field(default_factory=dict)
    batch_size: int = 4                        # global batch, split evenly over DDP ranks
    workers: int = 0
    # --- model --------------------------------------------------------------------------
    model: str = "tiny_fcn"
    model_width: Optional[int] = 8             # passed as ``width=`` when not None
    model_options: dict = field(default_factory=dict)
    # --- optimisation -------------------------------------------------------------------
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)  # Adam only
    poly_power: float = 1.0                    # 1.0 VPLR, 0.9 self-training / CSST
    lr_step: str = "iter"                      # poly schedule per "iter" or per "epoch"
    warmup_steps: int = 0
    warmup_start: float = 0.1                  # lr factor at step 0 of a linear warm-up
    epochs: int = 1
    steps: Optional[int] = None                # total optimiser steps; None = epochs x epoch
    loss: str = "cross_entropy"
    loss_options: dict = field(default_factory=dict)
    # --- numerics -----------------------------------------------------------------------
    device: str = "auto"
    amp: str = "bf16"                          # CUDA only; CPU always runs float32
    channels_last: bool = False
    # --- evaluation ---------------------------------------------------------------------
    eval_mode: str = "whole"
    eval_scales: tuple[float, ...] = (1.0,)
    eval_flip: bool = False
    eval_crop: Optional[tuple[int, int]] = None   # sliding window; None = crop_size
    eval_stride: Optional[tuple[int, int]] = None  # None = 2/3 of the window
    eval_every: int = 0                        # steps between evaluations; 0 = at the end only
    # --- bookkeeping --------------------------------------------------------------------
    out_dir: Optional[str] = None              # log.jsonl, config.json, last.pt; None = no files
    ckpt_every: int = 0                        # steps between checkpoints; 0 = at the end only
    resume: bool = False
    log_every: int = 1
    progress: bool = True

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), _hints()[f.name]))
        self._normalise()
        self._validate()

    # --- construction helpers -----------------------------------------------------------
    def _normalise(self):
        for name in ("crop_size", "eval_crop", "eval_stride", "world_image_size"):
            v = getattr(self, name)
            if isinstance(v, int):
                object.__setattr__(self, name, (v, v))
        if isinstance(self.crop_sizes, int):
            object.__setattr__(self, "crop_sizes", (self.crop_sizes,))
        if self.crop_sizes:  # a crop schedule trains at most at its largest size
            object.__setattr__(self, "crop_size", (max(self.crop_sizes),) * 2)

    def _validate(self):
        _choice("dataset", self.dataset, DATASETS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("sampler", self.sampler, SAMPLERS)
        _choice("amp", self.amp, AMP_MODES)
        _choice("lr_step", self.lr_step, LR_STEPS)
        _choice("eval_mode", self.eval_mode, EVAL_MODES)
        from . import losses, models
        _choice("profile", self.profile, tuple(PROFILES))
        _choice("model", self.model, tuple(models.available()))
        _choice("loss", self.loss, tuple(sorted(losses.LOSSES)))
        if not _DEVICE_RE.match(self.device):
            _fail("device", self.device, "must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if not self.name:
            _fail("name", self.name, "must be a non-empty string")
        for name in ("num_classes", "epochs", "batch_size", "log_every", "world_clips", "clip_length"):
            _positive(name, getattr(self, name))
        for name in ("steps", "max_images", "max_eval_images", "model_width"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        for name in ("workers", "warmup_steps", "eval_every", "ckpt_every", "seed"):
            if getattr(self, name) < 0:
                _fail(name, getattr(self, name), "must be >= 0")
        for name in ("crop_size", "world_image_size") + (("eval_crop",) if self.eval_crop else ()) \
                + (("eval_stride",) if self.eval_stride else ()):
            if len(getattr(self, name)) != 2 or min(getattr(self, name)) < 1:
                _fail(name, getattr(self, name), "must be a positive int or (height, width)")
        if self.lr <= 0:
            _fail("lr", self.lr, "must be > 0")
        if not 0 <= self.momentum < 1:
            _fail("momentum", self.momentum, "must be in [0, 1)")
        if self.weight_decay < 0:
            _fail("weight_decay", self.weight_decay, "must be >= 0")
        if not all(0 <= b < 1 for b in self.betas) or len(self.betas) != 2:
            _fail("betas", self.betas, "must be two values in [0, 1)")
        if self.poly_power < 0:
            _fail("poly_power", self.poly_power, "must be >= 0")
        if not 0 < self.warmup_start <= 1:
            _fail("warmup_start", self.warmup_start, "must be in (0, 1]")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            _fail("scale", self.scale, "must be (min, max) with 0 < min <= max")
        if not self.eval_scales or min(self.eval_scales) <= 0:
            _fail("eval_scales", self.eval_scales, "must be a non-empty list of positive scales")
        window = self.eval_crop or self.crop_size
        if self.eval_stride and any(s > c for s, c in zip(self.eval_stride, window)):
            _fail("eval_stride", self.eval_stride, f"is larger than the sliding window {window}")
        if (self.resume or self.ckpt_every) and not self.out_dir:
            _fail("out_dir", self.out_dir, "is needed for checkpoints (resume / ckpt_every)")
        self._check_crop_schedule()
        self._check_crop_fits()

    def _check_crop_schedule(self):
        from .schedules import SCHEDULES, crop_schedule
        _choice("crop_schedule", self.crop_schedule, SCHEDULES)
        if self.max_batch_size is not None and self.max_batch_size < self.batch_size:
            _fail("max_batch_size", self.max_batch_size, f"is smaller than batch_size ({self.batch_size})")
        if not self.crop_sizes:
            if self.crop_schedule != "constant" or self.batch_scaling or self.crop_warmup_epochs:
                _fail("crop_sizes", self.crop_sizes, "must list the crop sizes of crop_schedule "
                      f"{self.crop_schedule!r} (with batch_scaling / crop_warmup_epochs)")
            return
        if self.steps is not None:
            _fail("steps", self.steps, "must be None with crop_sizes: a crop schedule is defined "
                  "per epoch, set epochs instead")
        try:
            crop_schedule(self.crop_schedule, self.epochs, self.crop_sizes, self.crop_warmup_epochs,
                          self.crop_period)
        except ValueError as e:
            raise ConfigError(f"config fields crop_schedule / crop_sizes / crop_warmup_epochs / "
                              f"crop_period: {e}") from None

    def _check_crop_fits(self):
        """Without padding, a crop must fit inside the smallest randomly scaled image."""
        size = self.world_image_size if self.dataset == "world" else NATIVE_SIZES.get(self.dataset)
        if self.pad_crop or size is None:
            return
        smallest = (int(size[0] * self.scale[0]), int(size[1] * self.scale[0]))
        if self.crop_size[0] > smallest[0] or self.crop_size[1] > smallest[1]:
            _fail("crop_size", self.crop_size,
                  f"is larger than the {self.dataset} images at scale {self.scale[0]} ({smallest}) "
                  "and pad_crop is False")

    # --- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict; an unknown key raises ``ConfigError`` naming it (and a close match)."""
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a dict, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown config key {key!r}{hint}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            return cls.from_json(path.read_text())
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (temp file + rename)."""
        return atomic_write_text(path, self.to_json() + "\n")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (and validated); unknown keys are named."""
        return self.from_dict({**self.to_dict(), **changes})


def parse_overrides(items) -> dict[str, Any]:
    """``["steps=10", "lr=0.01", "name=abc", "flip=true"]`` -> a typed dict: each value parsed as
    JSON when it can be (``true``, ``[512, 1024]``), Python's ``True`` / ``False`` / ``None`` read
    as such, anything else kept as text. The one parser behind every ``--set`` (``python -m
    paperlib reproduce`` and ``python -m paperlib.train``); a bad item raises ``ConfigError``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"bad override {item!r}: expected key=value with a Python identifier key")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = {"True": True, "False": False, "None": None}.get(raw, raw)
    return out


def config_from_params(profile: str = "smoke", **overrides) -> TrainConfig:
    """The profile's defaults with ``overrides`` applied: what a notebook's parameters become.

    Fails fast (``ConfigError``) on an unknown profile, an unknown parameter name or a bad value.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    return TrainConfig.from_dict({**prof.config_dict(), **overrides})


# --- validation helpers ---------------------------------------------------------------------
def _fail(name: str, value: Any, why: str):
    raise ConfigError(f"config field {name!r} = {value!r} {why}")


def _choice(name: str, value: Any, choices: tuple):
    if value not in choices:
        _fail(name, value, f"is unknown; choose one of: {', '.join(map(str, choices))}")


def _positive(name: str, value: Any):
    if value < 1:
        _fail(name, value, "must be >= 1")


_HINTS: dict | None = None


def _hints() -> dict:
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(TrainConfig)
    return _HINTS


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the annotation; lists become tuples (JSON has no tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, value, arg)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple:
        if isinstance(value, int) and not isinstance(value, bool) and args and args[0] is int:
            return value  # a square size, expanded by _normalise
        if not isinstance(value, (list, tuple)):
            _fail(name, value, f"must be a list/tuple, got {type(value).__name__}")
        elem = args[0] if args else Any
        return tuple(_coerce(name, v, elem) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            _fail(name, value, f"must be true/false, got {type(value).__name__}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(name, value, f"must be an int, got {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(name, value, f"must be a number, got {type(value).__name__}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            _fail(name, value, f"must be a string, got {type(value).__name__}")
        return value
    if hint is dict:
        if not isinstance(value, dict):
            _fail(name, value, f"must be a dict, got {type(value).__name__}")
        return dict(value)
    return value


# --- profiles: run sizes in one place ---------------------------------------------------------
# ``smoke`` < ``cpu`` < ``gpu`` < ``paper``. A profile changes sizes, never code paths: ``smoke``
# runs exactly the code ``paper`` runs, on a tiny world for a few steps. Every field of a profile
# is a ``TrainConfig`` field of the same name, so ``config_from_params(profile, **overrides)`` is
# just "profile defaults, then overrides" (``paperlib.profiles`` re-exports these names).
@dataclass(frozen=True)
class Profile:
    """Sizes of a run. ``device`` / ``workers`` / ``amp`` describe the machine it is sized for."""

    name: str
    device: str
    dataset: str
    world_image_size: tuple[int, int]   # synthetic world frames (H, W)
    world_clips: int                    # clips exported per split
    clip_length: int                    # frames per clip
    max_images: Optional[int]           # cap on training images of a real dataset
    max_eval_images: Optional[int]      # cap on validation images
    crop_size: tuple[int, int]
    batch_size: int                     # global batch (split over torchrun ranks)
    steps: Optional[int]                # None = ``epochs`` full epochs
    epochs: int
    lr: float
    model_width: Optional[int]          # None = the model's paper-faithful width
    eval_mode: str
    eval_scales: tuple[float, ...]
    eval_flip: bool
    workers: int
    amp: str

    def config_dict(self) -> dict:
        """The ``TrainConfig`` fields this profile sets (plus ``profile=<name>``)."""
        d = dataclasses.asdict(self)
        d["profile"] = d.pop("name")
        return d


PROFILES: dict[str, Profile] = {p.name: p for p in (
    # CPU, seconds to a minute per notebook: what the tests run.
    Profile(name="smoke", device="cpu", dataset="world", world_image_size=(64, 128), world_clips=8,
            clip_length=6, max_images=8, max_eval_images=4, crop_size=(64, 64), batch_size=4, steps=10, epochs=1,
            lr=0.02, model_width=8, eval_mode="whole", eval_scales=(1.0,), eval_flip=False,
            workers=0, amp="off"),
    # 2 CPU cores, a few minutes per notebook: big enough for the papers' effects to show.
    Profile(name="cpu", device="cpu", dataset="world", world_image_size=(128, 256), world_clips=96,
            clip_length=30, max_images=None, max_eval_images=None, crop_size=(128, 128), batch_size=8, steps=300,
            epochs=1, lr=0.02, model_width=16, eval_mode="whole", eval_scales=(1.0,),
            eval_flip=False, workers=0, amp="off"),
    # One GPU: larger world and models.
    Profile(name="gpu", device="cuda", dataset="world", world_image_size=(256, 512), world_clips=600,
            clip_length=30, max_images=None, max_eval_images=None, crop_size=(256, 256), batch_size=16, steps=4000,
            epochs=1, lr=0.02, model_width=None, eval_mode="whole", eval_scales=(1.0,),
            eval_flip=False, workers=6, amp="bf16"),
    # The papers' setting (VPLR Sec. 4.1 / self-training Sec. 4): Cityscapes, crop 800, batch 16
    # over 8 GPUs (torchrun), 180 epochs, lr 0.002; notebooks set per-paper power / epochs.
    Profile(name="paper", device="cuda", dataset="cityscapes", world_image_size=(1024, 2048),
            world_clips=500, clip_length=30, max_images=None, max_eval_images=None, crop_size=(800, 800), batch_size=16,
            steps=None, epochs=180, lr=0.002, model_width=None, eval_mode="whole",
            eval_scales=(0.5, 1.0, 2.0), eval_flip=False, workers=8, amp="bf16"),
)}


def get_profile(name: str, **overrides) -> Profile:
    """The named profile, with ``overrides`` of its fields; unknown names raise ``ConfigError``."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    for key in overrides:
        if key not in fields:
            raise ConfigError(f"unknown profile field {key!r} for profile {name!r}; "
                              f"fields: {', '.join(sorted(fields))}")
    prof = dataclasses.replace(PROFILES[name], **overrides)
    if overrides:  # validate the overridden values the way a config would
        TrainConfig.from_dict(prof.config_dict())
    return prof
