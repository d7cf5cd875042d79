"""Receptive-field explorer: stack layers, pick an output unit, see its field on a real image.

The pure logic is testable without a widget: :func:`parse_layers` turns a text spec such as
``"conv3, conv3, pool2, conv3 d2"`` into :class:`~course_lib.receptive_field.Layer` objects,
:func:`rf_explorer_step` computes the size/jump/start table, the field box of one output
unit and the centres of its neighbours, and :func:`build_module` turns the same layers into a
real ``nn.Sequential`` whose input gradient shows the field (used to check the boxes).

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
- ipywidgets documentation: https://ipywidgets.readthedocs.io
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from course_lib.receptive_field import Layer, RFInfo, receptive_field

__all__ = ["PRESETS", "parse_layers", "format_table", "rf_explorer_step", "build_module",
           "draw_field", "receptive_field_explorer"]

#: Example stacks for the explorer's preset menu (text specs for :func:`parse_layers`).
PRESETS: dict[str, str] = {
    "three 3x3 convs": "conv3, conv3, conv3",
    "VGG-like (2 blocks)": "conv3, conv3, pool2, conv3, conv3, pool2",
    "dilated 1-2-4-8": "conv3, conv3 d2, conv3 d4, conv3 d8",
    "strided 5x5": "conv5 s2, conv5 s2, conv3",
}

_TOKEN = re.compile(r"(conv|pool)(\d+)((?:\s+[spd]\d+)*)")
_OPTION = re.compile(r"([spd])(\d+)")


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
        raise TypeError(f"spec must be a string such as 'conv3, pool2', got {type(spec).__name__}")
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
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit < n_out:
        raise ValueError(f"unit {what} must be an int in [0, {n_out - 1}] (the output has "
                         f"{n_out} units along {what}), got {unit!r}")
    last = rows[-1]
    centre = last.start + unit * last.jump  # continuous coords: pixel i spans [i, i + 1]
    return rows, n_out, unit, centre


def rf_explorer_step(layers: Sequence[Layer], image_size: tuple[int, int],
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
    >>> out = rf_explorer_step(parse_layers("conv3, conv3"), (8, 8), unit=(0, 3))
    >>> out["box"], out["size"]
    ((-2.0, 1.0, 3.0, 6.0), 5)
    """
    if len(layers) == 0:
        raise ValueError("layers is empty: give at least one layer")
    if (len(image_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in image_size)):
        raise ValueError(f"image_size must be (H, W) of ints, got {image_size!r}")
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 0:
        raise ValueError(f"neighbours must be an int >= 0, got {neighbours!r}")
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


