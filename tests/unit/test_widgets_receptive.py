"""The receptive-field explorer and what it draws: ``parse_layers``, ``unit_field`` (checked on
real modules built by ``build_module``), ``format_table`` and the widget."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.receptive_field import (  # noqa: E402
    Layer,
    build_module,
    format_table,
    parse_layers,
    receptive_field,
    unit_field,
)
from course_lib.widgets import PRESETS, draw_field, receptive_field_explorer  # noqa: E402


def _geometry(layers):
    return [(x.kernel_size, x.stride, x.padding, x.dilation) for x in layers]


def test_parse_defaults_and_options():
    layers = parse_layers("conv3, conv3 d2, pool2, conv5 s2 p0, POOL3 s1 p1,  conv3  d4 s2 ")
    assert _geometry(layers) == [(3, 1, 1, 1), (3, 1, 2, 2), (2, 2, 0, 1), (5, 2, 0, 1),
                                 (3, 1, 1, 1), (3, 2, 4, 4)]
    assert [x.name for x in layers[:3]] == ["1:conv3", "2:conv3 d2", "3:pool2"]
    assert layers[-1].name == "6:conv3 d4 s2"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_parse(name):
    assert parse_layers(PRESETS[name])


@pytest.mark.parametrize("spec,match", [
    ("", "spec is empty"),
    (" , ", "spec is empty"),
    ("conv", "layer 1 'conv' is not understood"),
    ("conv3, relu", "layer 2 'relu' is not understood"),
    ("conv3,", "layer 2 '' is not understood"),
    ("conv3 x2", "is not understood"),
    ("conv3 s2 s1", "gives option 's' twice"),
    ("conv0", "kernel_size must be an int >= 1"),
    ("conv3 s0", "stride must be an int >= 1"),
    ("pool2 d0", "dilation must be an int >= 1"),
])
def test_parse_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_layers(spec)


def test_parse_type_error():
    with pytest.raises(TypeError, match="spec must be a string"):
        parse_layers(["conv3"])


def test_step_matches_recurrence_and_centre_default():
    layers = parse_layers("conv3, conv3, pool2, conv3 d2")
    result = unit_field(layers, (64, 48))
    rows = receptive_field(layers, 64)
    assert result["rows"] == rows and result["size"] == rows[-1].size == 14
    assert result["jump"] == 2 and result["output_size"] == (32, 24)
    assert result["unit"] == (16, 12)
    cy, cx = result["centre"]
    assert cy == rows[-1].start + 16 * 2 and cx == rows[-1].start + 12 * 2
    y0, x0, y1, x1 = result["box"]
    assert y1 - y0 == x1 - x0 == 14 and (y0 + y1) / 2 == cy
    assert result["clipped"] == result["box"]
    np.testing.assert_allclose(np.diff(result["grid_y"]), 2)
    assert len(result["grid_y"]) == len(result["grid_x"]) == 5
    assert "size" in result["table"] and "4:conv3 d2" in result["table"]


def test_step_corner_unit_is_clipped_and_grid_stays_inside():
    result = unit_field(parse_layers("conv3, conv3"), (8, 8), unit=(0, 7), neighbours=3)
    assert result["box"] == (-2.0, 5.0, 3.0, 10.0)
    assert result["clipped"] == (0.0, 5.0, 3.0, 8.0)
    np.testing.assert_array_equal(result["grid_y"], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(result["grid_x"], [4.5, 5.5, 6.5, 7.5])


@pytest.mark.parametrize("seed", range(12))
def test_box_is_the_gradient_support_on_a_real_module(seed):
    """A unit's box is spanned by the input pixels that receive a gradient from it."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(int(torch.randint(1, 5, (1,), generator=g))):
        k, s, d = (int(torch.randint(1, 4, (1,), generator=g)) for _ in range(3))
        p = int(torch.randint(0, 3, (1,), generator=g))
        if int(torch.randint(0, 3, (1,), generator=g)) == 0:
            items.append(f"pool{max(k, 2)} s{s} p{min(p, max(k, 2) // 2)}")
        else:
            items.append(f"conv{k} s{s} p{p} d{d}")
    layers = parse_layers(", ".join(items))
    h, w = 61, 53
    module = build_module(layers).double()
    x = torch.rand(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    out = module(x)
    assert out.shape[-2:] == unit_field(layers, (h, w))["output_size"]
    checked = 0
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            result = unit_field(layers, (h, w), unit=(i, j))
            (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
            rows, cols = np.nonzero(grad[0, 0].numpy())
            y0, x0, y1, x1 = result["clipped"]
            if rows.size:  # every pixel with a gradient lies in the clipped box
                assert y0 <= rows.min() and rows.max() < y1 and x0 <= cols.min() and cols.max() < x1
            if result["clipped"] == result["box"]:  # fully inside: the support spans the box
                assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (y0, y1, x0, x1)
                checked += 1
    assert checked > 0, items


def test_step_errors():
    layers = parse_layers("conv3, pool2")
    with pytest.raises(ValueError, match="layers is empty"):
        unit_field([], (8, 8))
    with pytest.raises(ValueError, match="image_size must be >= 1"):
        unit_field(layers, (0, 8))
    with pytest.raises(TypeError, match=r"image_size\[0\] must be an int"):
        unit_field(layers, (8.0, 8))
    with pytest.raises(ValueError, match="image_size must be an int or a pair"):
        unit_field(layers, (8, 8, 8))
    with pytest.raises(ValueError, match="neighbours must be"):
        unit_field(layers, (8, 8), neighbours=-1)
    with pytest.raises(ValueError, match=r"unit rows .* must be an int in \[0, 3\]"):
        unit_field(layers, (8, 8), unit=(4, 0))
    with pytest.raises(ValueError, match=r"unit cols .* must be an int in \[0, 4\]"):
        unit_field(layers, (8, 10), unit=(0, -1))
    with pytest.raises(ValueError, match="needs an input of at least"):
        unit_field(parse_layers("conv5 p0"), (3, 3))


def test_build_module_errors():
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        build_module(parse_layers("conv3"), channels=0)
    with pytest.raises(TypeError, match="layers must hold Layer objects"):
        build_module([(3, 1, 1, 1)])
    with pytest.raises(ValueError, match="a pool cannot be dilated"):
        build_module(parse_layers("pool2 d2"))
    assert isinstance(build_module([Layer("pool1", 2, 2)])[0], torch.nn.AvgPool2d)


def test_format_table_lists_every_layer():
    rows = receptive_field(parse_layers("conv3, pool2"))
    lines = format_table(rows).splitlines()
    assert len(lines) == 3 and lines[2].split()[1:4] == ["4", "2", "1.0"]


def test_draw_field_and_image_checks():
    import matplotlib.pyplot as plt

    result = unit_field(parse_layers("conv3, conv3"), (8, 8), unit=(0, 0))
    fig, ax = plt.subplots()
    for image in (np.zeros((8, 8)), np.zeros((8, 8, 3), np.uint8), torch.zeros(3, 8, 8),
                  torch.zeros(1, 8, 8)):
        draw_field(ax, image, result)
    assert ax.get_xlim()[0] < -2.5  # the field leaves the image: the view follows it
    with pytest.raises(ValueError, match="image must have shape"):
        draw_field(ax, np.zeros((2, 8, 8)), result)
    plt.close(fig)


def test_widget_builds_and_reacts():
    import ipywidgets as widgets

    box = receptive_field_explorer(np.random.default_rng(0).random((64, 64)), "conv3, pool2")
    assert isinstance(box, widgets.VBox)
    text, buttons, units, status, (table, picture) = box.children[:4] + (box.children[4].children,)
    assert "field 4 x 4" in status.value and "(32, 32)" in status.value
    assert picture.value[:8] == b"\x89PNG\r\n\x1a\n" and "2:pool2" in table.value
    before = picture.value
    units.children[2].value = False  # hide the jump grid: a new picture
    assert picture.value != before
    units.children[0].value = 0
    assert "unit (0, 16)" in status.value
    buttons.children[0].click()  # + conv3
    assert text.value == "conv3, pool2, conv3" and "field 8 x 8" in status.value
    buttons.children[3].click()  # remove last
    assert text.value == "conv3, pool2"
    text.value = "conv3, relu"
    assert status.value.startswith("invalid stack") and "relu" in status.value
    buttons.children[4].value = "dilated 1-2-4-8"
    assert text.value == PRESETS["dilated 1-2-4-8"] and "field 31 x 31" in status.value


def test_widget_defaults_and_layer_objects():
    box = receptive_field_explorer()
    assert "(56, 56)" in box.children[3].value  # astronaut 224 px, two pools
    box = receptive_field_explorer(np.zeros((32, 32)), [Layer("a", 3, padding=1),
                                                          Layer("pool", 2, 2)])
    assert box.children[0].value == "conv3 s1 p1 d1, pool2 s2 p0 d1"
    assert "field 4 x 4" in box.children[3].value


def test_invalid_stack_greys_the_stale_field_and_wraps_controls():
    import io

    from PIL import Image

    box = receptive_field_explorer(np.random.default_rng(0).random((64, 64)), "conv3, pool2")
    text, buttons, units, status, row = box.children
    table, picture = row.children
    good = picture.value
    text.value = "conv3, relu"
    assert status.value.startswith("invalid stack") and table.value == ""
    grey = np.asarray(Image.open(io.BytesIO(picture.value)).convert("RGB"))
    assert picture.value != good and np.median(grey) > 150 and grey.std() < 40
    text.value = "conv3, pool2"
    assert picture.value == good and "field 4 x 4" in status.value
    for hbox in (buttons, units, row):
        assert hbox.layout.flex_flow == "row wrap"
    for slider in units.children[:2]:
        assert slider.layout.width == "400px" and slider.style.description_width == "90px"
