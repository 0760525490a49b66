"""``tiny_fcn``: a few-thousand-parameter FCN for tests, smoke runs and the quickstart.

Two stride-2 conv-BN-ReLU stages (output stride 4), one dilated stage for context, a 1x1
classifier and bilinear upsampling back to the input size. It has BatchNorm on purpose, so the
engine's SyncBatchNorm path is exercised by every multi-process test.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import register


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyFCN(nn.Module):
    def __init__(self, num_classes: int = 19, width: int = 16):
        super().__init__()
        if int(width) < 1:
            raise ValueError(f"tiny_fcn: width must be >= 1, got {width}")
        w = int(width)
        self.features = nn.Sequential(_cbr(3, w, stride=2), _cbr(w, 2 * w, stride=2),
                                      _cbr(2 * w, 2 * w, dilation=2))
        self.classifier = nn.Conv2d(2 * w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.classifier(self.features(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


@register("tiny_fcn")
def tiny_fcn(num_classes: int = 19, width: int = 16) -> TinyFCN:
    """Tiny FCN (output stride 4); ``width`` = channels of the first stage."""
    return TinyFCN(num_classes, width)
