"""VPLR's propagated training sets on disk (Sec. 3.2, 4.2 "Label Propagation versus Joint
Propagation", appendix B), ready for ``engine.train(cfg, train_set=...)``.

Every labelled frame (I(i), L(i)) of a Cityscapes-layout split is propagated auto-regressively
(``synthesize.propagate``: step k warps the result of step k-1; Eq. 1-3) forward and backward
along its video snippet (``leftImg8bit_sequence``), with one of four motions:

- ``"vpred"``: the learned motion vectors of G trained for video *prediction* (Eq. 1-2);
- ``"vrec"``: G trained for video *reconstruction* (Eq. 3);
- ``"flow"``: optical flow only (OpenCV DIS), the stand-in for the paper's FlowNet2 baseline;
- ``"exact"``: the synthetic world's exact flow (an ablation no real dataset allows).

Two folders are written, each once, atomically (a temp folder renamed into place) and keyed by
its parameters, so a second call with the same parameters writes nothing:

1. a **pool** per (source, motion, depth): the propagated frame and label of every offset
   +-1..+-depth (``depth`` = max(|k|, 5) by default, so Table 2's k = 1..5 share one pool --
   propagation is auto-regressive, so offset +-n does not depend on how far one goes after it);
2. a **selection**: a Cityscapes-layout folder (``leftImg8bit/<split>`` +
   ``gtFine/<split>`` ``_labelIds`` / ``_labelTrainIds``) with exactly the samples of one
   training set, hard links into the pool. **LP** pairs the *real* frame I(i+k) (linked from
   ``leftImg8bit_sequence``) with the propagated label; **JP** pairs the *propagated* frame.
   Non-accumulated = offsets +-k only; accumulated = all offsets with |offset| <= k.

A sample's name is the name of the real frame it stands for, ``<city>_<seq>_<frame>`` with
frame = labelled frame + offset (the world's and Cityscapes' labelled frame is 000019, so
``citya_000003_000022`` is offset +3 of snippet 3); ``samples.csv`` in the selection lists
name, source frame, offset and pairing. ``Cityscapes(root, split)`` reads a selection.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from ..atomic import remove_stale_temp_dirs
from ..data.base import DatasetError
from ..progress import tqdm
from .frames import SequenceFrames, _is_config, sequence_root  # noqa: F401  (the frame source; re-exported)
from .motion import MotionNet, motion_defaults, train_motion
from .synthesize import dis_flows, flow_motion, model_motion, propagate
from .warp import IGNORE_INDEX

MOTIONS = ("vpred", "vrec", "flow", "exact")
DIRECTIONS = {"both": (1, -1), "forward": (1,), "backward": (-1,)}
POOL_DEPTH = 5            # the paper's longest propagation (Table 2: +-1..+-5)
STAMP = "propagated.json"
_FORMAT = 1
_MODE_OF = {"vpred": "prediction", "vrec": "reconstruction"}


# --- the pool: every offset up to depth ----------------------------------------------------------

def _model_key(model: MotionNet) -> dict:
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"mode": model.mode, "input_flow": getattr(model, "input_flow", "dis"), "weights": h.hexdigest()[:16]}


def _motion_fn(motion: str, model: MotionNet | None, src: SequenceFrames, c: int, lo: int,
               frames: np.ndarray):
    """Motion function (``synthesize.MotionFn``) on the window ``frames`` = clip c's frames lo..."""
    dis = dis_flows(frames)
    exact = lambda a, b: src.exact_flow(c, lo + a, lo + b)  # noqa: E731
    if motion == "flow":
        return flow_motion(dis)
    if motion == "exact":
        return flow_motion(exact)
    return model_motion(model, frames, exact if getattr(model, "input_flow", "dis") == "exact" else dis)


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3:
        img = img[..., ::-1]
    if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
        raise OSError(f"could not write {path}")


def _write_label(folder: Path, stem: str, train: np.ndarray) -> None:
    from ..data.synthetic.export import label_ids
    _write_png(folder / f"{stem}_gtFine_labelIds.png", label_ids(train))
    _write_png(folder / f"{stem}_gtFine_labelTrainIds.png", train)


def _atomic_folder(root: Path, params: dict, fill) -> Path:
    """Write a folder once: reuse ``root`` if its stamp equals ``params``, else ``fill(tmp)`` a
    temp sibling, stamp it and rename it into place."""
    stamp = root / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return root
    if root.exists():
        raise ValueError(f"{root} exists with other content (its {STAMP} differs or is missing); "
                         f"remove it or choose another out=")
    remove_stale_temp_dirs(root)  # a killed earlier writer's leftovers
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        fill(tmp)
        (tmp / STAMP).write_text(json.dumps(params, indent=1))
        if stamp.is_file() and json.loads(stamp.read_text()) == params:
            return root  # a concurrent writer finished first: keep its folder
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def _labelled(root: Path, split: str):
    from ..data.datasets import Cityscapes
    return Cityscapes(root, split)


