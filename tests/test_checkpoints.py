"""Converters of the authors' released checkpoints (paperlib.checkpoints, issue 22).

Every test file is written by ``paperlib.checkpoints.fixtures`` in the authors' format (key names,
nesting, shapes, dtypes; optimizer state, numpy scalars, argparse.Namespace beside the weights),
with random weights. Checked here:

* conversion is exact: the converted model's tensors map back to the file's, bit for bit;
* the converted model, run with the release's conventions, gives the output of the *release's
  architecture*: each ``ref_*`` below is an independent functional forward pass written from the
  facts listed in the converter docstrings (key names, layer order, strides, paddings, resize
  modes, the flow / 4, BGR inputs, the all-zero 11th guide weight, SE modules, BN epsilon, the DUC
  predictor's numpy re-arrangement) and reading the *release's* tensors by the *release's* key
  names with ``torch.nn.functional`` -- not the converter's modules and not the authors' code;
* output shapes; full-size layouts load with no missing or unexpected key (once per format);
* bad files fail with messages that name what is wrong.
Reduced widths keep every test fast.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperlib.checkpoints import CheckpointError, load_released, read_torch, same_tensors
from paperlib.checkpoints import fixtures as fx
from paperlib.checkpoints import gsvnet as G
from paperlib.checkpoints import nvidia as N
from paperlib.checkpoints._io import convert, strip_prefix

torch.set_num_threads(1)


def close(out, ref, rel=1e-4):
    """``out`` equals ``ref`` up to float32 reordering: max error <= rel * max |ref|."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    err = (out - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert torch.isfinite(ref).all() and scale > 0
    assert err <= rel * scale, f"max error {err:.3g} vs scale {scale:.3g}"


# --- functional reference helpers (release key names, torch.nn.functional only) ----------------------
def conv(x, sd, p, stride=1, pad=0, dil=1, groups=1):
    return F.conv2d(x, sd[f"{p}.weight"], sd.get(f"{p}.bias"), stride, pad, dil, groups)


def bn(x, sd, p, eps=1e-5):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        False, 0.0, eps)


def up(x, size, ac):
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=ac)


def ref_resnet18(sd, p, x):
    """torchvision-style ResNet-18: returns the post-ReLU stage outputs and the pre-ReLU sums."""
    x = F.max_pool2d(F.relu(bn(conv(x, sd, f"{p}conv1", 2, 3), sd, f"{p}bn1")), 3, 2, 1)
    posts, pres = [], []
    for i in range(1, 5):
        for b in range(2):
            k = f"{p}layer{i}.{b}"
            s = 2 if (i > 1 and b == 0) else 1
            res = bn(conv(x, sd, f"{k}.downsample.0", s), sd, f"{k}.downsample.1") if f"{k}.downsample.0.weight" in sd else x
            y = F.relu(bn(conv(x, sd, f"{k}.conv1", s, 1), sd, f"{k}.bn1"))
            pre = bn(conv(y, sd, f"{k}.conv2", 1, 1), sd, f"{k}.bn2") + res
            x = F.relu(pre)
        posts.append(x)
        pres.append(pre)
    return posts, pres


