"""The model zoo: every registry model runs at CPU size; paper sizes; HDC; DUC layout; checkpoints."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from paperlib import models
from paperlib.losses import build_loss
from paperlib.models.backbones import hdc_block_rates, layer_rates, load_pretrained, resnet
from paperlib.models.heads import ASPP, DilatedSum, DUCHead, _deconv, deconv_channels_matching_duc, duc_channels
from paperlib.models.wrn38 import wrn38
from paperlib.profiling import count_parameters

ZOO = [n for n in models.available() if n != "tiny_fcn"]
WITH_AUX = {"pspnet_resnet101", "ocr_hrnet_w48", "ocr_hrnet_w18", "bisenet_resnet18", "fastscnn", "icnet_resnet50"}


def n_params(model: nn.Module) -> int:
    return count_parameters(model)[0]


def test_registry_has_the_papers_models():
    need = {"deeplabv3plus_resnext50", "deeplabv3plus_wrn38", "deeplabv3plus_resnet50", "deeplabv3plus_resnet18",
            "pspnet_resnet101", "ocr_hrnet_w48", "ocr_hrnet_w18", "icnet_resnet50", "bisenet_resnet18",
            "fastscnn", "swiftnet_resnet18", "deeplabv2_resnet101"}
    assert need <= set(models.available())


@pytest.mark.parametrize("name", ZOO)
def test_every_model_runs_small_and_returns_input_resolution(name):
    torch.manual_seed(0)
    model = models.build(name, num_classes=5, width=8)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 5, 64, 64)
    assert torch.isfinite(y).all()
    model.train()
    out = model(torch.randn(2, 3, 48, 56))
    if name in WITH_AUX:
        assert set(out) == {"out", "aux"}
        assert out["out"].shape == out["aux"].shape == (2, 5, 48, 56)
    else:
        assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 48, 56)
    # the engine's loss accepts the train-mode output and gradients reach the first layer
    loss = build_loss("cross_entropy")(out, {"label": torch.randint(0, 5, (2, 48, 56))})
    loss.backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["deeplabv3plus_resnext50", "icnet_resnet50", "fastscnn", "ocr_hrnet_w18",
                                  "swiftnet_resnet18", "deeplabv3plus_wrn38"])
def test_odd_input_sizes(name):
    model = models.build(name, num_classes=3, width=8).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 61, 83)).shape == (1, 3, 61, 83)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="width"):
        models.build("swiftnet_resnet18", width=0)
    with pytest.raises(ValueError, match="output_stride"):
        models.build("deeplabv3plus_resnet18", width=8, output_stride=4)
    with pytest.raises(ValueError, match="head"):
        models.build("deeplabv2_resnet101", width=8, head="crf")
    with pytest.raises(ValueError, match="block_rates"):
        models.build("deeplabv2_resnet101", width=8, block_rates={"layer4": [1, 2]})
    with pytest.raises(ValueError, match="bad options"):
        models.build("fastscnn", depth=50)
    with pytest.raises(ValueError, match="cell"):
        duc_channels(19, 8, 3)


# --- paper sizes (no forward passes) --------------------------------------------------------
def test_resnet_backbones_match_torchvision_exactly():
    for ours, theirs in ((resnet(50), torchvision.models.resnet50()),
                         (resnet(50, variant="resnext"), torchvision.models.resnext50_32x4d())):
        keys = {k for k in theirs.state_dict() if not k.startswith("fc.")}
        assert set(ours.state_dict()) == keys
        assert n_params(ours) == n_params(theirs) - n_params(theirs.fc)


@pytest.mark.parametrize("name, options, expected, tol", [
    ("swiftnet_resnet18", {}, 11.797e6, 0.001),         # authors' code, single scale
    ("fastscnn", {"aux": False}, 1.138e6, 0.001),        # public port; paper: 1.11M
    ("fastscnn", {"aux": False}, 1.11e6, 0.05),          # Fast-SCNN paper / CSST "1.1M"
    ("ocr_hrnet_w48", {}, 70.3e6, 0.005),                # HRNet-OCR paper
    ("icnet_resnet50", {}, 26e6, 0.05),                  # ICNet-R50, cascade as in its paper
    ("bisenet_resnet18", {"aux": False}, 12.9e6, 0.01),  # authors' TorchSeg code without aux heads
])
def test_parameter_counts_match_papers(name, options, expected, tol):
    assert abs(n_params(models.build(name, **options)) - expected) <= tol * expected


def test_swiftnet_bytes_match_gsvnet_table2():
    # GSVNet Table 2: SwiftNet-R18 "47.2M" = bytes of fp32 parameters
    assert round(count_parameters(models.build("swiftnet_resnet18"))[1] / 1e6, 1) == 47.2


def test_width_scales_channels_and_resnext_keeps_group_width():
    b = resnet(50, variant="resnext", width=16)
    assert b.channels == {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
    conv = b.layer1[0].conv2
    assert conv.groups == 8 and conv.in_channels // conv.groups == 4  # "32x4d": 4-channel groups
    assert n_params(resnet(18, width=32)) < n_params(resnet(18)) / 3


# --- dilation: output stride, multi-grid, HDC -------------------------------------------------
def test_layer_rates_by_hand():
    strided, rates = layer_rates((3, 4, 6, 3), 8)
    assert strided == {"layer1": False, "layer2": True, "layer3": False, "layer4": False}
    assert rates["layer3"] == [2] * 6 and rates["layer4"] == [4, 4, 4]
    _, rates = layer_rates((3, 4, 6, 3), 16, multi_grid=(1, 2, 4))
    assert rates["layer3"] == [1] * 6 and rates["layer4"] == [2, 4, 8]
    _, rates = layer_rates((3, 4, 6, 3), 32, multi_grid=(1, 2))
    assert rates["layer4"] == [1, 2, 1]


def test_hdc_variants_follow_the_paper():
    rf = hdc_block_rates("dilation_rf")
    assert rf["layer3"] == [1, 2, 3] * 7 + [2, 2] and rf["layer4"] == [3, 4, 5]
    big = hdc_block_rates("dilation_bigger")
    assert big["layer3"] == [1, 2, 5, 9] * 5 + [1, 2, 5] and big["layer4"] == [5, 9, 17]
    assert hdc_block_rates("dilation_conv")["layer3"][:4] == [2, 1, 2, 1]
    with pytest.raises(ValueError):
        hdc_block_rates("gridding")


def test_hdc_rates_are_applied_to_each_block_conv():
    model = models.build("deeplabv2_resnet101", width=8, hdc="dilation_bigger")
    want = hdc_block_rates("dilation_bigger")
    for name in ("layer3", "layer4"):
        for block, rate in zip(getattr(model.backbone, name), want[name]):
            assert block.conv2.dilation == (rate, rate) and block.conv2.padding == (rate, rate)
            assert block.conv2.stride == (1, 1)
    assert model.backbone.layer3[0].downsample[0].stride == (1, 1)
    x = torch.randn(1, 3, 64, 64)
    assert model.backbone.eval()(x)["layer4"].shape[-2:] == (8, 8)  # still output stride 8


def test_basicblock_dilation_sets_both_convs():
    b = resnet(18, width=8, output_stride=8, block_rates={"layer4": [3, 7]})
    assert [blk.conv1.dilation[0] for blk in b.layer4] == [3, 7]
    assert [blk.conv2.dilation[0] for blk in b.layer4] == [3, 7]
    assert b.block_dilations()["layer3"] == [2, 2]
    assert b.eval()(torch.randn(1, 3, 64, 64))["layer4"].shape[-2:] == (8, 8)


def test_wrn38_output_strides_and_dilations():
    for os_, mod5, last in ((8, [2, 2, 2], 4), (16, [1, 1, 1], 2), (32, [1, 1, 1], 1)):
        net = wrn38(width=8, output_stride=os_)
        rates = net.block_dilations()
        assert rates["mod5"] == mod5 and rates["mod6"] == rates["mod7"] == [last]
        assert net.strides["out"] == os_
        with torch.no_grad():
            assert net.eval()(torch.randn(1, 3, 64, 64))["out"].shape[-1] == 64 // os_


# --- heads ----------------------------------------------------------------------------------
def test_duc_pixel_shuffle_layout_by_hand():
    head = DUCHead(4, num_classes=2, output_stride=2, cell=1, rates=(1,))
    head.top = nn.Identity()  # feed the top layer's output directly
    feat = torch.arange(8.0).view(1, 8, 1, 1)  # channels l*4 + i*2 + j
    out = head({"layer4": feat})
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0].tolist() == [[0, 1], [2, 3]] and out[0, 1].tolist() == [[4, 5], [6, 7]]
    head1 = DUCHead(4, num_classes=1, output_stride=2, cell=1, rates=(1,))
    head1.top = nn.Identity()
    two_pixels = torch.tensor([[0.0, 4.0], [1.0, 5.0], [2.0, 6.0], [3.0, 7.0]]).view(1, 4, 1, 2)
    assert head1({"layer4": two_pixels})[0, 0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7]]


def test_duc_cell_sizes():
    assert duc_channels(19, 8, 1) == 64 * 19 and duc_channels(19, 8, 2) == 16 * 19
    for cell, stride in ((1, 1), (2, 2)):
        model = models.build("deeplabv2_resnet101", width=8, head="duc", cell=cell).eval()
        assert model.head.top.convs[0].out_channels == duc_channels(19, 8, cell)
        with torch.no_grad():
            feats = model.backbone(torch.randn(1, 3, 64, 64))
            assert model.head(feats).shape[-2:] == (64 // stride, 64 // stride)


def test_deconv_heads_upsample_exactly_and_match_duc_size():
    up = _deconv(1, 1, 8)
    y = up(torch.ones(1, 1, 4, 4))
    assert y.shape[-2:] == (32, 32)
    assert torch.allclose(y[0, 0, 8:24, 8:24], torch.ones(16, 16), atol=0.02)  # bilinear init
    c = deconv_channels_matching_duc(256, 19, 8, 2, 4, (2, 4))
    duc = models.build("deeplabv2_resnet101", width=8, head="duc", cell=2).head
    dec = models.build("deeplabv2_resnet101", width=8, head="deconv2x4").head
    assert dec.top.convs[0].out_channels == c
    assert abs(n_params(dec) - n_params(duc)) < 0.02 * n_params(duc)


def test_aspp_branch_counts():
    assert len(DilatedSum(8, 3, (6, 12, 18, 24, 30, 36)).convs) == 6
    aspp = ASPP(8, 4, rates=(6, 12, 18))
    assert len(aspp.branches) == 4 and aspp.pool is not None
    assert aspp.eval()(torch.randn(1, 8, 9, 9)).shape == (1, 4, 9, 9)


# --- pretrained checkpoints ------------------------------------------------------------------
def test_torchvision_checkpoint_loads_into_backbone(tmp_path):
    torch.manual_seed(1)
    tv = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    model = models.build("deeplabv3plus_resnet18", pretrained=str(path))
    assert torch.equal(model.backbone.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    assert torch.equal(model.backbone.bn1.running_var, tv.bn1.running_var)
    report = model.load_report
    assert report.missing == [] and set(report.unexpected) == {"fc.weight", "fc.bias"}


def test_full_model_checkpoint_round_trips(tmp_path):
    torch.manual_seed(2)
    a = models.build("swiftnet_resnet18", width=8)
    path = tmp_path / "swift.pt"
    torch.save({"state_dict": a.state_dict()}, path)
    b = models.build("swiftnet_resnet18", width=8, pretrained=path)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_bad_checkpoints_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        models.build("fastscnn", width=8, pretrained=tmp_path / "missing.pth")
    path = tmp_path / "wide.pth"
    torch.save(resnet(18, width=16).state_dict(), path)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(resnet(18, width=8), path)
    other = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="no parameter names in common"):
        load_pretrained(resnet(18, width=8), other)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in resnet(18, width=8).state_dict().items() if k.startswith("layer1")}, partial)
    with pytest.warns(UserWarning, match="missing"):
        report = load_pretrained(resnet(18, width=8), partial)
    assert report.missing and all(k.startswith("layer1") for k in report.loaded)


def test_heads_are_interchangeable_on_one_backbone():
    from paperlib.models.heads import DeepLabV3PlusHead, OCRHead, PSPHead
    from paperlib.models.segmentation import SegmentationModel
    x = torch.randn(1, 3, 64, 64)
    for os_ in (8, 16):
        backbone = resnet(18, width=8, output_stride=os_)
        c4 = backbone.channels["layer4"]
        heads = [DUCHead(c4, 4, output_stride=os_, cell=2, rates=(1,)), PSPHead(c4, 4, width=8),
                 OCRHead(c4, 4, in_key="layer4", mid_channels=16, key_channels=8),
                 DeepLabV3PlusHead(c4, backbone.channels["layer1"], 4, width=8)]
        for head in heads:
            model = SegmentationModel(backbone, head).eval()
            with torch.no_grad():
                assert model(x).shape == (1, 4, 64, 64)
