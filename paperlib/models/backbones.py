"""Backbones: torchvision ResNet / ResNeXt / Wide-ResNet with dilation control, and shared helpers.

Every backbone maps an image batch (N, 3, H, W) to an ordered dict of feature maps
(``"layer1"`` ... ``"layer4"`` for ResNets) and says what it returns in two dicts:
``channels[name]`` and ``strides[name]`` (input pixels per feature pixel).

ResNets reuse torchvision's ``BasicBlock`` / ``Bottleneck`` and ``ResNet._make_layer``, so a
torchvision ImageNet checkpoint loads with unchanged key names (``pretrained=path``). What they
add, all as options of one class (:class:`ResNetBackbone`):

* **output stride** 8 / 16 / 32: the stride of ``layer3`` / ``layer4`` is removed and their 3x3
  convolutions are dilated instead (DeepLab; DUC/HDC paper Sec. 4.1 "dilated convolution with
  rate of 2 and 4 are applied to res4b and res5b blocks"). Every block of a dilated layer gets the
  layer's rate, the first block included (as in DeepLab-v2, the DUC paper's 23 res4 blocks "with
  dilation rate r = 2", and NVIDIA's VPLR code); torchvision's own ``replace_stride_with_dilation``
  instead keeps the previous rate in a layer's first block.
* **per-block dilation rates** ``block_rates={"layer3": [1, 2, 5, 9, ...], "layer4": [5, 9, 17]}``:
  hybrid dilated convolution (HDC, DUC/HDC paper Sec. 3.2); :func:`hdc_block_rates` spells out
  the paper's four variants (Sec. 4.1, Table 2).
* **multi-grid** (DeepLabV3): ``layer4``'s rates times ``multi_grid`` (cycled over its blocks).
* **stem** ``"7x7"`` (torchvision) or ``"3x3"``: three 3x3 conv-BN-ReLU (64, 64, 128 channels, the
  first with stride 2) as in PSPNet and the DUC paper's "better network" (Sec. 4.1, test set).
* **width** (CPU profiles): the base channel count, 64 in the papers. ``width=w`` builds the same
  network with every channel count scaled by ``w / 64`` (stem, all four stages' ``planes``;
  Bottleneck outputs stay ``4 * planes``). torchvision's ``ResNet.__init__`` hard-codes 64, so
  :class:`ResNetBackbone` sets the attributes ``_make_layer`` reads and calls it with scaled
  planes. ResNeXt keeps its 4-channel groups: cardinality becomes ``32 * w / 64``.
* **depth** 18 / 34 / 50 / 101 / 152 (torchvision's block counts), or an explicit ``layers``.

Pretrained weights: nothing is downloaded. With internet, get torchvision's ImageNet weights
once, e.g. ``torch.save(torchvision.models.resnet50(weights="IMAGENET1K_V2").state_dict(),
"resnet50.pth")`` (likewise ``resnext50_32x4d``, ``resnet101``, ``resnet18``), then pass
``pretrained="resnet50.pth"``. :func:`load_pretrained` loads it with ``weights_only=True`` and
reports missing / unexpected keys (the ImageNet classifier ``fc.*`` is expected to be unused).
WideResNet38 (Wu et al.) and HRNet are not in torchvision: see ``wrn38.py`` and ``hrnet.py``.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections import OrderedDict
from itertools import cycle, islice
from typing import Mapping, Optional, Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

PAPER_WIDTH = 64

#: torchvision's block type and block counts per depth.
RESNET_DEPTHS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
LAYERS = ("layer1", "layer2", "layer3", "layer4")


# --- small shared helpers -------------------------------------------------------------------
def scaled(channels: int, width: Optional[int], paper_width: int = PAPER_WIDTH, minimum: int = 1) -> int:
    """``channels`` scaled by ``width / paper_width`` (rounded, at least ``minimum``);
    ``width=None`` returns ``channels`` unchanged (the paper's size)."""
    if width is None:
        return int(channels)
    return max(int(minimum), int(round(channels * width / paper_width)))


def check_width(width, name: str) -> Optional[int]:
    """``width`` as a positive int (or None), else ``ValueError`` naming the model."""
    if width is None:
        return None
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{name}: width must be a positive int or None, got {width!r}")
    return width


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1, relu: bool = True, bias: bool = False) -> nn.Sequential:
    """Conv (padding keeps the size at stride 1) + BatchNorm (+ ReLU)."""
    pad = dilation * (k - 1) // 2
    layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=bias),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, unit/zero BatchNorm, as torchvision does."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# --- pretrained checkpoints -----------------------------------------------------------------