def ref_swiftnet(sd, x):
    """SwiftNet (model/swiftnet): skips = pre-ReLU sums; SPP grids 8/4/2 by aspect ratio; ladder
    with bilinear (align_corners=False) upsampling; BN-ReLU-conv units; stride-4 logits."""
    def brc(t, p, k):
        return conv(F.relu(bn(t, sd, f"{p}.norm")), sd, f"{p}.conv", 1, k // 2)
    _, skips = ref_resnet18(sd, "backbone.", x)
    s = brc(skips[3], "backbone.spp.spp.spp_bn", 1)
    h, w = s.shape[-2:]
    levels = [s]
    for i, g in enumerate((8, 4, 2)):
        pooled = F.adaptive_avg_pool2d(s, (g, max(1, round(w / h * g))))
        levels.append(up(brc(pooled, f"backbone.spp.spp.spp{i}", 1), (h, w), False))
    y = brc(torch.cat(levels, 1), "backbone.spp.spp.spp_fuse", 1)
    for i, skip in enumerate((skips[2], skips[1], skips[0])):
        sk = brc(skip, f"backbone.upsample.{i}.bottleneck", 1)
        y = brc(up(y, sk.shape[-2:], False) + sk, f"backbone.upsample.{i}.blend_conv", 3)
    return brc(y, "logits", 1)


def ref_bisenet(sd, x):
    """TorchSeg BiSeNet-R18 (GSVNet's copy): ConvBnRelu = .conv/.bn; align_corners=True; stride 8."""
    def cbr(t, p, s=1, pad=0, relu=True):
        t = bn(conv(t, sd, f"{p}.conv", s, pad), sd, f"{p}.bn")
        return F.relu(t) if relu else t
    sp = cbr(x, "spatial_path.conv_7x7", 2, 3)
    sp = cbr(sp, "spatial_path.conv_3x3_1", 2, 1)
    sp = cbr(sp, "spatial_path.conv_3x3_2", 2, 1)
    sp = cbr(sp, "spatial_path.conv_1x1")
    (l1, l2, l3, l4), _ = ref_resnet18(sd, "context_path.", x)
    last = up(cbr(F.adaptive_avg_pool2d(l4, 1), "global_context.1"), l4.shape[-2:], True)
    for i, (fm, target) in enumerate(((l4, l3), (l3, l2))):
        a = cbr(fm, f"arms.{i}.conv_3x3", 1, 1)
        att = torch.sigmoid(cbr(F.adaptive_avg_pool2d(a, 1), f"arms.{i}.channel_attention.1", relu=False))
        last = cbr(up(a * att + last, target.shape[-2:], True), f"refines.{i}", 1, 1)
    f = cbr(torch.cat([sp, last], 1), "ffm.conv_1x1")
    se = torch.sigmoid(conv(F.relu(conv(F.adaptive_avg_pool2d(f, 1), sd, "ffm.channel_attention.1.conv")), sd,
                            "ffm.channel_attention.2.conv"))
    return conv(cbr(f + f * se, "heads.2.conv_3x3", 1, 1), sd, "heads.2.conv_1x1")


def ref_pf(grm, of, prev_seg, prev_bgr, cur_bgr):
    """GSVNet's non-keyframe step as trainer/gsvnet_trainer.py + model/* compute it, on BGR frames."""
    h, w = cur_bgr.shape[-2] // 8, cur_bgr.shape[-1] // 8
    cur, prev = up(cur_bgr, (h, w), True), up(prev_bgr, (h, w), True)
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    x = lrelu(bn(conv(torch.cat([cur, prev], 1), of, "conv1.0", 2, 1), of, "conv1.1"))
    x = lrelu(bn(conv(x, of, "conv2.0", 2, 1), of, "conv2.1"))
    d = [lrelu(bn(conv(x, of, f"conv_dilate_{k}.0", 1, r, r), of, f"conv_dilate_{k}.1"))
         for k, r in zip(range(1, 5), (1, 2, 4, 8))]
    d[1], d[2], d[3] = d[1] + d[0], d[2] + d[1] + d[0], d[3] + d[2] + d[1] + d[0]
    flow = up(conv(lrelu(bn(conv(torch.cat(d, 1), of, "conv_merge.0"), of, "conv_merge.1")) + x, of, "toflow", 1, 1),
              (h, w), True)
    mv = (flow / 4).permute(0, 2, 3, 1).clone()           # MC_Module_Batch, then GridSampler.gen_grid
    base = torch.stack([torch.linspace(-1, 1, w).unsqueeze(0).expand(h, w),
                        torch.linspace(-1, 1, h).unsqueeze(1).expand(h, w)], dim=2)
    mv[..., 0] /= (w - 1)
    mv[..., 1] /= (h - 1)
    mv = mv * 2 + base
    warped = F.grid_sample(prev_seg, mv, mode="bilinear", padding_mode="zeros", align_corners=False)
    i = "grm.intra_net.intra_net"
    intra = F.relu(bn(conv(cur, grm, f"{i}.0", 1, 1), grm, f"{i}.1"))
    intra = F.relu(bn(conv(intra, grm, f"{i}.3", 1, 1), grm, f"{i}.4"))
    intra = conv(intra, grm, f"{i}.6", 1, 1)
    lap = torch.ones(1, 1, 3, 3)
    lap[0, 0, 1, 1] = -8
    edge = F.conv2d(warped.argmax(1, keepdim=True).float(), lap, padding=1)
    edge[edge != 0] = 1.0
    g = "grm.guide"
    gf = F.relu(bn(conv(torch.cat([intra, edge], 1), grm, f"{g}.guide_conv.0", 1, 1), grm, f"{g}.guide_conv.1"))
    t = F.relu(bn(conv(gf, grm, f"{g}.guide_conv_feat.0", 2, 1), grm, f"{g}.guide_conv_feat.1"))
    t = F.relu(bn(conv(t, grm, f"{g}.guide_conv_feat.3", 2, 1), grm, f"{g}.guide_conv_feat.4"))
    t = F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=True)
    t = F.relu(bn(conv(t, grm, f"{g}.guide_deconv.1", 1, 1), grm, f"{g}.guide_deconv.2"))
    t = F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=True)
    t = F.relu(bn(conv(t, grm, f"{g}.guide_deconv.5", 1, 1), grm, f"{g}.guide_deconv.6"))
    weights = F.relu(bn(conv(gf + t, grm, f"{g}.guide_decoder.0", 1, 1), grm, f"{g}.guide_decoder.1"))
    weights = weights / (weights.sum(1, keepdim=True) + 1e-9)
    xs = warped.unsqueeze(1)
    xs = torch.cat([xs, F.conv3d(xs, grm["grm.ideal_dk.filter_copy_s"], padding=(0, 1, 1))], 1)
    xs = torch.cat([xs, intra.unsqueeze(1)], 1)
    assert xs.shape[1] == 11 and weights.shape[1] == 11
    return (weights.unsqueeze(2) * xs).sum(1)


