"""Transposed convolution as a "splat", and the upsampling helpers built around it.

Re-exported by :mod:`course_lib.ops`. ``conv_transpose2d`` has the semantics of
:func:`torch.nn.functional.conv_transpose2d` (without ``groups``): every input value scales
the kernel, which is added ("splatted") into the output at ``stride`` spacing; ``padding``
then crops the border. It equals multiplication by the transpose of the convolution matrix.

References
----------
- PyTorch ``ConvTranspose2d`` docs (output size, ``output_padding``):
  https://pytorch.org/docs/stable/generated/torch.nn.ConvTranspose2d.html
- Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
  https://arxiv.org/abs/1603.07285
- Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
  CVPR 2015 (bilinear initialisation, ``upsample_filt`` in the reference Caffe code).
- Aitken et al., "Checkerboard artifact free sub-pixel convolution" (ICNR), 2017.
  https://arxiv.org/abs/1707.02937
- Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
  Convolutional Neural Network", CVPR 2016.
"""

from __future__ import annotations

import torch

from course_lib.ops import _check_input, _pair, _size

__all__ = ["conv_transpose2d", "conv_transpose_output_size", "bilinear_kernel", "icnr_",
           "bed_of_nails"]


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
    n, k = _size("n", n), _size("kernel_size", kernel_size)
    s, p, d = _size("stride", stride), _size("padding", padding, 0), _size("dilation", dilation)
    op = _size("output_padding", output_padding, 0)
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
                     dilation=1) -> torch.Tensor:
    """Transposed convolution, as :func:`torch.nn.functional.conv_transpose2d` (``groups=1``).

    Each input pixel ``x[n, c, i, j]`` adds ``x[n, c, i, j] * weight[c]`` (a ``(C_out, kh, kw)``
    stamp, dilated by ``dilation``) into the output at ``(i*s, j*s)``. Implemented as one loop
    over the ``kh*kw`` kernel taps: each tap is a channel-mixing product added into a strided
    slice of the full canvas. The canvas is then cropped by ``padding`` (and grown by
    ``output_padding`` at the bottom/right).

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
        Floating dtype.
    weight : Tensor, shape (C_in, C_out, kh, kw)
        Note the order: input channels first, as in torch.
    bias : Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
        ``stride >= 1``, ``padding >= 0``, ``dilation >= 1``,
        ``0 <= output_padding < max(stride, dilation)``.

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
    """
    x, batched = _check_input(input, weight, bias, in_axis=0, out_axis=1)
    s, p = _pair("stride", stride, 1), _pair("padding", padding, 0)
    d, op = _pair("dilation", dilation, 1), _pair("output_padding", output_padding, 0)
    _check_output_padding(op, s, d)
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = conv_transpose_output_size(h, kh, s[0], p[0], op[0], d[0])
    w_out = conv_transpose_output_size(w, kw, s[1], p[1], op[1], d[1])
    # Full (uncropped) canvas, plus output_padding rows/columns at the bottom/right.
    full_h, full_w = (h - 1) * s[0] + d[0] * (kh - 1) + 1, (w - 1) * s[1] + d[1] * (kw - 1) + 1
    canvas = x.new_zeros(n, c_out, full_h + op[0], full_w + op[1])  # (N, C_out, Hf+oph, Wf+opw)
    # Every tap's contribution at once: (N, C_in, H, W) x (C_in, C_out, kh, kw).
    taps = torch.einsum("nchw,coab->nabohw", x, weight)  # (N, kh, kw, C_out, H, W)
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


def bilinear_kernel(kernel_size: int, channels: int = 1,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The FCN bilinear-upsampling kernel for a transposed convolution.

    ``f = (k+1)//2``, ``c = f-1`` if k is odd else ``f-0.5``,
    ``w[i, j] = (1 - |i-c|/f) (1 - |j-c|/f)``, placed on the channel diagonal so that each
    channel is upsampled on its own. With ``k = 2r``, ``stride = r``, ``padding = r//2`` it
    matches ``F.interpolate(scale_factor=r, mode="bilinear", align_corners=False)`` away from
    the border.

    Parameters
    ----------
    kernel_size : int
        ``>= 1``.
    channels : int
        ``>= 1``.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    Tensor, shape (channels, channels, kernel_size, kernel_size)

    Examples
    --------
    >>> bilinear_kernel(4)[0, 0, 0]
    tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    k, ch = _size("kernel_size", kernel_size), _size("channels", channels)
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    og = torch.arange(k, dtype=torch.float64)
    filt1d = 1 - (og - c).abs() / f  # (k,)
    filt = filt1d[:, None] * filt1d[None, :]  # (k, k): separable outer product
    weight = torch.zeros(ch, ch, k, k, dtype=torch.float64)
    weight[range(ch), range(ch)] = filt  # channel i -> channel i only
    return weight.to(dtype)


def icnr_(weight: torch.Tensor, scale: int = 2, init=torch.nn.init.kaiming_normal_):
    """ICNR initialisation, in place, for a conv feeding ``nn.PixelShuffle(scale)``.

    The conv has ``C * r**2`` output channels; PixelShuffle sends channel ``c*r**2 + q`` to
    sub-position ``q`` of output channel ``c``. ICNR initialises one ``(C, C_in, kh, kw)``
    sub-kernel with ``init`` and repeats it for all ``r**2`` sub-positions, so at init
    conv + pixel shuffle equals a ``C``-channel conv followed by nearest upsampling: no
    checkerboard.

    Parameters
    ----------
    weight : Tensor, shape (C * scale**2, C_in, kh, kw)
        Modified in place.
    scale : int
        Upscale factor ``r >= 1``.
    init : callable
        In-place initialiser applied to the sub-kernel.

    Returns
    -------
    Tensor
        ``weight``.

    Examples
    --------
    >>> w = icnr_(torch.empty(8, 3, 3, 3), scale=2)
    >>> bool(torch.equal(w[0], w[3])), bool(torch.equal(w[0], w[4]))
    (True, False)
    """
    r = _size("scale", scale)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 4-D conv weight (C*r^2, C_in, kh, kw), got {got}")
    if weight.shape[0] % (r * r):
        raise ValueError(f"weight has {weight.shape[0]} output channels, not divisible by "
                         f"scale**2 = {r * r}; use C * {r * r} output channels")
    sub = weight.new_empty(weight.shape[0] // (r * r), *weight.shape[1:])  # (C, C_in, kh, kw)
    init(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(r * r, dim=0))  # (C*r^2, C_in, kh, kw)
    return weight


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
    r = _size("scale", scale)
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        got = f"ndim={x.ndim}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (..., H, W) with ndim >= 2, got {got}")
    out = x.new_zeros(*x.shape[:-2], x.shape[-2] * r, x.shape[-1] * r)  # (..., H*r, W*r)
    out[..., ::r, ::r] = x
    return out
