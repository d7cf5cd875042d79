"""Receptive fields: the recurrence over layer specs, measured on a real module, effective RF.

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
- W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective Receptive Field in Deep
  Convolutional Neural Networks", NeurIPS 2016. https://arxiv.org/abs/1701.04128
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015; crop offsets as in Caffe's ``python/caffe/coord_map.py``.
- F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Layer", "RFInfo", "receptive_field", "extend", "closed_form_size", "stacked_3x3",
           "layers_for_field", "vgg_like", "dilated_stack", "vgg16_layers", "receptive_field_of",
           "effective_receptive_field", "support_box", "coord_map", "crop_offset"]


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer along one spatial axis.

    ``transposed=True`` marks a transposed convolution: it has no receptive-field recurrence
    (:func:`receptive_field` rejects it) but :func:`coord_map` inverts it (Caffe convention).
    """

    name: str
    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    transposed: bool = False

    def __post_init__(self):
        for arg, low in (("kernel_size", 1), ("stride", 1), ("dilation", 1), ("padding", 0)):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Layer {self.name!r}: {arg} must be an int >= {low}, "
                                 f"got {value!r}")

    @property
    def effective_kernel(self) -> int:
        """Dilated kernel extent ``k' = d(k-1) + 1``."""
        return self.dilation * (self.kernel_size - 1) + 1


@dataclass(frozen=True)
class RFInfo:
    """Receptive field after one layer, in input pixels.

    ``size`` r is the field side, ``jump`` j the input distance between adjacent outputs,
    ``start`` the centre of output pixel 0 in input coordinates (input pixel i spans
    [i, i+1], so its centre is i + 0.5), ``output_size`` the feature-map side (or None).
    """

    name: str
    size: int
    jump: int
    start: float
    output_size: int | None = None


_INITIAL = RFInfo("input", 1, 1, 0.5)


def receptive_field(layers: Sequence[Layer], input_size: int | None = None, *,
                    initial: RFInfo | None = None) -> list[RFInfo]:
    """Apply the Araujo et al. recurrence layer by layer.

    ``j_out = j_in s``, ``r_out = r_in + (k'-1) j_in``, ``start_out = start_in +
    ((k'-1)/2 - p) j_in`` from ``r_0 = 1, j_0 = 1, start_0 = 0.5``.

    Parameters
    ----------
    layers : sequence of Layer
        Convolutions and poolings in execution order (not transposed).
    input_size : int, optional
        Input side n; then each row also holds ``floor((n + 2p - k')/s) + 1``.
    initial : RFInfo, optional
        State to continue from (the last row of an earlier call); default the input pixel.

    Returns
    -------
    list of RFInfo
        One row per layer.
    """
    state = _INITIAL if initial is None else initial
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be a positive int or None, got {input_size!r}")
        state = dataclasses.replace(state, output_size=input_size)
    rows = []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must hold Layer objects, got {type(layer).__name__}")
        if layer.transposed:
            raise ValueError(f"Layer {layer.name!r} is transposed: the receptive-field "
                             "recurrence covers convolutions and poolings only; use coord_map")
        k, n = layer.effective_kernel, state.output_size
        if n is not None:
            n = (n + 2 * layer.padding - k) // layer.stride + 1
            if n < 1:
                raise ValueError(f"Layer {layer.name!r} (k'={k}, p={layer.padding}) needs an input "
                                 f"of at least {k - 2 * layer.padding}, got {state.output_size}; "
                                 "use a larger input_size")
        state = RFInfo(layer.name, state.size + (k - 1) * state.jump, state.jump * layer.stride,
                       state.start + ((k - 1) / 2 - layer.padding) * state.jump, n)
        rows.append(state)
    return rows


def extend(rows: Sequence[RFInfo], more: Sequence[Layer]) -> list[RFInfo]:
    """Continue ``rows`` (e.g. measured by :func:`receptive_field_of`) with more layers."""
    if not rows:
        raise ValueError("rows is empty: call receptive_field(more) instead")
    return [*rows, *receptive_field(more, initial=rows[-1])]


