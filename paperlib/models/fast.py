"""Real-time models: SwiftNet, BiSeNet, Fast-SCNN and ICNet.

GSVNet segments keyframes with SwiftNet-R18 or BiSeNet-R18 (GSVNet Sec. 4, Tables 1-2); CSST and
self-training use BiSeNet-R18, Fast-SCNN and ICNet-R50 as students (CSST Table 3). Each follows
its paper and its authors' public code (read for facts, written anew here); where a port choice
matters it is named in the class docstring. ``width`` = base width (64 for the ResNet models and
ICNet, 32 for Fast-SCNN = its first conv), ``None`` = paper size; every channel count scales by
``width / paper``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register
from .backbones import check_width, conv_bn_relu, init_weights, load_checkpoint, load_pretrained, resnet, scaled
from .heads import resize
from .segmentation import SegmentationModel, _finish


def _bn_relu_conv(cin: int, cout: int, k: int = 3, bias: bool = False) -> nn.Sequential:
    """Pre-activation unit (BN, ReLU, conv) as SwiftNet's ``_BNReluConv``."""
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias))


def _backbone_pretrained(model: nn.Module, pretrained) -> nn.Module:
    """``pretrained``: a full-model checkpoint (keys ``backbone.*`` ...) loads into ``model``, a
    torchvision ResNet checkpoint into ``model.backbone``."""
    if pretrained is not None:
        full = any(k.startswith("backbone.") for k in load_checkpoint(pretrained))
        model.load_report = load_pretrained(model if full else model.backbone, pretrained)
    return model


# --- SwiftNet --------------------------------------------------------------------------------
class SwiftSPP(nn.Module):
    """SwiftNet's spatial pyramid pooling: BN-ReLU-1x1 to 128, three pooled levels (grids 8, 4, 2
    rows, columns by aspect ratio) each BN-ReLU-1x1 to 128/3, upsampled, concatenated, fused by
    BN-ReLU-1x1 to 128."""

    def __init__(self, cin: int, channels: int = 128, grids: Sequence[int] = (8, 4, 2)):
        super().__init__()
        level = channels // len(grids)
        self.grids = tuple(grids)
        self.bottleneck = _bn_relu_conv(cin, channels, 1)
        self.levels = nn.ModuleList(_bn_relu_conv(channels, level, 1) for _ in grids)
        self.fuse = _bn_relu_conv(channels + len(grids) * level, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bottleneck(x)
        h, w = x.shape[-2:]
        outs = [x]
        for g, level in zip(self.grids, self.levels):
            pooled = F.adaptive_avg_pool2d(x, (g, max(1, round(w / h * g))))
            outs.append(resize(level(pooled), (h, w)))
        return self.fuse(torch.cat(outs, 1))


class SwiftUpsample(nn.Module):
    """SwiftNet ladder step: BN-ReLU-1x1 on the skip, bilinear upsample, add, BN-ReLU-3x3 blend."""

    def __init__(self, skip_channels: int, channels: int = 128):
        super().__init__()
        self.skip = _bn_relu_conv(skip_channels, channels, 1)
        self.blend = _bn_relu_conv(channels, channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        skip = self.skip(skip)
        return self.blend(resize(x, skip.shape[-2:]) + skip)


class SwiftNetHead(nn.Module):
    """SwiftNet single-scale (Orsic et al. 2019): SPP on ``layer4``, three upsampling steps with
    ``layer3`` / ``layer2`` / ``layer1`` skips (128 channels), BN-ReLU-1x1 classifier at stride 4.

    The authors' code taps each stage's residual sum before its final ReLU; we tap the stage output
    (after the ReLU), which changes no parameter and no FLOP.
    """

    def __init__(self, channels: dict, num_classes: int, width: Optional[int] = None):
        super().__init__()
        c = scaled(128, width)
        self.spp = SwiftSPP(channels["layer4"], c)
        self.ups = nn.ModuleList(SwiftUpsample(channels[n], c) for n in ("layer3", "layer2", "layer1"))
        self.classifier = _bn_relu_conv(c, num_classes, 1, bias=True)

    def forward(self, feats) -> torch.Tensor:
        x = self.spp(feats["layer4"])
        for up, name in zip(self.ups, ("layer3", "layer2", "layer1")):
            x = up(x, feats[name])
        return self.classifier(x)


@register("swiftnet_resnet18")
def swiftnet_resnet18(num_classes: int = 19, width: Optional[int] = None, depth: int = 18,
                      pretrained=None) -> SegmentationModel:
    """SwiftNet-R18 single scale (GSVNet's SN-R18 keyframe model): ResNet-18 + SPP + ladder
    upsampling, output stride 4. ``width`` = base channels (64 = paper)."""
    check_width(width, "swiftnet_resnet18")
    backbone = resnet(depth, width=width)
    head = SwiftNetHead(backbone.channels, num_classes, width)
    init_weights(head)
    return _finish(SegmentationModel(backbone, head), pretrained)


# --- BiSeNet ---------------------------------------------------------------------------------
class AttentionRefinement(nn.Module):
    """BiSeNet ARM: 3x3 conv-BN-ReLU, then channel attention (global pool, 1x1 conv-BN, sigmoid)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = conv_bn_relu(cin, cout)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(cout, cout, 1, relu=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(x)


class FeatureFusion(nn.Module):
    """BiSeNet FFM: concatenate, 1x1 conv-BN-ReLU, then ``x + x * SE(x)`` (two 1x1 convs, no BN)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = conv_bn_relu(cin, cout, 1)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout, 1, bias=False), nn.ReLU(inplace=True),
                                       nn.Conv2d(cout, cout, 1, bias=False), nn.Sigmoid())

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([spatial, context], 1))
        return x + x * self.attention(x)


