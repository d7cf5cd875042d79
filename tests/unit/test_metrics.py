"""course_lib.metrics: hand cases, torchmetrics on random data, boundary F1 against SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from course_lib._checks import check_labels
from course_lib.metrics import ConfusionMatrix, boundary_f1

IGNORE = 255


def _random_labels(seed, shape=(3, 12, 10), num_classes=5, p_ignore=0.1, noise=0.4):
    """A random target with ignored pixels and a prediction that is right ~60% of the time."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=g)
    target[torch.rand(shape, generator=g) < p_ignore] = IGNORE
    pred = torch.randint(0, num_classes, shape, generator=g)
    keep = (torch.rand(shape, generator=g) > noise) & (target != IGNORE)
    pred[keep] = target[keep]
    return pred, target


# ----------------------------------------------------------------------------- hand cases
def test_hand_case_matrix_and_scores():
    # rows = target, cols = pred; class 2 is only predicted, class 3 absent from both
    target = torch.tensor([[0, 0, 1, 1], [0, 1, 1, IGNORE]])
    pred = torch.tensor([[0, 2, 1, 1], [0, 1, 0, 0]])
    cm = ConfusionMatrix(4).update(pred, target)
    assert cm.matrix.dtype == torch.int64
    assert cm.matrix.tolist() == [[2, 0, 1, 0], [1, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)
    assert cm.mean_accuracy() == pytest.approx((2 / 3 + 3 / 4) / 2)  # classes 0 and 1
    iou = cm.iou()
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    assert iou[:3].tolist() == pytest.approx([2 / 4, 3 / 4, 0.0])
    assert math.isnan(iou[3])  # absent from target and prediction
    assert cm.miou() == pytest.approx((0.5 + 0.75 + 0.0) / 3)  # NaN left out, 0 kept
    assert cm.fw_iou() == pytest.approx((3 * 0.5 + 4 * 0.75) / 7)
    out = cm.compute()
    assert set(out) == {"pixel_acc", "mean_acc", "miou", "fw_iou", "iou"}
    assert all(isinstance(out[k], float) for k in ("pixel_acc", "mean_acc", "miou", "fw_iou"))
    assert isinstance(out["iou"], list) and len(out["iou"]) == 4 and math.isnan(out["iou"][3])


def test_perfect_prediction_and_chaining_reset_repr_add():
    _, target = _random_labels(0)
    pred = torch.where(target == IGNORE, 0, target)
    cm = ConfusionMatrix(5)
    assert cm.update(pred, target) is cm
    assert cm.pixel_accuracy() == cm.mean_accuracy() == cm.miou() == cm.fw_iou() == 1.0
    assert "pixels=" in repr(cm)
    double = cm + cm
    assert torch.equal(double.matrix, 2 * cm.matrix)
    assert cm.reset() is cm and int(cm.matrix.sum()) == 0


def test_dataset_level_accumulation_equals_one_update():
    pred, target = _random_labels(1, shape=(6, 9, 7))
    whole = ConfusionMatrix(5).update(pred, target)
    parts = ConfusionMatrix(5)
    for p, t in zip(pred, target):  # (H, W) at a time
        parts.update(p, t)
    assert torch.equal(whole.matrix, parts.matrix)
    assert int(whole.matrix.sum()) == int((target != IGNORE).sum())


def test_dataset_miou_is_not_the_mean_of_image_mious():
    # image 1: small class 1 missed; image 2: large class 1 found
    t1 = torch.tensor([[0, 0, 0, 1]])
    p1 = torch.zeros_like(t1)
    t2 = torch.tensor([[1, 1, 1, 0]])
    p2 = t2.clone()
    per_image = [ConfusionMatrix(2).update(p, t).miou() for p, t in ((p1, t1), (p2, t2))]
    dataset = ConfusionMatrix(2).update(p1, t1).update(p2, t2).miou()
    assert per_image == pytest.approx([(3 / 4 + 0) / 2, 1.0])
    assert dataset == pytest.approx((4 / 5 + 3 / 4) / 2)
    assert dataset != pytest.approx(sum(per_image) / 2)


def test_all_pixels_ignored_gives_nan_and_a_warning():
    cm = ConfusionMatrix(3).update(torch.zeros(4, 4, dtype=torch.long),
                                   torch.full((4, 4), IGNORE))
    for score in (cm.pixel_accuracy, cm.mean_accuracy, cm.miou, cm.fw_iou):
        with pytest.warns(RuntimeWarning, match="no labelled pixel"):
            assert math.isnan(score())
    with pytest.warns(RuntimeWarning, match="no labelled pixel"):
        assert torch.isnan(cm.iou()).all()
    with pytest.warns(RuntimeWarning, match="no labelled pixel") as record:
        out = cm.compute()
    assert len(record) == 1, "compute() warns once"
    assert all(math.isnan(v) for v in [*out["iou"], out["miou"], out["pixel_acc"]])


def test_ignore_index_none_counts_every_pixel():
    pred, target = torch.tensor([[0, 1]]), torch.tensor([[0, 0]])
    cm = ConfusionMatrix(2, ignore_index=None).update(pred, target)
    assert cm.matrix.tolist() == [[1, 1], [0, 0]]


# ----------------------------------------------------------------------------- torchmetrics
@pytest.mark.parametrize("seed", range(6))
def test_against_torchmetrics_on_random_data(seed):
    c = 3 + seed % 3
    pred, target = _random_labels(seed, num_classes=c)
    cm = ConfusionMatrix(c).update(pred, target)
    kw = dict(num_classes=c, ignore_index=IGNORE)
    assert torch.equal(cm.matrix, MulticlassConfusionMatrix(**kw)(pred, target))
    torch.testing.assert_close(cm.iou().float(), MulticlassJaccardIndex(average=None, **kw)(
        pred, target))
    assert cm.miou() == pytest.approx(float(MulticlassJaccardIndex(average="macro", **kw)(
        pred, target)), abs=1e-6)
    assert cm.fw_iou() == pytest.approx(float(MulticlassJaccardIndex(average="weighted", **kw)(
        pred, target)), abs=1e-6)
    assert cm.pixel_accuracy() == pytest.approx(float(MulticlassAccuracy(average="micro", **kw)(
        pred, target)), abs=1e-6)
    assert cm.mean_accuracy() == pytest.approx(float(MulticlassAccuracy(average="macro", **kw)(
        pred, target)), abs=1e-6)


def test_torchmetrics_accumulates_over_batches_like_us():
    pred, target = _random_labels(11, shape=(4, 8, 8))
    ours, theirs = ConfusionMatrix(5), MulticlassJaccardIndex(5, average=None, ignore_index=IGNORE)
    for p, t in zip(pred, target):
        ours.update(p, t)
        theirs.update(p, t)
    torch.testing.assert_close(ours.iou().float(), theirs.compute())


def test_conventions_that_differ_from_torchmetrics():
    """Absent class: NaN here, 0 in torchmetrics' per-class IoU; both leave it out of the
    mean. A class only predicted: torchmetrics' macro accuracy counts its recall as 0."""
    target = torch.tensor([[0, 0, 1, 1], [0, 1, 1, IGNORE]])
    pred = torch.tensor([[0, 2, 1, 1], [0, 1, 0, 0]])
    cm = ConfusionMatrix(4).update(pred, target)
    kw = dict(num_classes=4, ignore_index=IGNORE)
    tm_iou = MulticlassJaccardIndex(average=None, **kw)(pred, target)
    assert math.isnan(cm.iou()[3]) and float(tm_iou[3]) == 0.0
    assert cm.miou() == pytest.approx(float(MulticlassJaccardIndex(**kw)(pred, target)))
    tm_macc = float(MulticlassAccuracy(average="macro", **kw)(pred, target))
    assert tm_macc == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)  # class 2 counted as 0
    assert cm.mean_accuracy() == pytest.approx((2 / 3 + 3 / 4) / 2)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("pred, target, match", [
    (torch.zeros(2, 3), torch.zeros(2, 3), "pred must hold integer class labels.*float32"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), "target must hold integer"),
    (torch.zeros(2, 3, dtype=torch.bool), torch.zeros(2, 3, dtype=torch.long), "torch.bool"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long),
     r"same shape.*pred \(2, 3\) and target \(3, 2\)"),
    (torch.zeros(1, 4, 2, 3, dtype=torch.long), torch.zeros(1, 4, 2, 3, dtype=torch.long),
     r"\(H, W\) or \(N, H, W\), got pred \(1, 4, 2, 3\)"),
    (torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long), r"got pred \(6,\)"),
    (torch.tensor([[0, 3]]), torch.tensor([[0, 1]]), r"pred has labels \[3\] outside \[0, 3\)"),
    (torch.tensor([[0, IGNORE]]), torch.tensor([[0, 1]]), r"pred has labels \[255\]"),
    (torch.tensor([[0, 1]]), torch.tensor([[-1, 7]]),
     r"target has labels \[-1, 7\] outside \[0, 3\) or ignore_index=255"),
])
def test_update_rejects_bad_input(pred, target, match):
    with pytest.raises(ValueError, match=match):
        ConfusionMatrix(3).update(pred, target)


