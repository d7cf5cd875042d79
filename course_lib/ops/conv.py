"""Convolution from scratch: loops, im2col, output sizes and the convolution matrix.

``conv2d`` has the semantics of :func:`torch.nn.functional.conv2d` (without ``groups``). The
transposed side lives in :mod:`course_lib.ops.transposed`, the initialisers in
:mod:`course_lib.ops.init`; :mod:`course_lib.ops` re-exports all of them.

References
----------
- PyTorch ``Conv2d`` / ``ConvTranspose2d`` docs (output-size formulas):
  https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- Chellapilla, Puri, Simard, "High performance convolutional neural networks for document
  processing" (im2col), 2006.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib._checks import (
    check_choice,
    check_conv_operands,
    check_int,
    check_pair,
    check_tensor,
)

__all__ = ["conv2d", "conv_output_size", "conv_matrix"]

_METHODS = ("im2col", "loops")


# ----------------------------------------------------------------------------- output sizes
def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one axis.

    ``floor((n + 2p - d(k-1) - 1) / s) + 1``.

    Parameters
    ----------
    n, kernel_size : int
        Input length and kernel length, both ``>= 1``.
    stride, dilation : int
        ``>= 1``.
    padding : int
        Zero padding on each side, ``>= 0``.

    Returns
    -------
    int

    Examples
    --------
    >>> conv_output_size(7, 3), conv_output_size(7, 3, stride=2, padding=1)
    (5, 4)
    >>> conv_output_size(99, 3, dilation=2)
    95
    """
    n, k = check_int("n", n, 1), check_int("kernel_size", kernel_size, 1)
    s, p = check_int("stride", stride, 1), check_int("padding", padding, 0)
    d = check_int("dilation", dilation, 1)
    if d * (k - 1) + 1 > n + 2 * p:
        raise ValueError(f"kernel_size {k} with dilation {d} spans {d * (k - 1) + 1} pixels, "
                         f"larger than the padded input {n} + 2*{p}; pad more or use a "
                         f"smaller kernel")
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


