"""The transposed-convolution explorer: the splat, one input pixel at a time.

A transposed convolution multiplies the kernel by each input value and adds ("splats") the
scaled kernel into the output, ``stride`` pixels apart; ``padding`` then crops the border.
Where stamps overlap unevenly (kernel size not divisible by the stride) some output pixels
receive more contributions than their neighbours: the checkerboard artifact.

The compute is in pure functions (:func:`splat_steps`, :func:`overlap_counts`,
:func:`stamp_box`) that the unit tests check against :func:`torch.nn.functional.conv_transpose2d`;
:func:`transposed_conv_explorer` only wires sliders to them and draws.

References
----------
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill, 2016.
  https://distill.pub/2016/deconv-checkerboard/
- PyTorch ``ConvTranspose2d`` docs: https://pytorch.org/docs/stable/generated/torch.nn.ConvTranspose2d.html
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.ops import _pair as _ops_pair
from course_lib.ops_transposed import bilinear_kernel, conv_transpose_output_size

__all__ = ["INPUTS", "KERNELS", "splat_steps", "overlap_counts", "stamp_box",
           "explorer_arrays", "transposed_conv_explorer"]

#: Input patterns of the explorer (built by :func:`explorer_arrays`).
INPUTS = ("ones", "ramp", "random")
#: Kernel patterns of the explorer.
KERNELS = ("ones", "bilinear", "random")


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """``ops._pair``, which also reports a scalar that is not an int (e.g. 2.5) clearly."""
    if not isinstance(value, (int, tuple, list)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return _ops_pair(name, value, minimum)


def _as_2d(name: str, t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor (rows, columns), got shape "
                         f"{tuple(t.shape)}; pass one channel, e.g. {name}[0, 0]")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {t.dtype}; use .double()")
    return t


def _output_shape(in_hw, k_hw, stride, padding, output_padding):
    return tuple(conv_transpose_output_size(n, k, s, p, op)
                 for n, k, s, p, op in zip(in_hw, k_hw, stride, padding, output_padding))


def splat_steps(x: torch.Tensor, weight: torch.Tensor, stride=1, padding=0,
                output_padding=0) -> list[torch.Tensor]:
    """The transposed convolution, one input pixel at a time (row-major order).

    Step ``t`` adds ``x[i, j] * weight`` at rows ``i*s - p ...``, columns ``j*s - p ...`` of
    the output, for the ``t``-th pixel ``(i, j)``; what falls outside the output is cropped.

    Parameters
    ----------
    x : Tensor, shape (H, W)
        One input channel, floating dtype.
    weight : Tensor, shape (kh, kw)
        One kernel, same dtype as ``x``.
    stride, padding, output_padding : int or (int, int)
        As in :func:`torch.nn.functional.conv_transpose2d`: ``stride >= 1``,
        ``padding >= 0``, ``0 <= output_padding < stride``.

    Returns
    -------
    list of Tensor, each of shape (H_out, W_out)
        ``H * W`` partial outputs; ``steps[t]`` holds the first ``t + 1`` splats and
        ``steps[-1]`` equals ``F.conv_transpose2d(x[None, None], weight[None, None], ...)[0, 0]``.

    Examples
    --------
    >>> steps = splat_steps(torch.tensor([[1., 2.]]), torch.tensor([[1., 10.]]), stride=2)
    >>> [s.tolist() for s in steps]
    [[[1.0, 10.0, 0.0, 0.0]], [[1.0, 10.0, 2.0, 20.0]]]
    """
    x, weight = _as_2d("x", x), _as_2d("weight", weight)
    if x.dtype != weight.dtype:
        raise TypeError(f"x and weight must share a dtype, got {x.dtype} and {weight.dtype}")
    s, p = _pair("stride", stride, 1), _pair("padding", padding, 0)
    op = _pair("output_padding", output_padding, 0)
    h_out, w_out = _output_shape(x.shape, weight.shape, s, p, op)
    kh, kw = weight.shape
    out = x.new_zeros(h_out, w_out)
    steps = []
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            top, left = i * s[0] - p[0], j * s[1] - p[1]  # stamp corner in output coordinates
            r0, c0 = max(top, 0), max(left, 0)
            r1, c1 = min(top + kh, h_out), min(left + kw, w_out)
            if r0 < r1 and c0 < c1:  # part of the stamp lands inside the output
                out[r0:r1, c0:c1] += x[i, j] * weight[r0 - top:r1 - top, c0 - left:c1 - left]
            steps.append(out.clone())
    return steps


def stamp_box(index: int, in_size, kernel_size, stride=1, padding=0) -> tuple[int, int, int, int]:
    """Where input pixel number ``index`` (row-major) splats its kernel, in output coordinates.

    Parameters
    ----------
    index : int
        ``0 <= index < H * W``.
    in_size, kernel_size, stride, padding : int or (int, int)
        ``(H, W)``, ``(kh, kw)``, stride ``>= 1``, padding ``>= 0``.

    Returns
    -------
    (top, left, height, width) : tuple of int
        ``top`` and ``left`` may be negative: padding crops that part.

    Examples
    --------
    >>> stamp_box(3, (2, 2), 3, stride=2, padding=1)
    (1, 1, 3, 3)
    """
    h, w = _pair("in_size", in_size, 1)
    kh, kw = _pair("kernel_size", kernel_size, 1)
    s, p = _pair("stride", stride, 1), _pair("padding", padding, 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < h * w:
        raise ValueError(f"index must be an int in [0, {h * w}) for a {h} x {w} input, "
                         f"got {index!r}")
    i, j = divmod(index, w)
    return i * s[0] - p[0], j * s[1] - p[1], kh, kw


def overlap_counts(in_size, kernel_size, stride=1, padding=0, output_padding=0) -> np.ndarray:
    """How many (input pixel, kernel tap) pairs land on each output pixel.

    Equals the transposed convolution of an all-ones input with an all-ones kernel. Uneven
    counts (e.g. 1, 2, 4 for ``kernel_size=3, stride=2``) make the checkerboard artifact.

    Parameters
    ----------
    in_size, kernel_size, stride, padding, output_padding : int or (int, int)
        As in :func:`splat_steps`.

    Returns
    -------
    ndarray of int64, shape (H_out, W_out)

    Examples
    --------
    >>> overlap_counts((1, 4), (1, 3), stride=(1, 2), padding=(0, 1), output_padding=(0, 1))
    array([[1, 2, 1, 2, 1, 2, 1, 1]])
    >>> overlap_counts(2, 3, stride=2)
    array([[1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1],
           [2, 2, 4, 2, 2],
           [1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1]])
    """
    h, w = _pair("in_size", in_size, 1)
    kh, kw = _pair("kernel_size", kernel_size, 1)
    s, p = _pair("stride", stride, 1), _pair("padding", padding, 0)
    op = _pair("output_padding", output_padding, 0)
    h_out, w_out = _output_shape((h, w), (kh, kw), s, p, op)
    full = np.zeros((max((h - 1) * s[0] + kh, p[0] + h_out),
                     max((w - 1) * s[1] + kw, p[1] + w_out)), dtype=np.int64)
    for a in range(kh):  # one tap at a time: it lands on a strided grid of output pixels
        for b in range(kw):
            full[a:a + (h - 1) * s[0] + 1:s[0], b:b + (w - 1) * s[1] + 1:s[1]] += 1
    return full[p[0]:p[0] + h_out, p[1]:p[1] + w_out]  # (H_out, W_out): crop the padding


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
    if input_name not in INPUTS:
        raise ValueError(f"unknown input {input_name!r}; expected one of {list(INPUTS)}")
    if kernel_name not in KERNELS:
        raise ValueError(f"unknown kernel {kernel_name!r}; expected one of {list(KERNELS)}")
    n, k = _pair("in_size", in_size, 1)[0], _pair("kernel_size", kernel_size, 1)[0]
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
        ax.imshow(img, cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if img.size <= 144:  # annotate small arrays; dark text on the bright (high) cells
            for (r, c), v in np.ndenumerate(img):
                bright = (v - lo) / (hi - lo + 1e-12) > 0.6
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=7,
                        color="black" if bright else "white")
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
        Children: ``[controls (HBox), step slider, label, Output with the figure]``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    if isinstance(in_size, bool) or not isinstance(in_size, int) or not 1 <= in_size <= 8:
        raise ValueError(f"in_size must be an int in [1, 8] (the figure annotates every "
                         f"pixel), got {in_size!r}")
    input_w = widgets.Dropdown(options=list(INPUTS), value="ones", description="input")
    kernel_w = widgets.Dropdown(options=list(KERNELS), value="ones", description="kernel")
    size_w = widgets.IntSlider(3, min=1, max=5, description="kernel size")
    stride_w = widgets.IntSlider(2, min=1, max=4, description="stride")
    padding_w = widgets.IntSlider(0, min=0, max=3, description="padding")
    step_w = widgets.IntSlider(in_size * in_size - 1, min=0, max=in_size * in_size - 1,
                               description="step")
    label = widgets.Label()
    out = widgets.Output()

    def update(_change=None):
        x, weight = explorer_arrays(input_w.value, kernel_w.value, in_size, size_w.value, seed)
        try:
            steps = splat_steps(x, weight, stride_w.value, padding_w.value)
            counts = overlap_counts(in_size, size_w.value, stride_w.value, padding_w.value)
        except ValueError as err:
            label.value = f"invalid setting: {err}"
            return
        box = stamp_box(step_w.value, in_size, size_w.value, stride_w.value, padding_w.value)
        label.value = (f"input {in_size} x {in_size} -> output {counts.shape[0]} x "
                       f"{counts.shape[1]}; overlap counts {sorted(set(counts.ravel().tolist()))}")
        out.clear_output(wait=True)
        with out:
            fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
            _draw(axes, x, weight, steps, counts, step_w.value, box)
            plt.show()
            plt.close(fig)

    for w in (input_w, kernel_w, size_w, stride_w, padding_w, step_w):
        w.observe(update, names="value")
    update()
    controls = widgets.HBox([input_w, kernel_w, size_w, stride_w, padding_w])
    return widgets.VBox([controls, step_w, label, out])