def _nvidia_decoder(sd, high, low, out_size):
    """deepv3.py: ASPP (image pooling first, rates 12/24/36), bot_aspp, bot_fine, cat(fine, up),
    final; every resize align_corners=True (mynn.Upsample, 2019)."""
    img = F.relu(bn(conv(F.adaptive_avg_pool2d(high, 1), sd, "aspp.img_conv.0"), sd, "aspp.img_conv.1"))
    feats = [up(img, high.shape[-2:], True)]
    for i, r in enumerate((0, 12, 24, 36)):
        feats.append(F.relu(bn(conv(high, sd, f"aspp.features.{i}.0", 1, r, max(r, 1)), sd, f"aspp.features.{i}.1")))
    x = up(conv(torch.cat(feats, 1), sd, "bot_aspp"), low.shape[-2:], True)
    x = torch.cat([conv(low, sd, "bot_fine"), x], 1)
    x = F.relu(bn(conv(x, sd, "final.0", 1, 1), sd, "final.1"))
    x = F.relu(bn(conv(x, sd, "final.3", 1, 1), sd, "final.4"))
    return up(conv(x, sd, "final.6"), out_size, True)


def ref_wrn38(sd, inp):
    """DeepWV3Plus: pre-activation blocks (bn1.0 + ReLU feeds convs and proj_conv), dilation=True
    (mod4 block1 stride 2, mod5 rate 2, mod6/7 rate 4), no bn_out, decoder on mod2."""
    def block(x, p, stride, d):
        pre = F.relu(bn(x, sd, f"{p}.bn1.0"))
        short = conv(pre, sd, f"{p}.proj_conv", stride) if f"{p}.proj_conv.weight" in sd else x
        if f"{p}.convs.conv3.weight" in sd:
            y = F.relu(bn(conv(pre, sd, f"{p}.convs.conv1", stride), sd, f"{p}.convs.bn2.0"))
            y = F.relu(bn(conv(y, sd, f"{p}.convs.conv2", 1, d, d), sd, f"{p}.convs.bn3.0"))
            y = conv(y, sd, f"{p}.convs.conv3")
        else:
            y = F.relu(bn(conv(pre, sd, f"{p}.convs.conv1", stride, d, d), sd, f"{p}.convs.bn2.0"))
            y = conv(y, sd, f"{p}.convs.conv2", 1, d, d)
        return y + short
    x = conv(inp, sd, "mod1.conv1", 1, 1)
    m2 = None
    for name, n, _ in fx.WRN38_MODULES:
        if name in ("mod2", "mod3"):
            x = F.max_pool2d(x, 3, 2, 1)
        d = {"mod5": 2, "mod6": 4, "mod7": 4}.get(name, 1)
        for b in range(n):
            x = block(x, f"{name}.block{b + 1}", 2 if (name == "mod4" and b == 0) else 1, d)
        if name == "mod2":
            m2 = x
    return _nvidia_decoder(sd, x, m2, inp.shape[-2:])


def ref_seresnext50(sd, inp):
    """DeepSRNX50V3PlusD_m1: layer0 (7x7, BN, ReLU, ceil-mode max-pool without padding), SE
    bottlenecks (stride on the grouped 3x3 of layer2's first block; variant D: layer3 rate 2,
    layer4 rate 4 on every 3x3), decoder on layer1."""
    x = F.relu(bn(conv(inp, sd, "layer0.conv1", 2, 3), sd, "layer0.bn1"))
    x = F.max_pool2d(x, 3, 2, 0, ceil_mode=True)
    low = None
    for i, n in zip(range(1, 5), (3, 4, 6, 3)):
        d = {3: 2, 4: 4}.get(i, 1)
        for b in range(n):
            k = f"layer{i}.{b}"
            s = 2 if (i == 2 and b == 0) else 1
            res = bn(conv(x, sd, f"{k}.downsample.0", s), sd, f"{k}.downsample.1") if b == 0 else x
            w2 = sd[f"{k}.conv2.weight"]
            groups = w2.shape[0] // w2.shape[1]
            y = F.relu(bn(conv(x, sd, f"{k}.conv1"), sd, f"{k}.bn1"))
            y = F.relu(bn(conv(y, sd, f"{k}.conv2", s, d, d, groups), sd, f"{k}.bn2"))
            y = bn(conv(y, sd, f"{k}.conv3"), sd, f"{k}.bn3")
            se = torch.sigmoid(conv(F.relu(conv(F.adaptive_avg_pool2d(y, 1), sd, f"{k}.se_module.fc1")), sd,
                                    f"{k}.se_module.fc2"))
            x = F.relu(y * se + res)
        if i == 1:
            low = x
    return _nvidia_decoder(sd, x, low, inp.shape[-2:])


