"""``evaluate`` (scores from one dataset-level confusion matrix) and ``predict`` (label maps).

References
----------
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015: pixel accuracy and mean IoU from one confusion matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from course_lib._checks import check_int, type_name
from course_lib.train._common import IGNORE_INDEX, make_loader
from course_lib.utils import get_device

__all__ = ["evaluate", "predict"]


@torch.no_grad()
def evaluate(model: nn.Module, data, *, num_classes: int, device=None, batch_size: int = 32,
             ignore_index: int = IGNORE_INDEX, num_workers: int = 0, loss_fn=None) -> dict:
    """Scores of ``model`` on ``data`` from one dataset-level confusion matrix.

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset or DataLoader of ``(image (3, H, W), mask (H, W))``, integer masks
    num_classes : int
    device : str or torch.device, optional
        Resolved by :func:`course_lib.utils.get_device` (an unavailable one: the CPU).
    ignore_index : int
        Mask value left out of every score.
    loss_fn : callable, optional
        ``f(logits, target)`` for the reported "loss" (default: cross-entropy).

    Returns
    -------
    dict
        :meth:`course_lib.metrics.ConfusionMatrix.compute` (``pixel_acc``, ``mean_acc``,
        ``miou``, ``fw_iou``, ``iou``) plus ``loss``, the batch-size-weighted mean loss.

    Examples
    --------
    >>> from course_lib.datasets import ShapesDataset
    >>> from course_lib.models.context import single_scale_net
    >>> scores = evaluate(single_scale_net(width=4), ShapesDataset("val", 4, image_size=32),
    ...                   num_classes=4, device="cpu")
    >>> 0.0 <= scores["pixel_acc"] <= 1.0 and len(scores["iou"]) == 4
    True
    """
    from course_lib.metrics import ConfusionMatrix

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type_name(model)}")
    batch_size = check_int("batch_size", batch_size, 1)
    if loss_fn is None:
        loss_fn = lambda logits, target: F.cross_entropy(logits, target.long(),
                                                         ignore_index=ignore_index)
    device = get_device(device)
    loader = make_loader(data, "data", batch_size, num_workers)
    was_training = model.training
    model.to(device).eval()
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    total, count = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        logits = model(images)  # (N, C, H, W)
        total += loss_fn(logits, masks).item() * len(images)
        count += len(images)
        matrix.update(logits.argmax(1).cpu(), masks.cpu())
    model.train(was_training)
    if count == 0:
        raise ValueError("data is empty: nothing to evaluate")
    return {**matrix.compute(), "loss": total / count}


@torch.no_grad()
def predict(model: nn.Module, images, *, device=None, batch_size: int = 32) -> torch.Tensor:
    """Label maps ``argmax_c logits`` of ``model`` for a batch, one image or a Dataset.

    Parameters
    ----------
    images : tensor (N, 3, H, W) or (3, H, W), or a Dataset of images or (image, target)
    device : str or torch.device, optional
        Resolved by :func:`course_lib.utils.get_device` (an unavailable one: the CPU).
    batch_size : int

    Returns
    -------
    torch.LongTensor, shape (N, H, W) (or (H, W) for a single image), on the CPU

    Examples
    --------
    >>> from course_lib.models.context import single_scale_net
    >>> predict(single_scale_net(width=4), torch.rand(3, 32, 32), device="cpu").shape
    torch.Size([32, 32])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type_name(model)}")
    batch_size = check_int("batch_size", batch_size, 1)
    single = False
    if isinstance(images, Dataset) and not isinstance(images, torch.Tensor):
        items = [images[i] for i in range(len(images))]
        images = torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a tensor or a Dataset, got {type_name(images)}")
    if images.ndim == 3:
        images, single = images.unsqueeze(0), True  # (1, 3, H, W)
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be float (N, 3, H, W) or (3, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    device = get_device(device)
    was_training = model.training
    model.to(device).eval()
    labels = [model(images[i:i + batch_size].to(device)).argmax(1).cpu()
              for i in range(0, len(images), batch_size)]
    model.train(was_training)
    out = torch.cat(labels) if labels else torch.empty(0, *images.shape[-2:], dtype=torch.long)
    return out[0] if single else out
