"""Segmentation metrics from a dataset-level confusion matrix, and the boundary F1 score.

``ConfusionMatrix`` accumulates ``(target, prediction)`` pixel counts over a whole dataset
(one :func:`torch.bincount` per batch); every score is then read off the matrix: pixel
accuracy, mean class accuracy, per-class IoU, mIoU and frequency-weighted IoU (Long et al.,
2015, section 5). ``boundary_f1`` scores how well predicted contours fall on true ones
(Csurka, Larlus, Perronnin, 2013).

Conventions: rows of the matrix are target classes, columns predicted classes; pixels whose
target is ``ignore_index`` (255) are skipped. A class absent from both target and prediction
has IoU ``NaN`` and is left out of the mIoU. When no pixel is labelled at all, every score
is ``NaN`` and a ``RuntimeWarning`` says so.

Differences with torchmetrics 1.x (checked in ``tests/unit/test_metrics.py``):

- ``MulticlassJaccardIndex(average=None)`` gives 0, not NaN, for a class absent from both
  (its ``zero_division``); ``average="macro"`` leaves such classes out, like ``miou``.
- ``MulticlassAccuracy(average="macro")`` averages recall over classes present in the target
  *or* the prediction (a class only predicted counts as 0); ``mean_accuracy`` averages over
  classes present in the target only (Long et al.'s "mean accuracy"). They agree when every
  predicted class also occurs in the target.
- ``MulticlassJaccardIndex(average="weighted")`` equals ``fw_iou``.

References
----------
- Long, Shelhamer, Darrell, "Fully convolutional networks for semantic segmentation", CVPR
  2015 (pixel accuracy, mean accuracy, mean IU, frequency weighted IU).
- Csurka, Larlus, Perronnin, "What is a good evaluation measure for semantic segmentation?",
  BMVC 2013 (the boundary F1 score, per image and class, averaged over classes present).
- torchmetrics ``MulticlassJaccardIndex``, ``MulticlassAccuracy``,
  ``MulticlassConfusionMatrix``: https://lightning.ai/docs/torchmetrics/
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from course_lib._checks import (
    check_ignore_index,
    check_int,
    check_labels,
    check_num_classes,
    type_name,
)

__all__ = ["ConfusionMatrix", "boundary_f1"]

_EMPTY = ("no labelled pixel was seen (all pixels are ignore_index={ignore}, or update() was "
          "never called): the scores are NaN")


# ----------------------------------------------------------------------------- validation
def _check_pair(pred, target, num_classes, ignore_index):
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"pred and target must be torch.Tensors, got {type_name(pred)} "
                        f"and {type_name(target)}")
    if pred.shape != target.shape or pred.ndim not in (2, 3):
        raise ValueError(f"pred and target must be label maps of the same shape (H, W) or "
                         f"(N, H, W), got pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)}")
    check_labels("pred", pred, num_classes, ignore_index, allow_ignore=False)
    check_labels("target", target, num_classes, ignore_index)


# ----------------------------------------------------------------------------- confusion matrix
class ConfusionMatrix:
    """Pixel counts ``matrix[t, p]`` of target class ``t`` predicted as ``p``, over a dataset.

    Parameters
    ----------
    num_classes : int
        Number of classes, background included.
    ignore_index : int or None
        Target label of pixels to skip (default 255). Must not be a valid class.

    Attributes
    ----------
    matrix : torch.Tensor, shape (C, C), int64
        Rows are target classes, columns predicted classes.

    Examples
    --------
    >>> cm = ConfusionMatrix(3)
    >>> target = torch.tensor([[0, 0, 1], [1, 255, 2]])
    >>> pred = torch.tensor([[0, 1, 1], [1, 2, 2]])
    >>> cm.update(pred, target).matrix.tolist()
    [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    >>> cm.pixel_accuracy(), [round(v, 3) for v in cm.iou().tolist()]
    (0.8, [0.5, 0.667, 1.0])
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        self.num_classes = check_num_classes(num_classes)
        self.ignore_index = check_ignore_index(ignore_index, num_classes)
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def __repr__(self) -> str:
        return (f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index="
                f"{self.ignore_index}, pixels={int(self.matrix.sum())})")

    def reset(self) -> ConfusionMatrix:
        """Zero the counts; return ``self``."""
        self.matrix.zero_()
        return self

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> ConfusionMatrix:
        """Add the pixels of one batch; return ``self`` (so calls chain).

        Parameters
        ----------
        pred : torch.Tensor, shape (H, W) or (N, H, W), int64
            Predicted labels in ``[0, C)`` (not logits: take ``logits.argmax(1)``).
        target : torch.Tensor, same shape as ``pred``, int64
            True labels in ``[0, C)`` or ``ignore_index``.
        """
        _check_pair(pred, target, self.num_classes, self.ignore_index)
        c = self.num_classes
        valid = target != self.ignore_index if self.ignore_index is not None else \
            torch.ones_like(target, dtype=torch.bool)
        codes = target[valid] * c + pred[valid].to(target.device)  # (P,) one code per pixel
        counts = torch.bincount(codes.long(), minlength=c * c)  # (C*C,)
        self.matrix += counts.reshape(c, c).cpu()  # (C, C)
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix) or other.num_classes != self.num_classes:
            raise ValueError("can only add a ConfusionMatrix with the same num_classes")
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix + other.matrix
        return out

    # ------------------------------------------------------------------ scores
    def _empty(self) -> bool:
        if int(self.matrix.sum()) == 0:
            warnings.warn(_EMPTY.format(ignore=self.ignore_index), RuntimeWarning, stacklevel=3)
            return True
        return False

    def _parts(self):
        m = self.matrix.double()
        tp = m.diag()  # (C,)
        return tp, m.sum(1), m.sum(0)  # true positives, target counts, predicted counts

    def pixel_accuracy(self) -> float:
        """Correct pixels / labelled pixels: ``trace(M) / sum(M)``."""
        if self._empty():
            return math.nan
        tp, support, _ = self._parts()
        return float(tp.sum() / support.sum())

    def mean_accuracy(self) -> float:
        """Recall ``M[c, c] / sum_p M[c, p]`` averaged over classes present in the target."""
        if self._empty():
            return math.nan
        tp, support, _ = self._parts()
        present = support > 0
        return float((tp[present] / support[present]).mean())

    def iou(self) -> torch.Tensor:
        """Per-class IoU ``tp / (tp + fp + fn)``, shape (C,), float64.

        ``NaN`` for a class absent from both target and prediction; 0 for a class that is
        only predicted, or only in the target.
        """
        self._empty()
        tp, support, predicted = self._parts()
        union = support + predicted - tp  # (C,) tp + fn + fp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))

    def miou(self) -> float:
        """Mean IoU over classes whose IoU is not ``NaN``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            iou = self.iou()
        if self._empty():
            return math.nan
        return float(iou.nanmean())

    def fw_iou(self) -> float:
        """Frequency-weighted IoU ``sum_c (support_c / total) IoU_c`` (Long et al. 2015)."""
        if self._empty():
            return math.nan
        tp, support, predicted = self._parts()
        union = (support + predicted - tp).clamp_min(1)
        return float(((support / support.sum()) * (tp / union)).sum())

    def compute(self) -> dict:
        """All scores: ``pixel_acc``, ``mean_acc``, ``miou``, ``fw_iou`` (floats), ``iou``
        (list of C floats, NaN for absent classes). Warns once if no pixel is labelled."""
        empty = self._empty()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = {"pixel_acc": self.pixel_accuracy(), "mean_acc": self.mean_accuracy(),
                   "miou": self.miou(), "fw_iou": self.fw_iou(), "iou": self.iou().tolist()}
        if empty:
            out["iou"] = [math.nan] * self.num_classes
        return out


# ----------------------------------------------------------------------------- boundary F1
def _inner_boundary(onehot: torch.Tensor) -> torch.Tensor:
    """Pixels of a region with a neighbour (8-connectivity) outside it. (N, C, H, W) bool."""
    x = F.pad(onehot.float(), (1, 1, 1, 1), mode="replicate")  # the image border is no edge
    eroded = -F.max_pool2d(-x, kernel_size=3, stride=1)  # (N, C, H, W) erosion by a 3x3 square
    return onehot & (eroded < 0.5)


def _dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within Euclidean distance ``radius`` of ``mask``. (N, C, H, W) bool."""
    if radius == 0:
        return mask
    n, c, h, w = mask.shape
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).float()  # (2r+1, 2r+1)
    hit = F.conv2d(mask.float().reshape(n * c, 1, h, w), disk[None, None], padding=radius)
    return (hit > 0.5).reshape(n, c, h, w)


