"""``receptive_field_of`` on real graphs, checked against an independent measurement.

The reference is the support of an input gradient of the SAME network made monotone
(:func:`monotone`): every conv weight is the constant ``1 / fan_in`` (> 0), biases are 0,
BatchNorm runs in eval mode with its default statistics (a positive scaling), and inputs lie
in [0.5, 1.5]. Every activation is then positive, every ReLU passes its gradient, and the
gradient of an output unit is a sum of positive products along paths: it is non-zero exactly
on the pixels the unit depends on, nothing cancels. Max pooling routes its gradient to one
argmax only, so the copy pools by average over the same window (the same pixels); max
unpooling becomes a depthwise transposed convolution over the same window (the union over
every possible index pattern). A gradient support is clipped by the image, so inputs are
larger than the fields and the measured units are central; single layers without padding
are compared over all their output units (the traced ``size`` is the largest over them).
"""

import copy
import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import fx, nn

from course_lib.receptive_field import (
    RFFraction,
    build_module,
    dilated_stack,
    format_table,
    node_rules,
    parse_layers,
    receptive_field,
    receptive_field_of,
    support_box,
)


class _AvgWithNoIndices(nn.Module):
    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        self.pool, self.indices = nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding,
                                               pool.ceil_mode), pool.return_indices

    def forward(self, x):
        return (self.pool(x), None) if self.indices else self.pool(x)


class _UnpoolAsConv(nn.Module):
    """MaxUnpool2d -> depthwise ConvTranspose2d over the same window, weights 1."""

    def __init__(self, unpool: nn.MaxUnpool2d, channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, unpool.kernel_size, unpool.stride,
                                       unpool.padding, groups=channels, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward(self, x, indices=None, output_size=None):
        return self.conv(x, output_size=output_size)


def monotone(net: nn.Module, channels: int = 8) -> nn.Module:
    """A copy whose input gradients are positive exactly on the receptive field."""
    net = copy.deepcopy(net).eval()
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.constant_(module.weight, 1.0 / module.weight[0].numel())
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(module, name, _AvgWithNoIndices(child))
            elif isinstance(child, nn.MaxUnpool2d):
                setattr(module, name, _UnpoolAsConv(child, channels))
    if hasattr(net, "reference"):
        net.reference = True  # the test nets' functional max pools become average pools
    return net.requires_grad_(False)


def gradient_sides(net: nn.Module, size: int, rows=None, channels: int = 3) -> list[int]:
    """Height of the gradient support of ``out[0, :, o, W // 2].sum()`` for each row o
    (of the whole output for a vector)."""
    x = (torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0))
         + 0.5).requires_grad_(True)
    out = net(x)
    rows = range(out.shape[-2]) if rows is None else rows
    sides = []
    for o in rows:
        unit = out[0, :, o, out.shape[-1] // 2] if out.dim() == 4 else out[0]
        (grad,) = torch.autograd.grad(unit.sum(), x, retain_graph=True)
        support = grad[0].abs().sum(0)
        y0, _, y1, _ = support_box(support) if support.any() else (0, 0, 0, 0)
        sides.append(y1 - y0)  # 0: a unit no input reaches (transposed conv, k < s)
    return sides


def centre_rows(n: int, k: int = 2) -> range:
    return range(n // 2 - k, n // 2 + k + 1)


@pytest.fixture(scope="module")
def vgg16():
    torch.manual_seed(0)
    return torchvision.models.vgg16(weights=None)


def test_vgg16_pool5_is_212_as_measured(vgg16):
    rows = {r.name: r for r in receptive_field_of(vgg16, 224)}
    pool5 = rows["features.30"]
    assert (pool5.size, pool5.jump, pool5.start, pool5.output_size) == (212, 32, 16.0, 7)
    assert gradient_sides(monotone(vgg16.features), 224, [3]) == [212]  # inside 224


def test_resnet18_branches_are_not_in_series():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    rows = receptive_field_of(net, 448)  # 14 x 14 at layer4: the centre field fits
    layer4 = [r for r in rows if r.name.startswith("layer4")][-1]
    assert (layer4.name, layer4.size, layer4.jump, layer4.output_size) == (
        "layer4.1.conv2", 435, 32, 14)
    assert rows[-1].name == "avgpool" and rows[-1].size == 448  # global pool: all of it
    down = next(r for r in rows if r.name == "layer4.0.downsample.0")
    assert (down.size, down.jump) == (211, 32)  # the 1x1 branch adds nothing
    body = nn.Sequential(*list(net.children())[:-2])
    assert receptive_field_of(body, 448)[-1].size == 435
    assert gradient_sides(monotone(body), 448, [7]) == [435]
    assert gradient_sides(monotone(net), 64) == [64]  # a logit sees the whole image


def test_dilated_stack_is_65():
    net = build_module(dilated_stack())  # all-ones weights: already monotone
    rows = receptive_field_of(net, 96)
    assert [r.size for r in rows] == [r.size for r in receptive_field(dilated_stack())]
    assert rows[-1].size == 65 and gradient_sides(net, 96, [48], channels=1) == [65]


def conv(c_in, c_out, k=3, **kw):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=kw.pop("padding", k // 2), **kw),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Two levels, skips concatenated after bilinear upsampling."""

    def __init__(self, w=4, align_corners=False):
        super().__init__()
        self.enc1, self.enc2 = nn.Sequential(conv(3, w), conv(w, w)), nn.Sequential(
            conv(w, 2 * w), conv(2 * w, 2 * w))
        self.mid = nn.Sequential(conv(2 * w, 4 * w), conv(4 * w, 4 * w))
        self.dec2, self.dec1 = nn.Sequential(conv(6 * w, 2 * w), conv(2 * w, 2 * w)), \
            nn.Sequential(conv(3 * w, w), conv(w, w))
        self.pool, self.out, self.align = nn.MaxPool2d(2), nn.Conv2d(w, 2, 1), align_corners

    def up(self, x, like):
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear",
                             align_corners=self.align)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up(m, e2), e2], 1))
        return self.out(self.dec1(torch.cat([self.up(d2, e1), e1], 1)))


