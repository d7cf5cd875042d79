import random

import pytest
import torch
import torchvision
from torch import nn

from course_lib.receptive_field import (
    Layer,
    RFInfo,
    closed_form_size,
    coord_map,
    crop_offset,
    dilated_stack,
    effective_receptive_field,
    extend,
    layers_for_field,
    receptive_field,
    receptive_field_of,
    stacked_3x3,
    vgg16_layers,
    vgg_like,
)


@pytest.fixture(scope="module")
def vgg16_rows():
    torch.manual_seed(0)
    return receptive_field_of(torchvision.models.vgg16(weights=None), (224, 224))


def test_recurrence_matches_closed_form_on_random_layers():
    rng = random.Random(0)
    for _ in range(50):
        layers = [Layer(f"l{i}", rng.randint(1, 7), rng.randint(1, 3), rng.randint(0, 3),
                        rng.randint(1, 3)) for i in range(rng.randint(1, 8))]
        assert receptive_field(layers)[-1].size == closed_form_size(layers)


def test_recurrence_rows_and_output_size_match_torch():
    layers = [Layer("a", 3, 2, 1), Layer("b", 3, 1, 2, dilation=2), Layer("c", 2, 2)]
    rows = receptive_field(layers, input_size=9)
    assert rows[0] == RFInfo("a", 3, 2, 0.5, 5)
    assert (rows[1].size, rows[1].jump, rows[1].start) == (11, 2, 0.5)
    assert (rows[2].size, rows[2].jump, rows[2].start) == (13, 4, 1.5)
    net = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 1, 2, dilation=2),
                        nn.MaxPool2d(2, 2))
    assert net(torch.zeros(1, 1, 9, 9)).shape[-1] == rows[2].output_size == 2
    assert [r.output_size for r in receptive_field_of(net, 9)] == [5, 5, 2]


def test_seed_claims():
    for n in (1, 2, 5, 49):
        assert receptive_field(stacked_3x3(n))[-1].size == 2 * n + 1
    assert layers_for_field(99) == 49 and layers_for_field(100) == 50
    assert receptive_field(stacked_3x3(layers_for_field(99)))[-1].size == 99
    sizes = [r.size for r in receptive_field(vgg_like(6)) if not r.name.endswith(".conv1")]
    assert sizes == [5, 6, 14, 16, 32, 36, 68, 76, 140, 156, 284]
    assert sum(".conv" in r.name for r in receptive_field(vgg_like(6))) == 12
    vgg16_names = {layer.name for layer in vgg16_layers()}
    assert not vgg16_names & {layer.name for layer in vgg_like(6)}  # no name of VGG16 reused
    assert receptive_field(dilated_stack())[-1].size == closed_form_size(dilated_stack()) == 65


def test_vgg16_measured(vgg16_rows):
    by_name = {r.name: r for r in vgg16_rows}
    expected = {"features.2": 5, "features.4": 6, "features.7": 14, "features.9": 16,
                "features.14": 40, "features.16": 44, "features.21": 92, "features.23": 100,
                "features.28": 196, "features.30": 212}
    assert {k: by_name[k].size for k in expected} == expected
    assert by_name["features.30"].jump == 32 and by_name["features.30"].output_size == 7
    features = vgg16_rows[:len(vgg16_layers())]  # one row per conv and pool, then the head
    assert [r.size for r in features] == [r.size for r in receptive_field(vgg16_layers())]
    assert [(r.name, r.size, r.jump, r.output_size) for r in vgg16_rows[len(features):]] == [
        ("avgpool", 212, 32, 7), ("flatten", 224, 224, None)]  # the classifier sees it all
    fc = extend(features, [Layer("fc6", 7), Layer("fc7", 1)])
    assert (fc[-1].name, fc[-1].size, fc[-1].jump, fc[-1].output_size) == ("fc7", 404, 32, 1)


