import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.simple import (
    PatchClassifier,
    all_conv_field,
    all_conv_net,
    conv_macs,
    patch_classifier,
    sliding_window_logits,
)
from course_lib.receptive_field import receptive_field_of


@pytest.mark.parametrize("patch_size, num_convs", [(5, 2), (9, 2), (7, 0), (11, 3)])
def test_patch_classifier_shapes_in_both_modes(patch_size, num_convs):
    torch.manual_seed(0)
    net = patch_classifier(patch_size=patch_size, num_classes=4, width=4, num_convs=num_convs)
    assert isinstance(net, PatchClassifier)
    assert net(torch.rand(2, 3, 13, 17)).shape == (2, 4, 13, 17)
    assert net.patch_logits(torch.rand(6, 3, patch_size, patch_size)).shape == (6, 4)
    assert net.head.fc.kernel_size == (patch_size - 2 * num_convs,) * 2


@pytest.mark.parametrize("batch_size", [5, 4096])
def test_fully_convolutional_run_equals_sliding_window_exactly_in_float64(batch_size):
    torch.manual_seed(0)
    net = patch_classifier(patch_size=7, num_classes=3, width=5, hidden=6).double()
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    dense = net(x)
    slid = sliding_window_logits(net, x, batch_size=batch_size)
    assert slid.shape == dense.shape == (2, 3, 9, 11)
    torch.testing.assert_close(slid, dense, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sliding_window_logits(net, x[0]), dense[0], rtol=1e-12,
                               atol=1e-12)


def test_sliding_window_matches_an_explicit_loop_over_patches():
    torch.manual_seed(1)
    net = patch_classifier(patch_size=5, num_classes=2, width=3).double()
    x = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    padded = F.pad(x, (2, 2, 2, 2))
    expected = torch.empty(1, 2, 6, 5, dtype=torch.float64)
    for i in range(6):
        for j in range(5):
            expected[0, :, i, j] = net.patch_logits(padded[:, :, i:i + 5, j:j + 5])[0]
    torch.testing.assert_close(sliding_window_logits(net, x), expected, rtol=1e-12, atol=1e-12)


def test_patch_classifier_receptive_field_is_the_patch():
    net = patch_classifier(patch_size=15, num_classes=4, width=4)
    rows = receptive_field_of(net, 32)
    assert rows[-1].size == 15 and rows[-1].output_size == 32
    assert "patch_size=15" in str(net) and "(fc): Conv2d(4, 8, kernel_size=(11, 11)" in str(net)


@pytest.mark.parametrize("num_layers, dilation", [(1, 1), (4, 1), (6, 2), (4, (1, 2, 4, 8))])
def test_all_conv_net_keeps_size_and_field_matches_formula(num_layers, dilation):
    torch.manual_seed(0)
    net = all_conv_net(num_layers=num_layers, width=4, num_classes=3, dilation=dilation)
    assert net(torch.rand(2, 3, 40, 36)).shape == (2, 3, 40, 36)
    ds = [dilation] * num_layers if isinstance(dilation, int) else list(dilation)
    expected = 1 + 2 * sum(ds)
    assert all_conv_field(num_layers, dilation) == expected
    rows = receptive_field_of(net, 40)
    assert rows[-1].size == expected and rows[-1].output_size == 40
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in net.modules())


def test_all_conv_net_print_and_batch_norm_switch():
    net = all_conv_net(num_layers=2, width=8, num_classes=4)
    text = str(net)
    assert "(features): Sequential" in text and "(head): Sequential" in text
    assert "(score): Conv2d(8, 4, kernel_size=(1, 1)" in text and "(bn2)" in text
    plain = all_conv_net(num_layers=2, width=8, num_classes=4, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert plain.features.conv1.bias is not None


def test_conv_macs_counts_every_convolution():
    conv = nn.Conv2d(2, 3, 3)
    assert conv_macs(conv, torch.zeros(1, 2, 5, 5)) == 3 * 3 * 3 * 2 * 3 * 3
    net = all_conv_net(num_layers=2, width=4, num_classes=3)
    x = torch.zeros(2, 3, 8, 8)
    per_pixel = 3 * 4 * 9 + 4 * 4 * 9 + 4 * 3  # conv1, conv2, 1x1 score
    assert conv_macs(net, x) == 2 * 8 * 8 * per_pixel
    grouped = nn.Conv2d(4, 4, 1, groups=2)
    assert conv_macs(grouped, torch.zeros(1, 4, 2, 2)) == 4 * 2 * 2 * 2


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_size": 8}, "patch_size must be odd"),
    ({"patch_size": 3}, r"patch_size must be an int >= 5"),
    ({"patch_size": 9.0}, "patch_size must be an int, got 9.0"),
    ({"num_classes": 1}, "num_classes must be an int >= 2"),
    ({"width": 0}, "width must be an int >= 1"),
    ({"hidden": 0}, "hidden must be an int >= 1"),
    ({"num_convs": -1}, "num_convs must be an int >= 0"),
    ({"in_channels": True}, "in_channels must be an int"),
])
def test_patch_classifier_rejects_bad_arguments(kwargs, match):
    args = {"patch_size": 9, "num_classes": 4, **kwargs}
    wrong_type = any(isinstance(v, (bool, float)) for v in kwargs.values())
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
        patch_classifier(**args)


