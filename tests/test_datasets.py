"""Real dataset formats on tiny fixtures written in the exact on-disk layouts (tests/fixtures.py),
plus the real CamVid when ``../shared/datasets/camvid`` (or ``$PAPERLIB_CAMVID``) exists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.data.base import DatasetError, read_label_file
from paperlib.data.datasets import (DATASETS, BDD100K, CamVid, Cityscapes, KittiSemantics,
                                    MapillaryVistas, PascalVOC, VISTAS_TO_CITYSCAPES,
                                    build_dataset, cityscapes_sequences, cityscapes_snippet)
from paperlib.data.labels import CITYSCAPES_CLASSES

try:  # tests/ on sys.path (pytest's rootdir-less import) or tests as a package
    import fixtures as fx
except ImportError:  # pragma: no cover
    from tests import fixtures as fx


def decoded(ds) -> dict[str, np.ndarray]:
    return {s.name: ds.load_label(i) for i, s in enumerate(ds.samples)}


def assert_labels(ds, expected: dict[str, np.ndarray]):
    got = decoded(ds)
    assert sorted(got) == sorted(expected)
    for name, lab in expected.items():
        np.testing.assert_array_equal(got[name], lab, err_msg=name)


# --- Cityscapes -----------------------------------------------------------------------------
def test_cityscapes_fine_decodes_label_ids_to_train_ids(tmp_path):
    exp = fx.write_cityscapes(tmp_path, "train", n=2, cities=("aachen", "bochum"))
    ds = Cityscapes(tmp_path, "train")
    assert len(ds) == 4 and ds.num_classes == 19 and tuple(ds.class_names) == CITYSCAPES_CLASSES
    assert [s.name for s in ds.samples][:2] == ["aachen_000000_000019", "aachen_000001_000019"]
    assert_labels(ds, exp)
    assert any((lab == 255).any() for lab in exp.values())  # void labelIds really exercised
    item = ds[0]
    assert tuple(item["image"].shape) == (3, *fx.SIZE) and item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["label"].numpy(), exp["aachen_000000_000019"])
    assert item["name"] == "aachen_000000_000019"


def test_cityscapes_coarse_train_extra(tmp_path):
    exp = fx.write_cityscapes(tmp_path, "train_extra", mode="coarse", cities=("erlangen",))
    ds = Cityscapes(tmp_path, "train_extra", mode="coarse")
    assert ds.samples[0].label.name.endswith("_gtCoarse_labelIds.png")
    assert_labels(ds, exp)
    with pytest.raises(DatasetError, match="train_extra"):
        Cityscapes(tmp_path, "train_extra", mode="fine")  # fine has no train_extra split


def test_cityscapes_test_split_is_unlabelled(tmp_path):
    fx.write_cityscapes(tmp_path, "test", n=1, cities=("berlin",))
    ds = Cityscapes(tmp_path, "test")
    assert ds.samples[0].label is None and "label" not in ds[0]


def test_cityscapes_neighbours_and_missing_neighbour(tmp_path):
    fx.write_cityscapes(tmp_path, "val", n=2, cities=("frankfurt",), sequence=2)
    ds = Cityscapes(tmp_path, "val", neighbours=2)
    s = ds.samples[1]
    assert list(s.neighbours) == [-2, -1, 1, 2]
    assert s.neighbours[-2].name == "frankfurt_000001_000017_leftImg8bit.png"
    assert s.neighbours[2].parent == tmp_path / "leftImg8bit_sequence" / "val" / "frankfurt"
    assert ds.load_neighbour(1, 1).shape == (*fx.SIZE, 3)
    with pytest.raises(DatasetError, match=r"frankfurt_000000_000016_leftImg8bit\.png"):
        Cityscapes(tmp_path, "val", neighbours=3)


def test_cityscapes_snippet_and_sequences(tmp_path):
    fx.write_cityscapes(tmp_path, "train", n=2, sequence=2)
    snip = cityscapes_snippet(tmp_path, "train", "aachen_000001_000019", before=2, after=2)
    assert [p.name[:20] for p in snip] == [f"aachen_000001_{f:06d}" for f in range(17, 22)]
    assert Cityscapes(tmp_path, "train").snippet(0, 1, 1)[0].name.startswith("aachen_000000_000018")
    with pytest.raises(DatasetError, match="000000_leftImg8bit"):
        cityscapes_snippet(tmp_path, "train", "aachen_000001_000019")  # the full 30-frame default
    seqs = cityscapes_sequences(tmp_path, "train")
    assert sorted(seqs) == ["aachen_000000", "aachen_000001"] and len(seqs["aachen_000000"]) == 5


# --- CamVid ---------------------------------------------------------------------------------
def test_camvid_segnet_layout(tmp_path):
    exp = fx.write_camvid(tmp_path, "train", n=3)
    ds = CamVid(tmp_path, "train")
    assert len(ds) == 3 and ds.num_classes == 11 and ds.class_names[6] == "sign/symbol"
    assert_labels(ds, exp)  # id 11 (void) -> 255, 0..10 unchanged
    assert (read_label_file(ds.samples[0].label) == 11).any()


def test_camvid_without_list_file_globs_the_folder(tmp_path):
    exp = fx.write_camvid(tmp_path, "val", n=2, write_list=False)
    assert_labels(CamVid(tmp_path, "val"), exp)


def test_camvid_bad_list_lines(tmp_path):
    fx.write_camvid(tmp_path, "test", n=2)
    (tmp_path / "test.txt").write_text("/SegNet/CamVid/test/0001TP_006690.png\n")
    with pytest.raises(DatasetError, match=r"test\.txt:1"):
        CamVid(tmp_path, "test")
    (tmp_path / "test.txt").write_text(
        "/SegNet/CamVid/test/nope.png /SegNet/CamVid/testannot/nope.png\n")
    with pytest.raises(DatasetError, match=r"nope\.png"):
        CamVid(tmp_path, "test")


CAMVID_README_FREQ = {"sky": .169, "building": .233, "pole": .010, "road": .317, "sidewalk": .045,
                      "tree": .097, "sign/symbol": .012, "fence": .011, "car": .059,
                      "pedestrian": .006, "bicyclist": .003, "void": .040}


@pytest.mark.skipif(not fx.real_camvid().is_dir(),
                    reason=f"real CamVid not found at {fx.real_camvid()} (set PAPERLIB_CAMVID)")
def test_real_camvid_sizes_and_class_frequencies():
    root = fx.real_camvid()
    sizes = {s: len(CamVid(root, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}
    ds = CamVid(root, "train")
    assert ds.load_image(0).shape == (360, 480, 3)
    counts = np.zeros(256, np.int64)
    for i in range(len(ds)):  # labels only: ~1 ms each
        lab = ds.load_label(i)
        assert lab.shape == (360, 480)
        counts += np.bincount(lab.ravel(), minlength=256)
    freq = counts / counts.sum()
    measured = dict(zip(ds.class_names, freq[:11]), void=freq[255])
    for name, ref in CAMVID_README_FREQ.items():
        assert abs(measured[name] - ref) < 0.005, (name, measured[name], ref)


# --- KITTI ----------------------------------------------------------------------------------
def test_kitti_documented_split_and_decoding(tmp_path):
    exp = fx.write_kitti(tmp_path, n_train=10, n_test=2)
    train, val = KittiSemantics(tmp_path, "train"), KittiSemantics(tmp_path, "val")
    assert [s.name for s in val.samples] == ["000004_10", "000009_10"]  # every 5th, 0-based 4, 9
    assert len(train) == 8 and not {s.name for s in train.samples} & {s.name for s in val.samples}
    assert_labels(KittiSemantics(tmp_path, "trainval"), exp)
    test = KittiSemantics(tmp_path, "test")
    assert len(test) == 2 and test.samples[0].label is None
    lst = tmp_path / "mine.txt"
    lst.write_text("000001_10\n000003_10.png\n")
    mine = KittiSemantics(tmp_path, "val", split_file=lst)
    assert [s.name for s in mine.samples] == ["000001_10", "000003_10"]


# --- Mapillary Vistas -----------------------------------------------------------------------
def test_mapillary_vistas_label_set(tmp_path):
    raw = fx.write_mapillary(tmp_path, "training", n=2)
    ds = MapillaryVistas(tmp_path, "train")
    assert len(fx.VISTAS_V12_LABELS) == 66 and ds.num_classes == 65
    assert ds.class_names[0] == "Bird" and ds.class_names[-1] == "Ego Vehicle"
    assert_labels(ds, {k: np.where(r == 65, 255, r).astype(np.uint8) for k, r in raw.items()})
    assert len(MapillaryVistas(tmp_path, "training")) == 2  # the folder name works as a split too


def test_mapillary_cityscapes_label_set(tmp_path):
    raw = fx.write_mapillary(tmp_path, "validation", n=2)
    ds = MapillaryVistas(tmp_path, "val", label_set="cityscapes")
    assert ds.num_classes == 19 and tuple(ds.class_names) == CITYSCAPES_CLASSES
    idx = {n: i for i, (n, *_) in enumerate(fx.VISTAS_V12_LABELS)}
    lut = np.full(256, 255, np.uint8)
    for vistas, cs in VISTAS_TO_CITYSCAPES.items():
        lut[idx[vistas]] = CITYSCAPES_CLASSES.index(cs)
    # hand-checked rows of the documented table
    assert lut[idx["construction--flat--road"]] == 0
    assert lut[idx["construction--barrier--curb"]] == 1
    assert lut[idx["human--rider--bicyclist"]] == 12 and lut[idx["object--vehicle--on-rails"]] == 16
    assert lut[idx["animal--bird"]] == 255 and lut[idx["void--unlabeled"]] == 255
    assert len(set(lut[list(idx.values())]) - {255}) == 19  # every Cityscapes class is reachable
    assert_labels(ds, {k: lut[r] for k, r in raw.items()})


def test_mapillary_test_split_and_missing_config(tmp_path):
    fx.write_mapillary(tmp_path, "testing", n=2)
    assert MapillaryVistas(tmp_path, "test").samples[0].label is None
    (tmp_path / "config.json").unlink()
    with pytest.raises(DatasetError, match="config.json"):
        MapillaryVistas(tmp_path, "test")
    (tmp_path / "config.json").write_text('{"labels": 3}')
    with pytest.raises(DatasetError, match="labels"):
        MapillaryVistas(tmp_path, "test")


# --- BDD100K --------------------------------------------------------------------------------
def test_bdd100k_layout(tmp_path):
    exp = fx.write_bdd100k(tmp_path, "val", n=2)
    fx.write_bdd100k(tmp_path, "test", n=1)
    for root in (tmp_path, tmp_path / "bdd100k"):  # the bdd100k folder or its parent
        assert_labels(BDD100K(root, "val"), exp)
    test = BDD100K(tmp_path, "test")
    assert len(test) == 1 and test.samples[0].label is None


# --- PASCAL VOC -----------------------------------------------------------------------------
def test_voc_palette_indices_not_colours(tmp_path):
    exp = fx.write_voc(tmp_path, {"train": 2, "val": 1}, aug=0)
    ds = PascalVOC(tmp_path / "VOCdevkit", "train")
    assert ds.num_classes == 21 and ds.class_names[15] == "person"
    assert_labels(ds, {k: exp[k] for k in ("2007_000032", "2007_000033")})
    # OpenCV would return palette colours, not indices: the trap read_index_png avoids
    assert not np.array_equal(read_label_file(ds.samples[0].label), exp["2007_000032"])
    assert len(PascalVOC(tmp_path, "trainval")) == 3
    val = PascalVOC(tmp_path / "VOCdevkit" / "VOC2012", "val")
    assert [s.name for s in val.samples] == ["2007_000034"]


def test_voc_train_aug(tmp_path):
    exp = fx.write_voc(tmp_path, {"train": 2, "val": 1}, aug=3)
    ds = PascalVOC(tmp_path, "train_aug")
    assert len(ds) == 5 and ds.samples[0].label.parent.name == "SegmentationClassAug"
    assert_labels(ds, {k: v for k, v in exp.items() if k != "2007_000034"})
    ids = tmp_path / "ids.txt"
    ids.write_text("2008_000001\n")
    listed = PascalVOC(tmp_path, "train_aug", aug_list=ids)
    assert [s.name for s in listed.samples] == ["2008_000001"]


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_root_names_the_folder(tmp_path, name):
    with pytest.raises(DatasetError, match="nowhere"):
        build_dataset(name, tmp_path / "nowhere", "train")


@pytest.mark.parametrize("name,write,split", [
    ("cityscapes", lambda r: fx.write_cityscapes(r, "train"), "val"),
    ("camvid", lambda r: fx.write_camvid(r, "train"), "val"),
    ("kitti", lambda r: fx.write_kitti(r, n_test=0) and (r / "testing").mkdir(), "test"),
    ("mapillary", lambda r: fx.write_mapillary(r, "training"), "val"),
    ("bdd100k", lambda r: fx.write_bdd100k(r, "train"), "val"),
])
def test_missing_split_names_the_folder(tmp_path, name, write, split):
    write(tmp_path)
    with pytest.raises(DatasetError, match="folder not found"):
        build_dataset(name, tmp_path, split)


def test_missing_voc_split_list_and_unknown_split(tmp_path):
    fx.write_voc(tmp_path, aug=0)
    with pytest.raises(DatasetError, match=r"test\.txt"):
        PascalVOC(tmp_path, "test")
    with pytest.raises(DatasetError, match="unknown .*split 'training'"):
        Cityscapes(tmp_path, "training")


def test_empty_split(tmp_path):
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="empty split 'val'"):
        Cityscapes(tmp_path, "val")


def test_missing_label_file_is_named(tmp_path):
    fx.write_cityscapes(tmp_path, "train")
    gone = tmp_path / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"
    gone.unlink()
    with pytest.raises(DatasetError, match=gone.name):
        Cityscapes(tmp_path, "train")


def _first(ds):
    return ds.samples[0]


@pytest.mark.parametrize("make", [
    lambda r: (fx.write_cityscapes(r), Cityscapes(r, "train"))[1],
    lambda r: (fx.write_voc(r, aug=0), PascalVOC(r, "train"))[1],
    lambda r: (fx.write_mapillary(r), MapillaryVistas(r, "train"))[1],
], ids=["cityscapes", "voc", "mapillary"])
def test_corrupt_image_and_label(tmp_path, make):
    ds = make(tmp_path)
    _first(ds).image.write_bytes(b"not an image at all")
    with pytest.raises(DatasetError, match=f"corrupt.*{_first(ds).image.name}"):
        ds[0]
    _first(ds).label.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetError, match=f"corrupt.*{_first(ds).label.name}"):
        ds.load_label(0)


@pytest.mark.parametrize("make", [
    lambda r: (fx.write_cityscapes(r), Cityscapes(r, "train"))[1],
    lambda r: (fx.write_camvid(r), CamVid(r, "train"))[1],
    lambda r: (fx.write_bdd100k(r), BDD100K(r, "train"))[1],
], ids=["cityscapes", "camvid", "bdd100k"])
def test_image_label_size_mismatch(tmp_path, make):
    ds = make(tmp_path)
    fx.write_gray(_first(ds).label, np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match="size mismatch.*" + _first(ds).image.name):
        ds[0]


@pytest.mark.parametrize("make,bad", [
    (lambda r: (fx.write_cityscapes(r), Cityscapes(r, "train"))[1], 40),  # labelIds stop at 33
    (lambda r: (fx.write_kitti(r), KittiSemantics(r, "train"))[1], 34),
    (lambda r: (fx.write_camvid(r), CamVid(r, "train"))[1], 12),          # 0..10 + 11 void
    (lambda r: (fx.write_bdd100k(r), BDD100K(r, "train"))[1], 19),        # 0..18 + 255
], ids=["cityscapes", "kitti", "camvid", "bdd100k"])
def test_label_ids_outside_mapping(tmp_path, make, bad):
    ds = make(tmp_path)
    lab = np.zeros(fx.SIZE, np.uint8)
    lab[3, 4] = bad
    fx.write_gray(_first(ds).label, lab)
    with pytest.raises(DatasetError, match=rf"\[{bad}\].*{_first(ds).label.name}"):
        ds.load_label(0)


def test_indexed_label_ids_outside_mapping(tmp_path):
    fx.write_voc(tmp_path, aug=0)
    fx.write_mapillary(tmp_path / "mv")
    for ds, bad in ((PascalVOC(tmp_path, "train"), 30), (MapillaryVistas(tmp_path / "mv"), 70)):
        lab = np.zeros(fx.SIZE, np.uint8)
        lab[0, 0] = bad
        fx.write_palette(_first(ds).label, lab, fx.voc_palette())
        with pytest.raises(DatasetError, match=rf"\[{bad}\].*{_first(ds).label.name}"):
            ds.load_label(0)


def test_rgb_label_where_indices_expected(tmp_path):
    fx.write_voc(tmp_path, aug=0)
    ds = PascalVOC(tmp_path, "train")
    fx.write_rgb(_first(ds).label, np.zeros((*fx.SIZE, 3), np.uint8))
    with pytest.raises(DatasetError, match="indexed"):
        ds.load_label(0)


# --- registry -------------------------------------------------------------------------------
def test_build_dataset_registry(tmp_path, monkeypatch):
    assert set(DATASETS) == {"cityscapes", "camvid", "kitti", "mapillary", "bdd100k", "voc"}
    fx.write_bdd100k(tmp_path, "train")
    assert isinstance(build_dataset("bdd", tmp_path), BDD100K)
    monkeypatch.setenv("PAPERLIB_BDD100K", str(tmp_path))
    assert len(build_dataset("bdd100k", split="train")) == 2
    monkeypatch.delenv("PAPERLIB_BDD100K")
    with pytest.raises(DatasetError, match="PAPERLIB_BDD100K"):
        build_dataset("bdd100k")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="neighbors"):
        build_dataset("cityscapes", tmp_path, neighbors=1)
    fx.write_cityscapes(tmp_path / "cs", "val", sequence=1)
    ds = build_dataset("cityscapes", tmp_path / "cs", "val", mode="fine", neighbours=1)
    plain = build_dataset("cityscapes", tmp_path / "cs", "val")
    assert ds.num_neighbours == 1 and ds.fingerprint() == plain.fingerprint()
