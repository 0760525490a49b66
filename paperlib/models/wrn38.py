"""WideResNet38 ("Wider or Deeper", Wu, Shen & van den Hengel 2016), variant A2.

The backbone of VPLR's and self-training's best models (DeepLabV3+ with WideResNet38). Not in
torchvision; structure from the paper and the public ``wider_resnet38_a2`` definition used by
mapillary/inplace_abn and NVIDIA's VPLR code (read for facts, written anew here):

* ``mod1``: one 3x3 conv, 3 -> 64, stride 1.
* max-pool (stride 2), ``mod2``: 3 blocks (128, 128); max-pool, ``mod3``: 3 blocks (256, 256);
  ``mod4``: 6 blocks (512, 512); ``mod5``: 3 blocks (512, 1024); ``mod6``: 1 bottleneck block
  (512, 1024, 2048), dropout 0.3; ``mod7``: 1 bottleneck block (1024, 2048, 4096), dropout 0.5;
  then a final BN-ReLU (``bn_out``).
* Blocks are pre-activation ("identity mapping") residual blocks: BN-ReLU, then two 3x3 convs
  (BN-ReLU between) or 1x1-3x3-1x1; a 1x1 projection (fed by the first BN-ReLU) when the shape
  changes. The first conv of a block carries its stride (the 1x1 one in bottleneck blocks).
* Output stride 32: ``mod4``, ``mod5``, ``mod6`` start with stride 2. Output stride 8 (VPLR,
  "dilation=True"): only ``mod4`` is strided, ``mod5`` is dilated by 2 and ``mod6`` / ``mod7`` by 4.
  Output stride 16 keeps the ``mod5`` stride and dilates ``mod6`` / ``mod7`` by 2.

Normalisation is BatchNorm + ReLU (NVIDIA's ``bnrelu``; inplace-ABN's default would be leaky
ReLU). ``width`` scales every channel count by ``width / 64`` (64 = ``mod1``'s channels).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from .backbones import check_width, init_weights, load_pretrained, scaled

#: (name, blocks, channels, dropout) of WideResNet38-A2's six residual modules.
WRN38_MODULES = (
    ("mod2", 3, (128, 128), 0.0),
    ("mod3", 3, (256, 256), 0.0),
    ("mod4", 6, (512, 512), 0.0),
    ("mod5", 3, (512, 1024), 0.0),
    ("mod6", 1, (512, 1024, 2048), 0.3),
    ("mod7", 1, (1024, 2048, 4096), 0.5),
)


def _bn_relu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))


class PreActBlock(nn.Module):
    """Identity-mapping residual block with 2 (3x3, 3x3) or 3 (1x1, 3x3, 1x1) convolutions."""

    def __init__(self, cin: int, channels: Sequence[int], stride: int = 1, dilation: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.bn1 = _bn_relu(cin)
        if len(channels) == 2:
            c1, c2 = channels
            layers = [("conv1", nn.Conv2d(cin, c1, 3, stride, dilation, dilation, bias=False)),
                      ("bn2", _bn_relu(c1)),
                      ("conv2", nn.Conv2d(c1, c2, 3, 1, dilation, dilation, bias=False))]
            drop_at = 2
        else:
            c1, c2, c3 = channels
            layers = [("conv1", nn.Conv2d(cin, c1, 1, stride, bias=False)), ("bn2", _bn_relu(c1)),
                      ("conv2", nn.Conv2d(c1, c2, 3, 1, dilation, dilation, bias=False)),
                      ("bn3", _bn_relu(c2)), ("conv3", nn.Conv2d(c2, c3, 1, bias=False))]
            drop_at = 4
        if dropout > 0:
            layers.insert(drop_at, ("dropout", nn.Dropout2d(dropout)))
        self.convs = nn.Sequential(OrderedDict(layers))
        self.proj_conv = (nn.Conv2d(cin, channels[-1], 1, stride, bias=False)
                          if stride != 1 or cin != channels[-1] else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.bn1(x)
        shortcut = x if self.proj_conv is None else self.proj_conv(pre)
        return self.convs(pre) + shortcut


class WideResNet38(nn.Module):
    """WideResNet38-A2 trunk returning ``mod2`` (stride 2), ``mod3`` (4), ``mod4`` (8), ``mod5``,
    and ``out`` (``mod7`` after ``bn_out``) feature maps. ``block_rates`` may override the
    dilation of each block of ``mod5`` / ``mod6`` / ``mod7`` (lists, one rate per block)."""

    def __init__(self, width: Optional[int] = None, output_stride: int = 8,
                 block_rates: Optional[Mapping[str, Sequence[int]]] = None):
        super().__init__()
        width = check_width(width, "wrn38")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"wrn38: output_stride must be 8, 16 or 32, got {output_stride!r}")
        strided = {"mod4": True, "mod5": output_stride > 8, "mod6": output_stride > 16}
        self.mod1 = nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, scaled(64, width), 3, 1, 1, bias=False)))
        self.pool2, self.pool3 = nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, 1)
        cin, rate, stride = scaled(64, width), 1, 1
        self.channels, self.strides = OrderedDict(), OrderedDict()
        rates_given = dict(block_rates or {})
        for name, n, chans, drop in WRN38_MODULES:
            chans = tuple(scaled(c, width) for c in chans)
            s = 2 if strided.get(name, name in ("mod2", "mod3")) else 1
            if name not in ("mod2", "mod3", "mod4", "mod7") and s == 1:
                rate *= 2
            rates = [int(r) for r in rates_given.pop(name, [rate] * n)]
            if len(rates) != n or min(rates) < 1:
                raise ValueError(f"wrn38: block_rates[{name!r}] needs {n} positive rates, got {rates}")
            conv_stride = 2 if name in ("mod4", "mod5", "mod6") and s == 2 else 1
            blocks = [(f"block{i + 1}", PreActBlock(cin if i == 0 else chans[-1], chans,
                                                    conv_stride if i == 0 else 1, rates[i], drop))
                      for i in range(n)]
            self.add_module(name, nn.Sequential(OrderedDict(blocks)))
            cin, stride = chans[-1], stride * s
            self.channels[name], self.strides[name] = cin, stride
        if rates_given:
            raise ValueError(f"wrn38: block_rates for unknown modules {sorted(rates_given)}")
        self.bn_out = _bn_relu(cin)
        self.channels["out"], self.strides["out"] = cin, stride
        for name in ("mod6", "mod7"):
            del self.channels[name], self.strides[name]
        init_weights(self)

    def block_dilations(self) -> dict[str, list[int]]:
        """Each module's per-block dilation (of its 3x3 conv)."""
        return {name: [b.convs.conv2.dilation[0] for b in getattr(self, name)]
                for name, *_ in WRN38_MODULES}

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        out = OrderedDict()
        x = self.mod1(x)
        out["mod2"] = x = self.mod2(self.pool2(x))
        out["mod3"] = x = self.mod3(self.pool3(x))
        out["mod4"] = x = self.mod4(x)
        out["mod5"] = x = self.mod5(x)
        out["out"] = self.bn_out(self.mod7(self.mod6(x)))
        return out


def wrn38(width: Optional[int] = None, output_stride: int = 8, block_rates=None, pretrained=None) -> WideResNet38:
    """WideResNet38-A2 backbone; ``pretrained`` = local checkpoint with the same key names."""
    net = WideResNet38(width, output_stride, block_rates)
    if pretrained is not None:
        net.load_report = load_pretrained(net, pretrained, expected_unused=("classifier.",))
    return net
