"""U-Net, SegNet, DeepLabv3+, Tiramisu: odd sizes, overfit, receptive fields vs gradients."""


import pytest
import torch
from gradient_fields import gradient_sides, monotone, overfit_one_batch
from torch import nn

from course_lib.datasets import ShapesDataset
from course_lib.models.deeplab import deeplabv3plus, separable_conv
from course_lib.models.segnet import segnet
from course_lib.models.tiramisu import tiramisu
from course_lib.models.unet import unet
from course_lib.receptive_field import layers_of, receptive_field_of

#: Small instances: one per family, quick on one CPU thread.
SMALL = {
    "unet": lambda **kw: unet(width=4, depth=2, **kw),
    "segnet": lambda **kw: segnet(width=4, depth=2, **kw),
    "deeplabv3plus": lambda **kw: deeplabv3plus(width=4, **kw),
    "tiramisu": lambda **kw: tiramisu(stem=4, growth=3, blocks=(1, 2), bottleneck=2, **kw),
}


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("size", [(33, 33), (37, 45), (64, 31)])
def test_output_is_the_input_size_for_odd_sides(name, size):
    torch.manual_seed(0)
    model = SMALL[name](num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, *size)).shape == (2, 5, *size)


@pytest.mark.parametrize("name", SMALL)
def test_overfits_one_batch(name):
    torch.manual_seed(0)
    ds = ShapesDataset("train", length=2, image_size=24, seed=0)
    x, y = torch.stack([ds[i][0] for i in range(2)]), torch.stack([ds[i][1] for i in range(2)])
    first, last, accuracy = overfit_one_batch(SMALL[name](), x, y, steps=60)
    assert accuracy >= 0.95 and last < first / 3, (accuracy, first, last)


def test_print_reads_as_the_architecture():
    parts = {
        "unet": ("(encoder): Sequential", "(level2): Sequential", "(pool): MaxPool2d",
                 "(decoder): Sequential", "(up1): UpBlock", "(up): ConvTranspose2d",
                 "(convs): Sequential", "(head): Sequential", "(score): Conv2d"),
        "segnet": ("(encoder): Sequential", "(block2): Sequential", "(conv2_1): Conv2d",
                   "(pool): MaxPool2d", "(decoder): Sequential", "(unpool): MaxUnpool2d",
                   "(conv2d_1): Conv2d", "(score): Conv2d"),
        "deeplabv3plus": ("(backbone): Sequential", "(layer3): Sequential", "(aspp): ASPP",
                          "(atrous3): Sequential", "(depthwise): Conv2d", "(pointwise): Conv2d",
                          "(image_pool): Sequential", "(pool): AdaptiveAvgPool2d",
                          "(project): Sequential", "(decoder): ModuleDict",
                          "(reduce): Sequential", "(refine): Sequential", "(score): Conv2d"),
        "tiramisu": ("(stem): Conv2d", "(down1): DenseBlock", "(layer1): Sequential",
                     "(td2): Sequential", "(bottleneck): DenseBlock", "(tu2): ConvTranspose2d",
                     "(up1): DenseBlock", "(score): Conv2d"),
    }
    for name, expected in parts.items():
        text = str(SMALL[name]())
        for part in expected:
            assert part in text, (name, part)


@pytest.mark.parametrize("name", ["unet", "segnet", "tiramisu"])
def test_receptive_field_matches_gradients(name):
    # traced field (skips: union of the branches; transposed convs: the inputs they read)
    # against the support of the input gradient of a net whose units all grow with the input
    model = SMALL[name]()
    rows = receptive_field_of(model, 96)
    assert (rows[-1].jump, rows[-1].output_size) == (1, 96)
    sides = gradient_sides(monotone(model), 96, range(40, 56))  # whole 2^depth periods
    assert max(sides) == rows[-1].size < 96


def test_segnet_real_indices_stay_inside_the_field():
    # unpooling with real indices puts each value at one place of its window: one image's
    # gradient support lies inside the field (the union over every index pattern)
    model = segnet(width=2, depth=2)
    field = receptive_field_of(model, 64)[-1].size
    assert max(gradient_sides(monotone(model), 64, range(28, 36))) == field
    real = model.eval().requires_grad_(False)
    assert 0 < max(gradient_sides(real, 64, range(28, 36), seeds=range(3))) <= field


def test_deeplab_image_pooling_sees_the_whole_image():
    model = deeplabv3plus(width=2)
    rows = receptive_field_of(model, 64)
    pool = next(r for r in rows if r.name == "aspp.image_pool.pool")
    assert pool.size == 64 and rows[-1].size >= 64  # global pooling: the whole input
    assert gradient_sides(monotone(model), 64, [0, 63]) == [64, 64]  # even at the corners
    # the atrous path alone (backbone, then ASPP's rate-3 separable branch): a finite
    # field, traced as the gradients see it
    bb = model.backbone
    chain = nn.Sequential(bb.stem, bb.layer1, bb.layer2, bb.layer3, model.aspp.branches.atrous3)
    rows = receptive_field_of(chain, 256)
    assert rows[-1].jump == 8
    sides = gradient_sides(monotone(chain), 256, range(14, 18))
    assert max(sides) == rows[-1].size < 256


