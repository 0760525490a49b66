"""Segmentation heads, interchangeable on top of any backbone of ``backbones.py`` / ``wrn38.py``.

A head is built with the feature names it reads (``in_key``, ``low_key``) and maps the backbone's
feature dict to logits at some stride; :class:`~paperlib.models.segmentation.SegmentationModel`
upsamples them to the input size. Heads that make an auxiliary prediction return
``(logits, aux_logits)``.

* :class:`BilinearHead` - 1x1 classifier; the model upsamples bilinearly (FCN / DeepLab baseline).
* :class:`ASPP` + :class:`DeepLabV3PlusHead` - DeepLabV3 atrous spatial pyramid pooling (1x1,
  three rated 3x3 and an image-pooling branch) and the V3+ decoder (48-channel low-level
  projection, two 3x3 convs), as VPLR and self-training use.
* :class:`DilatedSum` - DeepLab-v2's ASPP classifier: parallel dilated 3x3 convs (rates 6, 12, 18,
  24, or 6 ... 36 for the DUC paper's 6 branches) whose outputs are summed. It is the top layer
  that :class:`DUCHead` and the deconvolution heads reshape (DUC/HDC Sec. 4.1).
* :class:`DUCHead` - dense upsampling convolution (DUC/HDC Sec. 3.1).
* :class:`DeconvHead` - learned upsampling by transposed convolution: x8 in one step, or x2 then
  x4 (DUC/HDC Sec. 4.1 "Compared with Deconvolution").
* :class:`PSPHead` - PSPNet pyramid pooling (bins 1, 2, 3, 6) + 3x3 conv + classifier.
* :class:`OCRHead` - object-contextual representations (Yuan et al.; HRNet-OCR): soft object
  regions from an auxiliary classifier, class-weighted object features, pixel-object attention.
* :class:`FCNAuxHead` - 3x3 conv + classifier on an intermediate feature (PSPNet's aux loss).

Channel counts are the papers'; every head takes ``width`` (base width, 64 = paper) and scales
its own channels by ``width / 64`` for CPU profiles.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .backbones import conv_bn_relu, scaled

Features = Mapping[str, torch.Tensor]


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize to ``size`` (align_corners=False); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class BilinearHead(nn.Module):
    """1x1 conv classifier (with bias) on ``in_key``; upsampling is left to the model."""

    def __init__(self, in_channels: int, num_classes: int, in_key: str = "layer4", dropout: float = 0.0):
        super().__init__()
        self.in_key = in_key
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, feats: Features) -> torch.Tensor:
        return self.classifier(self.dropout(feats[self.in_key]))


class FCNAuxHead(nn.Module):
    """Auxiliary classifier: 3x3 conv-BN-ReLU, dropout 0.1, 1x1 conv (PSPNet's deep supervision)."""

    def __init__(self, in_channels: int, num_classes: int, in_key: str = "layer3", mid_channels: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        self.in_key = in_key
        self.body = nn.Sequential(conv_bn_relu(in_channels, mid_channels), nn.Dropout2d(dropout),
                                  nn.Conv2d(mid_channels, num_classes, 1))

    def forward(self, feats: Features) -> torch.Tensor:
        return self.body(feats[self.in_key])


# --- DeepLabV3 / V3+ -------------------------------------------------------------------------
class ASPP(nn.Module):
    """DeepLabV3 ASPP: a 1x1 branch, one 3x3 branch per rate, an image-pooling branch; the
    concatenation is projected by 1x1 conv-BN-ReLU (+ dropout). Rates (6, 12, 18) suit output
    stride 16; double them at output stride 8 (12, 24, 36), as VPLR's code does."""

    def __init__(self, in_channels: int, out_channels: int = 256, rates: Sequence[int] = (12, 24, 36),
                 image_pooling: bool = True, dropout: float = 0.0):
        super().__init__()
        if not rates or min(rates) < 1:
            raise ValueError(f"ASPP rates must be positive ints, got {rates!r}")
        self.branches = nn.ModuleList([conv_bn_relu(in_channels, out_channels, 1)] +
                                      [conv_bn_relu(in_channels, out_channels, 3, dilation=int(r))
                                       for r in rates])
        self.pool = (nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(in_channels, out_channels, 1))
                     if image_pooling else None)
        n = len(self.branches) + (1 if image_pooling else 0)
        self.project = nn.Sequential(conv_bn_relu(n * out_channels, out_channels, 1),
                                     nn.Dropout2d(dropout) if dropout > 0 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        if self.pool is not None:
            outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, 1))


