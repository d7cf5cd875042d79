"""Convolution from scratch: loops, im2col, output sizes and the convolution matrix.

``conv2d`` has the semantics of :func:`torch.nn.functional.conv2d` (without ``groups``). The
transposed side (``conv_transpose2d``, ``bilinear_kernel``, ``icnr_``, ``bed_of_nails``,
``conv_transpose_output_size``) lives in :mod:`course_lib.ops_transposed` and is re-exported
here, so ``from course_lib.ops import conv_transpose2d`` works.

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

from course_lib.utils import check_int as _size  # ValueError "<name> must be an int >= <min>"

__all__ = [
    "conv2d", "conv_output_size", "conv_matrix",
    "conv_transpose2d", "conv_transpose_output_size", "bilinear_kernel", "icnr_", "bed_of_nails",  # noqa: F822, E501
]

_TRANSPOSED = ("conv_transpose2d", "conv_transpose_output_size", "bilinear_kernel", "icnr_",
               "bed_of_nails")
_METHODS = ("im2col", "loops")


def __getattr__(name):  # PEP 562: lazy re-export, so either module can be imported first
    if name in _TRANSPOSED:
        from course_lib import ops_transposed

        return getattr(ops_transposed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_TRANSPOSED))


# ----------------------------------------------------------------------------- validation
def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of ints, each ``>= minimum``."""
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} (an int or a pair), got {value!r}")
    return pair


def _check_input(input, weight, bias, in_axis: int, out_axis: int):
    """Check types, dtypes, ndims and channels; return ``(x, batched)`` with x 4-D."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must have a floating dtype (e.g. torch.float32), got "
                            f"{t.dtype}; convert it with .float()")
    if input.dtype != weight.dtype:
        raise TypeError(f"input and weight must share a dtype, got {input.dtype} and "
                        f"{weight.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(f"input must be (N, C, H, W) or (C, H, W), got ndim={input.ndim} "
                         f"(shape {tuple(input.shape)})")
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (kernels of shape kh x kw), got ndim="
                         f"{weight.ndim} (shape {tuple(weight.shape)})")
    x = input if input.ndim == 4 else input.unsqueeze(0)  # (N, C, H, W)
    if x.shape[1] != weight.shape[in_axis]:
        raise ValueError(f"input has {x.shape[1]} channels but weight expects "
                         f"{weight.shape[in_axis]} (weight shape {tuple(weight.shape)}, "
                         f"channel axis {in_axis}); groups are not supported")
    if bias is not None and (not isinstance(bias, torch.Tensor)
                             or tuple(bias.shape) != (weight.shape[out_axis],)):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must have shape ({weight.shape[out_axis]},) (one value per "
                         f"output channel) or be None, got {got}")
    return x, input.ndim == 4


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
    n, k = _size("n", n), _size("kernel_size", kernel_size)
    s, p, d = _size("stride", stride), _size("padding", padding, 0), _size("dilation", dilation)
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
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    x, batched = _check_input(input, weight, bias, in_axis=1, out_axis=0)
    s, p = _pair("stride", stride, 1), _pair("padding", padding, 0)
    d = _pair("dilation", dilation, 1)
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
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 4-D tensor (C_out, C_in, kh, kw), got {got}")
    h, w = _pair("input_size", input_size, 1)
    c_in = weight.shape[1]
    eye = torch.eye(c_in * h * w, dtype=weight.dtype, device=weight.device)  # (D, D)
    basis = eye.reshape(c_in * h * w, c_in, h, w)  # (D, C_in, H, W): one image per basis vector
    out = conv2d(basis, weight, None, stride, padding, dilation)  # (D, C_out, H_out, W_out)
    return out.reshape(c_in * h * w, -1).T  # (C_out*H_out*W_out, D)