def ref_duc(p, x, num_classes=19, eps=1e-6, exp="cityscapes"):
    """get_symbol_duc_hdc + Predictor.predict on MXNet parameter names: BN eps 1e-6, stride on
    conv3_1's 1x1 reduce and proj, pool1 without padding, HDC rates as resnet.py writes them, the
    summed top layer re-arranged with numpy-style reshape/transpose, bilinear resize
    (cv2 INTER_LINEAR = align_corners=False)."""
    def c(t, name, s=1, pad=0, d=1):
        return F.conv2d(t, p[f"{name}_weight"], p.get(f"{name}_bias"), s, pad, d)

    def b(t, name):
        return F.batch_norm(t, p[f"{name}/bn_moving_mean"], p[f"{name}/bn_moving_var"], p[f"{name}/bn_gamma"],
                            p[f"{name}/bn_beta"], False, 0.0, eps)
    h = F.relu(b(c(x, "conv1_1_3x3_s2", 2, 1), "conv1_1_3x3_s2"))
    h = F.relu(b(c(h, "conv1_2_3x3", 1, 1), "conv1_2_3x3"))
    h = F.relu(b(c(h, "conv1_3_3x3", 1, 1), "conv1_3_3x3"))
    h = F.max_pool2d(h, 3, 2, 0)
    for g, n, _, _ in fx.DUC_GROUPS:
        for blk in range(1, n + 1):
            s, stride = f"conv{g}_{blk}", 2 if (g == 3 and blk == 1) else 1
            d = fx.DUC_DILATIONS.get(g, [1] * n)[blk - 1]
            short = b(c(h, f"{s}_1x1_proj", stride), f"{s}_1x1_proj") if blk == 1 else h
            y = F.relu(b(c(h, f"{s}_1x1_reduce", stride), f"{s}_1x1_reduce"))
            y = F.relu(b(c(y, f"{s}_3x3", 1, d, d), f"{s}_3x3"))
            h = F.relu(b(c(y, f"{s}_1x1_increase"), f"{s}_1x1_increase") + short)
    top = sum(c(h, f"fc1_{exp}_c{i}", 1, 6 * (i + 1), 6 * (i + 1)) for i in range(4))
    _, ch, fh, fw = top.shape
    s = int(round((ch // num_classes) ** 0.5))
    lab = top[0].reshape(num_classes, s, s, fh, fw).permute(0, 3, 1, 4, 2).reshape(num_classes, fh * s, fw * s)
    return up(lab[None], x.shape[-2:], False)


# --- GSVNet ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gsv_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gsvnet")
    return {"swiftnet": fx.write_swiftnet(d / "cityscapes-swnet-R18.pt", width=16, seed=1),
            "bisenet": fx.write_bisenet(d / "cityscapes-bisenet-R18.pth", width=16, seed=2),
            "pf": fx.write_pf(d / "gsvnet_swnet_r18.tar", seed=3)}


def test_gsvnet_files_have_the_authors_nesting(gsv_files):
    sw = read_torch(gsv_files["swiftnet"])
    assert all(isinstance(v, torch.Tensor) for v in sw.values()) and "backbone.spp.spp.spp_bn.conv.weight" in sw
    assert sw["logits.conv.weight"].shape == (19, 32, 1, 1) and sw["backbone.img_mean"].shape == (1, 3, 1, 1)
    bs = read_torch(gsv_files["bisenet"])
    assert set(bs) == {"model", "optimizer", "epoch", "iteration"}
    assert bs["model"]["heads.0.conv_1x1.weight"].shape == (19, 64, 1, 1)   # aux head: 256 channels at width 64
    pf = read_torch(gsv_files["pf"])
    assert {"state_dict", "state_dict_of", "args", "optimizer", "epoch", "best_pred"} <= set(pf)
    assert isinstance(pf["args"], argparse.Namespace) and pf["args"].segnet == "swiftnet"
    assert pf["state_dict"]["grm.ideal_dk.filter_copy_s"].shape == (9, 1, 1, 3, 3)
    assert pf["state_dict"]["grm.guide.guide_decoder.0.weight"].shape == (11, 32, 3, 3)
    assert pf["state_dict"]["grm.intra_net.intra_net.0.bias"].shape == (32,)
    assert pf["state_dict_of"]["conv1.0.weight"].shape == (32, 6, 3, 3)
    assert pf["state_dict_of"]["conv1.1.num_batches_tracked"].dtype == torch.int64


@pytest.mark.parametrize("kind", ["swiftnet", "bisenet"])
def test_gsvnet_keyframe_roundtrip_and_release_output(gsv_files, kind):
    r = load_released(gsv_files[kind], "gsvnet", width=16)
    assert (r.format, r.kind) == ("gsvnet", kind) and len(r.sha256) == 64
    orig = read_torch(gsv_files[kind])
    orig = orig.get("model", orig)
    assert same_tensors(r.conversion.to_release(), orig) == []
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        native = r.model.native_logits(x)
        ref = ref_swiftnet(orig, x) if kind == "swiftnet" else ref_bisenet(orig, x)
        full = r.model(x)
    close(native, ref)
    assert native.shape == (1, 19, 24 if kind == "swiftnet" else 12, 40 if kind == "swiftnet" else 20)
    assert full.shape == (1, 19, 96, 160)


def test_gsvnet_bisenet_nesting_follows_init_segnet(tmp_path, gsv_files):
    """GSVNet's init_segnet reads checkpoint['state_dict'], else ['model'] (TorchSeg's Engine): both load."""
    obj = read_torch(gsv_files["bisenet"])
    torch.save({"state_dict": obj["model"], "epoch": 1}, tmp_path / "sd.pth")
    a = load_released(gsv_files["bisenet"], "gsvnet", width=16)
    b = load_released(tmp_path / "sd.pth", "gsvnet", width=16)
    assert (a.info["nesting"], b.info["nesting"]) == ("['model']", "['state_dict']")
    assert same_tensors(a.model.state_dict(), b.model.state_dict()) == []


def test_gsvnet_pf_roundtrip_and_release_output(gsv_files):
    r = load_released(gsv_files["pf"], "gsvnet")
    assert r.kind == "pf" and r.input["keyframe"] == "swiftnet" and r.info["args"]["segnet"] == "swiftnet"
    orig = read_torch(gsv_files["pf"])
    back = G.pf_release_state(r)
    assert same_tensors(back["state_dict"], orig["state_dict"]) == []
    assert same_tensors(back["state_dict_of"], orig["state_dict_of"]) == []
    g = torch.Generator().manual_seed(0)
    prev_seg = torch.randn(1, 19, 16, 32, generator=g) * 3
    prev, cur = torch.randn(1, 3, 128, 256, generator=g), torch.randn(1, 3, 128, 256, generator=g)
    with torch.no_grad():
        out = r.model(prev_seg, prev, cur)
        ref = ref_pf(orig["state_dict"], orig["state_dict_of"], prev_seg, prev.flip(1), cur.flip(1))
    close(out["out"], ref)
    assert out["guidance"].shape == (1, 11, 16, 32) and out["flow"].shape == (1, 2, 16, 32)
    assert torch.allclose(out["guidance"].sum(1), torch.ones(1, 16, 32), atol=1e-5)
    # the release's 10th chunk is the all-zero filter: shifting by it gives zeros, whatever its weight
    chunks = r.model.fusion.delay(prev_seg)
    assert chunks.shape[2] == 10 and chunks[:, :, 9].abs().max() == 0 and torch.equal(chunks[:, :, 0], prev_seg)
    # the same weights with paperlib's conventions: same shapes, a different (non-release) output
    G.set_conventions(r.model, "paperlib")
    with torch.no_grad():
        other = r.model(prev_seg, prev, cur)["out"]
    G.set_conventions(r.model, "release")
    assert other.shape == ref.shape and not torch.allclose(other, ref, atol=1e-3)


def test_gsvnet_release_conventions_need_a_grid_divisible_by_4(gsv_files):
    r = load_released(gsv_files["pf"], "gsvnet")
    seg, frame = torch.randn(1, 19, 10, 20), torch.randn(1, 3, 80, 160)
    with pytest.raises(ValueError, match="divisible by 4"), torch.no_grad():
        r.model(seg, frame, frame)
    G.set_conventions(r.model, "paperlib")
    with torch.no_grad():
        assert r.model(seg, frame, frame)["out"].shape == (1, 19, 10, 20)


def test_gsvnet_release_keyframe_protocol(gsv_files):
    r = load_released(gsv_files["swiftnet"], "gsvnet", width=16)
    key = G.ReleaseKeyframe(r.model)
    x = torch.randn(1, 3, 128, 256)
    with torch.no_grad():
        out = key(x)
        small = F.interpolate(x, size=(96, 192), mode="bilinear", align_corners=True)
        ref = up(ref_swiftnet(read_torch(gsv_files["swiftnet"]), small), (16, 32), True)
    close(out, ref)


def test_gsvnet_full_size_layouts_load():
    for layout, model, km in ((fx.swiftnet_layout(), G.ReleaseSwiftNet(), G.swiftnet_keymap),
                              (fx.bisenet_layout(), G.ReleaseBiSeNet(), None)):
        sd = fx.fill(layout, zeros=True)
        km = km(model) if km else G.bisenet_keymap(model, [k for k in sd if k.startswith(("heads.0.", "heads.1."))])
        conv = convert(sd, km, model)
        assert same_tensors(conv.to_release(), sd) == []
    n = sum(v.numel() for k, v in fx.fill(fx.swiftnet_layout(), zeros=True).items() if "num_batches" not in k
            and "running" not in k and "img_" not in k)
    assert 11.7e6 < n < 12.0e6   # SwiftNet-R18: 11.8M parameters (GSVNet Table 2: 47.2 MB)


# --- NVIDIA sdcnet -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["wrn38", "seresnext50"])
def test_nvidia_roundtrip_and_release_output(tmp_path, kind):
    path = fx.write_nvidia(tmp_path / f"{kind}.pth", kind, width=8, seed=4)
    raw = read_torch(path)
    assert all(k.startswith("module.") for k in raw["state_dict"]) and isinstance(raw["mean_iu"], np.floating)
    r = load_released(path, "nvidia", width=8)
    assert r.kind == kind and r.info["epoch"] == 175 and abs(r.info["mean_iu"] - 0.8) < 1e-9
    orig = strip_prefix(raw["state_dict"])
    assert same_tensors(r.conversion.to_release(), orig) == []
    x = torch.randn(1, 3, 72, 104)
    with torch.no_grad():
        out = r.model(x)
        ref = (ref_wrn38 if kind == "wrn38" else ref_seresnext50)(orig, x)
    close(out, ref)
    assert out.shape == (1, 19, 72, 104)
    if kind == "wrn38":
        assert not hasattr(r.model.backbone, "bn_out")


def test_nvidia_training_loss_buffer_is_kept_as_an_extra(tmp_path):
    """kitti_best.pth-style: trained with --img_wt_loss, the network's criterion submodule saved its
    per-class weights (module.criterion.nll_loss.weight): not the network, kept for the round trip."""
    path = fx.write_nvidia(tmp_path / "kitti_best.pth", "wrn38", width=8, seed=7, img_wt_loss=True)
    raw = read_torch(path)
    assert next(iter(raw["state_dict"])) == "module.criterion.nll_loss.weight" and "--img_wt_loss" in raw["command"]
    r = load_released(path, "nvidia", width=8)
    assert set(r.conversion.extras) == {"criterion.nll_loss.weight"}
    assert not any(k.startswith("criterion.") for k in r.model.state_dict())
    assert same_tensors(r.conversion.to_release(), strip_prefix(raw["state_dict"])) == []
    plain = load_released(fx.write_nvidia(tmp_path / "plain.pth", "wrn38", width=8, seed=7), "nvidia", width=8)
    assert same_tensors(plain.model.state_dict(), r.model.state_dict()) == []


def test_nvidia_full_size_wrn38_layout_loads():
    sd = fx.fill(fx.wrn38_layout(), zeros=True)
    model = N.build("wrn38")
    conv = convert(sd, N.keymap("wrn38", model), model)
    assert same_tensors(conv.to_release(), sd) == []
    blocks = {k.rsplit(".bn1.0.weight", 1)[0] for k in sd if k.endswith(".bn1.0.weight")}
    assert len(blocks) == 17 and sum(k.endswith("proj_conv.weight") for k in sd) == 6   # 3+3+6+3+1+1 blocks
    assert sd["mod7.block1.convs.conv3.weight"].shape == (4096, 2048, 1, 1) and "bn_out.0.weight" not in sd


def test_nvidia_seresnext_full_size_layout_loads():
    sd = fx.fill(fx.seresnext50_layout(), zeros=True)
    model = N.build("seresnext50")
    assert same_tensors(convert(sd, N.keymap("seresnext50", model), model).to_release(), sd) == []
    trunk = sum(v.numel() for k, v in sd.items() if k.startswith("layer") and not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked")))
    assert 25.5e6 < trunk < 25.6e6   # SE-ResNeXt-50 (32x4d) without its classifier: 25.5M


# --- TuSimple-DUC (ONNX) -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duc_file(tmp_path_factory):
    pytest.importorskip("onnx")
    return fx.write_onnx_duc(tmp_path_factory.mktemp("duc") / "ResNet101-DUC-7.onnx", width=8, seed=5)


def test_duc_onnx_roundtrip_and_release_output(duc_file):
    from paperlib.checkpoints import tusimple_duc as D
    r = load_released(duc_file, "tusimple-duc", width=8)
    inits, eps, info = D.read_onnx(duc_file)
    assert info["constants"] == ["cls_score_reshape_shape"] and set(eps.values()) == {1e-6}
    assert r.info["cell"] == 2 and r.info["rates"] == [6, 12, 18, 24]
    assert same_tensors(r.conversion.to_release(), inits) == []
    assert r.model.backbone.block_dilations()["layer3"][:5] == [2, 2, 5, 9, 1]
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = r.model(x)
    close(out, ref_duc(inits, x))
    assert out.shape == (1, 19, 64, 96)


def test_duc_full_size_layout_loads():
    from paperlib.checkpoints import tusimple_duc as D
    sd = fx.fill(fx.duc_layout(), zeros=True)
    model = D.build()
    assert same_tensors(convert(sd, D.keymap(model), model).to_release(), sd) == []
    assert model.head.top.convs[0].out_channels == 304   # cell 2: (8 / 2)^2 x 19


def test_duc_has_no_convention_switch(duc_file, tmp_path, capsys):
    from paperlib.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--format", "tusimple-duc", "--checkpoint", str(duc_file), "--width", "8",
              "--conventions", "paperlib", "--data-root", str(tmp_path), "--no-table"])
    assert e.value.code == 2 and "no convention switch" in capsys.readouterr().err


def test_duc_renamed_initializers_are_refused(tmp_path):
    pytest.importorskip("onnx")
    import onnx
    path = fx.write_onnx_duc(tmp_path / "duc.onnx", width=4, seed=6)
    m = onnx.load(str(path))
    for t in m.graph.initializer:
        t.name = t.name.replace("/bn_", "_bn_")
    onnx.save(m, str(tmp_path / "renamed.onnx"))
    with pytest.raises(CheckpointError, match=r"missing keys .*conv1_1_3x3_s2/bn_gamma.*unexpected keys .*_bn_gamma"):
        load_released(tmp_path / "renamed.onnx", "tusimple-duc", width=4)


# --- bad files ----------------------------------------------------------------------------------------------
class NotAllowed:
    pass


def test_bad_files_fail_clearly(tmp_path, gsv_files):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_released(tmp_path / "nope.pth", "nvidia")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read .*junk.pth.*weights_only=True"):
        load_released(junk, "nvidia")
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"mod1.conv1.weight": torch.zeros(1)}, "obj": NotAllowed()}, evil)
    with pytest.raises(CheckpointError, match="NotAllowed"):
        load_released(evil, "nvidia")
    with pytest.raises(CheckpointError, match="not an NVIDIA sdcnet"):
        load_released(gsv_files["swiftnet"], "nvidia")
    with pytest.raises(CheckpointError, match="not a GSVNet release checkpoint"):
        G.load(junk, state={"state_dict": {"mod1.conv1.weight": torch.zeros(1)}})


