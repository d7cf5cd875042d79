"""FCN-32s / 16s / 8s: shapes, derived crops, bilinear upsampling, receptive fields, overfit."""

import copy

import pytest
import torch
import torch.nn.functional as F
from gradient_fields import gradient_sides, monotone, overfit_one_batch
from torch import nn

from course_lib.datasets import ShapesDataset
from course_lib.models.fcn import Crop, fcn8s, fcn16s, fcn32s, vgg16_fcn
from course_lib.receptive_field import receptive_field_of

BUILDERS = {"32s": fcn32s, "16s": fcn16s, "8s": fcn8s}


def _score_sizes(model, x):
    """The output, and the heights of the score maps ``FCN.score_sizes`` reports."""
    return model(x), {k: v[0] for k, v in model.score_sizes(x).items()}


@pytest.mark.parametrize("variant", BUILDERS)
@pytest.mark.parametrize("size", [(97, 97), (131, 131), (97, 131), (32, 45)])
def test_output_is_the_input_size(variant, size):
    torch.manual_seed(0)
    model = BUILDERS[variant](num_classes=5, width=2, in_channels=1).eval()
    assert model(torch.rand(2, 1, *size)).shape == (2, 5, *size)


def test_course_score_maps_and_crops_at_256():
    x = torch.rand(1, 3, 256, 256)
    expected = {"32s": {"score_fr": 8}, "16s": {"score_fr": 8, "score_pool4": 16},
                "8s": {"score_fr": 8, "score_pool4": 16, "score_pool3": 32}}
    crops = {"32s": {"score": 0}, "16s": {"score_pool4c": 0, "score": 0},
             "8s": {"score_pool4c": 0, "score_pool3c": 0, "score": 0}}
    for variant, build in BUILDERS.items():
        model = build(width=2).eval()
        out, sizes = _score_sizes(model, x)
        assert out.shape == (1, 4, 256, 256) and sizes == expected[variant]
        assert model.crops == crops[variant]


@pytest.fixture(scope="module")
def vgg16_fcns():
    with torch.device("meta"):  # shapes only: no 134 M weights to initialise
        return {v: vgg16_fcn(variant=v) for v in ("32s", "16s", "8s")}


def test_vgg16_crops_are_caffes(vgg16_fcns):
    assert vgg16_fcns["32s"].crops == {"score": 19}
    assert vgg16_fcns["16s"].crops == {"score_pool4c": 5, "score": 27}
    assert vgg16_fcns["8s"].crops == {"score_pool4c": 5, "score_pool3c": 9, "score": 31}


def test_vgg16_map_sizes_round_up_as_caffe(vgg16_fcns):
    x = torch.zeros(1, 3, 256, 256, device="meta")
    out, sizes = _score_sizes(vgg16_fcns["8s"], x)
    assert out.shape == (1, 21, 256, 256)
    assert sizes == {"score_fr": 9, "score_pool4": 29, "score_pool3": 57}  # Caffe's ceil
    floor = copy.deepcopy(vgg16_fcns["8s"])
    for m in floor.modules():
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = False
    assert _score_sizes(floor, x)[1] == {"score_fr": 8, "score_pool4": 28,
                                         "score_pool3": 56}  # torch's floor


@pytest.mark.parametrize("size", [(1, 1), (97, 97), (131, 97)])
def test_vgg16_output_is_the_input_size(vgg16_fcns, size):
    for model in vgg16_fcns.values():
        assert model(torch.zeros(1, 3, *size, device="meta")).shape == (1, 21, *size)


def test_vgg16_small_forward_and_no_bn():
    torch.manual_seed(0)
    model = vgg16_fcn(variant="32s", num_classes=3).eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.features.block1.conv1_1.padding == (100, 100)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 11)).shape == (1, 3, 9, 11)


@pytest.mark.parametrize("variant, layer, factor", [("32s", "upscore", 32),
                                                    ("16s", "upscore2", 2),
                                                    ("8s", "upscore8", 8)])
