"""U-Net: a contracting path, an expanding path and concatenated skips (lecture 07).

Each level of the contracting path (``encoder.level<l>``) is two 3x3 convolutions (BatchNorm,
ReLU), the levels below the first open with a 2x2 max pool, and the width doubles per level.
Each up block of the expanding path (``decoder.up<l>``) doubles the resolution with a 2x2
transposed convolution (stride 2) that halves the width, aligns the skip of level ``l`` to
it, concatenates the two along the channels and applies two 3x3 convolutions. A 1x1
``head.score`` gives the class scores.

Padded (the default): every 3x3 convolution is padded by 1, the transposed convolution is
sized to the skip (``output_size``; a pooled odd side ``2 h + 1`` comes back as ``2 h + 1``),
and the output has the input's size. Unpadded (``padded=False``, the paper's layout): every
convolution loses 2 px, the skip is cropped to the upsampled map ("copy and crop") by
offsets derived from the layers' coordinate maps with
:func:`course_lib.receptive_field.crop_offset` (never typed in; 4, 16, 40, 88 for depth 4),
and the output is the centre of the input: the paper's 572 px tile gives 388 px.

References
----------
- O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
  Segmentation", MICCAI 2015. https://arxiv.org/abs/1505.04597
- S. Ioffe, C. Szegedy, "Batch Normalization", ICML 2015 (added here; the paper has none).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from course_lib._checks import check_int, check_num_classes, type_name
from course_lib.models.fcn import Crop
from course_lib.receptive_field.align import crop_offset, layers_of

__all__ = ["UNet", "UpBlock", "unet"]


def _double_conv(c_in: int, c_out: int, padding: int) -> OrderedDict:
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU (named ``conv1`` ..)."""
    layers = OrderedDict()
    for i, c in enumerate((c_in, c_out), start=1):
        layers[f"conv{i}"] = nn.Conv2d(c, c_out, 3, padding=padding, bias=False)
        layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
    return layers


class UpBlock(nn.Module):
    """One step of the expanding path: upsample, align the skip, concatenate, convolve.

    ``forward(x, skip)``: ``x (N, C_in, h, w)``, ``skip (N, C_in / 2, H, W)`` ->
    ``(N, C_out, ...)``. Padded: the upsampled map is sized to the skip (``H = 2 h`` or
    ``2 h + 1``). Unpadded: the skip is cropped by ``crop.offset`` onto the ``2h x 2w``
    upsampled map.
    """

    def __init__(self, c_in: int, c_out: int, *, offset: int | None, padding: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2)
        self.crop = None if offset is None else Crop(offset)
        self.convs = nn.Sequential(_double_conv(c_in // 2 * 2, c_out, padding))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.crop is None:
            x = self.up(x, output_size=skip.shape[-2:])  # (N, C/2, H, W)
        else:
            x = self.up(x)  # (N, C/2, 2h, 2w)
            skip = self.crop(skip, x)  # (N, C/2, 2h, 2w): copy and crop
        return self.convs(torch.cat([skip, x], dim=1))  # (N, C, ., .) -> (N, C_out, ., .)


class UNet(nn.Module):
    """The assembled U-Net: ``encoder`` (levels), ``decoder`` (up blocks), ``head``.

    Attributes
    ----------
    crops : dict of str to int
        Unpadded only: each up block's name and the offset its skip is cropped by.
    margin : int
        Input pixels lost on each side: 0 padded; 92 for the paper's depth 4. Output
        pixel ``i`` sits over input pixel ``i + margin``.

    Notes
    -----
    ``forward``: ``x (N, C_in, H, W) -> (N, num_classes, H - 2 margin, W - 2 margin)``.
    """

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, head: nn.Sequential,
                 *, crops: dict, margin: int):
        super().__init__()
        self.encoder, self.decoder, self.head = encoder, decoder, head
        self.crops, self.margin = crops, margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)  # levels 0 .. depth, strides 1 .. 2^depth
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)  # (N, num_classes, H - 2 margin, W - 2 margin)


