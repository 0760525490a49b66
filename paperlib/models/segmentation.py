"""One segmentation model class (backbone + interchangeable head) and the registry names built on it.

``SegmentationModel(backbone, head, aux_head=None)``: the backbone maps the image to a dict of
features, the head maps that dict to logits at some stride (or ``(logits, aux)``), the model
upsamples bilinearly to the input size. In eval mode it returns the logits tensor; in train mode,
when there is an auxiliary prediction, ``{"out": logits, "aux": aux_logits}`` (the engine's
losses weigh ``aux`` by ``aux_weight``).

Registry names (every one takes ``num_classes``, ``width`` = base width for CPU profiles with
``None`` = paper size, ``pretrained`` = local torchvision-format backbone checkpoint or a full
model checkpoint, plus the options listed):

* ``deeplabv3plus_resnet18`` / ``_resnet50`` / ``_resnext50`` / ``_wrn38`` - DeepLabV3+ at output
  stride 8 (VPLR Sec. 4: "based on DeepLabV3Plus with output stride equal to 8"; ResNeXt50 for
  ablations, WideResNet38 for the final models), ASPP rates 12/24/36 (6/12/18 doubled at OS 8).
  Options: ``depth``, ``output_stride``, ``multi_grid``, ``block_rates``, ``stem``, ``aspp_rates``.
* ``pspnet_resnet101`` - PSPNet (a self-training student): deep "3x3" stem, output stride 8,
  pyramid pooling, auxiliary FCN head on ``layer3`` (train mode only).
* ``deeplabv2_resnet101`` - the DUC/HDC paper's baseline and its variants: output stride 8
  (res4 r = 2, res5 r = 4), DeepLab-v2 ASPP classifier (rates 6, 12, 18, 24; pass six rates
  6..36 for the 6-branch ASPP), ``head`` = "bilinear" (baseline) | "duc" (``cell`` 1 or 2) |
  "deconv8" | "deconv2x4", ``hdc`` = an HDC variant name (see ``backbones.hdc_block_rates``) or
  explicit ``block_rates``, ``stem="3x3"`` for the paper's "better network".
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from .registry import register
from .backbones import check_width, load_checkpoint, load_pretrained, resnet, hdc_block_rates, RESNET_DEPTHS
from .heads import DeconvHead, DeepLabV3PlusHead, DUCHead, DilatedSum, FCNAuxHead, PSPHead, resize
from .wrn38 import wrn38


class SegmentationModel(nn.Module):
    """``backbone`` (image -> feature dict) + ``head`` (features -> logits [, aux]) [+ ``aux_head``].

    ``aux_head`` runs only in train mode. Logits are upsampled bilinearly to the input size.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, aux_head: Optional[nn.Module] = None):
        super().__init__()
        self.backbone, self.head, self.aux_head = backbone, head, aux_head

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        out = self.head(feats)
        aux = None
        if isinstance(out, tuple):
            out, aux = out
        out = resize(out, x.shape[-2:])
        if not self.training:
            return out
        if self.aux_head is not None:
            aux = self.aux_head(feats)
        if aux is None:
            return out
        return {"out": out, "aux": resize(aux, x.shape[-2:])}


def load_model_weights(model: nn.Module, path) -> None:
    """``pretrained=path``: a full-model checkpoint (keys ``backbone.*``, ``head.*``) loads into the
    model; anything else (a torchvision ImageNet checkpoint) into ``model.backbone``."""
    keys = load_checkpoint(path)
    if any(k.startswith("backbone.") for k in keys):
        model.load_report = load_pretrained(model, path)
    else:
        model.load_report = load_pretrained(model.backbone, path)


def _resnet_backbone(name: str, variant: str, depth: int, width, **options):
    check_width(width, name)
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"{name}: depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}")
    return resnet(depth, variant=variant, width=width, **options)


def _finish(model: SegmentationModel, pretrained) -> SegmentationModel:
    if pretrained is not None:
        load_model_weights(model, pretrained)
    return model


# --- DeepLabV3+ ------------------------------------------------------------------------------
def deeplabv3plus(backbone: nn.Module, num_classes: int, *, in_key: str, low_key: str,
                  aspp_rates: Sequence[int], width: Optional[int]) -> SegmentationModel:
    """DeepLabV3+ on any backbone exposing ``channels`` for ``in_key`` and ``low_key``."""
    head = DeepLabV3PlusHead(backbone.channels[in_key], backbone.channels[low_key], num_classes,
                             in_key=in_key, low_key=low_key, rates=aspp_rates, width=width)
    return SegmentationModel(backbone, head)


