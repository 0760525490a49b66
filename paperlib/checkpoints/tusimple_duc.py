"""DUC/HDC's release (TuSimple/TuSimple-DUC, MXNet) -> ``deeplabv2_resnet101(head="duc", stem="3x3")``.

The released ``ResNet_DUC_HDC_CityScapes`` model is MXNet (``-symbol.json`` + ``-0020.params``,
``configs/test/test_full_image.cfg``); the ONNX model zoo republishes it as
``ResNet101-DUC-7.onnx`` (ONNX 1.2.2, opset 7; also ``-12.onnx``). This module reads the ONNX
file's *initializers* with the ``onnx`` package (``pip install onnx``) and, where the graph has
them, the ``BatchNormalization`` nodes' ``epsilon``.

Parameter names, verified against the MXNet symbol (``tusimple_duc/networks/resnet.py``,
``network_duc_hdc.py``; read, not copied): every ``Convolution`` is named ``name`` and has
``no_bias=True``, so its one parameter is ``<name>_weight``; every ``BatchNorm`` is named
``'%s/bn' % suffix`` with ``suffix == name``, so its parameters are ``<name>/bn_gamma``,
``<name>/bn_beta`` and auxiliary states ``<name>/bn_moving_mean``, ``<name>/bn_moving_var``
(``eps=1e-6``, ``fix_gamma=False``, ``momentum=0.9995``). Names: the stem ``conv1_1_3x3_s2``,
``conv1_2_3x3``, ``conv1_3_3x3``; per bottleneck ``conv{g}_{b}_{1x1_reduce,3x3,1x1_increase}`` and,
in each group's first block, ``conv{g}_{b}_1x1_proj`` (groups g = 2..5, blocks b = 1..3/4/23/3);
the DUC top layer ``fc1_{exp}_c{i}_{weight,bias}`` (i = 0..3, ``exp`` = "cityscapes", biased).
MXNet's ONNX exporter (``mxnet/contrib/onnx/mx2onnx/_op_translations.py:
convert_weights_and_inputs``) writes each parameter as an initializer under its MXNet name, and
``convert_batchnorm`` copies ``eps`` into ``epsilon``. *Unverified:* the zoo's ``.onnx`` files
themselves (the stored index holds only their Git LFS pointers), and whether the released
``-symbol.json`` they were exported from names anything differently from the GitHub code; a file
that names its initializers otherwise is refused with the list of names it has.

**Where the release differs from the paper's text / paperlib's defaults (reproduced here):**

* HDC rates: res4a (``conv4_1``) keeps rate **2**; res4b1..res4b22 cycle 2, 5, 9, 1 from there
  (so block b has rate [1, 2, 5, 9][b % 4] except b = 0); res5 = 5, 9, 17. paperlib's
  ``hdc="dilation_bigger"`` follows the paper's wording (res4a at 1) -- :data:`RELEASE_RATES`;
* res3a (``conv3_1``) strides its 1x1 reduce conv (Caffe style), not the 3x3 (torchvision);
* the stem max-pool has no padding (``pool1_3x3_s2``: 3x3, stride 2, floor), paperlib's pads 1;
* BatchNorm epsilon is 1e-6 (MXNet), PyTorch's default is 1e-5;
* the DUC top layer: 4 dilated 3x3 convs (rates 6, 12, 18, 24, with bias) summed, ``16 x 19``
  channels for the released cell 2 (``cell_width=2`` of ``test_full_image.cfg``: ``cell_cap`` 16 =
  (8 / 2)^2; ``get_symbol_duc_hdc``'s default 64 is not the release's); the predictor's
  re-arrangement (``tusimple_duc/test/predictor.py``) ``reshape(L, 4, 4, h, w) -> transpose(0, 3,
  1, 4, 2)`` is exactly ``pixel_shuffle`` (channel ``l * 16 + i * 4 + j`` -> class l at
  ``(4 y + i, 4 x + j)``), then a bilinear resize of the stride-2 logits (cv2 ``INTER_LINEAR`` =
  ``align_corners=False``) to the label size;
* training computes the loss at cell resolution against labels downsampled to the cell grid
  (``SoftmaxOutput`` on the reshaped top layer), not on upsampled logits;
* input: RGB in [0, 255] (``test/predict_full_image.py`` flips ``cv.imread``'s BGR) minus the mean
  (122.675, 116.669, 104.008), no std; the image is padded at the bottom / right to a multiple of 8
  with the mean colour (``tusimple_duc/test/tester.py``, the zoo's ``duc-preprocess.py``).
"""
from __future__ import annotations

import os
import re
from typing import Optional

import torch
from torch import nn

from paperlib.models import build as build_model

from ._io import CheckpointError, KeyMap, Released, convert, sha256_file

#: res4 (layer3) and res5 (layer4) rates of the released network (resnet.py: get_resnet_hdc).
RELEASE_RATES = {"layer3": [2] + [[1, 2, 5, 9][b % 4] for b in range(1, 23)], "layer4": [5, 9, 17]}
INPUT = {"mean": (122.675, 116.669, 104.008), "std": (1.0, 1.0, 1.0), "scale": 255.0}
BN_EPS = 1e-6
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
_CONVS = {"conv1": "1x1_reduce", "conv2": "3x3", "conv3": "1x1_increase"}
_STEM = ("conv1_1_3x3_s2", "conv1_2_3x3", "conv1_3_3x3")


