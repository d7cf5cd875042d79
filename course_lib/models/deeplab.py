"""DeepLabv3+, small: an atrous backbone, ASPP with image pooling, a light decoder (lecture 07).

The backbone (``backbone.stem``, ``.layer1`` .. ``.layer3``) reaches stride 4 (``layer1``,
the decoder's low-level features), then stride 8; with ``output_stride=8`` its last layer
keeps stride 8 and dilates its convolutions by 2 instead of striding (atrous convolution:
the field grows, the map does not shrink). ASPP (``aspp``) reads the last map in parallel
branches: a 1x1 convolution, one depthwise separable 3x3 convolution per atrous rate, and
image pooling (global average, 1x1 convolution, broadcast back), concatenated and projected
by a 1x1 convolution. The decoder (``decoder``) upsamples that 4x (bilinear, to the
low-level map's size), concatenates the low-level features reduced by a 1x1 convolution,
refines with two separable 3x3 convolutions, and ``head.score`` (1x1) gives the scores,
upsampled bilinearly to the input's size (odd sides included).

Scale: the paper's rates (6, 12, 18) at output stride 16 on 513 px crops (33 px maps)
reach about half the map; on 64 px images at output stride 8 (8 px maps) the default rates
(1, 2, 3) do the same. The image-pooling branch makes every output see the whole image.

References
----------
- L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff, H. Adam, "Encoder-Decoder with Atrous
  Separable Convolution for Semantic Image Segmentation", ECCV 2018.
  https://arxiv.org/abs/1802.02611
- L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous Convolution for
  Semantic Image Segmentation", arXiv 2017 (DeepLabv3, ASPP with image pooling).
  https://arxiv.org/abs/1706.05587
- F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib._checks import check_choice, check_int, check_num_classes, type_name

__all__ = ["DeepLabV3Plus", "ASPP", "separable_conv", "deeplabv3plus"]


def _conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, dilation: int = 1,
             groups: int = 1) -> list:
    pad = dilation * (k - 1) // 2
    return [nn.Conv2d(c_in, c_out, k, stride, pad, dilation, groups, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def separable_conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Sequential:
    """A depthwise separable 3x3 convolution: one 3x3 filter per channel (``depthwise``,
    dilated), then a 1x1 mix of the channels (``pointwise``); BatchNorm and ReLU after both.

    ``9 c_in + c_in c_out`` weights instead of ``9 c_in c_out``.

    Examples
    --------
    >>> conv = separable_conv(8, 16, dilation=2)
    >>> conv(torch.zeros(1, 8, 9, 9)).shape, conv.depthwise.groups
    (torch.Size([1, 16, 9, 9]), 8)
    """
    d_conv, d_bn, d_relu = _conv_bn(c_in, c_in, 3, dilation=dilation, groups=c_in)
    p_conv, p_bn, p_relu = _conv_bn(c_in, c_out, 1)
    return nn.Sequential(OrderedDict([("depthwise", d_conv), ("bn_depthwise", d_bn),
                                      ("relu_depthwise", d_relu), ("pointwise", p_conv),
                                      ("bn_pointwise", p_bn), ("relu_pointwise", p_relu)]))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel branches, concatenated, projected.

    ``forward``: ``(N, C_in, h, w) -> (N, C_out, h, w)``. Branches: ``conv1x1``,
    ``atrous<r>`` (separable, dilation r) for each rate, ``image_pool``.
    """

    def __init__(self, c_in: int, c_out: int, rates: Sequence[int]):
        super().__init__()
        branches = OrderedDict([("conv1x1", nn.Sequential(*_conv_bn(c_in, c_out, 1)))])
        for r in rates:
            branches[f"atrous{r}"] = separable_conv(c_in, c_out, r)
        self.branches = nn.ModuleDict(branches)
        self.image_pool = nn.Sequential(OrderedDict([
            ("pool", nn.AdaptiveAvgPool2d(1)), ("conv", nn.Conv2d(c_in, c_out, 1, bias=False)),
            ("bn", nn.BatchNorm2d(c_out)), ("relu", nn.ReLU(inplace=True))]))
        self.project = nn.Sequential(*_conv_bn(c_out * (len(rates) + 2), c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches.values()]  # each (N, C_out, h, w)
        pooled = self.image_pool(x)  # (N, C_out, 1, 1)
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))  # (N, C_out, h, w)
        return self.project(torch.cat(outs, dim=1))  # (N, C_out (R + 2), h, w) -> C_out