def test_unet_with_bilinear_skips():
    torch.manual_seed(0)
    rows = receptive_field_of(UNet(), 96)
    # 5, pool 6 (j 2), 14, pool 16 (j 4), 32, up: 2 inputs, 36 (j 2), 44. The second 2x
    # upsampling does not just add one jump (46): an output between two decoder units that
    # see 4 and 4 bottleneck units shifted by one sees 5 of them, 32 + 4 * 4 = 48, then 52.
    assert [r.size for r in rows if r.name.startswith(("interpolate", "out"))] == [36, 48, 52]
    assert (rows[-1].name, rows[-1].jump, rows[-1].start, rows[-1].output_size) == (
        "out", 1, 0.5, 96)
    sides = gradient_sides(monotone(UNet()), 96, centre_rows(96))
    assert max(sides) == 52 and min(sides) == 48  # the field depends on the unit


def test_unet_align_corners_merges_different_jumps():
    rows = receptive_field_of(UNet(align_corners=True), 64)
    up = [r for r in rows if r.name.startswith("interpolate")]
    # jump_in (n - 1) / (m - 1): 4 * 15 / 31, then the skip's grid (jump 2) wins the concat
    assert [r.jump for r in up] == [Fraction(60, 31), Fraction(62, 63)]
    assert (rows[-1].size, rows[-1].jump, rows[-1].start) == (52, 1, 0.5)  # the image grid
    sides = gradient_sides(monotone(UNet(align_corners=True)), 64)  # 26 px at the borders,
    assert max(sides) == 52 and min(sides) == 26  # the largest in the middle (not clipped)


class PoolUp(nn.Module):
    """F.max_pool2d with ceil_mode, a 'same' conv, nn.Upsample, torch.max_pool2d."""

    def __init__(self):
        super().__init__()
        self.reference = False
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 4, padding="same")
        self.up, self.c = nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4, 4, 3)

    def forward(self, x):
        pool = F.avg_pool2d if self.reference else F.max_pool2d
        x = pool(self.a(x), 3, 2, 1, ceil_mode=True)
        x = self.up(self.b(x).relu())
        return (F.avg_pool2d if self.reference else torch.max_pool2d)(self.c(x), 2)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_functional_max_pool_and_upsample():
    rows = receptive_field_of(PoolUp(), 65)
    assert [r.name for r in rows] == ["a", "max_pool2d", "b", "up", "c", "max_pool2d_1"]
    assert [r.output_size for r in rows] == [65, 33, 33, 66, 64, 32]  # ceil_mode: 33
    assert [r.jump for r in rows] == [1, 2, 2, 1, 1, 2]
    # 3, pool 5 (j 2), 11, nearest 2x 11 (j 1), then 3x3 and 2x2 windows read only 2 of the
    # upsampled pairs each: 13, not the 14 of the chain recurrence
    assert [r.size for r in rows] == [3, 5, 11, 11, 13, 13]
    assert set(gradient_sides(monotone(PoolUp()), 65, centre_rows(32))) == {13}


