"""VPLR's release (NVIDIA/semantic-segmentation, branch ``sdcnet``) -> paperlib's DeepLabV3+ models.

Two architectures (``network/deepv3.py``): ``DeepWV3Plus`` (WideResNet38-A2 trunk, the released
``cityscapes_best.pth`` / ``camvid_best.pth`` / ``kitti_best.pth``) and ``DeepSRNX50V3PlusD_m1``
(SE-ResNeXt-50, the ablation model). A checkpoint is ``utils/misc.py: evaluate_eval``'s
``torch.save({"state_dict": net.state_dict(), "optimizer", "epoch", "mean_iu": numpy.float64,
"command": str})`` with ``net`` wrapped by ``network.wrap_network_in_dataparallel`` (apex DDP or
DataParallel): every key carries the ``module.`` prefix, and ``optimizer.py: restore_snapshot``
reads ``checkpoint["state_dict"]`` back into a DataParallel-wrapped net. The training loss is a
submodule of the network (``DeepWV3Plus(num_classes, criterion=...)`` sets ``self.criterion``):
``loss.py: ImageBasedCrossEntropyLoss2d`` (``--img_wt_loss``, used by
``scripts/train_kitti_WideResNet38.sh``) assigns a per-class weight tensor to its
``nll_loss.weight`` buffer during training, so such a file also holds
``module.criterion.nll_loss.weight``; the authors' ``eval.py`` (network built with
``criterion=None``, then ``forgiving_state_restore``) ignores it, and so does the converter (kept
as an extra). The relaxed loss of ``--jointwtborder`` (the Cityscapes scripts) holds no tensors.

Facts read (not copied) from ``network/deepv3.py``, ``network/wider_resnet.py``
(``WiderResNetA2(dilation=True)``: ``mod1.conv1``; ``mod2`` ... ``mod7`` of
``IdentityResidualBlock`` = ``bn1.0`` (BN of ``bnrelu``), ``convs.{conv1,bn2.0,conv2[,bn3.0,
conv3]}``, ``proj_conv``; stride 2 in ``mod4.block1`` only, rate 2 in ``mod5``, 4 in ``mod6`` /
``mod7``; ``bn_out`` not taken by ``DeepWV3Plus``), ``network/SEresnext.py`` (``layer0.{conv1,
bn1}``, ``SEResNeXtBottleneck`` with ``se_module.fc1`` / ``fc2``, ``downsample.{0,1}``),
``network/__init__.py``, ``optimizer.py``, ``loss.py``, ``train.py``, ``eval.py``,
``utils/misc.py`` and the ``scripts/*.sh`` of the 2019 code. *Not verified against NVIDIA's own
file:* ``network/mynn.py`` of 2019 (the index stores only the 2020 rewrite, where
``align_corners`` became ``cfg.MODEL.ALIGN_CORNERS``, default False); its ``Upsample`` with
``align_corners=True`` is read from a fork of the 2019 code (yangwangx/semantic-segmentation,
``network/mynn.py``).

**Where the release differs from paperlib's models (the converted model reproduces the release):**

* the decoder: ASPP branches (1x1 + rates 12 / 24 / 36 at output stride 8, conv-BN-ReLU) and the
  image-pooling branch are concatenated *pooling first* and projected by a plain 1x1 conv
  (``bot_aspp``, no BN, no ReLU); the low-level projection ``bot_fine`` is a plain 1x1 conv (48
  channels) too; the fused features are ``cat(low, aspp)``; the classifier has no bias.
  paperlib's :class:`~paperlib.models.heads.DeepLabV3PlusHead` has conv-BN-ReLU in both places:
  :class:`ReleaseDeepLabV3PlusHead` is the release's decoder built from paperlib's blocks;
* WideResNet38: ``DeepWV3Plus`` takes ``mod1`` ... ``mod7`` of ``wider_resnet38_a2`` but not its
  final ``bn_out``: :class:`ReleaseWRN38` drops it (paperlib's trunk ends in BN-ReLU);
* SE-ResNeXt-50: every bottleneck has a squeeze-excitation module (``se_module.fc1`` / ``fc2``,
  1x1 convs with bias, reduction 16) applied to the residual branch before the sum, and the stem's
  max-pool is ``MaxPool2d(3, 2, ceil_mode=True)`` without padding (paperlib: padding 1).
  :func:`se_resnext50_backbone` adds both to paperlib's ResNeXt-50 (32x4d) trunk;
* all bilinear resizes (``mynn.Upsample``) use ``align_corners=True`` in the 2019 code
  (``conventions="release"``; the 2020 code made it a config option), including the final one to
  the input size.

Inference in the release (``eval.py``): ImageNet mean/std on RGB in [0, 1], sliding 1024 x 1024
windows with 1/3 overlap, horizontal flip, scales 1.0 for ``scripts/eval_cityscapes_WideResNet38.sh``
(the paper's test submission: scales 0.5, 1.0, 2.0).
"""
from __future__ import annotations

