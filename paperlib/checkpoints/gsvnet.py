"""GSVNet's official release (robert80203/GSVNet) -> paperlib's models and ``paperlib.video`` PF.

The release (``config/cityscapes.py`` names the files; the README links them on Google Drive) has
three kinds of checkpoint, told apart by their keys (:func:`detect`):

* ``swiftnet`` - ``cityscapes-swnet-R18.pt``: the SwiftNet-R18 keyframe network, a bare state dict
  of ``SemsegModel`` (``trainer/gsvnet_trainer.py: init_segnet`` loads it with ``strict=True``, so
  no ``module.`` prefix): ``backbone.*`` = ResNet-18 + SPP ``backbone.spp.spp.{spp_bn,spp0..2,
  spp_fuse}.{norm,conv}`` + ladder ``backbone.upsample.{0,1,2}.{bottleneck,blend_conv}.{norm,conv}``
  (skips layer3, layer2, layer1); ``logits.{norm,conv}`` (1x1 conv with bias); buffers
  ``backbone.img_mean`` / ``img_std``, unused by the forward pass and kept as extras.
* ``bisenet`` - ``cityscapes-bisenet-R18.pth``: BiSeNet-R18, nested under ``"state_dict"`` or
  ``"model"`` (``init_segnet`` tries them in that order; TorchSeg's ``Engine.save_checkpoint``
  writes ``{"model", "optimizer", "epoch", "iteration"}`` with ``module.`` stripped), loaded with
  ``strict=True`` into ``BiSeNet(real_time=False)``: ``context_path.*`` (ResNet-18),
  ``spatial_path.{conv_7x7,conv_3x3_1,conv_3x3_2,conv_1x1}``, ``global_context.1``, ``ffm``,
  ``arms``, ``refines``, ``heads.{0,1}`` (auxiliary, 256 channels: present because
  ``real_time=False``) and ``heads.2`` (64 channels).
* ``pf`` - ``gsvnet_swnet_r18.tar`` / ``gsvnet_bisenet_r18.tar``: ``GSVNet_Trainer.save_state``'s
  ``{"epoch", "state_dict": End2End(GuidedSpatiallyVaryingConv).state_dict() -> "grm.*",
  "optimizer", "best_pred", "current_pred", "args": argparse.Namespace, "test_best_pred",
  "current_test_pred", "state_dict_of": FlowLight.state_dict()}``; both state dicts are taken from
  ``.module`` of the DataParallel / DDP wrapper, so they carry no ``module.`` prefix.

Facts read from the authors' code (not copied): ``trainer/gsvnet_trainer.py``, ``trainer/base.py``,
``util/saver.py``, ``model/end2end.py``, ``model/gsv/network.py``, ``model/guide/networks.py``,
``model/intra/networks.py``, ``model/flownet/networks.py`` (``FlowLight``),
``model/warp/{mc_mod,grid_sampler}.py``, ``util/transforms/img_utils.py``,
``model/swiftnet/configs/import_swiftnet.py``, ``model/swiftnet/models/{semseg,util}.py``,
``model/swiftnet/models/resnet/resnet_single_scale.py``, ``model/bisenet/bisenet_resnet18.py`` and
``model/bisenet/resnet.py``. *Assumed, not verified:* BiSeNet's building blocks come from
``model/bisenet/opt.py``, which the stored index of the repository does not hold; their attribute
names (``ConvBnRelu`` = ``.conv`` + ``.bn``; ``AttentionRefinement`` = ``conv_3x3`` +
``channel_attention.1``; ``FeatureFusion`` = ``conv_1x1`` + ``channel_attention.{1,2}`` without BN)
are those of TorchSeg's ``furnace/seg_opr/seg_oprs.py`` (yu-changqian/TorchSeg), of which GSVNet's
BiSeNet files are copies. A file that names them otherwise is refused with the list of keys.

**Where the release differs from the paper's text (and from ``paperlib.video.gsvnet``), the
converted model reproduces the release:**

* the guide emits **11** weights: identity, 8 one-pixel shifts, a 9th conv3d filter that stays all
  zero (``move_filter = 9`` filters for 8 shifts), and the intra prediction; the zero chunk still
  takes part in the normalisation. :class:`ReleaseDelayKernels` holds identity + 8 shifts + that
  zero filter (10 chunks, + intra = 11);
* every conv of the flow net, intra net and guide has a bias; the guide ends in conv-BN-ReLU (the
  ReLU is ``normalize_guidance``'s, identical);
* the flow net (``--optical-flow-network light``) takes ``cat(current, previous)`` and the PF nets
  take **BGR** images (the loader's ``FlipChannels`` precedes ``Normalize`` with BGR-ordered
  mean/std; only the keyframe net gets RGB back through ``tensor_flip_channel``); the converter
  permutes those conv input channels, so the converted PF takes ``(previous, current)`` RGB
  frames as paperlib's does (exact);
* the warp divides the flow by 4 (``MC_Module_Batch``): the converter scales ``toflow`` by 1/4
  (exact, a power of two), so the converted flow net predicts 1/8-grid pixels as paperlib's;
* the edge map is binary (``edge != 0``) of a Laplacian over the argmax with zero padding, so the
  image border counts as an edge wherever the class id is not 0;
* SwiftNet's ladder taps each ResNet stage's residual sum *before* its ReLU (:class:`PreReluTaps`);
* BiSeNet's context path upsamples with ``align_corners=True``; its auxiliary heads (256
  channels, training only) are kept as extras.

**Release conventions** (``conventions="release"``, the default of every converted model; the
option ``"paperlib"`` runs the same weights with paperlib's choices), six places:

1. frame downscaling to the 1/8 grid: bilinear ``align_corners=True`` (paperlib: False);
2. the flow net's 1/32 -> 1/8 resize: ``align_corners=True`` (paperlib: False);
3. the warp's grid is normalised for ``align_corners=True`` but sampled with
   ``grid_sample``'s default ``align_corners=False`` (paperlib: True on both sides);
4. the warp pads with zeros (paperlib: border);
5. the edge Laplacian pads with zeros (paperlib: replicate);
6. the guide's two upsamplings are fixed x2 with ``align_corners=True`` (paperlib: to the exact
   size, ``align_corners=False``); the release therefore needs a 1/8 grid divisible by 4.

The keyframe protocol of the release (:class:`ReleaseKeyframe`) also resizes with
``align_corners=True``: the frame to 0.75 (``H // 4 * 3``), the logits to the 1/8 grid, and the
final prediction to the label size.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.models.backbones import LAYERS, ResNetBackbone, init_weights
from paperlib.models.fast import BiSeNet, SwiftNetHead
from paperlib.models.segmentation import SegmentationModel
from paperlib.video.gsvnet import (GSVNet, GuidedSVConv, GuidingNetwork, IdealDelayKernels, LightFlowNet,
                                   SegmentationWarp, backward_warp, edge_map, guided_filter, normalize_guidance)
from paperlib.video.loop import KeyframeSegmenter

from ._io import CheckpointError, KeyMap, Released, convert, inverse_order, permute_in, read_torch, sha256_file, unwrap

CONVENTIONS = ("release", "paperlib")
KINDS = ("swiftnet", "bisenet", "pf")

#: Input normalisation of the release per keyframe network (trainer/gsvnet_trainer.py), in RGB
#: order: SwiftNet on [0, 255], BiSeNet on [0, 1] (ImageNet). The PF nets see the same values.
INPUTS = {
    "swiftnet": {"mean": (73.15, 82.90, 72.3), "std": (47.67, 48.49, 47.73), "scale": 255.0},
    "bisenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": 1.0},
}


def _check_conventions(conventions: str) -> str:
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}, got {conventions!r}")
    return conventions


def set_conventions(model: nn.Module, conventions: str) -> nn.Module:
    """Switch every release module inside ``model`` to ``"release"`` or ``"paperlib"`` conventions."""
    _check_conventions(conventions)
    for m in model.modules():
        if hasattr(m, "conventions"):
            m.conventions = conventions
    return model


def _biased(module: nn.Module) -> nn.Module:
    """Give every bias-free Conv2d inside ``module`` a bias (the release's convs all have one)."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d) and child.bias is None:
            setattr(module, name, nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                            child.padding, child.dilation, child.groups, bias=True))
        else:
            _biased(child)
    return module


