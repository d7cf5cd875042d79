"""Segmentation metrics from a dataset-level confusion matrix, and the boundary F1 score.

``ConfusionMatrix`` accumulates ``(target, prediction)`` pixel counts over a whole dataset
(one :func:`torch.bincount` per batch); every score is then read off the matrix: pixel
accuracy, mean class accuracy, per-class IoU, mIoU and frequency-weighted IoU (Long et al.,
2015, section 5). ``boundary_f1`` scores how well predicted contours fall on true ones
(Csurka, Larlus, Perronnin, 2013).

Conventions: rows of the matrix are target classes, columns predicted classes; pixels whose
target is ``ignore_index`` (255) are skipped. A class absent from both target and prediction
has IoU ``NaN`` and is left out of the mIoU. When no pixel is labelled at all, every score
is ``NaN`` and a ``RuntimeWarning`` says so. Labels may have any integer dtype (uint8 masks
as PNG files load); they are converted to int64 before any arithmetic. ``boundary_f1``'s
docstring says how it treats ignored pixels and how its tolerance compares with DAVIS and
BSDS.

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
- Csurka, Larlus, Perronnin, "What is a good evaluation measure for semantic segmentation?",
  BMVC 2013 (the boundary F1 score, per image and class, averaged over classes present).
- Perazzi, Pont-Tuset, McWilliams, Van Gool, Gross, Sorkine-Hornung, "A benchmark dataset
  and evaluation methodology for video object segmentation" (DAVIS), CVPR 2016: the
  boundary measure ``F`` (``f_measure``, ``seg2bmap``).
- Martin, Fowlkes, Malik, "Learning to detect natural image boundaries using local
  brightness, color, and texture cues", TPAMI 2004 (BSDS boundary precision and recall).
- torchmetrics ``MulticlassJaccardIndex``, ``MulticlassAccuracy``,
  ``MulticlassConfusionMatrix``: https://lightning.ai/docs/torchmetrics/
"""

from __future__ import annotations

import math
import warnings

import numpy as np
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
    """Validate two label maps of any integer dtype; return them as int64 (no wrap-around)."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"pred and target must be torch.Tensors, got {type_name(pred)} "
                        f"and {type_name(target)}")
    if pred.shape != target.shape or pred.ndim not in (2, 3):
        raise ValueError(f"pred and target must be label maps of the same shape (H, W) or "
                         f"(N, H, W), got pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)}")
    check_labels("pred", pred, num_classes, ignore_index, allow_ignore=False)
    check_labels("target", target, num_classes, ignore_index)
    return pred.long(), target.long()  # uint8 * C overflows for C >= 17; bincount wants int64


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
        pred, target = _check_pair(pred, target, self.num_classes, self.ignore_index)
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
def _dilate3(mask: torch.Tensor) -> torch.Tensor:
    """Pixels of ``mask`` or with one of their 8 neighbours in it. (..., H, W) bool.

    Outside the image counts as not in ``mask``, so the image border makes no boundary.
    """
    h, w = mask.shape[-2:]
    x = mask.reshape(-1, 1, h, w).float()  # max_pool2d pads with -inf
    return (F.max_pool2d(x, kernel_size=3, stride=1, padding=1) > 0.5).reshape(mask.shape)


def _max_distance(h: int, w: int) -> int:
    """``ceil(sqrt((h-1)^2 + (w-1)^2))``: no two pixels of an h x w image are farther apart."""
    d2 = (h - 1) ** 2 + (w - 1) ** 2
    r = math.isqrt(d2)
    return r if r * r == d2 else r + 1


def _dilate_disk(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within Euclidean distance ``radius`` of ``mask`` (``dy^2 + dx^2 <= radius^2``).

    Exact, and ``O(radius)`` passes of ``O(H W)``: the disk is cut into rows; row ``dy`` is a
    horizontal dilation by ``isqrt(radius^2 - dy^2)`` (a difference of cumulative sums),
    shifted by ``dy``. A radius reaching every pixel gives "any pixel of mask". (..., H, W).
    """
    h, w = mask.shape[-2:]
    if radius == 0:
        return mask
    if radius**2 >= (h - 1) ** 2 + (w - 1) ** 2:  # the disk covers the whole image
        return mask.flatten(-2).any(-1)[..., None, None].expand(mask.shape)
    sums = F.pad(mask.cumsum(-1, dtype=torch.int32), (1, 0))  # (..., H, W + 1): sums[j] = #[0, j)
    cols = torch.arange(w, device=mask.device)
    out = torch.zeros_like(mask)
    for dy in range(min(radius, h - 1) + 1):
        half = math.isqrt(radius**2 - dy**2)
        row = (sums[..., (cols + half + 1).clamp_max(w)]
               - sums[..., (cols - half).clamp_min(0)]) > 0  # (..., H, W) within |dx| <= half
        out[..., dy:, :] |= row[..., :h - dy, :]  # a mask pixel dy rows above
        if dy:
            out[..., :h - dy, :] |= row[..., dy:, :]  # dy rows below
    return out


