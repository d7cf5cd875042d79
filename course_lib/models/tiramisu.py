"""The One Hundred Layers Tiramisu (FC-DenseNet): dense blocks down and up (lecture 07).

A dense block (``DenseBlock``) stacks layers (BatchNorm, ReLU, 3x3 convolution giving
``growth`` channels) each of which reads the concatenation of the block's input and of every
earlier layer's output. Down the path (``down<b>``) a block's output keeps its input (``c_in
+ n growth`` channels) and is the skip of its level; a transition down (``td<b>``:
BatchNorm, ReLU, 1x1 convolution, 2x2 max pool) halves the resolution. After the
``bottleneck`` block, each transition up (``tu<b>``: a 3x3 transposed convolution, stride 2)
upsamples **only the new feature maps** of the block below (the paper's trick against the
quadratic growth of the channels), concatenates the skip, and a dense block follows. A 1x1
``head.score`` gives the scores.

Odd sides: pools round up (``ceil_mode``), so the transposed convolution (padding 1) can be
sized to the skip, ``2 h - 1`` or ``2 h``, and the output has the input's size.

References
----------
- S. Jegou, M. Drozdzal, D. Vazquez, A. Romero, Y. Bengio, "The One Hundred Layers
  Tiramisu: Fully Convolutional DenseNets for Semantic Segmentation", CVPR Workshops 2017.
  https://arxiv.org/abs/1611.09326
- G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely Connected Convolutional
  Networks", CVPR 2017.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from course_lib._checks import check_int, check_num_classes, type_name

__all__ = ["DenseBlock", "Tiramisu", "tiramisu"]


class DenseBlock(nn.Module):
    """``layers`` dense layers (``layer<i>``: BatchNorm, ReLU, 3x3 conv to ``growth``).

    ``forward``: ``(N, c_in, H, W) -> (N, c_in + layers growth, H, W)`` with
    ``keep_input=True`` (down the path), else ``(N, layers growth, H, W)``: the new maps only.
    """

    def __init__(self, c_in: int, growth: int, layers: int, *, keep_input: bool):
        super().__init__()
        self.keep_input = keep_input
        for i in range(layers):
            setattr(self, f"layer{i + 1}", nn.Sequential(OrderedDict([
                ("bn", nn.BatchNorm2d(c_in + i * growth)), ("relu", nn.ReLU()),
                ("conv", nn.Conv2d(c_in + i * growth, growth, 3, padding=1))])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = []
        for layer in self.children():
            new.append(layer(torch.cat([x, *new], dim=1)))  # (N, c_in + i growth, H, W)
        return torch.cat([x, *new] if self.keep_input else new, dim=1)


def _transition_down(c: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("bn", nn.BatchNorm2d(c)), ("relu", nn.ReLU()),
                                      ("conv", nn.Conv2d(c, c, 1)),
                                      ("pool", nn.MaxPool2d(2, ceil_mode=True))]))


class Tiramisu(nn.Module):
    """The assembled FC-DenseNet: ``stem``, ``down<b>`` / ``td<b>``, ``bottleneck``,
    ``tu<b>`` / ``up<b>``, ``head``.

    Notes
    -----
    ``forward``: ``x (N, C_in, H, W) -> (N, num_classes, H, W)``.
    """

    def __init__(self, modules: OrderedDict, levels: int):
        super().__init__()
        self.levels = levels
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.stem(x), []
        for b in range(1, self.levels + 1):
            x = getattr(self, f"down{b}")(x)  # (N, c + n growth, H_b, W_b)
            skips.append(x)
            x = getattr(self, f"td{b}")(x)  # (N, ., ceil(H_b / 2), ceil(W_b / 2))
        x = self.bottleneck(x)  # the new maps only
        for b in reversed(range(1, self.levels + 1)):
            skip = skips.pop()
            x = getattr(self, f"tu{b}")(x, output_size=skip.shape[-2:])  # (N, ., H_b, W_b)
            x = getattr(self, f"up{b}")(torch.cat([x, skip], dim=1))
        return self.head(x)  # (N, num_classes, H, W)


def _tiramisu(*, num_classes: int, in_channels: int, stem: int, growth: int,
              blocks: Sequence[int], bottleneck: int) -> Tiramisu:
    """The one assembler behind :func:`tiramisu`."""
    modules = OrderedDict([("stem", nn.Conv2d(in_channels, stem, 3, padding=1))])
    c, skip_channels = stem, []
    for b, n in enumerate(blocks, start=1):
        modules[f"down{b}"] = DenseBlock(c, growth, n, keep_input=True)
        c += n * growth
        skip_channels.append(c)
        modules[f"td{b}"] = _transition_down(c)
    modules["bottleneck"] = DenseBlock(c, growth, bottleneck, keep_input=False)
    new = bottleneck * growth
    for b in reversed(range(1, len(blocks) + 1)):
        n, last = blocks[b - 1], b == 1
        modules[f"tu{b}"] = nn.ConvTranspose2d(new, new, 3, stride=2, padding=1)
        # the last block keeps its input, as in the paper: the head sees every map
        modules[f"up{b}"] = DenseBlock(new + skip_channels[b - 1], growth, n, keep_input=last)
        new = n * growth + (new + skip_channels[b - 1] if last else 0)
    modules["head"] = nn.Sequential(OrderedDict([("score", nn.Conv2d(new, num_classes, 1))]))
    return Tiramisu(modules, len(blocks))


def tiramisu(*, num_classes: int = 4, in_channels: int = 3, stem: int = 16, growth: int = 8,
             blocks: Sequence[int] = (3, 3, 3), bottleneck: int = 3) -> Tiramisu:
    """FC-DenseNet (Jegou et al. 2017), small: ``blocks`` dense layers per level.

    The paper's FC-DenseNet103 is ``stem=48, growth=16, blocks=(4, 5, 7, 10, 12),
    bottleneck=15`` (with dropout 0.2, left out here: the short course runs do not overfit).

    Parameters
    ----------
    num_classes : int
        Classes, background included (``>= 2``).
    in_channels : int
        Image channels (``>= 1``).
    stem : int
        Channels of the first 3x3 convolution (``>= 1``).
    growth : int
        Channels each dense layer adds (``>= 1``).
    blocks : sequence of int
        Dense layers of each level's block, from the top (at least one level, each ``>= 1``);
        the up path mirrors them.
    bottleneck : int
        Dense layers at the bottom (``>= 1``).

    Returns
    -------
    Tiramisu
        ``(N, in_channels, H, W) -> (N, num_classes, H, W)``.

    Raises
    ------
    TypeError
        An int argument that is not an int, ``blocks`` not a list or tuple.
    ValueError
        ``num_classes < 2``, ``blocks`` empty, any other argument or block ``< 1``.

    Examples
    --------
    >>> net = tiramisu(stem=4, growth=2, blocks=(1, 2))
    >>> net(torch.zeros(1, 3, 37, 45)).shape
    torch.Size([1, 4, 37, 45])
    >>> net.up2.layer1.conv  # the bottleneck's 3 x 2 new maps, upsampled, + the skip's 4 + 2 + 4
    Conv2d(16, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    """
    if not isinstance(blocks, (list, tuple)):
        raise TypeError(f"blocks must be a list or tuple of ints, got {blocks!r} "
                        f"({type_name(blocks)})")
    if not blocks:
        raise ValueError("blocks must hold at least one level, got an empty sequence")
    blocks = [check_int(f"blocks[{i}]", n, 1) for i, n in enumerate(blocks)]
    return _tiramisu(num_classes=check_num_classes(num_classes, 2),
                     in_channels=check_int("in_channels", in_channels, 1),
                     stem=check_int("stem", stem, 1), growth=check_int("growth", growth, 1),
                     blocks=blocks, bottleneck=check_int("bottleneck", bottleneck, 1))
