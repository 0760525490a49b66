"""The world's material/label sets: 32 fine classes that map onto the 19 Cityscapes train ids.

Every pixel the world renders belongs to exactly one *fine* class (the renderer's material), so
the fine label map is always available; the Cityscapes label map is ``FINE_TO_TRAINID[fine]``.
The fine set splits Cityscapes classes the way a richer target dataset would (Mapillary-style),
for the self-training papers' new-class transfer experiments (self-training Fig. 3/8):

============  ========================================================
Cityscapes    fine classes
============  ========================================================
road          road, lane_marking, crosswalk
sidewalk      sidewalk, curb
building      building, glass_building
wall          wall
fence         fence
pole          pole, streetlight
traffic light traffic_light
traffic sign  sign_front, sign_back
vegetation    tree, hedge
terrain       grass, gravel
sky           sky
person        pedestrian, child
rider         cyclist, motorcyclist
car           sedan, van, taxi
truck         box_truck, pickup
bus           bus
train         tram
motorcycle    motorcycle
bicycle       bicycle
============  ========================================================

The ego-vehicle hood is void (255) in both label sets.
"""
from __future__ import annotations

import numpy as np

from paperlib.data.labels import CITYSCAPES_CLASSES, IGNORE_INDEX

#: (fine class, Cityscapes class) in fine-id order.
_FINE = (
    ("road", "road"), ("lane_marking", "road"), ("crosswalk", "road"),
    ("sidewalk", "sidewalk"), ("curb", "sidewalk"),
    ("building", "building"), ("glass_building", "building"),
    ("wall", "wall"), ("fence", "fence"),
    ("pole", "pole"), ("streetlight", "pole"),
    ("traffic_light", "traffic light"),
    ("sign_front", "traffic sign"), ("sign_back", "traffic sign"),
    ("tree", "vegetation"), ("hedge", "vegetation"),
    ("grass", "terrain"), ("gravel", "terrain"),
    ("sky", "sky"),
    ("pedestrian", "person"), ("child", "person"),
    ("cyclist", "rider"), ("motorcyclist", "rider"),
    ("sedan", "car"), ("van", "car"), ("taxi", "car"),
    ("box_truck", "truck"), ("pickup", "truck"),
    ("bus", "bus"), ("tram", "train"),
    ("motorcycle", "motorcycle"), ("bicycle", "bicycle"),
)

#: The fine label set (32 classes), indexed by fine id.
FINE_CLASSES: tuple[str, ...] = tuple(f for f, _ in _FINE)
#: Fine class name -> Cityscapes class name (the documented mapping).
FINE_TO_CITYSCAPES: dict[str, str] = dict(_FINE)
#: Fine id -> Cityscapes train id, as a 256-entry lookup table (255 -> 255).
FINE_TO_TRAINID: np.ndarray = np.full(256, IGNORE_INDEX, dtype=np.uint8)
FINE_TO_TRAINID[: len(_FINE)] = [CITYSCAPES_CLASSES.index(c) for _, c in _FINE]

#: Fine id by name, e.g. ``F["sedan"]``.
F: dict[str, int] = {name: i for i, name in enumerate(FINE_CLASSES)}
#: Cityscapes train id by name, e.g. ``C["car"]``.
C: dict[str, int] = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}

#: Cityscapes classes with instances (``hasInstances`` and evaluated): person .. bicycle.
THING_TRAINIDS = frozenset(range(C["person"], C["bicycle"] + 1))


def fine_to_trainid(fine: np.ndarray) -> np.ndarray:
    """Map a fine label map (any shape, uint8, 255 void) to Cityscapes train ids."""
    return FINE_TO_TRAINID[np.asarray(fine, dtype=np.uint8)]
