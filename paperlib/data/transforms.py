"""Joint transforms for segmentation items (image + label [+ flow] [+ centroid]).

Every transform takes and returns the item dict that ``SegDataset.__getitem__`` builds:

- ``image``: ``tv_tensors.Image`` (3, H, W), uint8 until ``Normalize`` makes it float32
- ``label``: ``tv_tensors.Mask`` int64 (H, W), ``ignore_index`` for void
- ``flow``: optional (2, H, W) float32 optical flow in pixels, x then y
- ``centroid``: optional ``(y, x)``: the crop must contain this pixel (class-uniform / centroid
  sampling, VPLR Sec. 4.1 and CSST Sec. 3.2)
- anything else (``index``, ``name``, ...) passes through untouched.

Geometry is applied to image, label and flow together, so they stay aligned: the label is always
resized with nearest neighbour (ids are never blended), and the flow, a displacement field, is
resized *and* rescaled (a motion of 3 px becomes 6 px when the frame doubles) and has its x
component negated under a horizontal flip. The photometric transforms (blur, colour jitter) touch
the image only. All randomness comes from torch's global generator, so a pipeline is
deterministic under ``torch.manual_seed``.

The augmentation recipe (scale 0.5-2.0, crop, flip, Gaussian blur, colour jitter 0.25) is the one
of NVIDIA/semantic-segmentation that VPLR and CSST train with.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from paperlib.data.base import IGNORE_INDEX

#: ImageNet statistics used by every pretrained backbone in paperlib.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Item = dict


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """``size`` as (h, w) positive ints; ``ValueError`` naming ``name`` otherwise."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if int(h) <= 0 or int(w) <= 0:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return int(h), int(w)


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


def _randint(lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, ()).item())


class Compose:
    """Apply joint transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Item], Item]]):
        self.transforms = list(transforms)

    def __call__(self, item: Item) -> Item:
        for t in self.transforms:
            item = t(item)
        return item

    def __repr__(self) -> str:
        inner = "\n".join(f"  {t!r}" for t in self.transforms)
        return f"{type(self).__name__}(\n{inner}\n)"


class RandomScale:
    """Resize by a factor drawn uniformly from ``[min_scale, max_scale]``.

    Image bilinear (antialiased when shrinking), label nearest, flow bilinear and multiplied by
    the actual per-axis scale; a ``centroid`` moves with the image.
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0):
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"RandomScale needs 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)

    def __call__(self, item: Item) -> Item:
        s = _uniform(self.min_scale, self.max_scale)
        return scale_item(item, s)

    def __repr__(self) -> str:
        return f"RandomScale({self.min_scale}, {self.max_scale})"


def scale_item(item: Item, s: float) -> Item:
    """Resize every spatial entry of ``item`` by factor ``s`` (see ``RandomScale``)."""
    h, w = item["image"].shape[-2:]
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    out = dict(item)
    out["image"] = F.resize(item["image"], [nh, nw], interpolation=v2.InterpolationMode.BILINEAR,
                            antialias=True)
    if "label" in item:
        out["label"] = F.resize(item["label"], [nh, nw], interpolation=v2.InterpolationMode.NEAREST_EXACT)
    sy, sx = nh / h, nw / w
    if "flow" in item:
        flow = F.resize(torch.as_tensor(item["flow"]), [nh, nw],
                        interpolation=v2.InterpolationMode.BILINEAR, antialias=False)
        out["flow"] = flow * torch.tensor([sx, sy], dtype=flow.dtype).view(2, 1, 1)
    if "centroid" in item:
        cy, cx = item["centroid"]
        # the new pixel that contains the old pixel's centre
        out["centroid"] = (min(int((cy + 0.5) * sy), nh - 1), min(int((cx + 0.5) * sx), nw - 1))
    return out


