"""course_lib.losses against torch / torchvision twins, hand cases, gradcheck and ignore_index."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torch.utils.data import DataLoader
from torchvision.ops import sigmoid_focal_loss

from course_lib.datasets import ShapesDataset
from course_lib.losses import (
    dice_loss,
    focal_loss,
    median_frequency_weights,
    soft_jaccard_loss,
    weighted_cross_entropy,
)
from course_lib.metrics import ConfusionMatrix

DT = torch.float64
IGNORE = 255


def _batch(seed, n=2, c=4, h=5, w=6, p_ignore=0.15, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(n, c, h, w, generator=g, dtype=dtype)).requires_grad_()
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[torch.rand(n, h, w, generator=g) < p_ignore] = IGNORE
    return logits, target


def _grad(loss, x):
    return torch.autograd.grad(loss, x)[0]


# ----------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("seed", range(4))
def test_weighted_cross_entropy_matches_torch(seed):
    logits, target = _batch(seed)
    weight = torch.rand(4, dtype=DT, generator=torch.Generator().manual_seed(seed)) + 0.1
    for w in (None, weight):
        ours = weighted_cross_entropy(logits, target, w)
        ref = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE)
        assert_close(ours, ref)
        assert_close(_grad(ours, logits), _grad(ref, logits))


def test_weighted_cross_entropy_float32_and_other_ignore_index():
    logits, target = _batch(5, dtype=torch.float32)
    target[target == IGNORE] = -100
    assert_close(weighted_cross_entropy(logits, target, ignore_index=-100),
                 F.cross_entropy(logits, target))


def test_gradcheck_weighted_cross_entropy_and_focal():
    logits, target = _batch(6, n=1, c=3, h=3, w=3)
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=DT)
    assert torch.autograd.gradcheck(lambda x: weighted_cross_entropy(x, target, weight),
                                    (logits,))
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, target, 2.0, weight), (logits,))
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, target, 0.5, reduction="none"),
                                    (logits,))


# ----------------------------------------------------------------------------- focal loss
def test_focal_hand_case():
    # two classes, p = softmax([0, log 3]) = [1/4, 3/4]
    logits = torch.tensor([0.0, math.log(3.0)], dtype=DT).reshape(1, 2, 1, 1)
    for y, p_t in ((1, 0.75), (0, 0.25)):
        target = torch.tensor([[[y]]])
        for gamma in (0.0, 1.0, 2.0, 5.0):
            expected = -((1 - p_t) ** gamma) * math.log(p_t)
            assert float(focal_loss(logits, target, gamma)) == pytest.approx(expected)
    alpha = torch.tensor([0.25, 0.75], dtype=DT)
    got = focal_loss(logits, torch.tensor([[[1]]]), 2.0, alpha)
    assert float(got) == pytest.approx(-0.75 * 0.25**2 * math.log(0.75))


@pytest.mark.parametrize("seed", range(4))
def test_focal_gamma0_is_cross_entropy(seed):
    logits, target = _batch(10 + seed)
    for reduction in ("mean", "sum", "none"):
        ours = focal_loss(logits, target, gamma=0, reduction=reduction)
        ref = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction=reduction)
        assert_close(ours, ref)
        assert_close(_grad(ours.sum(), logits), _grad(ref.sum(), logits))
    # with per-class alpha the sums agree; torch's weighted *mean* divides by sum(w[y])
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DT)
    assert_close(focal_loss(logits, target, 0, alpha, reduction="sum"),
                 F.cross_entropy(logits, target, alpha, ignore_index=IGNORE, reduction="sum"))
    valid = target != IGNORE
    assert_close(focal_loss(logits, target, 0, alpha),
                 F.cross_entropy(logits, target, alpha, ignore_index=IGNORE, reduction="sum")
                 / valid.sum())


def test_focal_down_weights_easy_pixels():
    logits, target = _batch(20, p_ignore=0.0)
    ce = focal_loss(logits, target, 0, reduction="none")
    losses = [focal_loss(logits, target, g, reduction="none") for g in (0.5, 1, 2, 5)]
    for low, high in zip([ce, *losses], losses):
        assert (high <= low + 1e-12).all(), "a larger gamma never increases a pixel's loss"


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("a", [None, 0.25, 0.8])
def test_binary_case_matches_torchvision_sigmoid_focal_loss(gamma, a):
    """Binary sigmoid focal loss == 2-class softmax focal loss with logits [0, x] and
    alpha = [1 - a, a]: softmax([0, x])[1] = sigmoid(x)."""
    g = torch.Generator().manual_seed(int(gamma * 10) + (0 if a is None else int(a * 100)))
    x = (3 * torch.randn(2, 5, 7, generator=g, dtype=DT)).requires_grad_()
    t = torch.randint(0, 2, (2, 5, 7), generator=g)
    logits = torch.stack([torch.zeros_like(x), x], dim=1)  # (N, 2, H, W)
    alpha = None if a is None else torch.tensor([1 - a, a], dtype=DT)
    for reduction in ("none", "mean", "sum"):
        ours = focal_loss(logits, t, gamma, alpha, reduction=reduction)
        ref = sigmoid_focal_loss(x, t.to(DT), alpha=-1 if a is None else a, gamma=gamma,
                                 reduction=reduction)
        assert_close(ours, ref)
        assert_close(_grad(ours.sum(), x), _grad(ref.sum(), x))


def test_focal_ignored_pixels_contribute_nothing():
    logits, target = _batch(30)
    ignored = (target == IGNORE).unsqueeze(1).expand_as(logits)
    loss = focal_loss(logits, target)
    grad = _grad(loss, logits)
    assert (grad[ignored] == 0).all()
    other = logits.detach().clone()
    other[ignored] = 100.0
    assert_close(focal_loss(other, target), loss.detach())
    assert (focal_loss(logits, target, reduction="none")[target == IGNORE] == 0).all()


def test_all_pixels_ignored_follows_torch():
    logits, target = _batch(35)
    target[:] = IGNORE
    assert torch.isnan(F.cross_entropy(logits, target, ignore_index=IGNORE))
    assert torch.isnan(weighted_cross_entropy(logits, target))
    assert torch.isnan(focal_loss(logits, target))
    assert float(focal_loss(logits, target, reduction="sum").detach()) == 0.0
    assert float(dice_loss(logits, target).detach()) == 0.0
    assert float(soft_jaccard_loss(logits, target).detach()) == 0.0


# ----------------------------------------------------------------------------- Dice / Jaccard
def _onehot_logits(labels, c, scale=1000.0):
    """Logits whose softmax is exactly the one-hot of ``labels`` in float64."""
    return scale * F.one_hot(labels, c).permute(0, 3, 1, 2).to(DT)


def test_dice_and_jaccard_hand_cases():
    target = torch.tensor([[[0, 1], [1, 1]]])
    half = torch.zeros(1, 2, 2, 2, dtype=DT)  # p = 1/2 everywhere
    # class 0: I = 0.5, |P| + |G| = 2 + 1; class 1: I = 1.5, |P| + |G| = 2 + 3
    assert float(dice_loss(half, target, eps=0)) == pytest.approx(1 - (1 / 3 + 3 / 5) / 2)
    assert float(soft_jaccard_loss(half, target, eps=0)) == pytest.approx(
        1 - (0.5 / 2.5 + 1.5 / 3.5) / 2)
    perfect = _onehot_logits(target, 2)
    assert float(dice_loss(perfect, target, eps=0)) == 0.0
    assert float(soft_jaccard_loss(perfect, target)) == 0.0
    wrong = _onehot_logits(1 - target, 2)
    assert float(dice_loss(wrong, target, eps=0)) == 1.0
    assert float(soft_jaccard_loss(wrong, target, eps=0)) == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_jaccard_on_hard_predictions_is_one_minus_miou(seed):
    _, target = _batch(40 + seed)
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, 4, target.shape, generator=g)
    cm = ConfusionMatrix(4).update(pred, target)
    assert not torch.isnan(cm.iou()).any()
    logits = _onehot_logits(pred, 4)
    assert float(soft_jaccard_loss(logits, target, eps=0)) == pytest.approx(1 - cm.miou())
    dice = 2 * cm.iou() / (1 + cm.iou())  # Dice = 2J / (1 + J) per class
    assert float(dice_loss(logits, target, eps=0)) == pytest.approx(1 - float(dice.mean()))


@pytest.mark.parametrize("loss_fn", [dice_loss, soft_jaccard_loss])
def test_overlap_losses_ignore_pixels_everywhere(loss_fn):
    logits, target = _batch(50)
    valid = target != IGNORE
    loss = loss_fn(logits, target)
    # the same loss on the labelled pixels only, laid out as one (1, C, P, 1) image
    flat = logits.permute(1, 0, 2, 3)[:, valid].unsqueeze(0).unsqueeze(-1)  # (1, C, P, 1)
    assert_close(loss, loss_fn(flat, target[valid].reshape(1, -1, 1)))
    grad = _grad(loss, logits)
    assert (grad.permute(1, 0, 2, 3)[:, ~valid] == 0).all()
    assert 0 <= float(loss.detach()) <= 1


@pytest.mark.parametrize("loss_fn", [dice_loss, soft_jaccard_loss])
def test_gradcheck_overlap_losses(loss_fn):
    logits, target = _batch(60, n=2, c=3, h=3, w=2)
    for eps in (0.0, 1.0):
        assert torch.autograd.gradcheck(lambda x, e=eps: loss_fn(x, target, eps=e), (logits,))


# ----------------------------------------------------------------------------- class weights
def test_median_frequency_hand_case():
    masks = torch.tensor([[[0, 0, 0, 1]], [[0, 0, 2, 2]]])  # (2, 1, 4)
    # freq: class 0 = 5/8, class 1 = 1/4, class 2 = 2/4; median 1/2
    w = median_frequency_weights(masks, 3)
    assert w.dtype == torch.float32 and w.shape == (3,)
    assert_close(w, torch.tensor([0.8, 2.0, 1.0]))
    ignored = torch.cat([masks, torch.full((2, 1, 3), IGNORE)], dim=2)
    assert_close(median_frequency_weights(ignored, 3), w)
    # an even number of present classes: the median averages the two middle ones
    even = median_frequency_weights(torch.tensor([[0, 0, 0, 1]]), 2)
    assert_close(even, torch.tensor([0.5 / 0.75, 0.5 / 0.25]))


def test_median_frequency_accepts_datasets_loaders_and_iterables():
    ds = ShapesDataset("val", length=6, image_size=32, seed=0)
    masks = torch.stack([m for _, m in ds])  # (6, 32, 32)
    ref = median_frequency_weights(masks, 4)
    for data in (ds, list(ds), list(masks), iter(list(masks)), DataLoader(ds, batch_size=4)):
        assert_close(median_frequency_weights(data, 4), ref)
    assert (ref > 0).all() and float(ref[0]) < 1, "the background is the most frequent class"


def test_median_frequency_absent_class_and_errors():
    with pytest.warns(RuntimeWarning, match=r"classes \[2\] never occur"):
        w = median_frequency_weights(torch.tensor([[0, 1]]), 3)
    assert float(w[2]) == 0.0
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_weights(torch.full((2, 2), IGNORE), 3)
    with pytest.raises(ValueError, match=r"mask has labels \[5\] outside \[0, 3\)"):
        median_frequency_weights(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="mask must hold integer class labels"):
        median_frequency_weights(torch.zeros(2, 2), 3)
    with pytest.raises(TypeError, match="yield masks or .* got an item of type dict"):
        median_frequency_weights(ShapesDataset("val", length=2, target="instance"), 4)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        median_frequency_weights(torch.zeros(2, 2, dtype=torch.long), 0)


# ----------------------------------------------------------------------------- bad input
LOSSES = [weighted_cross_entropy, focal_loss, dice_loss, soft_jaccard_loss]


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_losses_reject_bad_input(loss_fn):
    logits, target = _batch(70)
    with pytest.raises(ValueError, match=r"logits must be a floating tensor.*torch.int64"):
        loss_fn(target.unsqueeze(1).expand(-1, 4, -1, -1), target)
    with pytest.raises(ValueError, match="target must hold integer class labels.*float64"):
        loss_fn(logits, target.to(DT))
    with pytest.raises(ValueError, match="target must hold integer class labels.*float32"):
        loss_fn(logits, target.clamp_max(3).float())  # float-valued, even if whole numbers
    with pytest.raises(ValueError, match="target must hold integer class labels.*torch.bool"):
        loss_fn(logits, target == 1)
    with pytest.raises(ValueError, match=r"got logits \(2, 4, 5, 6\) and target \(2, 5, 5\)"):
        loss_fn(logits, target[:, :, :5])
    with pytest.raises(ValueError, match=r"got logits \(4,\) and target \(2, 5, 6\)"):
        loss_fn(logits[0, :, 0, 0], target)
    bad = target.clone()
    bad[0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"target has labels \[4\] outside \[0, 4\)"):
        loss_fn(logits, bad)
    with pytest.raises(TypeError, match="logits and target must be torch.Tensors, got list"):
        loss_fn([0.0], target)


def test_loss_argument_errors():
    logits, target = _batch(80)
    with pytest.raises(ValueError, match=r"weight must be a float tensor of shape \(4,\)"):
        weighted_cross_entropy(logits, target, torch.ones(3, dtype=DT))
    with pytest.raises(ValueError, match=r"alpha must be .* got torch.int64 \(4,\)"):
        focal_loss(logits, target, alpha=torch.ones(4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"alpha must be .* got list"):
        focal_loss(logits, target, alpha=[1.0] * 4)
    for gamma in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gamma must be a number >= 0"):
            focal_loss(logits, target, gamma=gamma)
    for gamma in ("2", True, None):
        with pytest.raises(TypeError, match="gamma must be a number"):
            focal_loss(logits, target, gamma=gamma)
    with pytest.raises(ValueError, match="reduction must be one of"):
        focal_loss(logits, target, reduction="avg")
    for fn in (dice_loss, soft_jaccard_loss):
        with pytest.raises(ValueError, match="eps must be a number >= 0"):
            fn(logits, target, eps=-1.0)


# ----------------------------------------------------------------------------- target dtypes
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


def _ignore_for(dtype):
    """255 where the dtype holds it (uint8 masks from PNG files); int8 cannot, so -1."""
    return -1 if dtype == torch.int8 else IGNORE


def _focal_alpha(logits, target, ignore_index):
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DT)
    return focal_loss(logits, target, 1.5, alpha, ignore_index=ignore_index)


def _focal_none(logits, target, ignore_index):
    return focal_loss(logits, target, 2.0, ignore_index=ignore_index, reduction="none").sum()


def _weighted_ce(logits, target, ignore_index):
    w = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=DT)
    return weighted_cross_entropy(logits, target, w, ignore_index=ignore_index)


DTYPE_LOSSES = [weighted_cross_entropy, _weighted_ce, focal_loss, _focal_alpha, _focal_none,
                dice_loss, soft_jaccard_loss]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("loss_fn", DTYPE_LOSSES, ids=lambda f: f.__name__)
def test_every_loss_accepts_every_integer_target_dtype(loss_fn, dtype):
    ignore = _ignore_for(dtype)
    logits, target = _batch(90)
    target[target == IGNORE] = ignore
    assert (target == ignore).any()
    ref = loss_fn(logits, target, ignore_index=ignore)  # int64
    got = loss_fn(logits, target.to(dtype), ignore_index=ignore)
    assert_close(got, ref, rtol=0, atol=0)
    assert_close(_grad(got, logits), _grad(ref, logits), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_cross_entropy_on_small_dtypes_matches_torch(dtype):
    ignore = _ignore_for(dtype)
    logits, target = _batch(91)
    target[target == IGNORE] = ignore
    small = target.to(dtype)
    ref = F.cross_entropy(logits, target, ignore_index=ignore)
    ref_grad = _grad(ref, logits)
    for ours in (weighted_cross_entropy(logits, small, ignore_index=ignore),
                 focal_loss(logits, small, gamma=0, ignore_index=ignore)):
        assert_close(ours, ref)
        assert_close(_grad(ours, logits), ref_grad)


def test_uint8_255_is_ignored_in_every_loss():
    logits, target = _batch(92)
    small = target.to(torch.uint8)
    assert int(small.max()) == IGNORE
    for loss_fn in LOSSES:
        grad = _grad(loss_fn(logits, small), logits)
        assert (grad.permute(1, 0, 2, 3)[:, target == IGNORE] == 0).all()


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_median_frequency_weights_any_integer_dtype(dtype):
    ignore = _ignore_for(dtype)
    _, masks = _batch(93, n=3, h=6, w=7)
    masks[masks == IGNORE] = ignore
    ref = median_frequency_weights(masks, 4, ignore_index=ignore)
    assert_close(median_frequency_weights(masks.to(dtype), 4, ignore_index=ignore), ref)


# ----------------------------------------------------------------------------- weight values
@pytest.mark.parametrize("bad", [float("nan"), -0.5, float("inf"), float("-inf")])
def test_alpha_and_weight_reject_nan_negative_and_infinite_entries(bad):
    logits, target = _batch(94)
    values = torch.tensor([0.25, bad, 1.0, 0.5], dtype=DT)
    with pytest.raises(ValueError, match=r"alpha must hold finite weights >= 0, got .*"
                                         r"\(bad at classes \[1\]\)"):
        focal_loss(logits, target, alpha=values)
    with pytest.raises(ValueError, match=r"weight must hold finite weights >= 0.*classes \[1\]"):
        weighted_cross_entropy(logits, target, values)


def test_zero_alpha_entries_are_allowed():
    logits, target = _batch(95)
    alpha = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=DT)
    loss = focal_loss(logits, target, 0.0, alpha, reduction="sum")
    ref = F.cross_entropy(logits, target, alpha, ignore_index=IGNORE, reduction="sum")
    assert_close(loss, ref)