def test_missing_unexpected_and_mismatched_keys_are_all_named(tmp_path):
    path = fx.write_nvidia(tmp_path / "w.pth", "wrn38", width=8)
    obj = read_torch(path)
    sd = obj["state_dict"]
    del sd["module.final.6.weight"]
    sd["module.aux.weight"] = torch.zeros(3)
    sd["module.bot_fine.weight"] = torch.zeros(5, 16, 1, 1)
    torch.save(obj, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        load_released(tmp_path / "bad.pth", "nvidia", width=8)
    msg = str(e.value)
    assert "missing keys (1): final.6.weight" in msg and "unexpected keys (1): aux.weight" in msg
    assert "shape mismatches (1): bot_fine.weight -> head.low_proj.weight: checkpoint (5, 16, 1, 1) vs model (6, 16, 1, 1)" in msg
    with pytest.raises(CheckpointError, match="shape mismatches .*another width"):
        load_released(path, "nvidia", width=16)


def test_num_batches_tracked_may_be_absent(tmp_path):
    """Older PyTorch BN state dicts lack num_batches_tracked: filled in, and left out on the way back."""
    path = fx.write_nvidia(tmp_path / "w.pth", "wrn38", width=8)
    obj = read_torch(path)
    obj["state_dict"] = {k: v for k, v in obj["state_dict"].items() if not k.endswith("num_batches_tracked")}
    torch.save(obj, tmp_path / "old.pth")
    r = load_released(tmp_path / "old.pth", "nvidia", width=8)
    assert same_tensors(r.conversion.to_release(), strip_prefix(obj["state_dict"])) == []


def test_paperlib_format_is_strict(tmp_path):
    from paperlib.models import build
    net = build("tiny_fcn", num_classes=19, width=8)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "m.pth")
    r = load_released(tmp_path / "m.pth", "paperlib", model="tiny_fcn", width=8)
    assert same_tensors(r.model.state_dict(), net.state_dict()) == []
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_released(tmp_path / "m.pth", "paperlib", model="tiny_fcn", width=16)
    with pytest.raises(ValueError, match="needs the registry name"):
        load_released(tmp_path / "m.pth", "paperlib")


