"""Receptive-field explorer: stack layers, pick an output unit, see its field on a real image.

The widget only draws. The concepts live in :mod:`course_lib.receptive_field`:
``parse_layers`` turns a text spec such as ``"conv3, conv3, pool2, conv3 d2"`` into ``Layer``
objects, ``unit_field`` computes the size/jump/start table, the field box of one output unit
and the centres of its neighbours, and ``build_module`` turns the same layers into a real
``nn.Sequential`` whose input gradient shows the field (used to check the boxes).

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
- ipywidgets documentation: https://ipywidgets.readthedocs.io
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_lib.receptive_field import Layer, is_pool, parse_layers, unit_field
from course_lib.viz import to_hwc
from course_lib.widgets._render import (
    DESCRIPTION_WIDTH,
    control_options,
    controls_row,
    new_figure,
    png_image,
    show_figure,
    show_invalid,
)

__all__ = ["PRESETS", "draw_field", "receptive_field_explorer"]

#: Example stacks for the explorer's preset menu (text specs for
#: :func:`course_lib.receptive_field.parse_layers`).
PRESETS: dict[str, str] = {
    "three 3x3 convs": "conv3, conv3, conv3",
    "VGG-like (2 blocks)": "conv3, conv3, pool2, conv3, conv3, pool2",
    "dilated 1-2-4-8": "conv3, conv3 d2, conv3 d4, conv3 d8",
    "strided 5x5": "conv5 s2, conv5 s2, conv3",
}


def draw_field(ax, image, result: dict, *, color: str = "yellow", grid: bool = True) -> None:
    """Draw the image, the field box (dashed where it leaves the image) and the jump grid."""
    from matplotlib.patches import Rectangle

    img = to_hwc(image)
    ax.imshow(img, vmin=0, vmax=1)
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


def _initial_spec(layers) -> str:
    """The text-box spec for ``layers``: a spec string, Layer objects, or None (a preset)."""
    if layers is None:
        return PRESETS["VGG-like (2 blocks)"]
    if isinstance(layers, str):
        return layers
    return ", ".join(f"{'pool' if is_pool(x) else 'conv'}"
                     f"{x.kernel_size} s{x.stride} p{x.padding} d{x.dilation}" for x in layers)


def _wire_editing(text, buttons, remove, presets) -> None:
    """Buttons append a layer, "remove last" drops one, a preset replaces the whole spec."""

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
        checkbox, status Label, HBox(table HTML, figure as a PNG Image)]``; the HBoxes wrap
        on a narrow screen, and an invalid stack shows a grey panel instead of a stale field.
    """
    import ipywidgets as widgets

    if image is None:
        from course_lib.datasets import photo

        image = photo("astronaut", 224)
    img = to_hwc(image)
    size = img.shape[:2]
    spec = _initial_spec(layers)
    parse_layers(spec)  # fail early on a bad initial spec
    text = widgets.Text(spec, description="layers", continuous_update=False,
                        layout=widgets.Layout(width="95%"),
                        style={"description_width": DESCRIPTION_WIDTH})
    buttons = [widgets.Button(description=f"+ {b}") for b in ("conv3", "pool2", "conv3 d2")]
    remove = widgets.Button(description="remove last")
    presets = widgets.Dropdown(options=["(preset)", *PRESETS], description="preset",
                               **control_options("300px"))
    unit_i = widgets.IntSlider(0, min=0, max=0, description="unit row", **control_options())
    unit_j = widgets.IntSlider(0, min=0, max=0, description="unit col", **control_options())
    grid = widgets.Checkbox(True, description="jump grid", **control_options("200px"))
    status = widgets.Label()
    table = widgets.HTML()
    picture = png_image("400px")
    state = {"busy": False}

    def update(_change=None):
        if state["busy"]:
            return
        try:
            stack = parse_layers(text.value)
            first = unit_field(stack, size)  # output size for the sliders' ranges
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
            result = unit_field(stack, size, (unit_i.value, unit_j.value))
        except ValueError as err:
            status.value = f"invalid stack: {err}"
            table.value = ""
            show_invalid(picture, status.value, 5, 5)  # no stale field next to the error
            return
        status.value = (f"unit {result['unit']} of a {result['output_size']} output: field "
                        f"{result['size']} x {result['size']} px, neighbours every "
                        f"{result['jump']} px")
        table.value = f"<pre>{result['table']}</pre>"
        fig = new_figure(5, 5)
        ax = fig.subplots()
        draw_field(ax, img, result, grid=grid.value)
        ax.set_title(f"receptive field {result['size']} px, jump {result['jump']}")
        show_figure(picture, fig)

    _wire_editing(text, buttons, remove, presets)
    for w in (text, unit_i, unit_j, grid):
        w.observe(update, names="value")
    update()
    return widgets.VBox([text, controls_row([*buttons, remove, presets]),
                         controls_row([unit_i, unit_j, grid]), status,
                         controls_row([table, picture])])
