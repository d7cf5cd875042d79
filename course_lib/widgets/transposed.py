"""The transposed-convolution explorer: the splat, one input pixel at a time.

A transposed convolution multiplies the kernel by each input value and adds ("splats") the
scaled kernel into the output, ``stride`` pixels apart; ``padding`` then crops the border.
Where stamps overlap unevenly (kernel size not divisible by the stride) some output pixels
receive more contributions than their neighbours: the checkerboard artifact.

The compute is in pure functions of :mod:`course_lib.ops.splat` (``splat_steps``,
``overlap_counts``, ``stamp_box``) that the unit tests check against
:func:`torch.nn.functional.conv_transpose2d`; :func:`transposed_conv_explorer` only wires
sliders to them and draws.

References
----------
- Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill, 2016 (the
  checkerboard the fourth panel shows). The splat's own references are in
  :mod:`course_lib.ops.splat`.
- ipywidgets documentation: https://ipywidgets.readthedocs.io
"""

from __future__ import annotations

import torch

from course_lib._checks import check_choice, check_int
from course_lib.ops import bilinear_kernel, overlap_counts, splat_steps, stamp_box
from course_lib.viz import show_numbers
from course_lib.widgets._render import (
    control_options,
    controls_row,
    new_figure,
    png_image,
    show_figure,
    show_invalid,
)

__all__ = ["INPUTS", "KERNELS", "explorer_arrays", "transposed_conv_explorer"]

#: Input patterns of the explorer (built by :func:`explorer_arrays`).
INPUTS = ("ones", "ramp", "random")
#: Kernel patterns of the explorer.
KERNELS = ("ones", "bilinear", "random")


def explorer_arrays(input_name: str, kernel_name: str, in_size: int, kernel_size: int,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The input and kernel that the explorer splats.

    Parameters
    ----------
    input_name : {"ones", "ramp", "random"}
        ``"ramp"`` holds ``1, 2, ..., H*W``; ``"random"`` integers in ``[1, 4]``.
    kernel_name : {"ones", "bilinear", "random"}
        ``"bilinear"`` is the FCN bilinear kernel; ``"random"`` integers in ``[1, 4]``.
    in_size, kernel_size : int
        ``>= 1``.
    seed : int
        Seed of the random patterns.

    Returns
    -------
    x : Tensor, shape (in_size, in_size), float64
    weight : Tensor, shape (kernel_size, kernel_size), float64
    """
    check_choice("input_name", input_name, INPUTS)
    check_choice("kernel_name", kernel_name, KERNELS)
    n, k = check_int("in_size", in_size, 1), check_int("kernel_size", kernel_size, 1)
    g = torch.Generator().manual_seed(seed)
    x = {"ones": lambda: torch.ones(n, n, dtype=torch.float64),
         "ramp": lambda: torch.arange(1.0, n * n + 1, dtype=torch.float64).reshape(n, n),
         "random": lambda: torch.randint(1, 5, (n, n), generator=g).double()}[input_name]()
    w = {"ones": lambda: torch.ones(k, k, dtype=torch.float64),
         "bilinear": lambda: bilinear_kernel(k, dtype=torch.float64)[0, 0],
         "random": lambda: torch.randint(1, 5, (k, k), generator=g).double()}[kernel_name]()
    return x, w


def _draw(axes, x, weight, steps, counts, step, box):
    import matplotlib.patches as patches

    h, w = x.shape
    i, j = divmod(step, w)
    out = steps[step].numpy()
    vmax = max(float(steps[-1].abs().max()), 1e-12)
    panels = [(x.numpy(), "input (current pixel in red)", None),
              ((x[i, j] * weight).numpy(), f"stamp = x[{i}, {j}] * kernel", None),
              (out, f"output after {step + 1} of {h * w} splats (cyan: stamp)", vmax),
              (counts, "overlap count (ones * ones)", None)]
    for ax, (img, title, top) in zip(axes, panels):
        ax.clear()
        lo = 0.0 if top is not None else float(img.min())
        hi = top if top is not None else max(float(img.max()), lo + 1e-12)
        show_numbers(ax, img, title, cmap="viridis", fmt="{:.3g}", vmin=lo, vmax=hi,
                     fontsize=7)
    axes[0].add_patch(patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    top, left, kh, kw = box
    axes[2].add_patch(patches.Rectangle((left - 0.5, top - 0.5), kw, kh, fill=False,
                                        ec="cyan", lw=2, clip_on=True))


def transposed_conv_explorer(in_size: int = 4, seed: int = 0):
    """A widget that splats the kernel into the output one input pixel at a time.

    Sliders: kernel size, stride, padding and the step (which input pixel has been splatted
    last); dropdowns pick the input and kernel patterns. The fourth panel is the overlap-count
    map: with a kernel size not divisible by the stride it shows the checkerboard.

    Parameters
    ----------
    in_size : int
        Side of the square input, ``1 <= in_size <= 8``.
    seed : int
        Seed of the "random" patterns.

    Returns
    -------
    ipywidgets.VBox
        Children: ``[controls (HBox, wraps on a narrow screen), step slider, label, Image with
        the figure (PNG; a grey panel with the message while a setting is invalid)]``.
    """
    import ipywidgets as widgets

    in_size = check_int("in_size (the figure annotates every pixel)", in_size, 1, 8)
    input_w = widgets.Dropdown(options=list(INPUTS), value="ones", description="input",
                               **control_options("260px"))
    kernel_w = widgets.Dropdown(options=list(KERNELS), value="ones", description="kernel",
                                **control_options("260px"))
    size_w = widgets.IntSlider(3, min=1, max=5, description="kernel size", **control_options())
    stride_w = widgets.IntSlider(2, min=1, max=4, description="stride", **control_options())
    padding_w = widgets.IntSlider(0, min=0, max=3, description="padding", **control_options())
    step_w = widgets.IntSlider(in_size * in_size - 1, min=0, max=in_size * in_size - 1,
                               description="step", **control_options())
    label = widgets.Label()
    picture = png_image("100%")

    def update(_change=None):
        x, weight = explorer_arrays(input_w.value, kernel_w.value, in_size, size_w.value, seed)
        try:
            steps = splat_steps(x, weight, stride_w.value, padding_w.value)
            counts = overlap_counts(in_size, size_w.value, stride_w.value, padding_w.value)
        except ValueError as err:
            label.value = f"invalid setting: {err}"
            show_invalid(picture, label.value, 14, 3.8)  # no stale picture next to the error
            return
        box = stamp_box(step_w.value, in_size, size_w.value, stride_w.value, padding_w.value)
        label.value = (f"input {in_size} x {in_size} -> output {counts.shape[0]} x "
                       f"{counts.shape[1]}; overlap counts {sorted(set(counts.ravel().tolist()))}")
        fig = new_figure(14, 3.8)
        _draw(fig.subplots(1, 4), x, weight, steps, counts, step_w.value, box)
        show_figure(picture, fig)

    for w in (input_w, kernel_w, size_w, stride_w, padding_w, step_w):
        w.observe(update, names="value")
    update()
    controls = controls_row([input_w, kernel_w, size_w, stride_w, padding_w])
    return widgets.VBox([controls, step_w, label, picture])
