"""Few-shot transfer helpers (self-training Fig. 3 / CSST Fig. 8): the new-class head swap keeps
the backbone, the k-shot / fraction subsets, the fine (new-class) label set."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from paperlib import models
from paperlib.losses import main_logits
from paperlib.selftrain.fewshot import (few_shot_indices, fine_label_dataset, fraction_indices,
                                        labelled_subset, replace_head)


def test_replace_head_keeps_every_other_weight():
    torch.manual_seed(0)
    m = models.build("tiny_fcn", num_classes=19, width=4)
    m(torch.randn(2, 3, 16, 16))                      # move the BatchNorm statistics off init
    before = {k: v.clone() for k, v in m.state_dict().items()}
    out = replace_head(m, 32)
    assert out is m
    after = m.state_dict()
    assert after["classifier.weight"].shape == (32, 8, 1, 1) and after["classifier.bias"].shape == (32,)
    kept = [k for k in before if not k.startswith("classifier.")]
    assert kept and set(kept) | {"classifier.weight", "classifier.bias"} == set(after)
    for k in kept:
        assert torch.equal(before[k], after[k]), k
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 32, 16, 16)
    # the new head is trainable and in the model's parameters
    assert any(p is m.classifier.weight for p in m.parameters())


def test_replace_head_swaps_auxiliary_heads_too():
    m = models.build("bisenet_resnet18", num_classes=19, width=8)
    backbone = {k: v.clone() for k, v in m.state_dict().items() if "head" not in k}
    replace_head(m, 5)
    heads = [n for n, l in m.named_modules() if isinstance(l, nn.Conv2d) and l.out_channels == 5]
    assert heads == ["head.1", "aux_heads.0.1", "aux_heads.1.1"]
    assert not [n for n, l in m.named_modules() if isinstance(l, nn.Conv2d) and l.out_channels == 19]
    for k, v in backbone.items():
        assert torch.equal(v, m.state_dict()[k]), k
    m.eval()
    assert main_logits(m(torch.randn(1, 3, 64, 64))).shape == (1, 5, 64, 64)


def test_replace_head_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        replace_head(models.build("tiny_fcn", num_classes=3, width=4), 0)
    with pytest.raises(ValueError, match="no Conv2d"):
        replace_head(nn.Sequential(nn.ReLU()), 3)


class Labels(torch.utils.data.Dataset):
    """Images whose labels hold given class sets (what ``few_shot_indices`` reads)."""

    def __init__(self, sets):
        self.sets = sets

    def __len__(self):
        return len(self.sets)

    def load_label(self, i):
        lab = np.full((2, 4), 255, np.uint8)
        lab.flat[: len(self.sets[i])] = sorted(self.sets[i])
        return lab


def test_few_shot_indices_cover_every_class_k_times():
    # class 3 is in images 0 and 5 only; class 0 everywhere; class 4 nowhere
    sets = [{0, 1, 3}, {0, 1}, {0, 2}, {0, 2}, {0, 1, 2}, {0, 3}]
    ds = Labels(sets)
    for k in (1, 2, 3):
        idx = few_shot_indices(ds, k, num_classes=5, seed=1)
        assert len(set(idx)) == len(idx)
        for c in range(4):
            have = sum(c in sets[i] for i in idx)
            assert have >= min(k, sum(c in s for s in sets)), (k, c, idx)
    # 1 shot: the rarest class (3) comes first, its image also brings 0 (and maybe 1); then 2
    one = few_shot_indices(ds, 1, num_classes=5, seed=1)
    assert one[0] in (0, 5) and len(one) <= 3
    assert few_shot_indices(ds, 2, 5, seed=1) == few_shot_indices(ds, 2, 5, seed=1)
    with pytest.raises(ValueError, match="shots"):
        few_shot_indices(ds, 0, 5)


def test_fraction_indices_and_labelled_subset():
    assert len(fraction_indices(96, 0.1)) == 10 and len(fraction_indices(96, 0.5)) == 48
    assert fraction_indices(96, 1.0) == list(range(96))
    assert len(fraction_indices(3, 0.1)) == 1
    with pytest.raises(ValueError, match="fraction"):
        fraction_indices(10, 0)
    sub = labelled_subset(list(range(10)), [2, 7], min_len=5)
    assert list(sub) == [2, 7, 2, 7, 2, 7]
    with pytest.raises(ValueError, match="empty"):
        labelled_subset([1], [])


def test_fine_label_dataset_reads_the_32_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    from paperlib.data import export_world
    from paperlib.data.datasets import build_dataset
    from paperlib.data.synthetic import FINE_CLASSES, fine_to_trainid
    root = export_world("city_fine", (32, 64), 2, seed=3, progress=False)
    coarse = build_dataset("cityscapes", root, "train")
    fine = fine_label_dataset(coarse)
    assert fine.num_classes == 32 and tuple(fine.class_names) == FINE_CLASSES and len(fine) == len(coarse)
    f, c = fine.load_label(0), coarse.load_label(0)
    assert f.max() < 32 or (f[f != 255].max() < 32)
    assert np.array_equal(fine_to_trainid(f), c)       # the fine ids refine the 19 classes
    assert len(np.unique(f)) >= len(np.unique(c))
    assert fine[0]["label"].shape == coarse[0]["label"].shape


def test_transfer_pairs_both_inits_per_seed_and_gates_nothing_itself(tmp_path, monkeypatch):
    from paperlib.selftrain import transfer as T
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    r = T.SMOKE_REGIME
    assert [b for b, _, _ in r.budgets()] == ["1-shot", "2-shot", "full"]
    with pytest.raises(ValueError, match="budget"):
        T.budget_indices(r, "same classes", "3-shot", 0)
    with pytest.raises(ValueError, match="case"):
        T.target(r, "moon classes")
    same = T.run(r, "same classes", [0, 1], progress=False)
    new = T.run(r, "new classes", [0], progress=False)
    assert set(same[same["labels"] == "0 (none)"]["method"]) == set(T.INITS)  # the domain gap, same classes only
    assert "0 (none)" not in set(new["labels"])
    by = same.set_index(["labels", "method", "seed"])["mIoU"]
    for s in (0, 1):  # the gap row is self-training minus fine-tuning of the same seed
        assert by["1-shot", T.GAP, s] == pytest.approx(by["1-shot", "self-training", s] - by["1-shot", "fine-tuning", s])
    full = same[(same["labels"] == "full") & (same["method"] == "fine-tuning")]["images"]
    assert (full == len(T.target(r, "same classes")["train"])).all()
    # every fine-tuning is a cached row: a second run trains nothing and gives the same frame
    import paperlib.engine as engine
    monkeypatch.setattr(engine, "train", lambda *a, **k: pytest.fail("trained again"))
    again = T.run(r, "same classes", [0, 1], progress=False)
    assert again.equals(same)