def _fcn_chains():
    trunk = [*vgg16_layers(first_padding=100), Layer("fc6", 7), Layer("fc7", 1),
             Layer("score_fr", 1)]
    up2 = [*trunk, Layer("upscore2", 4, 2, transposed=True)]
    pool4 = [*trunk[:trunk.index(Layer("pool4", 2, 2)) + 1], Layer("score_pool4", 1)]
    pool3 = [*trunk[:trunk.index(Layer("pool3", 2, 2)) + 1], Layer("score_pool3", 1)]
    return trunk, up2, pool4, pool3


def test_fcn_crop_offsets():
    trunk, up2, pool4, pool3 = _fcn_chains()
    # FCN-32s
    assert crop_offset([*trunk, Layer("upscore", 64, 32, transposed=True)], []) == 19
    # FCN-16s: fuse_pool4 lives on upscore2's grid
    assert crop_offset(pool4, up2) == 5
    assert crop_offset([*up2, Layer("upscore16", 32, 16, transposed=True)], []) == 27
    # FCN-8s
    up4 = [*up2, Layer("upscore_pool4", 4, 2, transposed=True)]
    assert crop_offset(pool4, up2) == 5 and crop_offset(pool3, up4) == 9
    assert crop_offset([*up4, Layer("upscore8", 16, 8, transposed=True)], []) == 31


def test_coord_map_is_jump_and_start():
    layers = vgg16_layers(first_padding=100)
    last = receptive_field(layers)[-1]
    assert coord_map(layers) == (last.jump, last.start - 0.5)
    conv, deconv = Layer("c", 4, 2, 1), Layer("d", 4, 2, 1, transposed=True)
    assert coord_map([conv, deconv]) == (1.0, 0.0)  # a deconv inverts its conv


def test_effective_receptive_field_support_is_theoretical_field():
    n, size = 4, 25
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)])
    with torch.no_grad():
        for conv in net:
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    erf = effective_receptive_field(net, (1, size, size))
    assert erf.shape == (size, size) and erf.max() == 1.0
    rows, cols = torch.nonzero(erf, as_tuple=True)
    r = receptive_field(stacked_3x3(n))[-1].size
    assert len(rows) == r * r
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (r, r)
    assert erf[size // 2, size // 2] == 1.0  # peak at the centre
    corner = effective_receptive_field(net, (1, size, size), output_index=(0, 0))
    assert torch.nonzero(corner).max() == n  # clipped by the border


def test_effective_receptive_field_is_concentrated():
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Sequential(nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1), nn.ReLU())
                          for i in range(8)])
    erf = effective_receptive_field(net, (1, 33, 33), n_samples=4, seed=1)
    r = receptive_field_of(net, 33)[-1].size
    assert r == 17 and torch.count_nonzero(erf[:, :8]) == 0  # nothing outside the field
    c, h = 16, r // 4
    inner = erf[c - h:c + h + 1, c - h:c + h + 1].sum() / erf.sum()
    assert inner > 0.6  # the central ~28 % of the field holds most of the gradient


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_size=0), "kernel_size must be an int >= 1"),
    (dict(kernel_size=3, stride=0), "stride must be an int >= 1"),
    (dict(kernel_size=3, dilation=0), "dilation must be an int >= 1"),
    (dict(kernel_size=3, padding=-1), "padding must be an int >= 0, got -1"),
    (dict(kernel_size=2.5), "kernel_size must be an int, got 2.5"),
])
def test_layer_rejects(kwargs, match):
    wrong_type = isinstance(kwargs.get("kernel_size"), float)
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
        Layer("x", **kwargs)


def test_functions_reject_bad_input():
    with pytest.raises(ValueError, match="input_size must be an int >= 1, got 0"):
        receptive_field(stacked_3x3(1), input_size=0)
    with pytest.raises(TypeError, match="must hold Layer objects, got tuple"):
        receptive_field([(3, 1)])
    with pytest.raises(ValueError, match="is transposed"):
        receptive_field([Layer("up", 4, 2, transposed=True)])
    with pytest.raises(ValueError, match=r"needs an input of at least 7, got 5"):
        receptive_field([Layer("fc6", 7)], input_size=5)
    with pytest.raises(ValueError, match="rows is empty"):
        extend([], stacked_3x3(1))
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        stacked_3x3(0)
    with pytest.raises(ValueError, match="target must be an int >= 1"):
        layers_for_field(0)
    with pytest.raises(ValueError, match="kernel .* must be an int >= 2"):
        layers_for_field(9, kernel=1)
    with pytest.raises(ValueError, match="blocks must be an int >= 1"):
        vgg_like(0)
    with pytest.raises(ValueError, match="convs_per_block must be an int >= 1"):
        vgg_like(2, convs_per_block=0)
    with pytest.raises(TypeError, match="n must be an int, got 2.0"):
        stacked_3x3(2.0)