def _void_regions(valid: torch.Tensor) -> tuple[torch.Tensor, int]:
    """8-connected regions of ignored pixels, numbered ``1..K`` over the batch (0: labelled).

    ``valid`` is (N, H, W) bool; returns (N, H, W) int64 and ``K``. Regions never join across
    images (SciPy's labelling with a 3x3 structure inside each image).
    """
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8 neighbours in the same image, none in the next one
    regions, count = ndimage.label((~valid).cpu().numpy(), structure=structure)
    return torch.from_numpy(regions).to(device=valid.device, dtype=torch.int64), int(count)


def _boundaries(labels, valid, regions, count, num_classes) -> torch.Tensor:
    """Boundary pixels ``B[n, c]`` of a label map under the ``ignore_index`` convention.

    A labelled pixel of class ``c`` is a boundary pixel if one of its 8 neighbours is a
    labelled pixel of another class, or an ignored pixel of a void region that borders at
    least two classes of ``labels``. (N, H, W) int64 labels -> (N, C, H, W) bool.
    """
    classes = torch.arange(num_classes, device=labels.device)[None, :, None, None]
    onehot = (labels[:, None] == classes) & valid[:, None]  # (N, C, H, W) labelled, class c
    edge = onehot & _dilate3(~onehot & valid[:, None])  # next to a labelled other class
    if count:
        near = _dilate3(onehot) & (regions > 0)[:, None]  # (N, C, H, W) void next to class c
        touches = torch.zeros(count + 1, num_classes, dtype=torch.bool, device=labels.device)
        touches[regions[:, None].expand_as(near)[near], classes.expand_as(near)[near]] = True
        separates = touches.sum(1) >= 2  # (K + 1,) region borders two classes or more
        separates[0] = False  # label 0: the labelled pixels
        edge |= onehot & _dilate3(separates[regions])[:, None]
    return edge


def _match_f1(b_p: torch.Tensor, b_t: torch.Tensor, radius: int) -> torch.Tensor:
    """F1 of boundary maps matched within Euclidean ``radius``. (N, C, H, W) bool -> (N, C).

    Precision: fraction of ``b_p`` within ``radius`` of ``b_t``; recall the converse. 1 when
    both are empty, 0 when only one is (as DAVIS's ``f_measure``).
    """
    n_t, n_p = b_t.sum((2, 3)).double(), b_p.sum((2, 3)).double()  # (N, C)
    hit_p = (b_p & _dilate_disk(b_t, radius)).sum((2, 3)).double()  # matched predicted
    hit_t = (b_t & _dilate_disk(b_p, radius)).sum((2, 3)).double()  # matched true
    precision = hit_p / n_p.clamp_min(1)
    recall = hit_t / n_t.clamp_min(1)
    f1 = torch.where(precision + recall > 0,
                     2 * precision * recall / (precision + recall).clamp_min(1e-12),
                     torch.zeros_like(precision))  # (N, C)
    f1 = torch.where((n_t == 0) & (n_p == 0), torch.ones_like(f1), f1)
    return torch.where((n_t == 0) != (n_p == 0), torch.zeros_like(f1), f1)


