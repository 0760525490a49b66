"""Run sizes in one place: ``smoke`` < ``cpu`` < ``gpu`` < ``paper``.

A profile changes sizes, never code paths: ``smoke`` runs exactly the code ``paper`` runs, on a
tiny world for a few steps. Every field of a profile is a ``TrainConfig`` field of the same name,
so ``config_from_params(profile, **overrides)`` is just "profile defaults, then overrides".

    get_profile("cpu")                 # the cpu sizes
    get_profile("cpu", steps=400)      # a notebook's per-profile override
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from .config import ConfigError


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
        from .config import TrainConfig
        TrainConfig.from_dict(prof.config_dict())
    return prof