def _default_aspp_rates(output_stride: int) -> tuple[int, ...]:
    return tuple(r * 16 // output_stride for r in (6, 12, 18)) if output_stride < 32 else (3, 6, 9)


def _make_deeplabv3plus_resnet(name: str, variant: str, default_depth: int):
    def build(num_classes: int = 19, width: Optional[int] = None, depth: int = default_depth,
              output_stride: int = 8, multi_grid: Optional[Sequence[int]] = None,
              block_rates: Optional[Mapping[str, Sequence[int]]] = None, stem: str = "7x7",
              aspp_rates: Optional[Sequence[int]] = None, pretrained=None) -> SegmentationModel:
        backbone = _resnet_backbone(name, variant, depth, width, output_stride=output_stride,
                                    multi_grid=multi_grid, block_rates=block_rates, stem=stem)
        model = deeplabv3plus(backbone, num_classes, in_key="layer4", low_key="layer1",
                              aspp_rates=aspp_rates or _default_aspp_rates(output_stride), width=width)
        return _finish(model, pretrained)
    build.__name__ = name
    build.__doc__ = (f"DeepLabV3+ with a {variant} backbone (depth {default_depth} by default), output "
                     f"stride 8; ``width`` = base channels (64 = paper).")
    return build


for _name, _variant, _depth in (("deeplabv3plus_resnet18", "resnet", 18),
                                ("deeplabv3plus_resnet50", "resnet", 50),
                                ("deeplabv3plus_resnext50", "resnext", 50)):
    register(_name)(_make_deeplabv3plus_resnet(_name, _variant, _depth))


@register("deeplabv3plus_wrn38")
def deeplabv3plus_wrn38(num_classes: int = 19, width: Optional[int] = None, output_stride: int = 8,
                        block_rates: Optional[Mapping[str, Sequence[int]]] = None,
                        aspp_rates: Optional[Sequence[int]] = None, pretrained=None) -> SegmentationModel:
    """DeepLabV3+ with WideResNet38-A2 (VPLR's and self-training's final model). The decoder's
    low-level feature is ``mod2`` (stride 2, 128 channels), as in NVIDIA's VPLR code, so logits
    come out at stride 2. ``width`` = ``mod1`` channels (64 = paper)."""
    check_width(width, "deeplabv3plus_wrn38")
    backbone = wrn38(width, output_stride, block_rates)
    model = deeplabv3plus(backbone, num_classes, in_key="out", low_key="mod2",
                          aspp_rates=aspp_rates or _default_aspp_rates(output_stride), width=width)
    return _finish(model, pretrained)


# --- PSPNet ----------------------------------------------------------------------------------
@register("pspnet_resnet101")
def pspnet_resnet101(num_classes: int = 19, width: Optional[int] = None, depth: int = 101,
                     output_stride: int = 8, stem: str = "3x3", bins: Sequence[int] = (1, 2, 3, 6),
                     block_rates: Optional[Mapping[str, Sequence[int]]] = None, aux: bool = True,
                     pretrained=None) -> SegmentationModel:
    """PSPNet-ResNet101 (Zhao et al. 2017): deep stem, output stride 8, pyramid pooling head; in
    train mode an auxiliary FCN head on ``layer3`` (256 channels; its loss weight is the loss's
    ``aux_weight``, 0.4 as in PSPNet). ``width`` = base channels (64 = paper)."""
    backbone = _resnet_backbone("pspnet_resnet101", "resnet", depth, width, output_stride=output_stride,
                                stem=stem, block_rates=block_rates)
    head = PSPHead(backbone.channels["layer4"], num_classes, bins=bins, width=width)
    aux_head = (FCNAuxHead(backbone.channels["layer3"], num_classes, mid_channels=max(1, backbone.channels["layer3"] // 4))
                if aux else None)
    return _finish(SegmentationModel(backbone, head, aux_head), pretrained)


# --- DeepLab-v2 (the DUC/HDC paper) ----------------------------------------------------------
DEEPLABV2_HEADS = ("bilinear", "duc", "deconv8", "deconv2x4")


@register("deeplabv2_resnet101")
def deeplabv2_resnet101(num_classes: int = 19, width: Optional[int] = None, depth: int = 101,
                        head: str = "bilinear", cell: int = 2, rates: Sequence[int] = (6, 12, 18, 24),
                        output_stride: int = 8, hdc: Optional[str] = None,
                        block_rates: Optional[Mapping[str, Sequence[int]]] = None, stem: str = "7x7",
                        deconv_channels: Optional[int] = None, pretrained=None) -> SegmentationModel:
    """DeepLab-v2 ResNet-101 and the DUC/HDC paper's variants of it (Sec. 4.1).

    ``head``: "bilinear" = baseline (ASPP classifier summing 3x3 convs at ``rates`` straight to L
    classes, bilinear x8); "duc" = the same top layer with ``(8 / cell)^2 * L`` channels and a
    pixel shuffle (``cell`` 1 or 2); "deconv8" / "deconv2x4" = transposed-conv upsampling sized to
    about DUC's (``cell``) parameter count unless ``deconv_channels`` is given. ``hdc`` = an HDC
    variant of :func:`~paperlib.models.backbones.hdc_block_rates` (or pass ``block_rates``).
    ``width`` = base channels (64 = paper).
    """
    if head not in DEEPLABV2_HEADS:
        raise ValueError(f"deeplabv2_resnet101: head must be one of {', '.join(DEEPLABV2_HEADS)}, got {head!r}")
    if hdc is not None:
        if block_rates is not None:
            raise ValueError("deeplabv2_resnet101: give hdc or block_rates, not both")
        block_rates = hdc_block_rates(hdc, RESNET_DEPTHS.get(depth, (None, (3, 4, 23, 3)))[1][2:])
    backbone = _resnet_backbone("deeplabv2_resnet101", "resnet", depth, width, output_stride=output_stride,
                                block_rates=block_rates, stem=stem)
    cin = backbone.channels["layer4"]
    if head == "bilinear":
        top = _TopHead(DilatedSum(cin, num_classes, rates))
    elif head == "duc":
        top = DUCHead(cin, num_classes, output_stride, cell, rates=rates)
    else:
        steps = (output_stride,) if head == "deconv8" else (2, output_stride // 2)
        top = DeconvHead(cin, num_classes, steps, channels=deconv_channels, rates=rates, match_cell=cell)
    return _finish(SegmentationModel(backbone, top), pretrained)


class _TopHead(nn.Module):
    """Apply a feature-map module to ``in_key`` (the baseline's ASPP classifier)."""

    def __init__(self, body: nn.Module, in_key: str = "layer4"):
        super().__init__()
        self.body, self.in_key = body, in_key

    def forward(self, feats):
        return self.body(feats[self.in_key])


__all__ = ["SegmentationModel", "deeplabv3plus", "load_model_weights"]
