"""course_lib.ops against torch.nn.functional: forward values and autograd gradients."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from course_lib.ops import (
    bed_of_nails,
    bilinear_kernel,
    conv2d,
    conv_matrix,
    conv_output_size,
    conv_transpose2d,
    conv_transpose_output_size,
    icnr_,
    overlap_counts,
    splat_steps,
    stamp_box,
)
from course_lib.ops import transposed as ops_transposed

DT = torch.float64


def _conv_config(seed: int, small: bool = False):
    """A random valid conv2d configuration: non-square kernels/inputs, batched or not."""
    rng = random.Random(seed)
    k = (rng.randint(1, 3 if small else 4), rng.randint(1, 3 if small else 4))
    s = (rng.randint(1, 3), rng.randint(1, 3))
    p = (rng.randint(0, 2), rng.randint(0, 2))
    d = (rng.randint(1, 3), rng.randint(1, 3))
    size = []
    for i in range(2):
        eff = d[i] * (k[i] - 1) + 1
        size.append(rng.randint(max(1, eff - 2 * p[i]), eff + (3 if small else 8)))
    cfg = dict(stride=rng.choice([s, s[0]]), padding=p, dilation=d)  # int or pair stride
    n = rng.choice([None, 1, 2, 3])
    c_in, c_out = rng.randint(1, 3), rng.randint(1, 4)
    return n, c_in, c_out, tuple(size), k, cfg, rng.random() < 0.7


def _tensors(seed, n, c_in, c_out, size, k, with_bias, transposed=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*(() if n is None else (n,)), c_in, *size, dtype=DT, generator=g)
    wshape = (c_in, c_out, *k) if transposed else (c_out, c_in, *k)
    w = torch.randn(*wshape, dtype=DT, generator=g)
    b = torch.randn(c_out, dtype=DT, generator=g) if with_bias else None
    return [t.requires_grad_() if t is not None else None for t in (x, w, b)]


def _check_against(ours, ref, x, w, b):
    """Forward values equal; gradients w.r.t. input, weight and bias equal."""
    out, expected = ours(x, w, b), ref(x, w, b)
    assert out.shape == expected.shape
    assert_close(out, expected)
    leaves = [t for t in (x, w, b) if t is not None]
    upstream = torch.randn_like(expected)
    g_ours = torch.autograd.grad((out * upstream).sum(), leaves)
    g_ref = torch.autograd.grad((expected * upstream).sum(), leaves)
    for a, e in zip(g_ours, g_ref):
        assert_close(a, e)


@pytest.mark.parametrize("seed", range(60))
def test_conv2d_im2col_matches_torch(seed):
    n, c_in, c_out, size, k, cfg, with_bias = _conv_config(seed)
    x, w, b = _tensors(seed, n, c_in, c_out, size, k, with_bias)
    _check_against(lambda x, w, b: conv2d(x, w, b, **cfg),
                   lambda x, w, b: F.conv2d(x, w, b, **cfg), x, w, b)


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_loops_matches_torch(seed):
    n, c_in, c_out, size, k, cfg, with_bias = _conv_config(1000 + seed, small=True)
    x, w, b = _tensors(seed, n, c_in, c_out, size, k, with_bias)
    _check_against(lambda x, w, b: conv2d(x, w, b, method="loops", **cfg),
                   lambda x, w, b: F.conv2d(x, w, b, **cfg), x, w, b)


def _transposed_config(seed: int):
    rng = random.Random(seed)
    while True:
        k = (rng.randint(1, 4), rng.randint(1, 4))
        s, p = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(0, 2), rng.randint(0, 2))
        d = (rng.randint(1, 3), rng.randint(1, 3))
        op = tuple(rng.randrange(max(s[i], d[i])) for i in range(2))
        size = (rng.randint(1, 7), rng.randint(1, 7))
        if all((size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 >= 1
               for i in range(2)):
            break
    cfg = dict(stride=s, padding=p, output_padding=op, dilation=d)
    return rng.choice([None, 1, 2]), rng.randint(1, 3), rng.randint(1, 3), size, k, cfg, \
        rng.random() < 0.7


@pytest.mark.parametrize("seed", range(60))
def test_conv_transpose2d_matches_torch(seed):
    n, c_in, c_out, size, k, cfg, with_bias = _transposed_config(seed)
    x, w, b = _tensors(seed, n, c_in, c_out, size, k, with_bias, transposed=True)
    _check_against(lambda x, w, b: conv_transpose2d(x, w, b, **cfg),
                   lambda x, w, b: F.conv_transpose2d(x, w, b, **cfg), x, w, b)


def test_int_arguments_and_default_method():
    x, w = torch.randn(2, 3, 9, 8, dtype=DT), torch.randn(4, 3, 3, 2, dtype=DT)
    assert_close(conv2d(x, w, stride=2, padding=1, dilation=2),
                 F.conv2d(x, w, stride=2, padding=1, dilation=2))
    wt = torch.randn(3, 4, 3, 2, dtype=DT)
    assert_close(conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1),
                 F.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1))


@pytest.mark.parametrize("seed", range(6))
def test_conv_matrix_and_its_transpose(seed):
    n, c_in, c_out, size, k, cfg, _ = _conv_config(2000 + seed, small=True)
    cfg = {key: cfg[key] for key in ("stride", "padding", "dilation")}
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(c_in, *size, dtype=DT, generator=g)
    w = torch.randn(c_out, c_in, *k, dtype=DT, generator=g)
    m = conv_matrix(w, size, **cfg)
    y = F.conv2d(x, w, **cfg)
    assert m.shape == (y.numel(), x.numel())
    assert_close(m @ x.flatten(), y.flatten())
    # The transposed conv (with output_padding to recover the input size) is M.T.
    s = (cfg["stride"],) * 2 if isinstance(cfg["stride"], int) else cfg["stride"]
    p, d = cfg["padding"], cfg["dilation"]
    op = [size[i] - conv_transpose_output_size(y.shape[1 + i], k[i], s[i], p[i], 0, d[i])
          for i in range(2)]
    z = torch.randn_like(y)
    back = conv_transpose2d(z, w, stride=s, padding=p, output_padding=op, dilation=d)
    assert back.shape == x.shape
    assert_close(back.flatten(), m.T @ z.flatten())


@pytest.mark.parametrize("args, expected", [((7, 4, 2, 1), 14), ((7, 3, 2, 1, 1), 14),
                                            ((7, 3, 2, 1), 13), ((7, 16, 8, 4), 56)])
def test_conv_transpose_output_size_reference_numbers(args, expected):
    assert conv_transpose_output_size(*args) == expected
    k, s, p = args[1:4]
    op = args[4] if len(args) > 4 else 0
    x, w = torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, k, k)
    real = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op)
    assert real.shape[-2:] == (expected, expected)


@pytest.mark.parametrize("seed", range(30))
def test_output_sizes_match_real_shapes(seed):
    n, c_in, c_out, size, k, cfg, _ = _conv_config(3000 + seed)
    s, p, d = ((v, v) if isinstance(v, int) else v
               for v in (cfg["stride"], cfg["padding"], cfg["dilation"]))
    real = F.conv2d(torch.zeros(1, 1, *size), torch.zeros(1, 1, *k), **cfg).shape[-2:]
    assert tuple(real) == tuple(conv_output_size(size[i], k[i], s[i], p[i], d[i])
                                for i in range(2))
    _, _, _, size, k, tcfg, _ = _transposed_config(3000 + seed)
    real = F.conv_transpose2d(torch.zeros(1, 1, *size), torch.zeros(1, 1, *k), **tcfg).shape
    assert tuple(real[-2:]) == tuple(
        conv_transpose_output_size(size[i], k[i], *(tcfg[a][i] for a in
                                   ("stride", "padding", "output_padding", "dilation")))
        for i in range(2))
    assert conv_output_size(99, 3, dilation=2) == 95


def test_bilinear_kernel_matches_interpolate():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 7, dtype=DT)
    w = bilinear_kernel(4, channels=3, dtype=DT)
    assert w.shape == (3, 3, 4, 4) and w[0, 1].abs().sum() == 0
    up = conv_transpose2d(x, w, stride=2, padding=1)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape == (2, 3, 18, 14)
    assert_close(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    k3 = bilinear_kernel(3)[0, 0]
    assert_close(k3, torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]))


@pytest.mark.parametrize("r", [2, 3])
def test_icnr_equals_conv_plus_nearest(r):
    torch.manual_seed(r)
    conv = torch.nn.Conv2d(3, 2 * r * r, 3, padding=1).double()
    assert icnr_(conv.weight, scale=r) is conv.weight
    with torch.no_grad():
        conv.bias.copy_(torch.randn(2, dtype=DT).repeat_interleave(r * r))
    x = torch.randn(2, 3, 5, 6, dtype=DT)
    out = torch.nn.PixelShuffle(r)(conv(x))
    sub = F.conv2d(x, conv.weight[:: r * r], conv.bias[:: r * r], padding=1)
    assert_close(out, F.interpolate(sub, scale_factor=r, mode="nearest"))
    assert conv.weight.std() > 0


def test_bed_of_nails():
    x = torch.arange(1.0, 7.0).reshape(1, 2, 3)
    up = bed_of_nails(x, scale=3)
    assert up.shape == (1, 6, 9)
    assert torch.equal(up[..., ::3, ::3], x) and up.sum() == x.sum()
    assert torch.equal(bed_of_nails(x[0], 1), x[0])
    # Equals a transposed conv with a one-nail kernel.
    nail = torch.zeros(1, 1, 2, 2)
    nail[0, 0, 0, 0] = 1
    assert torch.equal(bed_of_nails(x), conv_transpose2d(x, nail, stride=2))


# ----------------------------------------------------------------------------- groups
@pytest.mark.parametrize("method", ["im2col", "loops"])
def test_depthwise_separable_conv_matches_torch(method):
    """DeepLabv3+'s separable conv: depthwise (groups = C_in, x2 multiplier), then 1x1."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 6, dtype=DT, generator=g).requires_grad_()
    dw = torch.randn(8, 1, 3, 3, dtype=DT, generator=g).requires_grad_()  # (C_out, C_in/g, .)
    pw = torch.randn(5, 8, 1, 1, dtype=DT, generator=g).requires_grad_()
    b = torch.randn(8, dtype=DT, generator=g).requires_grad_()
    _check_against(lambda x, w, b: conv2d(conv2d(x, w, b, 1, 2, 2, 4, method=method), pw,
                                          method=method),
                   lambda x, w, b: F.conv2d(F.conv2d(x, w, b, 1, 2, 2, 4), pw), x, dw, b)
    out = conv2d(x, dw, groups=4, method=method)
    # Group j (output channels 2j, 2j+1) sees input channel j only.
    assert_close(out[:, 2:4], F.conv2d(x[:, 1:2], dw[2:4]))


