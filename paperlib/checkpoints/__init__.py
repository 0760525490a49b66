"""The authors' released weights, converted into paperlib's models (issue 22).

Training any of these papers at full scale takes 8-GPU days; evaluating the weights the authors
released checks their headline numbers in minutes. :func:`load_released` reads a released file
safely (``torch.load(weights_only=True)`` with a short allow-list of plain-data classes, or the
``onnx`` package for ONNX files: nothing in a checkpoint is executed), converts every tensor
exactly onto a paperlib model and returns a :class:`Released` (model in eval mode, sha256,
input normalisation, the conversion with its inverse).

* ``gsvnet`` -- robert80203/GSVNet: ``cityscapes-swnet-R18.pt`` / ``cityscapes-bisenet-R18.pth``
  (keyframe networks -> :class:`gsvnet.ReleaseSwiftNet` / :class:`gsvnet.ReleaseBiSeNet`) and
  ``gsvnet_swnet_r18.tar`` (the PF -> :class:`gsvnet.ReleaseGSVNet`, a ``paperlib.video.GSVNet``);
* ``nvidia`` -- NVIDIA/semantic-segmentation, branch sdcnet: ``cityscapes_best.pth`` (DeepLabV3+ on
  WideResNet38) or the SE-ResNeXt-50 model -> :func:`nvidia.build`;
* ``tusimple-duc`` -- TuSimple-DUC through the ONNX model zoo (``ResNet101-DUC-7.onnx`` / ``-12``)
  -> ``deeplabv2_resnet101(head="duc", stem="3x3")`` with the released dilations;
* ``paperlib`` -- a paperlib full-model state dict (``model=NAME``), loaded strictly.

Each converter module's docstring lists the facts it took from the authors' code and **where the
released model differs from the paper's text**; the converted model reproduces the release, and
``conventions="release"`` (default) / ``"paperlib"`` selects the release's or paperlib's resize and
padding choices where they differ. A file that does not fit raises :class:`CheckpointError`
naming every missing key, unexpected key and shape mismatch. Test checkpoints in the authors'
formats (random weights): :mod:`paperlib.checkpoints.fixtures`.
"""
from __future__ import annotations

import importlib
from typing import Optional

FORMATS = ("paperlib", "gsvnet", "nvidia", "tusimple-duc")
_LAZY = ("CheckpointError", "Conversion", "KeyMap", "Released", "convert", "read_torch", "same_tensors",
         "sha256_file", "unwrap")
__all__ = ["FORMATS", "load_released", *_LAZY]


def __getattr__(name: str):
    """Import torch only when a converter is used (``python -m paperlib`` builds its parser from
    :mod:`.cli` without it)."""
    if name in _LAZY:
        return getattr(importlib.import_module("._io", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_released(path, format: str, *, num_classes: Optional[int] = None, width: Optional[int] = None,
                  conventions: str = "release", model: Optional[str] = None, **options):
    """Convert the released checkpoint ``path`` of ``format`` (one of :data:`FORMATS`).

    ``width``: reduced base width (test fixtures; ``None`` = the release's size). ``conventions``:
    "release" or "paperlib" (see the converter modules). ``model``: the registry name for
    ``format="paperlib"``. Other ``options`` go to the format's ``load`` (``kind=``, ``keyframe=``).
    """
    if format == "gsvnet":
        from . import gsvnet
        return gsvnet.load(path, num_classes=num_classes or 19, width=width, conventions=conventions, **options)
    if format == "nvidia":
        from . import nvidia
        return nvidia.load(path, num_classes=num_classes, width=width, conventions=conventions, **options)
    if format == "tusimple-duc":
        from . import tusimple_duc
        if conventions != "release":
            raise ValueError("tusimple-duc has no convention switch: its resizes already match paperlib's")
        return tusimple_duc.load(path, num_classes=num_classes or 19, width=width, **options)
    if format == "paperlib":
        return _load_paperlib(path, model, num_classes or 19, width, **options)
    raise ValueError(f"unknown checkpoint format {format!r}; expected one of {', '.join(FORMATS)}")


def _load_paperlib(path, name: Optional[str], num_classes: int, width: Optional[int], **options):
    """A paperlib full-model checkpoint, loaded strictly (every key must match)."""
    from ._io import KeyMap, Released, convert, read_torch, sha256_file, unwrap
    from paperlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from paperlib.models import build

    if not name:
        raise ValueError("format 'paperlib' needs the registry name of the model (model=..., --model)")
    net = build(name, num_classes=num_classes, width=width, **options)
    obj = read_torch(path)
    state, where = unwrap(obj, path)
    km = KeyMap(f"paperlib {name}")
    for k in net.state_dict():
        km.add(k, k)
    conv = convert(state, km, net, str(path))
    net.eval()
    return Released(net, "paperlib", name, str(path), sha256_file(path), conv,
                    {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "scale": 1.0}, {"nesting": where})
