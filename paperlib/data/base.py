"""The one dataset interface every paper's data goes through.

A dataset is a list of ``Sample`` records (file paths on disk) plus a label mapping.
``load_image`` / ``load_label`` read one frame as numpy arrays with clear errors that name the
file; ``__getitem__`` returns a dict of torchvision ``tv_tensors`` that joint transforms
(``paperlib.data.transforms``) understand.

Keys of an item (after the dataset's own loading, before any transform):

- ``image``: ``tv_tensors.Image`` uint8, (3, H, W), RGB
- ``label``: ``tv_tensors.Mask`` int64, (H, W), train ids ``0..num_classes-1`` and ``ignore_index``
- ``index``: int, ``name``: str (file stem, for writing predictions)
- ``centroid``: optional ``(y, x)`` when the sampler asked for a crop around a class centroid
  (the sampler yields ``(index, y, x)`` tuples; see ``paperlib.data.samplers``)

Samplers and the centroid index only need ``len(ds)``, ``ds.load_label(i)`` and
``ds.fingerprint()``; they never decode images.

**Decode once.** Images and labels are decoded once per process and then held decoded (uint8)
in a least-recently-used store keyed by (file, size, mtime), up to ``$PAPERLIB_DECODE_CACHE_MB``
megabytes (default 2048; ``0`` turns it off). Small datasets (the cpu world: about 0.3 GB) stay
in memory, so a training step stops paying for PNG decoding; a large real dataset simply streams
(the least recently used frames are dropped). Callers get a private copy, so nothing cached is
ever changed; the bytes are the ones a fresh decode gives.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torchvision import tv_tensors

from .labels import IGNORE_INDEX  # noqa: F401  (the one definition)


class DatasetError(ValueError):
    """Bad dataset input: the message always names the file, folder or parameter."""


@dataclass(frozen=True)
class Sample:
    """One labelled (or unlabelled) frame on disk."""

    image: Path
    label: Path | None = None
    name: str = ""
    # Video neighbours: offset (e.g. -1, +1) -> image path of frame t+offset.
    neighbours: dict[int, Path] = field(default_factory=dict)


_DECODED: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_DECODED_BYTES = 0


def decode_cache_limit() -> int:
    """Bytes the decoded-frame store may hold (``$PAPERLIB_DECODE_CACHE_MB``, default 2048)."""
    raw = os.environ.get("PAPERLIB_DECODE_CACHE_MB", "2048")
    try:
        mb = float(raw)
    except ValueError:
        raise DatasetError(f"PAPERLIB_DECODE_CACHE_MB must be a number of megabytes, got {raw!r}") from None
    return max(0, int(mb * 2**20))


def clear_decode_cache() -> None:
    """Drop every decoded frame held in memory."""
    global _DECODED_BYTES
    _DECODED.clear()
    _DECODED_BYTES = 0


def decoded(kind: str, path: Path, decode: Callable[[Path], np.ndarray]) -> np.ndarray:
    """``decode(path)``, decoded once and then served from memory (a private copy each call)."""
    global _DECODED_BYTES
    limit = decode_cache_limit()
    if limit == 0:
        return decode(path)
    try:
        st = os.stat(path)
    except OSError:
        return decode(path)  # the decoder names the missing file
    key = (kind, str(path), st.st_size, st.st_mtime_ns)
    hit = _DECODED.get(key)
    if hit is None:
        hit = decode(path)
        if hit.nbytes <= limit:
            _DECODED[key] = hit
            _DECODED_BYTES += hit.nbytes
            while _DECODED_BYTES > limit:
                _, old = _DECODED.popitem(last=False)
                _DECODED_BYTES -= old.nbytes
        return hit.copy()
    _DECODED.move_to_end(key)
    return hit.copy()


def _path(p) -> Path:
    return p if isinstance(p, Path) else Path(p)  # Path(Path) parses it again: 20 us a read


def read_image(path: Path) -> np.ndarray:
    """Read an RGB uint8 image (H, W, 3); raise ``DatasetError`` naming the file if unreadable.
    Decoded once per process (see the module docstring)."""
    return decoded("rgb", _path(path), _decode_image)


def _decode_image(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image file not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"corrupt or unreadable image: {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label_file(path: Path, color: bool = False) -> np.ndarray:
    """Read a label PNG unchanged: (H, W) ids, or (H, W, 3) RGB when ``color``. Decoded once
    per process (see the module docstring)."""
    return decoded("label-rgb" if color else "label", _path(path),
                   lambda p: _decode_label_file(p, color))


def _decode_label_file(path: Path, color: bool) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    lab = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DatasetError(f"corrupt or unreadable label: {path}")
    if color:
        return cv2.cvtColor(lab, cv2.COLOR_BGR2RGB)
    if lab.ndim == 3:  # a palette / RGB png where ids were expected: take the first channel
        lab = lab[..., 0]
    return lab


def make_lut(mapping: dict[int, int], size: int = 65536, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Lookup table raw id -> train id; ids absent from ``mapping`` map to -1 (= "unknown")."""
    lut = np.full(size, -1, dtype=np.int32)
    for raw, train in mapping.items():
        lut[raw] = train
    return lut