def boundary_f1(pred: torch.Tensor, target: torch.Tensor, tolerance: int = 2,
                num_classes: int | None = None, ignore_index: int | None = 255) -> float:
    """Boundary F1 score (BF) after Csurka et al. (2013), averaged over images.

    Definition. For an image and a class ``c``, the boundary of ``c`` is the set of pixels of
    class ``c`` with at least one of their 8 neighbours in another class (the region minus its
    erosion by a 3x3 square; the image border is not a boundary). With ``B_p`` and ``B_t`` the
    predicted and true boundaries (pixels whose target is ``ignore_index`` removed from both),
    and ``d`` the Euclidean distance in pixels,

    - precision ``P = |{x in B_p : d(x, B_t) <= tolerance}| / |B_p|``,
    - recall ``R = |{x in B_t : d(x, B_p) <= tolerance}| / |B_t|``,
    - ``F1_c = 2 P R / (P + R)`` (0 if ``P + R = 0``); 1 if both boundaries are empty and 0
      if only one is.

    The image score averages ``F1_c`` over the classes present in its target; the result
    averages image scores over the images that have a labelled pixel.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (H, W) or (N, H, W), int64
        Predicted labels in ``[0, C)``; true labels in ``[0, C)`` or ``ignore_index``.
    tolerance : int
        Distance in pixels within which a boundary pixel counts as matched (>= 0).
    num_classes : int, optional
        Defaults to ``1 + max label`` of ``pred`` and ``target``.
    ignore_index : int or None

    Returns
    -------
    float
        In ``[0, 1]``; ``NaN`` (with a ``RuntimeWarning``) if every pixel is ignored.

    Examples
    --------
    >>> target = torch.zeros(8, 8, dtype=torch.long)
    >>> target[2:6, 2:6] = 1
    >>> boundary_f1(target, target)
    1.0
    >>> boundary_f1(target.roll(1, dims=1), target, tolerance=1)
    1.0
    >>> round(boundary_f1(target.roll(1, dims=1), target, tolerance=0), 3)
    0.5
    """
    tolerance = check_int("tolerance (pixels)", tolerance, 0)
    if num_classes is None:
        if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(f"pred and target must be torch.Tensors, got "
                            f"{type(pred).__name__} and {type(target).__name__}")
        valid_t = target[target != ignore_index] if ignore_index is not None else target
        num_classes = int(max(pred.max() if pred.numel() else 0,
                              valid_t.max() if valid_t.numel() else 0)) + 1
    num_classes = check_num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index, num_classes)
    _check_pair(pred, target, num_classes, ignore_index)
    if pred.ndim == 2:
        pred, target = pred[None], target[None]  # (1, H, W)
    valid = (target != ignore_index)[:, None] if ignore_index is not None else \
        torch.ones_like(target, dtype=torch.bool)[:, None]  # (N, 1, H, W)
    classes = torch.arange(num_classes, device=target.device)[None, :, None, None]
    on_t = target[:, None] == classes  # (N, C, H, W) one-hot target
    on_p = pred[:, None] == classes  # (N, C, H, W) one-hot prediction
    b_t = _inner_boundary(on_t) & valid
    b_p = _inner_boundary(on_p) & valid
    n_t, n_p = b_t.sum((2, 3)).double(), b_p.sum((2, 3)).double()  # (N, C)
    hit_p = (b_p & _dilate_disk(b_t, tolerance)).sum((2, 3)).double()  # matched predicted
    hit_t = (b_t & _dilate_disk(b_p, tolerance)).sum((2, 3)).double()  # matched true
    precision = hit_p / n_p.clamp_min(1)
    recall = hit_t / n_t.clamp_min(1)
    f1 = torch.where(precision + recall > 0,
                     2 * precision * recall / (precision + recall).clamp_min(1e-12),
                     torch.zeros_like(precision))  # (N, C)
    f1 = torch.where((n_t == 0) & (n_p == 0), torch.ones_like(f1), f1)
    f1 = torch.where((n_t == 0) != (n_p == 0), torch.zeros_like(f1), f1)
    present = on_t.any(3).any(2)  # (N, C) classes in each image's target
    per_image = (f1 * present).sum(1) / present.sum(1)  # (N,) NaN for all-ignored images
    if not bool(present.any()):
        warnings.warn(_EMPTY.format(ignore=ignore_index), RuntimeWarning, stacklevel=2)
        return math.nan
    return float(per_image.nanmean())