def test_every_torch_load_is_weights_only():
    src = Path(__file__).resolve().parents[1] / "paperlib" / "checkpoints"
    calls = [(f.name, m.group(1)) for f in src.glob("*.py") for m in re.finditer(r"torch\.load\(([^)]*)\)", f.read_text())]
    assert calls and all("weights_only=True" in args for _, args in calls), calls


# --- python -m paperlib evaluate ---------------------------------------------------------------------------
def test_evaluate_help_documents_every_option(capsys):
    from paperlib.__main__ import _parser, main
    sub = next(a for a in _parser()._actions if a.dest == "command")
    ev = sub.choices["evaluate"]
    for action in ev._actions:
        if action.dest != "help":
            assert action.help and len(action.help) > 10, action.option_strings
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--checkpoint", "--format", "--pf-checkpoint", "--data-root", "--mode", "--intervals",
                "--conventions", "--speed", "--output-root"):
        assert opt in out


@pytest.fixture(scope="module")
def world_root(tmp_path_factory):
    import os
    old = os.environ.get("PAPERLIB_DATA")
    os.environ["PAPERLIB_DATA"] = str(tmp_path_factory.mktemp("data"))
    try:
        from paperlib.data import export_world
        yield export_world("city_a", size=(64, 128), num_clips=2, seed=0, sequence=True, progress=False)
    finally:
        if old is None:
            os.environ.pop("PAPERLIB_DATA", None)
        else:
            os.environ["PAPERLIB_DATA"] = old