def build(num_classes: int = 19, width: Optional[int] = None, cell: int = 2, rates=(6, 12, 18, 24)) -> nn.Module:
    """``deeplabv2_resnet101(head="duc", stem="3x3", block_rates=RELEASE_RATES)`` with the release's
    stride placement in res3a, un-padded stem max-pool and BN epsilon (module docstring)."""
    model = build_model("deeplabv2_resnet101", num_classes=num_classes, width=width, head="duc", cell=cell,
                        rates=tuple(rates), stem="3x3", block_rates=RELEASE_RATES)
    bb = model.backbone
    bb.maxpool = nn.MaxPool2d(3, 2, 0)
    first = bb.layer2[0]
    first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = BN_EPS
    return model


def _mx_name(key: str, exp: str) -> Optional[str]:
    """paperlib key -> MXNet/ONNX parameter name (None: no release counterpart)."""
    if key.endswith("num_batches_tracked"):
        return None
    m = re.match(r"^backbone\.stem\.(\d)\.([01])\.(\w+)$", key)
    if m:
        name = _STEM[int(m.group(1))]
        return f"{name}_weight" if m.group(2) == "0" else f"{name}/bn_{_BN[m.group(3)]}"
    m = re.match(r"^backbone\.layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(\w+)$", key)
    if m:
        group, block, part, leaf = int(m.group(1)) + 1, int(m.group(2)) + 1, m.group(3), m.group(4)
        stem = f"conv{group}_{block}_"
        if part.startswith("conv"):
            return f"{stem}{_CONVS[part]}_weight"
        if part.startswith("bn"):
            return f"{stem}{_CONVS['conv' + part[2]]}/bn_{_BN[leaf]}"
        if part == "downsample.0":
            return f"{stem}1x1_proj_weight"
        return f"{stem}1x1_proj/bn_{_BN[leaf]}"
    m = re.match(r"^head\.top\.convs\.(\d)\.(weight|bias)$", key)
    if m:
        return f"fc1_{exp}_c{m.group(1)}_{m.group(2)}"
    raise KeyError(key)


def keymap(model: nn.Module, exp: str = "cityscapes") -> KeyMap:
    km = KeyMap("TuSimple-DUC ResNet-101-DUC-HDC")
    for key, value in model.state_dict().items():
        name = _mx_name(key, exp)
        if name is None:
            km.defaults[key] = torch.zeros_like(value)
        else:
            km.add(name, key)
    return km


def read_onnx(path) -> tuple[dict[str, torch.Tensor], dict[str, float], dict]:
    """``(initializers, epsilon by BN name prefix, info)`` of an ONNX file (no graph execution)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ImportError("reading the ONNX release needs the onnx package: pip install onnx") from None
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path} (paperlib never downloads; see the README)")
    try:
        m = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - re-raised with the file
        raise CheckpointError(f"cannot read {path} as an ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    if not m.graph.initializer:
        raise CheckpointError(f"{path}: the ONNX graph has no initializers (weights)")
    inits, constants = {}, []
    for t in m.graph.initializer:  # float tensors are weights; int64 ones are graph constants (Reshape shapes)
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f":
            inits[t.name] = torch.from_numpy(a.copy())
        else:
            constants.append(t.name)
    eps = {}
    for node in m.graph.node:
        if node.op_type == "BatchNormalization" and len(node.input) >= 2:
            value = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            eps[node.input[1].rsplit("_gamma", 1)[0]] = float(f"{value:.6g}")  # float32 attribute
    info = {"opset": [int(o.version) for o in m.opset_import], "producer": m.producer_name, "constants": constants,
            "inputs": [i.name for i in m.graph.input if i.name not in inits]}
    return inits, eps, info


def _infer(inits: dict, path) -> tuple[str, int, int, tuple[int, ...]]:
    """(exp, num_classes, cell, rates) from the top layer's initializers."""
    tops = sorted(k for k in inits if re.match(r"^fc1_\w+_c\d_weight$", k))
    if not tops:
        raise CheckpointError(f"{path}: no DUC top layer (fc1_<exp>_c<i>_weight) among the initializers "
                              f"(found e.g. {sorted(inits)[:6]})")
    exp = re.match(r"^fc1_(\w+)_c\d_weight$", tops[0]).group(1)
    channels = int(inits[tops[0]].shape[0])
    return exp, channels, len(tops), tuple(6 * (i + 1) for i in range(len(tops)))


def load(path, *, num_classes: int = 19, width: Optional[int] = None, inits=None) -> Released:
    """Convert the ONNX release (``inits``: already-read ``read_onnx`` output, for tests)."""
    if inits is None:
        inits, eps, info = read_onnx(path)
    else:
        inits, eps, info = inits
    exp, channels, _, rates = _infer(inits, path)
    if channels % num_classes:
        raise CheckpointError(f"{path}: the DUC top layer has {channels} channels, not a multiple of "
                              f"num_classes={num_classes}")
    s = int(round((channels // num_classes) ** 0.5))
    if s * s * num_classes != channels or 8 % s:
        raise CheckpointError(f"{path}: {channels} top channels = {channels // num_classes} x {num_classes}: not a "
                              f"square cell layout of output stride 8")
    cell = 8 // s
    model = build(num_classes, width, cell, rates)
    km = keymap(model, exp)
    conv = convert(inits, km, model, str(path))
    used = set()
    if eps:
        by_release = {r.release: r.paperlib for r in km.rules}
        for prefix, value in eps.items():
            key = by_release.get(f"{prefix}_gamma")
            if key is None:
                continue
            module = model.get_submodule(key.rsplit(".", 1)[0])
            module.eps = value
            used.add(value)
    model.eval()
    info.update(exp=exp, cell=cell, rates=list(rates), bn_eps=sorted(used) or [BN_EPS],
                nesting="ONNX graph initializers")
    return Released(model, "tusimple-duc", "resnet101_duc_hdc", str(path), sha256_file(path), conv, dict(INPUT), info)
