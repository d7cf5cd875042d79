"""Transposed convolution as a "splat", its output size, overlap counts and bed-of-nails.

``conv_transpose2d`` has the semantics of
:func:`torch.nn.functional.conv_transpose2d`, ``groups`` included: every input value scales
the kernel, which is added ("splatted") into the output at ``stride`` spacing; ``padding``
then crops the border. It equals multiplication by the transpose of the convolution matrix.
Like torch, it takes no string padding ("same" / "valid" are for convolutions only).

References
----------
- PyTorch ``ConvTranspose2d`` docs (output size, ``output_padding``):
  https://pytorch.org/docs/stable/generated/torch.nn.ConvTranspose2d.html
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
"""

from __future__ import annotations

import torch

from course_lib._checks import check_conv_operands, check_int, check_pair, check_tensor

__all__ = ["conv_transpose2d", "conv_transpose_output_size", "bed_of_nails"]


def conv_transpose_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis.

    ``(n - 1)s - 2p + d(k - 1) + output_padding + 1``.

    Parameters
    ----------
    n, kernel_size, stride, dilation : int
        ``>= 1``.
    padding : int
        ``>= 0``; crops ``padding`` pixels from each side of the full output.
    output_padding : int
        ``0 <= output_padding < max(stride, dilation)``; adds rows/columns on one side.

    Returns
    -------
    int

    Examples
    --------
    >>> [conv_transpose_output_size(7, 4, 2, 1), conv_transpose_output_size(7, 3, 2, 1, 1),
    ...  conv_transpose_output_size(7, 3, 2, 1), conv_transpose_output_size(7, 16, 8, 4)]
    [14, 14, 13, 56]
    """
    n, k = check_int("n", n, 1), check_int("kernel_size", kernel_size, 1)
    s, p = check_int("stride", stride, 1), check_int("padding", padding, 0)
    d = check_int("dilation", dilation, 1)
    op = check_int("output_padding", output_padding, 0)
    _check_output_padding((op,), (s,), (d,))
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out < 1:
        raise ValueError(f"padding {p} crops everything: the output would have size {out}; "
                         f"use padding <= {((n - 1) * s + d * (k - 1) + op) // 2}")
    return out


def _check_output_padding(op, s, d):
    for o, si, di in zip(op, s, d):
        if not 0 <= o < max(si, di):
            raise ValueError(f"output_padding must satisfy 0 <= output_padding < max(stride, "
                             f"dilation) = {max(si, di)}, got output_padding={o} with "
                             f"stride={si}, dilation={di}")


def conv_transpose2d(input: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None = None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> torch.Tensor:
    """Transposed convolution, as :func:`torch.nn.functional.conv_transpose2d`.

    Each input pixel ``x[n, c, i, j]`` adds ``x[n, c, i, j] * weight[c]`` (a
    ``(C_out / groups, kh, kw)`` stamp, dilated by ``dilation``) into the output channels of
    its group at ``(i*s, j*s)``. Implemented as one loop over the ``kh*kw`` kernel taps: each
    tap is a channel-mixing product added into a strided slice of the full canvas. The canvas
    is then cropped by ``padding`` (and grown by ``output_padding`` at the bottom/right).

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
        Floating dtype; ``N`` may be 0.
    weight : Tensor, shape (C_in, C_out / groups, kh, kw)
        Note the order: input channels first, as in torch.
    bias : Tensor, shape (C_out,), optional
        Same dtype as ``input``.
    stride, padding, output_padding, dilation : int or (int, int)
        ``stride >= 1``, ``padding >= 0``, ``dilation >= 1``,
        ``0 <= output_padding < max(stride, dilation)``. A one-element tuple or list means
        both axes, as in torch.
    groups : int
        ``>= 1``, divides ``C_in``: input group ``j`` splats into output group ``j`` only.
        Note torch's order of the arguments: ``groups`` comes before ``dilation``.

    Returns
    -------
    Tensor, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        ``H_out = conv_transpose_output_size(H, kh, stride, padding, output_padding, dilation)``.

    Examples
    --------
    >>> conv_transpose2d(torch.tensor([[[1., 2.]]]), torch.tensor([[[[1., 10.]]]]), stride=2)
    tensor([[[ 1., 10.,  2., 20.]]])
    >>> conv_transpose2d(torch.tensor([[[1., 2.]]]), torch.tensor([[[[1., 10.]]]]))
    tensor([[[ 1., 12., 20.]]])
    >>> conv_transpose2d(torch.ones(2, 1, 1), torch.ones(2, 3, 2, 2), groups=2).shape
    torch.Size([6, 2, 2])
    """
    s, p = check_pair("stride", stride, 1), check_pair("padding", padding, 0)
    d, op = check_pair("dilation", dilation, 1), check_pair("output_padding", output_padding, 0)
    _check_output_padding(op, s, d)
    g = check_int("groups", groups, 1)
    x, batched = check_conv_operands(input, weight, bias, in_axis=0, out_axis=1, groups=g)
    n, c_in, h, w = x.shape
    _, c_out_g, kh, kw = weight.shape
    c_out = c_out_g * g
    h_out = conv_transpose_output_size(h, kh, s[0], p[0], op[0], d[0])
    w_out = conv_transpose_output_size(w, kw, s[1], p[1], op[1], d[1])
    # Full (uncropped) canvas, plus output_padding rows/columns at the bottom/right.
    full_h, full_w = (h - 1) * s[0] + d[0] * (kh - 1) + 1, (w - 1) * s[1] + d[1] * (kw - 1) + 1
    canvas = x.new_zeros(n, c_out, full_h + op[0], full_w + op[1])  # (N, C_out, Hf+oph, Wf+opw)
    # Every tap's contribution at once, group by group: input group j mixes into output group j.
    xg = x.reshape(n, g, c_in // g, h, w)  # (N, g, C_in/g, H, W)
    wg = weight.reshape(g, c_in // g, c_out_g, kh, kw)  # (g, C_in/g, C_out/g, kh, kw)
    taps = torch.einsum("ngchw,gcoab->nabgohw", xg, wg)  # (N, kh, kw, g, C_out/g, H, W)
    taps = taps.reshape(n, kh, kw, c_out, h, w)  # (N, kh, kw, C_out, H, W): groups in order
    for a in range(kh):
        for b in range(kw):
            top, left = a * d[0], b * d[1]
            rows = slice(top, top + (h - 1) * s[0] + 1, s[0])  # H positions, stride apart
            cols = slice(left, left + (w - 1) * s[1] + 1, s[1])  # W positions
            canvas[:, :, rows, cols] += taps[:, a, b]  # (N, C_out, H, W) splat of tap (a, b)
    out = canvas[:, :, p[0]:p[0] + h_out, p[1]:p[1] + w_out]  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)  # broadcast over (N, ., H_out, W_out)
    return out if batched else out.squeeze(0)


def bed_of_nails(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Zero-insertion upsampling: each value goes to the top-left of a ``scale x scale`` block.

    Parameters
    ----------
    x : Tensor, shape (..., H, W)
    scale : int
        ``>= 1``.

    Returns
    -------
    Tensor, shape (..., H*scale, W*scale)

    Examples
    --------
    >>> bed_of_nails(torch.tensor([[1., 2.]]))
    tensor([[1., 0., 2., 0.],
            [0., 0., 0., 0.]])
    """
    r = check_int("scale", scale, 1)
    check_tensor("x", x, shape_hint="(..., H, W)")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., H, W) with ndim >= 2, got shape "
                         f"{tuple(x.shape)}")
    out = x.new_zeros(*x.shape[:-2], x.shape[-2] * r, x.shape[-1] * r)  # (..., H*r, W*r)
    out[..., ::r, ::r] = x
    return out