@dataclasses.dataclass
class LoadReport:
    """What :func:`load_pretrained` did: keys loaded, left at init, and found but unused."""

    path: str
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        def show(keys):
            return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
        return (f"{self.path}: loaded {len(self.loaded)} tensors; missing {len(self.missing)}"
                f"{' (' + show(self.missing) + ')' if self.missing else ''}; unexpected "
                f"{len(self.unexpected)}{' (' + show(self.unexpected) + ')' if self.unexpected else ''}")


def load_checkpoint(path) -> dict[str, torch.Tensor]:
    """A state dict from a local file (``torch.load(weights_only=True)``); unwraps a
    ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper and a DDP ``module.`` prefix."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained checkpoint not found: {path} (nothing is downloaded; "
                                f"save torchvision weights to a local file first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the path
        raise ValueError(f"cannot read pretrained checkpoint {path}: {e}") from e
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_pretrained(module: nn.Module, path, *, expected_unused: Sequence[str] = ("fc.",),
                    warn: bool = True) -> LoadReport:
    """Load a local checkpoint into ``module`` by key name (non-strict) and report what happened.

    Keys present in both must have equal shapes (else ``ValueError`` listing them); a checkpoint
    sharing no key with ``module`` is a ``ValueError`` (wrong file). Missing keys (left at random
    init) and unexpected keys are reported through a warning and the returned :class:`LoadReport`;
    unexpected keys starting with ``expected_unused`` (the ImageNet ``fc.`` classifier) are not
    warned about.
    """
    state = load_checkpoint(path)
    own = module.state_dict()
    common = [k for k in state if k in own]
    if not common:
        raise ValueError(f"{path}: no parameter names in common with {type(module).__name__} "
                         f"(checkpoint keys e.g. {list(state)[:3]}, model keys e.g. {list(own)[:3]})")
    bad = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in common if state[k].shape != own[k].shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {len(bad)} tensors (built with another "
                         f"width/depth?): " + "; ".join(bad[:5]))
    module.load_state_dict({k: state[k] for k in common}, strict=False)
    report = LoadReport(os.fspath(path), common, [k for k in own if k not in state],
                        [k for k in state if k not in own])
    noisy = [k for k in report.unexpected if not k.startswith(tuple(expected_unused))]
    if warn and (report.missing or noisy):
        warnings.warn(f"pretrained weights partly loaded: {report}", stacklevel=2)
    return report


# --- dilation plans (output stride, multi-grid, HDC) ------------------------------------------
def layer_rates(blocks: Sequence[int], output_stride: int = 32, multi_grid: Optional[Sequence[int]] = None,
                block_rates: Optional[Mapping[str, Sequence[int]]] = None) -> tuple[dict, dict]:
    """Per layer: whether its stride is kept, and each block's dilation rate.

    Returns ``(strided, rates)``: ``strided["layer3"]`` is False when output stride <= 16 removes
    that layer's stride; ``rates["layer4"]`` lists one rate per block. Defaults: a layer whose
    stride was removed gets rate 2 (first dilated layer) or 4 (second); ``multi_grid`` multiplies
    ``layer4``'s rates (DeepLabV3 "Multi-grid"); ``block_rates`` then overrides whole layers.
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    strided = {"layer1": False, "layer2": True, "layer3": output_stride > 8, "layer4": output_stride > 16}
    rates, rate = {}, 1
    for name, n in zip(LAYERS, blocks):
        if name != "layer1" and not strided[name]:
            rate *= 2
        rates[name] = [rate] * n
    if multi_grid is not None:
        mg = [int(m) for m in multi_grid]
        if not mg or min(mg) < 1:
            raise ValueError(f"multi_grid must be positive ints, got {multi_grid!r}")
        rates["layer4"] = [rates["layer4"][0] * m for m in islice(cycle(mg), len(rates["layer4"]))]
    for name, given in (block_rates or {}).items():
        if name not in rates:
            raise ValueError(f"block_rates: unknown layer {name!r}; expected one of {', '.join(LAYERS)}")
        given = [int(r) for r in given]
        if len(given) != len(rates[name]) or min(given, default=1) < 1:
            raise ValueError(f"block_rates[{name!r}] needs {len(rates[name])} positive rates (one per "
                             f"block), got {len(given)}: {given}")
        rates[name] = given
    return strided, rates


