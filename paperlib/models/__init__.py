"""Models built by name from one registry (timm-style): ``build("tiny_fcn", num_classes=19, width=8)``.

A model module registers its constructors with ``@register("name")``; a constructor takes
``num_classes`` plus keyword options and returns an ``nn.Module`` whose forward maps a normalised
image batch (N, 3, H, W) to logits (N, C, h, w) -- or a dict with ``"out"`` (and optionally
``"aux"``) logits. The engine upsamples logits to the label size, so any output stride works.
"""
from .registry import available, build, register  # noqa: F401

# Model modules register themselves on import.
from . import tiny  # noqa: E402,F401
from . import segmentation  # noqa: E402,F401
from . import fast  # noqa: E402,F401
from . import hrnet  # noqa: E402,F401
