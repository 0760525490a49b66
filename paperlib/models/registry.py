"""The model registry (timm-style): constructors register under a name, ``build`` makes them.

Kept apart from ``paperlib/models/__init__.py`` so that model modules import the registry
without importing the package that imports them (no import cycle).
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
