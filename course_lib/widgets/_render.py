"""The one way the explorers show a figure: a matplotlib ``Figure`` saved as PNG bytes into
an ``ipywidgets.Image``; and the one way they lay out their controls.

No pyplot and no ``Output`` widget: nothing touches pyplot's global state, a notebook runner
(papermill, nbclient) captures nothing, and every redraw replaces one image in place.

Layout: every control gets a fixed width and a fixed description width, and the controls sit
in rows that *wrap* (``flex_flow="row wrap"``) instead of shrinking, so a slider's track
keeps its width (about 210 px) on a laptop screen. Only ``Layout`` fields and the
``description_width`` style are used, which ipywidgets 7.7 and 8 both have.
"""

from __future__ import annotations

import io

__all__ = ["new_figure", "png_image", "show_figure", "show_invalid", "control_options",
           "controls_row", "SLIDER_WIDTH", "DESCRIPTION_WIDTH"]

#: CSS width of every slider (description, track and readout together).
SLIDER_WIDTH = "400px"
#: CSS width of every control's description (its label on the left).
DESCRIPTION_WIDTH = "90px"


def new_figure(width: float, height: float):
    """A ``matplotlib.figure.Figure`` of ``width x height`` inches, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def png_image(width: str = "100%"):
    """An empty ``ipywidgets.Image`` for PNGs, ``width`` wide (CSS), height following."""
    import ipywidgets as widgets

    return widgets.Image(format="png", layout=widgets.Layout(width=width, height="auto"))


def show_figure(image, fig, dpi: int = 80, **savefig) -> bytes:
    """Render ``fig`` into the ``Image`` widget ``image``; return the PNG bytes.

    ``savefig`` keywords go to :meth:`matplotlib.figure.Figure.savefig` (default: a tight
    bounding box).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, **({"bbox_inches": "tight"} | savefig))
    image.value = buffer.getvalue()
    return image.value


def show_invalid(image, message: str, width: float, height: float, dpi: int = 80) -> bytes:
    """Replace the picture of ``image`` by a grey panel that says ``message``.

    An explorer calls it when a setting is invalid, so the previous (now stale) picture never
    stays on screen next to the error. The panel has the figure's size (``width x height``
    inches), so the layout does not jump.
    """
    import textwrap

    fig = new_figure(width, height)
    fig.patch.set_facecolor("0.85")
    fig.text(0.5, 0.5, textwrap.fill(message, max(20, int(7 * width))), ha="center",
             va="center", fontsize=12, color="0.25")
    return show_figure(image, fig, dpi, bbox_inches=None, facecolor=fig.get_facecolor())


def control_options(width: str = SLIDER_WIDTH) -> dict:
    """Keyword arguments of a slider, dropdown, checkbox or text box: fixed width, fixed label.

    A new ``Layout`` each call (widgets must not share one). ``flex="0 0 auto"`` stops a row
    from shrinking the control: the row wraps instead.
    """
    import ipywidgets as widgets

    return {"layout": widgets.Layout(width=width, flex="0 0 auto"),
            "style": {"description_width": DESCRIPTION_WIDTH}}


def controls_row(children):
    """An ``HBox`` of controls that wraps onto more lines when the window is narrow."""
    import ipywidgets as widgets

    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap",
                                                              width="100%"))