def _pool(src: SequenceFrames, motion: str, depth: int, model: MotionNet | None, progress: bool) -> Path:
    """Propagate every labelled frame of ``src``'s split +-1..+-depth with ``motion`` (see module doc)."""
    from ..data import data_dir
    params = {"format": _FORMAT, "kind": "pool", "source": src.identity(), "motion": motion,
              "depth": int(depth), "model": _model_key(model) if model is not None else None}
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = data_dir() / "propagated" / "pools" / f"{motion}_d{depth}_{digest}"
    labelled = _labelled(src.root, src.split)

    def fill(tmp: Path) -> None:
        for i in tqdm(range(len(labelled)), desc=f"propagate ({motion}, +-{depth})", disable=not progress,
                      unit="frame"):
            name = labelled.samples[i].name
            city, seq, t = name.rsplit("_", 2)
            c = src.index.get(f"{city}_{seq}")
            if c is None:
                raise DatasetError(f"no video snippet for labelled frame {name} in {src.root}")
            f0 = [src.frame_number(c, f) for f in range(src.lengths[c])].index(int(t))
            lo, hi = f0 - depth, f0 + depth
            if lo < 0 or hi >= src.lengths[c]:
                raise ValueError(f"k = {depth}: snippet {city}_{seq} has frames 0..{src.lengths[c] - 1} and "
                                 f"frame {f0} is labelled, so it cannot be propagated +-{depth} steps")
            frames = np.stack([src.frame(c, f) for f in range(lo, hi + 1)])
            fn = _motion_fn(motion, model, src, c, lo, frames)
            label = labelled.load_label(i)
            for s in (1, -1):
                images, labels = propagate(frames, label, depth, s * depth, fn, IGNORE_INDEX)
                for n in range(1, depth + 1):
                    stem = f"{city}_{seq}_{src.frame_number(c, f0 + s * n):06d}"
                    _write_png(tmp / "leftImg8bit" / src.split / city / f"{stem}_leftImg8bit.png", images[n - 1])
                    _write_label(tmp / "gtFine" / src.split / city, stem, labels[n - 1])
    return _atomic_folder(root, params, fill)


# --- the selection: one training set -------------------------------------------------------------

def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"export_propagated: k (propagation length) must be an int >= 1, got {k!r}")
    return int(k)


