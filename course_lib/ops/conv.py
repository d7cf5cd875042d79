"""Convolution from scratch: loops, im2col, output sizes and the convolution matrix.

``conv2d`` has the semantics of :func:`torch.nn.functional.conv2d`, ``groups`` and
``padding="same"`` / ``"valid"`` included (``groups == C_in`` is the depthwise convolution of
DeepLabv3+'s depthwise separable convolutions). The transposed side lives in
:mod:`course_lib.ops.transposed`, the initialisers in :mod:`course_lib.ops.init`;
:mod:`course_lib.ops` re-exports all of them.

References
----------
- PyTorch ``Conv2d`` / ``ConvTranspose2d`` docs (output-size formulas, ``groups``):
  https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- Chellapilla, Puri, Simard, "High performance convolutional neural networks for document
  processing" (im2col), 2006.
- Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
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
_PADDINGS = ("same", "valid")


# ----------------------------------------------------------------------------- output sizes
def _check_padding(padding, stride: tuple[int, ...]):
    """``padding`` as a tuple of ints (one per axis, from ``check_pair``) or "same" / "valid"."""
    if not isinstance(padding, str):
        return check_pair("padding", padding, 0)
    check_choice("padding", padding, _PADDINGS)
    if padding == "same" and any(s != 1 for s in stride):
        shown = stride[0] if len(set(stride)) == 1 else stride
        raise ValueError(f"padding='same' needs stride=1 (torch has no strided 'same' "
                         f"convolution), got stride={shown}; pass an int padding instead")
    return padding


def _pad_amounts(padding, kernel, dilation) -> tuple[tuple[int, int], ...]:
    """Zero padding ``(before, after)`` of each axis, for a checked padding (ints or a string)."""
    if padding == "valid":  # no padding: only the windows that fit
        return tuple((0, 0) for _ in kernel)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]  # what keeps the size unchanged
        return tuple((t // 2, t - t // 2) for t in totals)  # odd: the extra one at the end
    return tuple((p, p) for p in padding)


def _output_length(n: int, k: int, s: int, before: int, after: int, d: int) -> int:
    """Output length along one axis padded by ``before`` and ``after`` zeros (checked ints)."""
    span = d * (k - 1) + 1  # pixels covered by one dilated window
    if span > n + before + after:
        raise ValueError(f"kernel_size {k} with dilation {d} spans {span} pixels, larger than "
                         f"the padded input ({n} + {before} + {after} = {n + before + after} "
                         f"pixels); pad more or use a smaller kernel")
    return (n + before + after - span) // s + 1


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int | str = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one axis.

    ``floor((n + 2p - d(k-1) - 1) / s) + 1``.

    Parameters
    ----------
    n, kernel_size : int
        Input length and kernel length, both ``>= 1``.
    stride, dilation : int
        ``>= 1``.
    padding : int or {"same", "valid"}
        Zero padding on each side, ``>= 0``; ``"valid"`` is 0, ``"same"`` (``stride=1`` only)
        pads ``d(k-1)`` in all, so the output has length ``n``.

    Returns
    -------
    int

    Examples
    --------
    >>> conv_output_size(7, 3), conv_output_size(7, 3, stride=2, padding=1)
    (5, 4)
    >>> conv_output_size(99, 3, dilation=2), conv_output_size(99, 4, padding="same")
    (95, 99)
    """
    n, k = check_int("n", n, 1), check_int("kernel_size", kernel_size, 1)
    s, d = check_int("stride", stride, 1), check_int("dilation", dilation, 1)
    if isinstance(padding, str):
        ((before, after),) = _pad_amounts(_check_padding(padding, (s,)), (k,), (d,))
    else:
        before = after = check_int("padding", padding, 0)
    return _output_length(n, k, s, before, after, d)