def test_grouped_transposed_conv_is_one_conv_per_group():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 4, 5, dtype=DT, generator=g)
    w = torch.randn(6, 2, 3, 3, dtype=DT, generator=g)  # (C_in, C_out/groups, kh, kw)
    out = conv_transpose2d(x, w, None, 2, 1, 1, 3, 1)  # torch's order: groups, then dilation
    assert out.shape == (2, 6, 8, 10)
    assert_close(out, F.conv_transpose2d(x, w, None, 2, 1, 1, 3, 1))
    for j in range(3):  # input group j (channels 2j, 2j+1) splats into output group j only
        part = conv_transpose2d(x[:, 2 * j:2 * j + 2], w[2 * j:2 * j + 2], stride=2, padding=1,
                                output_padding=1)
        assert_close(out[:, 2 * j:2 * j + 2], part)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_conv_matrix_with_groups(groups):
    g = torch.Generator().manual_seed(groups)
    w = torch.randn(6, 6 // groups, 2, 3, dtype=DT, generator=g)
    x = torch.randn(6, 4, 5, dtype=DT, generator=g)
    m = conv_matrix(w, (4, 5), stride=(2, 1), padding=1, dilation=1, groups=groups)
    y = F.conv2d(x, w, stride=(2, 1), padding=1, groups=groups)
    assert m.shape == (y.numel(), x.numel())
    assert_close(m @ x.flatten(), y.flatten())
    z = torch.randn_like(y)
    back = conv_transpose2d(z, w, stride=(2, 1), padding=1, groups=groups)
    assert back.shape == x.shape
    assert_close(back.flatten(), m.T @ z.flatten())
    if groups > 1:  # block-diagonal: output group 0 ignores input group 1
        rows, cols = y[: 6 // groups].numel(), x[: 6 // groups].numel()
        assert m[:rows, cols:].abs().sum() == 0
    assert conv_matrix(w, (4, 5), 1, "same", 1, groups).shape == (x.numel(), x.numel())


# ----------------------------------------------------------------------------- padding strings
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("method", ["im2col", "loops"])
@pytest.mark.parametrize("k, d", [(1, 1), (2, 1), (3, 1), (4, 1), (2, 2), (3, 3), (4, 3),
                                  ((2, 3), (1, 2)), ((4, 1), (3, 1))])
def test_padding_same_and_valid(method, k, d):
    kh, kw = (k, k) if isinstance(k, int) else k
    g = torch.Generator().manual_seed(kh * 10 + kw)
    x = torch.randn(2, 3, 11, 10, dtype=DT, generator=g).requires_grad_()
    w = torch.randn(4, 3, kh, kw, dtype=DT, generator=g).requires_grad_()
    b = torch.randn(4, dtype=DT, generator=g).requires_grad_()
    for pad in ("same", "valid"):
        _check_against(lambda x, w, b, pad=pad: conv2d(x, w, b, padding=pad, dilation=d,
                                                       method=method),
                       lambda x, w, b, pad=pad: F.conv2d(x, w, b, padding=pad, dilation=d),
                       x, w, b)
    assert conv2d(x, w, padding="same", dilation=d, method=method).shape[-2:] == (11, 10)
    assert_close(conv2d(x, w, padding="valid", dilation=d), conv2d(x, w, dilation=d))


def test_padding_same_puts_the_extra_pixel_bottom_right():
    x, w = torch.randn(1, 1, 5, 4, dtype=DT), torch.randn(1, 1, 2, 2, dtype=DT)
    # d(k-1) = 1 is odd: 0 rows/columns of zeros before, 1 after.
    assert_close(conv2d(x, w, padding="same"), conv2d(F.pad(x, (0, 1, 0, 1)), w))
    w4 = torch.randn(1, 1, 4, 1, dtype=DT)  # d(k-1) = 3: 1 row before, 2 after
    assert_close(conv2d(x, w4, padding="same", method="loops"),
                 conv2d(F.pad(x, (0, 0, 1, 2)), w4))


def test_conv_output_size_accepts_padding_strings():
    assert conv_output_size(9, 4, padding="same") == 9
    assert conv_output_size(9, 3, 1, "same", 4) == 9
    assert conv_output_size(9, 4, 2, "valid") == conv_output_size(9, 4, 2, 0) == 3
    assert conv_output_size(1, 5, padding="same", dilation=2) == 1


# ----------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("method", ["im2col", "loops"])
@pytest.mark.parametrize("groups", [1, 2])
def test_empty_batch_as_torch(method, groups):
    x = torch.zeros(0, 4, 6, 5, dtype=DT, requires_grad=True)
    w = torch.randn(6, 4 // groups, 3, 2, dtype=DT, requires_grad=True)
    b = torch.randn(6, dtype=DT, requires_grad=True)
    kwargs = dict(stride=(2, 1), padding=1, groups=groups)
    _check_against(lambda x, w, b: conv2d(x, w, b, method=method, **kwargs),
                   lambda x, w, b: F.conv2d(x, w, b, **kwargs), x, w, b)
    wt = torch.randn(4, 3, 3, 2, dtype=DT, requires_grad=True)
    bt = torch.randn(3 * groups, dtype=DT, requires_grad=True)
    _check_against(lambda x, w, b: conv_transpose2d(x, w, b, 2, 1, 1, groups),
                   lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, groups), x, wt, bt)


# ----------------------------------------------------------------------------- argument forms
def _forms(v, pair: bool):
    """Every way torch accepts the int ``v`` (pairs: also as a 1- or 2-element tuple / list)."""
    forms = [np.int64(v), np.int32(v), torch.tensor(v), torch.tensor(v, dtype=torch.int32)]
    if pair:
        forms += [(v,), [v], (v, v), [v, v], (np.int64(v), torch.tensor(v))]
    return forms


_X6 = torch.randn(2, 6, 9, 8, dtype=DT)
_W6, _B6 = torch.randn(6, 2, 3, 2, dtype=DT), torch.randn(6, dtype=DT)
_IDENTITY_INIT = lambda t: t.copy_(torch.arange(t.numel(), dtype=t.dtype).reshape(t.shape))
ARGUMENTS = {  # name: (call with the value, the int value, pair-valued?)
    "conv2d stride": (lambda v: conv2d(_X6, _W6, _B6, stride=v, groups=3), 2, True),
    "conv2d padding": (lambda v: conv2d(_X6, _W6, _B6, padding=v, groups=3), 1, True),
    "conv2d dilation": (lambda v: conv2d(_X6, _W6, _B6, dilation=v, groups=3), 2, True),
    "conv2d groups": (lambda v: conv2d(_X6, _W6, _B6, groups=v), 3, False),
    "conv2d loops stride": (lambda v: conv2d(_X6, _W6, stride=v, groups=3, method="loops"), 2,
                            True),
    "conv2d loops padding": (lambda v: conv2d(_X6, _W6, padding=v, groups=3, method="loops"),
                             1, True),
    "conv2d loops dilation": (lambda v: conv2d(_X6, _W6, dilation=v, groups=3,
                                               method="loops"), 2, True),
    "conv2d loops groups": (lambda v: conv2d(_X6, _W6, groups=v, method="loops"), 3, False),
    "conv_transpose2d stride": (lambda v: conv_transpose2d(_X6, _W6, stride=v, groups=3), 2,
                                True),
    "conv_transpose2d padding": (lambda v: conv_transpose2d(_X6, _W6, padding=v, groups=3), 1,
                                 True),
    "conv_transpose2d output_padding": (lambda v: conv_transpose2d(
        _X6, _W6, stride=2, output_padding=v, groups=3), 1, True),
    "conv_transpose2d dilation": (lambda v: conv_transpose2d(_X6, _W6, dilation=v, groups=3),
                                  2, True),
    "conv_transpose2d groups": (lambda v: conv_transpose2d(_X6, _W6, _B6[:6], groups=v), 3,
                                False),
    "conv_output_size n": (lambda v: conv_output_size(v, 3), 9, False),
    "conv_output_size kernel_size": (lambda v: conv_output_size(9, v), 3, False),
    "conv_output_size stride": (lambda v: conv_output_size(9, 3, stride=v), 2, False),
    "conv_output_size padding": (lambda v: conv_output_size(9, 3, padding=v), 1, False),
    "conv_output_size dilation": (lambda v: conv_output_size(9, 3, dilation=v), 2, False),
    "conv_transpose_output_size n": (lambda v: conv_transpose_output_size(v, 3), 7, False),
    "conv_transpose_output_size kernel_size": (lambda v: conv_transpose_output_size(7, v), 3,
                                               False),
    "conv_transpose_output_size stride": (lambda v: conv_transpose_output_size(7, 3, v), 2,
                                          False),
    "conv_transpose_output_size padding": (lambda v: conv_transpose_output_size(7, 3, 2, v),
                                           1, False),
    "conv_transpose_output_size output_padding": (
        lambda v: conv_transpose_output_size(7, 3, 2, 1, v), 1, False),
    "conv_transpose_output_size dilation": (
        lambda v: conv_transpose_output_size(7, 3, dilation=v), 2, False),
    "conv_matrix input_size": (lambda v: conv_matrix(_W6, v, groups=3), 4, True),
    "conv_matrix stride": (lambda v: conv_matrix(_W6, 5, stride=v, groups=3), 2, True),
    "conv_matrix padding": (lambda v: conv_matrix(_W6, 4, padding=v, groups=3), 1, True),
    "conv_matrix dilation": (lambda v: conv_matrix(_W6, 5, dilation=v, groups=3), 2, True),
    "conv_matrix groups": (lambda v: conv_matrix(_W6, 4, groups=v), 3, False),
    "bilinear_kernel kernel_size": (lambda v: bilinear_kernel(v), 4, False),
    "bilinear_kernel channels": (lambda v: bilinear_kernel(3, v), 2, False),
    "icnr_ scale": (lambda v: icnr_(torch.empty(8, 3, 3, 3), v, _IDENTITY_INIT), 2, False),
    "bed_of_nails scale": (lambda v: bed_of_nails(_X6, v), 2, False),
    "splat_steps stride": (lambda v: splat_steps(_X6[0, 0, :3, :3], _W6[0, 0], stride=v), 2,
                           True),
    "splat_steps padding": (lambda v: splat_steps(_X6[0, 0, :3, :3], _W6[0, 0], padding=v), 1,
                            True),
    "splat_steps output_padding": (lambda v: splat_steps(_X6[0, 0, :3, :3], _W6[0, 0], 2,
                                                         output_padding=v), 1, True),
    "stamp_box index": (lambda v: stamp_box(v, (2, 2), 3, 2, 1), 3, False),
    "stamp_box in_size": (lambda v: stamp_box(1, v, 3), 2, True),
    "stamp_box kernel_size": (lambda v: stamp_box(1, 2, v), 3, True),
    "stamp_box stride": (lambda v: stamp_box(1, 2, 3, v), 2, True),
    "stamp_box padding": (lambda v: stamp_box(1, 2, 3, 2, v), 1, True),
    "overlap_counts in_size": (lambda v: overlap_counts(v, 3, 2), 3, True),
    "overlap_counts kernel_size": (lambda v: overlap_counts(3, v, 2), 3, True),
    "overlap_counts stride": (lambda v: overlap_counts(3, 3, v), 2, True),
    "overlap_counts padding": (lambda v: overlap_counts(3, 3, 2, v), 1, True),
    "overlap_counts output_padding": (lambda v: overlap_counts(3, 3, 2, 1, v), 1, True),
}


def _same(a, b):
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("name", list(ARGUMENTS))
def test_every_int_argument_takes_every_int_form(name):
    call, v, pair = ARGUMENTS[name]
    expected = call(v)
    for form in _forms(v, pair):
        assert _same(call(form), expected), f"{name}={form!r}"


def test_convolutions_take_every_form_like_torch():
    """The same forms, through torch, give the same results (what torch also accepts)."""
    for s in _forms(2, True):
        assert_close(conv2d(_X6, _W6, _B6, s, s, s, np.int64(3)),
                     F.conv2d(_X6, _W6, _B6, 2, 2, 2, 3))
        assert_close(conv_transpose2d(_X6, _W6, None, s, [1], [1], torch.tensor(3), (2,)),
                     F.conv_transpose2d(_X6, _W6, None, 2, 1, 1, 3, 2))


def _x(*shape, dtype=DT):
    return torch.zeros(*shape, dtype=dtype)


W = _x(2, 3, 3, 3)
X = _x(1, 3, 5, 5)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: conv2d(X, W, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: conv2d(X, W, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: conv2d(X, W, dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    (lambda: conv2d(X, W, stride=(1, 2, 3)), ValueError, r"stride must be an int or a pair"),
    (lambda: conv2d(X, W, stride=2.5), TypeError, r"stride must be an int or a pair .* got 2.5"),
    (lambda: conv2d(X, W, padding="full"), ValueError,
     r"padding must be one of \('same', 'valid'\), got 'full'"),
    (lambda: conv2d(X, W, padding=1.5), TypeError, r"padding must be an int or a pair"),
    (lambda: conv2d(X, W, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride=1 .* got stride=2; pass an int padding"),
    (lambda: conv2d(X, W, stride=(1, 2), padding="same"), ValueError, r"got stride=\(1, 2\)"),
    (lambda: conv2d(X, W, groups=0), ValueError, r"groups must be an int >= 1, got 0"),
    (lambda: conv2d(X, W, groups=2.0), TypeError, r"groups must be an int, got 2.0 \(float\)"),
    (lambda: conv2d(X, W, groups=True), TypeError, r"groups must be an int, got True"),
    (lambda: conv2d(X, W, groups=torch.tensor(1.0)), TypeError, r"groups must be an int"),
    (lambda: conv2d(_x(1, 4, 5, 5), _x(3, 2, 3, 3), groups=2), ValueError,
     r"weight has 3 output channels \(shape \(3, 2, 3, 3\)\), which groups=2 must divide"),
    (lambda: conv2d(_x(1, 3, 5, 5), _x(4, 1, 3, 3), groups=2), ValueError,
     r"input has 3 channels but weight \(shape \(4, 1, 3, 3\)\) with groups=2 expects 2"),
    (lambda: conv2d(_x(1, 4, 5, 5), _x(4, 2, 3, 3), _x(2), groups=2), ValueError,
     r"bias must have shape \(4,\)"),
    (lambda: conv2d(X, _x(0, 3, 3, 3)), ValueError,
     r"weight has 0 output channels \(shape \(0, 3, 3, 3\)\); pass at least 1"),
    (lambda: conv2d(_x(1, 0, 5, 5), _x(2, 0, 3, 3)), ValueError,
     r"weight has 0 input channels per group"),
    (lambda: conv2d(_x(1, 3, 0, 5), W, padding=1), ValueError,
     r"input must have an image of at least 1 x 1 pixels, got shape \(1, 3, 0, 5\)"),
    (lambda: conv2d(X, _x(2, 3, 0, 3)), ValueError, r"weight must have a kernel of at least"),
    (lambda: conv2d(X, W, _x(2, dtype=torch.complex128)), ValueError,
     r"bias must have the dtype of input \(torch.float64\), got torch.complex128"),
    (lambda: conv2d(X, W, _x(2, dtype=torch.float32), method="loops"), ValueError,
     r"bias must have the dtype of input .* got torch.float32; convert it with .to"),
    (lambda: conv2d(X, W, _x(2, dtype=torch.int64)), ValueError,
     r"bias must have the dtype of input .* got torch.int64"),
    (lambda: conv2d(X, W, [0.0, 0.0]), TypeError, r"bias must be a torch.Tensor \(2,\), got list"),
    (lambda: conv2d(X.cdouble(), W.cdouble()), ValueError,
     r"input must have a floating dtype .* got torch.complex128"),
    (lambda: conv2d(X, W.cdouble()), ValueError, r"weight must have a floating dtype"),
    (lambda: conv2d(X, _x(2, 4, 3, 3)), ValueError, r"input has 3 channels but .* expects 4"),
    (lambda: conv2d(X, _x(2, 3, 6, 3)), ValueError, r"kernel_size 6 .* larger than the padded"),
    (lambda: conv2d(X, W, dilation=3), ValueError, r"spans 7 pixels"),
    (lambda: conv2d(_x(5, 5), W), ValueError, r"input must be a 3 or 4-D tensor \(N, C, H, W\)"),
    (lambda: conv2d(X, _x(2, 3, 3)), ValueError, r"weight must be a 4-D tensor"),
    (lambda: conv2d(X, W, _x(3)), ValueError, r"bias must have shape \(2,\)"),
    (lambda: conv2d(X, W, method="fft"), ValueError, r"method must be one of"),
    (lambda: conv2d(X.long(), W), ValueError, r"input must have a floating dtype"),
    (lambda: conv2d(X.numpy(), W), TypeError, r"input must be a torch.Tensor"),
    (lambda: conv2d(X.float(), W), ValueError, r"must share a dtype"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), stride=2, output_padding=2), ValueError,
     r"output_padding must satisfy 0 <= output_padding < max\(stride, dilation\) = 2"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), output_padding=-1), ValueError,
     r"output_padding must be >= 0"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), stride=0), ValueError, r"stride must be >= 1"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), dilation=0), ValueError,
     r"dilation must be >= 1"),
    (lambda: conv_transpose2d(X, W), ValueError, r"input has 3 channels but .* expects 2"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), padding=6), ValueError, r"crops everything"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), _x(3)), ValueError, r"bias must have shape"),
    (lambda: conv_transpose2d(X.int(), _x(3, 2, 3, 3)), ValueError, r"floating dtype"),
    (lambda: conv_transpose2d(X.cdouble(), _x(3, 2, 3, 3).cdouble()), ValueError,
     r"input must have a floating dtype"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), groups=2), ValueError,
     r"weight has 3 input channels \(shape \(3, 2, 3, 3\)\), which groups=2 must divide"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), groups=-1), ValueError,
     r"groups must be an int >= 1, got -1"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), groups="2"), TypeError,
     r"groups must be an int, got '2' \(str\)"),
    (lambda: conv_transpose2d(X, _x(3, 0, 3, 3)), ValueError,
     r"weight has 0 output channels per group"),
    (lambda: conv_transpose2d(_x(1, 0, 5, 5), _x(0, 2, 3, 3)), ValueError,
     r"weight has 0 input channels \(shape \(0, 2, 3, 3\)\); pass at least 1"),
    (lambda: conv_transpose2d(_x(1, 4, 5, 5), _x(4, 2, 3, 3), _x(2), groups=2), ValueError,
     r"bias must have shape \(4,\)"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), _x(2, dtype=torch.complex128)), ValueError,
     r"bias must have the dtype of input"),
    (lambda: conv_transpose2d(X, _x(3, 2, 3, 3), padding="same"), TypeError,
     r"padding must be an int or a pair \(h, w\) of ints, got the string 'same'"),
    (lambda: conv_transpose2d(_x(1, 3, 5, 0), _x(3, 2, 3, 3)), ValueError,
     r"input must have an image of at least 1 x 1"),
    (lambda: conv_output_size(0, 3), ValueError, r"n must be an int >= 1"),
    (lambda: conv_output_size(5, 3, padding=-1), ValueError, r"padding must be an int >= 0"),
    (lambda: conv_output_size(5, 3, stride=0), ValueError, r"stride must be an int >= 1"),
    (lambda: conv_output_size(5, 7), ValueError, r"larger than the padded input"),
    (lambda: conv_output_size(5, 3, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride=1 .* got stride=2"),
    (lambda: conv_output_size(5, 3, padding="full"), ValueError,
     r"padding must be one of \('same', 'valid'\)"),
    (lambda: conv_output_size(5, 3, padding=(1, 1)), TypeError, r"padding must be an int"),
    (lambda: conv_output_size(5, 7, padding="valid"), ValueError, r"spans 7 pixels"),
    (lambda: conv_transpose_output_size(5, 3, 2, output_padding=2), ValueError,
     r"output_padding must satisfy"),
    (lambda: conv_transpose_output_size(1, 1, padding=1), ValueError, r"crops everything"),
    (lambda: conv_matrix(_x(3, 3), (4, 4)), ValueError, r"weight must be a 4-D tensor"),
    (lambda: conv_matrix(W, (0, 4)), ValueError, r"input_size must be >= 1"),
    (lambda: conv_matrix(W, (4, 4), groups=0), ValueError, r"groups must be an int >= 1"),
    (lambda: conv_matrix(_x(3, 3, 3, 3), 4, groups=2), ValueError,
     r"weight has 3 output channels .* which groups=2 must divide"),
    (lambda: bilinear_kernel(0), ValueError, r"kernel_size must be an int >= 1"),
    (lambda: bilinear_kernel(4, dtype=torch.int64), ValueError,
     r"dtype must be a floating dtype \(e.g. torch.float32\), got torch.int64"),
    (lambda: bilinear_kernel(4, dtype=torch.uint8), ValueError,
     r"floating dtype .* got torch.uint8"),
    (lambda: bilinear_kernel(4, dtype=torch.bool), ValueError, r"floating dtype .* got torch.bool"),
    (lambda: bilinear_kernel(4, dtype=torch.complex64), ValueError,
     r"floating dtype .* got torch.complex64"),
    (lambda: bilinear_kernel(4, dtype="float32"), TypeError,
     r"dtype must be a torch.dtype .* got 'float32' \(str\)"),
    (lambda: bilinear_kernel(4, dtype=np.float32), TypeError, r"dtype must be a torch.dtype"),
    (lambda: bilinear_kernel(4, channels=0), ValueError, r"channels must be an int >= 1"),
    (lambda: icnr_(_x(8, 3, 3, 3), init="kaiming"), TypeError,
     r"init must be an in-place initialiser .* got 'kaiming' \(str\)"),
    (lambda: icnr_(_x(6, 3, 3, 3), scale=2), ValueError, r"6 output channels, not divisible"),
    (lambda: icnr_(_x(8, 3, 3), scale=2), ValueError, r"weight must be a 4-D tensor"),
    (lambda: icnr_(W, scale=0), ValueError, r"scale must be an int >= 1"),
    (lambda: bed_of_nails(_x(4)), ValueError, r"ndim >= 2, got shape \(4,\)"),
])
def test_invalid_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_package_reexports_every_submodule_name():
    import course_lib.ops as ops

    assert ops.conv_transpose2d is ops_transposed.conv_transpose2d
    for module in (ops.conv, ops.transposed, ops.splat, ops.init):
        assert set(module.__all__) <= set(ops.__all__), module.__name__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ops.nope  # noqa: B018
