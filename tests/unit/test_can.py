"""course_lib.models.can: the context aggregation network (Chen, Xu & Koltun 2017)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models.can import AdaptiveBN, context_aggregation_net
from course_lib.receptive_field import support_box


def test_adaptive_bn_is_the_identity_at_init_and_keeps_its_keywords():
    abn = AdaptiveBN(4).train()
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(abn(x), x)
    assert abn.bn.eps == 1e-5 and abn.bn.momentum == 0.001  # not swapped positionally
    with torch.no_grad():
        abn.a.fill_(0.0)
        abn.b.fill_(1.0)
    torch.testing.assert_close(abn(x), nn.functional.batch_norm(
        x, None, None, abn.bn.weight, abn.bn.bias, training=True, eps=1e-5))


def test_shape_parameters_and_layout():
    net = context_aggregation_net()
    width, dilations = 24, (1, 2, 4, 8, 16, 1)
    convs = (3 * width * 9 + width) + (len(dilations) - 1) * (width * width * 9 + width)
    abn = len(dilations) * (2 + 2 * width)  # a, b and the BatchNorm's affine weights
    assert sum(p.numel() for p in net.parameters()) == convs + abn + width * 3 + 3 == 27087
    assert [n for n, _ in net.named_children()][:3] == ["conv1", "abn1", "lrelu1"]
    assert list(net.named_children())[-1][0] == "score"
    assert net(torch.zeros(2, 3, 17, 23)).shape == (2, 3, 17, 23)


def test_receptive_field_is_65_by_gradients():
    torch.manual_seed(0)
    net = context_aggregation_net().eval()
    x = torch.randn(1, 3, 97, 97, requires_grad=True)
    net(x)[0, :, 48, 48].sum().backward()
    y0, x0, y1, x1 = support_box(x.grad[0].abs().sum(0))
    assert (y1 - y0, x1 - x0) == (65, 65)  # 1 + 2 (1 + 2 + 4 + 8 + 16 + 1)


def test_builder_errors():
    with pytest.raises(TypeError, match="dilations must be a sequence of ints"):
        context_aggregation_net(dilations=2)
    with pytest.raises(TypeError, match="dilations must be a sequence of ints"):
        context_aggregation_net(dilations="124")
    with pytest.raises(ValueError, match="dilations is empty"):
        context_aggregation_net(dilations=())
    with pytest.raises(ValueError, match=r"dilations\[1\] must be an int >= 1, got 0"):
        context_aggregation_net(dilations=(1, 0))
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        context_aggregation_net(width=0)
    with pytest.raises(TypeError):
        context_aggregation_net(24)  # keyword-only
