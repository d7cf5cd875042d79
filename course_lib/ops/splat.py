"""The transposed convolution as a splat, one input pixel at a time, and its overlap counts.

A transposed convolution multiplies the kernel by each input value and adds ("splats") the
scaled kernel into the output, ``stride`` pixels apart; ``padding`` then crops the border.
Where stamps overlap unevenly (kernel size not divisible by the stride) some output pixels
receive more contributions than their neighbours: the checkerboard artifact, counted by
:func:`overlap_counts`.

References
----------
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill, 2016.
  https://distill.pub/2016/deconv-checkerboard/
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib._checks import check_int, check_pair, check_tensor
from course_lib.ops.transposed import conv_transpose_output_size

__all__ = ["splat_steps", "stamp_box", "overlap_counts"]


def _as_2d(name: str, t) -> torch.Tensor:
    check_tensor(name, t, floating=True)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor (rows, columns), got shape "
                         f"{tuple(t.shape)}; pass one channel, e.g. {name}[0, 0]")
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
        raise ValueError(f"x and weight must share a dtype, got {x.dtype} and {weight.dtype}")
    s, p = check_pair("stride", stride, 1), check_pair("padding", padding, 0)
    op = check_pair("output_padding", output_padding, 0)
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
    h, w = check_pair("in_size", in_size, 1)
    kh, kw = check_pair("kernel_size", kernel_size, 1)
    s, p = check_pair("stride", stride, 1), check_pair("padding", padding, 0)
    index = check_int("index", index, 0, h * w - 1)
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
    h, w = check_pair("in_size", in_size, 1)
    kh, kw = check_pair("kernel_size", kernel_size, 1)
    s, p = check_pair("stride", stride, 1), check_pair("padding", padding, 0)
    op = check_pair("output_padding", output_padding, 0)
    h_out, w_out = _output_shape((h, w), (kh, kw), s, p, op)
    full = np.zeros((max((h - 1) * s[0] + kh, p[0] + h_out),
                     max((w - 1) * s[1] + kw, p[1] + w_out)), dtype=np.int64)
    for a in range(kh):  # one tap at a time: it lands on a strided grid of output pixels
        for b in range(kw):
            full[a:a + (h - 1) * s[0] + 1:s[0], b:b + (w - 1) * s[1] + 1:s[1]] += 1
    return full[p[0]:p[0] + h_out, p[1]:p[1] + w_out]  # (H_out, W_out): crop the padding
