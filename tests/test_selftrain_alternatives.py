"""Self-training alternatives (CSST Sec. 3.1.1): soft pseudo labels (Eq. 6), the model
regularizer (Eq. 7), consistency regularization with online pseudo labels (Eq. 4); and the derived
per-seed measures the self-training / CSST claims are tested on (``paperlib.selftrain.analysis``)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from paperlib import losses
from paperlib.losses import (IGNORE_INDEX, ONLINE_LABEL, build_loss, model_regularized_loss,
                             online_pseudo_labels, soft_pseudo_label_loss)


# --- soft pseudo labels (Eq. 6) ---------------------------------------------------------------
def test_soft_loss_equals_cross_entropy_when_top1_prob_is_one():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4)
    y = torch.randint(0, 5, (2, 3, 4))
    y[0, 0, 0] = IGNORE_INDEX
    idx = torch.stack([y.clamp(max=4), (y + 1) % 5, (y + 2) % 5], 1)
    prob = torch.stack([torch.ones(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)], 1)
    ce = F.cross_entropy(x, y, ignore_index=IGNORE_INDEX)
    assert soft_pseudo_label_loss(x, y, idx, prob).item() == pytest.approx(ce.item(), rel=1e-6)
    # no soft targets at all (real labels only): plain cross-entropy too
    assert soft_pseudo_label_loss(x, y).item() == pytest.approx(ce.item(), rel=1e-6)


def test_soft_loss_hand_computed_2x2():
    # C = 3, k = 2; logits equal at every pixel except (0, 1): softmax there = [e^2, 1, 1] / (e^2 + 2)
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0, 0, 1] = 2.0
    label = torch.tensor([[[0, 0], [1, IGNORE_INDEX]]])
    idx = torch.tensor([[[[0, 0], [1, 1]], [[1, 2], [2, 0]]]])          # (1, k=2, 2, 2)
    prob = torch.tensor([[[[0.6, 0.3], [0.0, 0.9]], [[0.2, 0.1], [0.0, 0.1]]]])
    # pixel (0,0): q = (0.75, 0.25) over classes (0, 1), uniform softmax -> log 3
    p00 = math.log(3)
    # pixel (0,1): q = (0.75, 0.25) over classes (0, 2)
    z = math.e ** 2 + 2
    p01 = -(0.75 * math.log(math.e ** 2 / z) + 0.25 * math.log(1 / z))
    # pixel (1,0): no stored mass -> hard label 1 -> log 3; pixel (1,1): ignored
    expected = (p00 + p01 + math.log(3)) / 3
    assert soft_pseudo_label_loss(x, label, idx, prob).item() == pytest.approx(expected, rel=1e-6)
    # quantised probabilities (uint8): only ratios matter
    q8 = (prob * 200).round().to(torch.uint8)
    assert soft_pseudo_label_loss(x, label, idx.to(torch.uint8), q8).item() == pytest.approx(expected, rel=1e-6)


def test_soft_loss_finite_under_bf16_and_gradient():
    torch.manual_seed(1)
    x = (30 * torch.randn(2, 19, 8, 8)).bfloat16().requires_grad_()
    y = torch.randint(0, 19, (2, 8, 8))
    idx = torch.randint(0, 19, (2, 3, 8, 8))
    prob = torch.rand(2, 3, 8, 8).half()
    loss = soft_pseudo_label_loss(x, y, idx, prob)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad.float()).all()
    # float64 gradcheck of the soft term (match_size keeps float32, so check a float32 finite difference)
    x64 = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 4, (1, 2, 2, 2))
    prob = torch.rand(1, 2, 2, 2)
    lab = torch.zeros(1, 2, 2, dtype=torch.long)
    g, = torch.autograd.grad(soft_pseudo_label_loss(x64, lab, idx, prob), x64)
    # analytic: dL/dx = (p - q_scattered) / n_pixels
    q = torch.zeros(1, 4, 2, 2, dtype=torch.float64).scatter_add_(1, idx, (prob / prob.sum(1, keepdim=True)).double())
    assert torch.allclose(g, (torch.softmax(x64, 1) - q) / 4, atol=1e-6)


def test_soft_loss_registered_with_aux_and_bad_shapes():
    x = torch.zeros(1, 3, 2, 2)
    label = torch.zeros(1, 2, 2, dtype=torch.long)
    fn = build_loss("soft_pseudo_label", aux_weight=0.5)
    assert fn({"out": x, "aux": x}, {"label": label}).item() == pytest.approx(1.5 * math.log(3))
    with pytest.raises(ValueError, match="soft_index"):
        soft_pseudo_label_loss(x, label, torch.zeros(1, 2, 3, 3, dtype=torch.long), torch.ones(1, 2, 3, 3))


# --- model regularizer (Eq. 7) ----------------------------------------------------------------
def test_model_regularizer_hand_computed():
    # one pixel, C = 2, p = (1/4, 3/4), label 1; a second (real) pixel with uniform logits, label 0
    x = torch.zeros(2, 2, 1, 1)
    x[0, 1] = math.log(3.0)
    y = torch.tensor([[[1]], [[0]]])
    ce = (-math.log(0.75) + math.log(2)) / 2
    reg0 = -0.5 * (math.log(0.25) + math.log(0.75))      # -(1/C) sum_c log p_c, pseudo pixel
    reg1 = math.log(2)                                    # uniform: -(1/2)(2 log 1/2)
    pseudo = torch.tensor([[[True]], [[False]]])
    got = model_regularized_loss(x, y, pseudo, weight=0.5)
    assert got.item() == pytest.approx(ce + 0.5 * reg0 / 2, rel=1e-6)
    # through the registry: the batch's source flags (1 = pseudo) pick the regularised items
    fn = build_loss("model_regularizer", weight=0.5)
    assert fn(x, {"label": y, "source": torch.tensor([1, 0])}).item() == pytest.approx(got.item())
    # without flags every valid pixel is regularised
    assert fn(x, {"label": y}).item() == pytest.approx(ce + 0.5 * (reg0 + reg1) / 2, rel=1e-6)
    # weight 0 -> plain cross-entropy
    assert model_regularized_loss(x, y, weight=0.0).item() == pytest.approx(ce, rel=1e-6)
    with pytest.raises(ValueError, match="weight"):
        build_loss("model_regularizer", weight=-1)


def test_model_regularizer_gradient_punishes_sharp_predictions():
    # the regulariser alone (label ignored except for counting): gradient pushes logits towards uniform
    x = torch.tensor([[[[3.0]], [[0.0]], [[-1.0]]]], requires_grad=True)
    y = torch.tensor([[[0]]])
    reg_only = model_regularized_loss(x, y, weight=1.0) - model_regularized_loss(x, y, weight=0.0)
    g, = torch.autograd.grad(reg_only, x)
    # d/dx_c of -(1/C) sum log p = p_c - 1/C
    expected = torch.softmax(x.detach(), 1) - 1 / 3
    assert torch.allclose(g, expected, atol=1e-6)
    assert g[0, 0] > 0 and g[0, 2] < 0  # the largest logit is pushed down, the smallest up


# --- consistency regularization (Eq. 4) -------------------------------------------------------
def test_online_pseudo_labels_fill_only_online_pixels():
    x = torch.zeros(1, 3, 1, 3)
    x[0, 2] = 1.0                      # argmax 2 everywhere, p = e/(e+2) ~ 0.58
    t = torch.tensor([[[0, ONLINE_LABEL, IGNORE_INDEX]]])
    assert online_pseudo_labels(x, t).tolist() == [[[0, 2, IGNORE_INDEX]]]
    assert online_pseudo_labels(x, t, threshold=0.9).tolist() == [[[0, IGNORE_INDEX, IGNORE_INDEX]]]
    fn = build_loss("consistency")
    logp = torch.log_softmax(x, 1)[0, :, 0, 0]
    expected = (-logp[0] - logp[2]) / 2
    assert fn(x, {"label": t}).item() == pytest.approx(expected.item(), rel=1e-6)
    # unlabelled weight scales only the online pixels' term
    fn2 = build_loss("consistency", unlabeled_weight=0.5)
    assert fn2(x, {"label": t}).item() == pytest.approx(((-logp[0] - 0.5 * logp[2]) / 2).item(), rel=1e-6)


def test_consistency_pseudo_labels_update_online_as_the_model_changes():
    """Eq. 4: the pseudo labels used at step t+N are re-estimated from the current model, so they
    differ from those of step 0 once the model changed (a fixed-label pipeline would reuse them)."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 1)
    real_x, unl_x = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    real_y = torch.randint(0, 4, (2, 6, 6))
    unl_y = torch.full((2, 6, 6), ONLINE_LABEL)
    images, labels = torch.cat([real_x, unl_x]), torch.cat([real_y, unl_y])
    fn = build_loss("consistency")
    used = []
    for step in range(6):
        out = net(images)
        used.append(online_pseudo_labels(out, labels)[2:].clone())
        grads = torch.autograd.grad(fn(out, {"label": labels}), list(net.parameters()))
        with torch.no_grad():  # plain SGD (torch.optim's first use imports dynamo: seconds)
            for p, g in zip(net.parameters(), grads):
                p -= 0.5 * g
    assert (used[0] != used[-1]).any(), "the online pseudo labels never changed"
    # and they are what the current model predicts, not a stale copy
    with torch.no_grad():
        assert torch.equal(online_pseudo_labels(net(images), labels)[:2], real_y)