def test_evaluate_cli_end_to_end_on_fixtures(tmp_path, gsv_files, world_root, capsys):
    import json
    from paperlib.__main__ import main
    from paperlib.checkpoints import sha256_file
    sw = fx.write_swiftnet(tmp_path / "sw.pt", width=8)
    rc = main(["evaluate", "--format", "gsvnet", "--checkpoint", str(sw), "--pf-checkpoint", str(gsv_files["pf"]),
               "--width", "8", "--data-root", str(world_root), "--intervals", "1", "2", "--output-root", str(tmp_path),
               "--no-progress", "--device", "cpu"])
    assert rc == 0
    table = pd_read(tmp_path / "tables" / "gsvnet" / "released_weights.paper.csv")
    assert list(table["row"]) == ["SwiftNet-R18 (0.75)", "Ours-SN-R18 (l=2)"]
    assert table["avg mIoU"].between(0, 100).all() and (table["snippets"] == 2).all()
    manifest = json.loads((tmp_path / "tables" / "gsvnet" / "released_weights.paper.json").read_text())
    assert manifest["params"]["checkpoints"] == {str(sw): sha256_file(sw), str(gsv_files["pf"]): sha256_file(gsv_files["pf"])}
    md = (tmp_path / "tables" / "gsvnet" / "released_weights.paper.md").read_text()
    assert "paper: avg mIoU" in md and "`released_sn_image`" in md and "**fail**" in md   # random weights fail
    # a PF file given as the keyframe network is refused with a clear message
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--format", "gsvnet", "--checkpoint", str(gsv_files["pf"]), "--data-root", str(world_root)])
    assert e.value.code == 2 and "--pf-checkpoint" in capsys.readouterr().err


