"""The DUC/HDC training-patch schemes (Sec. 4.1): tile origins, jittered centres, counts,
boundaries, and image/label alignment, on hand-checked cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from paperlib.data.patches import (FixedTiles, JitteredPatches, WholeImage, build_patch_dataset, crop_padded,
                                   jitter_centres, protocol_sizes, tile_origins)


class RawSet(torch.utils.data.Dataset):
    """Raw items whose label encodes the pixel position (label = (y * W + x) % 250) and whose
    image's first channel is the row, second the column: alignment is checkable everywhere."""

    num_classes, class_names, ignore_index, transform = 19, tuple("c%d" % i for i in range(19)), 255, None

    def __init__(self, n=2, size=(16, 32)):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = self.size
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        img = torch.stack([yy, xx, torch.full_like(yy, i)]).to(torch.uint8)
        return {"image": tv_tensors.Image(img), "label": tv_tensors.Mask(((yy * w + xx) % 250).long()),
                "index": i, "name": f"im{i}"}

    def fingerprint(self):
        return "raw"


def test_paper_sizes_and_scaling():
    assert protocol_sizes((1024, 2048)) == {"tile": 800, "crop": 544, "patch": 880, "jitter": 120}
    assert protocol_sizes((128, 256)) == {"tile": 100, "crop": 68, "patch": 110, "jitter": 15}
    assert protocol_sizes((128, 256), multiple=16) == {"tile": 96, "crop": 64, "patch": 112, "jitter": 15}
    with pytest.raises(ValueError, match="multiple"):
        protocol_sizes((128, 256), multiple=0)


def test_tile_origins_at_paper_size():
    o = tile_origins((1024, 2048), 800)
    assert len(o) == 12
    assert sorted({y for y, _ in o}) == [0, 224]
    assert sorted({x for _, x in o}) == [0, 250, 499, 749, 998, 1248]  # 1248 = 2048 - 800: flush right
    cover = np.zeros((1024, 2048), bool)
    for y, x in o:
        cover[y:y + 800, x:x + 800] = True
    assert cover.all()  # "all regions in an image can be visited"
    with pytest.raises(ValueError, match="larger than the image"):
        tile_origins((100, 200), 150)
    with pytest.raises(ValueError, match="cannot cover"):
        tile_origins((100, 200), 30, grid=(2, 6))


def test_jitter_centres_match_authors_list():
    assert jitter_centres((1024, 2048)) == [(512, 256 * i) for i in range(1, 8)]
    assert jitter_centres((128, 256)) == [(64, 32 * i) for i in range(1, 8)]
    with pytest.raises(ValueError, match="n must"):
        jitter_centres((128, 256), 0)


def test_crop_padded_aligns_and_pads():
    item = RawSet(1, (6, 8))[0]
    out = crop_padded(item, -2, 5, 4, 5)  # 2 rows above the frame, 2 columns right of it
    lab, img = out["label"], out["image"]
    assert lab.shape == (4, 5) and img.shape == (3, 4, 5)
    assert (lab[:2] == 255).all() and (lab[:, 3:] == 255).all()
    assert lab[2, 0] == 0 * 8 + 5 and lab[3, 2] == 1 * 8 + 7
    assert tuple(img[:, 0, 0].tolist()) == (124, 116, 104)  # mean-colour padding
    assert img[0, 3, 2] == 1 and img[1, 3, 2] == 7             # image row/col = label's pixel
    with pytest.raises(ValueError, match="outside"):
        crop_padded(item, 10, 0, 2, 2)


def test_fixed_tiles_count_and_boxes():
    ds = FixedTiles(RawSet(2, (16, 32)), tile=10)
    assert len(ds) == 24
    it = ds[12 + 11]  # image 1, last tile: bottom-right corner
    assert it["index"] == 1 and it["patch"] == 11
    assert it["label"].shape == (10, 10)
    assert int(it["image"][0, 0, 0]) == 6 and int(it["image"][1, 0, 0]) == 22   # origin (16-10, 32-10)
    assert int(it["label"][-1, -1]) == (15 * 32 + 31) % 250
    assert (it["label"] != 255).all()


def test_jittered_patches_range_and_alignment():
    base = RawSet(1, (128, 256))
    ds = JitteredPatches(base, patch=110, jitter=15)
    assert len(ds) == 7
    torch.manual_seed(0)
    seen = {p: [] for p in range(7)}
    for _ in range(25):
        for p in range(7):
            it = ds[p]
            lab = it["label"]
            assert lab.shape == (110, 110)
            inside = lab != 255
            ys, xs = torch.nonzero(inside, as_tuple=True)
            # the pixel at patch (a, b) is image pixel (y0 + a, x0 + b): read y0, x0 off the image channels
            y0 = int(it["image"][0][inside][0]) - int(ys[0])
            x0 = int(it["image"][1][inside][0]) - int(xs[0])
            assert (lab[inside] == ((ys + y0) * 256 + xs + x0) % 250).all()
            seen[p].append((y0 + 55 - 64, x0 + 55 - 32 * (p + 1)))  # jitter of the centre
    for p, d in seen.items():
        dy, dx = np.array(d).T
        assert dy.min() >= -15 and dy.max() <= 15 and dx.min() >= -15 and dx.max() <= 15
        assert dy.std() > 3 and dx.std() > 3  # it does jitter
    # the first patch reaches past the left border: padded with ignore
    torch.manual_seed(1)
    assert (ds[0]["label"][:, 0] == 255).all()


def test_jitter_zero_is_deterministic_and_scales():
    ds = JitteredPatches(RawSet(1, (128, 256)), patch=32, jitter=0)
    a, b = ds[3], ds[3]
    assert torch.equal(a["label"], b["label"])
    assert int(a["image"][0, 16, 16]) == 64 and int(a["image"][1, 16, 16]) == 128  # centre (64, 4 * 32)
    ds2 = JitteredPatches(RawSet(1, (128, 256)), patch=32, jitter=0, scales=(0.5,))
    it = ds2[3]  # the centre scales with the image: (32, 64) of the half-size frame
    assert it["label"].shape == (32, 32) and int(it["label"][16, 16]) != 255


def test_build_patch_dataset_schemes():
    base = RawSet(2, (128, 256))
    torch.manual_seed(0)
    for scheme, n, side in (("random", 1, 64), ("fixed12", 12, 64), ("jitter7", 7, 112)):
        ds = build_patch_dataset(base, scheme, multiple=16)
        assert len(ds) == 2 * n
        it = ds[len(ds) - 1]
        assert it["image"].dtype == torch.float32 and tuple(it["label"].shape) == (side, side)
        assert ds.num_classes == 19 and ds.fingerprint() == "raw"  # forwarded to the base
    half = build_patch_dataset(base, "fixed12", multiple=16, prescale=0.5)  # 64x128 frames: tile 48, crop 32
    assert tuple(half[0]["label"].shape) == (32, 32) and half.raw(0)["label"].shape == (64, 128)
    with pytest.raises(ValueError, match="unknown patch scheme"):
        build_patch_dataset(base, "tiles")


def test_patch_dataset_rejects_transformed_base_and_bad_index():
    base = RawSet(1)
    base.transform = lambda x: x
    with pytest.raises(ValueError, match="transform=None"):
        WholeImage(base)
    ds = WholeImage(RawSet(1))
    with pytest.raises(IndexError):
        ds[1]
    with pytest.raises(TypeError, match="int index"):
        ds[(0, 1, 2)]
