"""The world styled as CamVid: the Cityscapes -> CamVid-11 grouping, the ``camvid`` domain, its
export in SegNet's CamVid layout and the ``get_dataset`` path, and that the other domains (their
knobs, params and Cityscapes export) are untouched."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from paperlib.config import ConfigError, config_from_params
from paperlib.data import dataset_num_classes, export_world, get_dataset, world_layout, world_splits
from paperlib.data.labels import (CAMVID_CLASSES, CITYSCAPES_CLASSES, CITYSCAPES_TO_CAMVID,
                                  IGNORE_INDEX, to_camvid)
from paperlib.data.synthetic import CAMVID_SIZE, CAMVID_STYLED, DOMAINS, SyntheticWorld, annotate
from paperlib.data.synthetic.domains import FINE_BY_DEFAULT, get_domain
from paperlib.data.synthetic.export import LABELLED, STAMP, camvid_label_ids, export

SIZE = (48, 64)
CLIPS = 2  # world_splits(2): 2 train + 2 val snippets


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "data"))


def _labelled(world: SyntheticWorld, index: int):
    """Frame and Cityscapes train ids of clip ``index``'s labelled frame (only that one rendered)."""
    clip = world.clip(index, 30, flow=False, only=[LABELLED])
    return clip, clip.frames[LABELLED], clip.labels[LABELLED]


def _cv(name: str) -> int:
    return CAMVID_CLASSES.index(name)


def _cs(name: str) -> int:
    return CITYSCAPES_CLASSES.index(name)


# --- the mapping ----------------------------------------------------------------------------
def test_mapping_covers_every_train_id_and_every_camvid_class():
    assert sorted(CITYSCAPES_TO_CAMVID) == list(range(19))
    values = set(CITYSCAPES_TO_CAMVID.values())
    assert values <= set(range(11)) | {IGNORE_INDEX}
    assert values - {IGNORE_INDEX} == set(range(11))  # every CamVid class has a source


@pytest.mark.parametrize("cs, cv", [
    ("road", "road"), ("sidewalk", "sidewalk"), ("building", "building"), ("wall", "building"),
    ("fence", "fence"), ("pole", "pole"), ("traffic light", "sign/symbol"),
    ("traffic sign", "sign/symbol"), ("vegetation", "tree"), ("terrain", "tree"), ("sky", "sky"),
    ("person", "pedestrian"), ("rider", "bicyclist"), ("car", "car"), ("truck", "car"),
    ("bus", "car"), ("train", None), ("motorcycle", "bicyclist"), ("bicycle", "bicyclist")])
def test_mapping_follows_segnet_grouping(cs, cv):
    want = IGNORE_INDEX if cv is None else _cv(cv)
    assert CITYSCAPES_TO_CAMVID[_cs(cs)] == want
    assert to_camvid(np.array([_cs(cs)], np.uint8))[0] == want


def test_to_camvid_keeps_void_and_kind():
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = to_camvid(every)
    assert out.dtype == np.uint8 and out.shape == every.shape
    assert (out.ravel()[19:] == IGNORE_INDEX).all()  # 255 and every other non-train id -> void
    t = to_camvid(torch.from_numpy(every).long())
    assert t.dtype == torch.int64 and torch.equal(t, torch.from_numpy(out).long())
    assert to_camvid(np.array([[12, 255]], np.int64)).tolist() == [[_cv("bicyclist"), 255]]


def test_to_camvid_rejects_bad_input():
    with pytest.raises(ValueError, match="0..255"):
        to_camvid(np.array([3, 256]))
    with pytest.raises(ValueError, match="0..255"):
        to_camvid(torch.tensor([-1, 3]))
    with pytest.raises(ValueError, match="integer"):
        to_camvid(np.array([1.0, 2.0]))


def test_camvid_label_ids_store_void_as_11():
    ids = camvid_label_ids(np.array([[0, 16, 255, 11]], np.uint8))
    assert ids.tolist() == [[_cv("road"), 11, 11, _cv("pedestrian")]]


# --- the domain ---------------------------------------------------------------------------
def test_camvid_domain_registered_and_styled():
    dom = get_domain("camvid")
    assert dom.name == "camvid" and CAMVID_STYLED == {"camvid"} and CAMVID_STYLED <= set(DOMAINS)
    assert len({d.code for d in DOMAINS.values()}) == len(DOMAINS)
    assert "camvid" not in FINE_BY_DEFAULT and CAMVID_SIZE == (360, 480)
    assert world_layout("camvid") == "camvid" and world_layout("city_a") == "cityscapes"
    assert dataset_num_classes("world", world_domain="camvid") == 11
    assert dataset_num_classes("world", world_domain="city_a") == dataset_num_classes("world") == 19


#: sha256[:16] of json.dumps(asdict(domain), sort_keys=True) before the camvid domain was added.
OLD_DOMAINS = {"city_a": "91a5ba01fa9ad044", "city_b": "66d7c9c109ab2292",
               "city_c": "d6aeb92b687f10d2", "city_fine": "3648a413e09d78a8"}


