"""Segmentation losses written from their formulas: weighted CE, focal, Dice, soft Jaccard.

All losses take raw ``logits`` of shape ``(N, C, H, W)`` (any number of spatial axes, as
:func:`torch.nn.functional.cross_entropy`) and an integer ``target`` of shape ``(N, H, W)``
(any integer dtype: uint8 masks as PNG files load, with 255 as ``ignore_index``, work; they
are converted to int64 first); pixels whose target is ``ignore_index`` (255) contribute
nothing, neither to a numerator nor to a denominator, and receive a zero gradient. When every
pixel is ignored, the averaged cross-entropy and focal losses are ``NaN`` (0 / 0), as
``F.cross_entropy``; Dice and soft Jaccard give ``1 - 1 = 0`` with ``eps > 0``.

- ``weighted_cross_entropy``: ``sum_i w[y_i] (-log p_i[y_i]) / sum_i w[y_i]``, as
  ``F.cross_entropy(weight=w)``; ``median_frequency_weights`` gives the usual ``w``.
- ``focal_loss``: ``-alpha[y] (1 - p_y)^gamma log p_y`` averaged over labelled pixels. With
  ``gamma=0, alpha=None`` it is the cross-entropy. The binary sigmoid focal loss of
  torchvision is the 2-class case with logits ``[0, x]`` and ``alpha = [1 - a, a]``
  (``softmax([0, x])[1] = sigmoid(x)``).
- ``dice_loss`` and ``soft_jaccard_loss``: one minus the soft Dice / Jaccard index of the
  softmax probabilities, computed per class over the whole batch and averaged over classes.

References
----------
- Lin, Goyal, Girshick, He, Dollar, "Focal loss for dense object detection", ICCV 2017.
- Eigen & Fergus, "Predicting depth, surface normals and semantic labels with a common
  multi-scale convolutional architecture", ICCV 2015 (median frequency balancing).
- Milletari, Navab, Ahmadi, "V-Net", 3DV 2016 (soft Dice loss).
- Rahman & Wang, "Optimizing intersection-over-union in deep neural networks for image
  segmentation", ISVC 2016 (soft Jaccard loss).
- torchvision ``ops.sigmoid_focal_loss``; PyTorch ``F.cross_entropy``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from course_lib._checks import (
    check_ignore_index,
    check_labels,
    check_num_classes,
    check_number,
    type_name,
)

__all__ = ["median_frequency_weights", "weighted_cross_entropy", "focal_loss", "dice_loss",
           "soft_jaccard_loss"]

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- validation
def _check_logits_target(logits, target, ignore_index):
    """Validate; return ``(valid, safe_target)``: (N, *S) bool and labels with 0 at ignored."""
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"logits and target must be torch.Tensors, got "
                        f"{type(logits).__name__} and {type(target).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor of raw scores (N, C, H, W), got "
                         f"dtype {logits.dtype} with shape {tuple(logits.shape)}; did you pass "
                         f"labels? convert scores with .float()")
    if logits.ndim < 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"logits (N, C, H, W) and target (N, H, W) do not match: got logits "
                         f"{tuple(logits.shape)} and target {tuple(target.shape)}")
    check_labels("target", target, logits.shape[1], ignore_index)
    target = target.long()  # one_hot and gather want int64; uint8 255 stays 255
    valid = target != ignore_index if ignore_index is not None else \
        torch.ones_like(target, dtype=torch.bool)
    return valid, torch.where(valid, target, torch.zeros_like(target))


def _check_weight(name, weight, num_classes, logits):
    """``weight`` as (C,) finite values >= 0 in the dtype and on the device of ``logits``."""
    if weight is None:
        return None
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{name} must be a float tensor of shape ({num_classes},), one weight "
                        f"per class, or None; got {type_name(weight)}")
    if not weight.is_floating_point() or tuple(weight.shape) != (num_classes,):
        raise ValueError(f"{name} must be a float tensor of shape ({num_classes},), one weight "
                         f"per class, or None; got {weight.dtype} {tuple(weight.shape)}")
    bad = ~torch.isfinite(weight) | (weight < 0)
    if bool(bad.any()):
        raise ValueError(f"{name} must hold finite weights >= 0, got {weight.tolist()} (bad "
                         f"at classes {torch.nonzero(bad).flatten().tolist()})")
    return weight.to(device=logits.device, dtype=logits.dtype)


def _check_eps(eps):
    return check_number("eps", eps, 0)


# ----------------------------------------------------------------------------- class weights
def _iter_masks(data):
    """Yield label tensors from a tensor of masks, a dataset of (image, mask), or masks."""
    if isinstance(data, torch.Tensor):
        yield data
        return
    items = (data[i] for i in range(len(data))) if hasattr(data, "__getitem__") \
        and hasattr(data, "__len__") else iter(data)
    for item in items:
        mask = item[1] if isinstance(item, (tuple, list)) and len(item) == 2 else item
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"dataset_or_masks must yield masks or (image, mask) pairs of "
                            f"tensors, got an item of type {type(mask).__name__}")
        yield mask


def median_frequency_weights(dataset_or_masks, num_classes: int,
                             ignore_index: int | None = 255) -> torch.Tensor:
    """Class weights by median frequency balancing (Eigen & Fergus 2015).

    ``freq_c = (pixels of class c) / (pixels of the images that contain c)`` and
    ``w_c = median(freq) / freq_c``: frequent classes get ``w < 1``, rare ones ``w > 1``.
    A class that never occurs gets weight 0 (and is left out of the median), with a warning.

    Parameters
    ----------
    dataset_or_masks : Dataset, iterable or torch.Tensor
        A dataset yielding ``(image, mask)`` (e.g. ``ShapesDataset``), a DataLoader yielding
        ``(images, masks)``, an iterable of masks, or a tensor of masks ``(N, H, W)`` or
        ``(H, W)``; labels (any integer dtype) in ``[0, C)`` or ``ignore_index``.
    num_classes : int
    ignore_index : int or None

    Returns
    -------
    torch.Tensor, shape (C,), float32

    Examples
    --------
    >>> masks = torch.tensor([[[0, 0, 0, 1]], [[0, 0, 2, 2]]])  # (2, 1, 4)
    >>> [round(w, 3) for w in median_frequency_weights(masks, 3).tolist()]
    [0.8, 2.0, 1.0]
    """
    num_classes = check_num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index, num_classes)
    pixels = torch.zeros(num_classes, dtype=torch.float64)  # pixels of class c
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)  # pixels of images with c
    for mask in _iter_masks(dataset_or_masks):
        mask = check_labels("mask", mask, num_classes, ignore_index).long()
        batch = mask.reshape(-1, *mask.shape[-2:]) if mask.ndim >= 2 else mask[None]
        for m in batch:  # (H, W)
            labels = m[m != ignore_index] if ignore_index is not None else m.reshape(-1)
            counts = torch.bincount(labels.cpu(), minlength=num_classes).double()  # (C,)
            pixels += counts
            image_pixels += (counts > 0) * counts.sum()
    present = pixels > 0
    if not bool(present.any()):
        raise ValueError("dataset_or_masks holds no labelled pixel (empty, or every pixel is "
                         f"ignore_index={ignore_index}); cannot compute class frequencies")
    if not bool(present.all()):
        warnings.warn(f"classes {torch.nonzero(~present).flatten().tolist()} never occur: "
                      "their weight is 0", RuntimeWarning, stacklevel=2)
    freq = pixels / image_pixels.clamp_min(1)  # (C,)
    median = freq[present].quantile(0.5)  # the average of the two middles for an even count
    return torch.where(present, median / freq.clamp_min(1e-300), 0.0).float()


# ----------------------------------------------------------------------------- losses
def _reduce(loss, valid, reduction, denominator=None):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / (valid.sum() if denominator is None else denominator)


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                           weight: torch.Tensor | None = None,
                           ignore_index: int | None = 255) -> torch.Tensor:
    """Class-weighted cross-entropy, ``F.cross_entropy(logits, target, weight)`` from scratch.

    ``sum_i w[y_i] (-log softmax(z_i)[y_i]) / sum_i w[y_i]`` over labelled pixels ``i``.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C, H, W), float
    target : torch.Tensor, shape (N, H, W), any integer dtype
    weight : torch.Tensor, shape (C,), optional
        Per-class weights, finite and ``>= 0`` (e.g. ``median_frequency_weights``); ``None``
        means all 1.
    ignore_index : int or None

    Returns
    -------
    torch.Tensor, scalar

    Examples
    --------
    >>> logits, target = torch.zeros(1, 4, 2, 2), torch.tensor([[[0, 1], [2, 255]]])
    >>> round(float(weighted_cross_entropy(logits, target)), 4)  # log(4)
    1.3863
    """
    valid, safe = _check_logits_target(logits, target, ignore_index)
    weight = _check_weight("weight", weight, logits.shape[1], logits)
    nll = -F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, H, W)
    w = valid.to(logits.dtype) if weight is None else weight[safe] * valid  # (N, H, W)
    return (w * nll).sum() / w.sum()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               alpha: torch.Tensor | None = None, ignore_index: int | None = 255,
               reduction: str = "mean") -> torch.Tensor:
    """Multi-class (softmax) focal loss ``-alpha[y] (1 - p_y)^gamma log p_y`` (Lin et al. 2017).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C, H, W), float
    target : torch.Tensor, shape (N, H, W), any integer dtype
    gamma : float
        Focusing parameter, ``>= 0``; 0 gives the (alpha-weighted) cross-entropy.
    alpha : torch.Tensor, shape (C,), optional
        Per-class weights, finite and ``>= 0``; ``None`` means all 1.
    ignore_index : int or None
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides the sum by the number of labelled pixels (as Lin et al. and
        torchvision; ``F.cross_entropy(weight=...)`` divides by the sum of the weights
        instead); ``"none"`` returns (N, H, W) with 0 at ignored pixels.

    Returns
    -------
    torch.Tensor, scalar or (N, H, W)

    Examples
    --------
    >>> logits = torch.randn(2, 3, 4, 4)
    >>> target = torch.randint(0, 3, (2, 4, 4))
    >>> bool(torch.allclose(focal_loss(logits, target, gamma=0),
    ...                     F.cross_entropy(logits, target)))
    True
    """
    gamma = check_number("gamma", gamma, 0)
    valid, safe = _check_logits_target(logits, target, ignore_index)
    alpha = _check_weight("alpha", alpha, logits.shape[1], logits)
    logp = F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, H, W)
    loss = -logp
    if gamma != 0:
        loss = loss * (1 - logp.exp()).clamp_min(0) ** gamma
    if alpha is not None:
        loss = loss * alpha[safe]
    loss = loss * valid
    return _reduce(loss, valid, reduction)


def _soft_counts(logits, target, ignore_index):
    """Per-class soft intersection and sum ``|P| + |G|`` over labelled pixels, each (C,)."""
    valid, safe = _check_logits_target(logits, target, ignore_index)
    c = logits.shape[1]
    prob = F.softmax(logits, dim=1).movedim(1, -1).reshape(-1, c)  # (P, C) all pixels
    onehot = F.one_hot(safe.reshape(-1), c).to(prob.dtype)  # (P, C)
    v = valid.reshape(-1, 1).to(prob.dtype)  # (P, 1): ignored pixels count nowhere
    inter = (prob * onehot * v).sum(0)  # (C,)
    total = ((prob + onehot) * v).sum(0)  # (C,)
    return inter, total


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = 255,
              eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c (2 |P_c . G_c| + eps) / (|P_c| + |G_c| + eps)``.

    ``P_c`` are the softmax probabilities of class ``c``, ``G_c`` its one-hot target; sums
    run over the labelled pixels of the whole batch. ``eps`` smooths empty classes.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C, H, W), float
    target : torch.Tensor, shape (N, H, W), any integer dtype
    ignore_index : int or None
    eps : float
        Smoothing, ``>= 0``.

    Returns
    -------
    torch.Tensor, scalar in [0, 1]

    Examples
    --------
    >>> target = torch.tensor([[[0, 1], [1, 255]]])
    >>> logits = 50.0 * F.one_hot(target.clamp_max(1), 2).permute(0, 3, 1, 2).float()
    >>> float(dice_loss(logits, target, eps=0.0))
    0.0
    """
    eps = _check_eps(eps)
    inter, total = _soft_counts(logits, target, ignore_index)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def soft_jaccard_loss(logits: torch.Tensor, target: torch.Tensor,
                      ignore_index: int | None = 255, eps: float = 1.0) -> torch.Tensor:
    """Soft Jaccard (IoU) loss ``1 - mean_c (I_c + eps) / (|P_c| + |G_c| - I_c + eps)``.

    ``I_c = |P_c . G_c|`` is the soft intersection of the probabilities and the one-hot target.

    Same conventions as :func:`dice_loss`. On one-hot predictions it is ``1 - mIoU`` of the
    batch (with ``eps=0``, every class present).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C, H, W), float
    target : torch.Tensor, shape (N, H, W), any integer dtype
    ignore_index : int or None
    eps : float
        Smoothing, ``>= 0``.

    Returns
    -------
    torch.Tensor, scalar in [0, 1]

    Examples
    --------
    >>> target = torch.tensor([[[0, 1], [1, 1]]])
    >>> logits = torch.zeros(1, 2, 2, 2)  # p = 1/2 everywhere
    >>> round(float(soft_jaccard_loss(logits, target, eps=0.0)), 4)  # 1 - (0.5/2.5 + 1.5/3.5)/2
    0.6857
    """
    eps = _check_eps(eps)
    inter, total = _soft_counts(logits, target, ignore_index)
    return 1 - ((inter + eps) / (total - inter + eps)).mean()