def boundary_f1(pred: torch.Tensor, target: torch.Tensor, tolerance: int = 2,
                num_classes: int | None = None, ignore_index: int | None = 255) -> float:
    """Boundary F1 score (BF) after Csurka et al. (2013), averaged over images.

    Definition. For an image and a class ``c``, the boundary of ``c`` in a label map is the
    set of its pixels of class ``c`` with at least one of their 8 neighbours in another class
    (the image border is not a boundary). With ``B_p`` and ``B_t`` the predicted and true
    boundaries and ``d`` the Euclidean distance in pixels,

    - precision ``P = |{x in B_p : d(x, B_t) <= tolerance}| / |B_p|``,
    - recall ``R = |{x in B_t : d(x, B_p) <= tolerance}| / |B_t|``,
    - ``F1_c = 2 P R / (P + R)`` (0 if ``P + R = 0``); 1 if both boundaries are empty and 0
      if only one is.

    The image score averages ``F1_c`` over the classes present in its target; the result
    averages image scores over the images that have a labelled pixel.

    Ignored pixels (target ``ignore_index``, e.g. VOC's 255 band along object contours) are
    never boundary pixels, and the prediction there is never read. Boundaries are found
    between labelled pixels, and a *void region* (8-connected ignored pixels) separates the
    classes it borders: a labelled pixel next to a void region is a boundary pixel when that
    region borders two classes or more (in the map considered), not when it borders only its
    own class (a hole or a scribble inside one region). So a void band between an object
    and the background puts the object's and the background's boundaries on the band's two
    edges, in the target and in any prediction that is right there: a perfect prediction
    scores 1, one that misses the object scores 0, and a predicted contour anywhere inside
    the band is exact. With no ignored pixel this is the plain definition above.

    Tolerance. A pixel matches when a pixel of the other boundary lies within the disk of
    radius ``tolerance`` (``dy^2 + dx^2 <= tolerance^2``, :func:`skimage.morphology.disk`);
    ``tolerance=0`` asks for the same pixel. A tolerance beyond the image's diagonal,
    ``ceil(sqrt((H-1)^2 + (W-1)^2))``, is clamped to it: no two pixels are farther apart, so
    the score is the same (and ``tolerance=10**6`` costs no more than the diagonal).

    Relation to other boundary F-measures. DAVIS (Perazzi et al. 2016, ``f_measure``) scores
    one binary mask with the same dilation matching, a tolerance of
    ``ceil(0.008 * sqrt(H^2 + W^2))`` pixels (8 px at 854 x 480: pass
    ``tolerance=math.ceil(0.008 * math.hypot(H, W))`` for it), and a one-pixel-wide contour
    map ``seg2bmap`` (pixels that differ from their east, south or south-east neighbour),
    after setting void pixels to background in both masks; here each class has its own
    contour, the region's pixels along it. BSDS (Martin, Fowlkes, Malik 2004) matches
    boundary pixels one-to-one (a bipartite assignment within 0.0075 of the diagonal), so its
    precision and recall never exceed those of this many-to-one matching on the same
    boundaries. Csurka et al. define this per-class score per image, averaged over classes.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (H, W) or (N, H, W), any integer dtype
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
    >>> voc = target.clone(); voc[1:7, 1:7][target[1:7, 1:7] == 0] = 255  # a void band
    >>> boundary_f1(torch.where(voc == 255, 0, voc), voc), boundary_f1(0 * voc, voc)
    (1.0, 0.0)
    """
    tolerance = check_int("tolerance (pixels)", tolerance, 0)
    if ignore_index is not None:
        ignore_index = check_int("ignore_index", ignore_index)
    if num_classes is None:
        if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(f"pred and target must be torch.Tensors, got "
                            f"{type_name(pred)} and {type_name(target)}")
        valid_t = target[target.long() != ignore_index] if ignore_index is not None else target
        num_classes = int(max(pred.max() if pred.numel() else 0,
                              valid_t.max() if valid_t.numel() else 0)) + 1
    num_classes = check_num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index, num_classes)
    pred, target = _check_pair(pred, target, num_classes, ignore_index)
    if pred.ndim == 2:
        pred, target = pred[None], target[None]  # (1, H, W)
    pred = pred.to(target.device)
    valid = target != ignore_index if ignore_index is not None else \
        torch.ones_like(target, dtype=torch.bool)  # (N, H, W)
    regions, count = _void_regions(valid) if not bool(valid.all()) else (None, 0)
    b_t = _boundaries(target, valid, regions, count, num_classes)  # (N, C, H, W)
    b_p = _boundaries(pred, valid, regions, count, num_classes)
    radius = min(tolerance, _max_distance(*target.shape[-2:]))
    f1 = _match_f1(b_p, b_t, radius)  # (N, C)
    classes = torch.arange(num_classes, device=target.device)[None, :, None, None]
    present = (target[:, None] == classes).any(3).any(2)  # (N, C) classes in each target
    per_image = (f1 * present).sum(1) / present.sum(1)  # (N,) NaN for all-ignored images
    if not bool(present.any()):
        warnings.warn(_EMPTY.format(ignore=ignore_index), RuntimeWarning, stacklevel=2)
        return math.nan
    return float(per_image.nanmean())
