"""Cross-domain few-shot transfer (self-training Sec. 4.5 / Fig. 3 / Table 12, CSST Sec. 4.6 /
Fig. 8): a model trained on a source domain is fine-tuned on a few labelled target images, either
directly ("fine-tuning") or after self-training on source real + target pseudo labels.

- ``replace_head``: a new classifier for a target label set, keeping every other weight -- CSST
  Sec. 4.6.2: "The classifier of the student model is still a 19-way classifier. Finally, we
  finetune the student model on Mapillary. Only in the last step, the classifier is 66-way";
- ``few_shot_indices`` / ``fraction_indices``: the labelled target subsets (k shots per class;
  1/10, 1/5, 1/2, full);
- ``fine_label_dataset``: the synthetic world's 32-class fine labels (``FINE_CLASSES``), the
  "new categories" target (Mapillary's 66 classes in the papers);
- ``labelled_subset``: a subset repeated to fill batches, for ``engine.train``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a freshly initialised ``num_classes``-way classifier, in place; every other
    weight (backbone, decoder, BatchNorm statistics) is kept. Returns ``model``.

    The classifier is every ``nn.Conv2d`` / ``nn.Linear`` producing the model's current number of
    classes (the main head and any auxiliary heads): each is replaced by a layer of the same
    kind, kernel, stride, padding, dilation and bias with ``num_classes`` outputs. The current
    number of classes is ``model.num_classes`` when the model has it, else the output channels
    of the last convolution. Raises ``ValueError`` when no such layer exists.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes!r}")
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not convs:
        raise ValueError(f"replace_head: {type(model).__name__} has no Conv2d / Linear layer")
    old = getattr(model, "num_classes", None) or _out(convs[-1][1])
    heads = [(n, m) for n, m in convs if _out(m) == old]
    if not heads:
        raise ValueError(f"replace_head: no layer of {type(model).__name__} outputs its {old} classes")
    for name, layer in heads:
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        setattr(parent, name.rpartition(".")[2], _like(layer, num_classes))
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return model


def _out(layer: nn.Module) -> int:
    return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features


def _like(layer: nn.Module, n: int) -> nn.Module:
    """A new layer shaped like ``layer`` with ``n`` outputs, on the same device and dtype."""
    p = layer.weight
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, n, bias=layer.bias is not None)
    else:
        new = nn.Conv2d(layer.in_channels, n, layer.kernel_size, layer.stride, layer.padding,
                        layer.dilation, 1, layer.bias is not None, layer.padding_mode)
    return new.to(device=p.device, dtype=p.dtype)


def few_shot_indices(dataset, shots: int, num_classes: int, seed: int = 0) -> list[int]:
    """Indices of a labelled subset in which every class present in ``dataset`` appears in at
    least ``shots`` images (or in all the images that have it).

    Classes are served rarest first; for each, random images containing it are added until it
    has ``shots``, and every added image counts for all the classes it shows. The papers pick
    ``k`` images per class ("10-shot ... i.e., a total of 200 training samples"); in the
    synthetic world one frame shows most classes, so counting shots per class over shared images
    is what keeps the subsets small (the images are in the returned order of selection).
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ValueError(f"few_shot_indices: shots must be a positive int, got {shots!r}")
    present = _class_presence(dataset, num_classes)          # (N, C) bool
    rng = np.random.default_rng(seed)
    chosen, counts = [], np.zeros(num_classes, int)
    for c in np.argsort(present.sum(0), kind="stable"):
        have = np.flatnonzero(present[:, c])
        if len(have) == 0:
            continue
        for i in rng.permutation(have):
            if counts[c] >= shots:
                break
            if i not in chosen:
                chosen.append(int(i))
                counts += present[i]
    return chosen


def fraction_indices(n: int, fraction: float, seed: int = 0) -> list[int]:
    """A random ``fraction`` (0 < f <= 1) of ``range(n)``: ``max(1, round(n * f))`` indices."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction_indices: fraction must be in (0, 1], got {fraction!r}")
    k = max(1, round(n * fraction))
    return sorted(np.random.default_rng(seed).permutation(n)[:k].tolist())


def labelled_subset(dataset, indices, min_len: int = 1) -> torch.utils.data.Subset:
    """``Subset(dataset, indices)`` with the indices repeated until it holds ``min_len`` items,
    so a 1-shot set still fills the batches of an epoch."""
    indices = list(indices)
    if not indices:
        raise ValueError("labelled_subset: indices is empty")
    reps = max(1, math.ceil(min_len / len(indices)))
    return torch.utils.data.Subset(dataset, indices * reps)


def fine_label_dataset(dataset):
    """The same frames as ``dataset`` (a world export read by the Cityscapes loader) with the
    world's 32-class fine labels (``*_gtFine_fineIds.png``; ``paperlib.data.synthetic.FINE_CLASSES``)
    instead of the 19 Cityscapes train ids: the "new categories" target (self-training Sec. 4.5,
    CSST Sec. 4.6.2). Needs a world exported with fine labels (e.g. domain ``city_fine``)."""
    from ..data.base import DatasetError, Sample, SegDataset
    from ..data.synthetic import FINE_CLASSES
    samples = []
    for s in dataset.samples:
        if s.label is None:
            raise DatasetError(f"no label for {s.image}: fine labels need a labelled split")
        path = Path(str(s.label).replace("_gtFine_labelIds.png", "_gtFine_fineIds.png"))
        if not path.is_file():
            raise DatasetError(f"fine label file not found: {path} (export the world with fine "
                               "labels, e.g. domain 'city_fine')")
        samples.append(Sample(s.image, path, s.name, dict(s.neighbours)))
    out = SegDataset(samples, dataset.transform, dataset.root, dataset.split)
    out.num_classes, out.class_names = len(FINE_CLASSES), tuple(FINE_CLASSES)
    return out


def _class_presence(dataset, num_classes: int) -> np.ndarray:
    """(N, C) bool: which classes each image's label contains (read with ``load_label``)."""
    out = np.zeros((len(dataset), num_classes), bool)
    for i in range(len(dataset)):
        ids = np.unique(dataset.load_label(i))
        out[i, ids[ids < num_classes]] = True
    return out
