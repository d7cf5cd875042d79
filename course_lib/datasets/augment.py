"""U-Net's data side: elastic deformations and the border weight map (lecture 07).

Ronneberger, Fischer and Brox trained U-Net on 30 images. Two tricks made that work:

- **elastic deformations**: "random displacement vectors on a coarse 3 by 3 grid", drawn from
  a Gaussian with "10 pixels standard deviation", interpolated to every pixel ("bicubic
  interpolation"); the image and its labels are warped by the same field
  (:func:`displacement_field`, :func:`warp`, :func:`elastic_deform`);
- a **weight map** on the loss, ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``,
  with ``w0 = 10`` and ``sigma = 5`` px, where ``d1`` and ``d2`` are the distances to the
  nearest and the second nearest object: the thin background gaps between touching objects
  weigh much more, so the network learns to separate them (:func:`border_weight_map`).

References
----------
- O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
  Segmentation", MICCAI 2015, sections 3 and 3.1. https://arxiv.org/abs/1505.04597
- P. Y. Simard, D. Steinkraus, J. C. Platt, "Best practices for convolutional neural networks
  applied to visual document analysis", ICDAR 2003 (elastic distortions).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from course_lib._checks import check_choice, check_int, check_number, check_tensor

__all__ = ["displacement_field", "warp", "elastic_deform", "border_weight_map"]


def displacement_field(height: int, width: int, *, grid: int = 3, sigma: float = 10.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """A smooth random displacement of every pixel, after Ronneberger et al. (2015).

    ``grid x grid`` vectors drawn from ``N(0, sigma^2)`` (pixels) sit evenly on the image, the
    corners included; bicubic interpolation gives every pixel its displacement.

    Parameters
    ----------
    height, width : int
        Image size, ``>= 2``.
    grid : int
        Control points per side, ``>= 2`` (the paper: 3).
    sigma : float
        Standard deviation of the control vectors in pixels, ``>= 0`` (the paper: 10).
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor, shape (2, height, width), float32
        ``(dy, dx)``: pixel ``(i, j)`` of the warped image reads ``(i + dy, j + dx)``.

    Examples
    --------
    >>> field = displacement_field(32, 48, generator=torch.Generator().manual_seed(0))
    >>> field.shape
    torch.Size([2, 32, 48])
    """
    height, width = check_int("height", height, 2), check_int("width", width, 2)
    grid, sigma = check_int("grid", grid, 2), check_number("sigma", sigma, 0)
    coarse = torch.randn(1, 2, grid, grid, generator=generator, dtype=torch.float64) * sigma
    # align_corners: control points on the corners and evenly between them
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return field[0].float()  # (2, H, W)


def warp(x: torch.Tensor, displacement: torch.Tensor, *, mode: str = "bilinear"
         ) -> torch.Tensor:
    """Sample ``x`` at the displaced positions: ``out[..., i, j] = x[..., i + dy, j + dx]``.

    Positions outside the image are mirrored back in (``... c b | a b c ...``), as U-Net's
    overlap-tile strategy extends images, so no pixel is left empty.

    Parameters
    ----------
    x : torch.Tensor, shape (H, W), (C, H, W) or (N, C, H, W)
        An image (floating) or labels (integer: use ``mode="nearest"``).
    displacement : torch.Tensor, shape (2, H, W), floating
        ``(dy, dx)`` in pixels, e.g. from :func:`displacement_field`.
    mode : {"bilinear", "nearest"}
        Interpolation; integer ``x`` needs ``"nearest"`` (labels are never averaged).

    Returns
    -------
    torch.Tensor, the shape and dtype of ``x``

    Raises
    ------
    TypeError
        ``x`` or ``displacement`` not a tensor.
    ValueError
        Wrong dimensions, sizes that differ, ``mode`` unknown, or integer ``x`` with
        ``mode="bilinear"``.
    """
    check_tensor("x", x, ndim=(2, 3, 4), shape_hint="(H, W), (C, H, W) or (N, C, H, W)")
    check_tensor("displacement", displacement, ndim=3, floating=True, shape_hint="(2, H, W)")
    mode = check_choice("mode", mode, ("bilinear", "nearest"))
    height, width = x.shape[-2:]
    if displacement.shape != (2, height, width):
        raise ValueError(f"displacement must have shape (2, {height}, {width}) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(displacement.shape)}")
    if not x.is_floating_point() and mode != "nearest":
        raise ValueError(f"x has integer dtype {x.dtype} (labels): warp it with "
                         "mode='nearest', labels must not be averaged")
    if height < 2 or width < 2:
        raise ValueError(f"x must be at least 2 x 2, got {height} x {width}")
    batch = x.reshape(-1, 1, height, width).double()  # (B, 1, H, W): every channel alike
    rows = torch.arange(height, dtype=torch.float64)[:, None] + displacement[0].double()
    cols = torch.arange(width, dtype=torch.float64)[None, :] + displacement[1].double()
    # grid_sample's (x, y) in [-1, 1]; align_corners: -1 and 1 are the centres of the
    # first and last pixels, and "reflection" mirrors about them
    grid = torch.stack([2 * cols / (width - 1) - 1, 2 * rows / (height - 1) - 1], dim=-1)
    grid = grid.expand(batch.shape[0], height, width, 2)  # (B, H, W, 2)
    out = F.grid_sample(batch, grid, mode=mode, padding_mode="reflection", align_corners=True)
    out = out.reshape(x.shape)  # (B, 1, H, W) -> x's shape
    return out.to(x.dtype) if x.is_floating_point() else out.round().to(x.dtype)


def elastic_deform(image: torch.Tensor, target: torch.Tensor | None = None, *,
                   grid: int = 3, sigma: float = 10.0,
                   generator: torch.Generator | None = None):
    """U-Net's elastic deformation of an image and its labels, by one random field.

    Parameters
    ----------
    image : torch.Tensor, shape (C, H, W) or (H, W), floating
    target : torch.Tensor, shape (H, W) or (N, H, W), optional
        Labels (semantic mask, or instance masks), warped with ``mode="nearest"``.
    grid, sigma, generator
        As :func:`displacement_field` (the paper: a 3 x 3 grid, 10 px).

    Returns
    -------
    torch.Tensor, or tuple of torch.Tensor
        The warped image, and the warped target when one is given.

    Examples
    --------
    >>> image, mask = torch.rand(3, 40, 40), torch.zeros(40, 40, dtype=torch.int64)
    >>> out, out_mask = elastic_deform(image, mask, generator=torch.Generator().manual_seed(0))
    >>> out.shape, out_mask.dtype
    (torch.Size([3, 40, 40]), torch.int64)
    """
    check_tensor("image", image)
    field = displacement_field(*image.shape[-2:], grid=grid, sigma=sigma, generator=generator)
    warped = warp(image, field)
    if target is None:
        return warped
    check_tensor("target", target)
    if target.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"target must have the image's size {tuple(image.shape[-2:])}, got "
                         f"shape {tuple(target.shape)}")
    return warped, warp(target, field, mode="nearest")


def border_weight_map(instances: torch.Tensor, *, w0: float = 10.0, sigma: float = 5.0,
                      balance: bool = True) -> torch.Tensor:
    """U-Net's loss weights: class balance plus a bonus on the gaps between close objects.

    ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))`` on background pixels, where
    ``d1`` and ``d2`` are the Euclidean distances from ``x`` to the nearest and the second
    nearest object; objects' own pixels get ``w_c`` alone (the paper leaves the term's domain
    implicit: its purpose, the separation borders, lies in the background). With fewer than
    two objects the bonus is 0.

    Parameters
    ----------
    instances : torch.Tensor, shape (N, H, W), bool or integer 0/1
        One mask per object (``ShapesDataset(target="instance")`` gives them as ``masks``).
    w0, sigma : float
        Height (``>= 0``) and width in pixels (``> 0``) of the bonus; the paper: 10 and 5.
    balance : bool
        ``w_c``: True weighs background and object pixels so that each class has the same
        total weight (``H W / (2 count)``); False gives 1 everywhere.

    Returns
    -------
    torch.Tensor, shape (H, W), float32

    Raises
    ------
    TypeError
        ``instances`` not a tensor, ``balance`` not a bool, a number of the wrong type.
    ValueError
        ``instances`` not 3-D or not 0/1, ``w0 < 0``, ``sigma <= 0``.

    Examples
    --------
    >>> two = torch.zeros(2, 1, 9, dtype=torch.bool)
    >>> two[0, 0, :4], two[1, 0, 5:] = True, True  # two objects, one pixel apart
    >>> w = border_weight_map(two, balance=False)
    >>> round(float(w[0, 4]), 3)  # the gap: d1 = d2 = 1, 1 + 10 exp(-2^2 / (2 5^2))
    10.231
    """
    check_tensor("instances", instances, ndim=3, shape_hint="(N, H, W)")
    if instances.is_floating_point() or bool(((instances != 0) & (instances != 1)).any()):
        raise ValueError(f"instances must hold bools or integers 0 and 1 (one mask per object), "
                         f"got dtype {instances.dtype} with values "
                         f"{instances.unique()[:6].tolist()}")
    w0, sigma = check_number("w0", w0, 0), check_number("sigma", sigma, 0, strict=True)
    if not isinstance(balance, bool):
        raise TypeError(f"balance must be a bool, got {balance!r} ({type(balance).__name__})")
    masks = instances.bool().cpu().numpy()  # (N, H, W)
    foreground = masks.any(0)  # (H, W)
    weights = np.ones(foreground.shape)
    if balance:
        for region in (foreground, ~foreground):
            if region.any():
                weights[region] = region.size / (2 * region.sum())
    if masks.shape[0] >= 2:
        # distance of every pixel to each object: (N, H, W), 0 on the object
        dist = np.stack([ndimage.distance_transform_edt(~m) for m in masks])
        d1, d2 = np.sort(dist, axis=0)[:2]  # nearest and second nearest object
        bonus = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        weights[~foreground] += bonus[~foreground]
    return torch.from_numpy(weights).float()
