"""ConfusionMatrix: hand-computed cases and agreement with cityscapesscripts' official evaluation."""
import math

import cv2
import numpy as np
import pytest
import torch

from paperlib.data.labels import CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES, CITYSCAPES_TRAINID_TO_ID
from paperlib.metrics import ConfusionMatrix


def three_class_example():
    target = np.array([[0, 0, 1, 1],
                       [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 0, 2]])
    return pred, target


def test_hand_computed_three_classes():
    pred, target = three_class_example()
    cm = ConfusionMatrix(3).update(pred, target)
    # counted pixels (target != 255): 7
    # target 0: pred 0,1,0 -> tp0=2, fn0=1 ; target 1: pred 1,1 -> tp1=2 ; target 2: pred 2,0 -> tp2=1, fn2=1
    assert cm.matrix.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU0 = 2/(2+1+1) ; IoU1 = 2/(2+1+0) ; IoU2 = 1/(1+0+1)
    np.testing.assert_allclose(cm.per_class_iou(), [0.5, 2 / 3, 0.5])
    assert cm.miou() == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)
    assert cm.mean_accuracy() == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)


def test_ignore_pixels_are_ignored():
    pred, target = three_class_example()
    a = ConfusionMatrix(3).update(pred, target)
    pred2 = pred.copy()
    pred2[1, 3] = 1  # change the prediction on the ignored pixel only
    b = ConfusionMatrix(3).update(pred2, target)
    assert np.array_equal(a.counts(), b.counts())
    assert a.counts().sum() == 7
    c = ConfusionMatrix(3, ignore_index=0).update(pred, np.where(target == 255, 0, target))
    assert c.counts()[0].sum() == 0  # a custom ignore id is not counted as a class either


def test_absent_class_is_nan_and_excluded_from_mean():
    cm = ConfusionMatrix(4).update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    iou = cm.per_class_iou()
    assert math.isnan(iou[2]) and math.isnan(iou[3])
    assert cm.miou() == pytest.approx((0.5 + 0.5) / 2)
    # a class only predicted (never in the target) has IoU 0, not NaN
    cm2 = ConfusionMatrix(3).update(np.array([2, 1]), np.array([0, 1]))
    assert cm2.per_class_iou()[2] == 0 and math.isnan(ConfusionMatrix(3).miou())


def test_void_prediction_is_a_false_negative_only():
    cm = ConfusionMatrix(2).update(np.array([0, 255, 1]), np.array([0, 0, 1]))
    np.testing.assert_allclose(cm.per_class_iou(), [0.5, 1.0])
    assert cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_tensor_and_numpy_inputs_accumulate_equally():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, (2, 16, 16))
    target = rng.integers(0, 5, (2, 16, 16))
    target[:, :3] = 255
    a = ConfusionMatrix(5).update(pred, target)
    b = ConfusionMatrix(5)
    for k in range(2):
        b.update(torch.from_numpy(pred[k]), torch.from_numpy(target[k]).to(torch.uint8))
    assert np.array_equal(a.counts(), b.counts())
    assert b.mat.device.type == "cpu"
    # reference: plain numpy confusion matrix
    keep = target != 255
    ref = np.zeros((5, 5), np.int64)
    np.add.at(ref, (target[keep], pred[keep]), 1)
    assert np.array_equal(a.matrix, ref)


