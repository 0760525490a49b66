"""Joint transforms: geometry keeps image, label and flow aligned; crops honour centroids."""
import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from paperlib.data import transforms as T


def make_item(h=8, w=12, flow=(3.0, -2.0), seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    lab = torch.randint(0, 19, (h, w), generator=g)
    fl = torch.empty(2, h, w)
    fl[0], fl[1] = flow
    return {"image": tv_tensors.Image(img), "label": tv_tensors.Mask(lab), "flow": fl,
            "index": 7, "name": "x"}


def test_hflip_maps_label_and_negates_flow_x():
    item = make_item()
    item["flow"][0] = torch.arange(12.0)  # x-flow varies along x: flip must also reverse it
    out = T.hflip_item(item)
    assert torch.equal(out["label"], item["label"].flip(-1))
    assert torch.equal(out["image"], item["image"].flip(-1))
    assert torch.equal(out["flow"][0], -torch.arange(12.0).flip(-1).expand(8, 12))
    assert torch.equal(out["flow"][1], item["flow"][1])
    assert out["index"] == 7 and out["name"] == "x"


def test_hflip_flow_consistency_with_motion():
    # A point at x moving +3 px; after flipping it sits at w-1-x and moves -3 px: the flipped
    # destination equals the flip of the original destination.
    item = make_item(flow=(3.0, 0.0))
    out = T.hflip_item(item)
    w = 12
    x = 2
    dest = x + item["flow"][0, 0, x].item()
    xf = w - 1 - x
    assert xf + out["flow"][0, 0, xf].item() == pytest.approx(w - 1 - dest)


def test_random_flip_probability_and_determinism():
    item = make_item()
    assert torch.equal(T.RandomHorizontalFlip(p=0.0)(item)["label"], item["label"])
    assert torch.equal(T.RandomHorizontalFlip(p=1.0)(item)["label"], item["label"].flip(-1))
    pipe = T.build_train_transform(6, scale=(0.5, 2.0), blur=0.5, jitter=0.25)
    torch.manual_seed(3)
    a = pipe(make_item())
    torch.manual_seed(3)
    b = pipe(make_item())
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert torch.equal(a["flow"], b["flow"])


@pytest.mark.parametrize("s", [0.5, 2.0, 1.5])
def test_scale_multiplies_flow_and_keeps_label_ids(s):
    item = make_item(h=8, w=12, flow=(3.0, -2.0))
    out = T.scale_item(item, s)
    nh, nw = round(8 * s), round(12 * s)
    assert out["image"].shape == (3, nh, nw) and out["label"].shape == (nh, nw)
    assert torch.allclose(out["flow"][0], torch.full((nh, nw), 3.0 * nw / 12))
    assert torch.allclose(out["flow"][1], torch.full((nh, nw), -2.0 * nh / 8))
    # nearest neighbour: no blended ids
    assert set(out["label"].unique().tolist()) <= set(item["label"].unique().tolist())


def test_scale_doubles_label_blocks_exactly():
    item = make_item(h=4, w=4)
    out = T.scale_item(item, 2.0)
    expect = item["label"].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(out["label"], expect)


def test_random_scale_range():
    torch.manual_seed(0)
    t = T.RandomScale(0.5, 2.0)
    sizes = {t(make_item(h=20, w=20))["image"].shape[-1] for _ in range(30)}
    assert min(sizes) >= 10 and max(sizes) <= 40 and len(sizes) > 5


def test_crop_pads_with_ignore_and_zero():
    item = make_item(h=5, w=6)
    out = T.RandomCrop((9, 10))(item)
    assert out["image"].shape == (3, 9, 10) and out["label"].shape == (9, 10)
    # padding goes bottom/right: the original occupies the top-left corner
    assert torch.equal(out["label"][:5, :6], item["label"])
    assert (out["label"][5:] == 255).all() and (out["label"][:, 6:] == 255).all()
    assert (out["image"][:, 5:] == 0).all() and (out["image"][:, :, 6:] == 0).all()
    assert (out["flow"][:, 5:] == 0).all()


def test_crop_is_a_window_of_the_input():
    torch.manual_seed(1)
    item = make_item(h=30, w=40)
    out = T.RandomCrop(10)(item)
    lab = item["label"].numpy()
    win = out["label"].numpy()
    hits = [(y, x) for y in range(21) for x in range(31) if np.array_equal(lab[y:y + 10, x:x + 10], win)]
    assert hits, "crop is not a window of the label"
    y, x = hits[0]
    assert torch.equal(out["image"], item["image"][:, y:y + 10, x:x + 10])


def test_centroid_always_inside_crop():
    torch.manual_seed(0)
    h, w, size = 60, 90, (16, 24)
    crop = T.RandomCrop(size, keep_centroid=True)
    rng = np.random.default_rng(0)
    offsets = set()
    for _ in range(500):
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        item = make_item(h=h, w=w)
        item["label"][:] = 0
        item["label"][cy, cx] = 18  # a marker pixel at the centroid
        item["centroid"] = (cy, cx)
        out = crop(item)
        y, x = out["centroid"]
        assert 0 <= y < size[0] and 0 <= x < size[1]
        assert out["label"][y, x] == 18 and (out["label"] == 18).sum() == 1
        offsets.add((cy - y, cx - x))
    assert len(offsets) > 100  # random offsets, not always centred


def test_centroid_survives_full_pipeline():
    torch.manual_seed(0)
    pipe = T.Compose([T.RandomScale(0.5, 2.0), T.RandomCrop(12, keep_centroid=True),
                      T.RandomHorizontalFlip()])
    for _ in range(100):
        item = make_item(h=40, w=50)
        item["label"][:] = 0
        item["label"][30:34, 44:48] = 5  # a small object; centroid at its centre
        item["centroid"] = (31, 45)
        out = pipe(item)
        assert (out["label"] == 5).any()
        y, x = out["centroid"]
        assert out["label"][y, x] == 5


def test_crop_consumes_centroid_by_default():
    item = make_item(h=20, w=20)
    item["centroid"] = (3, 4)
    assert "centroid" not in T.RandomCrop(8)(item)


def test_blur_and_jitter_touch_image_only():
    torch.manual_seed(0)
    item = make_item(h=16, w=16)
    for t in (T.RandomGaussianBlur(p=1.0), T.ColorJitter(0.5, 0.5, 0.5, 0.1)):
        out = t(item)
        assert not torch.equal(out["image"], item["image"])
        assert torch.equal(out["label"], item["label"]) and torch.equal(out["flow"], item["flow"])


def test_train_and_eval_output_types():
    torch.manual_seed(0)
    out = T.build_train_transform((16, 20))(make_item(h=24, w=30))
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, 16, 20)
    assert out["label"].dtype == torch.int64 and out["label"].shape == (16, 20)
    assert out["flow"].dtype == torch.float32 and out["flow"].shape == (2, 16, 20)
    item = make_item()
    ev = T.build_eval_transform()(item)
    mean = torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(T.IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(ev["image"], (item["image"].float() / 255 - mean) / std, atol=1e-6)
    assert torch.equal(ev["label"], item["label"])


def test_bad_parameters():
    with pytest.raises(ValueError, match="RandomCrop size"):
        T.RandomCrop(0)
    with pytest.raises(ValueError, match="min_scale"):
        T.RandomScale(2.0, 0.5)
