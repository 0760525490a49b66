"""GSVNet's video loop (Fig. 1), its evaluation protocol (Sec. 4.1) and the training of PF.

Every ``interval``-th frame (the keyframes, starting with frame 0) goes through the image network
N at input scale 0.75; its logits are resized to the 1/8 grid. Each other frame goes through
PF (``GSVNet``) from the previous frame's 1/8 segmentation. Outputs are upsampled bilinearly to the
full resolution before the argmax (Sec. 3: "the final segmentation is obtained by upsampling").

Evaluation (Sec. 4.1): for a clip labelled at frame ``b`` (Cityscapes: the 20th, index 19) and
interval l, the pairs ``(b - i, b)``, i = 0..l-1, propagate from keyframe ``b - i`` to ``b``.
"Average mIoU" pools one confusion matrix over all l distances (as the authors' code does);
"minimum mIoU" is that of the farthest distance, l - 1.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.data.base import IGNORE_INDEX
from paperlib.data.labels import CITYSCAPES_PALETTE, colorize
from paperlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from paperlib.metrics import ConfusionMatrix
from paperlib.progress import tqdm

from .gsvnet import GSVNet, resize_flow

Frames = Union[np.ndarray, torch.Tensor, Sequence[np.ndarray]]


# --- schedule and protocol ---------------------------------------------------------------------
def keyframe_schedule(num_frames: int, interval: int) -> np.ndarray:
    """Distance of each frame from its keyframe: ``t % interval`` (0 = keyframe, frame 0 is one)."""
    if interval < 1:
        raise ValueError(f"keyframe interval must be >= 1, got {interval}")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    return np.arange(num_frames) % int(interval)


def interval_pairs(interval: int, label_index: int = 19) -> list[tuple[int, int]]:
    """Sec. 4.1: the (keyframe, labelled frame) pairs ``(b - i, b)`` for i = 0..l-1, b = ``label_index``
    (0-based; Cityscapes labels the 20th frame, index 19)."""
    if interval < 1:
        raise ValueError(f"keyframe interval must be >= 1, got {interval}")
    if label_index - (interval - 1) < 0:
        raise ValueError(f"label_index {label_index} leaves no room for interval {interval}")
    return [(label_index - i, label_index) for i in range(interval)]


# --- frames in, logits out ---------------------------------------------------------------------
def frame_tensor(frame, device=None) -> torch.Tensor:
    """One frame -> normalised (1, 3, H, W) float: a uint8 (H, W, 3) RGB array is scaled and
    ImageNet-normalised; a float tensor (3, H, W) / (1, 3, H, W) is taken as already normalised."""
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a numpy frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        x = (x - mean) / std
    elif isinstance(frame, torch.Tensor):
        x = frame.float()
    else:
        raise ValueError(f"a frame must be a numpy array or a tensor, got {type(frame).__name__}")
    x = x.unsqueeze(0) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"a tensor frame must be (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
    return x.to(device) if device is not None else x


def flow_tensor(flow, device=None) -> torch.Tensor:
    """A backward flow -> (N, 2, H, W): numpy/tensor (H, W, 2) as ``Clip.flow_bw[t]``, or (2, H, W)."""
    f = torch.as_tensor(np.asarray(flow) if isinstance(flow, np.ndarray) else flow).float()
    if f.dim() == 3 and f.shape[-1] == 2 and f.shape[0] != 2:
        f = f.permute(2, 0, 1)
    f = f.unsqueeze(0) if f.dim() == 3 else f
    if f.dim() != 4 or f.shape[1] != 2:
        raise ValueError(f"a flow must be (H, W, 2), (2, H, W) or (N, 2, H, W), got {tuple(f.shape)}")
    return f.to(device) if device is not None else f


class KeyframeSegmenter(nn.Module):
    """N of Fig. 1: the image network on the keyframe downscaled by ``scale`` (0.75 in the paper),
    logits resized bilinearly to the 1/``stride`` grid of the full frame."""

    def __init__(self, model: nn.Module, scale: float = 0.75, stride: int = 8):
        super().__init__()
        if not 0 < scale <= 4 or stride < 1:
            raise ValueError(f"need 0 < scale <= 4 and stride >= 1, got scale={scale}, stride={stride}")
        self.model, self.scale, self.stride = model, float(scale), int(stride)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        h, w = frame.shape[-2:]
        x = frame
        if self.scale != 1.0:
            size = (max(round(h * self.scale), 1), max(round(w * self.scale), 1))
            x = F.interpolate(frame, size=size, mode="bilinear", align_corners=False)
        out = self.model(x)
        out = out["out"] if isinstance(out, dict) else out
        grid = (max(h // self.stride, 1), max(w // self.stride, 1))
        return F.interpolate(out, size=grid, mode="bilinear", align_corners=False)


@contextmanager
def eval_mode(*modules: nn.Module):
    """Put ``modules`` in eval mode and restore every submodule's own mode afterwards (a fresh
    wrapper in train mode around a model in eval mode must not leave the model in train mode)."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    for mod in modules:
        mod.eval()
    try:
        yield
    finally:
        for m, was in saved:
            m.training = was