def test_consistency_rejects_bad_options():
    with pytest.raises(ValueError, match="threshold"):
        build_loss("consistency", threshold=1.5)
    with pytest.raises(ValueError, match="unlabeled_weight"):
        build_loss("consistency", unlabeled_weight=-1)
    assert {"soft_pseudo_label", "model_regularizer", "consistency"} <= set(losses.LOSSES)


# --- the alternatives in the engine (tiny Cityscapes-layout fixtures) -------------------------
def _tiny(tmp_path):
    from fixtures import write_cityscapes

    from paperlib.config import config_from_params
    from paperlib.data.datasets import build_dataset
    from paperlib.selftrain import unlabelled
    root = tmp_path / "cs"
    write_cityscapes(root, "train", n=2, size=(16, 32), seed=0)
    write_cityscapes(root, "val", n=1, size=(16, 32), seed=0)
    write_cityscapes(tmp_path / "extra", "train", n=2, size=(16, 32), seed=5, cities=("bonn",))
    pool = unlabelled(build_dataset("cityscapes", tmp_path / "extra", "train"))
    cfg = config_from_params("smoke", dataset="cityscapes", data_root=str(root), crop_size=(16, 24), steps=4,
                             batch_size=2, model_width=4, scale=(1.0, 1.0), progress=False, lr=0.5)
    return cfg, {"extra": pool}