def apply_lut(raw: np.ndarray, lut: np.ndarray, path: Path | str) -> np.ndarray:
    """Map raw label ids through ``lut``; raise naming ``path`` if an id is outside the mapping."""
    out = lut[raw.astype(np.int64)]
    if (out < 0).any():
        bad = np.unique(raw[out < 0])[:10].tolist()
        raise DatasetError(f"label ids {bad} in {path} are outside the dataset's label mapping")
    return out.astype(np.uint8)


class SegDataset(torch.utils.data.Dataset):
    """A list of samples + a label mapping + an optional joint transform.

    Subclasses (one per on-disk format, see ``datasets.py``) only build ``samples`` and
    implement ``decode_label(raw, path)`` when ids need mapping.
    """

    num_classes: int = 19
    class_names: Sequence[str] = ()
    ignore_index: int = IGNORE_INDEX

    def __init__(self, samples: Sequence[Sample], transform: Callable | None = None,
                 root: str | os.PathLike | None = None, split: str = ""):
        if len(samples) == 0:
            raise DatasetError(f"empty split {split!r} under {root}: no image/label pairs found")
        self.samples = list(samples)
        self.transform = transform
        self.root = Path(root) if root is not None else None
        self.split = split

    def __len__(self) -> int:
        return len(self.samples)

    # --- decoding -------------------------------------------------------------------------
    def load_image(self, i: int) -> np.ndarray:
        return read_image(self.samples[i].image)

    def decode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw label array -> train ids (uint8). Default: ids are already train ids."""
        bad = (raw >= self.num_classes) & (raw != self.ignore_index)
        if bad.any():
            raise DatasetError(f"label ids {np.unique(raw[bad])[:10].tolist()} in {path} are "
                               f"outside 0..{self.num_classes - 1} and {self.ignore_index}")
        return raw.astype(np.uint8)

    def load_label(self, i: int) -> np.ndarray:
        s = self.samples[i]
        if s.label is None:
            raise DatasetError(f"no label for {s.image} (unlabelled split {self.split!r})")
        # held decoded *and* mapped to train ids: the mapping (and its check) runs once per file
        return decoded(self._train_id_kind(), _path(s.label),
                       lambda p: self.decode_label(_decode_label_file(p, False), p))

    def _train_id_kind(self) -> str:
        """The store's key for this dataset's decoding: class, classes and mapping table."""
        kind = self.__dict__.get("_kind")
        if kind is None:
            lut = getattr(self, "lut", None)
            table = hashlib.sha1(lut.tobytes()).hexdigest()[:12] if isinstance(lut, np.ndarray) else ""
            kind = self.__dict__["_kind"] = (f"train-ids:{type(self).__module__}.{type(self).__qualname__}:"
                                             f"{self.num_classes}:{self.ignore_index}:{table}")
        return kind

    def load_neighbour(self, i: int, offset: int) -> np.ndarray:
        s = self.samples[i]
        if offset not in s.neighbours:
            raise DatasetError(f"no neighbour at offset {offset:+d} for {s.image}")
        return read_image(s.neighbours[offset])

    # --- items ----------------------------------------------------------------------------
    def __getitem__(self, key):
        i, centroid = (key[0], tuple(key[1:3])) if isinstance(key, (tuple, list)) else (key, None)
        img = self.load_image(i)
        s = self.samples[i]
        # a transform that reads the uint8 arrays (HWC image, ids; ``TrainTransform``) is spared
        # the CHW copy and the int64 label
        hwc = getattr(self.transform, "reads_hwc", False)
        item = {"image": img if hwc else tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
                "index": i, "name": s.name or s.image.stem}
        if s.label is not None:
            lab = self.load_label(i)
            if lab.shape != img.shape[:2]:
                raise DatasetError(f"image/label size mismatch: {s.image} is {img.shape[:2]}, "
                                   f"{s.label} is {lab.shape}")
            item["label"] = lab if hwc else tv_tensors.Mask(torch.from_numpy(lab).long())
        if centroid is not None and centroid[0] >= 0:
            item["centroid"] = centroid
        return self.transform(item) if self.transform is not None else item

    def fingerprint(self) -> str:
        """Content hash of the label files (their bytes, not mtimes): changes iff labels change.

        Reads the encoded PNG bytes without decoding them, so it is cheap next to a decode.
        """
        h = hashlib.sha1(f"{type(self).__name__}|{self.num_classes}".encode())
        for s in self.samples:
            p = s.label or s.image
            h.update(p.name.encode())
            h.update(hashlib.sha1(p.read_bytes()).digest())
        return h.hexdigest()[:16]