# ----------------------------------------------------------------------------- conv2d
def conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, dilation=1, *, method: str = "im2col") -> torch.Tensor:
    """2-D cross-correlation, as :func:`torch.nn.functional.conv2d` (``groups=1``).

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
        Floating dtype.
    weight : Tensor, shape (C_out, C_in, kh, kw)
    bias : Tensor, shape (C_out,), optional
    stride, padding, dilation : int or (int, int)
        ``stride >= 1``, ``padding >= 0`` (zeros), ``dilation >= 1``.
    method : {"im2col", "loops"}
        ``"loops"``: one dot product per output position (readable, slow).
        ``"im2col"``: unfold every patch into a column (``Tensor.unfold`` views, the same
        columns as ``F.unfold``), then one matrix product (fast).
        Both are built from torch ops, so autograd differentiates them.

    Returns
    -------
    Tensor, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out = conv_output_size(H, kh, stride, padding, dilation)``, same for W.

    Examples
    --------
    >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
    >>> conv2d(x, torch.ones(1, 1, 2, 2), stride=2)
    tensor([[[[10., 18.],
              [42., 50.]]]])
    >>> bool(torch.allclose(conv2d(x, torch.ones(1, 1, 3, 3), padding=1, method="loops"),
    ...                     torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3), padding=1)))
    True
    """
    check_choice("method", method, _METHODS)
    x, batched = check_conv_operands(input, weight, bias, in_axis=1, out_axis=0)
    s, p = check_pair("stride", stride, 1), check_pair("padding", padding, 0)
    d = check_pair("dilation", dilation, 1)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, s[0], p[0], d[0])
    w_out = conv_output_size(w, kw, s[1], p[1], d[1])
    w_mat = weight.reshape(c_out, c_in * kh * kw)  # (C_out, C_in*kh*kw)

    xp = F.pad(x, (p[1], p[1], p[0], p[0]))  # (N, C_in, H+2ph, W+2pw)
    if method == "im2col":
        # Every (dilated) window as a strided view, no copy yet; same columns as F.unfold.
        win = xp.unfold(2, d[0] * (kh - 1) + 1, s[0]).unfold(3, d[1] * (kw - 1) + 1, s[1])
        win = win[..., :: d[0], :: d[1]]  # (N, C_in, H_out, W_out, kh, kw)
        win = win.permute(0, 1, 4, 5, 2, 3)  # (N, C_in, kh, kw, H_out, W_out), still a view
        outs = []
        # One image at a time: its columns (a few MB) are written and read back while still
        # in the CPU cache; the whole batch's columns at once would go through main memory.
        for i in range(n):
            cols = win[i].reshape(c_in * kh * kw, h_out * w_out)  # (C_in*kh*kw, L): the copy
            if bias is None:
                outs.append(w_mat @ cols)  # (C_out, L), L = H_out*W_out
            else:  # bias + W @ cols in one pass over the output, not two
                outs.append(torch.addmm(bias.reshape(c_out, 1), w_mat, cols))
        out = torch.stack(outs) if n else x.new_zeros(0, c_out, h_out * w_out)  # (N, C_out, L)
        return out.reshape(n, c_out, h_out, w_out) if batched else out.reshape(c_out, h_out, w_out)

    # Loops: one window at a time, the definition written out (slow: for teaching).
    rows = []
    for i in range(h_out):
        row = []
        for j in range(w_out):
            top, left = i * s[0], j * s[1]
            patch = xp[:, :, top:top + d[0] * (kh - 1) + 1:d[0],
                       left:left + d[1] * (kw - 1) + 1:d[1]]  # (N, C_in, kh, kw)
            row.append(patch.reshape(n, -1) @ w_mat.T)  # (N, C_out): one dot per filter
        rows.append(torch.stack(row, dim=-1))  # (N, C_out, W_out)
    out = torch.stack(rows, dim=-2)  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)  # broadcast over (N, ., H_out, W_out)
    return out if batched else out.squeeze(0)


# ----------------------------------------------------------------------------- matrix view
def conv_matrix(weight: torch.Tensor, input_size, stride=1, padding=0,
                dilation=1) -> torch.Tensor:
    """The dense (Toeplitz-like) matrix of a convolution on one image.

    ``conv2d(x, weight, ...).flatten() == conv_matrix(weight, x.shape[-2:], ...) @ x.flatten()``
    for ``x`` of shape ``(C_in, H, W)``. Its transpose is the transposed convolution:
    ``conv_transpose2d(y, weight, ...).flatten() == M.T @ y.flatten()``.

    Parameters
    ----------
    weight : Tensor, shape (C_out, C_in, kh, kw)
    input_size : int or (int, int)
        ``(H, W)`` of the input image.
    stride, padding, dilation : int or (int, int)
        As in :func:`conv2d`.

    Returns
    -------
    Tensor, shape (C_out * H_out * W_out, C_in * H * W)
        Built by convolving every basis image: column ``k`` is ``conv2d(e_k).flatten()``.

    Examples
    --------
    >>> conv_matrix(torch.tensor([[[[1., 2.]]]]), (1, 3))
    tensor([[1., 2., 0.],
            [0., 1., 2.]])
    """
    check_tensor("weight", weight, ndim=4, floating=True, shape_hint="(C_out, C_in, kh, kw)")
    h, w = check_pair("input_size", input_size, 1)
    c_in = weight.shape[1]
    eye = torch.eye(c_in * h * w, dtype=weight.dtype, device=weight.device)  # (D, D)
    basis = eye.reshape(c_in * h * w, c_in, h, w)  # (D, C_in, H, W): one image per basis vector
    out = conv2d(basis, weight, None, stride, padding, dilation)  # (D, C_out, H_out, W_out)
    return out.reshape(c_in * h * w, -1).T  # (C_out*H_out*W_out, D)