import re
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from paperlib.models.backbones import ResNetBackbone, check_width, conv_bn_relu, init_weights, scaled
from paperlib.models.segmentation import SegmentationModel
from paperlib.models.wrn38 import WideResNet38

from ._io import CheckpointError, KeyMap, Released, convert, read_torch, sha256_file, unwrap

KINDS = ("wrn38", "seresnext50")
CONVENTIONS = ("release", "paperlib")
INPUT = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": 1.0}


def _check_conventions(c: str) -> str:
    if c not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}, got {c!r}")
    return c


class ReleaseWRN38(WideResNet38):
    """WideResNet38-A2 trunk as ``DeepWV3Plus`` uses it: output stride 8, no final ``bn_out``."""

    def __init__(self, width: Optional[int] = None):
        super().__init__(width, output_stride=8)
        del self.bn_out

    def forward(self, x: torch.Tensor):
        out = {}
        x = self.mod1(x)
        out["mod2"] = x = self.mod2(self.pool2(x))
        out["mod3"] = x = self.mod3(self.pool3(x))
        out["mod4"] = x = self.mod4(x)
        out["mod5"] = x = self.mod5(x)
        out["out"] = self.mod7(self.mod6(x))
        return out


class SEModule(nn.Module):
    """Squeeze-excitation: ``x * sigmoid(fc2(relu(fc1(avgpool(x)))))``, 1x1 convs with bias."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, max(1, channels // reduction), 1)
        self.fc2 = nn.Conv2d(max(1, channels // reduction), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class SEBottleneck(Bottleneck):
    """torchvision's bottleneck with the release's SE module on the residual branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.se_module(out) + identity)


def se_resnext50_backbone(width: Optional[int] = None) -> ResNetBackbone:
    """paperlib's ResNeXt-50 (32x4d) trunk at output stride 8 (layer3 rate 2, layer4 rate 4, every
    block, as variant 'D' of the release) with SE modules and the release's ceil-mode max-pool."""
    check_width(width, "se_resnext50")
    net = ResNetBackbone(50, groups=32, width_per_group=4, width=width, output_stride=8)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(net, name):
            block.se_module = SEModule(block.conv3.out_channels, 16)
            block.__class__ = SEBottleneck
    net.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
    return net


class _ReleaseASPP(nn.Module):
    """The release's ASPP branches: 1x1 + one 3x3 per rate (conv-BN-ReLU) and image pooling."""

    def __init__(self, cin: int, c: int, rates, conventions: str):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, c, 1)] + [conv_bn_relu(cin, c, 3, dilation=int(r)) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(cin, c, 1))
        self.conventions = conventions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear",
                               align_corners=self.conventions == "release")
        return torch.cat([pooled] + [b(x) for b in self.branches], 1)


class ReleaseDeepLabV3PlusHead(nn.Module):
    """NVIDIA's DeepLabV3+ decoder (see the module docstring) from paperlib's blocks: ``aspp``,
    ``aspp_proj`` (= ``bot_aspp``), ``low_proj`` (= ``bot_fine``), ``fuse`` (= ``final`` 0-5),
    ``classifier`` (= ``final.6``). Logits at the low-level feature's stride."""

    def __init__(self, in_channels: int, low_channels: int, num_classes: int, *, in_key: str, low_key: str,
                 rates=(12, 24, 36), width: Optional[int] = None, conventions: str = "release"):
        super().__init__()
        self.in_key, self.low_key = in_key, low_key
        c, c_low = scaled(256, width), scaled(48, width)
        self.aspp = _ReleaseASPP(in_channels, c, rates, conventions)
        self.aspp_proj = nn.Conv2d((len(rates) + 2) * c, c, 1, bias=False)
        self.low_proj = nn.Conv2d(low_channels, c_low, 1, bias=False)
        self.fuse = nn.Sequential(conv_bn_relu(c_low + c, c), conv_bn_relu(c, c))
        self.classifier = nn.Conv2d(c, num_classes, 1, bias=False)
        self.conventions = _check_conventions(conventions)
        init_weights(self)

    def forward(self, feats) -> torch.Tensor:
        low = self.low_proj(feats[self.low_key])
        x = self.aspp_proj(self.aspp(feats[self.in_key]))
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=self.conventions == "release")
        return self.classifier(self.fuse(torch.cat([low, x], 1)))


class ReleaseSegmentationModel(SegmentationModel):
    """:class:`SegmentationModel` whose final upsampling follows the conventions."""

    def __init__(self, backbone: nn.Module, head: nn.Module, conventions: str = "release"):
        super().__init__(backbone, head)
        self.conventions = _check_conventions(conventions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.backbone(x))
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=self.conventions == "release")
        return out