# ----------------------------------------------------------------------------- conv2d
def conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, dilation=1, groups=1, *, method: str = "im2col") -> torch.Tensor:
    """2-D cross-correlation, as :func:`torch.nn.functional.conv2d`.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
        Floating dtype; ``N`` may be 0.
    weight : Tensor, shape (C_out, C_in / groups, kh, kw)
    bias : Tensor, shape (C_out,), optional
        Same dtype as ``input``.
    stride, dilation : int or (int, int)
        ``>= 1``. A one-element tuple or list means both axes, as in torch.
    padding : int, (int, int), "valid" or "same"
        Zeros on each side, ``>= 0``. ``"valid"`` is 0; ``"same"`` (``stride=1`` only) keeps
        ``H x W``, with the extra pixel at the bottom/right when ``d(k-1)`` is odd.
    groups : int
        ``>= 1``, divides ``C_in`` and ``C_out``: the channels are split into ``groups``
        groups and output group ``j`` sees input group ``j`` only (``groups == C_in``: one
        filter per channel, the depthwise convolution).
    method : {"im2col", "loops"}
        ``"loops"``: one dot product per output position (readable, slow).
        ``"im2col"``: unfold every patch into a column (``Tensor.unfold`` views, the same
        columns as ``F.unfold``), then one matrix product per group (fast).
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
    >>> depthwise = conv2d(torch.ones(2, 5, 5), torch.ones(2, 1, 3, 3), padding="same", groups=2)
    >>> depthwise.shape, depthwise[0, 0, 0].item(), depthwise[0, 2, 2].item()
    (torch.Size([2, 5, 5]), 4.0, 9.0)
    """
    check_choice("method", method, _METHODS)
    s, d = check_pair("stride", stride, 1), check_pair("dilation", dilation, 1)
    pad, g = _check_padding(padding, s), check_int("groups", groups, 1)
    x, batched = check_conv_operands(input, weight, bias, in_axis=1, out_axis=0, groups=g)
    kernel = tuple(weight.shape[2:])
    (top, bottom), (left, right) = _pad_amounts(pad, kernel, d)
    out_hw = (_output_length(x.shape[2], kernel[0], s[0], top, bottom, d[0]),
              _output_length(x.shape[3], kernel[1], s[1], left, right, d[1]))
    xp = F.pad(x, (left, right, top, bottom))  # (N, C_in, H+top+bottom, W+left+right)
    run = _conv2d_im2col if method == "im2col" else _conv2d_loops
    out = run(xp, weight, bias, s, d, g, out_hw)  # (N, C_out, H_out, W_out)
    return out if batched else out.squeeze(0)


