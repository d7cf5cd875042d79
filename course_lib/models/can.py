"""The context aggregation network (CAN): dilated 3x3 convolutions at full resolution.

Chen, Xu and Koltun's network for fast image processing: 3x3 convolutions with dilations
1, 2, 4, ..., then 1, then a 1x1 convolution to the output channels; every 3x3 convolution is
followed by adaptive batch normalisation ``Psi(x) = a x + b BN(x)`` (two learned scalars per
layer, ``a = 1, b = 0`` at init) and a LeakyReLU(0.2). No stride and no pooling: the output
has the input's resolution, and the receptive field grows exponentially with depth
(``1 + 2 sum_l d_l``: 65 px for dilations 1, 2, 4, 8, 16, 1).

Dumont and Figliuzzi use it to filter an image before computing superpixels (lecture 10);
lecture 02 measures its receptive field.

References
----------
- Q. Chen, J. Xu, V. Koltun, "Fast Image Processing with Fully-Convolutional Networks",
  ICCV 2017. https://arxiv.org/abs/1709.00643
- F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
- T. Dumont, B. Figliuzzi, "Image segmentation by superpixels", internship report,
  MINES ParisTech (CMM).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from course_lib._checks import check_int, type_name

__all__ = ["AdaptiveBN", "context_aggregation_net"]


class AdaptiveBN(nn.Module):
    """Adaptive batch normalisation ``Psi(x) = a x + b BN(x)`` with scalars ``a``, ``b``.

    At init ``a = 1, b = 0``: the layer is the identity and training decides how much
    normalisation each layer wants. The BatchNorm's arguments are passed by keyword: the
    positional order of ``nn.BatchNorm2d`` is ``(num_features, eps, momentum)``, and passing
    ``(C, momentum, eps)`` silently swaps them.
    """

    def __init__(self, channels: int, momentum: float = 0.001) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.zeros(()))
        self.bn = nn.BatchNorm2d(channels, momentum=momentum, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x + self.b * self.bn(x)


def context_aggregation_net(*, width: int = 24, dilations: Sequence[int] = (1, 2, 4, 8, 16, 1),
                            in_channels: int = 3, out_channels: int = 3) -> nn.Sequential:
    """Build a context aggregation network (Chen, Xu & Koltun 2017).

    Parameters
    ----------
    width : int
        Channels of every 3x3 convolution (24 in the paper).
    dilations : sequence of int
        One 3x3 convolution per entry, with that dilation and padding (the size is kept).
    in_channels, out_channels : int
        Image channels in and out (3 and 3 to map an image to a filtered image).

    Returns
    -------
    torch.nn.Sequential
        Children ``conv1, abn1, lrelu1, ..., score`` (the last a 1x1 convolution);
        ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.

    Examples
    --------
    >>> net = context_aggregation_net()
    >>> net(torch.zeros(1, 3, 32, 32)).shape, sum(p.numel() for p in net.parameters())
    (torch.Size([1, 3, 32, 32]), 27087)
    """
    width = check_int("width", width, 1)
    in_channels = check_int("in_channels", in_channels, 1)
    out_channels = check_int("out_channels", out_channels, 1)
    if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence):
        raise TypeError(f"dilations must be a sequence of ints such as (1, 2, 4), got "
                        f"{type_name(dilations)}")
    if len(dilations) == 0:
        raise ValueError("dilations is empty: give at least one dilation, e.g. (1, 2, 4)")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = in_channels
    for i, d in enumerate(dilations, start=1):
        d = check_int(f"dilations[{i - 1}]", d, 1)
        layers[f"conv{i}"] = nn.Conv2d(channels, width, 3, padding=d, dilation=d)
        layers[f"abn{i}"] = AdaptiveBN(width)
        layers[f"lrelu{i}"] = nn.LeakyReLU(0.2)
        channels = width
    layers["score"] = nn.Conv2d(width, out_channels, 1)
    return nn.Sequential(layers)