def _as_key(key_model: nn.Module, key_scale: float, stride: int) -> KeyframeSegmenter:
    return key_model if isinstance(key_model, KeyframeSegmenter) else KeyframeSegmenter(key_model, key_scale, stride)


def propagate(frames: Frames, key: KeyframeSegmenter, pf: GSVNet, interval: int, flows=None,
              device=None, progress: bool = False) -> Iterator[torch.Tensor]:
    """Yield the 1/8-grid logits (1, C, h, w) of every frame (Fig. 1): keyframes through ``key``,
    the others through ``pf`` from the previous output (or, for a ``pf`` with a ``keyframe`` method
    such as A-Lite, from the ``"state"`` it returns: see ``keyframe_step``). ``flows[t - 1]``
    (optional) is the exact backward flow of frame t (t -> t-1), e.g. ``Clip.flow_bw``; otherwise
    PF's flow net runs."""
    schedule = keyframe_schedule(len(frames), interval)
    if flows is not None and len(flows) < len(frames) - 1:
        raise ValueError(f"need {len(frames) - 1} backward flows for {len(frames)} frames, got {len(flows)}")
    state = prev_frame = None
    for t in tqdm(range(len(frames)), desc="segment_video", disable=not progress, leave=False):
        cur = frame_tensor(frames[t], device)
        if schedule[t] == 0:
            seg, state = keyframe_step(pf, key, cur)
        else:
            flow = flow_tensor(flows[t - 1], device) if flows is not None else None
            step = pf(state, prev_frame, cur, flow=flow)
            seg, state = step["out"], step.get("state", step["out"])
        yield seg
        prev_frame = cur


