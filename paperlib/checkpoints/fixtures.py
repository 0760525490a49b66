"""Checkpoints in the authors' formats, with random weights, for tests and the ``smoke`` notebook.

Each ``*_layout`` function lists the tensors (key, shape, dtype) of one released checkpoint as the
authors' code creates them -- key names, module nesting and registration order written down from
the facts in their public code (cited in the converter modules), independently of the converters'
key maps -- and ``write_*`` saves a file with the authors' outer nesting (optimizer state,
``argparse.Namespace``, numpy scalars included). ``width`` scales every channel count like
paperlib's ``width=`` (``paperlib.models.backbones.scaled``; ``None`` = the release's size); the key
names never change. Weights are random but sane (He-scaled convs, BN statistics near identity) so
that forward passes give finite, input-dependent outputs. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from paperlib.atomic import atomic_path
from paperlib.models.backbones import scaled

Layout = "OrderedDict[str, tuple[tuple[int, ...], str]]"


class _L:
    """A layout under construction: ``conv`` / ``bn`` / ``vec`` append entries in order."""

    def __init__(self):
        self.d: "OrderedDict[str, tuple[tuple[int, ...], str]]" = OrderedDict()

    def conv(self, key: str, cout: int, cin: int, k: int = 3, bias: bool = False, groups: int = 1) -> None:
        self.d[f"{key}.weight"] = ((cout, cin // groups, k, k), "conv")
        if bias:
            self.d[f"{key}.bias"] = ((cout,), "bias")

    def bn(self, key: str, c: int, tracked: bool = True) -> None:
        for name, kind in (("weight", "bn_w"), ("bias", "bn_b"), ("running_mean", "bn_mean"), ("running_var", "bn_var")):
            self.d[f"{key}.{name}"] = ((c,), kind)
        if tracked:
            self.d[f"{key}.num_batches_tracked"] = ((), "count")

    def put(self, key: str, shape, kind: str) -> None:
        self.d[key] = (tuple(shape), kind)


def fill(layout, seed: int = 0, zeros: bool = False) -> "OrderedDict[str, torch.Tensor]":
    """Random tensors for a layout (``zeros``: all-zero floats, fast for shape-only checks)."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, (shape, kind) in layout.items():
        if kind == "count":
            out[key] = torch.tensor(int(torch.randint(0, 1000, (), generator=g)), dtype=torch.int64)
            continue
        if zeros and kind not in ("bn_var", "const"):
            out[key] = torch.zeros(shape)
            continue
        if kind == "conv":
            fan_in = max(1, int(np.prod(shape[1:])))
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif kind == "bn_w":
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif kind in ("bn_b", "bias", "bn_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif kind == "bn_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif kind.startswith("const:"):
            t = torch.tensor([float(x) for x in kind[6:].split(",")]).view(shape)
        elif kind == "delay":  # GSVNet's ideal-delay init: 8 one-pixel shifts, then all-zero filters
            t = torch.zeros(shape)
            idx = 0
            for i in range(3):
                for j in range(3):
                    if (i, j) != (1, 1):
                        t[idx, 0, 0, i, j] = 1.0
                        idx += 1
        else:
            raise ValueError(f"unknown tensor kind {kind!r} for {key}")
        out[key] = t.float()
    return out


def _sgd_state(n: int) -> dict:
    """An SGD ``state_dict()`` as the authors' scripts save beside the weights."""
    return {"state": {i: {"momentum_buffer": torch.zeros(2)} for i in range(min(n, 3))},
            "param_groups": [{"lr": 0.01, "momentum": 0.9, "dampening": 0, "weight_decay": 5e-4, "nesterov": True,
                              "maximize": False, "foreach": None, "differentiable": False, "fused": None,
                              "params": list(range(n))}]}


def _save(obj, path) -> Path:
    with atomic_path(path) as tmp:  # the one atomic writer
        torch.save(obj, tmp)
    return Path(path)


# --- GSVNet release (robert80203/GSVNet) -------------------------------------------------------------
def _resnet18(L: _L, prefix: str, c, bn_tracked: bool = True) -> None:
    """torchvision-style ResNet-18 keys (SwiftNet's and TorchSeg's ResNets share them)."""
    L.conv(f"{prefix}conv1", c(64), 3, 7)
    L.bn(f"{prefix}bn1", c(64))
    cin = c(64)
    for i, planes in enumerate((c(64), c(128), c(256), c(512))):
        for b in range(2):
            key = f"{prefix}layer{i + 1}.{b}"
            L.conv(f"{key}.conv1", planes, cin if b == 0 else planes)
            L.bn(f"{key}.bn1", planes)
            L.conv(f"{key}.conv2", planes, planes)
            L.bn(f"{key}.bn2", planes)
            if b == 0 and (i > 0 or cin != planes):
                L.conv(f"{key}.downsample.0", planes, cin, 1)
                L.bn(f"{key}.downsample.1", planes)
        cin = planes


def swiftnet_layout(num_classes: int = 19, width: Optional[int] = None):
    """``SemsegModel(resnet18(...))`` of model/swiftnet: buffers ``img_mean`` / ``img_std`` first,
    the ResNet, SPP (``spp.spp.spp_bn``, ``spp0..2``, ``spp_fuse``: BN-ReLU-conv, no conv bias),
    ``upsample.{0,1,2}`` (skips layer3, layer2, layer1: ``bottleneck`` 1x1, ``blend_conv`` 3x3),
    then ``logits`` (BN-ReLU-1x1 conv with bias)."""
    def c(x):
        return scaled(x, width)
    L = _L()
    L.put("backbone.img_mean", (1, 3, 1, 1), "const:73.15,82.90,72.3")
    L.put("backbone.img_std", (1, 3, 1, 1), "const:47.67,48.49,47.73")
    _resnet18(L, "backbone.", c)
    f = c(128)
    lvl = f // 3
    L.bn("backbone.spp.spp.spp_bn.norm", c(512))
    L.conv("backbone.spp.spp.spp_bn.conv", f, c(512), 1)
    for i in range(3):
        L.bn(f"backbone.spp.spp.spp{i}.norm", f)
        L.conv(f"backbone.spp.spp.spp{i}.conv", lvl, f, 1)
    L.bn("backbone.spp.spp.spp_fuse.norm", f + 3 * lvl)
    L.conv("backbone.spp.spp.spp_fuse.conv", f, f + 3 * lvl, 1)
    for i, skip in enumerate((c(256), c(128), c(64))):
        L.bn(f"backbone.upsample.{i}.bottleneck.norm", skip)
        L.conv(f"backbone.upsample.{i}.bottleneck.conv", f, skip, 1)
        L.bn(f"backbone.upsample.{i}.blend_conv.norm", f)
        L.conv(f"backbone.upsample.{i}.blend_conv.conv", f, f, 3)
    L.bn("logits.norm", f)
    L.conv("logits.conv", num_classes, f, 1, bias=True)
    return L.d


def bisenet_layout(num_classes: int = 19, width: Optional[int] = None):
    """BiSeNet-R18 as GSVNet builds it (``model/bisenet/bisenet_resnet18.py``, ``real_time=False``),
    in its registration order: ``context_path`` (ResNet-18), ``spatial_path.{conv_7x7,conv_3x3_1,
    conv_3x3_2,conv_1x1}``, ``global_context.1``, ``ffm``, ``arms``, ``refines``, ``heads.{0,1}``
    (auxiliary, 256 channels) and ``heads.2`` (64); the heads' final 1x1 convs have biases. The
    block internals (ConvBnRelu = ``.conv`` without bias + ``.bn``; ARM ``conv_3x3`` +
    ``channel_attention.1``; FFM ``conv_1x1`` + ``channel_attention.{1,2}``) are TorchSeg's
    ``seg_oprs.py``: GSVNet's own ``model/bisenet/opt.py`` was not available to check."""
    def c(x):
        return scaled(x, width)
    L = _L()
    _resnet18(L, "context_path.", c)
    for name, cout, cin, k in (("conv_7x7", c(64), 3, 7), ("conv_3x3_1", c(64), c(64), 3),
                               ("conv_3x3_2", c(64), c(64), 3), ("conv_1x1", c(128), c(64), 1)):
        L.conv(f"spatial_path.{name}.conv", cout, cin, k)
        L.bn(f"spatial_path.{name}.bn", cout)
    L.conv("global_context.1.conv", c(128), c(512), 1)
    L.bn("global_context.1.bn", c(128))
    L.conv("ffm.conv_1x1.conv", c(256), c(256), 1)
    L.bn("ffm.conv_1x1.bn", c(256))
    L.conv("ffm.channel_attention.1.conv", c(256), c(256), 1)
    L.conv("ffm.channel_attention.2.conv", c(256), c(256), 1)
    for i, cin in enumerate((c(512), c(256))):
        L.conv(f"arms.{i}.conv_3x3.conv", c(128), cin, 3)
        L.bn(f"arms.{i}.conv_3x3.bn", c(128))
        L.conv(f"arms.{i}.channel_attention.1.conv", c(128), c(128), 1)
        L.bn(f"arms.{i}.channel_attention.1.bn", c(128))
    for i in range(2):
        L.conv(f"refines.{i}.conv", c(128), c(128), 3)
        L.bn(f"refines.{i}.bn", c(128))
    for i, (cin, mid) in enumerate(((c(128), c(256)), (c(128), c(256)), (c(256), c(64)))):
        L.conv(f"heads.{i}.conv_3x3.conv", mid, cin, 3)
        L.bn(f"heads.{i}.conv_3x3.bn", mid)
        L.conv(f"heads.{i}.conv_1x1", num_classes, mid, 1, bias=True)
    return L.d


def pf_layouts(num_classes: int = 19):
    """GSVNet's PF: ``state_dict`` of ``End2End(GuidedSpatiallyVaryingConv)`` (``grm.ideal_dk``:
    a (9, 1, 1, 3, 3) conv3d filter parameter; ``grm.intra_net.intra_net``: conv(3->32)-BN-ReLU-
    conv(32->32)-BN-ReLU-conv(32->C), biased; ``grm.guide``: ``guide_conv`` (C+1 -> 32),
    ``guide_conv_feat`` (two stride-2 convs to 64, 128), ``guide_deconv`` (upsample, 128 -> 64,
    upsample, 64 -> 32), ``guide_decoder`` (32 -> 11, BN, ReLU), every conv biased) and
    ``state_dict_of`` of ``FlowLight`` (``conv1`` 6 -> 32 s2, ``conv2`` -> 64 s2, ``conv_dilate_1..4``,
    ``conv_merge`` 256 -> 64 1x1, each conv-BN-LeakyReLU with biased convs; ``toflow`` 64 -> 2)."""
    g = _L()
    g.put("grm.ideal_dk.filter_copy_s", (9, 1, 1, 3, 3), "delay")
    for j, (cout, cin) in zip((0, 3, 6), ((32, 3), (32, 32), (num_classes, 32))):
        g.conv(f"grm.intra_net.intra_net.{j}", cout, cin, 3, bias=True)
        if j < 6:
            g.bn(f"grm.intra_net.intra_net.{j + 1}", cout)
    g.conv("grm.guide.guide_conv.0", 32, num_classes + 1, 3, bias=True)
    g.bn("grm.guide.guide_conv.1", 32)
    g.conv("grm.guide.guide_conv_feat.0", 64, 32, 3, bias=True)
    g.bn("grm.guide.guide_conv_feat.1", 64)
    g.conv("grm.guide.guide_conv_feat.3", 128, 64, 3, bias=True)
    g.bn("grm.guide.guide_conv_feat.4", 128)
    g.conv("grm.guide.guide_deconv.1", 64, 128, 3, bias=True)
    g.bn("grm.guide.guide_deconv.2", 64)
    g.conv("grm.guide.guide_deconv.5", 32, 64, 3, bias=True)
    g.bn("grm.guide.guide_deconv.6", 32)
    g.conv("grm.guide.guide_decoder.0", 11, 32, 3, bias=True)
    g.bn("grm.guide.guide_decoder.1", 11)
    f = _L()
    f.conv("conv1.0", 32, 6, 3, bias=True)
    f.bn("conv1.1", 32)
    f.conv("conv2.0", 64, 32, 3, bias=True)
    f.bn("conv2.1", 64)
    for k in range(1, 5):
        f.conv(f"conv_dilate_{k}.0", 64, 64, 3, bias=True)
        f.bn(f"conv_dilate_{k}.1", 64)
    f.conv("conv_merge.0", 64, 256, 1, bias=True)
    f.bn("conv_merge.1", 64)
    f.conv("toflow", 2, 64, 3, bias=True)
    return g.d, f.d


def write_swiftnet(path, width: Optional[int] = None, seed: int = 0, num_classes: int = 19) -> Path:
    """``cityscapes-swnet-R18.pt``: a bare state dict (loaded with ``strict=True`` by the release)."""
    return _save(fill(swiftnet_layout(num_classes, width), seed), path)


def write_bisenet(path, width: Optional[int] = None, seed: int = 0, num_classes: int = 19) -> Path:
    """``cityscapes-bisenet-R18.pth`` in TorchSeg's format (``Engine.save_checkpoint``): ``{"model",
    "optimizer", "epoch", "iteration"}``, ``module.`` stripped. GSVNet also accepts ``"state_dict"``."""
    sd = fill(bisenet_layout(num_classes, width), seed)
    return _save({"model": sd, "optimizer": _sgd_state(len(sd)), "epoch": 80, "iteration": 29750}, path)


def write_pf(path, seed: int = 0, num_classes: int = 19, segnet: str = "swiftnet") -> Path:
    """``gsvnet_swnet_r18.tar``: ``Trainer.save_state``'s dict, ``args`` an ``argparse.Namespace``."""
    grm, of = pf_layouts(num_classes)
    args = argparse.Namespace(segnet=segnet, optical_flow_network="light", train_filter=False, lr=0.01,
                              guide_lr=0.04, multi_step=[1, 2, 3, 4], dataset="cityscapes_2k")
    return _save({"epoch": 100, "state_dict": fill(grm, seed), "optimizer": _sgd_state(len(grm)),
                  "best_pred": 0.725, "current_pred": 0.72, "args": args, "test_best_pred": 0.0,
                  "current_test_pred": 0.0, "state_dict_of": fill(of, seed + 1)}, path)


# --- VPLR release (NVIDIA/semantic-segmentation, branch sdcnet) -----------------------------------------
WRN38_MODULES = (("mod2", 3, (128, 128)), ("mod3", 3, (256, 256)), ("mod4", 6, (512, 512)),
                 ("mod5", 3, (512, 1024)), ("mod6", 1, (512, 1024, 2048)), ("mod7", 1, (1024, 2048, 4096)))


def _nvidia_decoder(L: _L, c, high: int, low: int, num_classes: int) -> None:
    """deepv3.py's ASPP (``features.0..3``, ``img_conv``), ``bot_fine``, ``bot_aspp``, ``final``."""
    for i in range(4):
        L.conv(f"aspp.features.{i}.0", c(256), high, 1 if i == 0 else 3)
        L.bn(f"aspp.features.{i}.1", c(256))
    L.conv("aspp.img_conv.0", c(256), high, 1)
    L.bn("aspp.img_conv.1", c(256))
    L.conv("bot_fine", c(48), low, 1)
    L.conv("bot_aspp", c(256), 5 * c(256), 1)
    L.conv("final.0", c(256), c(48) + c(256), 3)
    L.bn("final.1", c(256))
    L.conv("final.3", c(256), c(256), 3)
    L.bn("final.4", c(256))
    L.conv("final.6", num_classes, c(256), 1)


def wrn38_layout(num_classes: int = 19, width: Optional[int] = None):
    """``DeepWV3Plus``: ``mod1.conv1``, then ``mod2`` ... ``mod7`` of IdentityResidualBlocks
    (``bn1.0`` = BN of ``bnrelu``; ``convs.conv1``, ``convs.bn2.0``, ``convs.conv2`` [, ``convs.bn3.0``,
    ``convs.conv3``]; ``proj_conv`` when stride or channels change), no ``bn_out``, then the decoder."""
    def c(x):
        return scaled(x, width)
    L = _L()
    L.conv("mod1.conv1", c(64), 3, 3)
    cin = c(64)
    for name, n, chans in WRN38_MODULES:
        chans = tuple(c(x) for x in chans)
        for b in range(n):
            key = f"{name}.block{b + 1}"
            L.bn(f"{key}.bn1.0", cin)
            if len(chans) == 2:
                L.conv(f"{key}.convs.conv1", chans[0], cin, 3)
                L.bn(f"{key}.convs.bn2.0", chans[0])
                L.conv(f"{key}.convs.conv2", chans[1], chans[0], 3)
            else:
                L.conv(f"{key}.convs.conv1", chans[0], cin, 1)
                L.bn(f"{key}.convs.bn2.0", chans[0])
                L.conv(f"{key}.convs.conv2", chans[1], chans[0], 3)
                L.bn(f"{key}.convs.bn3.0", chans[1])
                L.conv(f"{key}.convs.conv3", chans[2], chans[1], 1)
            stride = 2 if (name == "mod4" and b == 0) else 1
            if stride != 1 or cin != chans[-1]:
                L.conv(f"{key}.proj_conv", chans[-1], cin, 1)
            cin = chans[-1]
    _nvidia_decoder(L, c, cin, c(128), num_classes)
    return L.d


def seresnext50_layout(num_classes: int = 19, width: Optional[int] = None):
    """``DeepSRNX50V3PlusD_m1``: ``layer0.{conv1,bn1}`` (7x7 stem), ``layer1..4`` of
    SEResNeXtBottlenecks (32 groups x 4, SE reduction 16: ``se_module.fc1`` / ``fc2`` with biases,
    ``downsample.{0,1}`` on each first block), then the decoder (``bot_fine`` on layer1).
    A reduced ``width`` scales groups as paperlib's ResNeXt does (same per-group width)."""
    def c(x):
        return scaled(x, width)
    groups = 32 if width is None else max(1, round(32 * width / 64))
    per_group = 4 * 32 // groups
    L = _L()
    L.conv("layer0.conv1", c(64), 3, 7)
    L.bn("layer0.bn1", c(64))
    cin = c(64)
    for i, (planes, n) in enumerate(zip((c(64), c(128), c(256), c(512)), (3, 4, 6, 3))):
        bw = int(planes * per_group / 64) * groups
        out = planes * 4
        for b in range(n):
            key = f"layer{i + 1}.{b}"
            L.conv(f"{key}.conv1", bw, cin, 1)
            L.bn(f"{key}.bn1", bw)
            L.conv(f"{key}.conv2", bw, bw, 3, groups=groups)
            L.bn(f"{key}.bn2", bw)
            L.conv(f"{key}.conv3", out, bw, 1)
            L.bn(f"{key}.bn3", out)
            L.conv(f"{key}.se_module.fc1", out // 16, out, 1, bias=True)
            L.conv(f"{key}.se_module.fc2", out, out // 16, 1, bias=True)
            if b == 0:
                L.conv(f"{key}.downsample.0", out, cin, 1)
                L.bn(f"{key}.downsample.1", out)
            cin = out
    _nvidia_decoder(L, c, cin, c(256), num_classes)
    return L.d


def write_nvidia(path, kind: str = "wrn38", width: Optional[int] = None, seed: int = 0, num_classes: int = 19,
                 zeros: bool = False, img_wt_loss: bool = False) -> Path:
    """``cityscapes_best.pth``-style file: ``{"state_dict": {"module." + key: ...}, "optimizer", "epoch",
    "mean_iu": numpy.float64, "command"}`` (``utils/misc.py: evaluate_eval``). ``img_wt_loss``: as
    trained with ``--img_wt_loss`` (``scripts/train_kitti_WideResNet38.sh``, ``kitti_best.pth``):
    the network's ``criterion`` submodule (registered before ``mod1`` / ``layer0``) then holds the
    per-class weights ``ImageBasedCrossEntropyLoss2d`` assigned to its ``nll_loss.weight`` buffer."""
    layout = wrn38_layout(num_classes, width) if kind == "wrn38" else seresnext50_layout(num_classes, width)
    sd = OrderedDict()
    if img_wt_loss:
        g = torch.Generator().manual_seed(seed + 1000)
        sd["module.criterion.nll_loss.weight"] = 1.0 + torch.rand(num_classes, generator=g)   # 1 + bound * (1 - hist)
    sd.update(("module." + k, v) for k, v in fill(layout, seed, zeros=zeros).items())
    arch = "network.deepv3.DeepWV3Plus" if kind == "wrn38" else "network.deepv3.DeepSRNX50V3PlusD_m1"
    command = f"train.py --arch {arch} --dataset " + ("kitti --img_wt_loss" if img_wt_loss else "cityscapes --jointwtborder")
    return _save({"state_dict": sd, "optimizer": _sgd_state(len(sd)), "epoch": 175,
                  "mean_iu": np.nanmean(np.array([0.79, 0.81])), "command": command}, path)


# --- DUC/HDC release (TuSimple/TuSimple-DUC, MXNet; ONNX model zoo export) --------------------------
#: (group, blocks, reduce channels, output channels) of get_resnet_hdc; dilations of res4 / res5.
DUC_GROUPS = ((2, 3, 64, 256), (3, 4, 128, 512), (4, 23, 256, 1024), (5, 3, 512, 2048))
DUC_DILATIONS = {4: [2, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5], 5: [5, 9, 17]}


def duc_layout(num_classes: int = 19, width: Optional[int] = None, cell_cap: int = 16, exp: str = "cityscapes",
               aspp_num: int = 4):
    """The MXNet parameters of ``get_symbol_duc_hdc`` (ONNX initializer names): per conv
    ``<name>_weight`` (no bias), per BN ``<name>/bn_{gamma,beta,moving_mean,moving_var}``, the
    top ``fc1_<exp>_c<i>_{weight,bias}`` with ``cell_cap * L`` channels."""
    def c(x):
        return scaled(x, width)
    L = _L()

    def conv_bn(name, cout, cin, k):
        L.put(f"{name}_weight", (cout, cin, k, k), "conv")
        for p, kind in (("gamma", "bn_w"), ("beta", "bn_b"), ("moving_mean", "bn_mean"), ("moving_var", "bn_var")):
            L.put(f"{name}/bn_{p}", (cout,), kind)
    conv_bn("conv1_1_3x3_s2", c(64), 3, 3)
    conv_bn("conv1_2_3x3", c(64), c(64), 3)
    conv_bn("conv1_3_3x3", c(128), c(64), 3)
    cin = c(128)
    for g, n, mid, out in DUC_GROUPS:
        for b in range(1, n + 1):
            s = f"conv{g}_{b}"
            if b == 1:
                conv_bn(f"{s}_1x1_proj", c(out), cin, 1)
            conv_bn(f"{s}_1x1_reduce", c(mid), cin, 1)
            conv_bn(f"{s}_3x3", c(mid), c(mid), 3)
            conv_bn(f"{s}_1x1_increase", c(out), c(mid), 1)
            cin = c(out)
    for i in range(aspp_num):
        L.put(f"fc1_{exp}_c{i}_weight", (cell_cap * num_classes, cin, 3, 3), "conv")
        L.put(f"fc1_{exp}_c{i}_bias", (cell_cap * num_classes,), "bias")
    return L.d


def write_onnx_duc(path, width: Optional[int] = None, seed: int = 0, num_classes: int = 19, cell_cap: int = 16,
                   exp: str = "cityscapes", eps: float = 1e-6) -> Path:
    """A small ONNX graph of the DUC-HDC network with the release's initializer names: the whole
    topology (Conv / BatchNormalization(epsilon) / Relu / MaxPool / Add / Sum / Reshape to
    ``(N, L, -1)`` as the model zoo's output), at ``width``. Needs the ``onnx`` package."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors = fill(duc_layout(num_classes, width, cell_cap, exp), seed)
    nodes = []

    def conv(x, name, stride=1, pad=0, dil=1, bias=None, out=None):
        k = tensors[f"{name}_weight"].shape[-1]
        inputs = [x, f"{name}_weight"] + ([bias] if bias else [])
        y = out or name
        nodes.append(helper.make_node("Conv", inputs, [y], name=y, kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pad] * 4, dilations=[dil, dil]))
        return y

    def bn(x, name):
        y = f"{name}/bn"
        nodes.append(helper.make_node("BatchNormalization", [x] + [f"{name}/bn_{p}" for p in
                                      ("gamma", "beta", "moving_mean", "moving_var")], [y], name=y, epsilon=eps,
                                      momentum=0.9995))
        return y

    def relu(x, name):
        nodes.append(helper.make_node("Relu", [x], [name], name=name))
        return name

    def conv_bn_ac(x, name, **kw):
        return relu(bn(conv(x, name, **kw), name), f"{name}/relu")

    x = conv_bn_ac("data", "conv1_1_3x3_s2", stride=2, pad=1)
    x = conv_bn_ac(x, "conv1_2_3x3", pad=1)
    x = conv_bn_ac(x, "conv1_3_3x3", pad=1)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1_3x3_s2"], name="pool1_3x3_s2", kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[0, 0, 0, 0]))
    x = "pool1_3x3_s2"
    for g, n, _, _ in DUC_GROUPS:
        for b in range(1, n + 1):
            s = f"conv{g}_{b}"
            d = DUC_DILATIONS.get(g, [1] * n)[b - 1]
            stride = 2 if (g == 3 and b == 1) else 1
            short = bn(conv(x, f"{s}_1x1_proj", stride=stride), f"{s}_1x1_proj") if b == 1 else x
            y = conv_bn_ac(x, f"{s}_1x1_reduce", stride=stride)
            y = conv_bn_ac(y, f"{s}_3x3", pad=d, dil=d)
            y = bn(conv(y, f"{s}_1x1_increase"), f"{s}_1x1_increase")
            nodes.append(helper.make_node("Add", [y, short], [f"res{g}_{b}"], name=f"res{g}_{b}"))
            x = relu(f"res{g}_{b}", f"res{g}_{b}_relu")
    tops = [conv(x, f"fc1_{exp}_c{i}", pad=6 * (i + 1), dil=6 * (i + 1), bias=f"fc1_{exp}_c{i}_bias")
            for i in range(sum(1 for k in tensors if k.endswith("_bias") and k.startswith("fc1_")))]
    nodes.append(helper.make_node("Sum", tops, [f"fc1_{exp}"], name=f"fc1_{exp}"))
    shape = numpy_helper.from_array(np.array([0, num_classes, -1], dtype=np.int64), "cls_score_reshape_shape")
    nodes.append(helper.make_node("Reshape", [f"fc1_{exp}", "cls_score_reshape_shape"], ["seg_loss"], name="seg_loss"))
    inits = [numpy_helper.from_array(t.numpy(), k) for k, t in tensors.items()] + [shape]
    graph = helper.make_graph(nodes, "duc_hdc", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info("seg_loss", TensorProto.FLOAT, [1, num_classes, None])], inits)
    model = helper.make_model(graph, producer_name="paperlib fixture (MXNet DUC-HDC naming)",
                              opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return Path(path)
