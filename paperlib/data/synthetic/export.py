"""Write a ``SyntheticWorld`` to disk in Cityscapes' exact layout, so the real-data code path runs.

Layout under ``root`` (``<city>`` = the domain without underscores, e.g. ``citya``; ``<seq>`` =
the clip index, 6 digits; the labelled frame is ``<frame>`` = 000019 of a 30-frame snippet):

=====================================================================  ==========================
``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png``   labelled frame, RGB
``gtFine/<split>/<city>/<stem>_gtFine_labelIds.png``                 uint8 Cityscapes labelIds
``gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png``            uint8 train ids, 255 void
``gtFine/<split>/<city>/<stem>_gtFine_instanceIds.png``              uint16: labelId*1000+k for
                                                                       instance classes, else
                                                                       the labelId
``gtFine/<split>/<city>/<stem>_gtFine_color.png``                    RGBA palette colours
``leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<f>_leftImg8bit``  all frames f = 0..T-1
``gtCoarse/<split>/<city>/<stem>_gtCoarse_*.png``                    with ``coarse=True``
``leftImg8bit|gtCoarse/train_extra/...``                             ``coarse_extra`` snippets
``flow_sequence/<split>/<city>/<city>_<seq>_<f>_flowFw.npy``          with ``flow=True``: (H, W,
                                                                       2) float32 exact flow f ->
                                                                       f+1 (f < T-1); ``_flowBw``
                                                                       f -> f-1 (f > 0);
                                                                       ``_validFw/_validBw.png``
                                                                       uint8 0/255
``gtFine/<split>/<city>/<stem>_gtFine_fineIds.png``                 worlds with fine labels:
                                                                       uint8 ``FINE_CLASSES`` ids
                                                                       (255 void); the classes
                                                                       and their Cityscapes
                                                                       mapping are listed in
                                                                       ``fine_classes.json``
``synthetic_world.json``                                             the stamp (parameters)
=====================================================================  ==========================

Void pixels get labelId 0 ('unlabeled'), except the ego-vehicle hood, which gets 1
('ego vehicle') as in Cityscapes; both decode to train id 255. The labelled frame's gtFine is
the annotation of ``annotate(clip, 'cityscapes', noise_px)`` (clean for ``noise_px=0``).

With ``layout="camvid"`` (what ``paperlib.data.export_world`` uses for CamVid-styled domains,
``domains.CAMVID_STYLED``) the same snippets are written in the SegNet release's CamVid layout,
which ``paperlib.data.datasets.CamVid`` reads (``<name>`` = ``<city>_<seq>_<frame>.png``):

=====================================================================  ==========================
``<split>/<name>``                                                     labelled frame (19), RGB
``<split>annot/<name>``                                                uint8 CamVid ids 0..10,
                                                                       11 void: the annotation
                                                                       mapped by
                                                                       ``labels.to_camvid``
``<split>.txt``                                                        ``/SegNet/CamVid/<split>/
                                                                       <name> /SegNet/CamVid/
                                                                       <split>annot/<name>``
``synthetic_world.json``                                             the stamp (parameters)
=====================================================================  ==========================

CamVid's release has no video, no coarse labels and no flow, so ``sequence``, ``flow``,
``coarse``, ``coarse_extra`` and fine labels are refused there (``ValueError``): for video, call
``world.clip(i)`` and map its labels with ``paperlib.data.labels.to_camvid``. Split names must
be CamVid's (train, val, test).

The export is atomic (written into a temporary sibling folder, then renamed) and idempotent:
if ``root`` holds a stamp with the same parameters nothing is written.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from paperlib.atomic import remove_stale_temp_dirs
from paperlib.data.labels import (CAMVID_VOID, CITYSCAPES_PALETTE, CITYSCAPES_TRAINID_TO_ID,
                                  IGNORE_INDEX, to_camvid)
from paperlib.progress import tqdm

from .annotate import annotate
from .classes import FINE_CLASSES, FINE_TO_CITYSCAPES, THING_TRAINIDS
from .world import SyntheticWorld

STAMP = "synthetic_world.json"
FORMAT_VERSION = 1
LAYOUTS = ("cityscapes", "camvid")
CAMVID_SPLITS = ("train", "val", "test")
LABELLED = 19
EGO_VEHICLE_ID = 1

#: train id -> Cityscapes labelId (void -> 0 'unlabeled').
TRAINID_TO_LABELID = np.zeros(256, np.uint8)
for _t, _i in CITYSCAPES_TRAINID_TO_ID.items():
    TRAINID_TO_LABELID[_t] = _i


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., [2, 1, 0, 3]]
    if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
        raise OSError(f"could not write {path}")


def label_ids(train: np.ndarray, hood: np.ndarray | None = None) -> np.ndarray:
    """Train ids -> Cityscapes labelIds (void -> 0, hood pixels -> 1 'ego vehicle')."""
    ids = TRAINID_TO_LABELID[train]
    if hood is not None:
        ids[hood & (train == IGNORE_INDEX)] = EGO_VEHICLE_ID
    return ids


def instance_ids(train: np.ndarray, instances: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Cityscapes instanceIds: labelId * 1000 + k (k = 0, 1, .. per class in this image) for
    pixels of instance classes, the labelId elsewhere."""
    out = label.astype(np.uint16)
    for cls in THING_TRAINIDS:
        m = (train == cls) & (instances > 0)
        if not m.any():
            continue
        objs, inv = np.unique(instances[m], return_inverse=True)
        out[m] = (int(CITYSCAPES_TRAINID_TO_ID[cls]) * 1000 + inv).astype(np.uint16)
    return out


