"""Self-training pipeline: pseudo-label storage, resume, the real:pseudo mix, end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from fixtures import write_cityscapes
from paperlib import engine
from paperlib.config import ConfigError, config_from_params
from paperlib.data.datasets import build_dataset
from paperlib.data.samplers import CentroidSampler, MixSampler
from paperlib.data.transforms import build_eval_transform, build_train_transform
from paperlib.selftrain import (PseudoLabelDataset, PseudoLabelError, generate_pseudo_labels, load_soft,
                                mix_counts, mix_real_pseudo, pseudo_label_quality, self_train,
                                unlabelled)
from paperlib.selftrain.pseudo import dequantize_prob, quantize_prob

C = 5


def teacher(seed=0, classes=C) -> nn.Module:
    """A per-pixel teacher (1x1 conv): its prediction at a pixel depends on that pixel only."""
    torch.manual_seed(seed)
    return nn.Conv2d(3, classes, 1).eval()


@pytest.fixture()
def pool(tmp_path):
    write_cityscapes(tmp_path / "pool", "train", n=3, size=(16, 32), seed=1)
    return build_dataset("cityscapes", tmp_path / "pool", "train", build_eval_transform())


def probs(model, ds, i) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(ds[i]["image"][None]), 1)[0]


# --- storage ------------------------------------------------------------------------------------
def test_soft_labels_round_trip(pool, tmp_path):
    m = teacher()
    out = generate_pseudo_labels(m, unlabelled(pool), tmp_path / "pl", mode="soft", top_k=3, progress=False)
    for i in range(len(pool)):
        p = probs(m, pool, i)
        top_p, top_i = p.topk(3, dim=0)
        index, prob = load_soft(out, i)
        assert index.dtype == np.uint8 and index.shape == (3, 16, 32)
        np.testing.assert_array_equal(index, top_i.numpy())                     # indices exact
        assert np.abs(prob - top_p.numpy()).max() <= 0.5 / 255 + 1e-6          # within half a step
    man = json.loads((out / "manifest.json").read_text())
    assert man["mode"] == "soft" and man["top_k"] == 3 and man["num_classes"] == C


def test_quantisation_hand_computed():
    q = quantize_prob(np.array([0.0, 0.5, 1.0, 0.2]))
    np.testing.assert_array_equal(q, [0, 128, 255, 51])                         # round(255 p)
    np.testing.assert_allclose(dequantize_prob(q), [0, 128 / 255, 1, 51 / 255])


def test_hard_labels_honour_threshold(pool, tmp_path):
    m = teacher()
    out = generate_pseudo_labels(m, unlabelled(pool), tmp_path / "pl", threshold=0.4, progress=False)
    ds = PseudoLabelDataset(out, pool)
    ignored = 0
    for i in range(len(pool)):
        top, arg = probs(m, pool, i).max(0)
        expect = np.where(top.numpy() < 0.4, 255, arg.numpy())
        np.testing.assert_array_equal(ds.load_label(i), expect)
        ignored += int((expect == 255).sum())
    assert 0 < ignored < 3 * 16 * 32  # the threshold bites, but not everywhere


def test_resume_skips_written_files_and_guards_the_teacher(pool, tmp_path):
    m, images, out = teacher(), unlabelled(pool), tmp_path / "pl"
    generate_pseudo_labels(m, images, out, progress=False)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    stamp = {p: p.stat().st_mtime_ns for p in pngs}
    pngs[1].unlink()
    generate_pseudo_labels(m, images, out, progress=False)                      # resume
    assert pngs[1].is_file()
    assert all(p.stat().st_mtime_ns == stamp[p] for p in (pngs[0], pngs[2]))   # not rewritten
    other = teacher(seed=1)
    with pytest.raises(PseudoLabelError, match="teacher"):
        generate_pseudo_labels(other, images, out, progress=False)
    before = PseudoLabelDataset(out, pool).load_label(0)
    generate_pseudo_labels(other, images, out, resume=False, progress=False)    # regenerate
    after = PseudoLabelDataset(out, pool).load_label(0)
    expect = probs(other, pool, 0).argmax(0).numpy()
    np.testing.assert_array_equal(after, expect)
    assert not np.array_equal(before, after)


def test_generation_bad_arguments(pool, tmp_path):
    for kw, match in [({"mode": "fuzzy"}, "mode"), ({"threshold": 1.5}, "threshold"),
                      ({"mode": "soft", "top_k": C + 1}, "top_k")]:
        with pytest.raises(ValueError, match=match):
            generate_pseudo_labels(teacher(), unlabelled(pool), tmp_path / "x", progress=False, **kw)
    with pytest.raises(PseudoLabelError, match="no pseudo labels"):
        PseudoLabelDataset(tmp_path / "nothing", pool)


def test_dataset_aligns_transformed_image_label_and_soft(pool, tmp_path):
    m = teacher()
    out = generate_pseudo_labels(m, unlabelled(pool), tmp_path / "pl", mode="soft", top_k=2, progress=False)
    # crop + flip only (no resize, no photometric change): pixels must match exactly; the crop is
    # taller than the image, so the bottom rows are padding
    tf = build_train_transform((24, 16), scale=None, flip=True, blur=0, jitter=0)
    ds = PseudoLabelDataset(out, pool, transform=tf)
    torch.manual_seed(0)
    for k in range(6):
        item = ds[k % len(ds)]
        assert item["image"].shape == (3, 24, 16) and item["label"].shape == (24, 16)
        assert item["soft_index"].shape == item["soft_prob"].shape == (2, 24, 16)
        with torch.no_grad():
            p = torch.softmax(m(item["image"][None]), 1)[0]
        valid = item["label"] != 255
        assert valid[:16].all() and not valid[16:].any()                       # padding = ignore
        np.testing.assert_array_equal(item["label"][valid], p.argmax(0)[valid])  # aligned
        np.testing.assert_array_equal(item["soft_index"][0], item["label"])
        top_p = p.topk(2, dim=0).values
        assert (item["soft_prob"][:, valid] - top_p[:, valid]).abs().max() <= 0.5 / 255 + 1e-5
        assert (item["soft_prob"][:, ~valid] == 0).all()


# --- the mix ------------------------------------------------------------------------------------
def test_mix_counts_hand_computed():
    assert mix_counts(10, (1, 1)) == (10, 10)                 # CSST: one pass of real + as many pseudo
    assert mix_counts(10, (1, 4)) == (10, 40)
    assert mix_counts(8, (1, 1), epoch_size=8) == (4, 4)      # ST Table 1: 1.5K + 1.5K = 3K
    assert mix_counts(8, (1, 3), epoch_size=16) == (4, 12)    # ST Table 2a: 1.5K + 4.5K
    assert mix_counts(8, (3, 1), epoch_size=8) == (6, 2)
    assert mix_counts(3, (3000, 40000), epoch_size=43000) == (3000, 40000)   # absolute counts
    for bad in [(0, 0), (-1, 2), (1,)]:
        with pytest.raises(ValueError, match="ratio"):
            mix_counts(4, bad)
    with pytest.raises(ValueError, match="epoch_size"):
        mix_counts(4, (0, 1))


class Labels(torch.utils.data.Dataset):
    """A label-only dataset (what samplers need): image i is all class ``classes[i]``."""

    def __init__(self, classes, tag):
        self.classes, self.tag = list(classes), tag

    def __len__(self):
        return len(self.classes)

    def load_label(self, i):
        lab = np.full((8, 8), self.classes[i], np.uint8)
        lab[:2] = 255
        return lab

    def fingerprint(self):
        return f"{self.tag}-{self.classes}"

    def __getitem__(self, i):
        return {"image": torch.zeros(3, 8, 8), "label": torch.as_tensor(self.load_label(i)).long()}


def epoch_sources(sampler, mixed, epoch):
    sampler.set_epoch(epoch)
    keys = list(iter(sampler))
    idx = np.array([k[0] if isinstance(k, tuple) else k for k in keys])
    return mixed.source[idx], idx


@pytest.mark.parametrize("ratio, epoch_size, expect", [((1, 1), None, (6, 6)), ((1, 3), 12, (3, 9)),
                                                        ((3, 1), 8, (6, 2)), ((6, 20), 26, (6, 20))])
def test_random_mix_has_exact_counts_every_epoch(ratio, epoch_size, expect):
    real, pseudo = Labels([0, 1, 2, 0, 1, 2], "r"), Labels(list(range(4)) * 3, "p")
    mixed = mix_real_pseudo(real, pseudo, ratio, epoch_size)
    cfg = config_from_params("smoke", sampler="random", progress=False)
    sampler = engine.build_sampler(cfg, mixed, rank=0, world=1)
    assert isinstance(sampler, MixSampler) and len(sampler) == sum(expect)
    seen_pseudo = set()
    for epoch in range(3):
        src, idx = epoch_sources(sampler, mixed, epoch)
        assert (src == 0).sum() == expect[0] and (src == 1).sum() == expect[1]
        if expect[0] <= len(real):                      # no real image twice within an epoch
            assert len(set(idx[src == 0])) == expect[0]
        seen_pseudo |= set(idx[src == 1])
    assert len(seen_pseudo) == min(len(pseudo), 3 * expect[1])  # the pool is walked through


def test_centroid_mix_has_exact_counts_and_balances_each_part(tmp_path):
    real = Labels([0, 0, 0, 0, 0, 1], "r")             # class 1 is rare among the real labels
    pseudo = Labels([2] * 10 + [3, 4], "p")
    mixed = mix_real_pseudo(real, pseudo, (1, 3), epoch_size=16)
    cfg = config_from_params("smoke", sampler="centroid", progress=False,
                             sampler_options={"cache_dir": str(tmp_path), "min_pixels": 1, "workers": 1})
    sampler = engine.build_sampler(cfg, mixed, rank=0, world=1)
    assert isinstance(sampler, CentroidSampler) and len(sampler) == 16
    src, idx = epoch_sources(sampler, mixed, 0)
    assert (src == 0).sum() == 4 and (src == 1).sum() == 12
    real_classes = [real.classes[i] for i in idx[src == 0]]
    pseudo_classes = [pseudo.classes[i - 6] for i in idx[src == 1]]
    assert real_classes.count(1) == 2                                  # 4 real samples, 2 classes
    assert all(pseudo_classes.count(c) == 4 for c in (2, 3, 4))        # 12 pseudo, 3 classes
    with pytest.raises(ConfigError, match="sampler"):
        engine.build_sampler(cfg.replace(sampler="class_uniform"), mixed, 0, 1)


def test_duplicated_real_control():
    real = Labels([0, 1, 2, 3], "r")
    mixed = mix_real_pseudo(real, None, (1, 2), duplicate_real=True)
    assert mixed.mix_counts == (4, 8) and mixed.datasets[1] is real and mixed.duplicate_real
    src, idx = epoch_sources(mixed.sampler(seed=3), mixed, 0)
    assert (src == 1).sum() == 8
    assert all(np.array_equal(mixed[int(i)]["label"].numpy(), mixed.load_label(int(i))) for i in idx)
    assert {mixed.locate(int(i))[1] for i in idx[src == 1]} == {0, 1, 2, 3}  # real images only
    with pytest.raises(ValueError, match="pseudo is None"):
        mix_real_pseudo(real, None, (1, 1))


def test_real_items_get_one_hot_soft_labels_next_to_soft_pseudo(pool, tmp_path):
    out = generate_pseudo_labels(teacher(), unlabelled(pool), tmp_path / "pl", mode="soft", top_k=2,
                                 progress=False)
    mixed = mix_real_pseudo(pool, PseudoLabelDataset(out, pool, build_eval_transform()), (1, 1))
    real_item, pseudo_item = mixed[0], mixed[len(pool)]
    assert real_item["source"] == 0 and pseudo_item["source"] == 1
    lab = real_item["label"]
    np.testing.assert_array_equal(real_item["soft_index"][0], lab)
    assert (real_item["soft_prob"][0] == (lab != 255).float()).all() and (real_item["soft_prob"][1] == 0).all()
    batch = engine.collate([real_item, pseudo_item])
    assert batch["soft_index"].shape == (2, 2, 16, 32)                 # the key survives collation


# --- end to end ---------------------------------------------------------------------------------
def test_self_train_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cs"
    write_cityscapes(root, "train", n=4, size=(32, 64), seed=0)
    write_cityscapes(root, "val", n=2, size=(32, 64), seed=0)
    write_cityscapes(tmp_path / "extra", "train", n=3, size=(32, 64), seed=5, cities=("bonn",))
    extra = build_dataset("cityscapes", tmp_path / "extra", "train")
    cfg = config_from_params("smoke", dataset="cityscapes", data_root=str(root), crop_size=32, steps=3,
                             batch_size=2, model_width=4, progress=False,
                             sampler_options={"min_pixels": 1, "workers": 1})  # noise labels: tiny blobs
    out = self_train(cfg, cfg.replace(model="fastscnn", model_width=8), {"extra": unlabelled(extra)},
                     ratio=(1, 1), centroid=True, out_dir=tmp_path / "pl")
    assert out["mix_counts"] == (4, 4)
    assert out["student_result"]["step"] == 3 and out["student_result"]["config"].sampler == "centroid"
    assert type(out["student"]).__name__ != type(out["teacher"]).__name__   # any zoo student
    assert 0 <= out["student_metrics"]["miou"] <= 1 and "miou" in out["teacher_metrics"]
    assert len(list((tmp_path / "pl" / "extra").glob("*.png"))) == 3
    q = pseudo_label_quality(out["pseudo_dirs"]["extra"], build_dataset("cityscapes", tmp_path / "extra", "train"))
    assert 0 <= q["miou"] <= 1 and q["coverage"] == pytest.approx(1.0)
    # a given teacher is reused, and its pseudo labels too (resume)
    again = self_train(cfg, cfg, [unlabelled(extra)], ratio=(1, 2), centroid=False, teacher=out["teacher"],
                       out_dir=tmp_path / "pl2")
    assert again["teacher"] is out["teacher"] and again["mix_counts"] == (4, 8)
    assert again["student_result"]["config"].sampler == "random"


def test_label_agreement_hand_computed():
    from paperlib.selftrain import label_agreement
    gt = np.array([[0, 0], [1, 255]])
    label = np.array([[0, 255], [1, 1]])           # one class-0 pixel left unlabelled
    q = label_agreement([(label, gt)], 2)
    assert q["miou"] == pytest.approx(1.0) and q["pixel_accuracy"] == pytest.approx(1.0)
    assert q["coverage"] == pytest.approx(2 / 3)
    assert q["miou_all"] == pytest.approx((1 / 2 + 1) / 2)   # class 0: 1 hit, 1 miss