def _conv2d_im2col(xp, weight, bias, s, d, g, out_hw) -> torch.Tensor:
    """conv2d of a padded batch: every window becomes a column, then one product per group."""
    n, c_in = xp.shape[:2]
    c_out, _, kh, kw = weight.shape
    (h_out, w_out), k_g = out_hw, c_in // g * kh * kw  # k_g: inputs of one filter
    w_mat = weight.reshape(g, c_out // g, k_g)  # (g, C_out/g, C_in/g*kh*kw): a matrix per group
    # Every (dilated) window as a strided view, no copy yet; same columns as F.unfold.
    win = xp.unfold(2, d[0] * (kh - 1) + 1, s[0]).unfold(3, d[1] * (kw - 1) + 1, s[1])
    win = win[..., :: d[0], :: d[1]]  # (N, C_in, H_out, W_out, kh, kw)
    win = win.permute(0, 1, 4, 5, 2, 3)  # (N, C_in, kh, kw, H_out, W_out), still a view
    b = None if bias is None else bias.reshape(g, c_out // g, 1)  # (g, C_out/g, 1)
    if n == 0:  # empty batch: the same product over all (no) images, so autograd sees it
        out = w_mat @ win.reshape(0, g, k_g, h_out * w_out)  # (0, g, C_out/g, L)
        return (out if b is None else out + b).reshape(0, c_out, h_out, w_out)
    outs = []
    # One image at a time: its columns (a few MB) are written and read back while still
    # in the CPU cache; the whole batch's columns at once would go through main memory.
    for i in range(n):
        # Group j's channels are rows j*k_g ... (j+1)*k_g - 1: the channels are contiguous.
        cols = win[i].reshape(g, k_g, h_out * w_out)  # (g, C_in/g*kh*kw, L): the copy
        if b is None:
            outs.append(w_mat @ cols)  # (g, C_out/g, L), L = H_out*W_out
        else:  # bias + W @ cols in one pass over the output, not two
            outs.append(torch.baddbmm(b, w_mat, cols))  # (g, C_out/g, L)
    out = torch.stack(outs)  # (N, g, C_out/g, L): group j's filters are channels j*C_out/g...
    return out.reshape(n, c_out, h_out, w_out)


def _conv2d_loops(xp, weight, bias, s, d, g, out_hw) -> torch.Tensor:
    """conv2d of a padded batch, one window at a time: the definition written out (slow)."""
    n, c_in = xp.shape[:2]
    c_out, _, kh, kw = weight.shape
    k_g = c_in // g * kh * kw  # inputs of one filter: its group's channels x the kernel
    w_t = weight.reshape(g, c_out // g, k_g).transpose(1, 2)  # (g, C_in/g*kh*kw, C_out/g)
    rows = []
    for i in range(out_hw[0]):
        row = []
        for j in range(out_hw[1]):
            top, left = i * s[0], j * s[1]
            patch = xp[:, :, top:top + d[0] * (kh - 1) + 1:d[0],
                       left:left + d[1] * (kw - 1) + 1:d[1]]  # (N, C_in, kh, kw)
            # Each group's filters take dot products with that group's channels only.
            dots = patch.reshape(n, g, 1, k_g) @ w_t  # (N, g, 1, C_out/g): one dot per filter
            row.append(dots.reshape(n, c_out))  # (N, C_out)
        rows.append(torch.stack(row, dim=-1))  # (N, C_out, W_out)
    out = torch.stack(rows, dim=-2)  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)  # broadcast over (N, ., H_out, W_out)
    return out


# ----------------------------------------------------------------------------- matrix view
def conv_matrix(weight: torch.Tensor, input_size, stride=1, padding=0, dilation=1,
                groups=1) -> torch.Tensor:
    """The dense (Toeplitz-like) matrix of a convolution on one image.

    ``conv2d(x, weight, ...).flatten() == conv_matrix(weight, x.shape[-2:], ...) @ x.flatten()``
    for ``x`` of shape ``(C_in, H, W)``. Its transpose is the transposed convolution:
    ``conv_transpose2d(y, weight, ...).flatten() == M.T @ y.flatten()`` (same ``groups``).

    Parameters
    ----------
    weight : Tensor, shape (C_out, C_in / groups, kh, kw)
    input_size : int or (int, int)
        ``(H, W)`` of the input image.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    Tensor, shape (C_out * H_out * W_out, C_in * H * W)
        Built by convolving every basis image: column ``k`` is ``conv2d(e_k).flatten()``.
        With ``groups > 1`` it is block-diagonal (one block per group).

    Examples
    --------
    >>> conv_matrix(torch.tensor([[[[1., 2.]]]]), (1, 3))
    tensor([[1., 2., 0.],
            [0., 1., 2.]])
    """
    check_tensor("weight", weight, ndim=4, floating=True,
                 shape_hint="(C_out, C_in/groups, kh, kw)")
    h, w = check_pair("input_size", input_size, 1)
    g = check_int("groups", groups, 1)
    c_in = weight.shape[1] * g
    eye = torch.eye(c_in * h * w, dtype=weight.dtype, device=weight.device)  # (D, D)
    basis = eye.reshape(c_in * h * w, c_in, h, w)  # (D, C_in, H, W): one image per basis vector
    out = conv2d(basis, weight, None, stride, padding, dilation, g)  # (D, C_out, H_out, W_out)
    return out.reshape(c_in * h * w, -1).T  # (C_out*H_out*W_out, D)
