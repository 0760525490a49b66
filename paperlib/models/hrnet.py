"""HRNetV2 (Wang et al., "Deep High-Resolution Representation Learning", 2020) and OCR-HRNet.

CSST's strongest model is OCR with an HRNet-W48 backbone (CSST Table 3 and test-set entries).
HRNet is not in torchvision; this follows the HRNetV2 paper and the public
HRNet/HRNet-Semantic-Segmentation definition (read for facts, written anew here):

* stem: two 3x3 stride-2 conv-BN-ReLU (64 channels) -> stride 4;
* stage 1: 4 Bottleneck blocks (64 -> 256);
* stages 2 / 3 / 4: 1 / 4 / 3 modules with 2 / 3 / 4 parallel branches of ``W, 2W, 4W, 8W``
  channels at strides 4 / 8 / 16 / 32, 4 BasicBlocks per branch, then multi-resolution fusion
  (1x1 conv-BN + bilinear upsampling from lower resolutions, strided 3x3 conv-BN from higher
  ones, sum, ReLU); a new branch comes from a stride-2 3x3 conv of the lowest one (transition);
* HRNetV2 output: all four branches upsampled to stride 4 and concatenated (15W channels).

``width`` is W (48 or 18 in the papers); the stem and stage-1 channels scale with ``W / 48``
(W48) or ``W / 18`` (W18), so a small W gives a proportionally smaller network, same code path.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .registry import register
from .backbones import check_width, conv_bn_relu, init_weights, scaled
from .heads import OCRHead, resize
from .segmentation import SegmentationModel, _finish


def _stack(block, cin: int, planes: int, n: int) -> nn.Sequential:
    """``n`` torchvision blocks (stride 1), with a 1x1 projection if the channel count changes."""
    out = planes * block.expansion
    down = None if cin == out else nn.Sequential(nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))
    return nn.Sequential(block(cin, planes, downsample=down), *[block(out, planes) for _ in range(n - 1)])


class FuseLayer(nn.Module):
    """Multi-resolution fusion: output branch i = ReLU(sum_j resample_j->i(x_j))."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        n = len(channels)
        self.paths = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution: 1x1 conv-BN, upsampled in forward
                    row.append(conv_bn_relu(channels[j], channels[i], 1, relu=False))
                else:  # higher resolution: (i - j) stride-2 3x3 convs, ReLU between
                    convs = [conv_bn_relu(channels[j], channels[j], 3, 2) for _ in range(i - j - 1)]
                    convs.append(conv_bn_relu(channels[j], channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*convs))
            self.paths.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        for i, row in enumerate(self.paths):
            y = xs[i]
            for j, path in enumerate(row):
                if j != i:
                    y = y + resize(path(xs[j]), xs[i].shape[-2:])
            outs.append(self.relu(y))
        return outs


class HRModule(nn.Module):
    """Parallel branches of ``blocks`` BasicBlocks each, then a :class:`FuseLayer`."""

    def __init__(self, channels: Sequence[int], blocks: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(_stack(BasicBlock, c, c, blocks) for c in channels)
        self.fuse = FuseLayer(channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.fuse([b(x) for b, x in zip(self.branches, xs)])


class HRNetV2(nn.Module):
    """HRNetV2 backbone; forward returns ``{"branch1".."branch4", "out"}`` where ``out`` is the
    15W-channel concatenation at stride 4."""

    def __init__(self, width: int = 48, paper_width: int = 48, modules: Sequence[int] = (1, 4, 3), blocks: int = 4):
        super().__init__()
        stem = scaled(64, width, paper_width)
        self.stem = nn.Sequential(conv_bn_relu(3, stem, 3, 2), conv_bn_relu(stem, stem, 3, 2))
        self.layer1 = _stack(Bottleneck, stem, stem, 4)
        chans = [width * 2 ** i for i in range(4)]
        self.transitions, self.stages = nn.ModuleList(), nn.ModuleList()
        prev = [stem * Bottleneck.expansion]
        for k, n_modules in enumerate(modules):
            cur = chans[:k + 2]
            trans = nn.ModuleList()
            for i, c in enumerate(cur):
                if i < len(prev):
                    trans.append(nn.Identity() if prev[i] == c else conv_bn_relu(prev[i], c))
                else:
                    trans.append(conv_bn_relu(prev[-1], c, 3, 2))
            self.transitions.append(trans)
            self.stages.append(nn.Sequential(*[HRModule(cur, blocks) for _ in range(n_modules)]))
            prev = cur
        self.channels = OrderedDict((f"branch{i + 1}", c) for i, c in enumerate(chans))
        self.channels["out"] = sum(chans)
        self.strides = OrderedDict((f"branch{i + 1}", 4 * 2 ** i) for i in range(4))
        self.strides["out"] = 4
        init_weights(self)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        xs = [self.layer1(self.stem(x))]
        for trans, stage in zip(self.transitions, self.stages):
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(trans)]
            xs = stage(xs)
        out = OrderedDict((f"branch{i + 1}", y) for i, y in enumerate(xs))
        size = xs[0].shape[-2:]
        out["out"] = torch.cat([xs[0]] + [resize(y, size) for y in xs[1:]], 1)
        return out


def _ocr_hrnet(name: str, paper_w: int, num_classes: int, width: Optional[int], pretrained) -> SegmentationModel:
    w = check_width(width, name) or paper_w
    backbone = HRNetV2(w, paper_w)
    head = OCRHead(backbone.channels["out"], num_classes, mid_channels=scaled(512, w, paper_w),
                   key_channels=scaled(256, w, paper_w))
    init_weights(head)
    return _finish(SegmentationModel(backbone, head), pretrained)


@register("ocr_hrnet_w48")
def ocr_hrnet_w48(num_classes: int = 19, width: Optional[int] = None, pretrained=None) -> SegmentationModel:
    """OCR on HRNetV2-W48 (CSST's strongest model); ``width`` = W (48 = paper). Train mode returns
    ``{"out", "aux"}`` (aux = OCR's soft object regions, loss weight 0.4 in HRNet-OCR)."""
    return _ocr_hrnet("ocr_hrnet_w48", 48, num_classes, width, pretrained)


@register("ocr_hrnet_w18")
def ocr_hrnet_w18(num_classes: int = 19, width: Optional[int] = None, pretrained=None) -> SegmentationModel:
    """OCR on HRNetV2-W18 (the full W18, not W18-small); ``width`` = W (18 = paper)."""
    return _ocr_hrnet("ocr_hrnet_w18", 18, num_classes, width, pretrained)