def hdc_block_rates(variant: str, blocks: Sequence[int] = (23, 3)) -> dict[str, list[int]]:
    """The DUC/HDC paper's dilation variants (Sec. 4.1 "Hybrid Dilated Convolution", Table 2)
    for a ResNet whose ``layer3`` (res4) and ``layer4`` (res5) have ``blocks`` blocks.

    * ``"baseline"``: res4 all r = 2, res5 all r = 4 (DeepLab-v2, output stride 8).
    * ``"no_dilation"``: every rate 1 (strides still removed: output stride 8).
    * ``"dilation_conv"``: blocks in pairs, r = 2 then r = 1 ("make r = 2 for the first block, and
      r = 1 for the second block", read literally for res5 too).
    * ``"dilation_rf"``: res4 in groups of three with r = 1, 2, 3, its last two blocks keep r = 2
      (23 = 7 x 3 + 2); res5 r = 3, 4, 5.
    * ``"dilation_bigger"``: res4 in groups of four with r = 1, 2, 5, 9, the last three r = 1, 2, 5
      (23 = 5 x 4 + 3); res5 r = 5, 9, 17.

    For other depths the same sawtooth is cycled over the blocks (the "keep r = 2" tail of
    ``dilation_rf`` covers ``n % 3`` blocks); res5 patterns need ``blocks[1] == 3``, else cycled.
    """
    n4, n5 = (int(b) for b in blocks)

    def saw(pattern, n):
        return list(islice(cycle(pattern), n))

    if variant == "baseline":
        return {"layer3": [2] * n4, "layer4": [4] * n5}
    if variant == "no_dilation":
        return {"layer3": [1] * n4, "layer4": [1] * n5}
    if variant == "dilation_conv":
        return {"layer3": saw([2, 1], n4), "layer4": saw([2, 1], n5)}
    if variant == "dilation_rf":
        tail = n4 % 3
        return {"layer3": saw([1, 2, 3], n4 - tail) + [2] * tail, "layer4": saw([3, 4, 5], n5)}
    if variant == "dilation_bigger":
        return {"layer3": saw([1, 2, 5, 9], n4), "layer4": saw([5, 9, 17], n5)}
    raise ValueError(f"unknown HDC variant {variant!r}; expected baseline, no_dilation, "
                     f"dilation_conv, dilation_rf or dilation_bigger")


def _set_conv(conv: nn.Conv2d, stride: Optional[int] = None, dilation: Optional[int] = None) -> None:
    if stride is not None:
        conv.stride = (stride, stride)
    if dilation is not None:
        conv.dilation = (dilation, dilation)
        conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2


def _block_convs3x3(block: nn.Module) -> list[nn.Conv2d]:
    """The 3x3 convolutions of a torchvision block (both for BasicBlock, conv2 for Bottleneck)."""
    return [block.conv1, block.conv2] if isinstance(block, BasicBlock) else [block.conv2]


