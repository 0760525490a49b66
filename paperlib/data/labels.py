"""Label sets shared by the synthetic world and the real datasets.

The Cityscapes table comes from ``cityscapesscripts`` (the dataset authors' own package), so
labelId -> trainId and the colours are never re-typed here. The CamVid 11-class set (SegNet's
release) and the Cityscapes -> CamVid grouping used to style the world as CamVid are defined here
too (:data:`CITYSCAPES_TO_CAMVID`, :func:`to_camvid`).
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


#: CamVid's 11 classes in the SegNet release, indexed by label id (id 11 in the files is void).
CAMVID_CLASSES: tuple[str, ...] = ("sky", "building", "pole", "road", "sidewalk", "tree",
                                   "sign/symbol", "fence", "car", "pedestrian", "bicyclist")

#: The id CamVid's SegNet release stores for void pixels (read back as ``IGNORE_INDEX``).
CAMVID_VOID = 11

#: Cityscapes train id -> CamVid (11-class) id, ``IGNORE_INDEX`` where the 11 classes have no place.
#: SegNet's grouping of CamVid's 32 classes into 11, read from the Cityscapes side:
#:
#: =============  ============  ===================================================================
#: Cityscapes     CamVid        CamVid's 32-class source of the group
#: =============  ============  ===================================================================
#: road           road          Road, LaneMkgsDriv, LaneMkgsNonDriv (lane markings are road in
#:                              Cityscapes too)
#: sidewalk       sidewalk      Sidewalk, ParkingBlock
#: building       building      Building, Wall, Bridge, Tunnel, Archway
#: wall           building
#: fence          fence         Fence
#: pole           pole          Column_Pole
#: traffic light  sign/symbol   TrafficLight, SignSymbol, Misc_Text
#: traffic sign   sign/symbol
#: vegetation     tree          Tree, VegetationMisc
#: terrain        tree          (choice: CamVid's roadside grass is VegetationMisc, grouped in Tree)
#: sky            sky           Sky
#: person         pedestrian    Pedestrian, Child
#: rider          bicyclist     Bicyclist, MotorcycleScooter (the person and the two-wheeler)
#: car            car           Car, SUVPickupTruck, Truck_Bus
#: truck          car
#: bus            car
#: train          void          (CamVid's Train is outside the 11 classes)
#: motorcycle     bicyclist
#: bicycle        bicyclist
#: =============  ============  ===================================================================
CITYSCAPES_TO_CAMVID: dict[int, int] = {
    CITYSCAPES_CLASSES.index(cs): (IGNORE_INDEX if cv is None else CAMVID_CLASSES.index(cv))
    for cs, cv in (
        ("road", "road"), ("sidewalk", "sidewalk"), ("building", "building"), ("wall", "building"),
        ("fence", "fence"), ("pole", "pole"), ("traffic light", "sign/symbol"),
        ("traffic sign", "sign/symbol"), ("vegetation", "tree"), ("terrain", "tree"),
        ("sky", "sky"), ("person", "pedestrian"), ("rider", "bicyclist"), ("car", "car"),
        ("truck", "car"), ("bus", "car"), ("train", None), ("motorcycle", "bicyclist"),
        ("bicycle", "bicyclist"))}

#: 256-entry uint8 lookup table of :data:`CITYSCAPES_TO_CAMVID`; every other value (void) -> 255.
CITYSCAPES_TO_CAMVID_LUT: np.ndarray = np.full(256, IGNORE_INDEX, np.uint8)
for _t, _c in CITYSCAPES_TO_CAMVID.items():
    CITYSCAPES_TO_CAMVID_LUT[_t] = _c
del _t, _c


def to_camvid(labels):
    """Cityscapes train ids (array or tensor, any shape) -> CamVid 11-class ids, through
    :data:`CITYSCAPES_TO_CAMVID` (the table above); 255 (void) stays 255, as does ``train``.

    Returns the same kind (numpy array or torch tensor, on the same device) and dtype as
    ``labels``. Raises ``ValueError`` if ``labels`` is not integer or holds a value outside 0..255.

    Limits of the grouping (it is a relabelling of Cityscapes classes, not CamVid's annotation):
    - ``bicycle`` / ``motorcycle`` include parked two-wheelers without a rider; CamVid's
      Bicyclist / MotorcycleScooter are about ridden ones, and how its annotators labelled parked
      bicycles is not documented;
    - ``terrain`` -> tree also turns bare ground (the world's gravel strips) into tree, where
      CamVid would say RoadShoulder (road) or void;
    - Cityscapes' own void classes (bridge, tunnel, guard rail, ...) are already 255 in train
      ids, so the bridges / tunnels CamVid counts as building cannot be recovered here.
    """
    if hasattr(labels, "device") and hasattr(labels, "dtype") and not isinstance(labels, np.ndarray):
        import torch
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 255):
            raise ValueError(f"labels must be train ids in 0..255, got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        lut = torch.as_tensor(CITYSCAPES_TO_CAMVID_LUT, device=labels.device)
        return lut[labels.long()].to(labels.dtype)
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        raise ValueError(f"labels must be train ids in 0..255, got values in "
                         f"[{int(arr.min())}, {int(arr.max())}]")
    return CITYSCAPES_TO_CAMVID_LUT[arr].astype(arr.dtype, copy=False)


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
