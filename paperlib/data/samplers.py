"""Class-balanced samplers: class-uniform (VPLR Sec. 4.1) and centroid sampling (CSST Sec. 3.2).

Both start from a *centroid index*: a dict ``class -> int array (M, 3)`` of ``(image, y, x)``
points, each the centre of mass of a region of that class. ``build_centroid_index`` computes it
in one of two ways:

- ``mode="components"`` (CSST Sec. 3.2): one centroid per connected component of each class
  ("the arithmetic mean position of all the points within an object"), so an image with five
  cars gives five car centroids.
- ``mode="tiles"`` (VPLR Sec. 4.1, NVIDIA/semantic-segmentation ``datasets/uniform.py``): the
  image is cut into fixed ``tile x tile`` tiles and each class present in a tile gives the centre
  of mass of its pixels there -- fewer centroids per image (CSST's remark on the difference).

A sampler turns the index into an *epoch plan*, an int array (N, 3) of ``(image, y, x)`` with
``y = x = -1`` for an ordinary random crop, and yields ``i`` (random crop) or ``(i, y, x)``
(a crop that contains pixel (y, x)); ``SegDataset.__getitem__`` accepts both, and
``transforms.RandomCrop`` honours the centroid.

Distributed training: every rank draws the same plan from ``(seed, epoch)``, pads it to a
multiple of ``num_replicas`` (repeating its head, as ``DistributedSampler`` does) and takes the
shard ``plan[rank::num_replicas]``. ``state_dict()`` / ``load_state_dict()`` hold the epoch and
the position inside the shard, so a resumed run continues with exactly the samples it would have
seen.
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from paperlib.atomic import atomic_path
from paperlib.data.base import DatasetError
from paperlib.progress import tqdm

CentroidIndex = dict[int, np.ndarray]
_CACHE_VERSION = 1


# ------------------------------------------------------------------------------------------------
# Centroids of one label map
# ------------------------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float64 row and column of every pixel of an (h, w) image (bincount weights)."""
    ys, xs = np.divmod(np.arange(h * w, dtype=np.int64), w)
    return ys.astype(np.float64), xs.astype(np.float64)