class DeepLabV3Plus(nn.Module):
    """The assembled network: ``backbone`` (stem, layer1 .. layer3), ``aspp``, ``decoder``
    (``reduce``, ``refine``), ``head``.

    Notes
    -----
    ``forward``: ``x (N, C_in, H, W) -> (N, num_classes, H, W)`` for ``H, W >= 4``.
    """

    def __init__(self, backbone: nn.Sequential, aspp: ASPP, decoder: nn.ModuleDict,
                 head: nn.Sequential):
        super().__init__()
        self.backbone, self.aspp, self.decoder, self.head = backbone, aspp, decoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.backbone.layer1(self.backbone.stem(x))  # (N, C_low, H/4, W/4)
        high = self.aspp(self.backbone.layer3(self.backbone.layer2(low)))  # (N, C, H/os, .)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        h = torch.cat([self.decoder.reduce(low), high], dim=1)  # (N, C_red + C, H/4, W/4)
        scores = self.head(self.decoder.refine(h))  # (N, num_classes, H/4, W/4)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _deeplab(*, num_classes: int, in_channels: int, width: int, output_stride: int,
             rates: Sequence[int]) -> DeepLabV3Plus:
    """The one assembler behind :func:`deeplabv3plus`."""
    w = width
    last_stride, last_dilation = (1, 2) if output_stride == 8 else (2, 1)
    backbone = nn.Sequential(OrderedDict([
        ("stem", nn.Sequential(*_conv_bn(in_channels, w, stride=2), *_conv_bn(w, w))),
        ("layer1", nn.Sequential(*_conv_bn(w, 2 * w, stride=2), *_conv_bn(2 * w, 2 * w))),
        ("layer2", nn.Sequential(*_conv_bn(2 * w, 4 * w, stride=2), *_conv_bn(4 * w, 4 * w))),
        ("layer3", nn.Sequential(*_conv_bn(4 * w, 8 * w, stride=last_stride,
                                           dilation=last_dilation),
                                 *_conv_bn(8 * w, 8 * w, dilation=last_dilation)))]))
    aspp = ASPP(8 * w, 4 * w, rates)
    reduce = w // 2 or 1  # the paper reduces 256 low-level channels to 48: a few
    decoder = nn.ModuleDict(OrderedDict([
        ("reduce", nn.Sequential(*_conv_bn(2 * w, reduce, 1))),
        ("refine", nn.Sequential(OrderedDict([("sep1", separable_conv(4 * w + reduce, 4 * w)),
                                              ("sep2", separable_conv(4 * w, 4 * w))])))]))
    head = nn.Sequential(OrderedDict([("score", nn.Conv2d(4 * w, num_classes, 1))]))
    return DeepLabV3Plus(backbone, aspp, decoder, head)


def deeplabv3plus(*, num_classes: int = 4, in_channels: int = 3, width: int = 16,
                  output_stride: int = 8, atrous_rates: Sequence[int] = (1, 2, 3)
                  ) -> DeepLabV3Plus:
    """DeepLabv3+ (Chen et al. 2018) on a small atrous backbone.

    Backbone widths ``width x (1, 2, 4, 8)`` (stem, layer1 .. layer3, two 3x3 convolutions
    each, BatchNorm, ReLU); ASPP and decoder ``4 width`` channels; low-level features
    reduced to ``width // 2``.

    Parameters
    ----------
    num_classes : int
        Classes, background included (``>= 2``).
    in_channels : int
        Image channels (``>= 1``).
    width : int
        Channels of the stem (``>= 1``).
    output_stride : {8, 16}
        Stride of the map ASPP reads: 8 dilates ``layer3`` by 2, 16 strides it.
    atrous_rates : sequence of int
        Dilation of each separable ASPP branch (each ``>= 1``, at least one).

    Returns
    -------
    DeepLabV3Plus
        ``(N, in_channels, H, W) -> (N, num_classes, H, W)``.

    Raises
    ------
    TypeError
        An int argument that is not an int, ``atrous_rates`` not a list or tuple.
    ValueError
        ``num_classes < 2``, ``in_channels`` or ``width < 1``, ``output_stride`` not 8 or
        16, ``atrous_rates`` empty, repeated or with a rate ``< 1``.

    Examples
    --------
    >>> net = deeplabv3plus(width=4).eval()
    >>> net(torch.zeros(1, 3, 37, 45)).shape
    torch.Size([1, 4, 37, 45])
    >>> list(net.aspp.branches)
    ['conv1x1', 'atrous1', 'atrous2', 'atrous3']
    """
    if not isinstance(atrous_rates, (list, tuple)):
        raise TypeError(f"atrous_rates must be a list or tuple of ints, got {atrous_rates!r} "
                        f"({type_name(atrous_rates)})")
    if not atrous_rates:
        raise ValueError("atrous_rates must hold at least one rate, got an empty sequence")
    rates = [check_int(f"atrous_rates[{i}]", r, 1) for i, r in enumerate(atrous_rates)]
    if len(set(rates)) < len(rates):
        raise ValueError(f"atrous_rates must be distinct (one branch per rate), got {rates}")
    return _deeplab(num_classes=check_num_classes(num_classes, 2),
                    in_channels=check_int("in_channels", in_channels, 1),
                    width=check_int("width", width, 1),
                    output_stride=check_choice("output_stride",
                                               check_int("output_stride", output_stride),
                                               (8, 16)),
                    rates=rates)