class RandomCrop:
    """Crop ``size`` = (h, w); pad first (image 0, label ``ignore_index``, flow 0) when smaller.

    Padding goes to the bottom/right, so pixel coordinates (and the centroid) are unchanged by
    it. Without a centroid the offset is uniform; with one, it is uniform among the offsets whose
    crop contains the centroid (VPLR Sec. 4.1 / CSST Sec. 3.2: "crop an image patch around each
    centroid"). The centroid is consumed (removed from the item) unless ``keep_centroid``, in
    which case it is moved into crop coordinates.
    """

    def __init__(self, size: int | Sequence[int], ignore_index: int = IGNORE_INDEX, fill: int = 0,
                 keep_centroid: bool = False):
        self.size = _pair(size, "RandomCrop size")
        self.ignore_index, self.fill, self.keep_centroid = ignore_index, fill, keep_centroid

    def __call__(self, item: Item) -> Item:
        item = self._pad(item)
        ch, cw = self.size
        h, w = item["image"].shape[-2:]
        centroid = item.get("centroid")
        y0, x0, kept = crop_offset((h, w), (ch, cw), centroid)
        out = {k: v for k, v in item.items() if k != "centroid"}
        for key in ("image", "label", "flow"):
            if key in item:
                out[key] = F.crop(item[key], y0, x0, ch, cw)
        if kept is not None and self.keep_centroid:
            out["centroid"] = kept
        return out

    def _pad(self, item: Item) -> Item:
        h, w = item["image"].shape[-2:]
        ph, pw = max(0, self.size[0] - h), max(0, self.size[1] - w)
        if ph == 0 and pw == 0:
            return item
        pad = [0, 0, pw, ph]  # left, top, right, bottom
        out = dict(item)
        out["image"] = F.pad(item["image"], pad, fill=self.fill)
        if "label" in item:
            out["label"] = F.pad(item["label"], pad, fill=self.ignore_index)
        if "flow" in item:
            out["flow"] = torch.nn.functional.pad(torch.as_tensor(item["flow"]), (0, pw, 0, ph))
        return out

    def __repr__(self) -> str:
        return f"RandomCrop({self.size}, ignore_index={self.ignore_index})"


def crop_offset(frame: tuple[int, int], crop: tuple[int, int], centroid=None) -> tuple[int, int, tuple | None]:
    """``(y0, x0, centroid in crop coordinates or None)`` of a random ``crop`` of a ``frame``
    (both (h, w), the frame already padded to at least the crop): uniform, or uniform among the
    offsets whose crop contains the ``centroid`` (clamped into the frame)."""
    (h, w), (ch, cw) = frame, crop
    if centroid is None:
        return _randint(0, h - ch), _randint(0, w - cw), None
    cy, cx = (min(max(int(c), 0), n - 1) for c, n in zip(centroid, (h, w)))
    y0 = _randint(max(0, cy - ch + 1), min(cy, h - ch))
    x0 = _randint(max(0, cx - cw + 1), min(cx, w - cw))
    return y0, x0, (cy - y0, cx - x0)


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``; flow x is flipped *and* negated."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, item: Item) -> Item:
        if torch.rand(()).item() >= self.p:
            return item
        return hflip_item(item)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def hflip_item(item: Item) -> Item:
    """Deterministic horizontal flip of every spatial entry of ``item``."""
    out = dict(item)
    out["image"] = F.horizontal_flip(item["image"])
    if "label" in item:
        out["label"] = F.horizontal_flip(item["label"])
    if "flow" in item:
        flow = torch.as_tensor(item["flow"]).flip(-1)
        out["flow"] = flow * torch.tensor([-1.0, 1.0], dtype=flow.dtype).view(2, 1, 1)
    if "centroid" in item:
        cy, cx = item["centroid"]
        out["centroid"] = (cy, item["image"].shape[-1] - 1 - cx)
    return out


class RandomGaussianBlur:
    """Blur the image with probability ``p``, sigma uniform in ``sigma`` (image only).

    NVIDIA's recipe blurs with radius 0.15 + U(0, 1.15); the default sigma range matches it.
    """

    def __init__(self, p: float = 0.5, sigma: tuple[float, float] = (0.15, 1.3)):
        if not 0 <= p <= 1 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"RandomGaussianBlur needs p in [0, 1] and 0 < sigma[0] <= sigma[1], "
                             f"got p={p}, sigma={sigma}")
        self.p, self.sigma = p, (float(sigma[0]), float(sigma[1]))

    def __call__(self, item: Item) -> Item:
        if torch.rand(()).item() >= self.p:
            return item
        s = _uniform(*self.sigma)
        k = 2 * math.ceil(3 * s) + 1
        return {**item, "image": F.gaussian_blur(item["image"], [k, k], [s, s])}

    def __repr__(self) -> str:
        return f"RandomGaussianBlur(p={self.p}, sigma={self.sigma})"


