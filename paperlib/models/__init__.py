"""Models built by name from one registry (timm-style): ``build("tiny_fcn", num_classes=19, width=8)``.

A model module registers its constructors with ``@register("name")``; a constructor takes
``num_classes`` plus keyword options and returns an ``nn.Module`` whose forward maps a normalised
image batch (N, 3, H, W) to logits (N, C, h, w) -- or a dict with ``"out"`` (and optionally
``"aux"``) logits. The engine upsamples logits to the label size, so any output stride works.
"""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable:
    """Decorator: register a model constructor under ``name`` (names are unique)."""
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].__module__})")
        _REGISTRY[name] = fn
        return fn
    return deco


def available() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_REGISTRY)


def build(name: str, num_classes: int = 19, **options) -> nn.Module:
    """Build model ``name``; an unknown name or option raises ``ValueError`` naming it."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    fn = _REGISTRY[name]
    try:
        inspect.signature(fn).bind(num_classes=num_classes, **options)
    except TypeError as e:
        raise ValueError(f"bad options for model {name!r}: {e}") from None
    return fn(num_classes=num_classes, **options)


# Model modules register themselves on import.
from . import tiny  # noqa: E402,F401
from . import segmentation  # noqa: E402,F401
from . import fast  # noqa: E402,F401
from . import hrnet  # noqa: E402,F401
