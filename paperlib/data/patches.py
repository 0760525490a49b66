"""The DUC/HDC paper's training-patch schemes (Sec. 4.1) as dataset wrappers.

Cityscapes frames (1024 x 2048) do not fit in GPU memory, so the paper trains on patches:

* **12-fold fixed tiling** ("Baseline Model"): each image is partitioned into twelve 800 x 800
  patches "with partial overlapping" -- a 2 x 6 grid whose first and last patch touch the image
  borders -- "to make sure all regions in an image can be visited"; the network then trains on
  544 x 544 crops drawn at random inside a patch (:class:`FixedTiles`).
* **7-fold centre-jittered patches** ("Bigger Patch Size"): seven centres per image, at
  ``(y, x) = (512, 256 i)``, ``i = 1..7`` (the text swaps x and y; the authors' list file
  ``get_cityscapes_list.py`` has y = 512, x = 256 i); each 880 x 880 patch has its centre moved
  uniformly at random by up to ``jitter`` pixels per axis, and whatever falls outside the image
  is padded (image with the mean colour, label with ``ignore``). The text says "a 160 x 160
  rectangle" (jitter 80); the authors' released config (``random_bound=120,120``) uses 120, our
  default. The patch itself is the training crop (:class:`JitteredPatches`). The released config
  also draws a random scale (0.5 - 1.5) per patch, scaling the centre with the image: pass
  ``scales``; the default ``(1.0,)`` follows the text.
* **plain random crops** over the whole image, the usual recipe the paper improves on
  (:class:`WholeImage` + a random crop in ``transform``).

Sizes scale with the image: :func:`protocol_sizes` multiplies the paper's pixel sizes by
``H / 1024`` (e.g. 128 x 256 frames: tiles 100, crops 68, 7-fold patches 110, jitter 15) and can
round them to a multiple of the output stride. The grid (2 x 6) and the seven centres stay.

Each wrapper turns a dataset of *raw* items (``SegDataset`` built with ``transform=None``) into
``len(base) * patches_per_image`` items: item ``k`` is patch ``k % n`` of image ``k // n``, cut
out (image and label together, so they stay aligned) and then passed through ``transform``.
They plug into ``paperlib.engine.train(cfg, train_set=...)``; randomness (jitter, the crop in
``transform``) comes from torch's global generator, which the engine seeds per sample.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torchvision import tv_tensors

from .base import IGNORE_INDEX

#: The paper's frame size (Cityscapes), which the pixel sizes below refer to.
PAPER_IMAGE = (1024, 2048)
#: Sec. 4.1 pixel sizes at 1024 x 2048: 12-fold tiles and the crops taken inside them; 7-fold
#: patches and the centre jitter of the authors' config (the text: 80).
PAPER_SIZES = {"tile": 800, "crop": 544, "patch": 880, "jitter": 120}
#: uint8 mean colour (ImageNet mean x 255) used to pad image pixels outside the frame; it
#: normalises to ~0, as the authors' mean-colour padding does after mean subtraction.
MEAN_FILL = (124, 116, 104)
SCHEMES = ("random", "fixed12", "jitter7")


def protocol_sizes(image_size: Sequence[int], multiple: int = 1) -> dict[str, int]:
    """The paper's patch sizes (:data:`PAPER_SIZES`) scaled by ``H / 1024`` for frames of
    ``image_size = (H, W)``; ``tile`` / ``crop`` / ``patch`` are rounded to the nearest positive
    multiple of ``multiple`` (e.g. the output stride), ``jitter`` to an int."""
    h, w = _size(image_size, "image_size")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    s = h / PAPER_IMAGE[0]
    out = {k: max(multiple, int(round(v * s / multiple)) * multiple) for k, v in PAPER_SIZES.items()
           if k != "jitter"}
    out["jitter"] = int(round(PAPER_SIZES["jitter"] * s))
    return out


def tile_origins(image_size: Sequence[int], tile: Sequence[int] | int, grid: Sequence[int] = (2, 6)
                 ) -> list[tuple[int, int]]:
    """Top-left corners ``(y0, x0)`` of a ``grid = (rows, cols)`` tiling with ``tile``-sized
    patches, row-major: evenly spaced, the first flush with the top/left border and the last with
    the bottom/right one, so neighbours overlap and every pixel is covered (Sec. 4.1, 12-fold).
    At 1024 x 2048 with 800 x 800 tiles: y0 in (0, 224), x0 in (0, 250, 499, 749, 998, 1248)."""
    h, w = _size(image_size, "image_size")
    th, tw = _size(tile, "tile")
    rows, cols = _size(grid, "grid")
    if th > h or tw > w:
        raise ValueError(f"tile {th}x{tw} is larger than the image {h}x{w}")
    ys = [round(r * (h - th) / (rows - 1)) if rows > 1 else (h - th) // 2 for r in range(rows)]
    xs = [round(c * (w - tw) / (cols - 1)) if cols > 1 else (w - tw) // 2 for c in range(cols)]
    if rows * th < h or cols * tw < w:
        raise ValueError(f"a {rows}x{cols} grid of {th}x{tw} tiles cannot cover a {h}x{w} image")
    return [(y, x) for y in ys for x in xs]


def jitter_centres(image_size: Sequence[int], n: int = 7) -> list[tuple[int, int]]:
    """The 7-fold scheme's patch centres ``(y, x) = (H / 2, i W / (n + 1))``, ``i = 1..n``:
    (512, 256 i) at 1024 x 2048 (the authors' list file)."""
    h, w = _size(image_size, "image_size")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return [(h // 2, round(i * w / (n + 1))) for i in range(1, n + 1)]


def crop_padded(item: dict, y0: int, x0: int, h: int, w: int, *, fill: Sequence[int] = MEAN_FILL,
                ignore_index: int = IGNORE_INDEX) -> dict:
    """Cut the box ``[y0, y0 + h) x [x0, x0 + w)`` out of ``item``'s image and label (the same box,
    so they stay aligned); pixels outside the frame are ``fill`` (image) / ``ignore_index``
    (label). Other keys pass through; ``flow`` is not supported (raises)."""
    if "flow" in item or "centroid" in item:
        raise ValueError("crop_padded: items with 'flow' or 'centroid' are not supported by the patch schemes")
    image = item["image"]
    H, W = image.shape[-2:]
    ys, ye, xs, xe = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
    if ys >= ye or xs >= xe:
        raise ValueError(f"box (y0={y0}, x0={x0}, {h}x{w}) lies outside the {H}x{W} image")
    img = torch.tensor(list(fill), dtype=image.dtype).view(-1, 1, 1).repeat(1, h, w)
    img[:, ys - y0:ye - y0, xs - x0:xe - x0] = image[:, ys:ye, xs:xe]
    out = dict(item)
    out["image"] = tv_tensors.Image(img)
    if "label" in item:
        lab = torch.full((h, w), ignore_index, dtype=item["label"].dtype)
        lab[ys - y0:ye - y0, xs - x0:xe - x0] = item["label"][ys:ye, xs:xe]
        out["label"] = tv_tensors.Mask(lab)
    return out


class PatchDataset(torch.utils.data.Dataset):
    """Item ``k`` = patch ``k % n`` of image ``k // n`` of ``base`` (raw items), then ``transform``.

    Subclasses set ``patches_per_image`` and implement ``box(p, image_size)`` -> ``(y0, x0, h, w)``.
    Dataset attributes the engine and samplers read (``num_classes``, ``class_names``,
    ``fingerprint()``, ...) are forwarded to ``base``.
    """

    patches_per_image = 1

    def __init__(self, base, transform: Optional[Callable] = None, prescale: float = 1.0):
        if getattr(base, "transform", None) is not None:
            raise ValueError("the patch schemes need raw items: build the base dataset with transform=None "
                             "and give the training transform to the patch dataset")
        if len(base) == 0:
            raise ValueError("the base dataset is empty")
        if not prescale > 0:
            raise ValueError(f"prescale must be > 0, got {prescale!r}")
        self.base, self.transform, self.prescale = base, transform, float(prescale)

    def raw(self, i: int) -> dict:
        """Image ``i`` of the base, resized by ``prescale`` (e.g. 0.5 for CamVid on a CPU)."""
        item = self.base[i]
        if self.prescale != 1.0:
            from .transforms import scale_item
            item = scale_item(item, self.prescale)
        return item

    def __len__(self) -> int:
        return len(self.base) * self.patches_per_image

    def __getattr__(self, name):  # num_classes, class_names, ignore_index, fingerprint, ...
        if name in ("base", "transform", "prescale"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def box(self, p: int, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def __getitem__(self, k):
        if isinstance(k, (tuple, list)):
            raise TypeError("patch datasets take an int index (use sampler='random')")
        k = int(k)
        if not 0 <= k < len(self):
            raise IndexError(f"patch index {k} out of range for {len(self)} patches")
        i, p = divmod(k, self.patches_per_image)
        item = self.raw(i)
        y0, x0, h, w = self.box(p, tuple(item["image"].shape[-2:]))
        item = crop_padded(item, y0, x0, h, w, ignore_index=getattr(self.base, "ignore_index", IGNORE_INDEX))
        item["patch"] = p
        return self.transform(item) if self.transform is not None else item


class WholeImage(PatchDataset):
    """One "patch" per image: the whole frame (``transform`` then takes the usual random crop)."""

    def box(self, p, image_size):
        return (0, 0, *image_size)


class FixedTiles(PatchDataset):
    """The 12-fold scheme (Sec. 4.1): a ``grid`` (2 x 6) of overlapping ``tile``-sized patches
    (:func:`tile_origins`); ``tile=None`` = 800 scaled to the image (:func:`protocol_sizes`)."""

    def __init__(self, base, transform=None, tile: Optional[int | Sequence[int]] = None,
                 grid: Sequence[int] = (2, 6), prescale: float = 1.0):
        super().__init__(base, transform, prescale)
        self.tile, self.grid = tile, tuple(_size(grid, "grid"))
        self.patches_per_image = self.grid[0] * self.grid[1]

    def box(self, p, image_size):
        tile = _size(self.tile, "tile") if self.tile is not None else (protocol_sizes(image_size)["tile"],) * 2
        y0, x0 = tile_origins(image_size, tile, self.grid)[p]
        return (y0, x0, *tile)


class JitteredPatches(PatchDataset):
    """The 7-fold "bigger patch" scheme (Sec. 4.1): ``n`` patches of ``patch`` pixels centred at
    :func:`jitter_centres`, each centre moved by a uniform integer in ``[-jitter, jitter]`` per
    axis (torch's global RNG); parts outside the frame are padded. ``scales``: a factor drawn
    per item (the authors' config: 0.5 .. 1.5) resizes the image, the centre and the jitter first.
    ``None`` sizes = the paper's 880 / 120 scaled to the image (:func:`protocol_sizes`)."""

    def __init__(self, base, transform=None, patch: Optional[int | Sequence[int]] = None,
                 jitter: Optional[int] = None, n: int = 7, scales: Sequence[float] = (1.0,),
                 prescale: float = 1.0):
        super().__init__(base, transform, prescale)
        if jitter is not None and (isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0):
            raise ValueError(f"jitter must be an int >= 0, got {jitter!r}")
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive, got {scales!r}")
        jitter_centres((2, 2), n)  # validates n
        self.patch, self.jitter, self.n, self.scales = patch, jitter, n, tuple(float(s) for s in scales)
        self.patches_per_image = n

    def _sizes(self, image_size):
        sizes = protocol_sizes(image_size)
        patch = _size(self.patch, "patch") if self.patch is not None else (sizes["patch"],) * 2
        return patch, sizes["jitter"] if self.jitter is None else self.jitter

    def box(self, p, image_size, scale: float = 1.0):
        patch, jitter = self._sizes(image_size)
        cy, cx = jitter_centres(image_size, self.n)[p]
        j = round(jitter * scale)
        dy, dx = (int(torch.randint(-j, j + 1, ()).item()) for _ in range(2))
        cy, cx = round(cy * scale) + dy, round(cx * scale) + dx
        return (cy - patch[0] // 2, cx - patch[1] // 2, *patch)

    def __getitem__(self, k):
        if len(self.scales) == 1 and self.scales[0] == 1.0:
            return super().__getitem__(k)
        from .transforms import scale_item
        i, p = divmod(int(k), self.patches_per_image)
        s = self.scales[int(torch.randint(len(self.scales), ()).item())]
        item = self.raw(i)
        size = tuple(item["image"].shape[-2:])
        y0, x0, h, w = self.box(p, size, s)
        item = crop_padded(scale_item(item, s), y0, x0, h, w,
                           ignore_index=getattr(self.base, "ignore_index", IGNORE_INDEX))
        item["patch"] = p
        return self.transform(item) if self.transform is not None else item


def build_patch_dataset(base, scheme: str, *, crop: Optional[int | Sequence[int]] = None, flip: bool = True,
                        multiple: int = 1, prescale: float = 1.0, **options) -> PatchDataset:
    """A training set under one of the paper's schemes, with the training transform attached:

    * ``"random"``: random ``crop`` (default the scaled 544) anywhere in the frame, flip;
    * ``"fixed12"``: the 12-fold tiles, a random ``crop`` inside the tile, flip;
    * ``"jitter7"``: the 7-fold jittered patches (the patch is the crop), flip.

    ``multiple`` rounds the scaled sizes (e.g. to the output stride); ``prescale`` resizes every
    frame first (sizes follow the resized frame); ``options`` go to the
    scheme's class (``tile``, ``grid`` / ``patch``, ``jitter``, ``n``, ``scales``). No colour
    augmentation and no random scaling, so the schemes differ only in where the pixels come from.
    """
    from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip
    if scheme not in SCHEMES:
        raise ValueError(f"unknown patch scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    h, w = base[0]["image"].shape[-2:]
    sizes = protocol_sizes((max(1, round(h * prescale)), max(1, round(w * prescale))), multiple)
    options["prescale"] = prescale
    tail = ([RandomHorizontalFlip()] if flip else []) + [Normalize()]
    crop_t = [RandomCrop(crop if crop is not None else sizes["crop"],
                         ignore_index=getattr(base, "ignore_index", IGNORE_INDEX))]
    if scheme == "random":
        return WholeImage(base, Compose(crop_t + tail), **options)
    if scheme == "fixed12":
        options.setdefault("tile", sizes["tile"])
        return FixedTiles(base, Compose(crop_t + tail), **options)
    options.setdefault("patch", sizes["patch"])
    return JitteredPatches(base, Compose(tail), **options)


def _size(v, name: str) -> tuple[int, int]:
    """``v`` (int or pair) as two positive ints; ``ValueError`` naming ``name`` otherwise."""
    pair = (v, v) if isinstance(v, int) and not isinstance(v, bool) else tuple(v) if isinstance(v, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1
                                                 for x in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {v!r}")
    return pair


__all__ = ["PAPER_IMAGE", "PAPER_SIZES", "SCHEMES", "protocol_sizes", "tile_origins", "jitter_centres",
           "crop_padded", "PatchDataset", "WholeImage", "FixedTiles", "JitteredPatches", "build_patch_dataset"]