@pytest.mark.parametrize("name", sorted(OLD_DOMAINS))
def test_existing_domains_unchanged(name):
    text = json.dumps(dataclasses.asdict(get_domain(name)), sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == OLD_DOMAINS[name]


def test_existing_world_params_and_export_unchanged():
    world = SyntheticWorld("city_a", size=SIZE)
    assert world.params() == {"domain": "city_a", "size": list(SIZE), "fps": 17.0, "seed": 0,
                              "fine_labels": False}
    root = export_world("city_a", SIZE, 1, progress=False)
    assert root.name == "city_a_48x64_s0_n1"
    stamp = json.loads((root / STAMP).read_text())
    assert stamp == {"format": 1, "world": world.params(), "layout": "cityscapes",
                     "splits": {"train": 1, "val": 2}, "length": 30, "noise_px": 0.0,
                     "coarse": False, "coarse_extra": 0, "flow": False, "sequence": False,
                     "city": "citya", "seed": 0}
    assert (root / "gtFine" / "val" / "citya" / "citya_000002_000019_gtFine_labelTrainIds.png").is_file()
    assert not (root / "train").exists()


# --- export and reading -------------------------------------------------------------------
def _cfg(num_classes: int = 11):
    return config_from_params("smoke", dataset="world", world_domain="camvid", world_image_size=SIZE,
                              world_clips=CLIPS, num_classes=num_classes, progress=False)


def test_export_round_trip_through_get_dataset():
    world = SyntheticWorld("camvid", size=SIZE)
    index = 0
    for split, n in world_splits(CLIPS).items():
        ds = get_dataset(_cfg(), split)
        assert type(ds).__name__ == "CamVid" and ds.num_classes == 11 and len(ds) == n
        for i in range(n):
            _, frame, train = _labelled(world, index)
            assert np.array_equal(ds.load_image(i), frame)
            assert np.array_equal(ds.load_label(i), to_camvid(train))
            index += 1
    root = ds.root
    assert root.name == "camvid_48x64_s0_n2"
    first = (root / "train.txt").read_text().splitlines()[0]
    name = f"camvid_000000_{LABELLED:06d}.png"
    assert first == f"/SegNet/CamVid/train/{name} /SegNet/CamVid/trainannot/{name}"
    assert not (root / "leftImg8bit").exists() and not (root / "gtFine").exists()


def test_export_is_idempotent_and_guards_other_content(tmp_path):
    world = SyntheticWorld("camvid", size=SIZE)
    root = export(world, tmp_path / "cv", layout="camvid", splits={"train": 1, "test": 1},
                  progress=False)
    label = root / "testannot" / f"camvid_000001_{LABELLED:06d}.png"
    before = label.stat().st_mtime_ns
    assert export(world, root, layout="camvid", splits={"train": 1, "test": 1}, progress=False) == root
    assert label.stat().st_mtime_ns == before
    assert (root / "val.txt").exists() is False and (root / "test.txt").read_text().count("\n") == 1
    assert json.loads((root / STAMP).read_text())["layout"] == "camvid"
    with pytest.raises(ValueError, match="other content"):
        export(world, root, layout="camvid", splits={"train": 2}, progress=False)
    assert not list(tmp_path.glob(".cv.*"))  # no temporary folders left


def test_noisy_export_maps_the_noisy_annotation():
    root = export_world("camvid", SIZE, CLIPS, noise_px=2.0, progress=False)
    assert root.name == "camvid_48x64_s0_n2_noise2"
    clip, _, _ = _labelled(SyntheticWorld("camvid", size=SIZE), 1)
    noisy = annotate(clip, "cityscapes", noise_px=2.0).labels[0]
    from paperlib.data.datasets import CamVid
    ds = CamVid(root, "train")
    assert np.array_equal(ds.load_label(1), to_camvid(noisy))
    assert not np.array_equal(noisy, clip.labels[LABELLED])  # the noise did something


def test_unsupported_camvid_options_raise(tmp_path):
    world = SyntheticWorld("camvid", size=SIZE)
    for option in ({"sequence": True}, {"flow": True}, {"coarse": True}, {"coarse_extra": 1}):
        with pytest.raises(ValueError, match=f"{next(iter(option))}=.*layout='camvid'"):
            export(world, tmp_path / "x", layout="camvid", progress=False, **option)
    with pytest.raises(ValueError, match="not CamVid split names"):
        export(world, tmp_path / "x", layout="camvid", splits={"training": 1}, progress=False)
    with pytest.raises(ValueError, match="fine_labels"):
        export(SyntheticWorld("camvid", size=SIZE, fine_labels=True), tmp_path / "x",
               layout="camvid", progress=False)
    with pytest.raises(ValueError, match="sequence"):
        export_world("camvid", SIZE, CLIPS, sequence=True, progress=False)
    with pytest.raises(ValueError, match="unknown layout"):
        export(world, tmp_path / "x", layout="kitti", progress=False)
    assert not (tmp_path / "x").exists()


def test_num_classes_mismatch_says_what_to_pass():
    with pytest.raises(ConfigError, match="num_classes=11"):
        get_dataset(_cfg(num_classes=19), "val")


def test_video_clip_in_camvid_classes():
    clip = SyntheticWorld("camvid", size=SIZE).clip(0, 3, flow=False)
    labels = to_camvid(clip.labels)
    assert labels.shape == (3, *SIZE) and set(np.unique(labels)) <= set(range(11)) | {IGNORE_INDEX}
    assert (labels[clip.labels == _cs("person")] == _cv("pedestrian")).all()
