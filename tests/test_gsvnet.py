"""GSVNet's propagation framework PF: warping (Eq. 1), ideal-delay kernels, guided SV conv (Eq. 2),
the flow net's scales and the size of the non-keyframe part."""
import pytest
import torch
from torch import nn

from paperlib.video import gsvnet as G


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: out(y, x) = x(y + dy, x + dx), zero outside (by explicit slicing)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def const_flow(n, h, w, dx, dy):
    f = torch.zeros(n, 2, h, w)
    f[:, 0], f[:, 1] = dx, dy
    return f


# --- Eq. 1 -----------------------------------------------------------------------------------------
def test_warp_zero_flow_is_identity():
    x = torch.randn(2, 5, 7, 9)
    assert torch.allclose(G.backward_warp(x, torch.zeros(2, 2, 7, 9)), x, atol=1e-5)


def test_warp_integer_flow_moves_the_map():
    x = torch.randn(1, 3, 8, 10)
    out = G.backward_warp(x, const_flow(1, 8, 10, dx=2, dy=-1))
    # out(y, x) = in(y - 1, x + 2) wherever the source lies inside the map
    assert torch.allclose(out[..., 1:, :8], x[..., :-1, 2:], atol=1e-5)


def test_warp_half_pixel_flow_interpolates_bilinearly():
    x = torch.arange(6.0).view(1, 1, 1, 6).repeat(1, 1, 3, 1)
    out = G.backward_warp(x, const_flow(1, 3, 6, dx=0.5, dy=0))
    assert torch.allclose(out[..., :5], x[..., :5] + 0.5, atol=1e-5)


def test_warp_rejects_mismatched_flow():
    with pytest.raises(ValueError, match="flow"):
        G.backward_warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))


def test_resize_flow_rescales_vectors():
    f = G.resize_flow(const_flow(1, 64, 128, dx=8, dy=-16), (8, 16))
    assert f.shape == (1, 2, 8, 16)
    assert torch.allclose(f[:, 0], torch.ones(1, 8, 16)) and torch.allclose(f[:, 1], -2 * torch.ones(1, 8, 16))


# --- ideal-delay kernels ------------------------------------------------------------------------------
def test_ideal_delay_offsets_counts():
    o3, o5 = G.ideal_delay_offsets(3), G.ideal_delay_offsets(5)
    assert len(o3) == 9 and len(o5) == 17 and o3[0] == (0, 0) == o5[0]
    assert len(set(o5)) == 17 and set(o3) < set(o5)
    assert max(max(abs(a), abs(b)) for a, b in o5) == 2
    with pytest.raises(ValueError, match="kernel_size"):
        G.ideal_delay_offsets(4)


@pytest.mark.parametrize("k", [3, 5])
def test_each_ideal_delay_kernel_is_a_pure_shift(k):
    x = torch.randn(2, 4, 9, 11)
    delay = G.IdealDelayKernels(k)
    out = delay(x)
    assert out.shape == (2, 4, delay.num_filters, 9, 11)
    for d, (dy, dx) in enumerate(delay.offsets):
        assert torch.allclose(out[:, :, d], shift(x, dy, dx), atol=1e-6), (dy, dx)


def test_one_pixel_kernels_shift_by_one_in_their_direction():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0  # an impulse at the centre
    out = G.IdealDelayKernels(3)(x)[0, 0]
    for d, (dy, dx) in enumerate(G.ideal_delay_offsets(3)):
        ys, xs = torch.nonzero(out[d], as_tuple=True)
        assert (ys.tolist(), xs.tolist()) == ([2 - dy], [2 - dx])


def test_learned_kernels_are_parameters_initialised_to_ideal_delays():
    fixed, learned = G.IdealDelayKernels(3), G.IdealDelayKernels(3, learned=True)
    assert isinstance(learned.weight, nn.Parameter) and learned.weight.requires_grad
    assert not any(p is fixed.weight for p in fixed.parameters())
    assert torch.equal(fixed.weight, learned.weight.detach())


# --- guidance, Eq. 2 ----------------------------------------------------------------------------------
def test_normalized_guidance_is_nonnegative_with_unit_sum():
    raw = torch.randn(3, 10, 6, 7, generator=torch.Generator().manual_seed(0))
    raw[0, :, 0, 0] = -1.0  # a pixel whose raw weights are all negative gets the zero kernel
    g = G.normalize_guidance(raw)
    assert (g >= 0).all()
    some = (raw > 0).any(1)
    assert torch.allclose(g.sum(1)[some], torch.ones(int(some.sum())), atol=1e-5)
    assert (g.sum(1)[~some] == 0).all() and not some[0, 0, 0]


class OneHotGuide(nn.Module):
    """A stand-in guiding network whose normalised kernel selects entry ``k`` everywhere."""

    def __init__(self, k, n):
        super().__init__()
        self.k, self.n = k, n

    def forward(self, x):
        raw = -torch.ones(x.shape[0], self.n, *x.shape[-2:])
        raw[:, self.k] = 3.0
        return raw