def test_constructor_and_type_errors():
    with pytest.raises(TypeError, match="pred and target must be torch.Tensors, got list"):
        ConfusionMatrix(3).update([[0]], torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="labels must be a torch.Tensor .* got list"):
        check_labels("labels", [0, 1], 2)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1, got 0"):
        ConfusionMatrix(0)
    for bad in (2.0, True):
        with pytest.raises(TypeError, match="num_classes must be an int"):
            ConfusionMatrix(bad)
    with pytest.raises(ValueError, match="ignore_index=1 is a valid class"):
        ConfusionMatrix(3, ignore_index=1)
    with pytest.raises(TypeError, match="ignore_index must be an int, got 2.5"):
        ConfusionMatrix(3, ignore_index=2.5)
    with pytest.raises(ValueError, match="same num_classes"):
        ConfusionMatrix(3) + ConfusionMatrix(4)


# ----------------------------------------------------------------------------- boundary F1
def _blobs(seed, n=2, size=24, num_classes=4):
    """Piecewise-constant label maps: random rectangles painted over a background."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        for _ in range(4):
            y, x = (int(v) for v in torch.randint(0, size - 4, (2,), generator=g))
            h, w = (int(v) for v in torch.randint(3, size // 2, (2,), generator=g))
            out[i, y:y + h, x:x + w] = int(torch.randint(1, num_classes, (1,), generator=g))
    return out


def _scipy_boundary(lab, c, valid, regions, k):
    """Class ``c``'s boundary in ``lab``: next to a labelled other class or a void region
    that borders two classes or more."""
    eight = np.ones((3, 3), dtype=bool)
    separates = np.zeros(k + 1, dtype=bool)  # void regions next to >= 2 classes
    for r in range(1, k + 1):
        rim = ndimage.binary_dilation(regions == r, eight) & valid
        separates[r] = len(np.unique(lab[rim])) >= 2
    region, other = (lab == c) & valid, (lab != c) & valid
    return region & ndimage.binary_dilation(other | separates[regions], eight)


def _bf_reference(pred, target, tol, num_classes, ignore=IGNORE):
    """Boundary F1 with SciPy: void regions by ``ndimage.label``, boundaries by binary
    dilation, matching by the Euclidean distance transform."""
    scores = []
    for p, t in zip(pred.numpy(), target.numpy()):
        valid = t != ignore
        regions, k = ndimage.label(~valid, structure=np.ones((3, 3), dtype=bool))
        f1s = []
        for c in np.unique(t[valid]):
            bp = _scipy_boundary(p, c, valid, regions, k)
            bt = _scipy_boundary(t, c, valid, regions, k)
            if not bp.any() and not bt.any():
                f1s.append(1.0)
                continue
            if not bp.any() or not bt.any():
                f1s.append(0.0)
                continue
            dist_to_t = ndimage.distance_transform_edt(~bt)
            dist_to_p = ndimage.distance_transform_edt(~bp)
            prec = (dist_to_t[bp] <= tol).mean()
            rec = (dist_to_p[bt] <= tol).mean()
            f1s.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
        if f1s:
            scores.append(np.mean(f1s))
    return float(np.mean(scores))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tol", [0, 1, 2, 3])
def test_boundary_f1_against_scipy_distance_transform(seed, tol):
    target = _blobs(seed)
    pred = _blobs(seed + 100)
    pred[:, :12] = target[:, :12].roll(1, dims=2)[:, :12]  # half the image nearly right
    target[0, :3, :5] = IGNORE
    got = boundary_f1(pred, target, tolerance=tol, num_classes=4)
    assert got == pytest.approx(_bf_reference(pred, target, tol, 4))


def test_boundary_f1_hand_cases():
    target = torch.zeros(10, 10, dtype=torch.long)
    target[2:7, 2:7] = 1  # a 5x5 square: 16 boundary pixels inside it, 20 outside (bg)
    assert boundary_f1(target, target) == 1.0
    shifted = target.roll(2, dims=1)
    assert boundary_f1(shifted, target, tolerance=2) == 1.0
    assert boundary_f1(shifted, target, tolerance=1) < 1.0
    scores = [boundary_f1(shifted, target, tolerance=t) for t in range(4)]
    assert scores == sorted(scores), "a larger tolerance never lowers the score"
    # class 1 missed entirely: its F1 is 0, background has no boundary in pred -> 0 too
    assert boundary_f1(torch.zeros_like(target), target, num_classes=2) == 0.0
    # one class everywhere: no boundary anywhere, perfect agreement
    assert boundary_f1(torch.zeros(5, 5, dtype=torch.long), torch.zeros(5, 5, dtype=torch.long)) \
        == 1.0
    # a class only predicted is not averaged in (classes present in the target)
    pred = target.clone()
    pred[0, 0] = 2
    got = boundary_f1(pred, target, tolerance=0, num_classes=3)
    assert got == pytest.approx(_bf_reference(pred[None], target[None], 0, 3))
    assert 0.9 < got < 1.0, "only the background's spurious boundary pixels cost precision"


def test_boundary_f1_ignores_ignored_pixels_and_empty_images():
    target = _blobs(3, n=1)
    pred = _blobs(4, n=1)
    base = boundary_f1(pred, target, num_classes=4)
    both = boundary_f1(torch.cat([pred, pred]), torch.cat([target, torch.full_like(target,
                                                                               IGNORE)]),
                       num_classes=4)
    assert both == pytest.approx(base), "an all-ignored image is skipped"
    with pytest.warns(RuntimeWarning, match="no labelled pixel"):
        assert math.isnan(boundary_f1(pred, torch.full_like(target, IGNORE), num_classes=4))


def test_boundary_f1_rejects_bad_input():
    t = torch.zeros(4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"tolerance \(pixels\) must be an int >= 0"):
        boundary_f1(t, t, tolerance=-1)
    for tol in (1.5, True):
        with pytest.raises(TypeError, match=r"tolerance \(pixels\) must be an int"):
            boundary_f1(t, t, tolerance=tol)
    with pytest.raises(ValueError, match="pred must hold integer class labels"):
        boundary_f1(t.float(), t, num_classes=2)
    with pytest.raises(ValueError, match=r"same shape.*\(4, 4\) and target \(4, 3\)"):
        boundary_f1(t, t[:, :3])
    with pytest.raises(ValueError, match=r"target has labels \[5\]"):
        boundary_f1(t, t + 5, num_classes=3)
    with pytest.raises(TypeError, match="must be torch.Tensors, got ndarray"):
        boundary_f1(t.numpy(), t)


# ----------------------------------------------------------------------------- label dtypes
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


def _ignore_for(dtype):
    """255 where the dtype holds it; int8 cannot (255 wraps to -1 there), so -1."""
    return -1 if dtype == torch.int8 else IGNORE


def _brute_force_matrix(pred, target, num_classes, ignore):
    m = [[0] * num_classes for _ in range(num_classes)]
    for p, t in zip(pred.flatten().tolist(), target.flatten().tolist()):
        if t != ignore:
            m[t][p] += 1
    return torch.tensor(m)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_confusion_matrix_any_integer_dtype_voc_sized(dtype):
    # C = 21: uint8 target * 21 + pred wraps past 255 unless converted to int64 first
    c, ignore = 21, _ignore_for(dtype)
    pred, target = _random_labels(7, shape=(2, 16, 16), num_classes=c, p_ignore=0.15)
    target[target == IGNORE] = ignore
    pred, target = pred.to(dtype), target.to(dtype)
    assert bool((target.long() == ignore).any()) and int(pred.long().max()) == c - 1
    cm = ConfusionMatrix(c, ignore_index=ignore).update(pred, target)
    expected = _brute_force_matrix(pred, target, c, ignore)
    assert cm.matrix.dtype == torch.int64
    assert torch.equal(cm.matrix, expected)
    tm = MulticlassConfusionMatrix(num_classes=c, ignore_index=ignore)
    assert torch.equal(cm.matrix, tm(pred, target))
    assert torch.equal(cm.matrix, tm(pred.long(), target.long()))
    assert torch.equal(cm.matrix, ConfusionMatrix(c, ignore).update(pred.long(), target.long())
                       .matrix)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_boundary_f1_any_integer_dtype(dtype):
    ignore = _ignore_for(dtype)
    target, pred = _blobs(8), _blobs(9)
    target[:, 5:8] = ignore
    ref = boundary_f1(pred, target, num_classes=4, ignore_index=ignore)
    got = boundary_f1(pred.to(dtype), target.to(dtype), num_classes=4, ignore_index=ignore)
    assert got == ref
    assert boundary_f1(pred.to(dtype), target.to(dtype), ignore_index=ignore) == ref


# ----------------------------------------------------------------------------- BF and void
def _voc_like(size=16):
    """An object (class 1) on background, with a 2-pixel void band along its contour."""
    target = torch.zeros(size, size, dtype=torch.long)
    target[4:12, 5:11] = 1
    obj = target == 1
    ring = (ndimage.binary_dilation(obj.numpy(), iterations=1)
            & ~ndimage.binary_erosion(obj.numpy(), iterations=1))
    target[torch.from_numpy(ring)] = IGNORE
    return target, obj


def test_boundary_f1_perfect_prediction_with_a_void_band_scores_1():
    target, obj = _voc_like()
    void = target == IGNORE
    g = torch.Generator().manual_seed(0)
    for fill in (obj.long(), torch.zeros_like(target), torch.ones_like(target),
                 torch.randint(0, 2, target.shape, generator=g)):
        pred = torch.where(void, fill, target)  # right on every labelled pixel
        for tol in (0, 1, 2):
            assert boundary_f1(pred, target, tolerance=tol, num_classes=2) == 1.0
    # the score never reads the prediction at ignored pixels
    pred = torch.where(void, 0, target)
    assert boundary_f1(pred, target, num_classes=2) == boundary_f1(
        torch.where(void, 1, target), target, num_classes=2)


def test_boundary_f1_void_band_separates_classes_it_borders():
    target, obj = _voc_like()
    # missing the object: its band-side contour is unmatched, and the background has none
    assert boundary_f1(torch.zeros_like(target), target, num_classes=2) == 0.0
    # a predicted contour anywhere inside the band is exact: grow the object by 1 pixel
    grown = torch.from_numpy(ndimage.binary_dilation(obj.numpy())).long()
    assert boundary_f1(grown, target, tolerance=0, num_classes=2) == 1.0
    # a contour outside the band is measured from the band's edges
    far = torch.from_numpy(ndimage.binary_dilation(obj.numpy(), iterations=3)).long()
    scores = [boundary_f1(far, target, tolerance=t, num_classes=2) for t in range(6)]
    assert scores == sorted(scores) and scores[0] < 0.5 and scores[-1] == 1.0
    for t, got in enumerate(scores):
        assert got == pytest.approx(_brute_force_bf(far[None], target[None], t, 2), abs=1e-12)


def test_boundary_f1_void_hole_inside_one_region_makes_no_boundary():
    target = torch.zeros(10, 12, dtype=torch.long)
    target[3:6, 2:6] = IGNORE  # a void hole in the background only
    assert boundary_f1(torch.zeros_like(target), target) == 1.0
    pred = torch.where(target == IGNORE, 1, 0)  # pred's class 1 lies only in the hole
    assert boundary_f1(pred, target, tolerance=0, num_classes=2) == 1.0
    target[:, 9:] = 2  # a second class away from the hole: its contour counts, not the hole's
    pred = torch.where(target == IGNORE, 0, target)
    assert boundary_f1(pred, target, tolerance=0) == 1.0
    shifted = pred.clone()
    shifted[:, 8] = 2
    assert boundary_f1(shifted, target, tolerance=1) == 1.0
    assert boundary_f1(shifted, target, tolerance=0) < 1.0
    # a predicted class touching the hole makes the hole a separator in the prediction
    touching = pred.clone()
    touching[3:6, 6] = 2
    assert boundary_f1(touching, target, tolerance=1) < 1.0


NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def _flood_fill_regions(void):
    """8-connected regions of the set ``void`` of (i, j): {pixel: region number}."""
    region, k = {}, 0
    for start in sorted(void):
        if start in region:
            continue
        k += 1
        region[start], stack = k, [start]
        while stack:
            a, b = stack.pop()
            for dy, dx in NEIGHBOURS:
                q = (a + dy, b + dx)
                if q in void and q not in region:
                    region[q] = k
                    stack.append(q)
    return region


def _brute_force_boundaries(lab, void, region, num_classes):
    """{class: set of boundary pixels}, looking at each pixel's 8 neighbours."""
    h, w = len(lab), len(lab[0])
    inside = [(i, j) for i in range(h) for j in range(w) if (i, j) not in void]

    def nbrs(i, j):
        return [(i + dy, j + dx) for dy, dx in NEIGHBOURS if 0 <= i + dy < h and 0 <= j + dx < w]

    borders = {}  # void region -> classes of lab next to it
    for i, j in inside:
        for q in nbrs(i, j):
            if q in void:
                borders.setdefault(region[q], set()).add(lab[i][j])
    out = {c: set() for c in range(num_classes)}
    for i, j in inside:
        c = lab[i][j]
        for q in nbrs(i, j):
            if (q not in void and lab[q[0]][q[1]] != c) or (
                    q in void and len(borders[region[q]]) >= 2):
                out[c].add((i, j))
                break
    return out