class ColorJitter:
    """torchvision's ``ColorJitter`` on the image only (label and flow are untouched)."""

    def __init__(self, brightness: float = 0.25, contrast: float = 0.25, saturation: float = 0.25,
                 hue: float = 0.0):
        self.jitter = v2.ColorJitter(brightness=brightness, contrast=contrast,
                                     saturation=saturation, hue=hue)

    def __call__(self, item: Item) -> Item:
        return {**item, "image": self.jitter(item["image"])}

    def __repr__(self) -> str:
        return repr(self.jitter)


class Normalize:
    """uint8 image -> float32 in [0, 1] -> (x - mean) / std; label stays int64."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, item: Item) -> Item:
        img = F.to_dtype(item["image"], torch.float32, scale=True)
        out = {**item, "image": F.normalize(img, self.mean, self.std)}
        if "label" in item:
            out["label"] = tv_tensors.Mask(item["label"].long())
        if "flow" in item:
            out["flow"] = torch.as_tensor(item["flow"], dtype=torch.float32)
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def build_train_transform(crop_size: int | Sequence[int], scale: tuple[float, float] | None = (0.5, 2.0),
                          flip: bool = True, blur: float = 0.5, jitter: float = 0.25,
                          ignore_index: int = IGNORE_INDEX, fast: bool = True) -> Callable[[Item], Item]:
    """The training pipeline: scale -> crop (around the centroid if any) -> flip -> blur -> jitter
    -> normalise.

    ``blur`` is the probability of a Gaussian blur (0 disables it), ``jitter`` the strength of
    brightness/contrast/saturation jitter (0 disables it), ``scale=None`` disables scaling.
    ``fast=True`` (default) returns ``TrainTransform``, the same recipe in one pass that crops
    before it scales; ``fast=False`` the step-by-step ``Compose`` it is checked against.
    """
    ts: list[Callable] = []
    if scale is not None:
        ts.append(RandomScale(*scale))
    crop = RandomCrop(crop_size, ignore_index=ignore_index)
    ts.append(crop)
    if flip:
        ts.append(RandomHorizontalFlip())
    if blur:
        ts.append(RandomGaussianBlur(p=float(blur)))
    if jitter:
        ts.append(ColorJitter(jitter, jitter, jitter))
    ts.append(Normalize())
    reference = Compose(ts)
    return TrainTransform(reference) if fast else reference


def build_eval_transform() -> Compose:
    """The evaluation pipeline: full image, normalised (sliding windows happen in the engine)."""
    return Compose([Normalize()])


# =============================================================================================
# The same recipe in one pass
# =============================================================================================
def _nearest_exact(in_size: int, out_size: int, start: int, count: int) -> np.ndarray:
    """Source index of output pixels ``start ..`` under torch's ``nearest-exact`` resize."""
    scale = np.float32(in_size) / np.float32(out_size)
    i = np.arange(start, start + count, dtype=np.float32)
    return np.minimum(np.floor((i + np.float32(0.5)) * scale).astype(np.int64), in_size - 1)


def _blend(x: np.ndarray, other, ratio: float) -> np.ndarray:
    """torchvision's ``_blend`` on uint8 values held in float32: ``x * r + other * (1 - r)``,
    clamped to [0, 255] and truncated to whole levels."""
    out = x * np.float32(ratio)
    out += np.float32(1.0 - ratio) * (other if isinstance(other, np.ndarray) else np.float32(other))
    return np.floor(np.clip(out, 0, 255, out=out), out=out)


_GRAY = np.float32([[0.2989, 0.587, 0.114]])


def _gray_floor(f: np.ndarray) -> np.ndarray:
    """torchvision's grey level of an RGB image held in float32, floored: (H, W)."""
    return np.floor(cv2.transform(f, _GRAY))