@lru_cache(maxsize=2)
def _tile_ids(h: int, w: int, tile: int) -> np.ndarray:
    """Flattened int64 tile number of every pixel (row-major tiles, partial border tiles too)."""
    ntx = -(-w // tile)
    return ((np.arange(h) // tile)[:, None] * ntx + (np.arange(w) // tile)[None, :]).ravel()


def _class_counts(label: np.ndarray) -> np.ndarray:
    return cv2.calcHist([label], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def _centres(keys: np.ndarray, size: int, h: int, w: int, min_pixels: int):
    """Bins ``0..size-1`` of ``keys`` holding >= min_pixels pixels, and their floored mean (y, x).

    ``keys == size`` marks pixels that belong to no bin.
    """
    ys, xs = _coords(h, w)
    n = np.bincount(keys, minlength=size + 1)[:size]
    hit = np.flatnonzero(n >= max(min_pixels, 1))
    sy = np.bincount(keys, weights=ys, minlength=size + 1)[hit]
    sx = np.bincount(keys, weights=xs, minlength=size + 1)[hit]
    return hit, np.floor(sy / n[hit]).astype(np.int64), np.floor(sx / n[hit]).astype(np.int64)


def component_centroids(label: np.ndarray, num_classes: int, min_pixels: int = 16) -> np.ndarray:
    """Centroids of the connected components of every class (CSST Sec. 3.2).

    ``label``: (H, W) uint8 train ids (ids >= ``num_classes``, e.g. 255, are ignored).
    Returns int64 (K, 3) rows ``(class, y, x)``; components smaller than ``min_pixels`` pixels
    are dropped. 8-connectivity; the centroid is the mean pixel position, floored.

    One ``cv2.connectedComponents`` per class present; the class masks are disjoint, so their
    component maps add up into one map of global component ids, whose areas and centres come
    from three ``bincount`` calls (about twice as fast as ``connectedComponentsWithStats``).
    """
    label = np.ascontiguousarray(label, dtype=np.uint8)
    h, w = label.shape
    classes = np.flatnonzero(_class_counts(label)[:num_classes] >= max(min_pixels, 1))
    local = np.zeros((h, w), np.int32)      # component number inside its class, 1-based
    base = np.zeros(256, np.int64)          # class -> global id of its first component
    listed = np.zeros(256, bool)
    owner: list[int] = []                   # global id -> class
    for c in classes:
        n, comp = cv2.connectedComponents((label == c).view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        cv2.add(local, comp, dst=local)
        base[c], listed[c] = len(owner) - 1, True
        owner += [int(c)] * (n - 1)
    size = len(owner)
    flat = label.ravel()
    keys = np.where(listed[flat], local.ravel() + base[flat], size)  # void / unlisted -> size
    hit, cy, cx = _centres(keys, size, h, w, min_pixels)
    return np.column_stack([np.asarray(owner, dtype=np.int64)[hit], cy, cx]).reshape(-1, 3)


def tile_centroids(label: np.ndarray, num_classes: int, tile: int = 1024, min_pixels: int = 1) -> np.ndarray:
    """Per ``tile x tile`` tile, the centre of mass of each class present (VPLR Sec. 4.1).

    Unlike NVIDIA's ``uniform.py`` (which drops the partial tiles at the right/bottom border and
    so finds nothing in images smaller than a tile), partial border tiles count too. Vectorised:
    three ``bincount`` calls over (tile, class) keys. Returns int64 (K, 3) rows ``(class, y, x)``.
    """
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    label = np.ascontiguousarray(label, dtype=np.uint8)
    h, w = label.shape
    size = -(-h // tile) * -(-w // tile) * num_classes
    lab = label.ravel().astype(np.int64)
    keys = _tile_ids(h, w, tile) * num_classes + lab
    keys[lab >= num_classes] = size
    hit, cy, cx = _centres(keys, size, h, w, min_pixels)
    return np.column_stack([hit % num_classes, cy, cx]).astype(np.int64).reshape(-1, 3)


# ------------------------------------------------------------------------------------------------
# The index over a dataset: parallel, cached
# ------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(dataset, params: dict, single_thread: bool) -> None:
    if single_thread:
        cv2.setNumThreads(1)
    _WORKER.update(dataset=dataset, params=params)


def _image_centroids(i: int) -> tuple[int, np.ndarray]:
    """Centroids ``(class, y, x)`` of image ``i`` of the worker's dataset."""
    ds, p = _WORKER["dataset"], _WORKER["params"]
    label = ds.load_label(i)
    if p["mode"] == "components":
        return i, component_centroids(label, p["num_classes"], p["min_pixels"])
    return i, tile_centroids(label, p["num_classes"], p["tile"], p["min_pixels"])


def _mp_context():
    """``forkserver`` where available, else ``spawn``; never plain ``fork``.

    Plain ``fork`` copies whatever locks the parent's threads hold (OpenCV's and OpenMP's thread
    pools, tqdm's monitor); we saw a pool of forked workers hang under pytest. The fork server
    is a clean process that imports this module once (a few seconds, once per Python process);
    later workers fork from it in milliseconds. The dataset is pickled once per worker.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _build_index(dataset, params: dict, workers: int, progress: bool) -> CentroidIndex:
    """Compute the index over ``workers`` processes (in this process for ``workers <= 1`` or tiny datasets)."""
    n = len(dataset)
    bar = dict(total=n, desc=f"centroid index ({params['mode']})", disable=not progress)
    if workers <= 1 or n < 4 * workers:  # tiny datasets: process start-up would dominate
        _init_worker(dataset, params, single_thread=False)
        results = list(tqdm(map(_image_centroids, range(n)), **bar))
    else:
        with ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker,
                                 initargs=(dataset, params, True)) as ex:
            chunk = max(1, min(16, n // (4 * workers)))
            results = list(tqdm(ex.map(_image_centroids, range(n), chunksize=chunk), **bar))
    _WORKER.clear()
    rows = [np.column_stack([np.full(len(r), i, dtype=np.int64), r]) for i, r in results if len(r)]
    allrows = np.concatenate(rows) if rows else np.zeros((0, 4), dtype=np.int64)  # (i, c, y, x)
    return {c: allrows[allrows[:, 1] == c][:, [0, 2, 3]].copy() for c in range(params["num_classes"])}


def default_cache_dir() -> Path:
    """``$PAPERLIB_CACHE/centroids``, or ``~/.cache/paperlib/centroids``."""
    root = os.environ.get("PAPERLIB_CACHE") or Path.home() / ".cache" / "paperlib"
    return Path(root) / "centroids"


def _save_index(index: CentroidIndex, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{f"c{c}": a for c, a in index.items()})


def _load_index(path: Path, num_classes: int) -> CentroidIndex | None:
    try:
        with np.load(path) as z:
            index = {c: z[f"c{c}"] for c in range(num_classes)}
    except (OSError, KeyError, ValueError):
        return None  # missing or corrupt cache: rebuild
    return index


def build_centroid_index(dataset, num_classes: int, mode: str = "components", tile: int = 1024,
                         min_pixels: int | None = None, workers: int = 2,
                         cache_dir: str | os.PathLike | None = None, cache: bool = True,
                         progress: bool = True) -> CentroidIndex:
    """Class -> int64 (M, 3) array of ``(image index, y, x)`` centroids over ``dataset``.

    ``mode="components"``: connected components (CSST Sec. 3.2), ``min_pixels`` defaults to 16.
    ``mode="tiles"``: per-tile centres of mass (VPLR Sec. 4.1), ``min_pixels`` defaults to 1.
    The dataset only needs ``len``, ``load_label(i)`` (uint8 train ids) and ``fingerprint()``.
    Images are processed by ``workers`` processes with a progress bar. The result is cached in
    ``cache_dir`` (default ``default_cache_dir()``) under a key made of ``dataset.fingerprint()``
    (a hash of the label files) and the parameters, so it is rebuilt only when labels change.
    """
    if mode not in ("components", "tiles"):
        raise ValueError(f"mode must be 'components' or 'tiles', got {mode!r}")
    if not 0 < num_classes <= 255:
        raise ValueError(f"num_classes must be in 1..255, got {num_classes}")
    if min_pixels is None:
        min_pixels = 16 if mode == "components" else 1
    params = dict(mode=mode, num_classes=int(num_classes), min_pixels=int(min_pixels),
                  tile=int(tile) if mode == "tiles" else 0)
    path = None
    if cache:
        key = f"{dataset.fingerprint()}|{sorted(params.items())}|v{_CACHE_VERSION}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        path = Path(cache_dir or default_cache_dir()) / f"centroids-{mode}-{digest}.npz"
        index = _load_index(path, num_classes) if path.is_file() else None
        if index is not None:
            return index
    index = _build_index(dataset, params, workers, progress)
    if path is not None:
        _save_index(index, path)
    return index


def index_counts(index: CentroidIndex) -> np.ndarray:
    """Number of centroids per class (array of length ``len(index)``)."""
    return np.array([len(index[c]) for c in sorted(index)])


# ------------------------------------------------------------------------------------------------
# A dataset made of parts (fine + coarse, real + pseudo)
# ------------------------------------------------------------------------------------------------
class ConcatSegDataset(torch.utils.data.Dataset):
    """Concatenation of ``SegDataset``s that also accepts ``(i, y, x)`` keys.

    ``torch.utils.data.ConcatDataset`` cannot route the samplers' tuple keys; this one can, and
    it exposes what the samplers need: ``offsets`` (start index of each part), ``source``
    (part number of each index: with ``[real, pseudo]``, 0 = real and 1 = pseudo), ``load_label``
    and ``fingerprint``. Items get ``index`` (global) and ``source`` keys.
    """

    def __init__(self, datasets: Sequence):
        if not datasets:
            raise DatasetError("ConcatSegDataset needs at least one dataset")
        self.datasets = list(datasets)
        lens = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        self.source = np.repeat(np.arange(len(lens)), lens)
        first = self.datasets[0]
        self.num_classes = getattr(first, "num_classes", None)
        self.ignore_index = getattr(first, "ignore_index", 255)
        self.class_names = getattr(first, "class_names", ())

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """Global index -> (part, index inside the part)."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for ConcatSegDataset of length {len(self)}")
        d = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return d, int(i - self.offsets[d])

    def __getitem__(self, key):
        i = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        d, j = self.locate(i)
        item = self.datasets[d][(j, *key[1:]) if isinstance(key, (tuple, list)) else j]
        if isinstance(item, dict):
            item["index"], item["source"] = i, d
        return item

    def load_label(self, i: int) -> np.ndarray:
        d, j = self.locate(i)
        return self.datasets[d].load_label(j)

    def fingerprint(self) -> str:
        h = hashlib.sha1(b"ConcatSegDataset")
        for d in self.datasets:
            h.update(d.fingerprint().encode())
        return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# Samplers
# ------------------------------------------------------------------------------------------------
def _dist_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if ready else 1
    if rank is None:
        rank = dist.get_rank() if ready else 0
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
    return int(num_replicas), int(rank)


def cycle_draw(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """``n`` indices into ``range(m)``: shuffled passes over all of them, the last one partial.

    With ``n <= m`` this is sampling without replacement; with ``n > m`` every item is used
    ``n // m`` or ``n // m + 1`` times (oversampling with the least repetition, as NVIDIA's
    ``uniform.random_sampling`` does by wrapping around a shuffled list).
    """
    if m <= 0:
        raise ValueError("cannot draw from an empty pool")
    passes = -(-n // m)
    return np.concatenate([rng.permutation(m) for _ in range(passes)] or [np.zeros(0, np.int64)])[:n]


def random_rows(rng: np.random.Generator, num_images: int, n: int, offset: int = 0) -> np.ndarray:
    """``n`` plan rows ``(i, -1, -1)`` for ordinary random crops over ``num_images`` images."""
    idx = cycle_draw(rng, num_images, n) + offset
    return np.column_stack([idx, np.full((n, 2), -1)]).astype(np.int64)


def balanced_rows(rng: np.random.Generator, pools: dict[int, np.ndarray], n: int) -> np.ndarray:
    """``n`` centroid rows, about ``n / C`` from each non-empty pool (CSST Sec. 3.2).

    The ``n mod C`` left-over samples go to randomly chosen classes, one each.
    """
    active = [c for c, p in sorted(pools.items()) if len(p)]
    if n and not active:
        raise ValueError("no class has any centroid: cannot build a class-balanced epoch")
    if not n:
        return np.zeros((0, 3), dtype=np.int64)
    per = np.full(len(active), n // len(active))
    per[rng.choice(len(active), n % len(active), replace=False)] += 1
    return np.concatenate([pools[c][cycle_draw(rng, len(pools[c]), k)] for c, k in zip(active, per)])


class _PlanSampler(torch.utils.data.Sampler):
    """Shared machinery: epoch plan from (seed, epoch), DDP shard, resumable position."""

    def __init__(self, num_samples: int, seed: int, num_replicas: int | None, rank: int | None):
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.num_replicas, self.rank = _dist_defaults(num_replicas, rank)
        self.epoch = 0
        self.position = 0  # samples of this rank's shard already yielded in this epoch

    # subclasses build the unpadded, unshuffled plan of ``num_samples`` rows
    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def plan(self, epoch: int | None = None) -> np.ndarray:
        """The full epoch plan (N padded to a multiple of num_replicas, 3): identical on all ranks."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch])
        rows = self._draw(rng)
        rows = rows[rng.permutation(len(rows))]
        pad = (-len(rows)) % self.num_replicas
        return np.concatenate([rows, rows[:pad]]) if pad else rows

    def shard(self, epoch: int | None = None) -> np.ndarray:
        """This rank's rows: ``plan[rank::num_replicas]``."""
        return self.plan(epoch)[self.rank::self.num_replicas]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas)

    def __iter__(self) -> Iterator[int | tuple[int, int, int]]:
        rows = self.shard()
        for k in range(self.position, len(rows)):
            self.position = k + 1
            i, y, x = (int(v) for v in rows[k])
            yield i if y < 0 else (i, y, x)
        self.position = 0  # epoch done: a new iteration starts from the beginning

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's plan (call before each epoch, as with ``DistributedSampler``).

        Re-setting the current epoch keeps the position, so a resumed loop that calls
        ``set_epoch`` on its first epoch continues where it stopped.
        """
        if int(epoch) != self.epoch:
            self.epoch, self.position = int(epoch), 0

    def state_dict(self, consumed: int | None = None) -> dict:
        """Epoch and position for exact resume.

        ``consumed``: samples this rank has actually trained on, when a ``DataLoader`` prefetches
        ahead of the loop (e.g. ``steps * batch_size``); defaults to the samples yielded so far.
        """
        pos = self.position if consumed is None else int(consumed)
        return {"epoch": self.epoch, "position": pos, "seed": self.seed,
                "num_samples": self.num_samples, "num_replicas": self.num_replicas}

    def load_state_dict(self, state: dict) -> None:
        for k in ("seed", "num_samples", "num_replicas"):
            if k in state and state[k] != getattr(self, k):
                raise ValueError(f"sampler state has {k}={state[k]}, this sampler has {getattr(self, k)}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def _check_index(index: CentroidIndex, name: str) -> CentroidIndex:
    out = {}
    for c, a in index.items():
        a = np.asarray(a, dtype=np.int64).reshape(-1, 3)
        out[int(c)] = a
    if not out:
        raise ValueError(f"{name} is empty: build it with build_centroid_index")
    return out


class ClassUniformSampler(_PlanSampler):
    """Class-uniform sampling (VPLR Sec. 4.1; NVIDIA ``uniform.build_epoch``).

    An epoch of ``num_samples`` (default ``len(dataset)``) is ``uniform_pct`` crops around class
    centroids, ``int(N * uniform_pct / C)`` from each of the C classes of ``classes`` (default:
    all) that has centroids, and the rest ordinary random crops of the dataset's images.

    Coarse boost: ``extra_index`` is a centroid index over an *extra* dataset (e.g. Cityscapes'
    coarse set); its centroids join the pools of ``extra_classes`` (default: ``classes``, e.g.
    the under-represented fence, rider, train). Extra image ``j`` is yielded as
    ``extra_offset + j`` (default ``len(dataset)``), i.e. the loader's dataset is
    ``ConcatSegDataset([dataset, extra])``; random crops only come from ``dataset``.
    """

    def __init__(self, dataset, index: CentroidIndex, num_samples: int | None = None,
                 uniform_pct: float = 0.5, classes: Sequence[int] | None = None,
                 extra_index: CentroidIndex | None = None, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None,
                 extra_classes: Sequence[int] | None = None, extra_offset: int | None = None):
        if not 0 <= uniform_pct <= 1:
            raise ValueError(f"uniform_pct must be in [0, 1], got {uniform_pct}")
        self.num_images = len(dataset)
        super().__init__(num_samples or self.num_images, seed, num_replicas, rank)
        index = _check_index(index, "index")
        self.uniform_pct = float(uniform_pct)
        self.classes = sorted(index) if classes is None else [int(c) for c in classes]
        unknown = set(self.classes) - set(index)
        if unknown:
            raise ValueError(f"classes {sorted(unknown)} are not in the centroid index")
        self.pools = {c: index[c] for c in self.classes}
        if extra_index is not None:
            extra_index = _check_index(extra_index, "extra_index")
            off = self.num_images if extra_offset is None else int(extra_offset)
            for c in (self.classes if extra_classes is None else [int(c) for c in extra_classes]):
                if c not in self.pools:
                    raise ValueError(f"extra class {c} is not among the sampled classes {self.classes}")
                extra = extra_index.get(c, np.zeros((0, 3), np.int64)) + np.array([off, 0, 0])
                self.pools[c] = np.concatenate([self.pools[c], extra])

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        active = [c for c in self.classes if len(self.pools[c])]
        per = int(self.num_samples * self.uniform_pct / len(active)) if active else 0
        rows = [random_rows(rng, self.num_images, self.num_samples - per * len(active))]
        rows += [self.pools[c][cycle_draw(rng, len(self.pools[c]), per)] for c in active]
        return np.concatenate(rows)


class CentroidSampler(_PlanSampler):
    """Centroid sampling (CSST Sec. 3.2): every sample is a crop around a class centroid.

    An epoch of N samples (default ``len(dataset)``) takes about N/C centroids from each class
    that has any: classes with fewer are oversampled (each centroid repeated as evenly as
    possible), classes with more are sampled without replacement.

    Self-training control: with ``real_pseudo_ratio=(a, b)`` the plan holds real and pseudo-label
    samples in the ratio a:b (``round(N * a / (a + b))`` real), each part class-balanced on its
    own. ``source`` says which image is pseudo-labelled: an array of length ``len(dataset)``,
    0/False = real, 1/True = pseudo; default ``dataset.source`` (``ConcatSegDataset([real,
    pseudo])`` provides it).
    """

    def __init__(self, dataset, index: CentroidIndex, num_samples: int | None = None, seed: int = 0,
                 real_pseudo_ratio: tuple[float, float] | None = None,
                 source: Sequence[int] | np.ndarray | None = None,
                 num_replicas: int | None = None, rank: int | None = None):
        super().__init__(num_samples or len(dataset), seed, num_replicas, rank)
        index = _check_index(index, "index")
        self.parts: list[tuple[dict[int, np.ndarray], int]]
        if real_pseudo_ratio is None:
            self.parts = [(index, self.num_samples)]
            return
        a, b = (float(r) for r in real_pseudo_ratio)
        if a < 0 or b < 0 or a + b <= 0:
            raise ValueError(f"real_pseudo_ratio must be two non-negative numbers, got {real_pseudo_ratio}")
        src = getattr(dataset, "source", None) if source is None else source
        if src is None:
            raise ValueError("real_pseudo_ratio needs `source` (0 = real, 1 = pseudo per image) "
                             "or a dataset with a .source array (ConcatSegDataset)")
        src = np.asarray(src).astype(bool)
        if len(src) != len(dataset):
            raise ValueError(f"source has {len(src)} entries, the dataset {len(dataset)} images")
        n_real = round(self.num_samples * a / (a + b))
        self.parts = [({c: p[~src[p[:, 0]]] for c, p in index.items()}, n_real),
                      ({c: p[src[p[:, 0]]] for c, p in index.items()}, self.num_samples - n_real)]

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([balanced_rows(rng, pools, n) for pools, n in self.parts])


class MixSampler(_PlanSampler):
    """Random crops with an exact number of samples from each part of a dataset per epoch
    (self-training Sec. 4.3 / CSST Sec. 4.3.1: "1.5K real and 4.5K pseudo labels per epoch").

    ``source``: part number of every image (``ConcatSegDataset.source``: 0 = real, 1 = pseudo);
    ``counts[p]``: samples taken from part ``p`` in every epoch. Each part is walked through in
    shuffled passes that continue across epochs (epoch ``e`` takes positions
    ``e * counts[p] ... (e + 1) * counts[p] - 1`` of the stream; pass ``k`` is a permutation seeded
    by ``(seed, p, k)``), so a pseudo pool larger than ``counts[p]`` is used image by image
    before any image repeats. The epoch plan is shuffled, so real and pseudo samples interleave.
    The centroid-sampling counterpart is ``CentroidSampler(real_pseudo_ratio=counts,
    num_samples=sum(counts))``.
    """

    def __init__(self, source: Sequence[int] | np.ndarray, counts: Sequence[int], seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        counts = [int(c) for c in counts]
        if any(c < 0 for c in counts) or sum(counts) <= 0:
            raise ValueError(f"counts must be non-negative with a positive sum, got {counts}")
        self.source = np.asarray(source, dtype=np.int64)
        self.members = [np.flatnonzero(self.source == p) for p in range(len(counts))]
        for p, (m, c) in enumerate(zip(self.members, counts)):
            if c and not len(m):
                raise ValueError(f"counts[{p}] = {c} but the dataset has no image of part {p}")
        self.counts = counts
        super().__init__(sum(counts), seed, num_replicas, rank)

    def _stream(self, part: int, start: int, n: int) -> np.ndarray:
        """Positions ``start .. start + n - 1`` of part ``part``'s stream of shuffled passes."""
        m = len(self.members[part])
        passes = range(start // m, (start + n - 1) // m + 1)
        perm = np.concatenate([np.random.default_rng([self.seed, part, k]).permutation(m) for k in passes])
        off = start - passes[0] * m
        return self.members[part][perm[off:off + n]]

    def plan(self, epoch: int | None = None) -> np.ndarray:
        self._plan_epoch = self.epoch if epoch is None else int(epoch)
        return super().plan(epoch)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        e = self._plan_epoch
        idx = np.concatenate([self._stream(p, e * c, c) for p, c in enumerate(self.counts) if c])
        return np.column_stack([idx, np.full((len(idx), 2), -1)]).astype(np.int64)
