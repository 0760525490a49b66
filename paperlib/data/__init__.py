"""Data: the synthetic world, real dataset formats, joint transforms and samplers.

``get_dataset(cfg, split, transform)`` is the one entry the engine and notebooks use:

- ``dataset="world"``: the embedded synthetic world (``paperlib.data.synthetic``) is exported once
  to disk in Cityscapes' layout (under :func:`data_dir`, keyed by its parameters) and read back
  by the Cityscapes loader, so the real-data code path is the one exercised by default;
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


def export_world(domain: str = "city_a", size=(256, 512), num_clips: int = 8, seed: int = 0,
                 sequence: bool = False, flow: bool = False, noise_px: float = 0.0,
                 progress: bool = True) -> Path:
    """Export (once; idempotent) a world to ``data_dir()/world/...`` and return its root."""
    from .synthetic import SyntheticWorld
    from .synthetic.export import export
    h, w = size
    name = f"{domain}_{h}x{w}_s{seed}_n{num_clips}" + ("_seq" if sequence else "") + \
        ("_flow" if flow else "") + (f"_noise{noise_px:g}" if noise_px else "")
    root = data_dir() / "world" / name
    world = SyntheticWorld(domain, size=tuple(size), seed=seed)
    return export(world, root, splits=world_splits(num_clips), sequence=sequence, flow=flow,
                  noise_px=noise_px, progress=progress)


def dataset_num_classes(name: str, **options) -> int:
    """Number of classes of a dataset by name (the world uses Cityscapes' 19)."""
    if name == "world":
        return 19
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
        ds = build_dataset("cityscapes", root, split, transform)
    else:
        ds = build_dataset(cfg.dataset, cfg.data_root, split, transform)
    if ds.num_classes != cfg.num_classes:
        from ..config import ConfigError
        raise ConfigError(f"config field 'num_classes' = {cfg.num_classes} but dataset "
                          f"{cfg.dataset!r} has {ds.num_classes} classes")
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