def test_patch_classifier_is_keyword_only():
    with pytest.raises(TypeError):
        patch_classifier(9, 4)  # noqa


def test_patch_logits_and_sliding_window_reject_bad_inputs():
    net = patch_classifier(patch_size=5, num_classes=2, width=2)
    with pytest.raises(ValueError, match=r"patches must have shape \(M, C, 5, 5\), got \(2, 3, 6"):
        net.patch_logits(torch.zeros(2, 3, 6, 6))
    with pytest.raises(ValueError, match="patches must have shape"):
        net.patch_logits([1, 2])
    with pytest.raises(TypeError, match="model must be a PatchClassifier"):
        sliding_window_logits(nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        sliding_window_logits(net, torch.zeros(1, 3, 4, 4), batch_size=0)
    with pytest.raises(ValueError, match=r"images must be a tensor \(N, C, H, W\).*\(4, 4\)"):
        sliding_window_logits(net, torch.zeros(4, 4))
    with pytest.raises(ValueError, match="images must be a tensor.*ndarray"):
        import numpy as np

        sliding_window_logits(net, np.zeros((1, 3, 4, 4)))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, "num_layers must be an int >= 1"),
    ({"width": 0}, "width must be an int >= 1"),
    ({"num_classes": 1}, "num_classes must be an int >= 2"),
    ({"in_channels": 0}, "in_channels must be an int >= 1"),
    ({"dilation": 0}, "dilation must be an int >= 1"),
    ({"dilation": (1, 2)}, r"one int per layer \(3\), got 2 values"),
    ({"dilation": (1, 0, 2)}, "dilation must be an int >= 1, got 0"),
    ({"dilation": "2"}, "dilation must be an int >= 1 or a sequence"),
    ({"dilation": 1.5}, "dilation must be an int >= 1 or a sequence"),
])
def test_all_conv_net_rejects_bad_arguments(kwargs, match):
    args = {"num_layers": 3, "width": 4, "num_classes": 3, **kwargs}
    wrong_type = any(isinstance(v, (str, float)) for v in kwargs.values())
    with pytest.raises(TypeError if wrong_type else ValueError, match=match):
        all_conv_net(**args)


def test_all_conv_field_and_conv_macs_reject_bad_arguments():
    with pytest.raises(ValueError, match="num_layers must be an int >= 1"):
        all_conv_field(0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        conv_macs(lambda x: x, torch.zeros(1))


@pytest.mark.parametrize("stride, padding, groups", [(1, 0, 1), (2, 1, 1), (3, 2, 2)])
def test_conv_macs_counts_the_splat_of_a_transposed_convolution(stride, padding, groups):
    # independent count: with ones everywhere and no padding, every product of the splat adds
    # exactly 1 to the full output, so the output's sum counts them (padding only crops)
    x = torch.ones(2, 4, 5, 7, dtype=torch.float64)
    full = F.conv_transpose2d(x, torch.ones(4, 6 // groups, 3, 3, dtype=torch.float64),
                              stride=stride, groups=groups)
    products = int(full.sum())
    up = nn.ConvTranspose2d(4, 6, 3, stride=stride, padding=padding, groups=groups, bias=False)
    assert conv_macs(up, x.float()) == products
    with torch.device("meta"):
        assert conv_macs(up.to("meta"), torch.zeros(2, 4, 5, 7)) == products