def color_png(train: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*train.shape, 4), np.uint8)
    m = train != IGNORE_INDEX
    rgba[m, :3] = CITYSCAPES_PALETTE[train[m]]
    rgba[..., 3] = 255
    return rgba


def camvid_label_ids(train: np.ndarray) -> np.ndarray:
    """Train ids -> the uint8 ids CamVid's SegNet release stores: ``to_camvid``, void -> 11."""
    ids = to_camvid(np.asarray(train, np.uint8))
    ids[ids == IGNORE_INDEX] = CAMVID_VOID
    return ids


def _gt(folder: Path, stem: str, kind: str, train, instances, hood) -> None:
    lid = label_ids(train, hood)
    _write_png(folder / f"{stem}_{kind}_labelIds.png", lid)
    _write_png(folder / f"{stem}_{kind}_labelTrainIds.png", train)
    _write_png(folder / f"{stem}_{kind}_instanceIds.png", instance_ids(train, instances, lid))
    _write_png(folder / f"{stem}_{kind}_color.png", color_png(train))


def export(world: SyntheticWorld, root: str | os.PathLike, layout: str = "cityscapes",
           splits: dict[str, int] | None = None, length: int = 30, noise_px: float = 0.0,
           coarse: bool = False, coarse_extra: int = 0, flow: bool = False, sequence: bool | None = None,
           city: str | None = None, seed: int = 0, overwrite: bool = False,
           progress: bool = True) -> Path:
    """Render ``splits`` (split -> number of snippets) of ``world`` into ``root`` (see module doc).

    ``layout``: ``"cityscapes"`` or ``"camvid"``. ``sequence`` (all frames of each snippet)
    defaults to True for Cityscapes' layout and False for CamVid's (which has no video).
    Snippets get consecutive clip indices across splits in the given order (train 0..n-1, val
    n..), so splits never share a clip. Returns ``root``. Raises ``ValueError`` if ``root``
    exists with different content and ``overwrite`` is False.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if sequence is None:
        sequence = layout == "cityscapes"
    splits = {"train": 2, "val": 1} if splits is None else dict(splits)
    if any(int(n) < 0 for n in splits.values()) or "train_extra" in splits:
        raise ValueError(f"splits must map split names (not train_extra) to counts >= 0, got {splits}")
    if layout == "camvid":
        _check_camvid_options(world, splits, sequence, flow, coarse, coarse_extra)
    if length < LABELLED + 1:
        raise ValueError(f"length must be >= {LABELLED + 1} (frame {LABELLED} is labelled), got {length}")
    root = Path(root)
    city = city or world.domain.replace("_", "")
    if "_" in city:
        raise ValueError(f"city name {city!r} must not contain '_' (Cityscapes file names split on it)")
    params = {"format": FORMAT_VERSION, "world": world.params(), "layout": layout,
              "splits": splits, "length": int(length), "noise_px": float(noise_px),
              "coarse": bool(coarse), "coarse_extra": int(coarse_extra), "flow": bool(flow),
              "sequence": bool(sequence), "city": city, "seed": int(seed)}
    stamp = root / STAMP
    if root.exists():
        if stamp.is_file() and json.loads(stamp.read_text()) == params:
            return root
        if not overwrite:
            raise ValueError(f"{root} exists with other content (stamp {stamp} differs or is missing); "
                             "pass overwrite=True to replace it")
    remove_stale_temp_dirs(root)  # a killed earlier writer's leftovers
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    jobs = [(s, i) for s, n in splits.items() for i in range(int(n))]
    jobs += [("train_extra", i) for i in range(int(coarse_extra))]
    try:
        index = 0
        lists: dict[str, list[str]] = {s: [] for s in splits}
        for split, _ in tqdm(jobs, desc=f"export {world.domain}", disable=not progress, unit="snippet"):
            if layout == "camvid":
                lists[split].append(
                    _camvid_snippet(world, tmp, split, index, city, length, noise_px, seed))
            else:
                _snippet(world, tmp, split, index, city, length, noise_px, coarse, flow, sequence, seed)
            index += 1
        if layout == "camvid":
            _camvid_lists(tmp, lists)
        if world.fine_labels:
            (tmp / "fine_classes.json").write_text(json.dumps(
                {"classes": list(FINE_CLASSES), "to_cityscapes": FINE_TO_CITYSCAPES}, indent=1))
        (tmp / STAMP).write_text(json.dumps(params, indent=1))
        if stamp.is_file() and json.loads(stamp.read_text()) == params:
            return root  # a concurrent export of the same world finished first: keep it
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old)
        else:
            root.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def _snippet(world, tmp: Path, split: str, index: int, city: str, length: int, noise_px: float,
             coarse: bool, flow: bool, sequence: bool, seed: int) -> None:
    extra = split == "train_extra"
    labelled_only = extra or not (sequence or flow)  # only frame 19 is written: render only it
    clip = world.clip(index, length, flow=flow and not extra, only=[LABELLED] if labelled_only else None)
    hood = world.renderer.hood
    seq = f"{index:06d}"
    stem = f"{city}_{seq}_{LABELLED:06d}"
    _write_png(tmp / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", clip.frames[LABELLED])
    ann = annotate(clip, "cityscapes", noise_px=noise_px, seed=seed)
    inst = clip.instances[LABELLED]
    if not extra:
        _gt(tmp / "gtFine" / split / city, stem, "gtFine", ann.labels[0], inst, hood)
        if ann.fine_labels is not None:
            _write_png(tmp / "gtFine" / split / city / f"{stem}_gtFine_fineIds.png", ann.fine_labels[0])
    if coarse or extra:
        rough = annotate(clip, "cityscapes", noise_px=noise_px, coarse=True, seed=seed).labels[0]
        _gt(tmp / "gtCoarse" / split / city, stem, "gtCoarse", rough, inst, hood)
    if extra:
        return
    for f in range(length):
        name = f"{city}_{seq}_{f:06d}"
        if sequence:
            _write_png(tmp / "leftImg8bit_sequence" / split / city / f"{name}_leftImg8bit.png", clip.frames[f])
        if flow:
            folder = tmp / "flow_sequence" / split / city
            folder.mkdir(parents=True, exist_ok=True)
            if f < length - 1:
                np.save(folder / f"{name}_flowFw.npy", clip.flow_fw[f])
                _write_png(folder / f"{name}_validFw.png", clip.valid_fw[f].astype(np.uint8) * 255)
            if f > 0:
                np.save(folder / f"{name}_flowBw.npy", clip.flow_bw[f - 1])
                _write_png(folder / f"{name}_validBw.png", clip.valid_bw[f - 1].astype(np.uint8) * 255)


# --- CamVid's SegNet layout -----------------------------------------------------------------
def _check_camvid_options(world, splits: dict, sequence: bool, flow: bool, coarse: bool,
                          coarse_extra: int) -> None:
    """``ValueError`` naming the first option CamVid's SegNet layout has no place for."""
    bad = [s for s in splits if s not in CAMVID_SPLITS]
    if bad:
        raise ValueError(f"splits {bad} are not CamVid split names; layout='camvid' takes "
                         f"{list(CAMVID_SPLITS)}")
    for name, value in (("sequence", sequence), ("flow", flow), ("coarse", coarse),
                        ("coarse_extra", coarse_extra)):
        if value:
            raise ValueError(f"{name}={value!r} is not supported with layout='camvid' (CamVid's "
                             "release has only the labelled frames); for video use "
                             "world.clip(i) and paperlib.data.labels.to_camvid, or "
                             "layout='cityscapes'")
    if world.fine_labels:
        raise ValueError("a world with fine_labels=True cannot be exported with layout='camvid' "
                         "(the layout holds the 11 CamVid classes only); build the world with "
                         "fine_labels=False")


def _camvid_snippet(world, tmp: Path, split: str, index: int, city: str, length: int,
                    noise_px: float, seed: int) -> str:
    """Write clip ``index``'s labelled frame and its CamVid annotation (the Cityscapes export's
    annotation, same noise, through ``camvid_label_ids``); returns the file name."""
    clip = world.clip(index, length, flow=False, only=[LABELLED])
    name = f"{city}_{index:06d}_{LABELLED:06d}.png"
    _write_png(tmp / split / name, clip.frames[LABELLED])
    ann = annotate(clip, "cityscapes", noise_px=noise_px, seed=seed)
    _write_png(tmp / f"{split}annot" / name, camvid_label_ids(ann.labels[0]))
    return name


def _camvid_lists(tmp: Path, lists: dict[str, list[str]]) -> None:
    """``<split>.txt`` with the release's ``/SegNet/CamVid/`` prefixes; every split gets its
    folders, even an empty one, so the reader finds them."""
    for split, names in lists.items():
        (tmp / split).mkdir(parents=True, exist_ok=True)
        (tmp / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = [f"/SegNet/CamVid/{split}/{n} /SegNet/CamVid/{split}annot/{n}\n" for n in names]
        (tmp / f"{split}.txt").write_text("".join(lines))
