"""A-Lite: Accel with GSVNet's lightweight flow net and feature extractor (GSVNet Sec. 4.3, Fig. 3).

Accel (Jain, Wang and Gonzalez, "Accel: a corrective fusion network for efficient semantic
segmentation on video", CVPR 2019) segments a non-keyframe with two branches:

* **reference branch** -- the keyframe network's deep features (the last feature map before its
  classifier) are warped *in feature space* frame to frame with the optical flow, each frame from
  the previous frame's warped features (the warps accumulate), and the keyframe network's own
  classifier turns the warped features into class scores;
* **update branch** -- a cheap feature extractor on the current frame and a small head give a
  second score map;
* **fusion** -- a 1x1 convolution over the concatenation of the two score maps.

GSVNet's "A-Lite" (Sec. 4.3, Fig. 3, Fig. 4) is that scheme trained end-to-end with GSVNet's
lightweight flow net O (``LightFlowNet``, flow on the 1/8 grid) and its lightweight extractor (the
3-conv ``IntraNet`` on the 1/8 frame) as the update branch. The paper finds it much faster than
Accel but clearly less accurate than GSVNet ("a significant mIoU drop", "seriously distorted
object boundaries"), and, in its appendix on A-X39, that warping features moves more data than
warping the 19-class output (256 / 19 = 13.4x the channels).

Here the reference branch warps the keyframe net's features on their own grid (SwiftNet-R18: stride
4 of the 0.75-scaled frame) with O's flow resized to that grid (``resize_flow``), and the scores
are resized like the keyframe net's logits (to the scaled input, then to the 1/8 grid), so with
zero flow the reference branch *is* the keyframe prediction. The fusion starts as "reference
only" (identity on the reference scores, zero on the update scores); Accel does not say how it
initialises it.

``ALite`` has the call signature of ``GSVNet``'s non-keyframe step plus a ``keyframe`` method; the
keyframe loop (``loop.propagate``, ``evaluate_intervals``, ``nonkey_loss``, ``train_nonkey``)
carries its ``"state"`` (the warped features) from frame to frame instead of the output.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .gsvnet import IntraNet, LightFlowNet, backward_warp, resize_flow
from .loop import KeyframeSegmenter


def find_classifier(model: nn.Module) -> nn.Module:
    """The module that maps a zoo keyframe model's last feature map to class scores: SwiftNet-R18
    (``SegmentationModel`` with a ``SwiftNetHead``): ``head.classifier`` (BN-ReLU-1x1, stride 4);
    BiSeNet-R18: ``head`` (3x3 conv-BN-ReLU + 1x1, on the FFM output at stride 8)."""
    head = getattr(model, "head", None)
    if isinstance(getattr(head, "classifier", None), nn.Module):
        return head.classifier
    if isinstance(head, nn.Sequential):
        return head
    raise ValueError(f"cannot find the classifier of {type(model).__name__}; pass classifier= explicitly")


class KeyframeFeatures(nn.Module):
    """A keyframe model split at its classifier, without editing the model: ``forward(frame)``
    -> ``(features, logits on the 1/stride grid)``; ``classify(features, frame_size)`` -> the
    logits that the model would give for those features (classifier, resize to the scaled input,
    resize to the 1/stride grid of a ``frame_size`` frame), exactly as ``KeyframeSegmenter``."""

    def __init__(self, model: nn.Module, scale: float = 0.75, stride: int = 8,
                 classifier: Optional[nn.Module] = None):
        super().__init__()
        self.segmenter = KeyframeSegmenter(model, scale, stride)
        self.classifier = classifier if classifier is not None else find_classifier(model)

    def scaled_size(self, frame_size: Sequence[int]) -> tuple[int, int]:
        h, w = frame_size
        s = self.segmenter.scale
        return (h, w) if s == 1.0 else (max(round(h * s), 1), max(round(w * s), 1))

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grabbed = []
        hook = self.classifier.register_forward_pre_hook(lambda _m, args: grabbed.append(args[0]))
        try:
            logits = self.segmenter(frame)
        finally:
            hook.remove()
        if len(grabbed) != 1:
            raise RuntimeError(f"the classifier ran {len(grabbed)} times in one keyframe pass (expected once)")
        return grabbed[0], logits

    def features(self, frame: torch.Tensor) -> torch.Tensor:
        return self(frame)[0]

    def classify(self, feat: torch.Tensor, frame_size: Sequence[int]) -> torch.Tensor:
        out = self.classifier(feat)
        out = F.interpolate(out, size=self.scaled_size(frame_size), mode="bilinear", align_corners=False) \
            if tuple(out.shape[-2:]) != self.scaled_size(frame_size) else out
        h, w = frame_size
        s = self.segmenter.stride
        return F.interpolate(out, size=(max(h // s, 1), max(w // s, 1)), mode="bilinear", align_corners=False)


class ALite(nn.Module):
    """A-Lite (GSVNet Sec. 4.3 / Fig. 3; Accel, Jain et al. 2019) around a frozen keyframe model.

    Children: ``key`` (``KeyframeFeatures``, frozen, always in eval mode), ``flownet``
    (``LightFlowNet``), ``update`` (``IntraNet``: 3 convs on the 1/8 frame -> class scores),
    ``fusion`` (1x1 conv over concat(reference scores, update scores)).
    """

    def __init__(self, key_model: nn.Module, num_classes: int = 19, key_scale: float = 0.75, stride: int = 8,
                 flow_width: int = 32, update_width: int = 32, classifier: Optional[nn.Module] = None):
        super().__init__()
        if num_classes < 1 or stride < 1:
            raise ValueError(f"need num_classes >= 1 and stride >= 1, got {num_classes}, {stride}")
        self.num_classes, self.stride = num_classes, stride
        self.key = KeyframeFeatures(key_model, key_scale, stride, classifier)
        for p in self.key.parameters():
            p.requires_grad_(False)
        self.flownet = LightFlowNet(flow_width)
        self.update = IntraNet(num_classes, update_width)
        self.fusion = nn.Conv2d(2 * num_classes, num_classes, 1)
        with torch.no_grad():  # start as "reference only"
            self.fusion.weight.zero_()
            self.fusion.weight[:, :num_classes, 0, 0] = torch.eye(num_classes)
            self.fusion.bias.zero_()

    def train(self, mode: bool = True) -> "ALite":
        super().train(mode)
        self.key.eval()  # frozen: its BatchNorm statistics never move
        return self

    def grid_size(self, frame: torch.Tensor) -> tuple[int, int]:
        h, w = frame.shape[-2:]
        return max(h // self.stride, 1), max(w // self.stride, 1)

    def downscale(self, frame: torch.Tensor) -> torch.Tensor:
        return F.interpolate(frame, size=self.grid_size(frame), mode="bilinear", align_corners=False)

    def keyframe(self, frame: torch.Tensor) -> dict:
        """A keyframe: ``{"out": keyframe logits (1/8 grid), "state": its features}``."""
        feat, logits = self.key(frame)
        return {"out": logits, "state": feat}

    def forward(self, prev_feat: torch.Tensor, prev_frame: torch.Tensor, cur_frame: torch.Tensor,
                flow: Optional[torch.Tensor] = None) -> dict:
        """One non-keyframe step. ``prev_feat``: the previous frame's (warped) keyframe features;
        ``flow``: optional external backward flow (N, 2, H', W') in pixels of its own grid.

        Returns ``{"out", "state", "reference", "update", "flow"}``: fused scores, reference and
        update scores on the 1/8 grid, the warped features (the next step's ``prev_feat``) and the
        1/8-grid flow."""
        size = self.grid_size(cur_frame)
        cur_small = self.downscale(cur_frame)
        if flow is None:
            flow = self.flownet(self.downscale(prev_frame), cur_small)
        elif flow.shape[-2:] != size:
            flow = resize_flow(flow, size)
        warped = backward_warp(prev_feat, resize_flow(flow, prev_feat.shape[-2:]))
        reference = self.key.classify(warped, cur_frame.shape[-2:])
        update = self.update(cur_small)
        out = self.fusion(torch.cat((reference, update), dim=1))
        return {"out": out, "state": warped, "reference": reference, "update": update, "flow": flow}


def alite_complexity(model: ALite, frame_size: tuple[int, int] = (1024, 2048)) -> dict:
    """Parameters of A-Lite's own non-key parts (flow net, update branch, fusion; the keyframe
    classifier it reuses is counted with the keyframe net) and multiply-adds of one non-keyframe
    step at ``frame_size`` (FlopCounterMode on the meta device; the previous features are the
    keyframe net's at that size)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from paperlib.profiling import count_parameters

    parts = {name: count_parameters(getattr(model, name))[0] for name in ("flownet", "update", "fusion")}
    nbytes = sum(count_parameters(getattr(model, name))[1] for name in ("flownet", "update", "fusion"))
    net = copy.deepcopy(model).to("meta").eval()
    frames = torch.empty(1, 3, *frame_size, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        feat = net.key(frames)[0]
        with counter:
            net(feat, frames, frames)
    return {"params": sum(parts.values()), "bytes": nbytes, "params_by_part": parts,
            "macs": counter.get_total_flops() // 2, "feature_shape": tuple(feat.shape[1:]), "frame_size": frame_size}


def trained_alite(key: nn.Module, clips: Sequence, cache_params: dict, *, steps: int = 200, flow_steps: int = 300,
                  batch_size: int = 4, lr: float = 0.01, interval: int = 5, seed: int = 0, distill_weight: float = 10.0,
                  key_scale: float = 0.75, flow_width: int = 32, update_width: int = 32,
                  flow_recipe: Optional[dict] = None, curve=None, train_flow: bool = True,
                  progress: bool = True) -> tuple[ALite, dict]:
    """A-Lite trained like PF (``train.trained_pf``), cached by ``cache_params`` (identifying ``key``
    and ``clips``) plus every argument: (1) its flow net starts from the same cached pre-training
    on exact flow as PF's (``train.pretrained_flownet``, shared cache); (2) ``train_nonkey``
    end-to-end (flow net, update branch, fusion; keyframe net frozen) for ``steps`` with CE +
    ``distill_weight`` x KL (``nonkey_loss``); ``flow_recipe``, ``curve`` and ``train_flow`` as in
    ``trained_pf``.
    Returns ``(A-Lite in eval mode, info)``."""
    from .train import cached_module, flow_recipe_key, nonkey_training, pretrained_flownet

    params = {**cache_params, "alite": {"flow_width": flow_width, "update_width": update_width}, "steps": steps,
              "flow_steps": flow_steps, "batch_size": batch_size, "lr": lr, "interval": interval, "seed": seed,
              "distill_weight": distill_weight, "key_scale": key_scale, **flow_recipe_key(flow_recipe),
              **({"curve": curve.key()} if curve else {}), **({} if train_flow else {"train_flow": False})}

    def make(net: ALite) -> dict:
        epe = pretrained_flownet(net.flownet, clips, cache_params, flow_steps, seed=seed, stride=net.stride,
                                 flow_width=flow_width, progress=progress, recipe=flow_recipe)
        return nonkey_training(net, key, clips, epe, steps=steps, batch_size=batch_size, lr=lr, interval=interval,
                               seed=seed, distill_weight=distill_weight, key_scale=key_scale, curve=curve,
                               train_flow=train_flow, progress=progress)

    torch.manual_seed(seed)
    net = ALite(key, key_scale=key_scale, flow_width=flow_width, update_width=update_width)
    net, info = cached_module("alite", params, net, make)
    return net.eval(), info


def boundary_accuracy(pred, label, radius: int = 2, ignore_index: int = 255) -> dict:
    """The "distorted object boundaries" of GSVNet Sec. 4.4 as numbers: pixel accuracy of ``pred``
    against ``label`` (both (H, W) class ids) on the boundary band (pixels within ``radius`` px of a
    label change, ``propagation.quality.boundary_mask``) and on the rest; void pixels are skipped.
    Returns ``{"boundary": (correct, total), "interior": (correct, total)}`` so that clips can be
    pooled by summing."""
    import numpy as np

    from paperlib.propagation.quality import boundary_mask

    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape or label.ndim != 2:
        raise ValueError(f"pred and label must be the same (H, W), got {pred.shape}, {label.shape}")
    band, valid = boundary_mask(label, radius), label != ignore_index
    hit = pred == label
    return {name: (int(hit[valid & m].sum()), int((valid & m).sum())) for name, m in (("boundary", band),
                                                                                      ("interior", ~band))}