class BiSeNet(nn.Module):
    """BiSeNet (Yu et al. 2018) with a ResNet-18 context path, as in the authors' TorchSeg code.

    Spatial path: 7x7/2 (64), 3x3/2 (64), 3x3/2 (64), 1x1 (128) conv-BN-ReLU -> stride 8.
    Context path: ResNet-18; global context (pool + 1x1 to 128) added to the ARM(``layer4``)
    output, upsampled to stride 16, 3x3 refine; plus ARM(``layer3``), upsampled to stride 8, 3x3
    refine. FFM (256 -> 256), head 3x3 conv-BN-ReLU (64) + 1x1 classifier. Train mode adds the two
    auxiliary heads on the refined context features (3x3 conv 128 + 1x1), returned summed into
    ``aux`` so the engine's single aux weight applies to both. The public code's 12.9M parameters
    (13.2M with auxiliary heads) are what this builds; GSVNet's Table 2 lists 49.0 MB.
    """

    def __init__(self, num_classes: int = 19, width: Optional[int] = None, depth: int = 18, aux: bool = True):
        super().__init__()
        s = lambda c: scaled(c, width)  # noqa: E731
        self.backbone = resnet(depth, width=width)
        ch = self.backbone.channels
        self.spatial_path = nn.Sequential(conv_bn_relu(3, s(64), 7, 2), conv_bn_relu(s(64), s(64), 3, 2),
                                          conv_bn_relu(s(64), s(64), 3, 2), conv_bn_relu(s(64), s(128), 1))
        c = s(128)
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(ch["layer4"], c, 1))
        self.arms = nn.ModuleList([AttentionRefinement(ch["layer4"], c), AttentionRefinement(ch["layer3"], c)])
        self.refines = nn.ModuleList([conv_bn_relu(c, c), conv_bn_relu(c, c)])
        self.ffm = FeatureFusion(2 * c, 2 * c)
        self.head = nn.Sequential(conv_bn_relu(2 * c, s(64)), nn.Conv2d(s(64), num_classes, 1))
        self.aux_heads = (nn.ModuleList(nn.Sequential(conv_bn_relu(c, c), nn.Conv2d(c, num_classes, 1))
                                        for _ in range(2)) if aux else None)
        for m in (self.spatial_path, self.global_context, self.arms, self.refines, self.ffm, self.head):
            init_weights(m)
        if self.aux_heads is not None:
            init_weights(self.aux_heads)

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        spatial = self.spatial_path(x)
        feats = self.backbone(x)
        ctx = resize(self.global_context(feats["layer4"]), feats["layer4"].shape[-2:])
        refined = []
        for arm, refine, name, target in zip(self.arms, self.refines, ("layer4", "layer3"), ("layer3", "layer2")):
            ctx = refine(resize(arm(feats[name]) + ctx, feats[target].shape[-2:]))
            refined.append(ctx)
        out = resize(self.head(self.ffm(spatial, resize(ctx, spatial.shape[-2:]))), size)
        if not self.training or self.aux_heads is None:
            return out
        aux = sum(resize(h(r), size) for h, r in zip(self.aux_heads, refined))
        return {"out": out, "aux": aux}


