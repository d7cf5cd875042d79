"""The convolution explorer: a named 3x3 kernel, stride, padding and dilation on a real photo.

The compute is a pure function (``conv_explorer_step``, which calls
:func:`course_lib.ops.conv2d`) that the unit tests call directly; the widget only wires
sliders to it and draws the result.

References
----------
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- PyTorch ``Conv2d`` docs (output-size formula):
  https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html
- ipywidgets documentation: https://ipywidgets.readthedocs.io
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib._checks import check_choice
from course_lib.datasets import camera_image
from course_lib.ops import conv2d, conv_output_size
from course_lib.widgets._render import (
    control_options,
    controls_row,
    new_figure,
    png_image,
    show_figure,
    show_invalid,
)

__all__ = ["KERNELS", "kernel", "conv_explorer_step", "conv_explorer"]

#: Named 3x3 kernels, as nested lists (rows of the kernel).
KERNELS: dict[str, list[list[float]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}


def kernel(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One named 3x3 kernel as a conv weight.

    Parameters
    ----------
    name : str
        A key of :data:`KERNELS`.
    dtype : torch.dtype

    Returns
    -------
    Tensor, shape (1, 1, 3, 3)
    """
    check_choice("name (the kernel)", name, sorted(KERNELS))
    return torch.tensor(KERNELS[name], dtype=dtype).reshape(1, 1, 3, 3)


def _as_image(image) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if x.ndim != 2:
        raise ValueError(f"image must be a grey 2-D array (H, W), got shape {tuple(x.shape)}")
    return x.float() if not x.is_floating_point() else x


def conv_explorer_step(image, kernel_name: str, stride: int = 1, padding: int = 0,
                       dilation: int = 1) -> tuple[torch.Tensor, str]:
    """Convolve a grey image with a named 3x3 kernel; the compute behind the explorer.

    Parameters
    ----------
    image : Tensor or ndarray, shape (H, W)
        Grey image, floating point (integers are cast to float32).
    kernel_name : str
        One of :data:`KERNELS`.
    stride, dilation : int
        ``>= 1``.
    padding : int
        Zero padding on each side, ``>= 0``.

    Returns
    -------
    output : Tensor, shape (H_out, W_out)
        ``course_lib.ops.conv2d`` of the image with the kernel.
    text : str
        ``"input H x W -> output H_out x W_out"``, sizes from ``conv_output_size``.

    Raises
    ------
    ValueError
        For an unknown kernel name (the message lists the valid ones) or bad sizes.
    """
    x = _as_image(image)
    weight = kernel(kernel_name, dtype=x.dtype)
    h, w = x.shape
    h_out = conv_output_size(h, 3, stride, padding, dilation)
    w_out = conv_output_size(w, 3, stride, padding, dilation)
    out = conv2d(x[None, None], weight, stride=stride, padding=padding, dilation=dilation)
    text = (f"input {h} x {w} -> output {h_out} x {w_out} "
            f"(kernel 3, stride {stride}, padding {padding}, dilation {dilation})")
    return out[0, 0], text


def conv_explorer(image=None):
    """A widget to play with kernel, stride, padding and dilation on a real image.

    Parameters
    ----------
    image : Tensor or ndarray, shape (H, W), optional
        Grey image in [0, 1]; default ``skimage.data.camera()`` downsampled to 128 px.

    Returns
    -------
    ipywidgets.VBox
        Children: ``[controls (wrapping HBox: kernel dropdown, 3 sliders), size label, Image
        with the figure (PNG; a grey panel with the message while a setting is invalid)]``.
    """
    import ipywidgets as widgets

    x = camera_image(128) if image is None else _as_image(image)
    kernel_w = widgets.Dropdown(options=list(KERNELS), value="sobel x", description="kernel",
                                **control_options("260px"))
    stride_w = widgets.IntSlider(1, min=1, max=4, description="stride", **control_options())
    padding_w = widgets.IntSlider(0, min=0, max=4, description="padding", **control_options())
    dilation_w = widgets.IntSlider(1, min=1, max=4, description="dilation",
                                   **control_options())
    label = widgets.Label()
    picture = png_image("640px")

    def update(_change=None):
        try:
            y, text = conv_explorer_step(x, kernel_w.value, stride_w.value, padding_w.value,
                                         dilation_w.value)
        except ValueError as err:
            label.value = f"invalid setting: {err}"
            show_invalid(picture, label.value, 8, 4)  # no stale picture next to the error
            return
        label.value = text
        fig = new_figure(8, 4)
        axes = fig.subplots(1, 2)
        axes[0].imshow(x.numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"input {tuple(x.shape)}")
        axes[1].imshow(y.numpy(), cmap="gray")
        axes[1].set_title(f"{kernel_w.value}: output {tuple(y.shape)}")
        for ax in axes:
            ax.axis("off")
        show_figure(picture, fig)

    for w in (kernel_w, stride_w, padding_w, dilation_w):
        w.observe(update, names="value")
    update()
    controls = controls_row([kernel_w, stride_w, padding_w, dilation_w])
    return widgets.VBox([controls, label, picture])
