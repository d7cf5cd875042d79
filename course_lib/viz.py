"""Colour maps, overlays, image/mask grids and training curves.

One fixed palette for the whole course, so a class has the same colour in every figure.

References
----------
- The PASCAL VOC colour map (bit-interleaved label colours) used by the FCN and DeepLab code.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "PALETTE",
    "IGNORE_COLOR",
    "to_hwc",
    "colorize",
    "overlay",
    "show_grid",
    "show_predictions",
    "show_table",
    "show_numbers",
    "legend_handles",
    "plot_history",
]


def _voc_palette(n: int = 256) -> np.ndarray:
    """PASCAL VOC colour map: label bits spread over the high bits of R, G, B."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for label in range(n):
        c, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[label] = (r, g, b)
    return palette


#: Bright, distinct colours of labels 1..20 (S. Trubetskoy, "List of 20 simple, distinct
#: colors"): VOC's first colours (dark red, dark green, olive) vanish on a photo.
BRIGHT = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
          (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
          (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
          (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)]

#: Colour of every label, uint8 (256, 3): 0 (background) black, 1..20 the bright colours,
#: the other labels the VOC colour map, 255 (``ignore_index``) white.
PALETTE: np.ndarray = _voc_palette()
PALETTE[1:1 + len(BRIGHT)] = BRIGHT
IGNORE_COLOR = (255, 255, 255)
PALETTE[255] = IGNORE_COLOR
PALETTE.setflags(write=False)


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def colorize(mask) -> np.ndarray:
    """Colour a label mask with the course palette.

    Parameters
    ----------
    mask : array_like of int, shape (H, W)
        Labels in ``[0, 255]``; 255 (``ignore_index``) is drawn white.

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), float32 in [0, 1]

    Examples
    --------
    >>> colorize(np.array([[0, 1]])).shape
    (1, 2, 3)
    """
    m = _to_numpy(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got {m.shape}")
    if not np.issubdtype(m.dtype, np.integer):
        raise TypeError(f"mask must hold integer labels, got dtype {m.dtype}")
    if m.size and (m.min() < 0 or m.max() > 255):
        raise ValueError(f"labels must be in [0, 255], got range [{m.min()}, {m.max()}]")
    return PALETTE[m].astype(np.float32) / 255.0


def to_hwc(image) -> np.ndarray:
    """Any image the course handles, as an ``(H, W, 3)`` float32 array in [0, 1] for imshow.

    The one image conversion of the course: tensors or arrays of shape ``(3, H, W)``,
    ``(1, H, W)``, ``(H, W, 3)``, ``(H, W, 1)`` or ``(H, W)`` (grey is repeated on three
    channels). Integer images are 8-bit, ``[0, 255]``, and are divided by 255; floating
    images are taken as ``[0, 1]`` and clipped to it (an antialiased resize may overshoot 1
    slightly: it is clipped, never rescaled).

    Examples
    --------
    >>> to_hwc(torch.zeros(3, 4, 5)).shape, to_hwc(np.full((4, 5), 255, np.uint8)).max()
    ((4, 5, 3), np.float32(1.0))
    >>> float(to_hwc(np.full((2, 2), 1.01)).max())
    1.0
    """
    raw = _to_numpy(image)
    integer = np.issubdtype(raw.dtype, np.integer)
    im = raw.astype(np.float32) / (255.0 if integer else 1.0)
    if im.ndim == 2:
        im = im[..., None]  # (H, W, 1)
    elif im.ndim == 3 and im.shape[0] in (1, 3):
        im = np.moveaxis(im, 0, -1)  # (C, H, W) -> (H, W, C)
    if im.ndim != 3 or im.shape[-1] not in (1, 3):
        raise ValueError(f"image must have shape (3, H, W), (H, W, 3) or (H, W), got {im.shape}")
    if im.shape[-1] == 1:
        im = np.repeat(im, 3, axis=-1)
    return np.clip(im, 0.0, 1.0)


def overlay(image, mask, alpha: float = 0.45, *, outline: bool = True,
            dim: float = 0.45) -> np.ndarray:
    """Lay a label mask over an image so that every class reads on any image.

    Each object is filled with its class colour at opacity ``alpha`` and, with ``outline``,
    its border pixels (``skimage.segmentation.find_boundaries``, ``mode="inner"``) are drawn
    in the full colour, with a rim of background colour (black) just outside. The background
    (label 0, black in the palette) is drawn honestly: the image there is darkened by
    ``dim`` (blended with black), so the objects stand out and a black "background" legend
    entry means what it shows. Label 255 (ignore) is
    blended with white like any other label.

    Parameters
    ----------
    image : array_like, shape (3, H, W) or (H, W, 3)
        Float in [0, 1] (or uint8 in [0, 255]).
    mask : array_like of int, shape (H, W)
    alpha : float
        Opacity of the class fill, in [0, 1].
    outline : bool
        Draw each object's border in its full class colour.
    dim : float
        How much the background is darkened, in [0, 1] (0: left as it is).

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), float32 in [0, 1]
    """
    for name, value in (("alpha", alpha), ("dim", dim)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    im = to_hwc(image)
    colours = colorize(mask)
    if colours.shape[:2] != im.shape[:2]:
        raise ValueError(f"image {im.shape[:2]} and mask {colours.shape[:2]} sizes differ")
    labels = _to_numpy(mask)
    fg = (labels != 0)[..., None]
    out = np.where(fg, (1 - alpha) * im + alpha * colours, (1 - dim) * im)
    if outline and fg.any():
        from skimage.segmentation import find_boundaries

        edge = find_boundaries(labels, connectivity=1, mode="inner") & fg[..., 0]
        out[edge] = colours[edge]
        rim = find_boundaries(labels, connectivity=1, mode="outer") & ~fg[..., 0]
        out[rim] = colours[rim]  # the background's own colour (black): a dark rim
    return out.astype(np.float32)


def legend_handles(class_names, *, background: bool = True):
    """Matplotlib patches, one per class in palette colour, for ``ax.legend(handles=...)``.

    Every patch has a grey edge, so the black background entry is drawn and visible. It is
    honest for :func:`colorize` maps (background black) and :func:`overlay` (background
    darkened); ``background=False`` leaves label 0 out.
    """
    from matplotlib.patches import Patch

    return [Patch(facecolor=PALETTE[i] / 255.0, edgecolor="0.5", label=name)
            for i, name in enumerate(class_names) if background or i != 0]


def show_grid(images, masks=None, *, titles=None, ncols: int = 8, size: float = 2.0,
              alpha: float = 0.45, class_names=None):
    """Show images in a grid; with ``masks``, each image is followed by its overlay row.

    Parameters
    ----------
    images : sequence of array_like, each (3, H, W), or tensor (N, 3, H, W)
    masks : sequence of array_like (H, W), optional
        Drawn as overlays in a second row under each row of images.
    titles : sequence of str, optional
    ncols : int
        Images per row.
    size : float
        Inches per panel.
    alpha : float
        Opacity of the class fill of the overlays (see :func:`overlay`).
    class_names : sequence of str, optional
        With ``masks``: add a legend of these classes under the grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    images = list(images)
    n = len(images)
    if n == 0:
        raise ValueError("show_grid needs at least one image")
    if masks is not None and len(masks) != n:
        raise ValueError(f"got {n} images but {len(masks)} masks")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {n} images but {len(titles)} titles")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols) * (2 if masks is not None else 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    step = 2 if masks is not None else 1
    for i, image in enumerate(images):
        row, col = (i // ncols) * step, i % ncols
        axes[row, col].imshow(to_hwc(image))
        if titles is not None:
            axes[row, col].set_title(titles[i], fontsize=9)
        if masks is not None:
            axes[row + 1, col].imshow(overlay(image, masks[i], alpha), interpolation="nearest")
    if masks is not None and class_names is not None:
        height = size * nrows + 0.4
        fig.set_size_inches(size * ncols, height)
        fig.legend(handles=legend_handles(class_names), loc="lower center",
                   ncol=len(class_names), frameon=False)
        fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    else:
        fig.tight_layout()
    return fig


def plot_history(history, keys=None, *, ax=None, xlabel: str = "epoch"):
    """Plot training curves from a ``{name: [values per epoch]}`` history.

    Parameters
    ----------
    history : mapping of str to sequence of float
    keys : sequence of str, optional
        Which curves; all by default.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    xlabel : str
        What one point is: ``"epoch"``, or e.g. ``"evaluation (every 50 steps)"`` for
        ``fit(steps=..., log_every=...)``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    keys = list(history) if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history has no {missing}; available: {sorted(history)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for key in keys:
        values = list(history[key])
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=key)
    ax.set_xlabel(xlabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def show_predictions(images, truths, predictions: dict, *, title: str | None = None,
                     class_names=None, size: float = 1.8):
    """One row per image: the image, its ground truth, then one column per model.

    Parameters
    ----------
    images : tensor (N, 3, H, W) or sequence of (3, H, W)
    truths : tensor (N, H, W) or sequence of (H, W) int label maps
    predictions : dict of str to tensor (N, H, W)
        Column title -> predicted label maps of every image.
    title : str, optional
    class_names : sequence of str, optional
        Legend entries in palette order; default the ``ShapesDataset`` classes.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if class_names is None:
        from course_lib.datasets import CLASSES as class_names
    if not isinstance(predictions, dict):
        raise TypeError(f"predictions must be a dict {{column title: label maps}}, got "
                        f"{type(predictions).__name__}")
    n = len(images)
    if n == 0 or len(truths) != n or any(len(p) != n for p in predictions.values()):
        raise ValueError(f"images, truths and every prediction must hold the same number "
                         f"(>= 1) of images, got {n}, {len(truths)} and "
                         f"{[len(p) for p in predictions.values()]}")
    columns = ["image", "ground truth", *predictions]
    height = size * n + 0.5  # inches, the last 0.5 for the legend
    fig, axes = plt.subplots(n, len(columns), figsize=(size * len(columns), height),
                             squeeze=False)
    for i in range(n):
        panels = [to_hwc(images[i]), colorize(truths[i])]
        panels += [colorize(pred[i]) for pred in predictions.values()]
        for ax, panel, name in zip(axes[i], panels, columns):
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    fig.legend(handles=legend_handles(class_names), loc="lower center",
               ncol=len(class_names), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    return fig


def show_numbers(ax, array, title: str | None = None, *, cmap: str = "Blues",
                 fmt: str = "{:g}", vmin: float | None = None, vmax: float | None = None,
                 fontsize: int = 9, annotate_max: int = 144):
    """Draw a small array as a grid of coloured cells, each annotated with its value.

    The text is black on light cells and white on dark ones, whatever the colour map.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    array : array_like, shape (H, W)
    title : str, optional
    cmap : str
        Matplotlib colour map name.
    fmt : str
        Format of each value, e.g. ``"{:.2f}"``.
    vmin, vmax : float, optional
        Colour range; default ``[min(0, array.min()), array.max()]``.
    fontsize : int
    annotate_max : int
        Arrays with more cells than this are drawn without numbers (they would not fit).

    Returns
    -------
    matplotlib.image.AxesImage

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = show_numbers(ax, [[1, 2], [4, 0]], "overlaps")
    >>> [t.get_text() for t in ax.texts]
    ['1', '2', '4', '0']
    >>> plt.close(fig)
    """
    import matplotlib

    a = np.asarray(_to_numpy(array), dtype=float)
    if a.ndim != 2:
        raise ValueError(f"array must have shape (H, W), got {a.shape}")
    lo = min(0.0, float(a.min(initial=0.0))) if vmin is None else float(vmin)
    hi = max(float(a.max(initial=0.0)), lo + 1e-9) if vmax is None else float(vmax)
    shown = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
    colours = matplotlib.colormaps[cmap]
    if a.size <= annotate_max:
        for (r, c), v in np.ndenumerate(a):
            red, green, blue, _ = colours((v - lo) / (hi - lo))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived brightness
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                    color="black" if light else "white")
    if title is not None:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def show_table(header, rows, digits: int = 3, *, display: bool = True) -> str:
    """Render rows as a Markdown table (floats rounded to ``digits``); display it in Jupyter.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequences, each as long as ``header``
    digits : int
        Decimals of float cells.
    display : bool
        Show it with IPython's ``display(Markdown(...))`` (outside IPython: print it).

    Returns
    -------
    str
        The Markdown source.

    Examples
    --------
    >>> print(show_table(["model", "mIoU"], [["a", 0.51234]], display=False))
    | model | mIoU |
    |---|---|
    | a | 0.512 |
    """
    header = [str(h) for h in header]
    rows = [list(row) for row in rows]
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise ValueError(f"rows {bad} do not have {len(header)} cells like the header "
                         f"{header}")

    def fmt(v):
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines)
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import Markdown
            from IPython.display import display as ipy_display
        except ImportError:  # pragma: no cover - IPython ships with Jupyter
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            ipy_display(Markdown(text))
        else:
            print(text)
    return text