def test_global_average_pool_sees_the_whole_input():
    net = nn.Sequential(conv(3, 4), nn.Conv2d(4, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 2))
    rows = receptive_field_of(net, 40)
    assert [(r.name, r.size, r.output_size) for r in rows] == [
        ("0.0", 3, 40), ("1", 5, 19), ("2", 40, 1)]
    assert gradient_sides(monotone(net), 40) == [40]
    squeeze = nn.Sequential(conv(3, 4), nn.AdaptiveAvgPool2d(2))  # k > 1: its windows
    assert [r.size for r in receptive_field_of(squeeze, 40)] == [3, 22]


class SegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = conv(3, 8), conv(8, 8)
        self.p1, self.p2 = nn.MaxPool2d(2, return_indices=True), nn.MaxPool2d(
            3, 2, 1, return_indices=True)
        self.u2, self.u1 = nn.MaxUnpool2d(3, 2, 1), nn.MaxUnpool2d(2)
        self.c, self.d = conv(8, 8), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        a = self.a(x)
        b, i1 = self.p1(a)
        c, i2 = self.p2(self.b(b))
        y = self.c(self.u2(c, i2, output_size=b.shape[-2:]))
        return self.d(self.u1(y, i1))


def test_max_unpool_counts_its_whole_window():
    rows = receptive_field_of(SegNet(), 64)
    # p2: 12 px, jump 4; u2 (3x3 windows, stride 2) gives its outputs 1 or 2 inputs: 16;
    # c then alternates 20 and 16 px, and the 2x2 unpooling pairs one of each: 20
    assert [(r.name, r.size, r.jump) for r in rows if r.name[0] in "pu"] == [
        ("p1", 4, 2), ("p2", 12, 4), ("u2", 16, 2), ("u1", 20, 1)]
    sides = gradient_sides(monotone(SegNet()), 64, centre_rows(64))
    assert max(sides) == rows[-1].size == 20
    real = SegNet().eval()  # real indices choose one input per output: inside the field
    assert max(gradient_sides(real, 64, centre_rows(64))) <= rows[-1].size

    class Functional(nn.Module):  # F.max_unpool2d: the stride defaults to the kernel
        def forward(self, x):
            y, i = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            return F.max_unpool2d(y, i, 3, padding=1)

    assert [(r.size, r.jump) for r in receptive_field_of(Functional(), 16, in_channels=1)] == [
        (3, 2), (3, Fraction(2, 3))]  # stride 3 = kernel: one window, one input per output


@pytest.mark.parametrize("k, s, p, d", [(4, 2, 1, 1), (3, 2, 1, 1), (2, 2, 0, 1), (2, 3, 0, 1),
                                        (7, 3, 2, 1), (5, 2, 0, 2), (16, 8, 4, 1)])
def test_transposed_conv_reads_ceil_k_over_s_inputs(k, s, p, d):
    net = nn.ConvTranspose2d(1, 1, k, s, p, dilation=d)
    rows = receptive_field_of(net, 9)
    expected = math.ceil(k * math.gcd(d, s) / s)  # taps t = (o + p) / d mod s/gcd(d, s)
    assert rows[-1].size == max(gradient_sides(monotone(net), 9, channels=1)) == expected
    assert rows[-1].jump == Fraction(1, s) and isinstance(rows[-1].jump, RFFraction)
    after_conv = receptive_field_of(nn.Sequential(nn.Conv2d(1, 1, 3), net), 11)[-1]
    assert after_conv.size == 3 + expected - 1  # adjacent inputs: (taps - 1) jump_in more


@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"), dict(scale_factor=3, mode="nearest-exact"),
    dict(scale_factor=2, mode="bilinear"), dict(scale_factor=2.5, mode="bicubic"),
    dict(size=13, mode="bilinear", align_corners=True), dict(size=3, mode="area"),
    dict(scale_factor=0.5, mode="bilinear", antialias=True),
    dict(size=4, mode="bicubic", antialias=True), dict(scale_factor=1 / 3, mode="bilinear")])