@register("bisenet_resnet18")
def bisenet_resnet18(num_classes: int = 19, width: Optional[int] = None, depth: int = 18, aux: bool = True,
                     pretrained=None) -> BiSeNet:
    """BiSeNet-R18 (GSVNet's BN-R18, a CSST student). ``width`` = base channels (64 = paper)."""
    check_width(width, "bisenet_resnet18")
    model = BiSeNet(num_classes, width, depth, aux)
    return _backbone_pretrained(model, pretrained)


# --- Fast-SCNN -------------------------------------------------------------------------------
def _dsconv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise-separable conv: 3x3 depthwise conv-BN-ReLU, 1x1 conv-BN-ReLU."""
    return nn.Sequential(conv_bn_relu(cin, cin, 3, stride, groups=cin), conv_bn_relu(cin, cout, 1))


class LinearBottleneck(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand (t), 3x3 depthwise (stride), 1x1 linear project."""

    def __init__(self, cin: int, cout: int, t: int = 6, stride: int = 1):
        super().__init__()
        mid = cin * t
        self.block = nn.Sequential(conv_bn_relu(cin, mid, 1), conv_bn_relu(mid, mid, 3, stride, groups=mid),
                                   conv_bn_relu(mid, cout, 1, relu=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class FastSCNN(nn.Module):
    """Fast-SCNN (Poudel et al. 2019), Table 1 of its paper.

    Learning to downsample: conv 32/2, DSConv 48/2, DSConv 64/2 (stride 8). Global feature
    extractor: bottlenecks (t = 6) 64 x3 /2, 96 x3 /2, 128 x3 /1 (stride 32), pyramid pooling
    (bins 1, 2, 3, 6 to 32 channels each, concatenated with the input, 1x1 to 128). Feature
    fusion: the low-resolution branch upsampled x4, 3x3 depthwise conv with dilation 4, 1x1 conv;
    the high-resolution branch 1x1 conv; sum, ReLU. Classifier: 2 DSConv 128, dropout 0.1, 1x1.
    Train mode adds an auxiliary head on the learning-to-downsample output (3x3 conv 32 + 1x1),
    as the popular public port does: 1.157M parameters with that head, 1.138M without (the
    paper says 1.11M).
    """

    def __init__(self, num_classes: int = 19, width: Optional[int] = None, aux: bool = True):
        super().__init__()
        s = lambda c: scaled(c, width, 32)  # noqa: E731
        c32, c48, c64, c96, c128 = s(32), s(48), s(64), s(96), s(128)
        self.learning_to_downsample = nn.Sequential(conv_bn_relu(3, c32, 3, 2), _dsconv(c32, c48, 2),
                                                    _dsconv(c48, c64, 2))

        def stage(cin, cout, stride):
            return nn.Sequential(LinearBottleneck(cin, cout, 6, stride), LinearBottleneck(cout, cout),
                                 LinearBottleneck(cout, cout))
        self.global_features = nn.Sequential(stage(c64, c64, 2), stage(c64, c96, 2), stage(c96, c128, 1))
        self.ppm_stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_relu(c128, c128 // 4, 1))
                                        for b in (1, 2, 3, 6))
        self.ppm_out = conv_bn_relu(c128 + 4 * (c128 // 4), c128, 1)
        self.fuse_low = nn.Sequential(conv_bn_relu(c128, c128, 3, dilation=4, groups=c128),
                                      nn.Conv2d(c128, c128, 1), nn.BatchNorm2d(c128))
        self.fuse_high = nn.Sequential(nn.Conv2d(c64, c128, 1), nn.BatchNorm2d(c128))
        self.classifier = nn.Sequential(_dsconv(c128, c128), _dsconv(c128, c128), nn.Dropout(0.1),
                                        nn.Conv2d(c128, num_classes, 1))
        self.aux_head = (nn.Sequential(conv_bn_relu(c64, c32), nn.Dropout(0.1), nn.Conv2d(c32, num_classes, 1))
                         if aux else None)
        init_weights(self)

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        high = self.learning_to_downsample(x)
        low = self.global_features(high)
        low = self.ppm_out(torch.cat([low] + [resize(p(low), low.shape[-2:]) for p in self.ppm_stages], 1))
        fused = F.relu(self.fuse_high(high) + self.fuse_low(resize(low, high.shape[-2:])))
        out = resize(self.classifier(fused), size)
        if not self.training or self.aux_head is None:
            return out
        return {"out": out, "aux": resize(self.aux_head(high), size)}


@register("fastscnn")
def fastscnn(num_classes: int = 19, width: Optional[int] = None, aux: bool = True, pretrained=None) -> FastSCNN:
    """Fast-SCNN (a CSST student; "only 1.1M parameters"). ``width`` = first conv channels (32 = paper)."""
    check_width(width, "fastscnn")
    model = FastSCNN(num_classes, width, aux)
    if pretrained is not None:
        model.load_report = load_pretrained(model, pretrained)
    return model


# --- ICNet -----------------------------------------------------------------------------------
class CascadeFeatureFusion(nn.Module):
    """ICNet CFF: upsample the low-resolution input x2, 3x3 dilated (rate 2) conv-BN; 1x1 conv-BN on
    the high-resolution input; sum, ReLU. Also returns the class prediction of the upsampled low
    input (cascade label guidance)."""

    def __init__(self, low_channels: int, high_channels: int, out_channels: int, num_classes: int):
        super().__init__()
        self.low = conv_bn_relu(low_channels, out_channels, 3, dilation=2, relu=False)
        self.high = conv_bn_relu(high_channels, out_channels, 1, relu=False)
        self.classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = resize(low, high.shape[-2:])
        return F.relu(self.low(low) + self.high(high)), self.classifier(low)


class ICNet(nn.Module):
    """ICNet (Zhao et al. 2018) with a ResNet-50 (deep "3x3" stem) as in its paper, uncompressed.

    Cascade as in the paper and its Caffe model: the 1/2-resolution image goes through the stem,
    ``layer1`` and the first (strided) block of ``layer2`` (sub2, stride 16 of the full image);
    that feature is downsampled x2 and continues through the rest of ``layer2``, ``layer3`` and
    ``layer4`` (dilated 2 / 4; sub4, stride 32), then pyramid pooling *summed* onto the feature
    (bins 1, 2, 3, 6; no convolutions) and a 1x1 conv-BN-ReLU to 512 (the Caffe model's 256
    after its kernel halving). The full image goes through three 3x3/2 conv-BN-ReLU (32, 32, 64;
    sub1, stride 8). CFF(sub4, sub2) -> 128, CFF(that, sub1) -> 128, 1x1 classifier at stride 8,
    upsampled. Train mode returns the two CFF label-guidance predictions summed in ``aux``.
    """

    def __init__(self, num_classes: int = 19, width: Optional[int] = None, depth: int = 50, aux: bool = True):
        super().__init__()
        s = lambda c: scaled(c, width)  # noqa: E731
        self.backbone = resnet(depth, width=width, output_stride=8, stem="3x3")
        ch = self.backbone.channels
        self.sub1 = nn.Sequential(conv_bn_relu(3, s(32), 3, 2), conv_bn_relu(s(32), s(32), 3, 2),
                                  conv_bn_relu(s(32), s(64), 3, 2))
        self.bins = (1, 2, 3, 6)
        self.reduce = conv_bn_relu(ch["layer4"], s(512), 1)
        self.cff_24 = CascadeFeatureFusion(s(512), ch["layer2"], s(128), num_classes)
        self.cff_12 = CascadeFeatureFusion(s(128), s(64), s(128), num_classes)
        self.classifier = nn.Conv2d(s(128), num_classes, 1)
        self.aux = aux
        for m in (self.sub1, self.reduce, self.cff_24, self.cff_12, self.classifier):
            init_weights(m)

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        b = self.backbone
        half = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        sub2 = b.layer2[0](b.layer1(b.forward_stem(half)))
        y = F.interpolate(sub2, scale_factor=0.5, mode="bilinear", align_corners=False)
        y = b.layer4(b.layer3(b.layer2[1:](y)))
        h, w = y.shape[-2:]
        y = y + sum(resize(F.adaptive_avg_pool2d(y, k), (h, w)) for k in self.bins)
        sub4 = self.reduce(y)
        f24, aux4 = self.cff_24(sub4, sub2)
        f12, aux2 = self.cff_12(f24, self.sub1(x))
        out = resize(self.classifier(resize(f12, [2 * d for d in f12.shape[-2:]])), size)
        if not self.training or not self.aux:
            return out
        return {"out": out, "aux": resize(aux4, size) + resize(aux2, size)}


@register("icnet_resnet50")
def icnet_resnet50(num_classes: int = 19, width: Optional[int] = None, depth: int = 50, aux: bool = True,
                   pretrained=None) -> ICNet:
    """ICNet-R50 (a CSST student). ``width`` = base channels (64 = paper)."""
    check_width(width, "icnet_resnet50")
    model = ICNet(num_classes, width, depth, aux)
    return _backbone_pretrained(model, pretrained)
