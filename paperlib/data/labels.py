"""Label sets shared by the synthetic world and the real datasets.

The Cityscapes table comes from ``cityscapesscripts`` (the dataset authors' own package), so
labelId -> trainId and the colours are never re-typed here.
"""
from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers import labels as _cs

#: The label value every loss, metric, transform and warp ignores (Cityscapes' 255). Defined once here.
IGNORE_INDEX = 255

#: The 19 Cityscapes evaluation classes, indexed by train id.
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(
    l.name for l in sorted((l for l in _cs.labels if 0 <= l.trainId < 255), key=lambda l: l.trainId))

#: RGB colour per train id (19, 3) uint8.
CITYSCAPES_PALETTE: np.ndarray = np.array(
    [l.color for l in sorted((l for l in _cs.labels if 0 <= l.trainId < 255), key=lambda l: l.trainId)],
    dtype=np.uint8)

#: labelId (0..33, -1 for 'license plate') -> trainId (255 = ignore), from the official table.
CITYSCAPES_ID_TO_TRAINID: dict[int, int] = {l.id: l.trainId for l in _cs.labels if l.id >= 0}

#: trainId -> labelId (what Cityscapes' *_labelIds.png stores), for writing datasets.
CITYSCAPES_TRAINID_TO_ID: dict[int, int] = {
    l.trainId: l.id for l in _cs.labels if 0 <= l.trainId < 255 and not l.ignoreInEval}

#: Category of each train id (flat, construction, object, nature, sky, human, vehicle).
CITYSCAPES_CATEGORIES: tuple[str, ...] = tuple(
    l.category for l in sorted((l for l in _cs.labels if 0 <= l.trainId < 255), key=lambda l: l.trainId))


def colorize(label: np.ndarray, palette: np.ndarray = CITYSCAPES_PALETTE) -> np.ndarray:
    """Train-id map (H, W) -> RGB image (H, W, 3); ignore pixels are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = palette
    return lut[label.astype(np.uint8)]


def onehot(labels, num_classes: int):
    """(H, W) class ids (array or tensor) -> (1, C, H, W) float one-hot tensor; ids outside
    ``[0, C)`` (ignored / void) are all zero, so pooling it gives each class's share of the
    labelled pixels."""
    import torch
    import torch.nn.functional as F
    y = torch.as_tensor(np.asarray(labels)).long()
    known = (y >= 0) & (y < num_classes)
    return F.one_hot(torch.where(known, y, 0), num_classes).permute(2, 0, 1)[None].float() * known
