"""``ConfusionMatrix``: segmentation scores from one dataset-level confusion matrix.

``ConfusionMatrix`` accumulates ``(target, prediction)`` pixel counts over a whole dataset
(one :func:`torch.bincount` per batch); every score is then read off the matrix: pixel
accuracy, mean class accuracy, per-class IoU, mIoU and frequency-weighted IoU (Long et al.,
2015, section 5).

Conventions: rows of the matrix are target classes, columns predicted classes; pixels whose
target is ``ignore_index`` (255) are skipped. A class absent from both target and prediction
has IoU ``NaN`` and is left out of the mIoU. When no pixel is labelled at all, every score
is ``NaN`` and a ``RuntimeWarning`` says so. Labels may have any integer dtype (uint8 masks
as PNG files load); they are converted to int64 before any arithmetic.
Differences with torchmetrics 1.x (checked in ``tests/unit/test_metrics.py``):

- ``MulticlassJaccardIndex(average=None)`` gives 0, not NaN, for a class absent from both
  (its ``zero_division``); ``average="macro"`` leaves such classes out, like ``miou``.
- ``MulticlassAccuracy(average="macro")`` averages recall over classes present in the target
  *or* the prediction (a class only predicted counts as 0); ``mean_accuracy`` averages over
  classes present in the target only (Long et al.'s "mean accuracy"). They agree when every
  predicted class also occurs in the target.
- ``MulticlassJaccardIndex(average="weighted")`` equals ``fw_iou``.
- ``MulticlassConfusionMatrix`` equals ``matrix`` for every integer label dtype (uint8,
  int8, int16, int32, int64); torchmetrics has no boundary F1 score.

References
----------
- Long, Shelhamer, Darrell, "Fully convolutional networks for semantic segmentation", CVPR
  2015 (pixel accuracy, mean accuracy, mean IU, frequency weighted IU).
- torchmetrics ``MulticlassJaccardIndex``, ``MulticlassAccuracy``,
  ``MulticlassConfusionMatrix``: https://lightning.ai/docs/torchmetrics/
"""

from __future__ import annotations

import math
import warnings

import torch

from course_lib._checks import check_ignore_index, check_label_maps, check_num_classes
from course_lib.metrics._common import warn_empty

__all__ = ["ConfusionMatrix"]


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
        pred : torch.Tensor, shape (H, W) or (N, H, W), any integer dtype
            Predicted labels in ``[0, C)`` (not logits: take ``logits.argmax(1)``).
        target : torch.Tensor, same shape as ``pred``, any integer dtype
            True labels in ``[0, C)`` or ``ignore_index`` (uint8 masks as PNG files load
            work; both are converted to int64 before any arithmetic).
        """
        pred, target = check_label_maps(pred, target, self.num_classes, self.ignore_index)
        c = self.num_classes
        pred = pred.to(target.device)
        if self.ignore_index is not None:
            valid = target != self.ignore_index
            pred, target = pred[valid], target[valid]  # (P,) labelled pixels
        codes = target.reshape(-1) * c + pred.reshape(-1)  # (P,) one code per pixel, int64
        counts = torch.bincount(codes, minlength=c * c)  # (C*C,)
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
            warn_empty(self.ignore_index, stacklevel=3)
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