def _brute_force_f1(P, T, tol, one_to_one):
    """F1 of two sets of pixels matched within ``tol``, by scanning every pair (or, with
    ``one_to_one``, by a maximum bipartite matching as in BSDS)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    if not P and not T:
        return 1.0
    if not P or not T:
        return 0.0
    P, T = sorted(P), sorted(T)

    def close(a, b):
        return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 <= tol * tol

    if one_to_one:
        edges = csr_matrix([[1 if close(a, b) else 0 for b in T] for a in P])
        hit_p = hit_t = int((maximum_bipartite_matching(edges, perm_type="column") >= 0).sum())
    else:
        hit_p = sum(any(close(a, b) for b in T) for a in P)
        hit_t = sum(any(close(b, a) for a in P) for b in T)
    prec, rec = hit_p / len(P), hit_t / len(T)
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def _brute_force_bf(pred, target, tol, num_classes, ignore=IGNORE, one_to_one=False):
    """Boundary F1 by per-pixel loops: void regions by flood fill, each pixel's boundary
    status from its 8 neighbours, matches by scanning pairs of boundary pixels."""
    scores = []
    for p, t in zip(pred.tolist(), target.tolist()):
        void = {(i, j) for i, row in enumerate(t) for j, v in enumerate(row) if v == ignore}
        region = _flood_fill_regions(void)
        bp = _brute_force_boundaries(p, void, region, num_classes)
        bt = _brute_force_boundaries(t, void, region, num_classes)
        present = sorted({v for row in t for v in row if v != ignore})
        f1s = [_brute_force_f1(bp[c], bt[c], tol, one_to_one) for c in present]
        if f1s:
            scores.append(sum(f1s) / len(f1s))
    return sum(scores) / len(scores)


def _scene(seed, n=2, h=12, w=15, num_classes=4):
    """Random rectangles, a VOC-style void band on some contours, void specks and a void
    block; and a prediction that is partly right, partly other rectangles."""
    g = torch.Generator().manual_seed(seed)

    def rects():
        out = torch.zeros(n, h, w, dtype=torch.long)
        for i in range(n):
            for _ in range(3):
                y, x = (int(torch.randint(0, m - 3, (1,), generator=g)) for m in (h, w))
                hh, ww = (int(torch.randint(2, m // 2 + 1, (1,), generator=g)) for m in (h, w))
                out[i, y:y + hh, x:x + ww] = int(torch.randint(1, num_classes, (1,), generator=g))
        return out

    target = rects()
    edges = torch.zeros_like(target, dtype=torch.bool)
    edges[:, :, 1:] |= target[:, :, 1:] != target[:, :, :-1]
    edges[:, 1:] |= target[:, 1:] != target[:, :-1]
    void = edges & (torch.rand(n, 1, w, generator=g) < 0.6)  # bands on some columns
    void |= torch.rand(n, h, w, generator=g) < 0.05  # specks
    y, x = (int(torch.randint(0, m - 2, (1,), generator=g)) for m in (h, w))
    void[0, y:y + 2, x:x + 3] = True  # a block
    pred = torch.where(torch.rand(n, h, w, generator=g) < 0.7, target, rects())
    pred[:, :, : w // 3] = pred[:, :, : w // 3].roll(1, dims=1)
    target[void] = IGNORE
    pred[void] = torch.randint(0, num_classes, (int(void.sum()),), generator=g)
    return pred, target


@pytest.mark.parametrize("seed", range(8))
def test_boundary_f1_against_brute_force_loops_with_random_void(seed):
    pred, target = _scene(seed)
    assert (target == IGNORE).any()
    for tol in (0, 1, 2, 4):
        got = boundary_f1(pred, target, tolerance=tol, num_classes=4)
        assert got == pytest.approx(_brute_force_bf(pred, target, tol, 4), abs=1e-12)
        assert got == pytest.approx(_bf_reference(pred, target, tol, 4), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_boundary_f1_is_at_least_the_one_to_one_bsds_matching(seed):
    """BSDS matches boundary pixels one-to-one: never more matches than dilation matching."""
    pred, target = _scene(20 + seed)
    for tol in (1, 2):
        ours = boundary_f1(pred, target, tolerance=tol, num_classes=4)
        bsds = _brute_force_bf(pred, target, tol, 4, one_to_one=True)
        assert bsds <= ours + 1e-12
    assert _brute_force_bf(target.clamp_max(3), target, 0, 4, one_to_one=True) == 1.0


# ----------------------------------------------------------------------------- tolerance
def test_boundary_f1_tolerance_is_clamped_to_the_image_diagonal():
    from course_lib.metrics.boundary import _max_distance

    pred, target = _scene(3, h=20, w=30)
    diag = _max_distance(20, 30)
    assert diag == math.ceil(math.hypot(19, 29)) == 35
    at_diag = boundary_f1(pred, target, tolerance=diag, num_classes=4)
    assert at_diag == pytest.approx(_bf_reference(pred, target, 10**6, 4), abs=1e-12)
    for huge in (diag + 1, 10**3, 10**6, 10**12):
        assert boundary_f1(pred, target, tolerance=huge, num_classes=4) == at_diag
    # just below the diagonal the far corners may still be out of reach
    assert boundary_f1(pred, target, tolerance=diag - 1, num_classes=4) == pytest.approx(
        _bf_reference(pred, target, diag - 1, 4), abs=1e-12)


def test_boundary_f1_huge_tolerance_is_fast_on_a_large_image():
    import time

    target = torch.zeros(2, 400, 600, dtype=torch.long)
    target[:, 50:300, 100:500] = 1
    target[:, 60:70] = IGNORE
    pred = target.roll(7, dims=2).clamp_max(1)
    start = time.perf_counter()
    got = boundary_f1(pred, target, tolerance=10**6)  # the old code asked for (2e6+1)^2 floats
    assert time.perf_counter() - start < 10
    assert got == boundary_f1(pred, target, tolerance=_max_distance_of(target)) == 1.0


def _max_distance_of(labels):
    h, w = labels.shape[-2:]
    return math.ceil(math.hypot(h - 1, w - 1))


# ----------------------------------------------------------------------------- DAVIS
def _seg2bmap(seg):
    """DAVIS's ``_seg2bmap`` (Perazzi et al. 2016) at the mask's own size: a pixel is on the
    contour when it differs from its east, south or south-east neighbour."""
    seg = seg.astype(bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _davis_f_measure(fg, gt, void=None, bound_th=0.008):
    """DAVIS's ``f_measure``: void set to background in both masks, ``seg2bmap`` contours,
    dilation by ``disk(bound_pix)`` (SciPy instead of OpenCV), the same empty-set rules."""
    from skimage.morphology import disk

    void = np.zeros_like(gt, dtype=bool) if void is None else void
    bound_pix = bound_th if bound_th >= 1 else int(np.ceil(bound_th * np.linalg.norm(gt.shape)))
    fg_b, gt_b = _seg2bmap(fg & ~void), _seg2bmap(gt & ~void)
    fg_dil = ndimage.binary_dilation(fg_b, disk(bound_pix))
    gt_dil = ndimage.binary_dilation(gt_b, disk(bound_pix))
    n_fg, n_gt = fg_b.sum(), gt_b.sum()
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = (fg_b & gt_dil).sum() / n_fg, (gt_b & fg_dil).sum() / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _binary_pair(seed, h=40, w=50):
    """A smooth random mask and a prediction shifted, then grown or shrunk."""
    rng = np.random.default_rng(seed)
    gt = ndimage.gaussian_filter(rng.random((h, w)), 3) > 0.52
    gt[rng.integers(0, h - 10):, rng.integers(0, w - 10):][:8, :12] = True
    gt = ndimage.binary_opening(gt)
    fg = np.roll(gt, int(rng.integers(-2, 3)), axis=1)
    fg = ndimage.binary_dilation(fg) if seed % 2 else ndimage.binary_erosion(fg)
    return fg, gt


def test_disk_dilation_equals_skimage_disk():
    from skimage.morphology import disk

    from course_lib.metrics.boundary import _dilate_disk

    g = torch.Generator().manual_seed(0)
    mask = torch.rand(2, 3, 9, 13, generator=g) < 0.04
    for radius in [*range(0, 8), 14, 15, 16, 40]:  # 15 = the diagonal of a 9 x 13 image
        got = _dilate_disk(mask, radius)
        for n in range(2):
            for c in range(3):
                ref = ndimage.binary_dilation(mask[n, c].numpy(), disk(radius)) \
                    if radius else mask[n, c].numpy()
                assert np.array_equal(got[n, c].numpy(), ref), (radius, n, c)


@pytest.mark.parametrize("seed", range(6))
def test_matching_equals_davis_f_measure_on_seg2bmap_contours(seed):
    """Fed DAVIS's contours, our matching step is DAVIS's f_measure exactly."""
    from course_lib.metrics.boundary import _match_f1

    fg, gt = _binary_pair(seed)
    for bound_th in (0.008, 1, 2, 3, 5):
        bound_pix = bound_th if bound_th >= 1 else int(np.ceil(bound_th * np.hypot(*gt.shape)))
        b_p = torch.from_numpy(_seg2bmap(fg))[None, None]
        b_t = torch.from_numpy(_seg2bmap(gt))[None, None]
        got = float(_match_f1(b_p, b_t, bound_pix)[0, 0])
        assert got == pytest.approx(_davis_f_measure(fg, gt, bound_th=bound_th), abs=1e-12)
    empty = torch.zeros_like(b_t)
    assert float(_match_f1(empty, b_t, 2)[0, 0]) == 0.0 == _davis_f_measure(0 * fg, gt, None, 2)
    assert float(_match_f1(empty, empty, 2)[0, 0]) == 1.0 == _davis_f_measure(
        0 * fg, 0 * gt, None, 2)


@pytest.mark.parametrize("seed", range(6))
def test_boundary_f1_close_to_davis_on_binary_masks(seed):
    """Contours differ (per-class region pixels here, seg2bmap's half-pixel-shifted map in
    DAVIS), so the scores differ a little; on these masks by less than 0.05."""
    fg, gt = _binary_pair(seed)
    for tol in (1, 2, 3, 4):
        ours = boundary_f1(torch.from_numpy(fg).long(), torch.from_numpy(gt).long(), tol,
                           num_classes=2)
        assert ours == pytest.approx(_davis_f_measure(fg, gt, bound_th=tol), abs=0.05)


def test_boundary_f1_and_davis_agree_on_void_bands():
    target, obj = _voc_like()
    void = (target == IGNORE).numpy()
    gt = obj.numpy()
    for fill in (0, 1):
        pred = torch.where(target == IGNORE, fill, target)
        fg = pred.numpy() == 1
        assert boundary_f1(pred, target, num_classes=2) == 1.0 == _davis_f_measure(
            fg, gt, void, 2)
    assert boundary_f1(torch.zeros_like(target), target, num_classes=2) == 0.0 == \
        _davis_f_measure(0 * gt, gt, void, 2)


def test_boundary_f1_rejects_a_non_int_ignore_index():
    t = torch.zeros(4, 4, dtype=torch.long)
    with pytest.raises(TypeError, match="ignore_index must be an int, got 'void'"):
        boundary_f1(t, t, ignore_index="void")
    with pytest.raises(ValueError, match="ignore_index=0 is a valid class"):
        boundary_f1(t, t + 1, ignore_index=0)
