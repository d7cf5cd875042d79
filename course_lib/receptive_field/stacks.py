"""Layer lists: the stacks the lectures study, a text grammar for them, and real modules.

- Builders: :func:`stacked_3x3` (field ``2n + 1``), :func:`vgg_like` (6 blocks of two convs
  reach 284 px), :func:`vgg16_layers`, :func:`dilated_stack` (the context aggregation net).
- :func:`parse_layers` reads ``"conv3, conv3, pool2, conv3 d2"``.
- :func:`build_module` turns layers into an ``nn.Sequential`` of all-ones convolutions whose
  input gradient shows the field, an independent check of the recurrence.

References
----------
- K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015 (VGG16).
- F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
- Q. Chen, J. Xu, V. Koltun, "Fast Image Processing with Fully-Convolutional Networks",
  ICCV 2017 (the context aggregation network).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from torch import nn

from course_lib._checks import check_int, type_name
from course_lib.receptive_field.recurrence import Layer

__all__ = ["stacked_3x3", "layers_for_field", "vgg_like", "dilated_stack", "vgg16_layers",
           "is_pool",
           "parse_layers", "build_module"]

_TOKEN = re.compile(r"(conv|pool)(\d+)((?:\s+[spd]\d+)*)")
_OPTION = re.compile(r"([spd])(\d+)")


def stacked_3x3(n: int) -> list[Layer]:
    """``n`` stride-1, padding-1 3x3 convolutions: their field is ``2n + 1``."""
    n = check_int("n", n, 1)
    return [Layer(f"conv{i + 1}", 3, padding=1) for i in range(n)]


def layers_for_field(target: int, kernel: int = 3) -> int:
    """Smallest number of stride-1 ``kernel`` convs whose field reaches ``target`` (99 -> 49)."""
    target = check_int("target", target, 1)
    kernel = check_int("kernel (a 1x1 conv never grows the field)", kernel, 2)
    return math.ceil((target - 1) / (kernel - 1))


def vgg_like(blocks: int, convs_per_block: int = 2) -> list[Layer]:
    """Blocks of 3x3 convs with a 2x2/2 max-pool between blocks (6 blocks of 2 -> 284).

    Layers are named ``block<b>.conv<c>`` and ``block<b>.pool``, not VGG16's ``conv<b>_<c>`` /
    ``pool<b>``: this stack is not VGG16 (its ``block5.pool`` sees 156 px, VGG16's pool5 212).

    Examples
    --------
    >>> [layer.name for layer in vgg_like(2)]
    ['block1.conv1', 'block1.conv2', 'block1.pool', 'block2.conv1', 'block2.conv2']
    """
    blocks = check_int("blocks", blocks, 1)
    convs_per_block = check_int("convs_per_block", convs_per_block, 1)
    layers = []
    for b in range(1, blocks + 1):
        layers += [Layer(f"block{b}.conv{c}", 3, padding=1)
                   for c in range(1, convs_per_block + 1)]
        if b < blocks:
            layers.append(Layer(f"block{b}.pool", 2, stride=2))
    return layers


def dilated_stack(dilations: Sequence[int] = (1, 2, 4, 8, 16, 1)) -> list[Layer]:
    """Context aggregation net: 3x3 convs with ``dilations`` then a 1x1 conv (field 65)."""
    layers = [Layer(f"conv{i + 1}", 3, padding=d, dilation=d) for i, d in enumerate(dilations)]
    return [*layers, Layer("conv_1x1", 1)]


def vgg16_layers(first_padding: int = 1) -> list[Layer]:
    """VGG16 conv1_1 .. pool5; FCN's Caffe nets use ``first_padding=100``."""
    layers = []
    for b, n in enumerate((2, 2, 3, 3, 3), start=1):
        layers += [Layer(f"conv{b}_{c}", 3, padding=first_padding if b == c == 1 else 1)
                   for c in range(1, n + 1)]
        layers.append(Layer(f"pool{b}", 2, stride=2))
    return layers


def parse_layers(spec: str) -> list[Layer]:
    """Parse a comma-separated layer spec.

    Each item is ``conv<k>`` or ``pool<k>`` followed by optional ``s<stride>``,
    ``p<padding>``, ``d<dilation>`` (any order, separated by spaces). Defaults: a conv has
    stride 1 and "same" padding ``d(k-1)//2``; a pool has stride ``k`` and padding 0.

    Parameters
    ----------
    spec : str
        e.g. ``"conv3, conv3, pool2, conv3 d2"``.

    Returns
    -------
    list of Layer
        Named ``"1:conv3"``, ``"2:conv3"``, ... (position and the item as written).

    Raises
    ------
    TypeError
        If ``spec`` is not a string.
    ValueError
        If it is empty, an item does not match the grammar, or an option repeats.

    Examples
    --------
    >>> [(x.kernel_size, x.stride, x.padding, x.dilation) for x in parse_layers("conv3 d2, pool2")]
    [(3, 1, 2, 2), (2, 2, 0, 1)]
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string such as 'conv3, pool2', got {type_name(spec)}")
    items = [item.strip().lower() for item in spec.split(",")]
    if not any(items):
        raise ValueError("spec is empty: give at least one layer, e.g. 'conv3, pool2'")
    layers = []
    for pos, item in enumerate(items, start=1):
        match = _TOKEN.fullmatch(item)
        if match is None:
            raise ValueError(f"layer {pos} {item!r} is not understood: write conv<k> or pool<k>, "
                             "then optional s<stride> p<padding> d<dilation>, e.g. 'conv3 s2 d2'")
        kind, k = match.group(1), int(match.group(2))
        opts: dict[str, int] = {}
        for key, value in _OPTION.findall(match.group(3)):
            if key in opts:
                raise ValueError(f"layer {pos} {item!r} gives option {key!r} twice")
            opts[key] = int(value)
        d = opts.get("d", 1)
        if kind == "conv":
            s, p = opts.get("s", 1), opts.get("p", d * (k - 1) // 2)
        else:
            s, p = opts.get("s", k), opts.get("p", 0)
        layers.append(Layer(f"{pos}:{' '.join(item.split())}", k, s, p, d))
    return layers


def is_pool(layer: Layer) -> bool:
    """Whether a layer's name marks a pooling: its last component starts with ``"pool"``.

    Components are separated by ``":"`` (:func:`parse_layers`: ``"3:pool2"``) or ``"."``
    (:func:`vgg_like`: ``"block1.pool"``); VGG16's ``"pool1"`` is one component.

    Examples
    --------
    >>> [is_pool(Layer(n, 2, 2)) for n in ("pool1", "3:pool2", "block1.pool", "block1.conv1")]
    [True, True, True, False]
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a Layer, got {type_name(layer)}")
    return re.split(r"[:.]", layer.name)[-1].startswith("pool")


def build_module(layers: Sequence[Layer], channels: int = 1) -> nn.Sequential:
    """A real module with the geometry of ``layers``: ``Conv2d`` with all-ones weights, no
    bias, and ``AvgPool2d`` for pools (every input of a window gets a gradient).

    The input gradient of one output unit is then positive exactly on its receptive field
    (clipped to the image), which checks the recurrence on a real module.

    Parameters
    ----------
    layers : sequence of Layer
        Layers whose name says pool (:func:`is_pool`) become pools.
    channels : int
        Input and output channels of every conv.

    Returns
    -------
    nn.Sequential
        Maps ``(N, channels, H, W)`` to ``(N, channels, H_out, W_out)``.
    """
    channels = check_int("channels", channels, 1)
    mods = []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must hold Layer objects, got {type_name(layer)}")
        if is_pool(layer):
            if layer.dilation != 1:
                raise ValueError(f"Layer {layer.name!r}: a pool cannot be dilated here "
                                 "(AvgPool2d has no dilation)")
            mods.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding))
        else:
            conv = nn.Conv2d(channels, channels, layer.kernel_size, layer.stride, layer.padding,
                             layer.dilation, bias=False)
            nn.init.ones_(conv.weight)
            mods.append(conv)
    return nn.Sequential(*mods)