def test_measure_rejects():
    net = nn.Sequential(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match=r"input_size must be >= 1 \(an int or a pair of ints\)"):
        receptive_field_of(net, (0, 4))
    with pytest.raises(ValueError, match="holds no nn.Conv2d: cannot infer C_in; pass in_ch"):
        receptive_field_of(nn.Sequential(nn.MaxPool2d(2)))
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        effective_receptive_field(net, (8, 8))
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        effective_receptive_field(net, (1, 8, 8), n_samples=0)
    with pytest.raises(ValueError, match="model output must be"):
        effective_receptive_field(nn.Sequential(net, nn.Flatten()), (1, 8, 8))
    with pytest.raises(ValueError, match=r"output_index \(9, 0\) is outside the output"):
        effective_receptive_field(net, (1, 8, 8), output_index=(9, 0))


def test_crop_offset_rejects():
    trunk, up2, pool4, _ = _fcn_chains()
    with pytest.raises(ValueError, match="scale mismatch"):
        crop_offset(trunk, pool4)
    with pytest.raises(ValueError, match="non-negative integer"):
        crop_offset(up2, pool4)
    with pytest.raises(ValueError, match="non-negative integer, got 0.25"):
        crop_offset([Layer("c", 1, 2)], [Layer("p", 2, 2)])


def test_crop_offset_signed_allows_zero_and_below():
    trunk, up2, pool4, pool3 = _fcn_chains()
    assert crop_offset(pool4, up2, signed=True) == crop_offset(pool4, up2) == 5  # same value
    assert crop_offset(up2, pool4, signed=True) == -5  # pad 5 instead of cropping
    down, up = Layer("down", 4, 2, padding=1), Layer("up", 4, 2, padding=2, transposed=True)
    assert crop_offset([down, up], [], signed=True) == -1
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        crop_offset([down, up], [])  # the default is unchanged: Caffe's Crop only
    with pytest.raises(ValueError, match="must be an integer, got 0.25"):
        crop_offset([Layer("c", 1, 2)], [Layer("p", 2, 2)], signed=True)
    with pytest.raises(ValueError, match="scale mismatch"):
        crop_offset(trunk, pool4, signed=True)
    with pytest.raises(TypeError, match=r"signed must be a bool \(True or False\), got 1 \(int\)"):
        crop_offset(pool4, up2, signed=1)


def test_support_box_of_a_conv_stack_is_its_receptive_field():
    from course_lib.receptive_field import support_box

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 1, 3, dilation=2))
    torch.nn.init.constant_(net[0].weight, 1.0)
    torch.nn.init.constant_(net[1].weight, 1.0)
    x = torch.zeros(1, 1, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x)[0, 0, 3, 5], x)
    assert support_box(grad[0, 0]) == (3, 5, 3 + 7, 5 + 7)  # field 1 + 2 + 4 = 7
    with pytest.raises(ValueError, match="grad is zero everywhere"):
        support_box(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"grad must be a 2-D tensor \(H, W\), got \(1, 4, 4\)"):
        support_box(torch.ones(1, 4, 4))


def test_is_pool_and_build_module_follow_vgg_like_names():
    from course_lib.receptive_field import build_module, is_pool

    layers = vgg_like(3)
    assert [is_pool(x) for x in layers].count(True) == 2
    pools = [m for m in build_module(layers) if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 2
    with pytest.raises(TypeError, match="layer must be a Layer, got tuple"):
        is_pool((2, 2))