def closed_form_size(layers: Sequence[Layer]) -> int:
    """Receptive field ``1 + sum_l (k'_l - 1) prod_{i<l} s_i`` (equals the recurrence)."""
    return 1 + sum((layer.effective_kernel - 1) * math.prod(x.stride for x in layers[:i])
                   for i, layer in enumerate(layers))


def stacked_3x3(n: int) -> list[Layer]:
    """``n`` stride-1, padding-1 3x3 convolutions: their field is ``2n + 1``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return [Layer(f"conv{i + 1}", 3, padding=1) for i in range(n)]


def layers_for_field(target: int, kernel: int = 3) -> int:
    """Smallest number of stride-1 ``kernel`` convs whose field reaches ``target`` (99 -> 49)."""
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ValueError(f"target must be a positive int, got {target!r}")
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 2:
        raise ValueError(f"kernel must be an int >= 2 (a 1x1 conv never grows the field), "
                         f"got {kernel!r}")
    return math.ceil((target - 1) / (kernel - 1))


def vgg_like(blocks: int, convs_per_block: int = 2) -> list[Layer]:
    """Blocks of 3x3 convs with a 2x2/2 max-pool between blocks (6 blocks of 2 -> 284)."""
    for arg, value in (("blocks", blocks), ("convs_per_block", convs_per_block)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    layers = []
    for b in range(1, blocks + 1):
        layers += [Layer(f"conv{b}_{c}", 3, padding=1) for c in range(1, convs_per_block + 1)]
        if b < blocks:
            layers.append(Layer(f"pool{b}", 2, stride=2))
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


def _height(value, what: str, name: str) -> int:
    if isinstance(value, str):  # Conv2d(padding="valid" / "same")
        raise ValueError(f"{name}: string {what} {value!r} is not supported; give ints")
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def receptive_field_of(module: nn.Module, input_size: int | tuple[int, int] = (224, 224)
                       ) -> list[RFInfo]:
    """Measure a real module: hook every Conv2d / MaxPool2d / AvgPool2d and run zeros through it.

    Layers are recorded in execution order and named by module path (``"features.28"``).
    Only the height component of each kernel/stride/padding/dilation is used (layers are
    assumed square); ``output_size`` is the measured output height.

    Parameters
    ----------
    module : nn.Module
        Holds at least one ``nn.Conv2d`` (its ``in_channels`` gives C_in); no transposed convs.
    input_size : int or (H, W)
        The dummy input is zeros of shape ``(1, C_in, H, W)``.

    Returns
    -------
    list of RFInfo
    """
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if len(input_size) != 2 or not all(isinstance(v, int) and v >= 1 for v in input_size):
        raise ValueError(f"input_size must be a positive int or (H, W), got {input_size!r}")
    names = {m: n for n, m in module.named_modules()}
    if any(isinstance(m, nn.modules.conv._ConvTransposeNd) for m in names):
        raise ValueError("transposed convolutions are not supported by the recurrence; measure "
                         "the encoder alone or use coord_map for the decoder")
    convs = [m for m in names if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(module).__name__} holds no nn.Conv2d: cannot infer C_in")
    layers, heights = [], []

    def hook(mod, _inputs, output):
        pad, dil = getattr(mod, "padding", 0), getattr(mod, "dilation", 1)
        name = names[mod] or type(mod).__name__
        layers.append(Layer(name, _height(mod.kernel_size, "kernel_size", name),
                            _height(mod.stride, "stride", name), _height(pad, "padding", name),
                            _height(dil, "dilation", name)))
        heights.append(output.shape[-2])

    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    handles = [m.register_forward_hook(hook) for m in names if isinstance(m, kinds)]
    training = module.training
    try:
        param = next(module.parameters())
        module.eval()
        with torch.no_grad():
            module(torch.zeros(1, convs[0].in_channels, *input_size, dtype=param.dtype,
                               device=param.device))
    finally:
        module.train(training)
        for h in handles:
            h.remove()
    rows = receptive_field(layers)
    return [dataclasses.replace(r, output_size=int(h)) for r, h in zip(rows, heights)]


def effective_receptive_field(model: nn.Module, input_shape: Sequence[int], *,
                              output_index: tuple[int, int] | None = None, n_samples: int = 1,
                              seed: int = 0) -> torch.Tensor:
    """Effective receptive field (Luo et al. 2016) of one output pixel, by gradients.

    The output pixel (summed over channels) is back-propagated to a random normal input;
    ``|grad|`` is averaged over channels and ``n_samples`` inputs and scaled to max 1.

    Parameters
    ----------
    model : nn.Module
        Maps ``(1, C, H, W)`` to ``(1, C_out, H_out, W_out)``; run in eval mode.
    input_shape : (C, H, W)
    output_index : (i, j), optional
        Output pixel; default the centre ``(H_out // 2, W_out // 2)``.
    n_samples : int
    seed : int
        Seeds the random inputs (a private generator).

    Returns
    -------
    torch.Tensor
        ``(H, W)`` float in [0, 1] (all zeros if the gradient vanishes).
    """
    if len(input_shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in input_shape):
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    gen = torch.Generator().manual_seed(seed)
    training, total = model.training, torch.zeros(input_shape[1:])
    model.eval()
    try:
        for _ in range(n_samples):
            x = torch.randn(1, *input_shape, generator=gen).requires_grad_(True)
            out = model(x)
            if out.dim() != 4:
                raise ValueError(f"model output must be (1, C, H, W), got {tuple(out.shape)}")
            i, j = output_index or (out.shape[-2] // 2, out.shape[-1] // 2)
            if not (0 <= i < out.shape[-2] and 0 <= j < out.shape[-1]):
                raise ValueError(f"output_index {(i, j)} is outside the output "
                                 f"{tuple(out.shape[-2:])}")
            (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
            total += grad[0].abs().mean(0).detach()
    finally:
        model.train(training)
    peak = total.max()
    return total / peak if peak > 0 else total


def support_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, x0, y1, x1)``, ends exclusive, of the non-zero pixels of a map.

    Applied to an input gradient (or :func:`effective_receptive_field`) it is the region an
    output unit actually depends on: its measured receptive field.

    Parameters
    ----------
    grad : torch.Tensor, shape (H, W)

    Examples
    --------
    >>> g = torch.zeros(6, 6)
    >>> g[1:4, 2:5] = 1.0
    >>> support_box(g)
    (1, 2, 4, 5)
    """
    if not isinstance(grad, torch.Tensor) or grad.dim() != 2:
        got = tuple(grad.shape) if isinstance(grad, torch.Tensor) else type(grad).__name__
        raise ValueError(f"grad must be a 2-D tensor (H, W), got {got}")
    ys, xs = torch.nonzero(grad, as_tuple=True)
    if ys.numel() == 0:
        raise ValueError("grad is zero everywhere: no pixel influences the output")
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


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


def crop_offset(cropped: Sequence[Layer], reference: Sequence[Layer]) -> int:
    """Offset of a Caffe ``Crop`` that aligns ``cropped`` to ``reference``.

    Both chains start at the same blob (the image). Output pixel ``offset`` of ``cropped``
    lies over pixel 0 of ``reference``. FCN-32s: ``crop_offset(fcn32 + [upscore], [])`` = 19.
    """
    (a_c, b_c), (a_r, b_r) = coord_map(cropped), coord_map(reference)
    if not math.isclose(a_c, a_r):
        raise ValueError(f"scale mismatch: cropped chain has stride {a_c}, reference {a_r}; "
                         "crop only blobs of the same resolution")
    offset = (b_r - b_c) / a_c
    if offset < 0 or not math.isclose(offset, round(offset)):
        raise ValueError(f"crop offset must be a non-negative integer, got {offset}; "
                         "pad the cropped branch more (FCN pads conv1_1 by 100)")
    return round(offset)