@pytest.mark.parametrize("k", [3, 5])
def test_guided_sv_conv_with_one_hot_guidance_is_a_shift(k):
    fusion = G.GuidedSVConv(num_classes=4, kernel_size=k)
    warped, intra = torch.randn(2, 4, 8, 9), torch.randn(2, 4, 8, 9)
    for i, (dy, dx) in enumerate(fusion.delay.offsets):
        fusion.guide = OneHotGuide(i, fusion.num_weights)
        assert torch.allclose(fusion(warped, intra)["out"], shift(warped, dy, dx), atol=1e-5)
    fusion.guide = OneHotGuide(fusion.num_weights - 1, fusion.num_weights)  # the last weight: intra
    assert torch.allclose(fusion(warped, intra)["out"], intra, atol=1e-5)


def test_guided_filter_is_a_per_class_inner_product():
    chunks = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 3, 1, 1).repeat(1, 2, 1, 1, 1)
    chunks[:, 1] *= 10
    out = G.guided_filter(chunks, torch.tensor([0.5, 0.25, 0.25]).view(1, 3, 1, 1))
    assert torch.allclose(out.flatten(), torch.tensor([2.0, 20.0]))


def test_edge_map_paper_and_binary():
    seg = torch.zeros(1, 3, 6, 6)
    seg[:, 0, :, :3] = 1.0
    seg[:, 2, :, 3:] = 1.0  # class 0 on the left, class 2 on the right: boundary at columns 2|3
    binary = G.edge_map(seg, "binary")[0, 0]
    assert binary[:, 2:4].eq(1).all() and binary[:, :2].eq(0).all() and binary[:, 4:].eq(0).all()
    sig = G.edge_map(seg)[0, 0]
    # Laplacian of the class ids: +6 left of the boundary (3 neighbours of id 2), -6 right of it
    assert torch.allclose(sig[:, 2], torch.sigmoid(torch.tensor(6.0)).expand(6))
    assert torch.allclose(sig[:, 3], torch.sigmoid(torch.tensor(-6.0)).expand(6))
    assert torch.allclose(sig[:, 0], torch.full((6,), 0.5))
    with pytest.raises(ValueError, match="edge mode"):
        G.edge_map(seg, "canny")


# --- flow net and PF ----------------------------------------------------------------------------------
def test_flow_net_works_at_1_32_and_outputs_the_1_8_grid():
    net = G.LightFlowNet()
    seen = {}
    net.to_flow.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    small = torch.randn(2, 3, 16, 32)  # the 1/8 frames of a 128x256 input
    flow = net(small, small)
    assert flow.shape == (2, 2, 16, 32)
    assert seen["shape"][-2:] == (4, 8)  # 1/32 of the input


def test_gsvnet_step_shapes_and_exact_flow_path():
    pf = G.GSVNet(num_classes=5, flow_width=8, guide_width=8, intra_width=8).eval()
    frames = torch.randn(2, 3, 64, 128)
    seg = torch.randn(2, 5, 8, 16)
    out = pf(seg, frames, frames)
    assert out["out"].shape == (2, 5, 8, 16) and out["flow"].shape == (2, 2, 8, 16)
    assert out["guidance"].shape == (2, 10, 8, 16) and out["intra"].shape == (2, 5, 8, 16)
    # an external full-resolution flow of 8 px is one pixel on the 1/8 grid
    out = pf(seg, frames, frames, flow=const_flow(2, 64, 128, dx=8, dy=0))
    assert torch.allclose(out["flow"][:, 0], torch.ones(2, 8, 16))
    assert torch.allclose(out["warped"][..., :15], seg[..., 1:], atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        pf(torch.randn(2, 5, 4, 4), frames, frames)


def test_gsvnet_without_intra_features():
    pf = G.GSVNet(num_classes=5, flow_width=8, guide_width=8, use_intra=False).eval()
    out = pf(torch.randn(1, 5, 4, 8), torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64))
    assert out["intra"] is None and out["guidance"].shape == (1, 9, 4, 8)


def test_nonkey_part_size_matches_the_paper():
    """Table 2: 1.6 MB of non-keyframe parameters; Sec. 4.2: 2.8 G per non-keyframe (multiply-adds)."""
    c = G.nonkey_complexity(G.GSVNet(num_classes=19), (1024, 2048))
    assert 0.38e6 < c["params"] < 0.42e6 and c["bytes"] == 4 * c["params"]
    assert abs(c["bytes"] / 1.6e6 - 1) < 0.05
    assert 0.17e6 < c["params_by_part"]["flownet"] < 0.21e6 and 0.17e6 < c["params_by_part"]["guide"] < 0.21e6
    assert c["params_by_part"]["intra"] < 0.03e6
    assert abs(c["macs"] / 2.8e9 - 1) < 0.1
