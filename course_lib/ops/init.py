"""Initialisers for upsampling layers: the FCN bilinear kernel and ICNR for sub-pixel convs.

References
----------
- Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
  CVPR 2015 (bilinear initialisation, ``upsample_filt`` in the reference Caffe code).
- Aitken et al., "Checkerboard artifact free sub-pixel convolution" (ICNR), 2017.
  https://arxiv.org/abs/1707.02937
- Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
  Convolutional Neural Network", CVPR 2016.
"""

from __future__ import annotations

import torch

from course_lib._checks import check_int, check_tensor, type_name

__all__ = ["bilinear_kernel", "icnr_"]


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
        Floating dtype of the result (the weights are fractions: an integer dtype would round
        them to zero, so it is refused).

    Returns
    -------
    Tensor, shape (channels, channels, kernel_size, kernel_size)

    Examples
    --------
    >>> bilinear_kernel(4)[0, 0, 0]
    tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    k, ch = check_int("kernel_size", kernel_size, 1), check_int("channels", channels, 1)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype (e.g. torch.float32), got {dtype!r} "
                        f"({type_name(dtype)})")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype (e.g. torch.float32), got {dtype}: "
                         f"the kernel's weights are fractions in [0, 1]")
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
    r = check_int("scale", scale, 1)
    check_tensor("weight", weight, ndim=4, floating=True, shape_hint="(C*r^2, C_in, kh, kw)")
    if not callable(init):
        raise TypeError(f"init must be an in-place initialiser such as "
                        f"torch.nn.init.kaiming_normal_, got {init!r} ({type_name(init)})")
    if weight.shape[0] % (r * r):
        raise ValueError(f"weight has {weight.shape[0]} output channels, not divisible by "
                         f"scale**2 = {r * r}; use C * {r * r} output channels")
    sub = weight.new_empty(weight.shape[0] // (r * r), *weight.shape[1:])  # (C, C_in, kh, kw)
    init(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(r * r, dim=0))  # (C*r^2, C_in, kh, kw)
    return weight
