"""The receptive-field recurrence over a chain of layers, its table and one unit's field.

Coordinates are continuous: input pixel ``i`` spans ``[i, i + 1]`` (its centre is
``i + 0.5``). For each layer, ``size`` is the field side, ``jump`` the input distance between
adjacent outputs and ``start`` the centre of output 0.

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from course_lib._checks import check_int, check_pair, type_name

__all__ = ["Layer", "RFInfo", "receptive_field", "extend", "closed_form_size", "format_table",
           "unit_field"]


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
            object.__setattr__(self, arg, check_int(f"Layer {self.name!r}: {arg}",
                                                    getattr(self, arg), low))

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
        input_size = check_int("input_size", input_size, 1)
        state = dataclasses.replace(state, output_size=input_size)
    rows = []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must hold Layer objects, got {type_name(layer)}")
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


def format_table(rows: Sequence[RFInfo]) -> str:
    """A fixed-width text table (layer, k', s, size, jump, start, output) of recurrence rows."""
    lines = [f"{'layer':<16}{'size':>6}{'jump':>6}{'start':>8}{'output':>8}"]
    for r in rows:
        out = "" if r.output_size is None else str(r.output_size)
        lines.append(f"{r.name:<16}{r.size:>6}{r.jump:>6}{r.start:>8.1f}{out:>8}")
    return "\n".join(lines)


def _axis(layers, n: int, unit: int | None, what: str):
    rows = receptive_field(layers, n)
    n_out = rows[-1].output_size
    unit = n_out // 2 if unit is None else unit
    unit = check_int(f"unit {what} (the output has {n_out} units along {what})", unit, 0,
                     n_out - 1)
    last = rows[-1]
    centre = last.start + unit * last.jump  # continuous coords: pixel i spans [i, i + 1]
    return rows, n_out, unit, centre


def unit_field(layers: Sequence[Layer], image_size: tuple[int, int],
                     unit: tuple[int | None, int | None] | None = None,
                     neighbours: int = 2) -> dict:
    """Receptive field of one output unit of ``layers`` on an image; the explorer's compute.

    Coordinates are continuous: input pixel ``i`` spans ``[i, i + 1]``, so the field of the
    unit ``(i, j)`` is centred at ``start + i * jump`` (rows) and ``start + j * jump`` (cols).

    Parameters
    ----------
    layers : sequence of Layer
        Convolutions and poolings in execution order.
    image_size : (H, W)
        Input height and width in pixels.
    unit : (i, j), optional
        Output unit; ``None`` (or a ``None`` entry) picks the centre ``n_out // 2``.
    neighbours : int
        How many neighbouring units on each side to return in ``grid``.

    Returns
    -------
    dict
        ``rows`` (list of RFInfo along the height, with output sizes), ``table`` (text),
        ``output_size`` (H_out, W_out), ``unit`` (i, j), ``centre`` (y, x), ``box``
        ``(y0, x0, y1, x1)`` the full field (may extend into the padding),
        ``clipped`` the same box clipped to the image, ``grid_y``, ``grid_x`` (1-D arrays of
        neighbouring unit centres inside the image, spaced by the jump), ``size``, ``jump``.

    Raises
    ------
    ValueError
        If ``layers`` is empty, the image is too small for them, or ``unit`` is outside the output.

    Examples
    --------
    >>> from course_lib.receptive_field import parse_layers
    >>> out = unit_field(parse_layers("conv3, conv3"), (8, 8), unit=(0, 3))
    >>> out["box"], out["size"]
    ((-2.0, 1.0, 3.0, 6.0), 5)
    """
    if len(layers) == 0:
        raise ValueError("layers is empty: give at least one layer")
    image_size = check_pair("image_size", image_size, 1)
    neighbours = check_int("neighbours", neighbours, 0)
    ui, uj = (None, None) if unit is None else unit
    rows, h_out, ui, cy = _axis(layers, image_size[0], ui, "rows")
    cols, w_out, uj, cx = _axis(layers, image_size[1], uj, "cols")
    r, jump, half = rows[-1].size, rows[-1].jump, rows[-1].size / 2
    box = (cy - half, cx - half, cy + half, cx + half)
    clipped = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(image_size[0])),
               min(box[3], float(image_size[1])))
    offsets = np.arange(-neighbours, neighbours + 1)
    gy = rows[-1].start + (ui + offsets[(ui + offsets >= 0) & (ui + offsets < h_out)]) * jump
    gx = cols[-1].start + (uj + offsets[(uj + offsets >= 0) & (uj + offsets < w_out)]) * jump
    return {"rows": rows, "table": format_table(rows), "output_size": (h_out, w_out),
            "unit": (ui, uj), "centre": (cy, cx), "box": box, "clipped": clipped,
            "grid_y": gy, "grid_x": gx, "size": r, "jump": jump}