class TrainTransform:
    """The training recipe of ``build_train_transform`` in one pass over an HWC uint8 array.

    It draws exactly what the step-by-step ``Compose`` (``reference``) draws, in the same order,
    from torch's global generator -- scale, crop offset (around the centroid if any), flip, blur
    and its sigma, the jitter order and factors -- so a seed gives the same samples, crops and
    flips. What differs is the order of work: it **crops before it scales**, resampling only the
    source window the crop sees instead of the whole frame at up to 2x, and stays in uint8 until
    the normalisation, which is one table lookup per channel. Labels are resampled with the very
    indices torch's nearest-exact resize uses (identical); images agree with the reference to
    about one grey level (bilinear upscaling at exact sub-pixel positions, OpenCV's fixed-point
    weights; downscaling (s < 1) takes torch's antialiased resize of the frame, as the reference
    does). Items with a flow field, or transforms that are not the standard recipe, go through
    ``reference`` unchanged.

    ``SegDataset`` hands it the decoded HWC array itself (``reads_hwc``); a CHW tensor works too.
    """

    reads_hwc = True

    def __init__(self, reference: Compose):
        self.reference = reference
        parts = {type(t): t for t in reference.transforms}
        self.crop: RandomCrop = parts[RandomCrop]
        self.scale: RandomScale | None = parts.get(RandomScale)
        self.flip: RandomHorizontalFlip | None = parts.get(RandomHorizontalFlip)
        self.blur: RandomGaussianBlur | None = parts.get(RandomGaussianBlur)
        self.jitter: ColorJitter | None = parts.get(ColorJitter)
        norm: Normalize = parts[Normalize]
        levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256)
        # (1, 256, 3): uint8 level -> normalised float32 per channel, by the reference's own ops
        self._norm_lut = norm({"image": levels})["image"].reshape(3, 256).T[None].numpy().copy()

    def __call__(self, item: Item) -> Item:
        img = item["image"]
        if "flow" in item:
            if isinstance(img, np.ndarray):
                item = {**item, "image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous())}
            return self.reference(item)
        img = (np.ascontiguousarray(img.permute(1, 2, 0).numpy()) if isinstance(img, torch.Tensor)
               else np.asarray(img))
        label = item.get("label")
        if label is not None and not isinstance(label, np.ndarray):
            label = torch.as_tensor(label)
        img, label, centroid = self._scale_crop(img, label, item.get("centroid"))
        if self.flip is not None and torch.rand(()).item() < self.flip.p:
            img = cv2.flip(np.ascontiguousarray(img), 1)
            if isinstance(label, np.ndarray):
                label = cv2.flip(label, 1) if label.ndim == 2 else np.ascontiguousarray(label[..., ::-1])
            elif label is not None:
                label = label.flip(-1)
            if centroid is not None:
                centroid = (centroid[0], img.shape[1] - 1 - centroid[1])
        if self.blur is not None and torch.rand(()).item() < self.blur.p:
            s = _uniform(*self.blur.sigma)
            k = 2 * math.ceil(3 * s) + 1
            t = np.linspace(-(k - 1) / 2, (k - 1) / 2, k)
            g = np.exp(-0.5 * (t / s) ** 2)
            g = (g / g.sum()).astype(np.float32)
            img = cv2.sepFilter2D(np.ascontiguousarray(img), -1, g, g, borderType=cv2.BORDER_REFLECT_101)
        if self.jitter is not None:
            img = self._jitter(np.ascontiguousarray(img))
        out = {k: v for k, v in item.items() if k != "centroid"}
        norm = cv2.LUT(np.ascontiguousarray(img), self._norm_lut)
        out["image"] = tv_tensors.Image(torch.from_numpy(norm).permute(2, 0, 1).contiguous())
        if label is not None:
            label = torch.from_numpy(np.ascontiguousarray(label)) if isinstance(label, np.ndarray) else label
            out["label"] = tv_tensors.Mask(label.long())
        if centroid is not None and self.crop.keep_centroid:
            out["centroid"] = centroid
        return out

    def _scale_crop(self, img: np.ndarray, label, centroid):
        h, w = img.shape[:2]
        s = _uniform(self.scale.min_scale, self.scale.max_scale) if self.scale is not None else 1.0
        nh, nw = (max(1, round(h * s)), max(1, round(w * s))) if self.scale is not None else (h, w)
        sy, sx = nh / h, nw / w
        if centroid is not None and self.scale is not None:
            cy, cx = centroid
            centroid = (min(int((cy + 0.5) * sy), nh - 1), min(int((cx + 0.5) * sx), nw - 1))
        ch, cw = self.crop.size
        # the padded frame the reference crops from
        y0, x0, centroid = crop_offset((max(nh, ch), max(nw, cw)), (ch, cw), centroid)
        vh, vw = min(ch, nh - y0), min(cw, nw - x0)  # rows / columns inside the scaled frame
        if (nh, nw) == (h, w):
            crop = img[y0:y0 + vh, x0:x0 + vw]
        elif nh >= h and nw >= w:  # upscaling: bilinear at the crop's exact source positions
            ry, rx = h / nh, w / nw
            m = np.float32([[rx, 0, (x0 + 0.5) * rx - 0.5], [0, ry, (y0 + 0.5) * ry - 0.5]])
            crop = cv2.warpAffine(img, m, (vw, vh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
        else:  # downscaling (the output is smaller than the frame): torch's antialiased resize
            # (on the channels-last view of the HWC array: torch's fast uint8 kernel, same bytes)
            full = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(nh, nw),
                                                   mode="bilinear", antialias=True, align_corners=False)
            crop = full[0, :, y0:y0 + vh, x0:x0 + vw].permute(1, 2, 0).numpy()
        if crop.ndim == 2:
            crop = crop[..., None]
        if label is not None:
            iy, ix = _nearest_exact(h, nh, y0, vh), _nearest_exact(w, nw, x0, vw)
            label = label[..., iy, :][..., ix]
        if (vh, vw) != (ch, cw):
            crop = np.pad(crop, ((0, ch - vh), (0, cw - vw), (0, 0)), constant_values=self.crop.fill)
            if isinstance(label, np.ndarray):
                pad = [(0, 0)] * (label.ndim - 2) + [(0, ch - vh), (0, cw - vw)]
                label = np.pad(label, pad, constant_values=self.crop.ignore_index)
            elif label is not None:
                label = torch.nn.functional.pad(label, (0, cw - vw, 0, ch - vh), value=self.crop.ignore_index)
        return crop, label, centroid

    def _jitter(self, img: np.ndarray) -> np.ndarray:
        """torchvision's ``ColorJitter`` kernels on uint8: each step blends, clamps to [0, 255]
        and truncates to whole levels, as its uint8 path does. Brightness and contrast are
        functions of the level alone (given the image's mean grey), so each is one table lookup."""
        p = self.jitter.jitter.make_params([])
        levels = np.arange(256, dtype=np.float32)
        for fn in p["fn_idx"].tolist():
            if fn == 0 and p["brightness_factor"] is not None:
                img = cv2.LUT(img, _blend(levels, 0.0, p["brightness_factor"]).astype(np.uint8))
            elif fn == 1 and p["contrast_factor"] is not None:
                mean = _gray_floor(img.astype(np.float32)).mean(dtype=np.float32)
                img = cv2.LUT(img, _blend(levels, mean, p["contrast_factor"]).astype(np.uint8))
            elif fn == 2 and p["saturation_factor"] is not None:
                x, r = img.astype(np.float32), p["saturation_factor"]
                g = _gray_floor(x)
                blend = cv2.addWeighted(x, r, cv2.merge([g, g, g]), 1.0 - r, 0.0)
                img = np.clip(blend, 0, 255, out=blend).astype(np.uint8)  # truncates, as torch does
            elif fn == 3 and p["hue_factor"] is not None:
                img = F.adjust_hue_image(torch.from_numpy(img).permute(2, 0, 1), p["hue_factor"]
                                         ).permute(1, 2, 0).contiguous().numpy()
        return img

    def __repr__(self) -> str:
        return f"TrainTransform(one pass of {self.reference!r})"