class DeepLabV3PlusHead(nn.Module):
    """DeepLabV3+ (Chen et al. 2018): ASPP on ``in_key``, upsampled to the low-level feature
    ``low_key`` (projected to 48 channels), concatenated, two 3x3 conv-BN-ReLU, 1x1 classifier.
    Logits come out at the low-level feature's stride (4 for ResNets, 2 for WideResNet38)."""

    def __init__(self, in_channels: int, low_channels: int, num_classes: int, *, in_key: str = "layer4",
                 low_key: str = "layer1", rates: Sequence[int] = (12, 24, 36), width: Optional[int] = None,
                 aspp_dropout: float = 0.0):
        super().__init__()
        self.in_key, self.low_key = in_key, low_key
        c, c_low = scaled(256, width), scaled(48, width)
        self.aspp = ASPP(in_channels, c, rates, dropout=aspp_dropout)
        self.low_proj = conv_bn_relu(low_channels, c_low, 1)
        self.fuse = nn.Sequential(conv_bn_relu(c + c_low, c), conv_bn_relu(c, c))
        self.classifier = nn.Conv2d(c, num_classes, 1)

    def forward(self, feats: Features) -> torch.Tensor:
        low = self.low_proj(feats[self.low_key])
        x = resize(self.aspp(feats[self.in_key]), low.shape[-2:])
        return self.classifier(self.fuse(torch.cat([x, low], 1)))


