"""What an output unit really depends on: its effective receptive field, by gradients.

:func:`effective_receptive_field` back-propagates one output unit to random inputs (Luo et
al. 2016); :func:`support_box` is the bounding box of a gradient map's non-zero pixels, the
field measured on the module itself.

References
----------
- W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective Receptive Field in Deep
  Convolutional Neural Networks", NeurIPS 2016. https://arxiv.org/abs/1701.04128
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib._checks import check_int, type_name

__all__ = ["effective_receptive_field", "support_box"]


def effective_receptive_field(model: nn.Module, input_shape: Sequence[int], *,
                              output_index: tuple[int, int] | None = None, n_samples: int = 1,
                              seed: int = 0) -> torch.Tensor:
    """Effective receptive field (Luo et al. 2016) of one output pixel, by gradients.

    The output pixel (summed over channels) is back-propagated to a random normal input;
    ``|grad|`` is averaged over channels and ``n_samples`` inputs and scaled to max 1.

    Parameters
    ----------
    model : nn.Module
        Maps ``(1, C, H, W)`` to ``(1, C_out, H_out, W_out)``; run in eval mode.
    input_shape : (C, H, W)
    output_index : (i, j), optional
        Output pixel; default the centre ``(H_out // 2, W_out // 2)``.
    n_samples : int
    seed : int
        Seeds the random inputs (a private generator).

    Returns
    -------
    torch.Tensor
        ``(H, W)`` float in [0, 1] (all zeros if the gradient vanishes).
    """
    if not isinstance(input_shape, (tuple, list, torch.Size)):
        raise TypeError(f"input_shape must be a tuple (C, H, W), got {type_name(input_shape)}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {len(input_shape)} values: "
                         f"{input_shape!r}")
    input_shape = tuple(check_int(f"input_shape[{i}]", v, 1) for i, v in enumerate(input_shape))
    n_samples = check_int("n_samples", n_samples, 1)
    gen = torch.Generator().manual_seed(seed)
    training, total = model.training, torch.zeros(input_shape[1:])
    model.eval()
    try:
        for _ in range(n_samples):
            x = torch.randn(1, *input_shape, generator=gen).requires_grad_(True)
            out = model(x)
            if out.dim() != 4:
                raise ValueError(f"model output must be (1, C, H, W), got {tuple(out.shape)}")
            i, j = output_index or (out.shape[-2] // 2, out.shape[-1] // 2)
            if not (0 <= i < out.shape[-2] and 0 <= j < out.shape[-1]):
                raise ValueError(f"output_index {(i, j)} is outside the output "
                                 f"{tuple(out.shape[-2:])}")
            (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
            total += grad[0].abs().mean(0).detach()
    finally:
        model.train(training)
    peak = total.max()
    return total / peak if peak > 0 else total


def support_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, x0, y1, x1)``, ends exclusive, of the non-zero pixels of a map.

    Applied to an input gradient (or :func:`effective_receptive_field`) it is the region an
    output unit actually depends on: its measured receptive field.

    Parameters
    ----------
    grad : torch.Tensor, shape (H, W)

    Examples
    --------
    >>> g = torch.zeros(6, 6)
    >>> g[1:4, 2:5] = 1.0
    >>> support_box(g)
    (1, 2, 4, 5)
    """
    if not isinstance(grad, torch.Tensor) or grad.dim() != 2:
        got = tuple(grad.shape) if isinstance(grad, torch.Tensor) else type(grad).__name__
        raise ValueError(f"grad must be a 2-D tensor (H, W), got {got}")
    ys, xs = torch.nonzero(grad, as_tuple=True)
    if ys.numel() == 0:
        raise ValueError("grad is zero everywhere: no pixel influences the output")
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1