def test_interpolation_reads_what_pytorch_reads(kw):
    class Resize(nn.Module):
        def forward(self, x):
            return F.interpolate(x, **kw)

    traced = receptive_field_of(Resize(), 9, in_channels=1)[-1]
    assert traced.size == max(gradient_sides(Resize(), 9, channels=1))  # no padding: exact
    assert traced.output_size == F.interpolate(torch.zeros(1, 1, 9, 9), **kw).shape[-2]


def test_pixel_shuffle_and_crops():
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.PixelShuffle(2), nn.Conv2d(4, 4, 3),
                        nn.PixelUnshuffle(2), nn.ZeroPad2d(2))
    rows = receptive_field_of(net, 20)
    assert [(r.size, r.jump) for r in rows] == [(3, 1), (3, Fraction(1, 2)), (4, Fraction(1, 2)),
                                                (4, 1), (4, 1)]  # unshuffle pairs 2 of 3
    assert max(gradient_sides(monotone(net), 20, centre_rows(13))) == 4

    class Crop(nn.Module):
        def forward(self, x):
            return F.conv2d(x, torch.ones(1, 1, 3, 3))[..., 2:-2:2, 2:-2:2]

    crop = receptive_field_of(Crop(), 16, in_channels=1)[-1]
    assert (crop.name, crop.size, crop.jump, crop.start, crop.output_size) == (
        "getitem", 3, 2, 3.5, 5)  # output 0 is conv output 2, centred at 1.5 + 2


def test_context_nets_with_upsampled_logits():
    from course_lib.models.context import FIELD, OUTPUT_STRIDE, single_scale_net

    ref = single_scale_net().eval()

    class Logits(nn.Module):  # SingleScaleNet without its input check, which fx cannot trace
        def __init__(self):
            super().__init__()
            self.features, self.classifier = ref.features, ref.classifier

        def forward(self, x):
            return F.interpolate(self.classifier(self.features(x)), size=x.shape[-2:],
                                 mode="bilinear", align_corners=False)

    rows = receptive_field_of(Logits(), 64)
    assert (rows[-2].size, rows[-2].jump) == (FIELD, OUTPUT_STRIDE)
    last = rows[-1]  # each pixel interpolates 2 features: one jump more, back on the pixels
    assert (last.size, last.jump, last.start, last.output_size) == (FIELD + 4, 1, 0.5, 64)
    assert max(gradient_sides(monotone(Logits()), 64, centre_rows(64, 4))) == FIELD + 4
    with pytest.warns(UserWarning, match=r"cannot trace SingleScaleNet \(\w+Error: .*centre"):
        fallback = receptive_field_of(ref, 64)
    assert [(r.name, r.size, r.output_size) for r in fallback] == [("output", 20, 64)]
    half = receptive_field_of(nn.Sequential(ref.features, nn.Upsample(scale_factor=3)), 64)
    assert half[-1].jump == Fraction(4, 3) and "4/3" in format_table(half)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 5, padding=2)

    def forward(self, x):
        if x.mean() > 0:  # data-dependent: torch.fx cannot trace it
            return self.a(x)
        return self.b(self.a(x))


def test_data_dependent_if_falls_back_to_gradients():
    with pytest.warns(UserWarning, match="cannot trace Branchy .TraceError: symbolically"):
        rows = receptive_field_of(Branchy(), 32)
    assert [(r.name, r.size, r.jump, r.output_size) for r in rows] == [("output", 7, 1, 32)]
    with torch.device("meta"):
        meta = Branchy()
    with pytest.raises(ValueError, match="a module on the meta device has no gradients"):
        receptive_field_of(meta, 32)


def test_chains_keep_the_recurrence_numbers():
    layers = parse_layers("conv3, conv5 s2 p1, pool3 s2 p1, conv3 d2 p2, pool2, conv7 p3")
    rows = receptive_field_of(build_module(layers), 37)
    assert [(r.size, r.jump, r.start, r.output_size) for r in rows] == [
        (r.size, r.jump, r.start, r.output_size) for r in receptive_field(layers, 37)]
    assert all(type(r.jump) is int and type(r.start) is float for r in rows)
    with torch.device("meta"):  # shapes only
        assert receptive_field_of(build_module(layers), 37)[-1].size == rows[-1].size


