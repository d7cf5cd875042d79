"""Aligning feature maps: the affine coordinate map of a chain and Caffe's crop offsets.

References
----------
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015; crop offsets as in Caffe's ``python/caffe/coord_map.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from course_lib._checks import type_name
from course_lib.receptive_field.recurrence import Layer

__all__ = ["coord_map", "crop_offset", "layers_of"]


def layers_of(module: nn.Module) -> list[Layer]:
    """The convolutions and pools of ``module`` in registration order, as :class:`Layer`
    (height axis): the chain :func:`coord_map` and :func:`crop_offset` read.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.ConvTranspose2d(1, 1, 2, 2))
    >>> [(l.name, l.kernel_size, l.stride, l.transposed) for l in layers_of(net)]
    [('0', 3, 1, False), ('2', 2, 2, False), ('3', 2, 2, True)]
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type_name(module)}")
    first = (lambda v: v[0] if isinstance(v, tuple) else v)
    layers = []
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            layers.append(Layer(name, m.kernel_size[0], m.stride[0], m.padding[0],
                                m.dilation[0], transposed=isinstance(m, nn.ConvTranspose2d)))
        elif isinstance(m, nn.MaxPool2d):
            layers.append(Layer(name, first(m.kernel_size), first(m.stride), first(m.padding)))
    return layers


def coord_map(layers: Sequence[Layer]) -> tuple[float, float]:
    """Affine map ``(a, b)``: output pixel ``x`` of the chain has its centre at input ``a x + b``.

    Pixel centres are integers here (Caffe's ``coord_map.py`` convention), so for plain
    layers ``a = jump`` and ``b = start - 0.5``. A conv maps ``in = s out + (k'-1)/2 - p``;
    a transposed conv is its inverse, ``in = (out - (k'-1)/2 + p) / s``.
    """
    a, b = 1.0, 0.0
    for layer in layers:
        shift = (layer.effective_kernel - 1) / 2 - layer.padding
        if layer.transposed:
            a, b = a / layer.stride, b - a * shift / layer.stride
        else:
            a, b = a * layer.stride, b + a * shift
    return a, b


def crop_offset(cropped: Sequence[Layer], reference: Sequence[Layer], *,
                signed: bool = False) -> int:
    """Offset of a Caffe ``Crop`` that aligns ``cropped`` to ``reference``.

    Both chains start at the same blob (the image). Output pixel ``offset`` of ``cropped``
    lies over pixel 0 of ``reference``. FCN-32s: ``crop_offset(fcn32 + [upscore], [])`` = 19.

    ``signed=True`` also accepts an offset of 0 or below: ``-offset`` pixels must then be
    padded before ``cropped`` (networks with padded convolutions); by default, Caffe's
    ``Crop`` only, a negative offset is a ValueError.

    Examples
    --------
    >>> down, up = Layer("down", 4, 2, padding=1), Layer("up", 4, 2, padding=2, transposed=True)
    >>> crop_offset([down, up], [], signed=True)
    -1
    """
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool (True or False), got {signed!r} "
                        f"({type_name(signed)})")
    (a_c, b_c), (a_r, b_r) = coord_map(cropped), coord_map(reference)
    if not math.isclose(a_c, a_r):
        raise ValueError(f"scale mismatch: cropped chain has stride {a_c}, reference {a_r}; "
                         "crop only blobs of the same resolution")
    offset = (b_r - b_c) / a_c
    if signed and not math.isclose(offset, round(offset)):
        raise ValueError(f"crop offset must be an integer, got {offset}; align only chains "
                         "whose grids differ by whole pixels")
    if signed:
        return round(offset)
    if offset < 0 or not math.isclose(offset, round(offset)):
        raise ValueError(f"crop offset must be a non-negative integer, got {offset}; "
                         "pad the cropped branch more (FCN pads conv1_1 by 100)")
    return round(offset)