def test_merge_reset_state_dict():
    pred, target = three_class_example()
    a = ConfusionMatrix(3).update(pred[:1], target[:1])
    b = ConfusionMatrix(3).update(pred[1:], target[1:])
    whole = ConfusionMatrix(3).update(pred, target)
    assert np.array_equal(a.merge(b).counts(), whole.counts())
    c = ConfusionMatrix(3)
    c.load_state_dict(whole.state_dict())
    assert c.miou() == whole.miou()
    assert ConfusionMatrix(3).reduce_().counts().sum() == 0  # no process group: no-op
    whole.reset()
    assert whole.counts().sum() == 0
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(3).update(pred, target[:, :2])
    with pytest.raises(ValueError, match="different"):
        ConfusionMatrix(4).merge(a)
    with pytest.raises(ValueError, match="integer"):
        ConfusionMatrix(3).update(np.zeros((2, 2)), target[:, :2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_accumulates_on_gpu():
    pred, target = three_class_example()
    cm = ConfusionMatrix(3).update(torch.from_numpy(pred).cuda(), torch.from_numpy(target).cuda())
    assert cm.mat.is_cuda
    np.testing.assert_allclose(cm.per_class_iou(), [0.5, 2 / 3, 0.5])


def test_category_iou_merges_classes():
    # car (13) predicted as truck (14): wrong class, right category (vehicle)
    target = np.array([13, 13, 0, 11])
    pred = np.array([14, 13, 0, 13])
    cat = ConfusionMatrix(19).update(pred, target).category_iou()
    assert list(cat) == ["flat", "construction", "object", "nature", "sky", "human", "vehicle"]
    assert cat["flat"] == 1.0
    assert cat["vehicle"] == pytest.approx(2 / 3)  # tp 2, fp 1 (the person pixel)
    assert cat["human"] == 0.0 and math.isnan(cat["sky"])


def _synthetic_predictions(n=3, h=48, w=64, seed=0):
    """Cityscapes-like label maps (train ids) and noisy predictions, with void in both."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gt = np.zeros((h, w), np.uint8)
        for _ in range(25):
            y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
            gt[y:y + rng.integers(2, 20), x:x + rng.integers(2, 30)] = rng.integers(0, 17)  # 17, 18 absent
        gt[rng.random((h, w)) < 0.05] = 255
        pred = gt.copy()
        flip = rng.random((h, w)) < 0.3
        pred[flip] = rng.choice(np.r_[0:17, 18], flip.sum())  # 18 only predicted, 17 never
        pred[rng.random((h, w)) < 0.02] = 255  # void predictions
        pred[pred == 255] = np.where(rng.random((pred == 255).sum()) < 0.5, 255, 7)
        out.append((pred, gt))
    return out


def _to_label_ids(train: np.ndarray, void_id: int) -> np.ndarray:
    lut = np.full(256, void_id, np.uint8)
    for t, i in CITYSCAPES_TRAINID_TO_ID.items():
        lut[t] = i
    return lut[train]


def test_per_class_iou_equals_cityscapesscripts(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path))
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    pairs = _synthetic_predictions()
    preds, gts = [], []
    cm = ConfusionMatrix(19)
    for k, (pred, gt) in enumerate(pairs):
        name = f"city_{k:06d}_000019"
        # ground-truth void -> labelId 0 ("unlabeled"); predicted void -> labelId 4 ("static"):
        # both are ignoreInEval ids in the official table
        p, g = tmp_path / f"{name}_pred.png", tmp_path / f"{name}_gtFine_labelIds.png"
        cv2.imwrite(str(p), _to_label_ids(pred, 4))
        cv2.imwrite(str(g), _to_label_ids(gt, 0))
        preds.append(str(p))
        gts.append(str(g))
        cm.update(pred, gt)

    args = ev.args
    monkeypatch.setattr(args, "evalInstLevelScore", False)
    monkeypatch.setattr(args, "JSONOutput", False)
    monkeypatch.setattr(args, "quiet", True)
    result = ev.evaluateImgLists(preds, gts, args)

    ours = cm.per_class_iou()
    theirs = np.array([result["classScores"][name] for name in CITYSCAPES_CLASSES])
    assert np.isnan(theirs[17]) and np.isnan(ours[17])  # absent from both
    assert theirs[18] == 0.0 and ours[18] == 0.0  # predicted, never in the ground truth
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, equal_nan=True)
    assert cm.miou() == pytest.approx(result["averageScoreClasses"], abs=1e-12)
    cats = cm.category_iou(CITYSCAPES_CATEGORIES)
    for name, value in cats.items():
        assert value == pytest.approx(result["categoryScores"][name], abs=1e-12)
