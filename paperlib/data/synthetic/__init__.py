"""The embedded driving-video world: procedural street scenes with dense labels and exact flow.

Public API (tests, notebooks and users rely on these names)::

    from paperlib.data.synthetic import SyntheticWorld, annotate, export
    world = SyntheticWorld("city_a", size=(256, 512), fps=17, seed=0)
    clip = world.clip(0, length=30)          # frames, labels, flow_fw/bw, valid_fw/bw, instances
    ann = annotate(clip, "cityscapes", noise_px=2)   # frame 19, with human-like boundary noise
    export(world, "data/citya", splits={"train": 20, "val": 5})   # Cityscapes' on-disk layout
    cam = SyntheticWorld("camvid", size=CAMVID_SIZE)     # the world styled as CamVid
    to_camvid(cam.clip(0).labels)                        # (paperlib.data.labels) 11 CamVid classes
    export(cam, "data/camvid", layout="camvid")          # SegNet's CamVid layout

Modules: ``world`` (SyntheticWorld, Clip), ``domains`` (city_a/b/c/fine, camvid), ``classes``
(the 32-class fine label set and its mapping to Cityscapes), ``layout``/``population`` (what is
in a clip), ``render`` (ray casting and exact flow), ``annotate``, ``export``.
"""
from .annotate import Annotation, annotate, labelled_indices
from .classes import FINE_CLASSES, FINE_TO_CITYSCAPES, FINE_TO_TRAINID, fine_to_trainid
from .domains import CAMVID_SIZE, CAMVID_STYLED, DOMAINS, Domain
from .export import export
from .world import Clip, FrameRecord, SyntheticWorld

__all__ = ["SyntheticWorld", "Clip", "FrameRecord", "annotate", "Annotation", "labelled_indices",
           "export", "DOMAINS", "Domain", "CAMVID_STYLED", "CAMVID_SIZE", "FINE_CLASSES",
           "FINE_TO_CITYSCAPES", "FINE_TO_TRAINID", "fine_to_trainid"]