def test_upsampling_starts_bilinear(variant, layer, factor):
    up = getattr(BUILDERS[variant](num_classes=3, width=2), layer)
    x = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        got = up.double()(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == ref.shape  # padding r // 2: n inputs -> n r outputs
    inner = (..., slice(factor, -factor), slice(factor, -factor))  # away from the border
    torch.testing.assert_close(got[inner], ref[inner])


def test_skip_scores_start_at_zero():
    model = fcn8s(width=2)
    for skip in (model.skip4.score_pool4, model.skip3.score_pool3):
        assert not skip.weight.any() and not skip.bias.any()


def test_print_reads_as_the_architecture():
    text = str(fcn8s(width=2))
    for part in ("(features): Sequential", "(block5): Sequential", "(head): Sequential",
                 "(fc6): Conv2d", "(score_fr): Conv2d", "(skip4): Sequential",
                 "(score_pool4): Conv2d", "(skip3): Sequential", "(upscore2): ConvTranspose2d",
                 "(score_pool3c): Crop(offset=0)", "(upscore8): ConvTranspose2d",
                 "(score): Crop(offset=0)"):
        assert part in text, part
    assert "(upscore): ConvTranspose2d" in str(fcn32s(width=2))


@pytest.mark.parametrize("variant, field, smallest", [("32s", 252, 252), ("16s", 284, 252),
                                                      ("8s", 284, 252)])
def test_receptive_field_matches_gradients(variant, field, smallest):
    # fc6 (3x3 on pool5) sees 220 px; each 2x transposed conv reads 2 inputs, and adjacent
    # upscore2 outputs share one or two score_fr units: the field depends on the output row.
    model = BUILDERS[variant](width=2)
    rows = receptive_field_of(model, 320)
    assert (rows[-1].size, rows[-1].jump, rows[-1].output_size) == (field, 1, 320)
    sides = gradient_sides(monotone(model), 320, range(144, 177))  # two 16 px periods
    assert (max(sides), min(sides)) == (field, smallest)


def test_overfits_one_batch():
    torch.manual_seed(0)
    ds = ShapesDataset("train", length=2, image_size=64, seed=0)
    x = torch.stack([ds[i][0] for i in range(2)])
    y = torch.stack([ds[i][1] for i in range(2)])
    first, last, accuracy = overfit_one_batch(fcn8s(num_classes=4, width=8), x, y, steps=150)
    assert accuracy >= 0.95 or last < first / 10, (accuracy, first, last)


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        fcn32s(num_classes=1)
    with pytest.raises(TypeError, match=r"width must be an int, got 1.5 \(float\)"):
        fcn16s(width=1.5)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        fcn8s(in_channels=0)
    with pytest.raises(TypeError, match="positional"):
        fcn8s(4)
    with pytest.raises(TypeError, match=r"variant must be a string.*got 32 \(int\)"):
        vgg16_fcn(variant=32)
    with pytest.raises(ValueError, match=r"variant must be one of \('32s', '16s', '8s'\)"):
        vgg16_fcn(variant="4s")
    with pytest.raises(TypeError, match=r"num_classes must be an int, got True \(bool\)"):
        vgg16_fcn(num_classes=True)
    with pytest.raises(TypeError, match=r"offset must be an int, got '5' \(str\)"):
        Crop("5")


def test_crop_pads_below_zero_and_crops_above():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    like = torch.zeros(1, 1, 3, 3)
    assert torch.equal(Crop(1)(x, like), x[..., 1:4, 1:4])
    padded = Crop(-1)(x, like)
    assert torch.equal(padded[..., 1:, 1:], x[..., :2, :2]) and not padded[..., 0, :].any()


@pytest.mark.parametrize("offset", range(-7, 9))
@pytest.mark.parametrize("sizes", [((4, 5), (3, 3)), ((2, 3), (5, 4)), ((1, 1), (2, 2))])
def test_crop_matches_a_loop_for_any_offset(offset, sizes):
    (height, width), (h, w) = sizes
    x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    got = Crop(offset)(x, torch.zeros(h, w))
    want = torch.zeros(2, 3, h, w, dtype=torch.float64)
    kept = torch.zeros(2, 3, height, width, dtype=torch.float64)  # d sum(out) / dx
    for i in range(h):
        for j in range(w):
            if 0 <= offset + i < height and 0 <= offset + j < width:
                want[..., i, j] = x[..., offset + i, offset + j]
                kept[..., offset + i, offset + j] = 1
    torch.testing.assert_close(got, want.detach())
    (grad,) = torch.autograd.grad(got.sum(), x)  # 1 where a pixel is kept, else 0
    torch.testing.assert_close(grad, kept)
