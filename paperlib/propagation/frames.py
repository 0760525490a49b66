"""Where VPLR's video frames come from: a Cityscapes-layout folder with ``leftImg8bit_sequence``
(the synthetic world exported with sequence frames, or Cityscapes itself), read as a frame source.

Used by the motion model's training (``motion.train_motion``) and by the propagated datasets
(``dataset.export_propagated``); kept apart so neither imports the other.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..data.base import DatasetError, read_image


def _is_config(source) -> bool:
    from ..config import TrainConfig
    return isinstance(source, TrainConfig)


def sequence_root(source, *, split: str | None = None, flow: bool = False,
                  progress: bool = True) -> tuple[Path, str]:
    """(root, split) of a Cityscapes-layout folder with ``leftImg8bit_sequence/<split>``.

    ``source`` is a ``TrainConfig`` (``dataset="world"``: its world exported once with sequence
    frames, and with exact flow when ``flow``; ``"cityscapes"``: its ``data_root``) or a path;
    ``split`` defaults to the config's ``train_split`` (else ``"train"``)."""
    if _is_config(source):
        split = split or source.train_split
        if source.dataset == "world":
            from ..data import export_world
            root = export_world(source.world_domain, source.world_image_size, source.world_clips,
                                seed=source.world_seed, sequence=True, flow=flow, progress=progress)
        elif source.dataset == "cityscapes":
            root = Path(source.data_root or "")
        else:
            raise ValueError(f"propagation needs video snippets: config field 'dataset' = "
                             f"{source.dataset!r} is not 'world' or 'cityscapes'")
    elif isinstance(source, (str, os.PathLike)):
        root, split = Path(source), split or "train"
    else:
        raise ValueError(f"source must be a TrainConfig or a dataset root path, got {type(source).__name__}")
    seq = root / "leftImg8bit_sequence" / split
    if not seq.is_dir():
        raise DatasetError(f"no video snippets: {seq} is missing (export the world with sequence=True, "
                           f"or point data_root at Cityscapes with leftImg8bit_sequence/)")
    if flow and not (root / "flow_sequence" / split).is_dir():
        raise DatasetError(f"exact flow asked but {root / 'flow_sequence' / split} is missing "
                           f"(only the synthetic world, exported with flow=True, has it)")
    return root, split


class SequenceFrames:
    """The video snippets of ``root/leftImg8bit_sequence/<split>`` as a frame source.

    ``names[c]`` = ``<city>_<seq>``, ``lengths[c]`` = its number of frames, ``frame(c, f)`` the
    f-th frame (uint8 RGB), ``exact_flow(c, a, b)`` (|a - b| = 1) the world's exact flow with
    ``I(a)(p) ~ I(b)(p + flow(p))`` from ``flow_sequence`` (``flow=True``)."""

    def __init__(self, root, split: str = "train", flow: bool = False):
        from ..data.datasets import cityscapes_sequences
        self.root, self.split, self.flow = Path(root), split, bool(flow)
        seqs = cityscapes_sequences(self.root, split)
        if not seqs:
            raise DatasetError(f"no sequence frames under {self.root / 'leftImg8bit_sequence' / split}")
        self.names = sorted(seqs)
        self.paths = [seqs[n] for n in self.names]
        self.lengths = [len(p) for p in self.paths]
        self.index = {n: i for i, n in enumerate(self.names)}

    def identity(self) -> dict:
        """What the frames are (a cache key for roles trained on them): the world's export stamp
        (its content, wherever the folder is), else the folder and its file count."""
        stamp = self.root / "synthetic_world.json"
        ident = {"split": self.split, "frames": sum(self.lengths)}
        if stamp.is_file():
            ident["stamp"] = hashlib.sha1(stamp.read_bytes()).hexdigest()[:16]
        else:
            ident["root"] = str(self.root.resolve())
        return ident

    def frame_number(self, c: int, f: int) -> int:
        return int(self.paths[c][f].name.split("_")[-2])

    def frame(self, c: int, f: int) -> np.ndarray:
        return read_image(self.paths[c][f])

    def exact_flow(self, c: int, a: int, b: int) -> np.ndarray:
        if not self.flow:
            raise ValueError("SequenceFrames: exact flow needs flow=True")
        if abs(a - b) != 1:
            raise ValueError(f"exact_flow: frames {a} and {b} are not adjacent")
        city = self.names[c].split("_")[0]
        kind = "flowBw" if b == a - 1 else "flowFw"
        path = (self.root / "flow_sequence" / self.split / city /
                f"{self.names[c]}_{self.frame_number(c, a):06d}_{kind}.npy")
        if not path.is_file():
            raise DatasetError(f"exact flow file missing: {path}")
        return np.load(path)
