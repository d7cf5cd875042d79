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


def _bf_reference(pred, target, tol, num_classes, ignore=IGNORE):
    """Boundary F1 with SciPy: binary erosion and the Euclidean distance transform."""
    scores = []
    for p, t in zip(pred.numpy(), target.numpy()):
        valid = t != ignore
        f1s = []
        for c in np.unique(t[valid]):
            bounds = []
            for lab in (p, t):
                region = lab == c
                eroded = ndimage.binary_erosion(region, np.ones((3, 3)), border_value=1)
                bounds.append(region & ~eroded & valid)
            bp, bt = bounds
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
