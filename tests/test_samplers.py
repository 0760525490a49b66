"""Centroid index (components / tiles, parallel, cached) and the class-balanced samplers."""
import hashlib
from collections import Counter

import numpy as np
import pytest

from paperlib.data import samplers as S


class ArrayLabels:
    """A tiny in-memory dataset: only what the index and samplers need."""

    num_classes = 5

    def __init__(self, labels):
        self.labels = [np.asarray(l, dtype=np.uint8) for l in labels]

    def __len__(self):
        return len(self.labels)

    def load_label(self, i):
        return self.labels[i]

    def fingerprint(self):
        h = hashlib.sha1()
        for l in self.labels:
            h.update(l.tobytes())
        return h.hexdigest()[:16]


def blob_labels(n=6, h=40, w=60, seed=0):
    """Background 0, a few rectangles of classes 1..3, class 4 in image 0 only (rare)."""
    rng = np.random.default_rng(seed)
    labels = []
    for i in range(n):
        lab = np.zeros((h, w), np.uint8)
        for c in (1, 2, 3):
            for _ in range(c):
                y, x = rng.integers(0, h - 6), rng.integers(0, w - 6)
                lab[y:y + 5, x:x + 5] = c
        if i == 0:
            lab[1:4, 1:4] = 4
        lab[-1, :] = 255
        labels.append(lab)
    return labels


# --- centroids of one label map -------------------------------------------------------------
def test_component_centroids_hand_computed():
    lab = np.zeros((10, 12), np.uint8)
    lab[2:5, 3:6] = 1       # 3x3 square, centroid (3, 4)
    lab[6:8, 0:4] = 1       # 2x4 block, centroid (6.5, 1.5) -> floor (6, 1)
    lab[9, 11] = 1          # 1 pixel: below min_pixels
    lab[0, :] = 255         # ignored
    rows = S.component_centroids(lab, num_classes=3, min_pixels=2)
    got = sorted(map(tuple, rows.tolist()))
    # class 0 is the background around them: one big component
    assert (1, 3, 4) in got and (1, 6, 1) in got
    assert all(r[0] != 255 for r in got)
    assert len([r for r in got if r[0] == 1]) == 2
    assert len([r for r in got if r[0] == 0]) == 1
    # with min_pixels=1 the single pixel counts too: (9, 11)
    assert (S.component_centroids(lab, 3, min_pixels=1)[:, 0] == 1).sum() == 3


def test_tile_centroids_hand_computed():
    lab = np.full((4, 6), 255, np.uint8)
    lab[0:2, 0:2] = 1       # tile (0, 0): class 1 centroid (0.5, 0.5) -> (0, 0)
    lab[0:2, 2:4] = 1       # tile (0, 1) (tile=3 => columns 3..5): pixels at x=2 belong to tile 0
    lab[3, 5] = 2           # partial bottom-right tile
    rows = S.tile_centroids(lab, num_classes=3, tile=3)
    got = sorted(map(tuple, rows.tolist()))
    # tile (0,0) holds class-1 pixels at x = 0, 1, 2 in rows 0, 1 -> mean (0.5, 1.0) -> (0, 1)
    # tile (0,1) holds class-1 pixels at x = 3 in rows 0, 1 -> (0.5, 3) -> (0, 3)
    assert got == [(1, 0, 1), (1, 0, 3), (2, 3, 5)]


def test_tiles_give_one_centroid_per_class_per_tile():
    lab = np.zeros((8, 8), np.uint8)
    lab[1, 1] = lab[1, 6] = lab[6, 1] = 2  # three separate components, all in one 8x8 tile
    assert (S.tile_centroids(lab, 3, tile=8)[:, 0] == 2).sum() == 1
    assert (S.tile_centroids(lab, 3, tile=4)[:, 0] == 2).sum() == 3
    assert (S.component_centroids(lab, 3, min_pixels=1)[:, 0] == 2).sum() == 3