# --- keyframe networks ---------------------------------------------------------------------------
class PreReluTaps(ResNetBackbone):
    """ResNet trunk returning each stage's last residual sum *before* its ReLU (SwiftNet's taps;
    the next stage still gets the ReLU'd tensor). Same parameters as :class:`ResNetBackbone`."""

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.forward_stem(x)
        out = OrderedDict()
        for name in LAYERS:
            layer = getattr(self, name)
            for block in layer[:-1]:
                x = block(x)
            last = layer[-1]
            identity = last.downsample(x) if last.downsample is not None else x
            y = F.relu(last.bn1(last.conv1(x)))
            if hasattr(last, "conv3"):  # Bottleneck
                y = F.relu(last.bn2(last.conv2(y)))
                pre = last.bn3(last.conv3(y)) + identity
            else:
                pre = last.bn2(last.conv2(y)) + identity
            out[name] = pre
            x = F.relu(pre)
        return out


class ReleaseSwiftNet(SegmentationModel):
    """SwiftNet-R18 as GSVNet's release builds it: paperlib's SwiftNet head on :class:`PreReluTaps`.
    ``forward`` = logits upsampled to the input (``align_corners=False``, SwiftNet's own);
    ``native_logits`` = the stride-4 logits GSVNet's keyframe step resizes."""

    def __init__(self, num_classes: int = 19, width: Optional[int] = None):
        backbone = PreReluTaps(18, width=width)
        head = SwiftNetHead(backbone.channels, num_classes, width)
        init_weights(head)
        super().__init__(backbone, head)

    def native_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class ReleaseBiSeNet(BiSeNet):
    """BiSeNet-R18 as GSVNet's release (TorchSeg) builds it: paperlib's :class:`BiSeNet` without
    auxiliary heads, its context path resized with ``align_corners`` (True in the release).
    ``native_logits`` = stride-8 logits; ``forward`` upsamples them to the input."""

    def __init__(self, num_classes: int = 19, width: Optional[int] = None, conventions: str = "release"):
        super().__init__(num_classes, width, 18, aux=False)
        self.conventions = _check_conventions(conventions)

    def _up(self, x, size):
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.conventions == "release")

    def native_logits(self, x: torch.Tensor) -> torch.Tensor:
        spatial = self.spatial_path(x)
        feats = self.backbone(x)
        ctx = self._up(self.global_context(feats["layer4"]), feats["layer4"].shape[-2:])
        for arm, refine, name, target in zip(self.arms, self.refines, ("layer4", "layer3"), ("layer3", "layer2")):
            ctx = refine(self._up(arm(feats[name]) + ctx, feats[target].shape[-2:]))
        return self.head(self.ffm(spatial, self._up(ctx, spatial.shape[-2:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._up(self.native_logits(x), x.shape[-2:])


class ReleaseKeyframe(KeyframeSegmenter):
    """The release's keyframe step (trainer/gsvnet_trainer.py): the frame resized to
    ``(H // 4 * 3, W // 4 * 3)`` and the network's native logits to the 1/8 grid ``(H // 8,
    W // 8)``, both bilinear with ``align_corners=True`` (``conventions="paperlib"``: paperlib's
    :class:`~paperlib.video.loop.KeyframeSegmenter` behaviour)."""

    def __init__(self, model: nn.Module, scale: float = 0.75, stride: int = 8, conventions: str = "release"):
        super().__init__(model, scale, stride)
        self.conventions = _check_conventions(conventions)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        if self.conventions != "release":
            return super().forward(frame)
        h, w = frame.shape[-2:]
        x = frame
        if self.scale == 0.75:
            size = (h // 4 * 3, w // 4 * 3)
        else:
            size = (max(int(h * self.scale), 1), max(int(w * self.scale), 1))
        if size != (h, w):
            x = F.interpolate(frame, size=size, mode="bilinear", align_corners=True)
        native = getattr(self.model, "native_logits", None)
        out = native(x) if native is not None else self.model(x)
        return F.interpolate(out, size=(max(h // self.stride, 1), max(w // self.stride, 1)), mode="bilinear",
                             align_corners=True)


# --- PF: propagation framework -----------------------------------------------------------------
class ReleaseLightFlowNet(LightFlowNet):
    """The release's FlowLight: paperlib's :class:`LightFlowNet` with biased convs; the 1/32 ->
    1/8 resize follows the conventions (``align_corners=True`` in the release)."""

    def __init__(self, width: int = 32, conventions: str = "release"):
        super().__init__(width)
        _biased(self)
        self.conventions = _check_conventions(conventions)

    def forward(self, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        x = self.down(torch.cat((prev, cur), dim=1))
        outs, acc = [], 0
        for conv in self.dilated:
            acc = conv(x) + acc
            outs.append(acc)
        x = self.merge(torch.cat(outs, dim=1)) + x
        return F.interpolate(self.to_flow(x), size=prev.shape[-2:], mode="bilinear",
                             align_corners=self.conventions == "release")


class ReleaseDelayKernels(IdealDelayKernels):
    """Identity + the 8 one-pixel shifts + the release's all-zero 9th conv3d filter (10 chunks)."""

    def __init__(self):
        super().__init__(3, learned=False)
        self.register_buffer("weight", torch.cat([self.weight, torch.zeros(1, 1, 3, 3)]))

    @property
    def num_filters(self) -> int:
        return self.weight.shape[0]


class ReleaseGuidingNetwork(GuidingNetwork):
    """The release's guide: paperlib's U-net with biased convs and a conv-BN head; its two
    upsamplings follow the conventions (release: fixed x2, ``align_corners=True``)."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, conventions: str = "release"):
        super().__init__(in_channels, out_channels, width)
        _biased(self)
        self.head = nn.Sequential(nn.Conv2d(width, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels))
        self.conventions = _check_conventions(conventions)

    def _up(self, y: torch.Tensor, size) -> torch.Tensor:
        if self.conventions == "release":
            return F.interpolate(y, size=(2 * y.shape[-2], 2 * y.shape[-1]), mode="bilinear", align_corners=True)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        y = self.down(s)
        h, w = s.shape[-2:]
        y = self.up1(self._up(y, ((h + 1) // 2, (w + 1) // 2)))
        y = self.up2(self._up(y, (h, w)))
        if y.shape[-2:] != s.shape[-2:]:
            raise ValueError(f"release conventions: the guide's fixed x2 upsampling gives {tuple(y.shape[-2:])} for a "
                             f"{(h, w)} grid (the release needs a 1/8 grid divisible by 4; use conventions='paperlib')")
        return self.head(s + y)


def release_edge(seg: torch.Tensor, conventions: str = "release") -> torch.Tensor:
    """The release's binary edge map: ``Laplacian(argmax) != 0`` with zero padding (release) or
    replicated borders (``"paperlib"``, = ``edge_map(seg, "binary")``)."""
    if conventions != "release":
        return edge_map(seg, "binary")
    ids = seg.argmax(dim=1, keepdim=True).to(seg.dtype)
    lap = torch.ones(1, 1, 3, 3, dtype=seg.dtype, device=seg.device)
    lap[0, 0, 1, 1] = -8.0
    return (F.conv2d(ids, lap, padding=1) != 0).to(seg.dtype)


class ReleaseGuidedSVConv(GuidedSVConv):
    """The release's fusion: :class:`ReleaseDelayKernels` (10 chunks) + intra = 11 guide weights."""

    def __init__(self, num_classes: int = 19, guide_width: int = 32, conventions: str = "release"):
        super().__init__(num_classes, 3, False, guide_width, "binary", True)
        self.delay = ReleaseDelayKernels()
        self.num_weights = self.delay.num_filters + 1
        self.guide = ReleaseGuidingNetwork(num_classes + 1, self.num_weights, guide_width, conventions)
        self.conventions = _check_conventions(conventions)

    def forward(self, warped: torch.Tensor, intra: Optional[torch.Tensor] = None) -> dict:
        if intra is None:
            raise ValueError("the release's fusion needs the intra prediction")
        edge = release_edge(warped, self.conventions)
        guidance = normalize_guidance(self.guide(torch.cat((intra, edge), dim=1)))
        chunks = torch.cat((self.delay(warped), intra.unsqueeze(2)), dim=2)
        return {"out": guided_filter(chunks, guidance), "guidance": guidance, "edge": edge}


class ReleaseWarp(SegmentationWarp):
    """Eq. 1 as the release computes it (``GridSampler``): the grid normalised for
    ``align_corners=True`` (``linspace(-1, 1)`` + 2 flow / (size - 1)), sampled with
    ``align_corners=False`` and zero padding; ``"paperlib"``: :func:`backward_warp`."""

    def __init__(self, conventions: str = "release"):
        super().__init__()
        self.conventions = _check_conventions(conventions)

    def forward(self, seg: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        if self.conventions != "release":
            return backward_warp(seg, flow)
        n, _, h, w = flow.shape
        base_x = torch.linspace(-1, 1, w, device=flow.device, dtype=flow.dtype).view(1, 1, w).expand(n, h, w)
        base_y = torch.linspace(-1, 1, h, device=flow.device, dtype=flow.dtype).view(1, h, 1).expand(n, h, w)
        gx = flow[:, 0] / (w - 1) * 2 + base_x
        gy = flow[:, 1] / (h - 1) * 2 + base_y
        grid = torch.stack((gx, gy), dim=-1)
        return F.grid_sample(seg, grid.to(seg.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


class ReleaseGSVNet(GSVNet):
    """PF as GSVNet's release builds it (see the module docstring), with paperlib's interface:
    ``forward(prev_seg, prev_frame, cur_frame)`` on RGB frames normalised as the keyframe net's
    input (:data:`INPUTS`). ``conventions``: "release" (default) or "paperlib"."""

    def __init__(self, num_classes: int = 19, conventions: str = "release"):
        super().__init__(num_classes, kernel_size=3, learned_kernels=False, flow_width=32, intra_width=32,
                         guide_width=32, edge="binary", use_intra=True, stride=8)
        self.flownet = ReleaseLightFlowNet(32, conventions)
        _biased(self.intra)
        self.warp = ReleaseWarp(conventions)
        self.fusion = ReleaseGuidedSVConv(num_classes, 32, conventions)
        self.conventions = _check_conventions(conventions)

    def downscale(self, frame: torch.Tensor) -> torch.Tensor:
        return F.interpolate(frame, size=self.grid_size(frame), mode="bilinear",
                             align_corners=self.conventions == "release")


# --- key maps ----------------------------------------------------------------------------------------
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _rename(key: str, table) -> str:
    for pattern, repl in table:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(key)


_SWIFT = [
    (r"^head\.spp\.bottleneck\.0\.", "backbone.spp.spp.spp_bn.norm."),
    (r"^head\.spp\.bottleneck\.2\.", "backbone.spp.spp.spp_bn.conv."),
    (r"^head\.spp\.levels\.(\d+)\.0\.", r"backbone.spp.spp.spp\1.norm."),
    (r"^head\.spp\.levels\.(\d+)\.2\.", r"backbone.spp.spp.spp\1.conv."),
    (r"^head\.spp\.fuse\.0\.", "backbone.spp.spp.spp_fuse.norm."),
    (r"^head\.spp\.fuse\.2\.", "backbone.spp.spp.spp_fuse.conv."),
    (r"^head\.ups\.(\d+)\.skip\.0\.", r"backbone.upsample.\1.bottleneck.norm."),
    (r"^head\.ups\.(\d+)\.skip\.2\.", r"backbone.upsample.\1.bottleneck.conv."),
    (r"^head\.ups\.(\d+)\.blend\.0\.", r"backbone.upsample.\1.blend_conv.norm."),
    (r"^head\.ups\.(\d+)\.blend\.2\.", r"backbone.upsample.\1.blend_conv.conv."),
    (r"^head\.classifier\.0\.", "logits.norm."),
    (r"^head\.classifier\.2\.", "logits.conv."),
    (r"^backbone\.", "backbone."),
]

_BISE_SPATIAL = ("conv_7x7", "conv_3x3_1", "conv_3x3_2", "conv_1x1")
_BISE = [
    (r"^backbone\.", "context_path."),
    (r"^spatial_path\.(\d)\.0\.", lambda m: f"spatial_path.{_BISE_SPATIAL[int(m.group(1))]}.conv."),
    (r"^spatial_path\.(\d)\.1\.", lambda m: f"spatial_path.{_BISE_SPATIAL[int(m.group(1))]}.bn."),
    (r"^global_context\.1\.0\.", "global_context.1.conv."),
    (r"^global_context\.1\.1\.", "global_context.1.bn."),
    (r"^arms\.(\d)\.conv\.0\.", r"arms.\1.conv_3x3.conv."),
    (r"^arms\.(\d)\.conv\.1\.", r"arms.\1.conv_3x3.bn."),
    (r"^arms\.(\d)\.attention\.1\.0\.", r"arms.\1.channel_attention.1.conv."),
    (r"^arms\.(\d)\.attention\.1\.1\.", r"arms.\1.channel_attention.1.bn."),
    (r"^refines\.(\d)\.0\.", r"refines.\1.conv."),
    (r"^refines\.(\d)\.1\.", r"refines.\1.bn."),
    (r"^ffm\.conv\.0\.", "ffm.conv_1x1.conv."),
    (r"^ffm\.conv\.1\.", "ffm.conv_1x1.bn."),
    (r"^ffm\.attention\.1\.", "ffm.channel_attention.1.conv."),
    (r"^ffm\.attention\.3\.", "ffm.channel_attention.2.conv."),
    (r"^head\.0\.0\.", "heads.2.conv_3x3.conv."),
    (r"^head\.0\.1\.", "heads.2.conv_3x3.bn."),
    (r"^head\.1\.", "heads.2.conv_1x1."),
]

_PF = [
    (r"^flownet\.down\.0\.", "state_dict_of.conv1."),
    (r"^flownet\.down\.1\.", "state_dict_of.conv2."),
    (r"^flownet\.dilated\.(\d)\.", lambda m: f"state_dict_of.conv_dilate_{int(m.group(1)) + 1}."),
    (r"^flownet\.merge\.", "state_dict_of.conv_merge."),
    (r"^flownet\.to_flow\.", "state_dict_of.toflow."),
    (r"^intra\.net\.", "grm.intra_net.intra_net."),
    (r"^fusion\.delay\.weight$", "grm.ideal_dk.filter_copy_s"),
    (r"^fusion\.guide\.stem\.", "grm.guide.guide_conv."),
    (r"^fusion\.guide\.down\.0\.", "grm.guide.guide_conv_feat."),
    (r"^fusion\.guide\.down\.1\.0\.", "grm.guide.guide_conv_feat.3."),
    (r"^fusion\.guide\.down\.1\.1\.", "grm.guide.guide_conv_feat.4."),
    (r"^fusion\.guide\.up1\.0\.", "grm.guide.guide_deconv.1."),
    (r"^fusion\.guide\.up1\.1\.", "grm.guide.guide_deconv.2."),
    (r"^fusion\.guide\.up2\.0\.", "grm.guide.guide_deconv.5."),
    (r"^fusion\.guide\.up2\.1\.", "grm.guide.guide_deconv.6."),
    (r"^fusion\.guide\.head\.", "grm.guide.guide_decoder."),
]

#: paperlib input channel c of the flow net's first conv reads release channel ORDER[c]: paperlib
#: feeds (previous RGB, current RGB), the release (current BGR, previous BGR).
FLOW_IN_ORDER = (5, 4, 3, 2, 1, 0)
BGR = (2, 1, 0)


def _scale(f: float):
    return lambda t: t * f


def _delay_to_paperlib(t: torch.Tensor) -> torch.Tensor:
    ident = torch.zeros(1, 1, 3, 3, dtype=t.dtype)
    ident[0, 0, 1, 1] = 1.0
    return torch.cat([ident, t[:, :, 0]])


def _delay_to_release(t: torch.Tensor) -> torch.Tensor:
    return t[1:].unsqueeze(2).contiguous()


def _keymap(name: str, model: nn.Module, table, special=None) -> KeyMap:
    km = KeyMap(name)
    special = special or {}
    for key in model.state_dict():
        if key in special:
            km.add(_rename(key, table), key, *special[key])
        else:
            km.add(_rename(key, table), key)
    return km


def swiftnet_keymap(model: ReleaseSwiftNet) -> KeyMap:
    km = _keymap("GSVNet-release SwiftNet-R18", model, _SWIFT)
    km.extras.update({"backbone.img_mean": "input mean buffer, unused by the forward pass (see INPUTS)",
                      "backbone.img_std": "input std buffer, unused by the forward pass (see INPUTS)"})
    return km


def bisenet_keymap(model: ReleaseBiSeNet, num_aux_keys=()) -> KeyMap:
    km = _keymap("GSVNet-release BiSeNet-R18", model, _BISE)
    for k in num_aux_keys:
        km.extras[k] = "auxiliary head (training only; 256 channels where paperlib's aux heads have 128)"
    return km


def pf_keymap(model: ReleaseGSVNet) -> KeyMap:
    special = {
        "flownet.down.0.0.weight": (permute_in(FLOW_IN_ORDER), permute_in(inverse_order(FLOW_IN_ORDER))),
        "intra.net.0.weight": (permute_in(BGR), permute_in(BGR)),
        "flownet.to_flow.weight": (_scale(0.25), _scale(4.0)),
        "flownet.to_flow.bias": (_scale(0.25), _scale(4.0)),
        "fusion.delay.weight": (_delay_to_paperlib, _delay_to_release),
    }
    return _keymap("GSVNet-release PF", model, _PF, special)


# --- reading -------------------------------------------------------------------------------------------
def detect(obj) -> str:
    """Which release checkpoint ``obj`` (as read) is: "pf", "swiftnet" or "bisenet"."""
    if isinstance(obj, dict) and "state_dict_of" in obj:
        return "pf"
    if isinstance(obj, dict) and ("state_dict" in obj or "model" in obj):
        inner = obj.get("state_dict", obj.get("model"))
        if isinstance(inner, dict) and any(k.startswith(("grm.", "module.grm.")) for k in inner):
            return "pf"
        obj = inner
    if isinstance(obj, dict):
        keys = list(obj)
        if any(k.startswith(("context_path.", "module.context_path.")) for k in keys):
            return "bisenet"
        if any(k.startswith(("backbone.spp.", "module.backbone.spp.")) for k in keys):
            return "swiftnet"
    raise CheckpointError("not a GSVNet release checkpoint: expected a PF file ('state_dict' with grm.* keys and "
                          "'state_dict_of'), a SwiftNet state dict (backbone.spp.*) or a BiSeNet one (context_path.*)")


def _meta(obj) -> dict:
    info = {}
    if isinstance(obj, dict):
        for k in ("epoch", "best_pred", "current_pred", "iteration"):
            v = obj.get(k)
            if isinstance(v, (int, float)) or hasattr(v, "item"):
                info[k] = float(v) if not isinstance(v, int) else v
        args = obj.get("args")
        if args is not None and hasattr(args, "__dict__"):
            info["args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, list))}
    return info


def load(path, *, num_classes: int = 19, width: Optional[int] = None, conventions: str = "release",
         kind: Optional[str] = None, keyframe: Optional[str] = None, state=None) -> Released:
    """Convert one GSVNet release checkpoint (``kind`` detected unless given).

    ``width``: the keyframe net's base width (test fixtures; ``None`` = the release's size).
    ``keyframe``: for a PF file, which keyframe network's input normalisation it was trained with
    ("swiftnet" or "bisenet"; default from the file's saved ``args.segnet``, else "swiftnet").
    ``state``: an already-read checkpoint object (then ``path`` only names it)."""
    _check_conventions(conventions)
    obj = read_torch(path) if state is None else state
    kind = kind or detect(obj)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    info = _meta(obj)
    if kind == "swiftnet":
        sd, where = unwrap(obj, path)
        model = ReleaseSwiftNet(num_classes, width)
        conv = convert(sd, swiftnet_keymap(model), model, str(path))
        inputs = INPUTS["swiftnet"]
    elif kind == "bisenet":
        sd, where = unwrap(obj, path, keys=("state_dict", "model"))   # init_segnet's order
        model = ReleaseBiSeNet(num_classes, width, conventions)
        aux = [k for k in sd if k.startswith(("heads.0.", "heads.1."))]
        conv = convert(sd, bisenet_keymap(model, aux), model, str(path))
        inputs = INPUTS["bisenet"]
    else:
        if width is not None:
            raise ValueError("the release's PF has fixed widths (32); width applies to keyframe networks only")
        if not isinstance(obj, dict) or "state_dict" not in obj or "state_dict_of" not in obj:
            raise CheckpointError(f"{path}: a GSVNet PF checkpoint needs 'state_dict' (grm.*) and 'state_dict_of' "
                                  f"(the flow net); found {sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__}")
        grm, _ = unwrap({"state_dict": obj["state_dict"]}, path)
        of, _ = unwrap({"state_dict": obj["state_dict_of"]}, path)
        sd = dict(grm)
        sd.update({f"state_dict_of.{k}": v for k, v in of.items()})
        where = "['state_dict'] + ['state_dict_of']"
        model = ReleaseGSVNet(num_classes, conventions)
        conv = convert(sd, pf_keymap(model), model, str(path))
        segnet = keyframe or info.get("args", {}).get("segnet") or "swiftnet"
        if segnet not in INPUTS:
            raise ValueError(f"keyframe must be 'swiftnet' or 'bisenet', got {segnet!r}")
        inputs = dict(INPUTS[segnet], keyframe=segnet)
    set_conventions(model, conventions)
    model.eval()
    info.update(nesting=where, conventions=conventions)
    return Released(model, "gsvnet", kind, str(path), sha256_file(path) if state is None else "", conv, dict(inputs), info)


def pf_release_state(released: Released) -> dict:
    """The PF tensors back in the release's nesting: ``{"state_dict": grm.*, "state_dict_of": ...}``."""
    flat = released.conversion.to_release()
    return {"state_dict": {k: v for k, v in flat.items() if not k.startswith("state_dict_of.")},
            "state_dict_of": {k[len("state_dict_of."):]: v for k, v in flat.items() if k.startswith("state_dict_of.")}}