def keyframe_step(pf: nn.Module, key: KeyframeSegmenter, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, state)`` of a keyframe: the state a non-key step propagates is the logits for PF;
    a propagation model with its own ``keyframe(frame)`` (A-Lite: the keyframe net's features, see
    ``alite.ALite``) gives both itself, and its steps return their next ``"state"``."""
    if hasattr(pf, "keyframe"):
        out = pf.keyframe(frame)
        return out["out"], out["state"]
    seg = key(frame)
    return seg, seg


@torch.no_grad()
def segment_video(frames: Frames, key_model: nn.Module, gsv: GSVNet, interval: int = 4, *,
                  key_scale: float = 0.75, flows=None, out_size: Optional[tuple[int, int]] = None,
                  device=None, progress: bool = True) -> torch.Tensor:
    """Segment a clip: (T, H, W) int64 class ids, one map per frame, at full resolution
    (or ``out_size``). ``frames``: uint8 RGB (T, H, W, 3) / a list of such frames, or normalised
    float tensors (T, 3, H, W). ``key_model``: any zoo model (wrapped at ``key_scale``) or a
    ``KeyframeSegmenter``. ``flows``: optional exact backward flows (T-1, H, W, 2)."""
    if len(frames) == 0:
        raise ValueError("segment_video needs at least one frame")
    key = _as_key(key_model, key_scale, gsv.stride)
    preds = []
    with eval_mode(key, gsv):
        for seg, frame in zip(propagate(frames, key, gsv, interval, flows, device, progress), frames):
            size = out_size or (tuple(frame.shape[:2]) if isinstance(frame, np.ndarray) else tuple(frame.shape[-2:]))
            preds.append(F.interpolate(seg, size=size, mode="bilinear", align_corners=False).argmax(1)[0].cpu())
    return torch.stack(preds)


# --- evaluation ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_intervals(clips: Iterable, key_model: nn.Module, gsv: GSVNet, interval: int, *,
                       num_classes: int = 19, label_index: int = 19, key_scale: float = 0.75,
                       exact_flow: bool = False, device=None, progress: bool = True) -> dict:
    """Sec. 4.1 protocol over ``clips`` (objects with ``frames`` (T, H, W, 3) uint8, ``labels``
    (T, H, W) and, for ``exact_flow``, ``flow_bw``): for each pair ``(b - i, b)`` from
    ``interval_pairs`` propagate from keyframe ``b - i`` to ``b`` and score frame b at full resolution.

    Returns ``avg_miou`` (one confusion matrix pooled over all distances), ``min_miou`` (distance
    l - 1), ``miou_by_distance`` (list, index i), ``pairs`` and ``confusions`` (one
    ``ConfusionMatrix`` per distance; ``interval_metrics`` derives every shorter interval)."""
    pairs = interval_pairs(interval, label_index)
    key = _as_key(key_model, key_scale, gsv.stride)
    per_dist = [ConfusionMatrix(num_classes) for _ in pairs]
    with eval_mode(key, gsv):
        for clip in tqdm(clips, desc=f"GSVNet eval l={interval}", disable=not progress):
            label = torch.as_tensor(np.asarray(clip.labels[label_index])).long()
            for i, (a, b) in enumerate(pairs):
                flows = clip.flow_bw[a:b] if exact_flow else None
                *_, seg = propagate(clip.frames[a:b + 1], key, gsv, b - a + 1, flows, device)
                pred = F.interpolate(seg, size=label.shape, mode="bilinear", align_corners=False).argmax(1)[0]
                per_dist[i].update(pred.cpu(), label)
    pooled = ConfusionMatrix(num_classes)
    for cm in per_dist:
        pooled.merge(cm)
    return {"avg_miou": pooled.miou(), "min_miou": per_dist[-1].miou(),
            "miou_by_distance": [cm.miou() for cm in per_dist], "pairs": pairs, "confusions": per_dist}


def interval_metrics(confusions: Sequence[ConfusionMatrix], interval: int) -> dict:
    """Avg / min mIoU at a shorter interval from one ``evaluate_intervals`` run at a longer one:
    interval l uses the pairs at distances 0..l-1, a prefix of the longer run's pairs, so
    ``avg_miou`` pools ``confusions[:l]`` and ``min_miou`` is ``confusions[l - 1]``'s mIoU."""
    if not 1 <= interval <= len(confusions):
        raise ValueError(f"interval must be in 1..{len(confusions)} (the distances evaluated), got {interval}")
    pooled = ConfusionMatrix(confusions[0].num_classes)
    for cm in confusions[:interval]:
        pooled.merge(cm)
    return {"avg_miou": pooled.miou(), "min_miou": confusions[interval - 1].miou()}


