"""The one way the explorers show a figure: a matplotlib ``Figure`` saved as PNG bytes into
an ``ipywidgets.Image``.

No pyplot and no ``Output`` widget: nothing touches pyplot's global state, a notebook runner
(papermill, nbclient) captures nothing, and every redraw replaces one image in place.
"""

from __future__ import annotations

import io

__all__ = ["new_figure", "png_image", "show_figure"]


def new_figure(width: float, height: float):
    """A ``matplotlib.figure.Figure`` of ``width x height`` inches, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def png_image(width: str = "100%"):
    """An empty ``ipywidgets.Image`` for PNGs, ``width`` wide (CSS), height following."""
    import ipywidgets as widgets

    return widgets.Image(format="png", layout=widgets.Layout(width=width, height="auto"))


def show_figure(image, fig, dpi: int = 80) -> bytes:
    """Render ``fig`` into the ``Image`` widget ``image``; return the PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    image.value = buffer.getvalue()
    return image.value
