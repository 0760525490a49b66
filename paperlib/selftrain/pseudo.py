"""Teacher-generated pseudo labels: generation, compact storage and a dataset that reads them.

Self-training Sec. 3.1 / CSST Sec. 3.1: a teacher trained on the real labels predicts the class
probabilities ``p_T(x')`` of every unlabelled image ``x'``, and the student trains on

- **hard** pseudo labels ``y' = argmax_c p_T(x')`` (CSST Eq. 2), stored as one PNG of train ids
  per image (1 byte per pixel before PNG compression); with a confidence ``threshold`` the pixels
  whose top-1 probability is below it become ``255`` (ignored by the loss);
- **soft** pseudo labels (self-training App. A.1, CSST Eq. 6): the ``top_k`` most probable classes
  of every pixel and their probabilities, stored per image as ``<stem>.npz`` (zlib-compressed)
  with two ``uint8`` arrays ``index`` (k, H, W) and ``prob`` (k, H, W), the probability
  quantised as ``round(255 p)``. That is **2k bytes per pixel** before compression (6 B/px for
  k = 3, against 4 x 19 = 76 B/px for the full float32 distribution), and a probability is read
  back within half a quantisation step, ``1 / 510``. The hard PNG is written too (mode "soft"
  is a superset of mode "hard").

Layout of ``out_dir``::

    manifest.json          teacher fingerprint, mode, top_k, threshold, inference options,
                           num_classes, the image list (names + hash)
    000000_<name>.png      hard labels (uint8 train ids, 255 = below threshold)
    000000_<name>.npz      soft labels (mode "soft" only)

Generation is resumable: files are written atomically (temp file + rename), so a file that
exists is complete, and a rerun skips the images whose files exist. The manifest guards against
stale labels: if ``out_dir`` holds labels of another teacher (its weights hash differently) or
other parameters, ``resume=True`` refuses with an error and ``resume=False`` regenerates.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torchvision import tv_tensors

from ..atomic import atomic_path, atomic_write_text
from ..data.base import IGNORE_INDEX, Sample, SegDataset
from ..progress import tqdm

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MODES = ("hard", "soft")
#: Probabilities are stored as ``round(PROB_SCALE * p)`` in uint8.
PROB_SCALE = 255


class PseudoLabelError(ValueError):
    """Stale, incomplete or mismatched pseudo labels; the message names the folder."""


# ---------------------------------------------------------------------------------------------
# Fingerprints and file names
# ---------------------------------------------------------------------------------------------
def teacher_fingerprint(model: torch.nn.Module) -> str:
    """Hash of the model's class name and every tensor of its ``state_dict`` (names and bytes)."""
    h = hashlib.sha1(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _names(images) -> list[str]:
    """``000123_<sample name>`` for every image of ``images`` (needs ``.samples``)."""
    samples = getattr(images, "samples", None)
    if samples is None:
        raise TypeError(f"images must be a SegDataset (with .samples), got {type(images).__name__}")
    return [f"{i:06d}_{s.name or Path(s.image).stem}" for i, s in enumerate(samples)]


def _images_hash(names: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The manifest of ``out_dir``, or ``None`` if there is none."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PseudoLabelError(f"corrupt pseudo-label manifest {path}: {e}") from None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------
def hard_from_probs(prob: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """(N, C, H, W) probabilities -> (N, H, W) uint8 argmax (CSST Eq. 2); 255 where the top-1
    probability is below ``threshold`` (when given)."""
    top, arg = prob.max(1)
    arg = arg.to(torch.uint8)
    if threshold is not None:
        arg[top < threshold] = IGNORE_INDEX
    return arg


def quantize_prob(p: np.ndarray | torch.Tensor) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 ``round(255 p)``."""
    p = p.detach().cpu().numpy() if torch.is_tensor(p) else np.asarray(p)
    return np.clip(np.rint(p * PROB_SCALE), 0, PROB_SCALE).astype(np.uint8)


def dequantize_prob(q: np.ndarray | torch.Tensor):
    """uint8 ``round(255 p)`` -> float32 p (error <= 1/510)."""
    if torch.is_tensor(q):
        return q.float() / PROB_SCALE
    return np.asarray(q, dtype=np.float32) / PROB_SCALE


def _write_png(path: Path, label: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(label, dtype=np.uint8))
    if not ok:
        raise PseudoLabelError(f"could not encode pseudo label {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _write_soft(path: Path, index: np.ndarray, prob_q: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, index=index.astype(np.uint8), prob=prob_q.astype(np.uint8))


def load_soft(out_dir: str | os.PathLike, i: int, quantized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Soft pseudo label of image ``i``: ``(index uint8 (k, H, W), prob float32 (k, H, W))``
    (``prob`` as stored, uint8 ``round(255 p)``, with ``quantized=True``)."""
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    if man is None or man.get("mode") != "soft":
        raise PseudoLabelError(f"{out_dir} holds no soft pseudo labels (manifest mode: "
                               f"{None if man is None else man.get('mode')})")
    if not 0 <= i < len(man["names"]):
        raise IndexError(f"image {i} out of range: {out_dir} has {len(man['names'])} pseudo labels")
    path = out_dir / f"{man['names'][i]}.npz"
    if not path.is_file():
        raise PseudoLabelError(f"missing soft pseudo label {path}: generation incomplete "
                               "(rerun generate_pseudo_labels with resume=True)")
    with np.load(path) as z:
        index, q = z["index"], z["prob"]
    return index, (q if quantized else dequantize_prob(q))


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def _params(model, images, mode, top_k, threshold, num_classes, predict_options) -> dict:
    names = _names(images)
    return {"format": FORMAT_VERSION, "teacher": teacher_fingerprint(model), "mode": mode,
            "top_k": int(top_k) if mode == "soft" else None,
            "threshold": None if threshold is None else float(threshold),
            "predict_options": predict_options, "num_classes": int(num_classes),
            "images": _images_hash(names), "names": names,
            "storage": {"hard": "png uint8 train ids, 255 = ignore",
                        "soft": f"npz (zlib) uint8 index (k,H,W) + uint8 prob round({PROB_SCALE}p) "
                                "(k,H,W): 2k bytes/pixel before compression"}}


def _files(out_dir: Path, name: str, mode: str) -> list[Path]:
    return [out_dir / f"{name}.png"] + ([out_dir / f"{name}.npz"] if mode == "soft" else [])


def _check_args(mode, top_k, threshold, batch_size) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if threshold is not None and not 0 < float(threshold) <= 1:
        raise ValueError(f"threshold must be in (0, 1] or None, got {threshold}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _eval_image(images, i: int) -> torch.Tensor:
    """Normalised float (3, H, W) image ``i`` (normalising a uint8 one here)."""
    image = images[i]["image"]
    if not image.is_floating_point():
        from ..data.transforms import build_eval_transform
        image = build_eval_transform()({"image": image})["image"]
    return torch.as_tensor(image)


def _batches(todo: list[int], images, batch_size: int):
    """Chunks of ``todo`` whose images share one size (stacked as one batch)."""
    chunk: list[int] = []
    tensors: list[torch.Tensor] = []
    for i in todo:
        x = _eval_image(images, i)
        if tensors and (len(chunk) == batch_size or x.shape != tensors[0].shape):
            yield chunk, torch.stack(tensors)
            chunk, tensors = [], []
        chunk.append(i)
        tensors.append(x)
    if chunk:
        yield chunk, torch.stack(tensors)


@torch.no_grad()
def generate_pseudo_labels(model: torch.nn.Module, images, out_dir: str | os.PathLike, *,
                           mode: str = "hard", top_k: int = 3, threshold: float | None = None,
                           device: str | torch.device = "cpu", batch_size: int = 4,
                           resume: bool = True, progress: bool = True,
                           predict_options: dict | None = None) -> Path:
    """Run the teacher ``model`` on every image of ``images`` and store its pseudo labels in
    ``out_dir`` (layout and storage: see the module docstring). Returns ``out_dir``.

    ``images``: a ``SegDataset`` of the unlabelled pool (its labels, if any, are never read),
    ideally with the eval transform. ``predict_options`` go to ``engine.predict_logits`` (e.g.
    ``{"mode": "multiscale", "scales": (0.5, 1, 2), "flip": True}``, the teacher inference of
    CSST Sec. 4.6); default: one forward pass over the whole image.
    ``resume``: skip images whose files exist; refuse (``PseudoLabelError``) if the manifest
    names another teacher or other parameters. ``resume=False``: regenerate everything.
    """
    from ..engine import predict_logits
    _check_args(mode, top_k, threshold, batch_size)
    out_dir = Path(out_dir)
    model_was_training = model.training
    model = model.to(device).eval()
    num_classes = _num_classes(model, images, device)
    if mode == "soft" and top_k > num_classes:
        raise ValueError(f"top_k = {top_k} exceeds the teacher's {num_classes} classes")
    predict_options = dict(predict_options or {})
    params = _params(model, images, mode, top_k, threshold, num_classes, predict_options)
    old = read_manifest(out_dir)
    if old is not None and old != json.loads(json.dumps(params)):
        if resume:
            diff = sorted(k for k in set(old) | set(params) if old.get(k) != json.loads(json.dumps(params)).get(k))
            raise PseudoLabelError(
                f"{out_dir} holds pseudo labels made with other settings (differing: {', '.join(diff)}); "
                "pass resume=False to regenerate them, or use another out_dir")
        for name in old.get("names", []):  # stale labels of the old teacher: remove ours only
            for p in _files(out_dir, name, "soft"):
                p.unlink(missing_ok=True)
    if not resume:
        for name in params["names"]:
            for p in _files(out_dir, name, "soft"):
                p.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / MANIFEST, json.dumps(params, indent=1) + "\n")

    names = params["names"]
    todo = [i for i, n in enumerate(names) if not all(p.is_file() for p in _files(out_dir, n, mode))]
    bar = tqdm(total=len(names), initial=len(names) - len(todo), desc=f"pseudo labels ({mode})",
               disable=not progress, unit="img")
    for chunk, x in _batches(todo, images, int(batch_size)):
        logits = predict_logits(model, x.to(device), **predict_options)
        prob = F.softmax(logits.float(), dim=1)
        hard = hard_from_probs(prob, threshold).cpu().numpy()
        if mode == "soft":
            top_p, top_i = prob.topk(int(top_k), dim=1)
            top_i, top_q = top_i.to(torch.uint8).cpu().numpy(), quantize_prob(top_p)
        for b, i in enumerate(chunk):
            if mode == "soft":  # the npz first: the png's presence then implies both exist
                _write_soft(out_dir / f"{names[i]}.npz", top_i[b], top_q[b])
            _write_png(out_dir / f"{names[i]}.png", hard[b])
        bar.update(len(chunk))
    bar.close()
    model.train(model_was_training)
    return out_dir


def _num_classes(model, images, device) -> int:
    """The teacher's number of output classes (its logits' channels on a tiny input)."""
    from ..losses import main_logits
    n = getattr(images, "num_classes", None)
    probe = torch.zeros(1, 3, 32, 32, device=device)
    try:
        n = int(main_logits(model(probe)).shape[1])
    except RuntimeError:
        if n is None:
            raise
    return int(n)


# ---------------------------------------------------------------------------------------------
# Quality (evaluation only: the pool's labels never reach training)
# ---------------------------------------------------------------------------------------------
def label_agreement(pairs, num_classes: int) -> dict:
    """How well labels agree with the ground truth, over ``(label, gt)`` pairs of (H, W) arrays
    (255 = no label / void). Only pixels with a ground-truth class count.

    - ``coverage``: fraction of those pixels the label assigns a class to;
    - ``miou`` / ``pixel_accuracy`` / ``per_class_iou``: on the covered pixels only;
    - ``miou_all``: unlabelled pixels count as misses (a label that covers little scores low), so
      dense pseudo labels and sparse human coarse polygons compare on one scale (ST Fig. 5).
    """
    C = int(num_classes)
    cm = np.zeros((C, C + 1), np.int64)          # rows: gt class; column C: no label
    for label, gt in pairs:
        gt, label = np.asarray(gt).ravel().astype(np.int64), np.asarray(label).ravel().astype(np.int64)
        valid = gt < C
        pred = np.where(label < C, label, C)[valid]
        cm += np.bincount(gt[valid] * (C + 1) + pred, minlength=C * (C + 1)).reshape(C, C + 1)
    tp = np.diag(cm[:, :C]).astype(float)
    covered = cm[:, :C]

    def miou(fn_rows):
        union = fn_rows + covered.sum(0) - tp
        iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
        return iou
    iou_cov, iou_all = miou(covered.sum(1)), miou(cm.sum(1))
    total = cm.sum()
    return {"miou": float(np.nanmean(iou_cov)) if np.isfinite(iou_cov).any() else 0.0,
            "miou_all": float(np.nanmean(iou_all)) if np.isfinite(iou_all).any() else 0.0,
            "pixel_accuracy": float(tp.sum() / max(covered.sum(), 1)),
            "coverage": float(covered.sum() / max(total, 1)),
            "per_class_iou": [float(v) for v in iou_cov]}


def pseudo_label_quality(out_dir: str | os.PathLike, labelled_pool, num_classes: int | None = None) -> dict:
    """``label_agreement`` of the stored hard pseudo labels with ``labelled_pool``'s ground truth
    (the same images, with labels: used for measuring only, never for training). Pixels set to
    255 by the threshold are *not covered*."""
    ds = PseudoLabelDataset(out_dir, labelled_pool)
    pairs = ((ds.load_label(i), labelled_pool.load_label(i)) for i in range(len(ds)))
    return label_agreement(pairs, num_classes or ds.num_classes)


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
def one_hot_soft(label: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The soft label of a hard (H, W) label: index[0] = label and prob[0] = 1; the other k-1
    slots (and ignored pixels) have index 255 and probability 0. Real samples get this in a
    batch mixed with soft pseudo labels (so every item has the same keys)."""
    label = torch.as_tensor(label).long()
    index = torch.full((top_k, *label.shape), IGNORE_INDEX, dtype=torch.long)
    prob = torch.zeros((top_k, *label.shape), dtype=torch.float32)
    index[0] = label
    prob[0] = (label != IGNORE_INDEX).float()
    return index, prob


class PseudoLabelDataset(SegDataset):
    """The images of an unlabelled pool paired with their pseudo labels in ``out_dir``.

    A ``SegDataset``: items are ``{"image", "label", "index", "name"}`` (plus ``centroid`` when
    a sampler asks for a crop around one), ``load_label(i)`` reads the hard pseudo label (so the
    centroid index and samplers work unchanged), ``fingerprint()`` hashes the pseudo-label files.

    With soft labels, items also hold ``soft_index`` (k, H, W) int64 (255 = none) and
    ``soft_prob`` (k, H, W) float32. They go through the joint ``transform`` *stacked with the
    label* as extra planes of one ``tv_tensors.Mask``: the transforms of
    ``paperlib.data.transforms`` move only ``image``/``label``/``flow`` (any other key passes
    through untouched, i.e. would be misaligned), and a mask is resized nearest-neighbour,
    cropped, padded with 255 and flipped exactly like the label. After the transform the planes
    are split again; padded pixels have index 255 and their probability is set to 0.
    """

    def __init__(self, out_dir: str | os.PathLike, images, transform=None):
        out_dir = Path(out_dir)
        man = read_manifest(out_dir)
        if man is None:
            raise PseudoLabelError(f"no pseudo labels in {out_dir} (missing {MANIFEST}): run "
                                   "generate_pseudo_labels first")
        names = _names(images)
        if _images_hash(names) != man["images"]:
            raise PseudoLabelError(f"the pseudo labels in {out_dir} were made for another image list "
                                   f"({len(man['names'])} images) than the {len(names)} given")
        samples = []
        for s, name in zip(images.samples, names):
            label = out_dir / f"{name}.png"
            if not label.is_file():
                raise PseudoLabelError(f"missing pseudo label {label}: generation incomplete "
                                       "(rerun generate_pseudo_labels with resume=True)")
            samples.append(Sample(Path(s.image), label, s.name or Path(s.image).stem))
        super().__init__(samples, transform, root=out_dir, split="pseudo")
        self.out_dir, self.manifest, self.names = out_dir, man, names
        self.num_classes = int(man["num_classes"])
        self.class_names = tuple(getattr(images, "class_names", ()))
        self.soft = man["mode"] == "soft"
        self.top_k = int(man["top_k"]) if self.soft else 1

    def __getitem__(self, key):
        if not self.soft:
            return super().__getitem__(key)
        i, centroid = (key[0], tuple(key[1:3])) if isinstance(key, (tuple, list)) else (key, None)
        img = self.load_image(i)
        label = self.load_label(i)
        index, q = load_soft(self.out_dir, i, quantized=True)
        planes = torch.from_numpy(np.concatenate([label[None], index, q])).long()
        item = {"image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
                "label": tv_tensors.Mask(planes), "index": i, "name": self.samples[i].name}
        if centroid is not None and centroid[0] >= 0:
            item["centroid"] = centroid
        if self.transform is not None:
            item = self.transform(item)
        return _split_planes(item, self.top_k)


def _split_planes(item: dict, k: int) -> dict:
    """Undo the stacking of ``PseudoLabelDataset``: label / soft_index / soft_prob."""
    planes = torch.as_tensor(item["label"])
    index = planes[1:1 + k].long()
    prob = dequantize_prob(planes[1 + k:1 + 2 * k])
    prob[index == IGNORE_INDEX] = 0.0
    return {**item, "label": tv_tensors.Mask(planes[0].long()), "soft_index": torch.as_tensor(index),
            "soft_prob": torch.as_tensor(prob)}