# --- the index over a dataset ---------------------------------------------------------------
def test_index_matches_per_image_and_parallel_equals_serial(tmp_path):
    ds = ArrayLabels(blob_labels(n=10))
    serial = S.build_centroid_index(ds, 5, workers=1, cache=False, progress=False, min_pixels=4)
    parallel = S.build_centroid_index(ds, 5, workers=2, cache=False, progress=False, min_pixels=4)
    for c in range(5):
        assert np.array_equal(serial[c], parallel[c])
        expect = [(i, y, x) for i in range(len(ds))
                  for k, y, x in S.component_centroids(ds.load_label(i), 5, 4).tolist() if k == c]
        assert sorted(map(tuple, serial[c].tolist())) == sorted(expect)
    assert len(serial[4]) == 1 and serial[4][0, 0] == 0  # the rare class: image 0 only


def test_index_is_cached_and_rebuilt_when_labels_change(tmp_path, monkeypatch):
    labels = blob_labels()
    ds = ArrayLabels(labels)
    first = S.build_centroid_index(ds, 5, cache_dir=tmp_path, workers=1, progress=False)
    assert len(list(tmp_path.glob("centroids-components-*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("index rebuilt although labels did not change")

    monkeypatch.setattr(S, "_build_index", boom)
    again = S.build_centroid_index(ds, 5, cache_dir=tmp_path, workers=1, progress=False)
    assert all(np.array_equal(first[c], again[c]) for c in range(5))
    # other parameters -> other cache entry -> rebuild
    with pytest.raises(AssertionError, match="rebuilt"):
        S.build_centroid_index(ds, 5, mode="tiles", tile=16, cache_dir=tmp_path, progress=False)
    # changing one label map changes the fingerprint -> rebuild
    labels[2] = labels[2].copy()
    labels[2][10:20, 10:20] = 4
    ds2 = ArrayLabels(labels)
    with pytest.raises(AssertionError, match="rebuilt"):
        S.build_centroid_index(ds2, 5, cache_dir=tmp_path, workers=1, progress=False)
    monkeypatch.undo()
    rebuilt = S.build_centroid_index(ds2, 5, cache_dir=tmp_path, workers=1, progress=False)
    assert len(rebuilt[4]) == len(first[4]) + 1


def test_index_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        S.build_centroid_index(ArrayLabels(blob_labels(1)), 5, mode="blobs", cache=False)


# --- samplers -------------------------------------------------------------------------------
def skewed_index(num_images=50, counts=(400, 120, 30, 3, 1), seed=0):
    """A synthetic centroid index with a long-tailed number of centroids per class."""
    rng = np.random.default_rng(seed)
    return {c: np.column_stack([rng.integers(0, num_images, n), rng.integers(0, 100, n),
                                rng.integers(0, 100, n)]) for c, n in enumerate(counts)}


def class_of(index):
    """(i, y, x) -> class, for checking which class a planned crop came from."""
    return {tuple(r): c for c, a in index.items() for r in a.tolist()}


def test_centroid_sampler_class_balance():
    index = skewed_index()
    ds = ArrayLabels([np.zeros((2, 2))] * 50)
    n = 1000
    smp = S.CentroidSampler(ds, index, num_samples=n, seed=1)
    plan = smp.plan()
    assert plan.shape == (n, 3) and (plan[:, 1] >= 0).all()  # every sample is a centroid crop
    lookup = class_of(index)
    counts = Counter(lookup[tuple(r)] for r in plan.tolist())
    assert all(abs(counts[c] - n / 5) <= 1 for c in range(5)), counts
    # a class with more than N/C centroids is sampled without replacement
    rows0 = [tuple(r) for r in plan.tolist() if lookup[tuple(r)] == 0]
    assert len(set(rows0)) == len(rows0) == 200
    # the class with 3 centroids: each used 66 or 67 times (even oversampling)
    rows3 = Counter(tuple(r) for r in plan.tolist() if lookup[tuple(r)] == 3)
    assert sorted(rows3.values()) == [66, 67, 67]
    # every yielded key is (i, y, x)
    assert all(isinstance(k, tuple) and len(k) == 3 for k in smp)


def test_centroid_sampler_skips_empty_classes():
    index = skewed_index(counts=(10, 0, 5))
    smp = S.CentroidSampler(ArrayLabels([np.zeros((2, 2))] * 50), index, num_samples=100)
    lookup = class_of(index)
    counts = Counter(lookup[tuple(r)] for r in smp.plan().tolist())
    assert counts == {0: 50, 2: 50}


def test_class_uniform_fraction_and_spread():
    index = skewed_index()
    ds = ArrayLabels([np.zeros((2, 2))] * 50)
    n = 1000
    smp = S.ClassUniformSampler(ds, index, num_samples=n, uniform_pct=0.5, seed=0)
    plan = smp.plan()
    cent = plan[plan[:, 1] >= 0]
    assert len(cent) == 500 and len(plan) == n
    lookup = class_of(index)
    assert Counter(lookup[tuple(r)] for r in cent.tolist()) == {c: 100 for c in range(5)}
    rand = plan[plan[:, 1] < 0]
    assert Counter(rand[:, 0].tolist()) == {i: 10 for i in range(50)}  # each image 10 times
    keys = list(smp)
    assert sum(isinstance(k, int) for k in keys) == 500


def test_class_uniform_boosted_subset_with_extra_pool():
    index = skewed_index(num_images=50)
    extra = {c: np.array([[c, 5, 5], [c + 1, 6, 6]]) for c in range(5)}
    ds = ArrayLabels([np.zeros((2, 2))] * 50)
    smp = S.ClassUniformSampler(ds, index, num_samples=600, uniform_pct=0.5, classes=[3, 4],
                                extra_index=extra, seed=0)
    plan = smp.plan()
    cent = plan[plan[:, 1] >= 0]
    assert len(cent) == 300
    from_extra = cent[cent[:, 0] >= 50]
    assert len(from_extra) > 0
    assert set(map(tuple, (from_extra - [50, 0, 0]).tolist())) <= {(3, 5, 5), (4, 6, 6), (4, 5, 5), (5, 6, 6)}
    base_rows = {tuple(r) for c in (3, 4) for r in index[c].tolist()}
    assert all(tuple(r) in base_rows for r in cent[cent[:, 0] < 50].tolist())
    assert (plan[plan[:, 1] < 0][:, 0] < 50).all()  # random crops only from the main dataset


def test_concat_dataset_routes_keys_and_sources():
    a, b = ArrayLabels(blob_labels(3, seed=1)), ArrayLabels(blob_labels(2, seed=2))
    cat = S.ConcatSegDataset([a, b])
    assert len(cat) == 5 and cat.source.tolist() == [0, 0, 0, 1, 1]
    assert np.array_equal(cat.load_label(4), b.load_label(1))
    assert cat.locate(3) == (1, 0)
    with pytest.raises(IndexError):
        cat.locate(5)
    assert cat.fingerprint() != S.ConcatSegDataset([b, a]).fingerprint()


def test_real_pseudo_ratio():
    index = skewed_index(num_images=40)
    source = np.arange(40) >= 10  # images 0..9 real, 10..39 pseudo
    ds = ArrayLabels([np.zeros((2, 2))] * 40)
    for ratio, n_real in [((1, 1), 300), ((1, 2), 200), ((1, 5), 100)]:
        plan = S.CentroidSampler(ds, index, num_samples=600, real_pseudo_ratio=ratio,
                                 source=source, seed=0).plan()
        assert (plan[:, 0] < 10).sum() == n_real
    with pytest.raises(ValueError, match="source"):
        S.CentroidSampler(ds, index, real_pseudo_ratio=(1, 1))


@pytest.mark.parametrize("cls", ["centroid", "uniform"])
def test_ddp_sharding(cls):
    index = skewed_index()
    ds = ArrayLabels([np.zeros((2, 2))] * 50)

    def make(rank, R=4):
        if cls == "centroid":
            return S.CentroidSampler(ds, index, num_samples=101, seed=5, num_replicas=R, rank=rank)
        return S.ClassUniformSampler(ds, index, num_samples=101, seed=5, num_replicas=R, rank=rank)

    samplers = [make(r) for r in range(4)]
    plans = [s.plan() for s in samplers]
    assert all(np.array_equal(plans[0], p) for p in plans)  # same plan on every rank
    assert len(plans[0]) == 104  # padded to a multiple of 4
    assert np.array_equal(plans[0][101:], plans[0][:3])  # padding repeats the head
    shards = [list(s) for s in samplers]
    assert all(len(sh) == len(s) == 26 for sh, s in zip(shards, samplers))
    # positions are disjoint and their union is the padded plan
    interleaved = [shards[k % 4][k // 4] for k in range(104)]
    norm = [k if isinstance(k, tuple) else (k, -1, -1) for k in interleaved]
    assert np.array_equal(np.array(norm), plans[0])
    # a new epoch draws a different plan, the same on every rank
    for s in samplers:
        s.set_epoch(1)
    assert not np.array_equal(samplers[0].plan(), plans[0])
    assert np.array_equal(samplers[0].plan(), samplers[3].plan())
    # single-process default
    assert make(0, R=1).num_replicas == 1 and len(make(0, R=1)) == 101


def test_resume_mid_epoch():
    index = skewed_index()
    ds = ArrayLabels([np.zeros((2, 2))] * 50)
    a = S.ClassUniformSampler(ds, index, num_samples=60, seed=3, num_replicas=2, rank=1)
    a.set_epoch(4)
    full = list(a)
    it = iter(a)
    head = [next(it) for _ in range(11)]
    state = a.state_dict()
    assert state["epoch"] == 4 and state["position"] == 11
    b = S.ClassUniformSampler(ds, index, num_samples=60, seed=3, num_replicas=2, rank=1)
    b.load_state_dict(state)
    b.set_epoch(4)  # a training loop calls this again on resume: position is kept
    assert head + list(b) == full
    assert list(b) == full  # after finishing, the next pass starts at the beginning
    b.set_epoch(5)
    assert b.position == 0 and list(b) != full
    with pytest.raises(ValueError, match="seed"):
        S.ClassUniformSampler(ds, index, num_samples=60, seed=4).load_state_dict(state)


def test_sampler_bad_arguments():
    index = skewed_index()
    ds = ArrayLabels([np.zeros((2, 2))] * 50)
    with pytest.raises(ValueError, match="uniform_pct"):
        S.ClassUniformSampler(ds, index, uniform_pct=1.5)
    with pytest.raises(ValueError, match="rank"):
        S.CentroidSampler(ds, index, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="not in the centroid index"):
        S.ClassUniformSampler(ds, index, classes=[7])


def test_end_to_end_crops_contain_their_class(tmp_path):
    """index -> sampler keys -> SegDataset -> train transform: each crop shows its class."""
    import cv2
    import torch
    from paperlib.data.base import Sample, SegDataset
    from paperlib.data.transforms import build_train_transform

    labels = blob_labels(n=4, h=64, w=96, seed=3)
    samples = []
    for i, lab in enumerate(labels):
        img, lp = tmp_path / f"im{i}.png", tmp_path / f"lab{i}.png"
        cv2.imwrite(str(img), np.dstack([lab * 40] * 3).astype(np.uint8))
        cv2.imwrite(str(lp), lab)
        samples.append(Sample(image=img, label=lp))
    ds = SegDataset(samples, transform=build_train_transform(24, scale=(0.75, 1.5)))
    ds.num_classes = 5
    index = S.build_centroid_index(ds, 5, cache_dir=tmp_path / "cache", workers=1, progress=False)
    lookup = class_of(index)
    smp = S.CentroidSampler(ds, index, num_samples=40, seed=0)
    torch.manual_seed(0)
    for key in smp:
        item = ds[key]
        assert item["image"].shape == (3, 24, 24)
        assert (item["label"] == lookup[key]).any()