def test_online_label_dataset_marks_image_pixels_and_pads_with_ignore(tmp_path):
    from paperlib.data.transforms import build_train_transform
    from paperlib.selftrain.alternatives import OnlineLabelDataset
    _, pools = _tiny(tmp_path)
    ds = OnlineLabelDataset(pools["extra"], build_train_transform((20, 24), scale=None, flip=False))
    lab = ds[0]["label"]
    assert lab.shape == (20, 24)
    assert (lab[:16] == ONLINE_LABEL).all() and (lab[16:] == IGNORE_INDEX).all()  # 4 rows of padding
    with pytest.raises(TypeError, match="no stored labels"):
        ds.load_label(0)


def test_consistency_in_the_engine_relabels_the_pool_every_step(tmp_path):
    """Issue #7: consistency regularization updates pseudo labels online -- the labels the loss
    uses on the pool's pixels at the last step differ from those of the first step."""
    from paperlib.selftrain.alternatives import consistency_regularization
    cfg, pools = _tiny(tmp_path)
    used = []

    @losses.register_loss("_test_consistency_probe")
    def _probe(**options):
        inner = build_loss("consistency", **options)

        def fn(output, batch):
            online = batch["label"] == ONLINE_LABEL
            if online.any():
                used.append(online_pseudo_labels(losses.main_logits(output), batch["label"])[online])
            return inner(output, batch)
        return fn

    try:
        import paperlib.selftrain.alternatives as alt
        orig = engine_train = alt.engine.train
        alt.engine.train = lambda c, **kw: engine_train(c.replace(loss="_test_consistency_probe"), **kw)
        out = consistency_regularization(cfg, pools, ratio=(1, 1))
    finally:
        alt.engine.train = orig
        del losses.LOSSES["_test_consistency_probe"]
    assert out["result"]["step"] == 4 and 0 <= out["metrics"]["miou"] <= 1
    assert len(used) >= 2, "no pool pixels reached the loss"
    first, last = used[0], used[-1]
    assert first.numel() > 0 and not (first.shape == last.shape and torch.equal(first, last))