def test_evaluate_cli_image_protocols(tmp_path, world_root):
    from paperlib.__main__ import main
    w = fx.write_nvidia(tmp_path / "cityscapes_best.pth", "wrn38", width=8)
    assert main(["evaluate", "--format", "nvidia", "--checkpoint", str(w), "--width", "8", "--data-root", str(world_root),
                 "--output-root", str(tmp_path), "--no-progress", "--device", "cpu", "--max-images", "1"]) == 0
    t = pd_read(tmp_path / "tables" / "vplr" / "released_weights.paper.csv")
    assert t["row"][0] == "WideResNet38 DeepLabV3+, val, sliding 1024px windows, stride 683 + flip" and t["images"][0] == 1
    md = (tmp_path / "tables" / "vplr" / "released_weights.paper.md").read_text()
    assert "This table only describes" in md and "cv2 split" in md


def pd_read(path):
    import pandas as pd
    return pd.read_csv(path)


def test_released_checks_use_the_declared_tolerance():
    import pandas as pd
    from paperlib.checkpoints.evaluate import released_claims
    table = pd.DataFrame([{"row": "SwiftNet-R18 (0.75)", "avg mIoU": 74.0, "min mIoU": 74.0},
                          {"row": "Ours-SN-R18 (l=3)", "avg mIoU": 72.5, "min mIoU": 70.0}])
    res = {r.claim.id: r for r in released_claims("gsvnet", table)}
    assert set(res) == {"released_sn_image", "released_sn_l3_avg", "released_sn_l3_min"}
    assert res["released_sn_image"].verdict == "pass" and res["released_sn_l3_avg"].verdict == "pass"
    assert res["released_sn_l3_min"].verdict == "fail" and "Δ -0.70" in res["released_sn_l3_min"].detail
    assert isinstance(released_claims("vplr", table), str)