def test_deeplab_atrous_stride_and_separable_weights():
    net8, net16 = deeplabv3plus(width=4, output_stride=8), deeplabv3plus(width=4,
                                                                         output_stride=16)
    rows8, rows16 = receptive_field_of(net8, 64), receptive_field_of(net16, 64)
    aspp_in = {r.name: r for r in rows8}["backbone.layer3.3"], {r.name: r for r in rows16}[
        "backbone.layer3.3"]
    assert (aspp_in[0].jump, aspp_in[0].output_size) == (8, 8)  # dilated, not strided
    assert (aspp_in[1].jump, aspp_in[1].output_size) == (16, 4)
    conv = separable_conv(8, 16, dilation=3)
    assert conv.depthwise.dilation == (3, 3) and conv.depthwise.groups == 8
    weights = sum(m.weight.numel() for m in conv.modules() if isinstance(m, nn.Conv2d))
    assert weights == 9 * 8 + 8 * 16 < 9 * 8 * 16  # the saving of a separable convolution
    dense = nn.Conv2d(8, 16, 3, padding=3, dilation=3, bias=False)
    assert conv(torch.rand(1, 8, 11, 11)).shape == dense(torch.rand(1, 8, 11, 11)).shape


# ---------------------------------------------------------------------- the U-Net's crops
def test_unpadded_unet_crops_are_the_papers():
    # Ronneberger et al. 2015, figure 1: 572 px in, 388 px out; skips of 64, 136, 280, 568 px
    # cropped to the upsampled 56, 104, 200, 392 px: offsets (skip - up) / 2 = 4, 16, 40, 88
    model = unet(width=1, depth=4, padded=False).eval()
    sizes, hooks = {}, []
    for name, block in model.decoder.named_children():
        hooks.append(block.register_forward_hook(
            lambda m, args, out, name=name: sizes.__setitem__(
                name, (args[1].shape[-1] - 2 * args[0].shape[-1]) // 2)))
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 572, 572))
    assert out.shape[-1] == 388 == 572 - 2 * model.margin
    assert sizes == model.crops == {"up3": 4, "up2": 16, "up1": 40, "up0": 88}
    with torch.no_grad():  # the smallest tile of depth 4
        assert model(torch.zeros(1, 3, 188, 188)).shape[-1] == 188 - 2 * model.margin == 4
    padded = unet(width=1, depth=4)
    assert padded.crops == {} and padded.margin == 0


def test_builders_reject_bad_arguments():
    with pytest.raises(TypeError, match="positional"):
        unet(4)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        unet(num_classes=1)
    with pytest.raises(TypeError, match=r"width must be an int, got 1.5 \(float\)"):
        unet(width=1.5)
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        unet(depth=0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        unet(in_channels=0)
    with pytest.raises(TypeError, match=r"padded must be a bool \(True or False\), got 1"):
        unet(padded=1)
    with pytest.raises(ValueError, match="convs must be an int >= 1, got 0"):
        segnet(convs=0)
    with pytest.raises(TypeError, match=r"depth must be an int, got True \(bool\)"):
        segnet(depth=True)
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16\), got 4"):
        deeplabv3plus(output_stride=4)
    with pytest.raises(TypeError, match=r"output_stride must be an int, got 8.0"):
        deeplabv3plus(output_stride=8.0)
    with pytest.raises(TypeError, match=r"atrous_rates must be a list or tuple.*\(int\)"):
        deeplabv3plus(atrous_rates=2)
    with pytest.raises(ValueError, match="atrous_rates must hold at least one rate"):
        deeplabv3plus(atrous_rates=())
    with pytest.raises(ValueError, match=r"atrous_rates\[1\] must be an int >= 1, got 0"):
        deeplabv3plus(atrous_rates=(1, 0))
    with pytest.raises(ValueError, match=r"atrous_rates must be distinct.*\[2, 2\]"):
        deeplabv3plus(atrous_rates=[2, 2])
    with pytest.raises(TypeError, match=r"blocks must be a list or tuple.*\(str\)"):
        tiramisu(blocks="123")
    with pytest.raises(ValueError, match="blocks must hold at least one level"):
        tiramisu(blocks=[])
    with pytest.raises(ValueError, match=r"blocks\[0\] must be an int >= 1, got 0"):
        tiramisu(blocks=(0, 1))
    with pytest.raises(ValueError, match="growth must be an int >= 1, got 0"):
        tiramisu(growth=0)
    with pytest.raises(ValueError, match="bottleneck must be an int >= 1, got 0"):
        tiramisu(bottleneck=0)
    with pytest.raises(TypeError, match=r"module must be an nn.Module, got list"):
        layers_of([])


def test_layers_of_reads_convolutions_and_pools_in_order():
    model = unet(width=1, depth=1, padded=False)
    chain = layers_of(model)
    assert [layer.name for layer in chain] == [
        "encoder.level0.conv1", "encoder.level0.conv2", "encoder.level1.pool",
        "encoder.level1.conv1", "encoder.level1.conv2", "decoder.up0.up",
        "decoder.up0.convs.conv1", "decoder.up0.convs.conv2", "head.score"]
    assert [(layer.kernel_size, layer.stride, layer.transposed) for layer in chain[2::3]] == [
        (2, 2, False), (2, 2, True), (1, 1, False)]
