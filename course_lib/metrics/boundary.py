"""The boundary F1 score: how well predicted contours fall on the true ones.

``boundary_f1`` follows Csurka, Larlus and Perronnin (2013): per image and class, the
precision and recall of boundary pixels matched within a distance tolerance, their F1,
averaged over the classes present. Its docstring says how it treats ignored pixels and how
its tolerance compares with DAVIS and BSDS.

References
----------
- Csurka, Larlus, Perronnin, "What is a good evaluation measure for semantic segmentation?",
  BMVC 2013 (the boundary F1 score, per image and class, averaged over classes present).
- Perazzi, Pont-Tuset, McWilliams, Van Gool, Gross, Sorkine-Hornung, "A benchmark dataset
  and evaluation methodology for video object segmentation" (DAVIS), CVPR 2016: the
  boundary measure ``F`` (``f_measure``, ``seg2bmap``).
- Martin, Fowlkes, Malik, "Learning to detect natural image boundaries using local
  brightness, color, and texture cues", TPAMI 2004 (BSDS boundary precision and recall).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from course_lib._checks import (
    check_ignore_index,
    check_int,
    check_label_maps,
    check_num_classes,
    type_name,
)
from course_lib.metrics._common import warn_empty

__all__ = ["boundary_f1"]


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
    pred, target = check_label_maps(pred, target, num_classes, ignore_index)
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
        warn_empty(ignore_index, stacklevel=2)
        return math.nan
    return float(per_image.nanmean())
