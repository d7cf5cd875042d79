"""course_lib._checks: one test per branch of every shared argument check.

The rule: TypeError for a wrong Python type, ValueError for a wrong value; each message names
the argument and what was received.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib._checks import (
    check_choice,
    check_conv_operands,
    check_ignore_index,
    check_int,
    check_labels,
    check_num_classes,
    check_number,
    check_pair,
    check_tensor,
    type_name,
)


# ----------------------------------------------------------------------------- check_int
@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), torch.tensor(3),
                                   torch.tensor(3, dtype=torch.int8)])
def test_check_int_accepts_every_integer_torch_accepts(value):
    out = check_int("k", value, 1)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 2.0, np.float32(2), "2", None, [2],
                                   torch.tensor(2.0), torch.tensor([2]), torch.tensor(True)])
def test_check_int_refuses_other_types_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^k must be an int, got"):
        check_int("k", value)


@pytest.mark.parametrize("kwargs, match", [
    ({"value": 0, "minimum": 1}, r"k must be an int >= 1, got 0"),
    ({"value": 9, "maximum": 8}, r"k must be an int <= 8, got 9"),
    ({"value": 9, "minimum": 0, "maximum": 8}, r"k must be an int in \[0, 8\], got 9"),
    ({"value": -1, "minimum": 0, "maximum": 8}, r"k must be an int in \[0, 8\], got -1"),
])
def test_check_int_bounds_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_int("k", **kwargs)


def test_check_int_without_bounds_takes_any_int():
    assert check_int("offset", -5) == -5


# ----------------------------------------------------------------------------- check_number
@pytest.mark.parametrize("value", [2, 2.5, np.float32(0.5), torch.tensor(1.5), np.int64(4)])
def test_check_number_accepts_real_numbers(value):
    out = check_number("lr", value)
    assert isinstance(out, float) and out == float(value)


@pytest.mark.parametrize("value", [True, "1", None, [1.0], torch.tensor([1.0]), 1j])
def test_check_number_refuses_other_types(value):
    with pytest.raises(TypeError, match="lr must be a number, got"):
        check_number("lr", value)


@pytest.mark.parametrize("kwargs, match", [
    ({"value": float("nan")}, "lr must be a number finite, got nan"),
    ({"value": float("inf"), "minimum": 0}, "lr must be a number >= 0, got inf"),
    ({"value": -1.0, "minimum": 0}, "lr must be a number >= 0, got -1.0"),
    ({"value": 0.0, "minimum": 0, "strict": True}, "lr must be a number > 0, got 0.0"),
    ({"value": 2.0, "minimum": 0, "maximum": 1}, "lr must be a number >= 0 and <= 1, got 2.0"),
])
def test_check_number_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_number("lr", **kwargs)


def test_check_number_bounds_are_inclusive_unless_strict():
    assert check_number("p", 0, 0, 1) == 0.0 and check_number("p", 1, 0, 1) == 1.0


# ----------------------------------------------------------------------------- check_pair
@pytest.mark.parametrize("value, expected", [
    (2, (2, 2)), ((2,), (2, 2)), ([1, 3], (1, 3)), ((np.int64(1), torch.tensor(2)), (1, 2)),
    (np.int32(4), (4, 4)),
])
def test_check_pair_forms(value, expected):
    assert check_pair("stride", value, 1) == expected


@pytest.mark.parametrize("value, match", [
    ("same", "stride must be an int or a pair .* got the string 'same'"),
    (2.5, r"stride must be an int or a pair \(h, w\) of ints, got 2.5"),
    (None, "stride must be an int or a pair"),
    ((1, 2.0), r"stride\[1\] must be an int, got 2.0"),
    (True, "stride must be an int or a pair"),
])
def test_check_pair_type_errors(value, match):
    with pytest.raises(TypeError, match=match):
        check_pair("stride", value, 1)


@pytest.mark.parametrize("value, match", [
    ((1, 2, 3), "stride must be an int or a pair .* got 3 values"),
    ((), "stride must be an int or a pair .* got 0 values"),
    ((1, 0), r"stride must be >= 1 \(an int or a pair of ints\), got \(1, 0\)"),
])
def test_check_pair_value_errors(value, match):
    with pytest.raises(ValueError, match=match):
        check_pair("stride", value, 1)


# ----------------------------------------------------------------------------- check_choice
def test_check_choice():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="mode must be one of"):
        check_choice("mode", ["a"], {"a": 1})  # unhashable: not a choice, no crash


# ----------------------------------------------------------------------------- check_tensor
def test_check_tensor_branches():
    x = torch.zeros(2, 3)
    assert check_tensor("x", x, ndim=2, floating=True) is x
    assert check_tensor("x", x, ndim=(1, 2)) is x
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor \(N, C\), got ndarray"):
        check_tensor("x", x.numpy(), shape_hint="(N, C)")
    with pytest.raises(ValueError, match=r"x must be a 3 or 4-D tensor, got shape \(2, 3\)"):
        check_tensor("x", x, ndim=(3, 4))
    with pytest.raises(ValueError, match="x must have a floating dtype .* got torch.int64"):
        check_tensor("x", x.long(), floating=True)
    for dtype in (torch.float32, torch.bool, torch.complex64):
        with pytest.raises(ValueError, match="x must have an integer dtype"):
            check_tensor("x", x.to(dtype), floating=False)
    assert check_tensor("x", x.long(), floating=False).dtype == torch.int64


# ----------------------------------------------------------------------------- labels
def test_num_classes_and_ignore_index():
    assert check_num_classes(3) == 3 and check_num_classes(np.int64(2), 2) == 2
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        check_num_classes(1, 2)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        check_num_classes(3.0)
    assert check_ignore_index(None, 3) is None and check_ignore_index(255, 3) == 255
    with pytest.raises(ValueError, match="ignore_index=2 is a valid class"):
        check_ignore_index(2, 3)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        check_ignore_index("255", 3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.int64])
def test_check_labels_accepts_every_integer_dtype(dtype):
    labels = torch.tensor([0, 2, 1], dtype=dtype)
    assert check_labels("t", labels, 3) is labels
    if dtype != torch.int8:
        check_labels("t", torch.tensor([0, 255], dtype=dtype), 3, ignore_index=255)


def test_check_labels_refusals():
    with pytest.raises(TypeError, match="t must be a torch.Tensor of class labels, got list"):
        check_labels("t", [0, 1], 2)
    for dtype in (torch.float32, torch.bool, torch.complex64):
        with pytest.raises(ValueError, match="t must hold integer class labels"):
            check_labels("t", torch.zeros(2, dtype=dtype), 2)
    with pytest.raises(ValueError, match=r"t has labels \[-1, 3\] outside \[0, 3\)"):
        check_labels("t", torch.tensor([-1, 0, 3]), 3)
    with pytest.raises(ValueError, match=r"outside \[0, 3\) or ignore_index=255"):
        check_labels("t", torch.tensor([0, 7, 255]), 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"p has labels \[255\] outside \[0, 3\) \(shape"):
        check_labels("p", torch.tensor([0, 255]), 3, ignore_index=255, allow_ignore=False)
    with pytest.raises(ValueError, match=r"labels \[200\]"):  # uint8 compared without wrap
        check_labels("t", torch.tensor([200], dtype=torch.uint8), 100)


# ----------------------------------------------------------------------------- conv operands
def test_check_conv_operands_batches_and_errors():
    x, w = torch.zeros(3, 5, 5), torch.zeros(2, 3, 3, 3)
    out, batched = check_conv_operands(x, w, None, in_axis=1, out_axis=0)
    assert out.shape == (1, 3, 5, 5) and batched is False
    with pytest.raises(ValueError, match="input and weight must share a dtype"):
        check_conv_operands(x.double(), w, None, in_axis=1, out_axis=0)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        check_conv_operands(x, w, torch.zeros(3), in_axis=1, out_axis=0)
    with pytest.raises(ValueError, match="bias must have the dtype of input"):
        check_conv_operands(x, w, torch.zeros(2, dtype=torch.float64), in_axis=1, out_axis=0)
    with pytest.raises(TypeError, match="bias must be a torch.Tensor"):
        check_conv_operands(x, w, [0.0, 0.0], in_axis=1, out_axis=0)


def test_type_name():
    assert type_name(1.5) == "float" and type_name(torch.zeros(1)) == "Tensor"