def test_teacher_finetune_starts_from_the_teacher_and_loops_chain(tmp_path):
    from paperlib import engine
    from paperlib.selftrain import alternatives as alt
    cfg, pools = _tiny(tmp_path)
    teacher = engine.train(cfg.replace(steps=2))
    w0 = {k: v.clone() for k, v in teacher["model"].state_dict().items()}
    seen = []
    orig = engine.train

    def spy(c, model=None, **kw):
        seen.append(None if model is None else {k: v.clone() for k, v in model.state_dict().items()})
        return orig(c, model=model, **kw)

    engine.train = spy
    try:
        ft = alt.teacher_finetune(cfg, cfg, pools, teacher, out_dir=tmp_path / "pl")
        loops = alt.self_training_loops(cfg, cfg, pools, teacher, 2, out_dir=tmp_path / "pl")
    finally:
        engine.train = orig
    # Eq. 5: fine-tuning starts from the teacher's weights (a copy: the teacher is unchanged)
    assert all(torch.equal(seen[0][k], w0[k]) for k in w0)
    assert all(torch.equal(teacher["model"].state_dict()[k], w0[k]) for k in w0)
    assert ft["result"]["step"] == 4
    # loops: students trained from scratch; round 2 relabels with round 1's student
    assert seen[1] is None and seen[2] is None and len(loops) == 2
    dirs = sorted(p.name for p in (tmp_path / "pl").iterdir())
    assert len(dirs) == 2 and all(d.endswith("_hard") for d in dirs)   # teacher's and student 1's labels


def test_analysis_arm_gap_and_rank_correlation_hand_computed():
    import pandas as pd

    from paperlib.selftrain import analysis
    df = pd.DataFrame({"method": ["st", "ft", "st", "ft", "st", "ft", "st"],
                       "labels": ["1", "1", "1", "1", "all", "all", "all"],
                       "seed": [0, 0, 1, 1, 0, 0, 1],
                       "mIoU": [5.0, 3.0, 4.0, float("nan"), 7.0, 6.5, 1.0]})
    g = analysis.arm_gap(df, arm="method", a="st", b="ft", by=["labels"], value="mIoU", label="gap")
    assert list(g.columns) == ["method", "labels", "seed", "mIoU"] and set(g["method"]) == {"gap"}
    got = {(r.labels, r.seed): r.mIoU for r in g.itertuples()}
    assert got[("1", 0)] == pytest.approx(2.0) and got[("all", 0)] == pytest.approx(0.5)
    assert math.isnan(got[("1", 1)])                 # a failed run on one side: a NaN gap, not dropped
    assert ("all", 1) not in got                      # seed 1 has no fine-tuning row at "all"
    flagged = df.assign(failed=[False, True, False, False, False, False, False])
    assert math.isnan(analysis.arm_gap(flagged, arm="method", a="st", b="ft", by=["labels"],
                                       value="mIoU").iloc[0]["mIoU"])
    with pytest.raises(ValueError, match="no rows"):
        analysis.arm_gap(df, arm="method", a="st", b="nope", by=["labels"], value="mIoU")
    t = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1, 2, 2], "cost": [1, 2, 3, 1, 2, 3, 1, 2],
                      "up": [1.1, 1.3, 1.2, 1.5, 1.4, 1.3, 1.0, 2.0]})
    r = analysis.rank_correlation(t, x="cost", y="up", label="rho")
    assert list(r["seed"]) == [0, 1]                  # seed 2 has two models only: no row
    assert r["rho"].tolist() == pytest.approx([0.5, -1.0])