def _unet(*, num_classes: int, in_channels: int, width: int, depth: int,
          padded: bool) -> UNet:
    """The one assembler behind :func:`unet`; offsets from the layers' coordinate maps."""
    pad = 1 if padded else 0
    widths = [width * 2**level for level in range(depth + 1)]
    levels, c_in = OrderedDict(), in_channels
    for level, c_out in enumerate(widths):
        layers = OrderedDict([("pool", nn.MaxPool2d(2))]) if level else OrderedDict()
        layers.update(_double_conv(c_in, c_out, pad))
        levels[f"level{level}"] = nn.Sequential(layers)
        c_in = c_out
    encoder = nn.Sequential(levels)
    chain = layers_of(encoder)  # the image to the bottom of the U
    blocks, crops = OrderedDict(), {}
    for level in reversed(range(depth)):
        name = f"up{level}"
        up = UpBlock(widths[level + 1], widths[level], offset=None, padding=pad)
        if not padded:  # the skip of level l is cropped onto the upsampled map
            crops[name] = crop_offset(layers_of(encoder[:level + 1]), [*chain, *layers_of(
                up.up)])
            up.crop = Crop(crops[name])
        blocks[name] = up
        chain = [*chain, *layers_of(up.up), *layers_of(up.convs)]
    head = nn.Sequential(OrderedDict([("score", nn.Conv2d(widths[0], num_classes, 1))]))
    margin = crop_offset([], chain, signed=True)  # input pixel under output pixel 0
    return UNet(encoder, nn.Sequential(blocks), head, crops=crops, margin=margin)


def unet(*, num_classes: int = 4, in_channels: int = 3, width: int = 16, depth: int = 4,
         padded: bool = True) -> UNet:
    """U-Net (Ronneberger et al. 2015) with BatchNorm, padded by default.

    Level ``l`` has ``width 2^l`` channels (``l = 0 .. depth``, the bottom of the U at
    stride ``2^depth``); the paper's net is ``width=64, depth=4, padded=False``.

    Parameters
    ----------
    num_classes : int
        Classes, background included (``>= 2``).
    in_channels : int
        Image channels (``>= 1``).
    width : int
        Channels of the first level (``>= 1``).
    depth : int
        Number of poolings (``>= 1``).
    padded : bool
        True: output of the input's size, any ``H, W >= 2^depth``. False: the paper's
        unpadded convolutions and derived crops; the output is the input less
        ``model.margin`` px per side. It needs an input of at least 188 px for depth 4
        (a 4 px output), with sides that every pool halves exactly (such as 572) for the
        crops to align pixel for pixel.

    Returns
    -------
    UNet
        ``(N, in_channels, H, W) -> (N, num_classes, H - 2 margin, W - 2 margin)``.

    Raises
    ------
    TypeError
        An int argument that is not an int, ``padded`` not a bool.
    ValueError
        ``num_classes < 2``, ``in_channels``, ``width`` or ``depth < 1``.

    Examples
    --------
    >>> net = unet(width=4, depth=2)
    >>> net(torch.zeros(1, 3, 37, 45)).shape
    torch.Size([1, 4, 37, 45])
    >>> paper = unet(width=2, depth=4, padded=False)
    >>> paper.crops, paper.margin
    ({'up3': 4, 'up2': 16, 'up1': 40, 'up0': 88}, 92)
    >>> paper(torch.zeros(1, 3, 572, 572)).shape
    torch.Size([1, 4, 388, 388])
    """
    if not isinstance(padded, bool):
        raise TypeError(f"padded must be a bool (True or False), got {padded!r} "
                        f"({type_name(padded)})")
    return _unet(num_classes=check_num_classes(num_classes, 2),
                 in_channels=check_int("in_channels", in_channels, 1),
                 width=check_int("width", width, 1), depth=check_int("depth", depth, 1),
                 padded=padded)
