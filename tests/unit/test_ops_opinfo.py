"""course_lib.ops against PyTorch's own test samples of conv2d and conv_transpose2d.

1. The OpInfo samples: ``op.sample_inputs("cpu", torch.float64)`` of the OpInfos named
   ``nn.functional.conv2d`` and ``nn.functional.conv_transpose2d`` in
   ``torch.testing._internal.common_methods_invocations.op_db``, called with the same args
   and kwargs on ours and on torch: forward values and the gradients w.r.t. input, weight and
   bias, in float64, for both conv2d methods. When ``op_db`` cannot be imported, the same
   cases, copied by hand from ``sample_inputs_conv2d`` / ``sample_inputs_conv_transpose2d``
   (torch 2.14), are used instead; while it can, a test checks that the copy still matches.
2. The OpInfo error inputs of conv2d: what torch refuses, ours refuses with a course_lib
   error (ValueError / TypeError with a clear message), not a crash deep inside.
3. Many random configurations drawn the way those samples are built (groups, "same" /
   "valid", int / pair / one-element arguments, batched or not, bias or not, N = 0).

A sample is skipped only if torch documents it as outside a 2-D convolution (a 1-D or 3-D
input); the tests count the samples compared and skipped and print the counts (``-s``).
"""

from __future__ import annotations

import functools
import os
import random
import sys
import types
import unittest
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close, make_tensor

from course_lib.ops import conv2d, conv_transpose2d