# --- ResNet / ResNeXt / Wide-ResNet ----------------------------------------------------------
class ResNetBackbone(ResNet):
    """torchvision's ResNet trunk (no pooling / fc) returning ``layer1`` .. ``layer4`` features.

    Options (see the module docstring): ``depth`` or ``layers``, ``width`` (base channels, 64 =
    paper), ``groups`` / ``width_per_group`` (ResNeXt 32x4d: 32 / 4; Wide-ResNet-50-2: 1 / 128),
    ``output_stride``, ``multi_grid``, ``block_rates``, ``stem`` ("7x7" | "3x3").
    """

    def __init__(self, depth: int = 50, *, layers: Optional[Sequence[int]] = None, width: Optional[int] = None,
                 groups: int = 1, width_per_group: int = 64, output_stride: int = 32,
                 multi_grid: Optional[Sequence[int]] = None,
                 block_rates: Optional[Mapping[str, Sequence[int]]] = None, stem: str = "7x7"):
        nn.Module.__init__(self)  # ResNet.__init__ hard-codes 64 channels and an fc; see _make_layer below
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"resnet depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}")
        block, default_layers = RESNET_DEPTHS[depth]
        layers = tuple(int(n) for n in (layers or default_layers))
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {layers!r}")
        width = check_width(width, "resnet backbone")
        if stem not in ("7x7", "3x3"):
            raise ValueError(f"stem must be '7x7' or '3x3', got {stem!r}")
        if groups > 1 and width is not None:  # keep the per-group width ("4d") while scaling
            new_groups = max(1, round(groups * width / PAPER_WIDTH))
            width_per_group = width_per_group * groups // new_groups
            groups = new_groups
        if block is BasicBlock and (groups != 1 or width_per_group != 64):
            raise ValueError("BasicBlock ResNets (depth 18/34) support only groups=1, width_per_group=64")
        base = width or PAPER_WIDTH
        self.depth, self.stem_type, self.output_stride = depth, stem, output_stride
        self._norm_layer = nn.BatchNorm2d
        self.groups, self.base_width, self.dilation = groups, width_per_group, 1
        if stem == "7x7":
            self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(base)
            self.inplanes = base
        else:
            self.stem = nn.Sequential(conv_bn_relu(3, base, stride=2), conv_bn_relu(base, base),
                                      conv_bn_relu(base, 2 * base))
            self.inplanes = 2 * base
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, 2 * base, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * base, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * base, layers[3], stride=2)
        init_weights(self)
        strided, rates = layer_rates(layers, output_stride, multi_grid, block_rates)
        self._apply_rates(strided, rates)
        e = block.expansion
        self.channels = OrderedDict((n, c * base * e) for n, c in zip(LAYERS, (1, 2, 4, 8)))
        stride, self.strides = 4, OrderedDict()
        for name in LAYERS:
            stride *= 2 if strided[name] else 1
            self.strides[name] = stride

    def _apply_rates(self, strided: dict, rates: dict) -> None:
        """Remove strides where asked and set each block's 3x3 dilation (and padding) explicitly."""
        for name in LAYERS:
            layer = getattr(self, name)
            if name != "layer1" and not strided[name]:
                first = layer[0]
                _set_conv(first.conv1 if isinstance(first, BasicBlock) else first.conv2, stride=1)
                first.stride = 1
                if first.downsample is not None:
                    _set_conv(first.downsample[0], stride=1)
            for block, rate in zip(layer, rates[name]):
                for conv in _block_convs3x3(block):
                    _set_conv(conv, dilation=rate)

    def block_dilations(self) -> dict[str, list[int]]:
        """Each layer's per-block dilation rate, read back from the conv modules."""
        return {n: [_block_convs3x3(b)[-1].dilation[0] for b in getattr(self, n)] for n in LAYERS}

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and max-pool: the stride-4 input of ``layer1``."""
        x = self.stem(x) if self.stem_type == "3x3" else self.relu(self.bn1(self.conv1(x)))
        return self.maxpool(x)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.forward_stem(x)
        out = OrderedDict()
        for name in LAYERS:
            x = getattr(self, name)(x)
            out[name] = x
        return out


def resnet(depth: int = 50, *, variant: str = "resnet", pretrained=None, **options) -> ResNetBackbone:
    """A ResNet-family backbone: ``variant`` "resnet", "resnext" (32x4d) or "wide_resnet" (x2).

    ``options`` go to :class:`ResNetBackbone`; ``pretrained`` = local torchvision checkpoint path.
    """
    extra = {"resnet": {}, "resnext": {"groups": 32, "width_per_group": 4},
             "wide_resnet": {"width_per_group": 128}}
    if variant not in extra:
        raise ValueError(f"unknown resnet variant {variant!r}; expected resnet, resnext or wide_resnet")
    net = ResNetBackbone(depth, **extra[variant], **options)
    if pretrained is not None:
        net.load_report = load_pretrained(net, pretrained)
    return net
