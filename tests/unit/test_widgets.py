"""course_lib.widgets: the conv explorer's pure step function and the widget itself."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_lib.widgets import KERNELS, conv_explorer, conv_explorer_step  # noqa: E402


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)])
def test_step_matches_torch(name, stride, padding, dilation):
    torch.manual_seed(0)
    image = torch.rand(20, 17, dtype=torch.float64)
    out, _ = conv_explorer_step(image, name, stride, padding, dilation)
    weight = torch.tensor(KERNELS[name], dtype=torch.float64).reshape(1, 1, 3, 3)
    expected = F.conv2d(image[None, None], weight, stride=stride, padding=padding,
                        dilation=dilation)[0, 0]
    torch.testing.assert_close(out, expected)


def test_step_size_text():
    out, text = conv_explorer_step(torch.zeros(128, 128), "box blur", 2, 1, 1)
    assert tuple(out.shape) == (64, 64)
    assert "128 x 128" in text and "64 x 64" in text


def test_unknown_kernel_lists_valid_names():
    with pytest.raises(ValueError, match="must be one of") as info:
        conv_explorer_step(torch.zeros(8, 8), "gaussian", 1, 0, 1)
    assert all(name in str(info.value) for name in KERNELS)


def test_widget_builds():
    import ipywidgets as widgets

    box = conv_explorer(torch.rand(32, 32))
    assert isinstance(box, widgets.VBox)
    controls, label, picture = box.children
    assert isinstance(picture, widgets.Image) and isinstance(label, widgets.Label)
    assert picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    descriptions = [w.description for w in controls.children]
    assert descriptions == ["kernel", "stride", "padding", "dilation"]
    assert "32 x 32" in label.value
    controls.children[1].value = 2  # stride 2 -> 15 x 15
    assert "15 x 15" in label.value


def test_widget_default_image():
    box = conv_explorer()
    assert "128 x 128" in box.children[1].value


def test_all_explorers_are_reexported_from_widgets():
    from course_lib import widgets
    from course_lib.widgets import receptive, transposed

    assert widgets.receptive_field_explorer is receptive.receptive_field_explorer
    assert widgets.transposed_conv_explorer is transposed.transposed_conv_explorer
    assert {"conv_explorer", "receptive_field_explorer", "transposed_conv_explorer"} <= set(
        widgets.__all__)


def test_invalid_setting_replaces_the_stale_picture():
    import io

    import numpy as np
    from PIL import Image

    box = conv_explorer(torch.rand(8, 8))
    controls, label, picture = box.children
    good = picture.value
    controls.children[3].value = 4  # dilation 4: the kernel spans 9 > 8 pixels
    assert label.value.startswith("invalid setting")
    assert picture.value != good and picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    grey = np.asarray(Image.open(io.BytesIO(picture.value)).convert("RGB"))
    assert np.median(grey) > 150 and grey.std() < 40  # a plain grey panel with the message
    controls.children[3].value = 1  # valid again: the real picture comes back
    assert not label.value.startswith("invalid") and picture.value == good


def test_controls_wrap_and_sliders_keep_their_width():
    box = conv_explorer(torch.rand(16, 16))
    controls = box.children[0]
    assert controls.layout.flex_flow == "row wrap"
    for w in controls.children:
        assert w.layout.width.endswith("px") and int(w.layout.width[:-2]) >= 260
        assert w.style.description_width == "90px"