def test_node_rules_kinds():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    rules, out = node_rules(fx.symbolic_trace(net), torch.zeros(1, 1, 8, 8))
    assert [(r.label, r.kind, r.flat, r.height) for r in rules.values()] == [
        ("input_1", "input", False, 8), ("0", "geometry", False, 6), ("1", "merge", False, 6),
        ("2", "whole", True, 1), ("3", "merge", True, 1)]
    assert out.name == "_3"


class Lambda(nn.Module):
    """``conv3 -> fn(x)``: one op to check on a 4-channel 8 x 8 map."""

    def __init__(self, fn):
        super().__init__()
        self.conv, self.fn = nn.Conv2d(1, 4, 3, padding=1), fn

    def forward(self, x):
        return self.fn(self.conv(x))


@pytest.mark.parametrize("fn, match", [
    (torch.sign, r"node 'sign' \(call_function 'sign'\) has no receptive-field rule; if it "
                 r"does not move pixels pass it in pointwise=\.\.\., else give its geometry"),
    (lambda x: x.roll(1, 2), r"node 'roll' \(call_method 'roll'\) has no receptive-field rule"),
    (nn.ChannelShuffle(2), r"node 'fn' \(module 'fn'\) has no receptive-field rule"),
    (nn.Conv2d(4, 4, (3, 5)), r"node 'fn' has kernel_size=\(3, 5\), not square: only square"),
    (nn.Upsample(scale_factor=(2, 3)), r"has scale_factor=\(2.0, 3.0\), not square"),
    (lambda x: F.pad(x, (1, 1, 0, 0)), r"node 'pad' pads by \[1, 1, 0, 0\], not square"),
    (nn.ZeroPad2d((1, 1, 2, 2)), r"pads by \[1, 1, 2, 2\], not square \(left = top"),
    (lambda x: x.view(1, 4, 16, 4), r"\(view\) reshapes \(1, 4, 8, 8\) to \(1, 4, 16, 4\), "
                                    "moving pixels"),
    (lambda x: x.permute(0, 2, 3, 1), r"\(permute\) reshapes .* moving pixels"),
    (lambda x: x.transpose(2, 3), r"\(transpose\) reshapes .* moving pixels"),
    (lambda x: F.softmax(x, dim=-1), r"\(softmax\) works along the spatial dim -1"),
    (lambda x: torch.cat([x, x], 2), r"node 'cat' \(cat\) works along the spatial dim 2"),
    (lambda x: x[:, :, 0], r"indexes with \[.*\], dropping or adding a spatial axis"),
    (lambda x: x[:, :, 1:], r"node 'getitem' crops \[slice\(1, None, None\), .*not square"),
])
def test_ops_without_a_rule_are_refused(fn, match):
    with pytest.raises(ValueError, match=match):
        receptive_field_of(Lambda(fn), 8)


def test_pointwise_declares_ops_that_keep_pixels():
    for fn, declared in [(torch.sign, torch.sign), (lambda x: x.sign(), "sign"),
                         (nn.ChannelShuffle(2), nn.ChannelShuffle)]:
        assert receptive_field_of(Lambda(fn), 8, pointwise=[declared])[-1].size == 3
    spatial = [lambda x: x.mean((2, 3)), lambda x: x.flatten(1), lambda x: x.amax(-1)]
    assert [receptive_field_of(Lambda(fn), 8)[-1].size for fn in spatial] == [8, 8, 8]
    kept = [lambda x: x.mean(1), lambda x: F.softmax(x, 1), lambda x: x.reshape(1, 2, 2, 8, 8),
            lambda x: torch.max(x, x.relu()), lambda x: x * torch.ones_like(x)]
    assert [receptive_field_of(Lambda(fn), 8)[-1].size for fn in kept] == [3] * 5


def test_arguments_are_checked():
    net = nn.Sequential(nn.Conv2d(1, 1, 3)).train()
    assert receptive_field_of(net, 5)[-1].output_size == 3 and net.training  # mode restored
    with pytest.raises(TypeError, match="module must be an nn.Module, got str"):
        receptive_field_of("vgg16", 8)
    with pytest.raises(TypeError, match="in_channels must be an int, got 2.0"):
        receptive_field_of(net, 8, in_channels=2.0)

    class TwoInputs(nn.Module):
        def forward(self, x, mask):
            return x * mask

    with pytest.raises(ValueError, match=r"TwoInputs.forward needs more than one input \(also "
                                         r"\['mask'\]\); wrap it"):
        receptive_field_of(TwoInputs(), 8, in_channels=1)