def _check(motion: str, direction: str, motion_model) -> None:
    if motion not in MOTIONS:
        raise ValueError(f"export_propagated: motion must be one of {MOTIONS}, got {motion!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"export_propagated: direction must be one of {tuple(DIRECTIONS)}, got {direction!r}")
    if motion_model is not None:
        if motion not in _MODE_OF:
            raise ValueError(f"export_propagated: motion_model is only used with motion 'vpred' / 'vrec', "
                             f"not {motion!r}")
        if not isinstance(motion_model, MotionNet) or motion_model.mode != _MODE_OF[motion]:
            raise ValueError(f"export_propagated: motion {motion!r} needs a MotionNet of mode "
                             f"{_MODE_OF[motion]!r}, got {getattr(motion_model, 'mode', type(motion_model).__name__)!r}")


def motion_model_for(source, motion: str, progress: bool = True) -> MotionNet:
    """The cached G of ``motion`` ('vpred' / 'vrec') for ``source``, trained with the sizes of
    the config's profile (``motion_defaults``; a path source uses the ``cpu`` sizes)."""
    if motion not in _MODE_OF:
        raise ValueError(f"motion_model_for: motion must be 'vpred' or 'vrec', got {motion!r}")
    profile = source.profile if _is_config(source) else "cpu"
    return train_motion(source, _MODE_OF[motion], "dis", progress=progress, **motion_defaults(profile))


def export_propagated(source, *, motion: str = "vrec", joint: bool = True, k: int = 1,
                      accumulated: bool = False, direction: str = "both", out=None,
                      motion_model: MotionNet | None = None, progress: bool = True,
                      split: str | None = None, depth: int | None = None) -> Path:
    """Write (once) the Cityscapes-layout folder of one propagated training set; return its root.

    ``source``: a ``TrainConfig`` or a Cityscapes-layout root with video snippets (see
    ``sequence_root``); ``motion``: 'vpred' | 'vrec' | 'flow' | 'exact'; ``joint``: JP (the
    propagated frame) or LP (the real frame I(i+k)); ``k`` >= 1 and ``accumulated``: offsets +-k
    only, or all 1..k; ``direction``: 'both' | 'forward' | 'backward'; ``motion_model``: the G
    to use for 'vpred' / 'vrec' (default: ``motion_model_for(source, motion)``, trained once and
    cached); ``out``: the folder (default under ``data_dir()/propagated``); ``depth``: how far
    the shared pool propagates (default max(k, 5)). The folder holds only propagated samples;
    ``propagated_train_set`` adds the real ones.
    """
    k = _check_k(k)
    _check(motion, direction, motion_model)
    depth = max(k, POOL_DEPTH) if depth is None else int(depth)
    if depth < k:
        raise ValueError(f"export_propagated: depth ({depth}) must be >= k ({k})")
    root, split = sequence_root(source, split=split, flow=motion == "exact", progress=progress)
    src = SequenceFrames(root, split, flow=motion == "exact")
    if motion in _MODE_OF and motion_model is None:
        motion_model = motion_model_for(source, motion, progress)
    pool = _pool(src, motion, depth, motion_model, progress)
    offsets = sorted(s * n for s in DIRECTIONS[direction] for n in (range(1, k + 1) if accumulated else [k]))
    params = {"format": _FORMAT, "kind": "selection", "pool": json.loads((pool / STAMP).read_text()),
              "joint": bool(joint), "k": k, "accumulated": bool(accumulated), "direction": direction,
              "offsets": offsets}
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    tag = f"{motion}_{'jp' if joint else 'lp'}_k{k}{'_acc' if accumulated else ''}_{direction}_{digest}"
    out = Path(out) if out is not None else (root_dir() / tag)
    labelled = _labelled(root, split)

    def fill(tmp: Path) -> None:
        rows = []
        for sample in labelled.samples:
            city, seq, t = sample.name.rsplit("_", 2)
            c = src.index[f"{city}_{seq}"]
            numbers = [src.frame_number(c, f) for f in range(src.lengths[c])]
            f0 = numbers.index(int(t))
            for off in offsets:
                stem = f"{city}_{seq}_{numbers[f0 + off]:06d}"
                img_src = (pool / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png") if joint \
                    else src.paths[c][f0 + off]  # JP: the propagated frame; LP: the real frame
                _link(img_src, tmp / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
                for kind in ("labelIds", "labelTrainIds"):
                    name = f"{stem}_gtFine_{kind}.png"
                    _link(pool / "gtFine" / split / city / name, tmp / "gtFine" / split / city / name)
                rows.append((stem, sample.name, off, "JP" if joint else "LP"))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([("name", "source", "offset", "pairing"), *rows])
        (tmp / "samples.csv").write_text(buf.getvalue())
    return _atomic_folder(out, params, fill)


def root_dir() -> Path:
    """Where selections live by default: ``data_dir()/propagated``."""
    from ..data import data_dir
    return data_dir() / "propagated"


def read_samples(root) -> list[dict]:
    """The rows of a selection's ``samples.csv`` (name, source, offset (int), pairing)."""
    path = Path(root) / "samples.csv"
    if not path.is_file():
        raise DatasetError(f"not a propagated dataset (no samples.csv): {root}")
    with open(path, newline="") as f:
        return [dict(r, offset=int(r["offset"])) for r in csv.DictReader(f)]


def propagated_train_set(cfg, *, k: int = 1, transform=None, **options):
    """The real training set of ``cfg`` plus the propagated samples of its labelled frames.

    ``ConcatSegDataset([real, propagated])`` (part 0 = real, 1 = propagated, as ``.source``),
    both with the training transform of ``cfg`` (or ``transform``), for
    ``engine.train(cfg, train_set=...)``. ``k = 0`` gives the real set alone (Table 2's column
    0). ``options`` are ``export_propagated``'s (motion, joint, accumulated, direction,
    motion_model, progress, depth). Only the frames in the real set (after ``max_images``) are
    propagated into it.
    """
    from ..data import get_dataset
    from ..data.datasets import build_dataset
    from ..data.samplers import ConcatSegDataset
    from ..data.transforms import build_train_transform
    tf = transform or build_train_transform(cfg.crop_size, scale=cfg.scale, flip=cfg.flip,
                                            **cfg.transform_options)
    real = get_dataset(cfg, cfg.train_split, tf)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"propagated_train_set: k must be an int >= 0, got {k!r}")
    if k == 0:
        return ConcatSegDataset([real])
    options.setdefault("progress", cfg.progress)
    root = export_propagated(cfg, k=k, **options)
    prop = build_dataset("cityscapes", root, cfg.train_split, tf)
    keep = {s.name.rsplit("_", 1)[0] for s in real.samples}
    prop.samples = [s for s in prop.samples if s.name.rsplit("_", 1)[0] in keep]
    if not prop.samples:
        raise DatasetError(f"no propagated sample in {root} belongs to the training set of the config")
    return ConcatSegDataset([real, prop])


__all__ = ["MOTIONS", "DIRECTIONS", "POOL_DEPTH", "SequenceFrames", "sequence_root", "export_propagated",
           "motion_model_for", "propagated_train_set", "read_samples", "root_dir"]
