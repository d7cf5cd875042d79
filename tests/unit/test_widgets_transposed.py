"""course_lib.ops.splat (splat steps, overlap counts, stamp boxes) and the transposed-conv
explorer that draws them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_lib.ops import overlap_counts, splat_steps, stamp_box  # noqa: E402
from course_lib.widgets.transposed import (  # noqa: E402
    INPUTS,
    KERNELS,
    explorer_arrays,
    transposed_conv_explorer,
)

CONFIGS = [  # (H, W, kh, kw, stride, padding, output_padding)
    (3, 4, 3, 3, 2, 0, 0), (3, 4, 3, 3, 2, 1, 1), (4, 4, 4, 4, 2, 1, 0), (2, 5, 2, 3, 3, 1, 2),
    (5, 3, 1, 1, 1, 0, 0), (1, 1, 5, 5, 2, 2, 1), (4, 2, 3, 2, (2, 1), (1, 0), (1, 0)),
]


@pytest.mark.parametrize("h,w,kh,kw,s,p,op", CONFIGS)
def test_splat_steps_end_equals_torch(h, w, kh, kw, s, p, op):
    g = torch.Generator().manual_seed(h * 100 + kh * 10 + kw)
    x = torch.randn(h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(kh, kw, generator=g, dtype=torch.float64)
    steps = splat_steps(x, weight, s, p, op)
    ref = F.conv_transpose2d(x[None, None], weight[None, None], stride=s, padding=p,
                             output_padding=op)[0, 0]
    assert len(steps) == h * w
    assert all(t.shape == ref.shape for t in steps)
    torch.testing.assert_close(steps[-1], ref)


def test_splat_steps_each_step_adds_one_pixel():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 3, generator=g, dtype=torch.float64)
    steps = splat_steps(x, weight, 2, 1)
    prev = torch.zeros_like(steps[0])
    for t, cur in enumerate(steps):
        alone = torch.zeros_like(x)
        alone.view(-1)[t] = x.view(-1)[t]  # only pixel t
        one = F.conv_transpose2d(alone[None, None], weight[None, None], stride=2, padding=1)
        torch.testing.assert_close(cur - prev, one[0, 0])
        prev = cur


def test_splat_steps_seed_slide_example():
    kernel = torch.arange(1.0, 5.0).reshape(2, 2)
    steps = splat_steps(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), kernel, stride=2)
    assert steps[0].tolist() == [[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert steps[1].tolist() == [[1, 2, 1, 2], [3, 4, 3, 4], [0, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("h,w,kh,kw,s,p,op", CONFIGS)
def test_overlap_counts_equal_transposed_conv_of_ones(h, w, kh, kw, s, p, op):
    counts = overlap_counts((h, w), (kh, kw), s, p, op)
    ref = F.conv_transpose2d(torch.ones(1, 1, h, w, dtype=torch.float64),
                             torch.ones(1, 1, kh, kw, dtype=torch.float64), stride=s, padding=p,
                             output_padding=op)[0, 0]
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, ref.numpy().astype(np.int64))


def test_overlap_counts_checkerboard():
    assert sorted(set(overlap_counts(6, 3, 2, 1).ravel().tolist())) == [1, 2, 4]
    assert set(overlap_counts(6, 4, 2, 1)[1:-1, 1:-1].ravel().tolist()) == {4}
    assert set(overlap_counts(6, 2, 2).ravel().tolist()) == {1}


def test_stamp_box():
    assert stamp_box(0, 2, 3, 2, 0) == (0, 0, 3, 3)
    assert stamp_box(1, (2, 2), 3, 2, 0) == (0, 2, 3, 3)
    assert stamp_box(3, (2, 2), (3, 2), 2, 1) == (1, 1, 3, 2)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"x": [[1.0]]}, TypeError, "x must be a torch.Tensor"),
    ({"x": torch.ones(1, 2, 2)}, ValueError, "x must be a 2-D tensor"),
    ({"weight": torch.ones(2, 2, dtype=torch.int64)}, ValueError, "floating dtype"),
    ({"weight": torch.ones(2, 2, dtype=torch.float32)}, ValueError, "share a dtype"),
    ({"stride": 0}, ValueError, "stride must be >= 1"),
    ({"padding": -1}, ValueError, "padding must be >= 0"),
    ({"output_padding": 2, "stride": 2}, ValueError, "output_padding must satisfy"),
    ({"padding": 5}, ValueError, "crops everything"),
])
def test_splat_steps_errors(kwargs, exc, match):
    args = {"x": torch.ones(2, 2, dtype=torch.float64),
            "weight": torch.ones(2, 2, dtype=torch.float64), **kwargs}
    with pytest.raises(exc, match=match):
        splat_steps(**args)


def test_overlap_counts_and_stamp_box_errors():
    with pytest.raises(ValueError, match="in_size must be >= 1"):
        overlap_counts(0, 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        overlap_counts(4, 2.5)
    with pytest.raises(ValueError, match="crops everything"):
        overlap_counts(1, 1, padding=1)
    with pytest.raises(ValueError, match=r"index must be an int in \[0, 3\]"):
        stamp_box(4, 2, 3)


def test_explorer_arrays():
    x, w = explorer_arrays("ramp", "bilinear", 3, 4)
    assert x.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]] and w.shape == (4, 4)
    for name in INPUTS:
        for kname in KERNELS:
            x, w = explorer_arrays(name, kname, 2, 3, seed=1)
            assert x.dtype == w.dtype == torch.float64 and x.min() >= 0
    with pytest.raises(ValueError, match="input_name must be one of .* got 'zeros'"):
        explorer_arrays("zeros", "ones", 2, 2)
    with pytest.raises(ValueError, match="kernel_name must be one of .* got 'gauss'"):
        explorer_arrays("ones", "gauss", 2, 2)


def test_widget_builds_and_updates():
    import ipywidgets as widgets

    box = transposed_conv_explorer(4)
    assert isinstance(box, widgets.VBox)
    controls, step, label, picture = box.children
    assert isinstance(picture, widgets.Image) and isinstance(step, widgets.IntSlider)
    first = picture.value
    assert first[:4] == b"\x89PNG"
    assert [c.description for c in controls.children] == [
        "input", "kernel", "kernel size", "stride", "padding"]
    assert "output 9 x 9" in label.value and "[1, 2, 4]" in label.value  # k=3, s=2
    controls.children[2].value = 4  # kernel 4, stride 2 -> 10 x 10
    assert "output 10 x 10" in label.value and picture.value != first
    controls.children[4].value = 1
    assert "output 8 x 8" in label.value
    step.value = 0
    controls.children[2].value = 1  # k=1, s=1, p=3 on 4 pixels: 4 - 6 < 1 -> invalid
    controls.children[3].value = 1
    controls.children[4].value = 3
    assert "invalid setting" in label.value


def test_widget_rejects_bad_size():
    with pytest.raises(ValueError, match=r"in_size .* must be an int in \[1, 8\]"):
        transposed_conv_explorer(9)


def test_invalid_setting_greys_the_stale_picture_and_controls_wrap():
    import io

    import numpy as np
    from PIL import Image

    box = transposed_conv_explorer(4)
    controls, step, label, picture = box.children
    assert controls.layout.flex_flow == "row wrap"
    for slider in (*controls.children[2:], step):
        assert slider.layout.width == "400px" and slider.style.description_width == "90px"
    controls.children[2].value = 1  # k=1, s=1, p=3 on 4 pixels: 4 - 6 < 1 -> invalid
    controls.children[3].value = 1
    good = picture.value
    controls.children[4].value = 3
    assert "invalid setting" in label.value and picture.value != good
    grey = np.asarray(Image.open(io.BytesIO(picture.value)).convert("RGB"))
    assert np.median(grey) > 150 and grey.std() < 40
    controls.children[4].value = 0
    assert "invalid" not in label.value and picture.value == good
