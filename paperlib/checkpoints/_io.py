"""Reading released checkpoints safely and mapping their tensors onto paperlib's modules.

Nothing here executes code from a checkpoint: PyTorch files are read with
``torch.load(weights_only=True)`` and a short allow-list of plain-data classes that the authors'
training scripts pickle beside the weights (numpy scalars such as NVIDIA's ``mean_iu``, GSVNet's
``argparse.Namespace`` of command-line arguments); anything else is refused with its name.

A :class:`KeyMap` is the whole conversion of one format: for every tensor of the released state
dict, the paperlib key it becomes and, where the layouts differ, an exact transform and its
inverse (a channel permutation, a power-of-two scale, a reshape). Release tensors with no place in
paperlib's model are *extras*: kept, with the reason, so that the round trip is exact. paperlib
tensors with no release source get a *default* (a constant such as the identity delay kernel).
:func:`convert` checks everything before loading and raises :class:`CheckpointError` naming every
missing key, unexpected key and shape mismatch at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
from collections import OrderedDict
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

Transform = Optional[Callable[[torch.Tensor], torch.Tensor]]


class CheckpointError(ValueError):
    """A released checkpoint that cannot be converted; the message says exactly why."""


# --- files -----------------------------------------------------------------------------------
def sha256_file(path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (recorded in every evaluation manifest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _allowed_globals() -> list:
    """Plain-data classes the authors' scripts pickle beside the weights (see module docstring)."""
    import numpy as np

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed: list = [np.dtype, argparse.Namespace, scalar, (scalar, "numpy.core.multiarray.scalar")]
    for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType"):
        if hasattr(np, "dtypes") and hasattr(np.dtypes, name):
            allowed.append(getattr(np.dtypes, name))
    return allowed


def read_torch(path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with the allow-list above.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (naming the file
    and, when known, the refused classes) for anything unreadable. Never ``weights_only=False``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path} (paperlib never downloads; see the README "
                                f"for where each release can be fetched)")
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file and the reason
        unsafe = ""
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            allowed = {f"{g.__module__}.{g.__qualname__}" if not isinstance(g, tuple) else g[1]
                       for g in _allowed_globals()}
            names = [n for n in names if n not in allowed and not n.startswith("numpy")]
            if names:
                unsafe = f"; it pickles classes paperlib will not unpickle: {', '.join(names[:8])}"
        except Exception:  # noqa: BLE001 - not a zip checkpoint: no list to give
            pass
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint with weights_only=True{unsafe} "
                              f"({type(e).__name__}: {first[:300]})") from None


def unwrap(obj: Any, path, keys=("state_dict", "model")) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a checkpoint: ``obj`` itself or ``obj[k]`` for the first ``k`` of
    ``keys`` present; a DDP/DataParallel ``module.`` prefix on every key is removed. Returns
    ``(state, where)`` with ``where`` naming the nesting found (for reports)."""
    where = "top level"
    if isinstance(obj, Mapping) and not _is_state(obj):
        for k in keys:
            if k in obj and isinstance(obj[k], Mapping):
                obj, where = obj[k], f"[{k!r}]"
                break
        else:
            raise CheckpointError(f"{path}: no state dict found: top-level keys are {sorted(map(str, obj))[:10]}, "
                                  f"expected tensors or one of {list(keys)}")
    if not isinstance(obj, Mapping) or not _is_state(obj):
        raise CheckpointError(f"{path}: {where} is not a dict of tensors")
    return strip_prefix(dict(obj)), where


def _is_state(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefix(state: dict, prefix: str = "module.") -> dict:
    """Remove ``prefix`` when every key carries it (a DataParallel-wrapped model's state dict)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


# --- key maps ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Rule:
    """One release tensor -> one paperlib tensor (``to_paperlib`` / ``to_release``: exact inverses)."""

    release: str
    paperlib: str
    to_paperlib: Transform = None
    to_release: Transform = None
    optional: bool = False      # may be absent from the file (BN ``num_batches_tracked``): then a default


@dataclasses.dataclass
class KeyMap:
    """The conversion of one release layout (see the module docstring)."""

    name: str
    rules: list[Rule] = dataclasses.field(default_factory=list)
    extras: dict[str, str] = dataclasses.field(default_factory=dict)       # release key -> why unused
    defaults: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)  # paperlib key -> value

    def add(self, release: str, paperlib: str, to_paperlib: Transform = None, to_release: Transform = None,
            optional: Optional[bool] = None) -> None:
        if optional is None:
            optional = paperlib.endswith("num_batches_tracked")
        self.rules.append(Rule(release, paperlib, to_paperlib, to_release, optional))

    def release_keys(self) -> list[str]:
        return [r.release for r in self.rules] + list(self.extras)


def _show(keys, n: int = 8) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