def build_module(layers: Sequence[Layer], channels: int = 1) -> nn.Sequential:
    """A real module with the geometry of ``layers``: ``Conv2d`` with all-ones weights, no
    bias, and ``AvgPool2d`` for pools (every input of a window gets a gradient).

    The input gradient of one output unit is then positive exactly on its receptive field
    (clipped to the image), which checks the recurrence on a real module.

    Parameters
    ----------
    layers : sequence of Layer
        Names starting with ``"pool"`` (or containing ``":pool"``) become pools.
    channels : int
        Input and output channels of every conv.

    Returns
    -------
    nn.Sequential
        Maps ``(N, channels, H, W)`` to ``(N, channels, H_out, W_out)``.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    mods = []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must hold Layer objects, got {type(layer).__name__}")
        kind = layer.name.split(":")[-1]
        if kind.startswith("pool"):
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


def _image_hw3(image) -> np.ndarray:
    """(H, W) or (H, W, 3) or (3, H, W) array / tensor -> float (H, W[, 3]) in [0, 1]."""
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 0, -1)  # (C, H, W) -> (H, W, C)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] != 3):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (3, H, W), got shape {x.shape}")
    x = x.astype(np.float32)
    return x / 255.0 if x.max() > 1.0 else x


def draw_field(ax, image, result: dict, *, color: str = "yellow", grid: bool = True) -> None:
    """Draw the image, the field box (dashed where it leaves the image) and the jump grid."""
    from matplotlib.patches import Rectangle

    img = _image_hw3(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    y0, x0, y1, x1 = result["box"]
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color,
                           lw=2, ls="--" if result["clipped"] != result["box"] else "-"))
    if grid:
        gy, gx = np.meshgrid(result["grid_y"], result["grid_x"], indexing="ij")
        ax.plot(gx.ravel() - 0.5, gy.ravel() - 0.5, "o", ms=4, mfc="none", mec="cyan")
    cy, cx = result["centre"]
    ax.plot([cx - 0.5], [cy - 0.5], "+", ms=12, mew=2, color=color)
    h, w = img.shape[:2]  # imshow puts pixel i at [i - 0.5, i + 0.5]: shift by -0.5
    left, right = min(x0, 0.0), max(x1, float(w))
    top, bottom = min(y0, 0.0), max(y1, float(h))
    margin = 0.03 * max(right - left, bottom - top) if result["clipped"] != result["box"] else 0
    ax.set_xlim(left - margin - 0.5, right + margin - 0.5)
    ax.set_ylim(bottom + margin - 0.5, top - margin - 0.5)


def receptive_field_explorer(image=None, layers: str | Sequence[Layer] | None = None):
    """A widget: type or build a layer stack, pick an output unit, see its receptive field.

    Parameters
    ----------
    image : array or Tensor, shape (H, W), (H, W, 3) or (3, H, W), optional
        Default ``skimage.data.astronaut()`` resized to 224 x 224.
    layers : str or sequence of Layer, optional
        Initial stack, as a spec for :func:`parse_layers` (default ``PRESETS["VGG-like (2
        blocks)"]``) or Layer objects (shown as their recurrence; the text box then starts
        with an equivalent spec).

    Returns
    -------
    ipywidgets.VBox
        Children: ``[spec Text, HBox of buttons and presets, HBox of unit sliders and grid
        checkbox, status Label, HBox(table HTML, figure as a PNG Image)]``.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    if image is None:
        import skimage.data
        from skimage.transform import resize

        image = resize(skimage.data.astronaut(), (224, 224), anti_aliasing=True)
    img = _image_hw3(image)
    size = img.shape[:2]
    if layers is None:
        spec = PRESETS["VGG-like (2 blocks)"]
    elif isinstance(layers, str):
        spec = layers
    else:
        spec = ", ".join(f"{'pool' if x.name.split(':')[-1].startswith('pool') else 'conv'}"
                         f"{x.kernel_size} s{x.stride} p{x.padding} d{x.dilation}" for x in layers)
    parse_layers(spec)  # fail early on a bad initial spec
    text = widgets.Text(spec, description="layers", continuous_update=False,
                        layout=widgets.Layout(width="95%"))
    buttons = [widgets.Button(description=f"+ {b}") for b in ("conv3", "pool2", "conv3 d2")]
    remove = widgets.Button(description="remove last")
    presets = widgets.Dropdown(options=["(preset)", *PRESETS], description="preset")
    unit_i = widgets.IntSlider(0, min=0, max=0, description="unit row")
    unit_j = widgets.IntSlider(0, min=0, max=0, description="unit col")
    grid = widgets.Checkbox(True, description="jump grid")
    status = widgets.Label()
    table = widgets.HTML()
    # A PNG in an Image widget, not pyplot inside an Output widget: no global pyplot state, and
    # nothing for a notebook runner (papermill, nbclient) to capture.
    picture = widgets.Image(format="png", layout=widgets.Layout(width="400px"))
    state = {"busy": False}

    def update(_change=None):
        if state["busy"]:
            return
        try:
            stack = parse_layers(text.value)
            first = rf_explorer_step(stack, size)  # output size for the sliders' ranges
            state["busy"] = True
            try:
                h_out, w_out = first["output_size"]
                for slider, n in ((unit_i, h_out), (unit_j, w_out)):
                    reset = slider.max != n - 1
                    slider.max = n - 1
                    if reset:
                        slider.value = n // 2
            finally:
                state["busy"] = False
            result = rf_explorer_step(stack, size, (unit_i.value, unit_j.value))
        except ValueError as err:
            status.value = f"invalid stack: {err}"
            return
        status.value = (f"unit {result['unit']} of a {result['output_size']} output: field "
                        f"{result['size']} x {result['size']} px, neighbours every "
                        f"{result['jump']} px")
        table.value = f"<pre>{result['table']}</pre>"
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
        draw_field(ax, img, result, grid=grid.value)
        ax.set_title(f"receptive field {result['size']} px, jump {result['jump']}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        picture.value = buffer.getvalue()

    def add(button):
        text.value = f"{text.value}, {button.description[2:]}" if text.value.strip() \
            else button.description[2:]

    def drop(_button):
        text.value = ", ".join(item.strip() for item in text.value.split(",")[:-1])

    def pick(change):
        if change["new"] in PRESETS:
            text.value = PRESETS[change["new"]]

    for b in buttons:
        b.on_click(add)
    remove.on_click(drop)
    presets.observe(pick, names="value")
    for w in (text, unit_i, unit_j, grid):
        w.observe(update, names="value")
    update()
    return widgets.VBox([text, widgets.HBox([*buttons, remove, presets]),
                         widgets.HBox([unit_i, unit_j, grid]), status,
                         widgets.HBox([table, picture])])
