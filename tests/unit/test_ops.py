"""course_lib.ops against torch.nn.functional: forward values and autograd gradients."""

from __future__ import annotations

import random

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
    (lambda: conv2d(X, W, padding="full"), TypeError, r"padding must be an int or a pair"),
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
    (lambda: conv_output_size(0, 3), ValueError, r"n must be an int >= 1"),
    (lambda: conv_output_size(5, 3, padding=-1), ValueError, r"padding must be an int >= 0"),
    (lambda: conv_output_size(5, 3, stride=0), ValueError, r"stride must be an int >= 1"),
    (lambda: conv_output_size(5, 7), ValueError, r"larger than the padded input"),
    (lambda: conv_transpose_output_size(5, 3, 2, output_padding=2), ValueError,
     r"output_padding must satisfy"),
    (lambda: conv_transpose_output_size(1, 1, padding=1), ValueError, r"crops everything"),
    (lambda: conv_matrix(_x(3, 3), (4, 4)), ValueError, r"weight must be a 4-D tensor"),
    (lambda: conv_matrix(W, (0, 4)), ValueError, r"input_size must be >= 1"),
    (lambda: bilinear_kernel(0), ValueError, r"kernel_size must be an int >= 1"),
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
