"""SegNet: an encoder that keeps its pooling indices, a decoder that unpools with them (lecture 07).

The encoder is a VGG-style stack (``encoder.block<b>``: 3x3 convolutions, BatchNorm, ReLU,
then a 2x2 max pool that returns the argmax of each window). The decoder mirrors it
(``decoder.block<b>``): ``nn.MaxUnpool2d`` puts each value back where the encoder's maximum
was (zeros elsewhere, a sparse map: the "bed of nails" at the remembered places), then 3x3
convolutions densify it. No feature map is copied across, only the indices: the memory of a
skip is one integer per pooled value. A 1x1 ``head.score`` gives the class scores.

Odd sides work: each unpooling is sized to the map its pool received, so the output has the
input's size.

References
----------
- V. Badrinarayanan, A. Kendall, R. Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
  Architecture for Image Segmentation", TPAMI 2017. https://arxiv.org/abs/1511.00561
- M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks", ECCV
  2014 (unpooling with switches).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from course_lib._checks import check_int, check_num_classes

__all__ = ["SegNet", "segnet"]


def _convs(c_in: int, c_out: int, count: int, prefix: str) -> OrderedDict:
    """``count`` 3x3 convolutions (padding 1), each with BatchNorm and ReLU."""
    layers = OrderedDict()
    for i in range(1, count + 1):
        layers[f"conv{prefix}_{i}"] = nn.Conv2d(c_in if i == 1 else c_out, c_out, 3,
                                                padding=1, bias=False)
        layers[f"bn{prefix}_{i}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{prefix}_{i}"] = nn.ReLU(inplace=True)
    return layers


class SegNet(nn.Module):
    """The assembled SegNet: ``encoder`` blocks (convs, then ``pool``), ``decoder`` blocks
    (``unpool``, then convs), ``head``.

    Notes
    -----
    ``forward``: ``x (N, C_in, H, W) -> (N, num_classes, H, W)`` for ``H, W >= 2^depth``.
    """

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.encoder, self.decoder, self.head = encoder, decoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        switches = []
        for block in self.encoder:
            for name, layer in block.named_children():
                if name == "pool":
                    size = x.shape[-2:]  # the size unpooling must restore
                    x, indices = layer(x)  # (N, C, H/2, W/2), the argmax of every window
                    switches.append((indices, size))
                else:
                    x = layer(x)
        for block in self.decoder:
            indices, size = switches.pop()
            for name, layer in block.named_children():
                # unpool: (N, C, H/2, W/2) -> (N, C, H, W), zero but at the argmax places
                x = layer(x, indices, output_size=size) if name == "unpool" else layer(x)
        return self.head(x)  # (N, num_classes, H, W)


def _segnet(*, num_classes: int, in_channels: int, width: int, depth: int,
            convs: int) -> SegNet:
    """The one assembler behind :func:`segnet`."""
    widths = [width * 2 ** min(b, 3) for b in range(depth)]  # VGG: 64 .. 512, capped at 8x
    encoder, c_in = OrderedDict(), in_channels
    for b, c_out in enumerate(widths, start=1):
        layers = _convs(c_in, c_out, convs, f"{b}")
        layers["pool"] = nn.MaxPool2d(2, 2, return_indices=True)
        encoder[f"block{b}"] = nn.Sequential(layers)
        c_in = c_out
    decoder = OrderedDict()
    for b in reversed(range(1, depth + 1)):  # the mirror: block b unpools pool b
        c_out = widths[b - 2] if b > 1 else width
        layers = OrderedDict([("unpool", nn.MaxUnpool2d(2, 2))])
        layers.update(_convs(widths[b - 1], c_out, convs, f"{b}d"))
        decoder[f"block{b}"] = nn.Sequential(layers)
    head = nn.Sequential(OrderedDict([("score", nn.Conv2d(width, num_classes, 1))]))
    return SegNet(nn.Sequential(encoder), nn.Sequential(decoder), head)


def segnet(*, num_classes: int = 4, in_channels: int = 3, width: int = 16, depth: int = 4,
           convs: int = 2) -> SegNet:
    """SegNet (Badrinarayanan et al. 2017): max unpooling with the encoder's indices.

    Block ``b`` has ``width 2^min(b-1, 3)`` channels and ``convs`` 3x3 convolutions; the
    paper's encoder is VGG16's (``width=64, depth=5``, 2-2-3-3-3 convolutions).

    Parameters
    ----------
    num_classes : int
        Classes, background included (``>= 2``).
    in_channels : int
        Image channels (``>= 1``).
    width : int
        Channels of the first block (``>= 1``).
    depth : int
        Encoder blocks, each closed by a 2x2 pool (``>= 1``).
    convs : int
        3x3 convolutions per block (``>= 1``).

    Returns
    -------
    SegNet
        ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` for ``H, W >= 2^depth``.

    Raises
    ------
    TypeError
        An argument that is not an int.
    ValueError
        ``num_classes < 2``, or another argument ``< 1``.

    Examples
    --------
    >>> net = segnet(width=4, depth=3)
    >>> net(torch.zeros(1, 3, 37, 45)).shape
    torch.Size([1, 4, 37, 45])
    >>> net.decoder.block3.unpool
    MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    """
    return _segnet(num_classes=check_num_classes(num_classes, 2),
                   in_channels=check_int("in_channels", in_channels, 1),
                   width=check_int("width", width, 1), depth=check_int("depth", depth, 1),
                   convs=check_int("convs", convs, 1))