def build(kind: str, num_classes: int = 19, width: Optional[int] = None, conventions: str = "release") -> ReleaseSegmentationModel:
    """The release's ``DeepWV3Plus`` ("wrn38") or ``DeepSRNX50V3PlusD_m1`` ("seresnext50")."""
    _check_conventions(conventions)
    if kind == "wrn38":
        backbone = ReleaseWRN38(width)
        head = ReleaseDeepLabV3PlusHead(backbone.channels["out"], backbone.channels["mod2"], num_classes,
                                        in_key="out", low_key="mod2", width=width, conventions=conventions)
    elif kind == "seresnext50":
        backbone = se_resnext50_backbone(width)
        head = ReleaseDeepLabV3PlusHead(backbone.channels["layer4"], backbone.channels["layer1"], num_classes,
                                        in_key="layer4", low_key="layer1", width=width, conventions=conventions)
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return ReleaseSegmentationModel(backbone, head, conventions)


_HEAD = [
    (r"^head\.aspp\.branches\.(\d+)\.", r"aspp.features.\1."),
    (r"^head\.aspp\.pool\.1\.", "aspp.img_conv."),
    (r"^head\.aspp_proj\.", "bot_aspp."),
    (r"^head\.low_proj\.", "bot_fine."),
    (r"^head\.fuse\.0\.0\.", "final.0."),
    (r"^head\.fuse\.0\.1\.", "final.1."),
    (r"^head\.fuse\.1\.0\.", "final.3."),
    (r"^head\.fuse\.1\.1\.", "final.4."),
    (r"^head\.classifier\.", "final.6."),
]
_TRUNK = {"wrn38": [(r"^backbone\.", "")],
          "seresnext50": [(r"^backbone\.conv1\.", "layer0.conv1."), (r"^backbone\.bn1\.", "layer0.bn1."),
                          (r"^backbone\.", "")]}


#: Release keys that belong to the training loss, not the network (see the module docstring).
CRITERION_PREFIX = "criterion."


def keymap(kind: str, model: nn.Module, criterion_keys=()) -> KeyMap:
    """The release -> paperlib map of ``kind``; ``criterion_keys``: the file's training-loss tensors
    (``criterion.*``), kept as extras."""
    km = KeyMap(f"NVIDIA sdcnet {'DeepWV3Plus' if kind == 'wrn38' else 'DeepSRNX50V3PlusD_m1'}")
    for k in criterion_keys:
        km.extras[k] = "training loss state (ImageBasedCrossEntropyLoss2d's class weights), not the network"
    table = _HEAD + _TRUNK[kind]
    for key in model.state_dict():
        for pattern, repl in table:
            new, n = re.subn(pattern, repl, key)
            if n:
                km.add(new, key)
                break
        else:
            raise KeyError(key)
    return km


def detect(state: dict) -> str:
    if any(k.startswith("mod7.") for k in state):
        return "wrn38"
    if any(k.startswith("layer0.") for k in state):
        return "seresnext50"
    raise CheckpointError("not an NVIDIA sdcnet DeepLabV3+ checkpoint: expected mod1..mod7 (WideResNet38) or "
                          f"layer0..layer4 (SE-ResNeXt-50) keys, found e.g. {list(state)[:4]}")


def load(path, *, num_classes: Optional[int] = None, width: Optional[int] = None, conventions: str = "release",
         kind: Optional[str] = None, state=None) -> Released:
    """Convert an NVIDIA sdcnet checkpoint; ``kind`` ("wrn38" / "seresnext50") and the class count
    are read from the file unless given. ``state``: an already-read checkpoint object."""
    _check_conventions(conventions)
    obj = read_torch(path) if state is None else state
    sd, where = unwrap(obj, path, keys=("state_dict",))
    kind = kind or detect(sd)
    if num_classes is None:
        w = sd.get("final.6.weight")
        num_classes = int(w.shape[0]) if w is not None else 19
    model = build(kind, num_classes, width, conventions)
    conv = convert(sd, keymap(kind, model, [k for k in sd if k.startswith(CRITERION_PREFIX)]), model, str(path))
    model.eval()
    info = {"nesting": where + (" with 'module.' prefixes" if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict)
                                and all(k.startswith("module.") for k in obj["state_dict"]) else ""),
            "conventions": conventions}
    if isinstance(obj, dict):
        for k in ("epoch", "mean_iu", "command", "arch"):
            v = obj.get(k)
            if v is not None:
                info[k] = v.item() if hasattr(v, "item") else v
    return Released(model, "nvidia", kind, str(path), sha256_file(path) if state is None else "", conv, dict(INPUT), info)