DT = torch.float64
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# (input shape, weight shape, bias shape or None, kwargs), as in sample_inputs_conv2d and
# sample_inputs_conv_transpose2d of torch/testing/_internal/common_methods_invocations.py;
# each case is yielded batched and then unbatched (input shape without its first axis).
HAND_CASES = {
    "nn.functional.conv2d": (
        ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "groups": 1}),
        ((2, 4, 8, 8), (2, 2, 3, 3), (2,),
         {"stride": (3, 2), "padding": (2, 1), "groups": 2, "dilation": (4, 4)}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,),
         {"stride": 2, "padding": 1, "groups": 1, "dilation": (2, 3)}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,),
         {"stride": 2, "padding": 1, "groups": 1, "dilation": (2, 3)}),
        ((1, 2, 4, 3), (4, 2, 3, 4), None, {"stride": 2, "padding": 1, "groups": 1}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": "valid"}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 1, "padding": "same", "dilation": 3}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4}),
        ((2, 4, 6, 6), (8, 1, 3, 3), (8,), {"groups": 4}),
        ((2, 4, 6, 6), (8, 1, 3, 3), None, {"groups": 4}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "stride": (3, 2)}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "padding": (1, 1)}),
        ((2, 4, 5, 5), (4, 1, 2, 2), (4,), {"groups": 4, "dilation": (2, 2)}),
        ((2, 4, 6, 5), (6, 2, 3, 2), (6,), {"groups": 2}),
        ((1, 4, 5, 5), (3, 4, 3, 3), None, {}),
    ),
    "nn.functional.conv_transpose2d": (
        ((1, 3, 4, 4), (3, 3, 3, 3), (3,),
         {"stride": (2, 2), "padding": 2, "output_padding": (1, 1), "groups": 1}),
        ((2, 2, 4, 4), (2, 2, 4, 5), (4,), {"stride": (3, 2), "padding": (1, 2),
                                            "output_padding": (2, 3), "groups": 2,
                                            "dilation": (4, 4)}),
        ((1, 1, 4, 5), (1, 1, 4, 3), (1,), {"stride": 2, "padding": 1, "output_padding": 1,
                                            "groups": 1, "dilation": (2, 3)}),
        ((1, 1, 4, 3), (1, 2, 3, 4), None,
         {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((2, 4, 4, 4), (4, 1, 3, 3), None, {"groups": 4}),
        ((1, 2, 5, 5), (2, 4, 3, 3), None, {}),
    ),
}

# error_inputs_conv2d: (input, weight, bias) shapes and dtypes, kwargs, torch's error regex.
_I, _F, _C = torch.int64, torch.float64, torch.complex128
HAND_ERRORS = (
    (((2, 4, 4), _I), ((3, 2, 3, 3), _I), ((3,), _F), {}, "should be the same"),
    (((2, 4, 4), _F), ((3, 2, 3, 3), _F), ((3,), _C), {}, "should be the same"),
    (((1, 1, 4, 4), _F), ((1, 2, 2, 3), _F), ((1,), _F), {"stride": (-1,)},
     "non-positive stride is not supported"),
    (((1, 1, 4, 3), _F), ((1, 2, 2, 4), _F), ((1,), _F), {"padding": (-1,)},
     "negative padding is not supported"),
    (((1, 1, 4, 2), _F), ((1, 1, 2, 5), _F), ((1,), _F), {"dilation": (-1,)},
     "dilation should be greater than zero"),
    (((1, 1, 4, 3), _F), ((1, 2, 2), _F), ((1,), _F), {"padding": "same"},
     "Expected 3-dimensional input for 3-dimensional weight"),
    (((2, 2, 4, 3), _F), ((2, 2, 1, 3), _F), ((2,), _F), {"groups": 3},
     "expected weight to be at least 3 at dimension 0"),
    (((2, 2, 4, 3), _F), ((2, 2, 1, 3), _F), ((2,), _F), {"padding": "same", "groups": 3},
     "expected weight to be at least 3 at dimension 0"),
    (((2, 2, 4, 5), _F), ((2, 2, 1, 4), _F), ((2,), _F), {"padding": "same", "groups": -1},
     "non-positive groups is not supported"),
    (((2, 2, 4, 3), _F), ((2, 2, 4, 3), _F), ((2,), _F), {"padding": "same", "groups": 0},
     "non-positive groups is not supported"),
)
# What our message says for each of torch's.
OUR_MESSAGE = {
    "should be the same": r"must have a floating dtype|must have the dtype of input",
    "non-positive stride is not supported": r"stride must be >= 1",
    "negative padding is not supported": r"padding must be >= 0",
    "dilation should be greater than zero": r"dilation must be >= 1",
    "Expected 3-dimensional input for 3-dimensional weight": r"weight must be a 4-D tensor",
    "expected weight to be at least 3 at dimension 0":
        r"weight has 2 output channels .* which groups=3 must divide",
    "non-positive groups is not supported": r"groups must be an int >= 1, got -?\d",
}


@functools.lru_cache(maxsize=1)
def _op_db():
    """``(op_db, None)``, or ``(None, why)`` when torch's OpInfo database cannot be imported.

    ``torch.testing._internal`` needs ``expecttest`` (not a dependency of this project) only
    for its ``TestCase`` base class: a stand-in module is put in ``sys.modules`` for the
    import if it is missing, and taken out again. What the import changes for the rest of
    the test session is undone: warning filters, environment variables, the frozen
    ``torch.backends`` flags and the TorchScript call hooks of ``common_utils``.
    """
    stub = None
    try:
        import expecttest  # noqa: F401
    except ImportError:
        stub = types.ModuleType("expecttest")
        stub.TestCase, stub.ACCEPT = unittest.TestCase, False
        sys.modules["expecttest"] = stub
    env, frozen = set(os.environ), torch.backends.flags_frozen()
    hooks = [(cls, cls.__call__) for cls in (torch._C.ScriptFunction, torch._C.ScriptMethod)]
    try:
        with warnings.catch_warnings():
            from torch.testing._internal.common_methods_invocations import op_db
        return op_db, None
    except Exception as exc:  # any failure: fall back to the hand-copied cases
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        if stub is not None and sys.modules.get("expecttest") is stub:
            del sys.modules["expecttest"]
        for key in set(os.environ) - env:
            del os.environ[key]
        if not frozen:  # common_utils calls torch.backends.disable_global_flags()
            torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
        for cls, call in hooks:
            cls.__call__ = call


def _opinfo(name):
    db, _ = _op_db()
    return None if db is None else next(op for op in db if op.name == name and
                                        not op.variant_test_name)


def _samples(name):
    """``[(input, args, kwargs)]``, float64, requires_grad, from the OpInfo or the hand copy."""
    torch.manual_seed(0)
    op = _opinfo(name)
    if op is not None:
        return [(s.input, s.args, s.kwargs) for s in op.sample_inputs("cpu", DT,
                                                                     requires_grad=True)]
    make = functools.partial(make_tensor, device="cpu", dtype=DT, requires_grad=True)
    out = []
    for x, w, b, kwargs in HAND_CASES[name]:
        for shape in (x, x[1:]):  # batched, then unbatched
            out.append((make(shape), (make(w), None if b is None else make(b)), kwargs))
    return out


def _compare(ours, ref, x, args, kwargs):
    """Forward values equal; gradients w.r.t. every tensor that requires grad equal."""
    out, expected = ours(x, *args, **kwargs), ref(x, *args, **kwargs)
    assert out.shape == expected.shape
    assert_close(out, expected)
    leaves = [t for t in (x, *args) if isinstance(t, torch.Tensor) and t.requires_grad]
    upstream = torch.randn_like(expected)
    g_ours = torch.autograd.grad((out * upstream).sum(), leaves, allow_unused=True)
    g_ref = torch.autograd.grad((expected * upstream).sum(), leaves, allow_unused=True)
    for a, e in zip(g_ours, g_ref):
        assert_close(a, e)


OURS = {("nn.functional.conv2d", "im2col"): (functools.partial(conv2d, method="im2col"),
                                              F.conv2d),
        ("nn.functional.conv2d", "loops"): (functools.partial(conv2d, method="loops"),
                                             F.conv2d),
        ("nn.functional.conv_transpose2d", "splat"): (conv_transpose2d, F.conv_transpose2d)}


@pytest.mark.parametrize("name, method", list(OURS))
def test_opinfo_samples_match_torch(name, method, record_property):
    ours, ref = OURS[name, method]
    compared = skipped = 0
    for i, (x, args, kwargs) in enumerate(_samples(name)):
        if x.ndim not in (3, 4) or args[0].ndim != 4:  # a 1-D or 3-D convolution
            skipped += 1
            continue
        if method == "loops" and x.numel() > 4096:  # loops: small inputs only
            continue
        try:
            _compare(ours, ref, x, args, kwargs)
        except AssertionError as exc:
            raise AssertionError(f"sample {i}: input {tuple(x.shape)}, weight "
                                 f"{tuple(args[0].shape)}, kwargs {kwargs}: {exc}") from exc
        compared += 1
    source = "OpInfo" if _opinfo(name) is not None else f"hand copy ({_op_db()[1]})"
    print(f"{name} [{method}], samples from the {source}: {compared} compared, "
          f"{skipped} skipped")
    record_property("compared", compared)
    record_property("skipped", skipped)
    assert compared >= len(HAND_CASES[name]), "fewer samples than torch 2.14 has"


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_hand_copy_matches_opinfo(name):
    op = _opinfo(name)
    if op is None:
        pytest.skip(f"torch's op_db does not import here: {_op_db()[1]}")
    theirs = [(tuple(s.input.shape), tuple(s.args[0].shape),
               None if s.args[1] is None else tuple(s.args[1].shape), s.kwargs)
              for s in op.sample_inputs("cpu", DT)]
    ours = [(shape, w, b, kwargs) for x, w, b, kwargs in HAND_CASES[name]
            for shape in (x, x[1:])]
    assert ours == theirs, "torch's samples changed: update HAND_CASES from its source"


def _error_inputs():
    op = _opinfo("nn.functional.conv2d")
    if op is not None:
        return [(e.sample_input.input, e.sample_input.args, e.sample_input.kwargs, e.error_regex)
                for e in op.error_inputs("cpu")]
    return [(make_tensor(x, dtype=xd, device="cpu"),
             (make_tensor(w, dtype=wd, device="cpu"), make_tensor(b, dtype=bd, device="cpu")),
             kwargs, regex) for (x, xd), (w, wd), (b, bd), kwargs, regex in HAND_ERRORS]


@pytest.mark.parametrize("method", ["im2col", "loops"])
def test_opinfo_error_inputs_are_refused_clearly(method):
    cases = _error_inputs()
    assert len(cases) >= len(HAND_ERRORS)
    for x, args, kwargs, regex in cases:
        with pytest.raises(RuntimeError, match=regex):  # torch refuses it ...
            F.conv2d(x, *args, **kwargs)
        with pytest.raises(ValueError, match=OUR_MESSAGE[regex]):  # ... and so do we
            conv2d(x, *args, **kwargs, method=method)


# ----------------------------------------------------------------------------- random configs
def _form(rng, value, pair: bool):
    """``value`` (an int or a pair) in one of the forms torch accepts; ints for torch."""
    if pair and isinstance(value, tuple):
        return rng.choice([value, list(value), (np.int64(value[0]), torch.tensor(value[1]))])
    forms = [value, np.int64(value), torch.tensor(value)]
    return rng.choice(forms + ([(value,), [value, value]] if pair else []))


def _random_conv2d(seed: int, small: bool):
    rng = random.Random(seed)
    g = rng.choice([1, 1, 2, 3, 4])
    c_in, c_out = g * rng.randint(1, 2 if small else 3), g * rng.randint(1, 2 if small else 3)
    k = (rng.randint(1, 3 if small else 4), rng.randint(1, 3 if small else 4))
    d = (rng.randint(1, 3), rng.randint(1, 3))
    s = rng.choice([(1, 1), (rng.randint(1, 3), rng.randint(1, 3))])
    pad = rng.choice(["same", "valid", (rng.randint(0, 2), rng.randint(0, 2))])
    if pad == "same" and s != (1, 1):
        pad = rng.randint(0, 2)
    p = (0, 0) if isinstance(pad, str) else (pad, pad) if isinstance(pad, int) else pad
    size = [rng.randint(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]) if pad != "same" else 1,
                        d[i] * (k[i] - 1) + (4 if small else 8)) for i in range(2)]
    n = rng.choice([None, 0, 1, 2, 3])
    shapes = ((() if n is None else (n,)) + (c_in, *size), (c_out, c_in // g, *k),
              (c_out,) if rng.random() < 0.7 else None)
    plain = {"stride": s if s[0] != s[1] else s[0], "padding": pad, "dilation": d, "groups": g}
    return rng, shapes, plain


def _random_transposed(seed: int):
    rng = random.Random(seed)
    while True:
        g = rng.choice([1, 1, 2, 3, 4])
        k, s = (rng.randint(1, 4), rng.randint(1, 4)), (rng.randint(1, 3), rng.randint(1, 3))
        p, d = (rng.randint(0, 2), rng.randint(0, 2)), (rng.randint(1, 3), rng.randint(1, 3))
        op = tuple(rng.randrange(max(s[i], d[i])) for i in range(2))
        size = (rng.randint(1, 6), rng.randint(1, 6))
        if all((size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 >= 1
               for i in range(2)):
            break
    n = rng.choice([None, 0, 1, 2])
    c_in, c_out_g = g * rng.randint(1, 2), rng.randint(1, 3)
    shapes = ((() if n is None else (n,)) + (c_in, *size), (c_in, c_out_g, *k),
              (c_out_g * g,) if rng.random() < 0.7 else None)
    plain = {"stride": s, "padding": p if p[0] != p[1] else p[0], "output_padding": op,
             "groups": g, "dilation": d}
    return rng, shapes, plain


def _run_random(rng, shapes, plain, ours, ref, order):
    x, w, b = (None if sh is None else
               make_tensor(sh, dtype=DT, device="cpu", requires_grad=True) for sh in shapes)
    ours_kwargs = {key: (value if isinstance(value, str) else
                         _form(rng, value, pair=key != "groups")) for key, value in plain.items()}
    if rng.random() < 0.5:  # positional, in torch's order: the signatures must agree
        out = ours(x, w, b, *(ours_kwargs[key] for key in order))
        expected = ref(x, w, b, *(plain[key] for key in order))
    else:
        out, expected = ours(x, w, b, **ours_kwargs), ref(x, w, b, **plain)
    assert out.shape == expected.shape
    assert_close(out, expected)
    leaves = [t for t in (x, w, b) if t is not None]
    upstream = torch.randn_like(expected)
    for a, e in zip(torch.autograd.grad((out * upstream).sum(), leaves),
                    torch.autograd.grad((expected * upstream).sum(), leaves)):
        assert_close(a, e)


CONV_ORDER = ("stride", "padding", "dilation", "groups")
TRANSPOSED_ORDER = ("stride", "padding", "output_padding", "groups", "dilation")


@pytest.mark.parametrize("seed", range(150))
def test_random_conv2d_im2col_matches_torch(seed):
    torch.manual_seed(seed)
    _run_random(*_random_conv2d(seed, small=False), conv2d, F.conv2d, CONV_ORDER)


@pytest.mark.parametrize("seed", range(40))
def test_random_conv2d_loops_matches_torch(seed):
    torch.manual_seed(seed)
    loops = functools.partial(conv2d, method="loops")
    _run_random(*_random_conv2d(10_000 + seed, small=True), loops, F.conv2d, CONV_ORDER)


@pytest.mark.parametrize("seed", range(150))
def test_random_conv_transpose2d_matches_torch(seed):
    torch.manual_seed(seed)
    _run_random(*_random_transposed(seed), conv_transpose2d, F.conv_transpose2d,
                TRANSPOSED_ORDER)