def test_analysis_runnable_keeps_claims_whose_arms_ran():
    import pandas as pd

    from paperlib import claims as C
    from paperlib.selftrain import analysis
    decl = C.parse("selftrain", [
        {"id": "ok", "item": "t", "text": "x", "kind": "directional", "a": {"k": "1"}, "b": {"k": "2"}},
        {"id": "gone", "item": "t", "text": "x", "kind": "directional", "a": {"k": "5"}, "b": {"k": "2"}},
        {"id": "chk", "item": "t", "text": "x", "kind": "check"},
        {"id": "gated", "item": "t", "text": "x", "kind": "directional", "a": {"k": "1"}, "b": {"k": "2"},
         "control": "chk"},
        {"id": "val", "item": "t", "text": "x", "kind": "directional", "a": "1", "value": 0.0}])
    df = pd.DataFrame({"k": ["1", "2"], "seed": [0, 0], "mIoU": [1.0, 2.0]})
    kept = analysis.runnable(decl, df, arm="k", verbose=False)
    assert [c.id for c in kept] == ["ok", "val"]      # no arm "5"; no check result, so its dependant goes too
    kept = analysis.runnable(decl, df, arm="k", checks={"chk": True}, verbose=False)
    assert [c.id for c in kept] == ["ok", "chk", "gated", "val"]


def test_pretrain_then_finetune_and_soft_and_regularized_students(tmp_path):
    from paperlib import engine
    from paperlib.selftrain import PseudoLabelDataset
    from paperlib.selftrain import alternatives as alt
    cfg, pools = _tiny(tmp_path)
    teacher = engine.train(cfg.replace(steps=2))
    calls = []
    orig = engine.train

    def spy(c, model=None, train_set=None, val_set=None, **kw):
        out = orig(c, model=model, train_set=train_set, val_set=val_set, **kw)
        calls.append({"cfg": c, "model_in": model, "train_set": train_set, "val": val_set, "out": out})
        return out

    engine.train = spy
    try:
        pt = alt.pretrain_then_finetune(cfg, pools, teacher, pretrain_steps=3, finetune_steps=2,
                                        out_dir=tmp_path / "pl")
        soft = alt.soft_self_train(cfg, cfg, pools, teacher, top_k=2, out_dir=tmp_path / "pl")
        mr = alt.regularized_self_train(cfg, cfg, pools, teacher, weight=0.3, out_dir=tmp_path / "pl")
    finally:
        engine.train = orig
    pre, ft = calls[0], calls[1]
    # A.2: pseudo labels only, no evaluation; then real labels only, starting from the pre-trained weights
    assert isinstance(pre["train_set"], PseudoLabelDataset) and pre["val"] is None and pre["out"]["step"] == 3
    assert ft["model_in"] is pre["out"]["model"] and not isinstance(ft["train_set"], PseudoLabelDataset)
    assert ft["out"]["step"] == 2 and pt["metrics"] is ft["out"]["metrics"]
    # Eq. 6: soft labels, soft loss, and batches of the mix carry the top-k planes
    assert calls[2]["cfg"].loss == "soft_pseudo_label"
    mixed = soft["pipeline"]["train_set"]
    assert mixed.soft_k == 2 and {"soft_index", "soft_prob", "source"} <= set(mixed[len(mixed) - 1])
    # Eq. 7: hard labels with the regularizer weight
    assert calls[3]["cfg"].loss == "model_regularizer" and calls[3]["cfg"].loss_options == {"weight": 0.3}
    assert mr["pipeline"]["train_set"].soft_k == 0
    dirs = sorted(p.name.rsplit("_", 1)[1] for p in (tmp_path / "pl").iterdir())
    assert dirs == ["hard", "soft"]                       # one folder per mode, reused across rows
