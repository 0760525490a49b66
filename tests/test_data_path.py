"""The data path: the same batches as the reference path for a seed (decoded-frame store and
CPU-only reseeding included); the store of decoded frames hands out private copies and respects
its size cap."""
import numpy as np
import torch

from paperlib.config import config_from_params
from paperlib.data import base
from paperlib.engine import SeededView, build_datasets


def _items(view, keys):
    return [view[(pos, key)] for pos, key in enumerate(keys)]


def test_cached_decoding_gives_the_same_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    cfg = config_from_params("smoke", progress=False)
    train_set, _ = build_datasets(cfg)
    keys = [3, 1, 3, 0, 2, 1]  # repeats: the second reads come from memory
    monkeypatch.setenv("PAPERLIB_DECODE_CACHE_MB", "0")
    base.clear_decode_cache()
    reference = _items(SeededView(train_set, seed=7), keys)
    monkeypatch.setenv("PAPERLIB_DECODE_CACHE_MB", "64")
    first = _items(SeededView(train_set, seed=7), keys)
    assert len(base._DECODED) > 0
    again = _items(SeededView(train_set, seed=7), keys)  # every frame now served decoded
    for ref, a, b in zip(reference, first, again):
        for k in ("image", "label"):
            assert torch.equal(ref[k], a[k]) and torch.equal(ref[k], b[k])


def test_store_hands_out_copies_and_respects_its_cap(tmp_path, monkeypatch):
    import cv2

    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}.png"
        cv2.imwrite(str(p), np.full((10, 10, 3), i * 40, np.uint8))
        paths.append(p)
    monkeypatch.setenv("PAPERLIB_DECODE_CACHE_MB", str(700 / 2**20))  # room for two 300-byte frames
    base.clear_decode_cache()
    a = base.read_image(paths[0])
    a[:] = 255  # the caller's copy: the store is untouched
    assert base.read_image(paths[0]).max() == 0
    base.read_image(paths[1])
    base.read_image(paths[2])
    assert len(base._DECODED) == 2 and base._DECODED_BYTES <= 700  # least recently used dropped
    base.clear_decode_cache()


#: sha256 of 8 training items of the smoke world under SeededView(seed=7), recorded with the data
#: path before the decode store and the CPU-only reseeding: the same samples must come out.
REFERENCE_ITEMS_SHA256 = "ad745dd05f2492bd0c68b7ad5c0451f2e3c7c431db5fa1862164bb2974e3cf4c"


def test_data_path_yields_the_reference_batches(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    base.clear_decode_cache()
    cfg = config_from_params("smoke", progress=False)
    train_set, _ = build_datasets(cfg)
    view = SeededView(train_set, seed=7)
    h = hashlib.sha256()
    for pos, key in enumerate([3, 1, 3, 0, 2, 1, 5, 7]):
        item = view[(pos, key)]
        h.update(item["image"].numpy().tobytes())
        h.update(item["label"].numpy().tobytes())
    assert h.hexdigest() == REFERENCE_ITEMS_SHA256
