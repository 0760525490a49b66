"""Data: the synthetic world, real dataset formats, joint transforms and samplers.

``get_dataset(cfg, split, transform)`` is the one entry the engine and notebooks use:

- ``dataset="world"``: the embedded synthetic world (``paperlib.data.synthetic``) is exported once
  to disk in Cityscapes' layout (under :func:`data_dir`, keyed by its parameters) and read back
  by the Cityscapes loader, so the real-data code path is the one exercised by default; a
  CamVid-styled ``world_domain`` (``camvid``, see ``synthetic.domains.CAMVID_STYLED``) is
  exported in CamVid's SegNet layout and read by the CamVid loader (11 classes: the config needs
  ``num_classes=11``);
- any other name: ``paperlib.data.datasets.build_dataset(cfg.dataset, cfg.data_root, split)``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .base import DatasetError, Sample, SegDataset  # noqa: F401



def data_dir() -> Path:
    """Where generated data lives: ``$PAPERLIB_DATA``, else ``<repo>/data`` (git-ignored) when
    paperlib runs from a checkout, else ``~/.cache/paperlib/data``."""
    if os.environ.get("PAPERLIB_DATA"):
        return Path(os.environ["PAPERLIB_DATA"])
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / "data"
    return Path.home() / ".cache" / "paperlib" / "data"


def world_splits(num_clips: int) -> dict[str, int]:
    """Train / val snippet counts for a world of ``num_clips`` training snippets (val = 1/4)."""
    return {"train": int(num_clips), "val": max(2, int(num_clips) // 4)}


def world_layout(domain: str) -> str:
    """The on-disk layout a world domain is exported in: ``"camvid"`` (SegNet's CamVid, 11
    classes) for CamVid-styled domains (``synthetic.domains.CAMVID_STYLED``), else
    ``"cityscapes"``."""
    from .synthetic.domains import CAMVID_STYLED
    return "camvid" if domain in CAMVID_STYLED else "cityscapes"


def export_world(domain: str = "city_a", size=None, num_clips: int = 8, seed: int = 0,
                 sequence: bool = False, flow: bool = False, noise_px: float = 0.0,
                 progress: bool = True, layout: str | None = None) -> Path:
    """Export (once; idempotent) a world to ``data_dir()/world/...`` and return its root.

    ``size`` (H, W) defaults to CamVid's (360, 480) for CamVid-styled domains, else (256, 512).
    ``layout`` defaults to :func:`world_layout` (CamVid's for CamVid-styled domains, which
    refuses ``sequence`` / ``flow``; pass ``layout="cityscapes"`` to get those in train ids).
    """
    from .synthetic import SyntheticWorld
    from .synthetic.domains import CAMVID_SIZE
    from .synthetic.export import export
    native = world_layout(domain)
    layout = native if layout is None else layout
    if size is None:
        size = CAMVID_SIZE if native == "camvid" else (256, 512)
    h, w = size
    name = f"{domain}_{h}x{w}_s{seed}_n{num_clips}" + ("_seq" if sequence else "") + \
        ("_flow" if flow else "") + (f"_noise{noise_px:g}" if noise_px else "") + \
        ("" if layout == native else f"_{layout}")
    root = data_dir() / "world" / name
    world = SyntheticWorld(domain, size=tuple(size), seed=seed)
    return export(world, root, layout=layout, splits=world_splits(num_clips), sequence=sequence,
                  flow=flow, noise_px=noise_px, progress=progress)


def dataset_num_classes(name: str, world_domain: str | None = None, **options) -> int:
    """Number of classes of a dataset by name: the world has Cityscapes' 19, or CamVid's 11 when
    ``world_domain`` is CamVid-styled (``camvid``)."""
    if name == "world":
        return 11 if world_domain is not None and world_layout(world_domain) == "camvid" else 19
    from .datasets import DATASETS
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: world, {', '.join(DATASETS)}")
    cls = DATASETS[name]
    return int(getattr(cls, "num_classes"))


def get_dataset(cfg, split: str, transform=None) -> SegDataset:
    """The dataset a ``TrainConfig`` names, for ``split``, with ``transform`` applied to items."""
    from .datasets import build_dataset
    if cfg.dataset == "world":
        noise = cfg.noise_px if split == cfg.train_split else 0.0  # evaluation is on exact labels
        root = export_world(cfg.world_domain, cfg.world_image_size, cfg.world_clips, seed=cfg.world_seed,
                            noise_px=noise,
                            progress=cfg.progress)
        ds = build_dataset(world_layout(cfg.world_domain), root, split, transform)
    else:
        ds = build_dataset(cfg.dataset, cfg.data_root, split, transform)
    if ds.num_classes != cfg.num_classes:
        from ..config import ConfigError
        what = f"dataset {cfg.dataset!r}" + (f" (world_domain {cfg.world_domain!r}, "
                                             f"{world_layout(cfg.world_domain)} layout)"
                                             if cfg.dataset == "world" else "")
        raise ConfigError(f"config field 'num_classes' = {cfg.num_classes} but {what} has "
                          f"{ds.num_classes} classes; pass num_classes={ds.num_classes}")
    cap = cfg.max_images if split == cfg.train_split else cfg.max_eval_images
    if cap and len(ds) > cap:  # evenly spaced, deterministic subset
        keep = np.linspace(0, len(ds) - 1, cap).round().astype(int)
        ds.samples = [ds.samples[i] for i in keep]
    return ds


def denormalize(image: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) float image -> (H, W, 3) uint8 RGB for display."""
    if image.dtype == torch.uint8:
        return image.permute(1, 2, 0).numpy()
    from .transforms import IMAGENET_MEAN, IMAGENET_STD
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (image.float().cpu() * std + mean).clamp(0, 1)
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