def miou_by_position(preds, labels, interval: int, num_classes: int = 19) -> list[float]:
    """mIoU per distance from the keyframe over a whole clip segmented with ``interval`` (the
    world labels every frame): entry i pools frames with ``t % interval == i``."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    schedule = keyframe_schedule(len(preds), interval)
    cms = [ConfusionMatrix(num_classes) for _ in range(min(interval, len(preds)))]
    for t, d in enumerate(schedule):
        cms[d].update(torch.as_tensor(np.asarray(preds[t])).long(), torch.as_tensor(np.asarray(labels[t])).long())
    return [cm.miou() for cm in cms]


# --- training the non-keyframe part --------------------------------------------------------------
def nonkey_loss(gsv: GSVNet, key: KeyframeSegmenter, frames: torch.Tensor, label: torch.Tensor,
                flows: Optional[torch.Tensor] = None, class_weights: Optional[torch.Tensor] = None,
                distill_weight: float = 10.0, flow_weight: float = 0.0,
                ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, dict]:
    """Training objective of PF (Sec. 3.4.3 + the authors' code): frame 0 of ``frames``
    (N, T, 3, H, W, normalised) is the keyframe (frozen ``key``, no gradient); PF propagates it
    recursively to frame T-1, whose output, upsampled to ``label`` (N, H, W), gets
    ``CE(weights) + distill_weight * KL(softmax(key(frame_{T-1})) || softmax(out))`` (KL averaged
    over every element, as in the authors' code). ``flows`` (N, T-1, 2, H, W): exact backward flows;
    PF uses them instead of its flow net, unless ``flow_weight > 0``: then the flow net runs and
    ``flow_weight * EPE`` (mean end-point error on the 1/8 grid) supervises it with them."""
    if frames.dim() != 5 or frames.shape[1] < 2:
        raise ValueError(f"frames must be (N, T >= 2, 3, H, W), got {tuple(frames.shape)}")
    with torch.no_grad():
        _, state = keyframe_step(gsv, key, frames[:, 0])
    supervise = flow_weight > 0 and flows is not None
    epe = frames.new_zeros(())
    for t in range(1, frames.shape[1]):
        flow = flows[:, t - 1] if flows is not None and not supervise else None
        step = gsv(state, frames[:, t - 1], frames[:, t], flow=flow)
        if supervise:
            target = resize_flow(flows[:, t - 1], step["flow"].shape[-2:])
            epe = epe + (step["flow"] - target).norm(dim=1).mean() / (frames.shape[1] - 1)
        seg, state = step["out"], step.get("state", step["out"])
    out = F.interpolate(seg, size=label.shape[-2:], mode="bilinear", align_corners=False)
    ce = F.cross_entropy(out, label, weight=class_weights, ignore_index=ignore_index)
    parts = {"ce": ce.detach()}
    loss = ce
    if supervise:
        loss = loss + flow_weight * epe
        parts["epe"] = epe.detach()
    if distill_weight > 0:
        with torch.no_grad():
            teacher = F.interpolate(key(frames[:, -1]), size=label.shape[-2:], mode="bilinear", align_corners=False)
        kl = F.kl_div(F.log_softmax(out, 1), F.softmax(teacher, 1), reduction="none").mean()
        loss = loss + distill_weight * kl
        parts["kl"] = kl.detach()
    return loss, parts


def sample_sequences(clips: Sequence, interval: int, batch_size: int = 2, exact_flow: bool = False,
                     seed: int = 0) -> Iterator[dict]:
    """Endless training batches from labelled clips: a distance k in 1..max(l-1, 1) per batch, then
    per sample a clip and a frame b >= k; yields ``{"frames" (N, k+1, 3, H, W), "label" (N, H, W)
    [, "flows" (N, k, 2, H, W)]}`` for keyframe b - k and target b."""
    if not clips:
        raise ValueError("sample_sequences needs at least one clip")
    rng = np.random.default_rng(seed)
    while True:
        k = int(rng.integers(1, max(interval - 1, 1) + 1))
        frames, labels, flows = [], [], []
        for _ in range(batch_size):
            clip = clips[int(rng.integers(len(clips)))]
            if len(clip.frames) <= k:
                raise ValueError(f"clip of {len(clip.frames)} frames is too short for distance {k}")
            b = int(rng.integers(k, len(clip.frames)))
            frames.append(torch.cat([frame_tensor(f) for f in clip.frames[b - k:b + 1]]))
            labels.append(torch.as_tensor(np.asarray(clip.labels[b])).long())
            if exact_flow:
                flows.append(torch.cat([flow_tensor(f) for f in clip.flow_bw[b - k:b]]))
        batch = {"frames": torch.stack(frames), "label": torch.stack(labels)}
        if exact_flow:
            batch["flows"] = torch.stack(flows)
        yield batch


def train_nonkey(gsv: GSVNet, key_model: nn.Module, batches: Iterable[dict], steps: int, *,
                 lr: float = 0.002, momentum: float = 0.9, weight_decay: float = 5e-4,
                 lr_decay: float = 0.992, decay_every: int = 100, key_scale: float = 0.75,
                 class_weights: Optional[torch.Tensor] = None, distill_weight: float = 10.0,
                 flow_weight: float = 0.0, train_flow: bool = True, device=None,
                 on_step: Optional[Callable[[int], None]] = None, progress: bool = True) -> list[float]:
    """Train PF end-to-end with the keyframe network frozen (Sec. 4.1: SGD, momentum 0.9, lr
    0.002 x 0.992 every 100 iterations, weight decay 5e-4). ``batches`` yields dicts as
    ``sample_sequences`` does. The flow net learns without flow supervision, through the loss on
    the warped segmentation, as in the paper (``train_flow=False`` freezes it); with batches that
    carry exact ``flows`` and ``flow_weight > 0`` it is also supervised by their end-point error
    (see ``nonkey_loss``). ``on_step(i)`` runs after optimizer step i (1-based), e.g. a held-out
    evaluation (it must leave the modules' modes as it found them). Returns the losses."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    key = _as_key(key_model, key_scale, gsv.stride).eval()
    for p in key.parameters():
        p.requires_grad_(False)
    for p in gsv.flownet.parameters():
        p.requires_grad_(train_flow)
    params = [p for p in gsv.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=decay_every, gamma=lr_decay)
    gsv.train()
    losses, it = [], iter(batches)
    bar = tqdm(range(steps), desc="train GSVNet", disable=not progress)
    for _ in bar:
        batch = {k: v.to(device) if device is not None else v for k, v in next(it).items()}
        loss, _parts = nonkey_loss(gsv, key, batch["frames"], batch["label"], batch.get("flows"),
                                   class_weights, distill_weight, flow_weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite GSVNet loss {loss.item()} at step {len(losses)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_step is not None:
            on_step(len(losses))
    return losses


# --- demo output -------------------------------------------------------------------------------
def write_overlay_video(path, frames, preds, fps: float = 10.0, alpha: float = 0.5,
                        palette: np.ndarray = CITYSCAPES_PALETTE) -> Path:
    """Write ``(1 - alpha) * frame + alpha * colour(pred)`` for every frame to a video file
    (``.avi`` -> MJPG, otherwise mp4v), via a temporary file and a rename. ``frames`` uint8
    (T, H, W, 3) RGB; ``preds`` (T, H, W) class ids (255 = void, drawn black)."""
    path = Path(path)
    if len(frames) != len(preds) or len(frames) == 0:
        raise ValueError(f"need the same non-zero number of frames and predictions, got {len(frames)}, {len(preds)}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    h, w = np.asarray(frames[0]).shape[:2]
    codec = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*codec), float(fps), (w, h))
    try:
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {codec} video to {path}")
        for frame, pred in zip(frames, preds):
            colour = colorize(np.asarray(pred), palette)
            mixed = cv2.addWeighted(np.asarray(frame, np.uint8), 1 - alpha, colour, alpha, 0)
            writer.write(cv2.cvtColor(mixed, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_overlay_video(frames, preds, paper: str, figure_id: str, *, profile: str, params=None, started=None,
                       notes=None, fps: float = 10.0, alpha: float = 0.5, root=None) -> dict:
    """The overlay demo as a versioned figure: ``figures/<paper>/<figure_id>.<profile>.avi`` (MJPG,
    ``write_overlay_video``) plus its manifest ``.json``, written together atomically, like
    ``repro.save_figure`` does for a PNG. Returns ``{"avi": path, "json": path}``."""
    from paperlib import repro

    manifest_path = repro.figure_paths(paper, figure_id, profile, root)["json"]
    paths = {"avi": manifest_path.with_suffix(".avi"), "json": manifest_path}
    with tempfile.TemporaryDirectory() as d:
        data = write_overlay_video(Path(d) / "overlay.avi", frames, preds, fps, alpha).read_bytes()
    manifest = repro.make_manifest("video", paper, figure_id, profile, data, files=list(paths.values()),
                                   params=params, started=started, notes=notes,
                                   extra={"frames": len(frames), "fps": fps, "alpha": alpha})
    repro.atomic_write_files({paths["avi"]: data, paths["json"]: repro._dump_json(manifest)})
    repro._log_write(f"figures/{paper}/{figure_id}.{profile}")
    return paths