@dataclasses.dataclass
class Conversion:
    """What :func:`convert` produced: the paperlib state dict, the kept extras, and the map."""

    state: "OrderedDict[str, torch.Tensor]"
    extras: dict[str, torch.Tensor]
    keymap: KeyMap
    absent: list[str] = dataclasses.field(default_factory=list)   # optional release keys the file lacked

    def to_release(self) -> dict[str, torch.Tensor]:
        """The release state dict back from ``state`` + ``extras`` (exact: the round trip)."""
        out = {}
        for r in self.keymap.rules:
            if r.release in self.absent:
                continue
            t = self.state[r.paperlib]
            out[r.release] = r.to_release(t) if r.to_release is not None else t
        out.update(self.extras)
        return out


def convert(release: Mapping[str, torch.Tensor], keymap: KeyMap, model: nn.Module, source: str = "checkpoint") -> Conversion:
    """Map ``release`` onto ``model``'s state dict with ``keymap``, checking everything first.

    Raises :class:`CheckpointError` listing (all at once) release keys the map expects but the file
    lacks, keys the file has that the map does not know, model keys no rule fills, and every
    tensor whose (transformed) shape or dtype kind differs from the model's."""
    own = model.state_dict()
    expected = keymap.release_keys()
    optional = {r.release for r in keymap.rules if r.optional}
    absent = [k for k in expected if k not in release and k in optional]
    missing = [k for k in expected if k not in release and k not in optional]
    unexpected = [k for k in release if k not in set(expected)]
    filled = {r.paperlib for r in keymap.rules} | set(keymap.defaults)
    unfilled = [k for k in own if k not in filled]
    stray = sorted(filled - set(own))
    state: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    bad = []
    for r in keymap.rules:
        if r.release not in release:
            if r.release in absent and r.paperlib in own:
                state[r.paperlib] = torch.zeros_like(own[r.paperlib])
            continue
        t = release[r.release]
        t = r.to_paperlib(t) if r.to_paperlib is not None else t
        target = own.get(r.paperlib)
        if target is None:
            continue
        if tuple(t.shape) != tuple(target.shape):
            bad.append(f"{r.release} -> {r.paperlib}: checkpoint {tuple(release[r.release].shape)}"
                       f"{' (converted ' + str(tuple(t.shape)) + ')' if r.to_paperlib is not None else ''}"
                       f" vs model {tuple(target.shape)}")
        elif t.is_floating_point() != target.is_floating_point():
            bad.append(f"{r.release} -> {r.paperlib}: dtype {t.dtype} vs model {target.dtype}")
        state[r.paperlib] = t
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_show(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_show(unexpected)}")
    if bad:
        problems.append(f"shape mismatches ({len(bad)}): " + "; ".join(bad[:6]) +
                        (f"; ... ({len(bad)} in all)" if len(bad) > 6 else "") +
                        " (built with another width, class count or variant?)")
    if unfilled or stray:
        problems.append(f"internal: the {keymap.name} map leaves model keys unfilled ({_show(unfilled)}) "
                        f"or names keys the model lacks ({_show(stray)})")
    if problems:
        raise CheckpointError(f"{source} is not a {keymap.name} checkpoint paperlib can load: " + " | ".join(problems))
    for k, v in keymap.defaults.items():
        state[k] = v.to(own[k].dtype)
    ordered = OrderedDict((k, state[k].to(own[k].dtype) if state[k].is_floating_point() else state[k]) for k in own)
    model.load_state_dict(ordered, strict=True)
    extras = {k: release[k] for k in keymap.extras}
    return Conversion(ordered, extras, keymap, absent)


def same_tensors(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys whose tensors differ in presence, shape, dtype or any value (exact; NaN equals NaN)."""
    bad = set(a) ^ set(b)
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            bad.add(k)
        elif x.is_floating_point():
            if not torch.equal(torch.nan_to_num(x, nan=0.5), torch.nan_to_num(y, nan=0.5)) or \
                    not torch.equal(x.isnan(), y.isnan()):
                bad.add(k)
        elif not torch.equal(x, y):
            bad.add(k)
    return sorted(bad)


def permute_in(order) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transform reordering a conv weight's input channels: ``w[:, order]``."""
    idx = torch.as_tensor(list(order))
    return lambda w: w[:, idx].contiguous()


def inverse_order(order) -> list[int]:
    inv = [0] * len(order)
    for i, o in enumerate(order):
        inv[o] = i
    return inv


@dataclasses.dataclass
class Released:
    """A released model converted into paperlib: ``model`` (eval mode) and what made it.

    ``format`` / ``kind``: e.g. ``("gsvnet", "swiftnet")``; ``sha256`` of the file; ``conversion``
    (:class:`Conversion`: the paperlib state dict, the extras, the key map; ``to_release()`` gives
    the release's tensors back); ``input``: how the release normalises images (``mean`` / ``std``
    per RGB channel on the ``scale`` the pixels are on: 1 for [0, 1], 255 for [0, 255]);
    ``info``: checkpoint metadata (nesting, epoch, reported score, ...) and notes."""

    model: nn.Module
    format: str
    kind: str
    path: str
    sha256: str
    conversion: Conversion
    input: dict
    info: dict = dataclasses.field(default_factory=dict)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB floats in [0, 1] -> what this release's network expects."""
        mean = torch.tensor(self.input["mean"], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.input["std"], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * self.input["scale"] - mean) / std
