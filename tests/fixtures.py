"""Tiny datasets written in the exact on-disk formats of the real ones (names, id encodings).

Each ``write_<format>(root, split, ...)`` writes a few small frames under ``root`` and returns
``{sample name: expected train ids (H, W) uint8}``, i.e. what the loader must decode. Other
tests may reuse them (``from fixtures import write_cityscapes``).
"""
from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from paperlib.data.labels import CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_TRAINID_TO_ID

SIZE = (16, 32)  # (H, W)


def real_camvid() -> Path:
    """Real CamVid for the tests that need it: ``$PAPERLIB_CAMVID``, else ``../shared/datasets/camvid``
    beside the checkout (those tests skip when it is absent)."""
    env = os.environ.get("PAPERLIB_CAMVID")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"

#: Cityscapes labelIds whose train id is 255 (unlabeled, ego vehicle, static, parking, guard rail)
CITYSCAPES_VOID_IDS = (0, 1, 4, 9, 14)


# --- writing helpers ------------------------------------------------------------------------
def _rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def image(rng: np.random.Generator, size=SIZE) -> np.ndarray:
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def ids(rng: np.random.Generator, values, size=SIZE) -> np.ndarray:
    return rng.choice(np.asarray(values, dtype=np.uint8), size=size)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def write_gray(path: Path, lab: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(lab.astype(np.uint8), mode="L").save(path)
    return path


def write_palette(path: Path, lab: np.ndarray, palette: np.ndarray) -> Path:
    """An indexed ("P") PNG whose palette index per pixel is ``lab`` (VOC / Mapillary labels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(lab.astype(np.uint8), mode="P")
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = palette
    im.putpalette(pal.reshape(-1).tolist())
    im.save(path)
    return path


# --- Cityscapes -----------------------------------------------------------------------------
def cityscapes_name(city: str, seq: int, frame: int) -> str:
    return f"{city}_{seq:06d}_{frame:06d}"


def write_cityscapes(root, split="train", n=2, size=SIZE, mode="fine", cities=("aachen",),
                     sequence=0, frame=19, seed=0) -> dict[str, np.ndarray]:
    """``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` + gtFine/gtCoarse
    ``*_labelIds.png`` (+ ``*_color.png``) and, with ``sequence=k``, the frames t-k..t+k in
    ``leftImg8bit_sequence``. Sequence ``i`` of each city has its labelled frame at ``frame``.
    """
    root, gt = Path(root), "gtFine" if mode == "fine" else "gtCoarse"
    to_id = np.full(256, 0, np.uint8)
    for t, i in CITYSCAPES_TRAINID_TO_ID.items():
        to_id[t] = i
    out = {}
    for city in cities:
        for seq in range(n):
            rng = _rng(seed, city, seq, split, mode)
            name = cityscapes_name(city, seq, frame)
            train = ids(rng, list(range(19)) + [255], size)
            label_ids = to_id[train]
            void = train == 255
            label_ids[void] = rng.choice(CITYSCAPES_VOID_IDS, size=int(void.sum()))
            assert all(CITYSCAPES_ID_TO_TRAINID[v] == 255 for v in np.unique(label_ids[void]))
            write_rgb(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
                      image(rng, size))
            write_gray(root / gt / split / city / f"{name}_{gt}_labelIds.png", label_ids)
            write_rgb(root / gt / split / city / f"{name}_{gt}_color.png", image(rng, size))
            for f in range(frame - sequence, frame + sequence + 1) if sequence else ():
                write_rgb(root / "leftImg8bit_sequence" / split / city /
                          f"{cityscapes_name(city, seq, f)}_leftImg8bit.png", image(rng, size))
            out[name] = train
    return out


# --- CamVid ---------------------------------------------------------------------------------
def write_camvid(root, split="train", n=3, size=SIZE, seed=0,
                 write_list=True) -> dict[str, np.ndarray]:
    """SegNet tutorial: ``<split>/<seq>_<frame>.png``, ``<split>annot/`` ids 0..10 + 11 (void),
    ``<split>.txt`` listing ``/SegNet/CamVid/<split>/x.png /SegNet/CamVid/<split>annot/x.png``."""
    root, out, lines = Path(root), {}, []
    for k in range(n):
        rng = _rng(seed, split, k)
        name = f"0001TP_{6690 + 30 * k:06d}"
        raw = ids(rng, range(12), size)
        write_rgb(root / split / f"{name}.png", image(rng, size))
        write_gray(root / f"{split}annot" / f"{name}.png", raw)
        lines.append(f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png")
        out[name] = np.where(raw == 11, 255, raw).astype(np.uint8)
    if write_list:
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return out


# --- KITTI semantics ------------------------------------------------------------------------
def write_kitti(root, n_train=5, n_test=2, size=SIZE, seed=0) -> dict[str, np.ndarray]:
    """``training/image_2/000000_10.png``, ``training/semantic/`` (Cityscapes labelIds, 8-bit),
    ``training/semantic_rgb/``, ``testing/image_2/``. Returns train ids of the training images."""
    root, out = Path(root), {}
    to_id = np.zeros(256, np.uint8)
    for t, i in CITYSCAPES_TRAINID_TO_ID.items():
        to_id[t] = i
    for k in range(n_train):
        rng = _rng(seed, "kitti", k)
        name = f"{k:06d}_10"
        train = ids(rng, list(range(19)) + [255], size)
        write_rgb(root / "training" / "image_2" / f"{name}.png", image(rng, size))
        write_gray(root / "training" / "semantic" / f"{name}.png", to_id[train])  # 255 -> id 0
        write_rgb(root / "training" / "semantic_rgb" / f"{name}.png", image(rng, size))
        out[name] = train
    for k in range(n_test):
        write_rgb(root / "testing" / "image_2" / f"{k:06d}_10.png",
                  image(_rng(seed, "kt", k), size))
    return out


# --- Mapillary Vistas v1.2 ------------------------------------------------------------------
#: The 66 labels of Vistas v1.2's config.json: (name, readable, colour, has instances).
VISTAS_V12_LABELS = [
    ("animal--bird", "Bird", (165, 42, 42), True),
    ("animal--ground-animal", "Ground Animal", (0, 192, 0), True),
    ("construction--barrier--curb", "Curb", (196, 196, 196), False),
    ("construction--barrier--fence", "Fence", (190, 153, 153), False),
    ("construction--barrier--guard-rail", "Guard Rail", (180, 165, 180), False),
    ("construction--barrier--other-barrier", "Barrier", (90, 120, 150), False),
    ("construction--barrier--wall", "Wall", (102, 102, 156), False),
    ("construction--flat--bike-lane", "Bike Lane", (128, 64, 255), False),
    ("construction--flat--crosswalk-plain", "Crosswalk - Plain", (140, 140, 200), True),
    ("construction--flat--curb-cut", "Curb Cut", (170, 170, 170), False),
    ("construction--flat--parking", "Parking", (250, 170, 160), False),
    ("construction--flat--pedestrian-area", "Pedestrian Area", (96, 96, 96), False),
    ("construction--flat--rail-track", "Rail Track", (230, 150, 140), False),
    ("construction--flat--road", "Road", (128, 64, 128), False),
    ("construction--flat--service-lane", "Service Lane", (110, 110, 110), False),
    ("construction--flat--sidewalk", "Sidewalk", (244, 35, 232), False),
    ("construction--structure--bridge", "Bridge", (150, 100, 100), False),
    ("construction--structure--building", "Building", (70, 70, 70), False),
    ("construction--structure--tunnel", "Tunnel", (150, 120, 90), False),
    ("human--person", "Person", (220, 20, 60), True),
    ("human--rider--bicyclist", "Bicyclist", (255, 0, 0), True),
    ("human--rider--motorcyclist", "Motorcyclist", (255, 0, 100), True),
    ("human--rider--other-rider", "Other Rider", (255, 0, 200), True),
    ("marking--crosswalk-zebra", "Lane Marking - Crosswalk", (200, 128, 128), True),
    ("marking--general", "Lane Marking - General", (255, 255, 255), False),
    ("nature--mountain", "Mountain", (64, 170, 64), False),
    ("nature--sand", "Sand", (230, 160, 50), False),
    ("nature--sky", "Sky", (70, 130, 180), False),
    ("nature--snow", "Snow", (190, 255, 255), False),
    ("nature--terrain", "Terrain", (152, 251, 152), False),
    ("nature--vegetation", "Vegetation", (107, 142, 35), False),
    ("nature--water", "Water", (0, 170, 30), False),
    ("object--banner", "Banner", (255, 255, 128), True),
    ("object--bench", "Bench", (250, 0, 30), True),
    ("object--bike-rack", "Bike Rack", (100, 140, 180), True),
    ("object--billboard", "Billboard", (220, 220, 220), True),
    ("object--catch-basin", "Catch Basin", (220, 128, 128), True),
    ("object--cctv-camera", "CCTV Camera", (222, 40, 40), True),
    ("object--fire-hydrant", "Fire Hydrant", (100, 170, 30), True),
    ("object--junction-box", "Junction Box", (40, 40, 40), True),
    ("object--mailbox", "Mailbox", (33, 33, 33), True),
    ("object--manhole", "Manhole", (100, 128, 160), True),
    ("object--phone-booth", "Phone Booth", (142, 0, 0), True),
    ("object--pothole", "Pothole", (70, 100, 150), False),
    ("object--street-light", "Street Light", (210, 170, 100), True),
    ("object--support--pole", "Pole", (153, 153, 153), True),
    ("object--support--traffic-sign-frame", "Traffic Sign Frame", (128, 128, 128), True),
    ("object--support--utility-pole", "Utility Pole", (0, 0, 80), True),
    ("object--traffic-light", "Traffic Light", (250, 170, 30), True),
    ("object--traffic-sign--back", "Traffic Sign (Back)", (192, 192, 192), True),
    ("object--traffic-sign--front", "Traffic Sign (Front)", (220, 220, 0), True),
    ("object--trash-can", "Trash Can", (140, 140, 20), True),
    ("object--vehicle--bicycle", "Bicycle", (119, 11, 32), True),
    ("object--vehicle--boat", "Boat", (150, 0, 255), True),
    ("object--vehicle--bus", "Bus", (0, 60, 100), True),
    ("object--vehicle--car", "Car", (0, 0, 142), True),
    ("object--vehicle--caravan", "Caravan", (0, 0, 90), True),
    ("object--vehicle--motorcycle", "Motorcycle", (0, 0, 230), True),
    ("object--vehicle--on-rails", "On Rails", (0, 80, 100), False),
    ("object--vehicle--other-vehicle", "Other Vehicle", (128, 64, 64), True),
    ("object--vehicle--trailer", "Trailer", (0, 0, 110), True),
    ("object--vehicle--truck", "Truck", (0, 0, 70), True),
    ("object--vehicle--wheeled-slow", "Wheeled Slow", (0, 0, 192), True),
    ("void--car-mount", "Car Mount", (32, 32, 32), False),
    ("void--ego-vehicle", "Ego Vehicle", (120, 10, 10), False),
    ("void--unlabeled", "Unlabeled", (0, 0, 0), False),
]
VISTAS_PALETTE = np.array([c for _, _, c, _ in VISTAS_V12_LABELS], np.uint8)


def write_mapillary_config(root) -> Path:
    labels = [{"color": list(c), "instances": inst, "readable": r, "name": n,
               "evaluate": n != "void--unlabeled"} for n, r, c, inst in VISTAS_V12_LABELS]
    path = Path(root) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"labels": labels, "version": "1.2", "mapping": "public",
                                "folder_structure": "{split}/{content}/{key:.{22}}.{ext}"},
                               indent=1))
    return path


def write_mapillary(root, split="training", n=2, size=SIZE, seed=0) -> dict[str, np.ndarray]:
    """``config.json`` + ``<training|validation|testing>/images/<key>.jpg`` and (not testing)
    ``labels/<key>.png``: palette PNG whose indices are positions in config's "labels".
    Returns the *raw* Vistas indices (0..65; 65 = unlabeled) per key."""
    root, out = Path(root), {}
    write_mapillary_config(root)
    for k in range(n):
        rng = _rng(seed, "vistas", split, k)
        key = f"{split[:2]}{k:02d}".ljust(22, "x")  # real keys are 22 url-safe characters
        write_rgb(root / split / "images" / f"{key}.jpg", image(rng, size))
        if split != "testing":
            raw = ids(rng, range(len(VISTAS_V12_LABELS)), size)
            write_palette(root / split / "labels" / f"{key}.png", raw, VISTAS_PALETTE)
            out[key] = raw
    return out


# --- BDD100K --------------------------------------------------------------------------------
def write_bdd100k(root, split="train", n=2, size=SIZE, seed=0) -> dict[str, np.ndarray]:
    """``bdd100k/images/10k/<split>/<id>.jpg``; ``bdd100k/labels/sem_seg/masks/<split>/<id>.png``
    (8-bit train ids 0..18, 255) and ``colormaps/``; test has images only."""
    root, out = Path(root) / "bdd100k", {}
    for k in range(n):
        rng = _rng(seed, "bdd", split, k)
        name = f"{rng.integers(16**8):08x}-{rng.integers(16**8):08x}"
        write_rgb(root / "images" / "10k" / split / f"{name}.jpg", image(rng, size))
        if split != "test":
            train = ids(rng, list(range(19)) + [255], size)
            write_gray(root / "labels" / "sem_seg" / "masks" / split / f"{name}.png", train)
            write_rgb(root / "labels" / "sem_seg" / "colormaps" / split / f"{name}.png",
                      image(rng, size))
            out[name] = train
    return out


# --- PASCAL VOC 2012 ------------------------------------------------------------------------
def voc_palette() -> np.ndarray:
    """The VOC colour map (bit-interleaved), 256 x 3; index 255 is (224, 224, 192)."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def write_voc(root, splits=None, aug=3, size=SIZE, seed=0) -> dict[str, np.ndarray]:
    """``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``, palette ``SegmentationClass/<id>.png`` (class
    indices 0..20, 255 boundary), ``ImageSets/Segmentation/{train,val,trainval}.txt``; plus
    ``aug`` SBD images with grey ``SegmentationClassAug/<id>.png`` listed in
    ``ImageSets/SegmentationAug/train_aug.txt`` (DeepLab's
    ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png`` lines). Returns id -> class ids
    (the aug label of a VOC train image equals its VOC label)."""
    splits = splits or {"train": 2, "val": 1}
    voc, out, lists, pal = Path(root) / "VOCdevkit" / "VOC2012", {}, {}, voc_palette()
    k = 0
    for split, n in splits.items():
        for _ in range(n):
            rng = _rng(seed, "voc", k)
            name = f"2007_{32 + k:06d}"
            lab = ids(rng, list(range(21)) + [255], size)
            write_rgb(voc / "JPEGImages" / f"{name}.jpg", image(rng, size))
            write_palette(voc / "SegmentationClass" / f"{name}.png", lab, pal)
            lists.setdefault(split, []).append(name)
            out[name] = lab
            k += 1
    lists["trainval"] = [i for s in ("train", "val") for i in lists.get(s, [])]
    for split, names in lists.items():
        (voc / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    aug_names = []
    for j in range(aug):
        rng = _rng(seed, "sbd", j)
        name = f"2008_{j:06d}"
        lab = ids(rng, list(range(21)) + [255], size)
        write_rgb(voc / "JPEGImages" / f"{name}.jpg", image(rng, size))
        aug_names.append(name)
        out[name] = lab
    for name in lists.get("train", []) + aug_names:
        write_gray(voc / "SegmentationClassAug" / f"{name}.png", out[name])
    (voc / "ImageSets" / "SegmentationAug").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "SegmentationAug" / "train_aug.txt").write_text("".join(
        f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png\n"
        for i in lists.get("train", []) + aug_names))
    return out
