"""The embedded world: determinism, exact flow, occlusion, class statistics, domains, annotation,
fine labels and the Cityscapes-exact export. Small images (64x128 / 128x256) keep it fast."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from paperlib.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_ID_TO_TRAINID, IGNORE_INDEX
from paperlib.data.synthetic import (DOMAINS, FINE_CLASSES, FINE_TO_CITYSCAPES, FINE_TO_TRAINID,
                                     SyntheticWorld, annotate, export, labelled_indices)
from paperlib.data.synthetic.annotate import coarse_polygons

SMALL = (64, 128)
MEDIUM = (256, 512)
C = {n: i for i, n in enumerate(CITYSCAPES_CLASSES)}


@pytest.fixture(scope="module")
def world_a():
    return SyntheticWorld("city_a", MEDIUM)


@pytest.fixture(scope="module")
def clip_a(world_a):
    return world_a.clip(0, length=8)


@pytest.fixture(scope="module")
def survey():
    """Labels of frames 0/15/29 of city_a clips at 64x128 until every class was seen (<= 40)."""
    w = SyntheticWorld("city_a", SMALL)
    hist, first_seen, n = np.zeros(256), {}, 0
    for i in range(40):
        for r in w.frames(i, [0, 15, 29]):
            hist += np.bincount(r.label.ravel(), minlength=256)
            for c in np.unique(r.label):
                first_seen.setdefault(int(c), i)
        n = i + 1
        if n >= 12 and all(c in first_seen for c in range(19)):
            break
    return hist, first_seen, n


def _grid(h, w):
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def _warp(img, flow, interp=cv2.INTER_LINEAR):
    gx, gy = _grid(*img.shape[:2])
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], interp)


def _near_boundary(label, r):
    """Pixels within ``r`` px (chessboard) of a label change."""
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    lab = label.astype(np.int32)
    return cv2.dilate(lab.astype(np.float32), k) != cv2.erode(lab.astype(np.float32), k)


# --- API, shapes, determinism -----------------------------------------------------------------------
def test_shapes_and_dtypes(clip_a):
    T, (H, W) = 8, MEDIUM
    c = clip_a
    assert c.frames.shape == (T, H, W, 3) and c.frames.dtype == np.uint8
    assert c.labels.shape == (T, H, W) and c.labels.dtype == np.uint8
    assert c.instances.shape == (T, H, W) and c.instances.dtype == np.int32
    for f in (c.flow_fw, c.flow_bw):
        assert f.shape == (T - 1, H, W, 2) and f.dtype == np.float32 and np.isfinite(f).all()
    for v in (c.valid_fw, c.valid_bw):
        assert v.shape == (T - 1, H, W) and v.dtype == bool
    assert set(np.unique(c.labels)) <= set(range(19)) | {IGNORE_INDEX}
    assert c.fine_labels is None  # only city_fine carries them by default


def test_deterministic_in_domain_seed_index(clip_a):
    again = SyntheticWorld("city_a", MEDIUM).clip(0, length=8)
    for name in ("frames", "labels", "instances", "flow_fw", "flow_bw", "valid_fw", "valid_bw"):
        assert np.array_equal(getattr(clip_a, name), getattr(again, name)), name
    small = SyntheticWorld("city_a", SMALL).clip(0, length=2, flow=False)
    other_index = SyntheticWorld("city_a", SMALL).clip(1, length=2, flow=False)
    other_seed = SyntheticWorld("city_a", SMALL, seed=1).clip(0, length=2, flow=False)
    assert not np.array_equal(small.frames, other_index.frames)
    assert not np.array_equal(small.frames, other_seed.frames)


def test_bad_arguments():
    with pytest.raises(ValueError, match="city_x"):
        SyntheticWorld("city_x")
    with pytest.raises(ValueError, match="size"):
        SyntheticWorld("city_a", size=(8, 8))
    with pytest.raises(ValueError, match="fps"):
        SyntheticWorld("city_a", fps=0)
    w = SyntheticWorld("city_a", SMALL)
    with pytest.raises(ValueError, match="index"):
        w.clip(-1, 2)
    with pytest.raises(ValueError, match="length"):
        w.clip(0, 0)


# --- exact flow -------------------------------------------------------------------------------------
def test_flow_reproduces_previous_frame(clip_a):
    """Backward-warping frame t+1 by flow_fw[t] reproduces frame t at valid pixels.

    Bound: textures are band-limited (Gaussian sigma 0.7 texel) and sampled bilinearly, both when
    rendering and when warping, and minified surfaces switch mip level between frames; what
    remains is interpolation error, concentrated on texture edges (window frames, paving
    joints) and on pixels straddling a depth edge (bilinear warping mixes the two surfaces):
    ~1.5-2 grey levels at 256x512 (mean abs over RGB, 0..255). 3.0 is below a third of the error
    without motion compensation (~12); away from surface edges the bound is 2.5; and a flow
    shifted by 0.75 px does clearly worse, so a merely roughly-right flow cannot pass.
    """
    errs, errs_inner, errs_still, errs_shift = [], [], [], []
    for t in range(len(clip_a) - 1):
        f, v = clip_a.flow_fw[t], clip_a.valid_fw[t]
        inner = v & ~_near_boundary(clip_a.instances[t] * 64 + clip_a.labels[t], 1)
        ref = clip_a.frames[t].astype(np.float32)
        err = lambda img, m=v: np.abs(img.astype(np.float32) - ref).mean(-1)[m].mean()  # noqa: E731
        warped = _warp(clip_a.frames[t + 1], f)
        errs.append(err(warped))
        errs_inner.append(err(warped, inner))
        errs_still.append(err(clip_a.frames[t + 1]))
        errs_shift.append(err(_warp(clip_a.frames[t + 1], f + np.float32([0.75, 0.75]))))
    mae = float(np.mean(errs))
    assert mae < 3.0, mae
    assert float(np.mean(errs_inner)) < 2.5
    assert mae < 0.35 * float(np.mean(errs_still))
    assert float(np.mean(errs_shift)) > 1.3 * mae


def test_backward_flow_reproduces_next_frame(clip_a):
    errs = []
    for t in range(len(clip_a) - 1):
        f, v = clip_a.flow_bw[t], clip_a.valid_bw[t]
        warped = _warp(clip_a.frames[t], f).astype(np.float32)
        errs.append(np.abs(warped - clip_a.frames[t + 1]).mean(-1)[v].mean())
    assert float(np.mean(errs)) < 3.0


def test_labels_warp_consistently(clip_a):
    """Nearest-warping labels of t+1 by flow_fw[t] gives labels t on >= 99 % of valid pixels
    at least 2 px from a label boundary (exactly 100 % in practice)."""
    for t in range(len(clip_a) - 1):
        v = clip_a.valid_fw[t] & ~_near_boundary(clip_a.labels[t], 2)
        warped = _warp(clip_a.labels[t + 1], clip_a.flow_fw[t], cv2.INTER_NEAREST)
        assert (warped[v] == clip_a.labels[t][v]).mean() >= 0.99
        inst = _warp(clip_a.instances[t + 1].astype(np.float32), clip_a.flow_fw[t], cv2.INTER_NEAREST)
        assert (inst[v] == clip_a.instances[t][v]).mean() >= 0.99


def test_forward_backward_consistency(clip_a):
    """flow_bw sampled where flow_fw lands is minus flow_fw (round trip < 0.05 px)."""
    for t in range(len(clip_a) - 1):
        fw, bw = clip_a.flow_fw[t], clip_a.flow_bw[t]
        back = _warp(bw, fw)  # bw at p + fw(p)
        ok = clip_a.valid_fw[t] & ~_near_boundary(clip_a.instances[t] * 64 + clip_a.labels[t], 2)
        ok &= _warp(clip_a.valid_bw[t].astype(np.float32), fw, cv2.INTER_NEAREST) > 0
        roundtrip = np.linalg.norm(fw + back, axis=-1)[ok]
        assert np.median(roundtrip) < 0.01 and (roundtrip < 0.05).mean() > 0.97


def test_motion_and_occlusion(clip_a):
    mag = np.linalg.norm(clip_a.flow_fw, axis=-1)
    assert mag.mean() > 1.0 and mag.max() > 8.0         # ego-motion with perspective expansion
    H, W = MEDIUM
    interior = np.zeros((H, W), bool)
    interior[4:-4, 4:-4] = True
    # occluded points: land inside the next frame but are not visible there
    for t in range(len(clip_a) - 1):
        f = clip_a.flow_fw[t]
        gx, gy = _grid(H, W)
        lands_inside = (gx + f[..., 0] >= 1) & (gx + f[..., 0] < W - 1) & (gy + f[..., 1] >= 1) & \
            (gy + f[..., 1] < H - 1)
        occluded = lands_inside & interior & ~clip_a.valid_fw[t]
        assert occluded.sum() > 10

def test_objects_move_independently(world_a, clip_a):
    """On moving objects the flow differs from the flow the same 3D point would have if it
    were static (ego-motion only) -- independent motion, not just parallax."""
    import dataclasses
    scene = world_a.scene(0, 8)
    moving = {o.sid for o in scene.objects if o.vx or o.vz}
    assert moving
    r = world_a.renderer
    a, b = r.render(scene, 2), r.render(scene, 3)
    flow, _ = r.flow(scene, a, 2, b, 3)
    assert np.array_equal(flow, clip_a.flow_fw[2])
    ego_only, _ = r.flow(scene, dataclasses.replace(a, mov_idx=None, mov_v=None), 2, b, 3)
    on_moving = np.isin(a.sid, list(moving))
    assert on_moving.sum() > 20
    diff = np.linalg.norm(flow - ego_only, axis=-1)
    assert np.median(diff[on_moving]) > 0.2 and diff[~on_moving].max() < 1e-4


def test_clip_frames_match_iterator(world_a):
    recs = list(world_a.iter_clip(2, length=3))
    clip = world_a.clip(2, length=3)
    assert [r.t for r in recs] == [0, 1, 2] and recs[-1].flow_fw is None
    assert np.array_equal(recs[1].frame, clip.frames[1])
    assert np.array_equal(recs[0].flow_fw, clip.flow_fw[0])
    assert np.array_equal(world_a.frames(2, [1], length=3)[0].label, clip.labels[1])


# --- content statistics -----------------------------------------------------------------------------
def test_all_19_classes_appear(survey):
    hist, first_seen, n = survey
    missing = [CITYSCAPES_CLASSES[c] for c in range(19) if c not in first_seen]
    assert not missing, f"classes never rendered in {n} clips: {missing}"


def test_class_frequencies_long_tailed(survey):
    hist = survey[0][:19]
    p = hist / hist.sum()
    order = np.argsort(-p)
    assert C["road"] in order[:3]
    top6 = {CITYSCAPES_CLASSES[i] for i in order[:6]}
    assert {"road", "building", "vegetation"} <= top6
    for rare in ("train", "motorcycle", "rider"):
        assert p[C[rare]] < 0.01 and p[C[rare]] < p[C["car"]] / 5, rare
    assert p[C["pole"]] > 0.002 and p[C["person"]] > 0.002   # thin and small things exist


def test_domains_differ():
    a = [SyntheticWorld("city_a", SMALL).frames(i, [10])[0] for i in range(4)]
    b = [SyntheticWorld("city_b", SMALL).frames(i, [10])[0] for i in range(4)]
    mean = lambda rs: np.mean([r.frame.reshape(-1, 3).mean(0) for r in rs], 0)  # noqa: E731
    assert np.abs(mean(a) - mean(b)).max() > 10
    hist = lambda rs: sum(np.bincount(r.label.ravel(), minlength=256)[:19] for r in rs)  # noqa: E731
    ha, hb = hist(a) / hist(a).sum(), hist(b) / hist(b).sum()
    assert np.abs(ha - hb).sum() > 0.1
    assert set(DOMAINS) >= {"city_a", "city_b", "city_c", "city_fine"}


# --- fine labels ------------------------------------------------------------------------------------
def test_fine_label_set_maps_back_exactly():
    assert len(FINE_CLASSES) >= 30 and len(set(FINE_CLASSES)) == len(FINE_CLASSES)
    assert set(FINE_TO_CITYSCAPES) == set(FINE_CLASSES)
    assert set(FINE_TO_TRAINID[: len(FINE_CLASSES)].tolist()) == set(range(19))
    split = {c for c in CITYSCAPES_CLASSES if list(FINE_TO_CITYSCAPES.values()).count(c) > 1}
    assert {"car", "vegetation", "traffic sign"} <= split
    clip = SyntheticWorld("city_fine", SMALL).clip(0, length=3, flow=False)
    assert clip.fine_labels is not None and clip.fine_labels.dtype == np.uint8
    assert np.array_equal(FINE_TO_TRAINID[clip.fine_labels], clip.labels)
    assert len(np.unique(clip.fine_labels)) > len(np.unique(clip.labels))
    plain = SyntheticWorld("city_a", SMALL, fine_labels=True).clip(0, length=2, flow=False)
    assert np.array_equal(FINE_TO_TRAINID[plain.fine_labels], plain.labels)


# --- annotation -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip30():
    return SyntheticWorld("city_a", MEDIUM).clip(4, length=30, flow=False)


def test_annotate_cityscapes_style_is_frame_19(clip30):
    ann = annotate(clip30, "cityscapes", noise_px=0)
    assert ann.indices.tolist() == [19]
    assert np.array_equal(ann.labels[0], clip30.labels[19]) and np.array_equal(ann.clean[0], clip30.labels[19])
    assert np.array_equal(ann.frames[0], clip30.frames[19])
    assert labelled_indices(90, "camvid").tolist() == [15, 45, 75]
    assert labelled_indices(61, "camvid", offset=0).tolist() == [0, 30, 60]
    with pytest.raises(ValueError, match="length"):
        labelled_indices(10, "cityscapes")
    with pytest.raises(ValueError, match="style"):
        labelled_indices(30, "kitti")


def test_boundary_noise_only_near_boundaries(clip30):
    r = 3
    ann = annotate(clip30, "cityscapes", noise_px=r, seed=1)
    clean, noisy = clip30.labels[19], ann.labels[0]
    changed = noisy != clean
    assert changed.mean() > 0.005                      # the annotator is really noisy ...
    assert not (changed & ~_near_boundary(clean, r + 1)).any()  # ... but only at boundaries
    assert np.array_equal(annotate(clip30, "cityscapes", noise_px=r, seed=1).labels, ann.labels)
    assert not np.array_equal(annotate(clip30, "cityscapes", noise_px=r, seed=2).labels, ann.labels)


def test_coarse_annotation_leaves_unlabelled_gaps(clip30):
    ann = annotate(clip30, "cityscapes", noise_px=0, coarse=True)
    clean, coarse = clip30.labels[19], ann.labels[0]
    unlabelled = (coarse == IGNORE_INDEX) & (clean != IGNORE_INDEX)
    assert unlabelled.mean() > 0.05
    lab = coarse != IGNORE_INDEX
    assert lab.mean() > 0.4 and (coarse[lab] == clean[lab]).mean() > 0.97
    square = np.full((40, 40), 255, np.uint8)
    square[5:35, 5:35] = 3
    out = coarse_polygons(square, eps=2.0)
    assert (out[5:35, 5:35] == 3).mean() > 0.6 and (out[:5] == 255).all()


# --- export -----------------------------------------------------------------------------------------
def test_export_writes_exact_cityscapes_layout(tmp_path):
    world = SyntheticWorld("city_a", SMALL)
    root = export(world, tmp_path / "cs", splits={"train": 1, "val": 1}, flow=True, coarse=True,
                  progress=False)
    city = "citya"
    for split, seq in (("train", 0), ("val", 1)):
        stem = f"{city}_{seq:06d}_000019"
        img = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
        gt = root / "gtFine" / split / city
        assert img.is_file()
        ids = cv2.imread(str(gt / f"{stem}_gtFine_labelIds.png"), cv2.IMREAD_UNCHANGED)
        train = cv2.imread(str(gt / f"{stem}_gtFine_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(gt / f"{stem}_gtFine_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint8 and inst.dtype == np.uint16 and ids.shape == SMALL
        assert set(np.unique(ids).tolist()) <= set(CITYSCAPES_ID_TO_TRAINID)
        decoded = np.vectorize(CITYSCAPES_ID_TO_TRAINID.get)(ids)
        clip = world.clip(seq, 30, flow=False)
        assert np.array_equal(decoded, clip.labels[19]) and np.array_equal(train, clip.labels[19])
        assert np.array_equal(cv2.imread(str(img))[..., ::-1], clip.frames[19])
        big = inst >= 1000
        assert np.array_equal(inst[~big], ids[~big]) and np.array_equal(inst[big] // 1000, ids[big])
        assert (gt.parent.parent.parent / "gtCoarse" / split / city / f"{stem}_gtCoarse_labelIds.png").is_file()
        seq_dir = root / "leftImg8bit_sequence" / split / city
        assert sorted(p.name for p in seq_dir.iterdir()) == \
            [f"{city}_{seq:06d}_{f:06d}_leftImg8bit.png" for f in range(30)]
        fw = np.load(root / "flow_sequence" / split / city / f"{city}_{seq:06d}_000004_flowFw.npy")
        assert fw.shape == (*SMALL, 2) and fw.dtype == np.float32
    stamp = json.loads((root / "synthetic_world.json").read_text())
    assert stamp["world"]["domain"] == "city_a"
    # idempotent: the same call does nothing; other parameters need overwrite=True
    mtime = (root / "synthetic_world.json").stat().st_mtime_ns
    export(world, root, splits={"train": 1, "val": 1}, flow=True, coarse=True, progress=False)
    assert (root / "synthetic_world.json").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="overwrite"):
        export(world, root, splits={"train": 2}, progress=False)
    assert not list(tmp_path.glob(".cs.tmp-*"))


def test_rendering_only_the_labelled_frame_matches_the_full_clip():
    """``clip(only=[19])`` (the export's fast path) renders frame 19 exactly as the full clip does."""
    w = SyntheticWorld("city_b", size=(48, 96), seed=3)
    full = w.clip(2, length=20, flow=False)
    part = w.clip(2, length=20, only=[19])
    np.testing.assert_array_equal(part.frames[19], full.frames[19])
    np.testing.assert_array_equal(part.labels[19], full.labels[19])
    np.testing.assert_array_equal(part.instances[19], full.instances[19])
    assert (part.labels[0] == 255).all() and part.flow_fw is None
