"""U-Net's elastic deformation and border weight map, against scipy and brute-force loops."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib.datasets import ShapesDataset
from course_lib.datasets.augment import (
    border_weight_map,
    displacement_field,
    elastic_deform,
    warp,
)


def _random_field(h, w, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, h, w, generator=g, dtype=torch.float64) * scale


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode, order", [("bilinear", 1), ("nearest", 0)])
def test_warp_matches_scipy_map_coordinates(seed, mode, order):
    h, w = 9, 13
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.rand(3, h, w, generator=g, dtype=torch.float64)
    field = _random_field(h, w, 6.0, seed)  # many samples fall outside the image
    got = warp(x, field, mode=mode)
    rows, cols = np.mgrid[:h, :w].astype(np.float64)
    coords = [rows + field[0].numpy(), cols + field[1].numpy()]
    want = np.stack([ndimage.map_coordinates(c.numpy(), coords, order=order, mode="mirror")
                     for c in x])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)


def test_warp_identity_and_whole_pixel_shift():
    x = torch.arange(30.0).reshape(5, 6)
    assert torch.equal(warp(x, torch.zeros(2, 5, 6)), x)
    shift = torch.zeros(2, 5, 6)
    shift[1] = 1.0  # read one column to the right; the last column mirrors back
    out = warp(x, shift)
    assert torch.equal(out[:, :-1], x[:, 1:]) and torch.equal(out[:, -1], x[:, -2])
    labels = torch.randint(0, 4, (2, 5, 6))
    assert torch.equal(warp(labels, torch.zeros(2, 5, 6), mode="nearest"), labels)
    batch = torch.rand(2, 3, 5, 6)
    assert warp(batch, shift).shape == (2, 3, 5, 6)


def test_displacement_field_control_points_and_spread():
    field = displacement_field(33, 21, grid=3, sigma=10.0,
                               generator=torch.Generator().manual_seed(7))
    coarse = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(7),
                         dtype=torch.float64)[0] * 10.0
    # the control points sit on the corners and the centre (align_corners)
    for (i, j), (ci, cj) in zip(itertools.product((0, 16, 32), (0, 10, 20)),
                                itertools.product(range(3), range(3))):
        torch.testing.assert_close(field[:, i, j].double(), coarse[:, ci, cj])
    assert not displacement_field(8, 8, sigma=0.0).any()
    corners = torch.stack([displacement_field(8, 8, generator=torch.Generator().manual_seed(s))
                           [:, 0, 0] for s in range(400)])  # (400, 2)
    assert abs(corners.std().item() - 10.0) < 1.0  # N(0, 10 px), the paper's


def test_elastic_deform_uses_one_field_for_image_and_labels():
    ds = ShapesDataset("val", 2, image_size=48, target="instance", min_shapes=2, max_shapes=4)
    image, target = ds[0]
    out, masks = elastic_deform(image, target["masks"], generator=torch.Generator().manual_seed(3))
    field = displacement_field(48, 48, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, warp(image, field))
    assert torch.equal(masks, warp(target["masks"], field, mode="nearest"))
    assert masks.dtype == torch.uint8 and set(masks.unique().tolist()) <= {0, 1}
    alone = elastic_deform(image, generator=torch.Generator().manual_seed(3))
    assert torch.equal(alone, out)


def _brute_force_weights(masks, w0, sigma, balance):
    n, h, w = masks.shape
    fg = masks.any(0)
    weights = torch.ones(h, w, dtype=torch.float64)
    if balance:
        for region in (fg, ~fg):
            if region.any():
                weights[region] = h * w / (2 * region.sum().item())
    pixels = [[(i, j) for i in range(h) for j in range(w) if masks[k, i, j]] for k in range(n)]
    for i in range(h):
        for j in range(w):
            if fg[i, j] or n < 2:
                continue
            d = sorted(min(math.hypot(i - a, j - b) for a, b in obj) for obj in pixels)
            weights[i, j] += w0 * math.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return weights


@pytest.mark.parametrize("seed, balance", [(0, True), (1, False), (2, True)])
def test_border_weight_map_matches_a_brute_force_loop(seed, balance):
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(3, 12, 14, dtype=torch.bool)
    for k in range(3):
        i, j = (int(v) for v in torch.randint(0, 10, (2,), generator=g))
        masks[k, i : i + 3, j : j + 4] = True
    got = border_weight_map(masks, w0=10.0, sigma=3.0, balance=balance)
    assert got.dtype == torch.float32 and got.shape == (12, 14)
    torch.testing.assert_close(got.double(), _brute_force_weights(masks, 10.0, 3.0, balance),
                               rtol=1e-5, atol=1e-5)


def test_border_weight_map_gap_and_balance():
    one = torch.zeros(1, 6, 6, dtype=torch.uint8)
    one[0, :2, :2] = 1
    w = border_weight_map(one)
    fg = one[0].bool()
    assert torch.allclose(w[fg].sum(), w[~fg].sum())  # each class weighs the same in total
    assert torch.equal(border_weight_map(one, balance=False), torch.ones(6, 6))  # no bonus
    two = torch.zeros(2, 1, 20, dtype=torch.bool)
    two[0, 0, :8], two[1, 0, 10:] = True, True  # a 2-pixel gap
    w = border_weight_map(two, balance=False)
    assert w[0, 8] == w[0, 9] == pytest.approx(1 + 10 * math.exp(-9 / 50))  # d1 + d2 = 3
    assert torch.all(w[0, :8] == 1)


def test_errors():
    x, field = torch.rand(5, 6), torch.zeros(2, 5, 6)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        warp(x.tolist(), field)
    with pytest.raises(TypeError, match="displacement must be a torch.Tensor"):
        warp(x, field.numpy())
    with pytest.raises(ValueError, match="x must be a 2 or 3 or 4-D tensor"):
        warp(torch.rand(5), field)
    with pytest.raises(ValueError, match=r"displacement must have shape \(2, 5, 6\)"):
        warp(x, torch.zeros(2, 6, 5))
    with pytest.raises(ValueError, match="displacement must have a floating dtype"):
        warp(x, torch.zeros(2, 5, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match="mode='nearest'"):
        warp(torch.zeros(5, 6, dtype=torch.int64), field)
    with pytest.raises(ValueError, match="mode must be one of"):
        warp(x, field, mode="bicubic")
    with pytest.raises(ValueError, match="at least 2 x 2"):
        warp(torch.rand(1, 6), torch.zeros(2, 1, 6))
    with pytest.raises(ValueError, match="height must be an int >= 2"):
        displacement_field(1, 5)
    with pytest.raises(ValueError, match="grid must be an int >= 2"):
        displacement_field(5, 5, grid=1)
    with pytest.raises(ValueError, match="sigma"):
        displacement_field(5, 5, sigma=-1.0)
    with pytest.raises(TypeError, match="sigma"):
        displacement_field(5, 5, sigma=True)
    with pytest.raises(TypeError, match="image must be a torch.Tensor"):
        elastic_deform([[0.0]])
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        elastic_deform(torch.rand(3, 5, 5), [[0]])
    with pytest.raises(ValueError, match=r"target must have the image's size \(5, 5\)"):
        elastic_deform(torch.rand(3, 5, 5), torch.zeros(4, 5, dtype=torch.int64))
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match="instances must be a torch.Tensor"):
        border_weight_map(masks.numpy())
    with pytest.raises(ValueError, match=r"instances must be a 3-D tensor \(N, H, W\)"):
        border_weight_map(masks[0])
    with pytest.raises(ValueError, match="bools or integers 0 and 1"):
        border_weight_map(masks.long() + 2)
    with pytest.raises(ValueError, match="bools or integers 0 and 1"):
        border_weight_map(masks.float())
    with pytest.raises(ValueError, match="w0"):
        border_weight_map(masks, w0=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        border_weight_map(masks, sigma=0.0)
    with pytest.raises(TypeError, match="balance must be a bool"):
        border_weight_map(masks, balance=1)