# --- DeepLab-v2 classifier, DUC, deconvolution (DUC/HDC paper) --------------------------------
class DilatedSum(nn.Module):
    """DeepLab-v2's ASPP classifier: ``sum_r conv3x3_rate_r(x)`` with biases, straight to
    ``out_channels``. With one rate it is a single (dilated) 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int] = (6, 12, 18, 24)):
        super().__init__()
        if not rates or min(rates) < 1:
            raise ValueError(f"rates must be positive ints, got {rates!r}")
        self.rates = tuple(int(r) for r in rates)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r)
                                   for r in self.rates)
        for conv in self.convs:  # DeepLab-v2 initialises its classifier with N(0, 0.01)
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


def duc_channels(num_classes: int, output_stride: int, cell: int = 1) -> int:
    """Channels of the DUC top layer: ``(d / cell)^2 * L`` (DUC/HDC Sec. 3.1 and Table 1)."""
    if cell < 1 or output_stride % cell:
        raise ValueError(f"DUC cell size {cell} must divide the output stride {output_stride}")
    return (output_stride // cell) ** 2 * num_classes


class DUCHead(nn.Module):
    """Dense upsampling convolution (DUC/HDC paper Sec. 3.1).

    The top layer predicts ``(d / cell)^2 * L`` channels at stride ``d`` (the output stride); a
    pixel shuffle turns each feature pixel's channels into a ``d/cell x d/cell`` patch of L-class
    logits, i.e. logits at stride ``cell`` (1 = full resolution; 2 = each predicted pixel covers a
    2x2 cell, the paper's cheaper, slightly better setting, upsampled bilinearly by the model).
    Channel layout (PyTorch ``pixel_shuffle``): channel ``l * s^2 + i * s + j`` of feature pixel
    ``(h, w)`` is class ``l`` at output pixel ``(h * s + i, w * s + j)``, ``s = d / cell``.
    ``rates`` (default DeepLab-v2's 6, 12, 18, 24) make the top layer a :class:`DilatedSum`, as in
    the paper (its DUC "only changes the shape of the top convolutional layer") and TuSimple-DUC.
    """

    def __init__(self, in_channels: int, num_classes: int, output_stride: int = 8, cell: int = 1, *,
                 in_key: str = "layer4", rates: Sequence[int] = (6, 12, 18, 24)):
        super().__init__()
        self.in_key, self.num_classes = in_key, num_classes
        self.upscale = output_stride // cell
        self.top = DilatedSum(in_channels, duc_channels(num_classes, output_stride, cell), rates)

    def forward(self, feats: Features) -> torch.Tensor:
        return F.pixel_shuffle(self.top(feats[self.in_key]), self.upscale)


def _deconv(cin: int, cout: int, factor: int) -> nn.ConvTranspose2d:
    """Transposed conv upsampling exactly by ``factor`` (kernel 2f, stride f, padding f/2),
    initialised to bilinear interpolation per channel pair (FCN) plus small noise elsewhere."""
    conv = nn.ConvTranspose2d(cin, cout, 2 * factor, factor, factor // 2, bias=True)
    k = 2 * factor
    center = (k - 1) / 2
    og = torch.arange(k, dtype=torch.float32)
    filt = 1 - (og - center).abs() / factor
    bilinear = filt[:, None] * filt[None, :]
    with torch.no_grad():
        conv.weight.normal_(std=1e-3)
        for c in range(min(cin, cout)):
            conv.weight[c, c] += bilinear
        conv.bias.zero_()
    return conv


def deconv_channels_matching_duc(in_channels: int, num_classes: int, output_stride: int, cell: int,
                                 n_rates: int, steps: Sequence[int]) -> int:
    """Channels ``C`` of the layer fed to the deconvolutions so that the deconvolution head has
    about as many parameters as the DUC head it is compared with (DUC/HDC Sec. 4.1: "we design
    the deconv network to have approximately the same number of parameters as DUC")."""
    target = n_rates * (9 * in_channels + 1) * duc_channels(num_classes, output_stride, cell)

    def params(c: int) -> int:
        top = n_rates * (9 * in_channels + 1) * c
        chans = [c] * len(steps) + [num_classes]
        return top + sum(chans[i] * chans[i + 1] * (2 * f) ** 2 + chans[i + 1] for i, f in enumerate(steps))

    lo, hi = 1, max(1, duc_channels(num_classes, output_stride, cell))
    while lo < hi:  # smallest C whose head is at least as large as DUC's
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if params(mid) < target else (lo, mid)
    return lo if abs(params(lo) - target) <= abs(params(max(1, lo - 1)) - target) else max(1, lo - 1)


class DeconvHead(nn.Module):
    """Learned upsampling by transposed convolutions (DUC/HDC Sec. 4.1, the comparison with DUC):
    ``steps=(8,)`` deconvolves in one x8 step, ``steps=(2, 4)`` by x2 then x4. The top layer is a
    :class:`DilatedSum` to ``channels`` (``num_classes`` = deconvolve the prediction map itself;
    the default ``None`` picks the count that gives the head about DUC's parameter count)."""

    def __init__(self, in_channels: int, num_classes: int, steps: Sequence[int] = (8,), *,
                 channels: Optional[int] = None, in_key: str = "layer4",
                 rates: Sequence[int] = (6, 12, 18, 24), match_cell: int = 2):
        super().__init__()
        self.in_key = in_key
        steps = tuple(int(s) for s in steps)
        if not steps or min(steps) < 2:
            raise ValueError(f"deconvolution steps must be factors >= 2, got {steps!r}")
        total = 1
        for s in steps:
            total *= s
        if channels is None:
            channels = deconv_channels_matching_duc(in_channels, num_classes, total, match_cell,
                                                    len(rates), steps)
        self.top = DilatedSum(in_channels, channels, rates)
        chans = [channels] * len(steps) + [num_classes]
        self.up = nn.Sequential(*[_deconv(chans[i], chans[i + 1], f) for i, f in enumerate(steps)])

    def forward(self, feats: Features) -> torch.Tensor:
        return self.up(self.top(feats[self.in_key]))


# --- PSPNet ----------------------------------------------------------------------------------
class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: average-pool to each bin size, 1x1 conv-BN-ReLU to
    ``in/len(bins)`` channels, upsample, concatenate with the input."""

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6), reduction: Optional[int] = None):
        super().__init__()
        reduction = reduction or in_channels // len(bins)
        self.stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(int(b)), conv_bn_relu(in_channels, reduction, 1))
                                    for b in bins)
        self.out_channels = in_channels + len(bins) * reduction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x] + [resize(s(x), x.shape[-2:]) for s in self.stages], 1)


class PSPHead(nn.Module):
    """PSPNet head (Zhao et al. 2017): pyramid pooling (bins 1, 2, 3, 6), 3x3 conv-BN-ReLU to 512,
    dropout 0.1, 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int, *, in_key: str = "layer4",
                 bins: Sequence[int] = (1, 2, 3, 6), width: Optional[int] = None, dropout: float = 0.1):
        super().__init__()
        self.in_key = in_key
        self.ppm = PyramidPooling(in_channels, bins)
        c = scaled(512, width)
        self.bottleneck = nn.Sequential(conv_bn_relu(self.ppm.out_channels, c), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(c, num_classes, 1)

    def forward(self, feats: Features) -> torch.Tensor:
        return self.classifier(self.bottleneck(self.ppm(feats[self.in_key])))


# --- OCR -------------------------------------------------------------------------------------
class ObjectAttention(nn.Module):
    """Pixel-to-object attention of OCR: queries from pixels, keys/values from the K object
    region features, scaled dot product, softmax over objects; output projected back."""

    def __init__(self, channels: int, key_channels: int):
        super().__init__()
        self.key_channels = key_channels

        def two(cin):
            return nn.Sequential(conv_bn_relu(cin, key_channels, 1), conv_bn_relu(key_channels, key_channels, 1))
        self.f_pixel, self.f_object = two(channels), two(channels)
        self.f_down = conv_bn_relu(channels, key_channels, 1)
        self.f_up = conv_bn_relu(key_channels, channels, 1)

    def forward(self, x: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.f_pixel(x).flatten(2).transpose(1, 2)          # N, HW, Ck
        key = self.f_object(objects).flatten(2)                      # N, Ck, K
        value = self.f_down(objects).flatten(2).transpose(1, 2)      # N, K, Ck
        sim = torch.softmax(torch.bmm(query, key) * self.key_channels ** -0.5, dim=-1)
        context = torch.bmm(sim, value).transpose(1, 2).reshape(n, self.key_channels, h, w)
        return self.f_up(context)


class OCRHead(nn.Module):
    """Object-contextual representations (Yuan, Chen & Wang 2020), as in HRNet-OCR.

    ``aux`` = soft object regions (1x1 conv-BN-ReLU, 1x1 classifier on the input feature); pixel
    features = 3x3 conv-BN-ReLU to 512; object region representations = softmax(aux) over pixels
    times pixel features; :class:`ObjectAttention` (key channels 256) gives each pixel its object
    context, concatenated with the pixel feature, 1x1 conv-BN-ReLU to 512, dropout 0.05, 1x1
    classifier. Returns ``(logits, aux_logits)``.
    """

    def __init__(self, in_channels: int, num_classes: int, *, in_key: str = "out", mid_channels: int = 512,
                 key_channels: int = 256, dropout: float = 0.05):
        super().__init__()
        self.in_key = in_key
        self.aux_head = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels),
                                      nn.ReLU(inplace=True), nn.Conv2d(in_channels, num_classes, 1))
        self.pixel = conv_bn_relu(in_channels, mid_channels, 3, bias=True)
        self.attention = ObjectAttention(mid_channels, key_channels)
        self.fuse = nn.Sequential(conv_bn_relu(2 * mid_channels, mid_channels, 1), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, feats: Features) -> tuple[torch.Tensor, torch.Tensor]:
        x = feats[self.in_key]
        aux = self.aux_head(x)
        pix = self.pixel(x)
        probs = torch.softmax(aux.flatten(2), dim=2)                         # N, K, HW
        objects = torch.bmm(probs, pix.flatten(2).transpose(1, 2))           # N, K, C
        objects = objects.transpose(1, 2).unsqueeze(-1)                      # N, C, K, 1
        out = self.fuse(torch.cat([self.attention(pix, objects), pix], 1))
        return self.classifier(out), aux
