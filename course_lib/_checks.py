"""Every argument check of ``course_lib``, in one place, with one rule for the errors.

The rule
--------
- ``TypeError`` when the argument has the wrong *Python type*: a float, a string or a list
  where an int is needed, an array where a tensor is needed, ``True`` where a number is
  needed (``bool`` is a subclass of ``int`` in Python, but ``stride=True`` is a bug).
- ``ValueError`` when the type is right but the *value* is not: negative, out of range, not
  one of the allowed choices, a tensor of the wrong shape or of the wrong dtype.

Every message names the argument, says what was received and what to pass instead.

Integers are accepted in every form PyTorch accepts them: Python ``int``, NumPy integers
(``np.int64(3)``) and 0-d integer tensors (``torch.tensor(3)``); they come back as ``int``.

These helpers are shared by the whole package; they are not part of the course's API (the
leading underscore of the module says so), but their behaviour is tested branch by branch in
``tests/unit/test_checks.py``.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import torch

__all__ = ["check_int", "check_number", "check_pair", "check_choice", "check_tensor",
           "check_num_classes", "check_ignore_index", "check_labels", "check_label_maps",
           "check_conv_operands",
           "type_name"]


def type_name(value) -> str:
    """``type(value).__name__``, the way error messages show a received type."""
    return type(value).__name__


def _as_int(name: str, value) -> int:
    """``value`` as a Python int, or a TypeError (bools, floats, strings, float tensors)."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and (
            value.dtype == torch.bool or value.is_floating_point() or value.is_complex()
            or value.ndim != 0)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type_name(value)})")
    try:
        return operator.index(value)  # int, numpy integers, 0-d integer tensors
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} ({type_name(value)})") from None


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound may be None).

    Examples
    --------
    >>> check_int("stride", 2, 1)
    2
    >>> check_int("stride", 2.0, 1)
    Traceback (most recent call last):
    ...
    TypeError: stride must be an int, got 2.0 (float)
    >>> check_int("stride", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be an int >= 1, got 0
    """
    v = _as_int(name, value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        if maximum is None:
            allowed = f">= {minimum}"
        elif minimum is None:
            allowed = f"<= {maximum}"
        else:
            allowed = f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {allowed}, got {v}")
    return v


def check_number(name: str, value, minimum: float | None = None, maximum: float | None = None,
                 *, strict: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (``(minimum, ...]`` if strict).

    Ints, floats, NumPy scalars and 0-d real tensors are numbers; bools and strings are not.
    NaN and infinities are refused with a ValueError.

    Examples
    --------
    >>> check_number("gamma", 2, 0)
    2.0
    >>> check_number("lr", 0.0, 0, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a number > 0, got 0.0
    """
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not (
            value.dtype == torch.bool or value.is_complex()):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type_name(value)})")
    v = float(value)
    low_ok = minimum is None or (v > minimum if strict else v >= minimum)
    if not math.isfinite(v) or not low_ok or (maximum is not None and v > maximum):
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if strict else '>='} {minimum}")
        if maximum is not None:
            parts.append(f"<= {maximum}")
        allowed = " and ".join(parts) if parts else "finite"
        raise ValueError(f"{name} must be a number {allowed}, got {v}")
    return v


def check_pair(name: str, value, minimum: int | None = None) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of ints ``>= minimum``.

    Accepts what :mod:`torch.nn.functional` accepts: one int (used for both axes), or a
    tuple or list of one or two ints (``stride=(2,)`` means ``(2, 2)``).

    Examples
    --------
    >>> check_pair("padding", 1, 0), check_pair("stride", (2,), 1), check_pair("k", [3, 5], 1)
    ((1, 1), (2, 2), (3, 5))
    """
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(f"{name} must be an int or a pair (h, w) of ints, got {len(value)} "
                             f"values: {value!r}")
        items = [_as_int(f"{name}[{i}]", v) for i, v in enumerate(value)]
        pair = (items[0], items[-1])
    elif isinstance(value, str):
        raise TypeError(f"{name} must be an int or a pair (h, w) of ints, got the string "
                        f"{value!r}")
    else:
        try:
            v = _as_int(name, value)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair (h, w) of ints, got {value!r} "
                            f"({type_name(value)})") from None
        pair = (v, v)
    if minimum is not None and min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} (an int or a pair of ints), got "
                         f"{value!r}")
    return pair


def check_choice(name: str, value, choices: Sequence):
    """``value`` if it is one of ``choices``, else a ValueError listing them.

    Examples
    --------
    >>> check_choice("method", "loops", ("im2col", "loops"))
    'loops'
    """
    try:
        ok = value in choices
    except TypeError:  # unhashable value and a dict or set of choices
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_tensor(name: str, value, *, ndim: int | Sequence[int] | None = None,
                 floating: bool | None = None, shape_hint: str = "") -> torch.Tensor:
    """``value`` if it is a tensor with an allowed ``ndim`` and dtype kind.

    Parameters
    ----------
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    floating : bool, optional
        True: a floating dtype is required; False: an integer dtype (not bool) is required.
    shape_hint : str
        How the expected shape reads in the message, e.g. ``"(N, C, H, W)"``.

    Examples
    --------
    >>> check_tensor("x", torch.zeros(2, 3), ndim=2).shape
    torch.Size([2, 3])
    """
    hint = f" {shape_hint}" if shape_hint else ""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{hint}, got {type_name(value)}; "
                        f"convert it with torch.as_tensor")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            dims = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be a {dims}-D tensor{hint}, got shape "
                             f"{tuple(value.shape)}")
    if floating is True and not value.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype (e.g. torch.float32), got "
                         f"{value.dtype}; convert it with .float()")
    if floating is False and (value.is_floating_point() or value.is_complex()
                              or value.dtype == torch.bool):
        raise ValueError(f"{name} must have an integer dtype (e.g. torch.int64), got "
                         f"{value.dtype}")
    return value


def check_num_classes(num_classes, minimum: int = 1) -> int:
    """``num_classes`` (background included) as an int ``>= minimum``."""
    return check_int("num_classes", num_classes, minimum)


def check_ignore_index(ignore_index, num_classes: int):
    """``ignore_index`` as an int outside ``[0, num_classes)``, or None."""
    if ignore_index is None:
        return None
    ignore_index = check_int("ignore_index", ignore_index)
    if 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index={ignore_index} is a valid class (num_classes="
                         f"{num_classes}); use a label outside [0, {num_classes}), e.g. 255")
    return ignore_index


def check_labels(name: str, labels, num_classes: int, ignore_index=None,
                 allow_ignore: bool = True) -> torch.Tensor:
    """Check that ``labels`` is an integer tensor of class indices; return it unchanged.

    Any integer dtype is accepted (uint8 masks load from PNG files); callers that compute
    with the labels convert them to int64 themselves.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    labels : torch.Tensor, any shape, integer dtype
        Values in ``[0, num_classes)``, or ``ignore_index`` when ``allow_ignore``.
    num_classes : int
    ignore_index : int or None
    allow_ignore : bool
        Whether ``ignore_index`` is an allowed value (targets: yes; predictions: no).

    Raises
    ------
    TypeError
        If ``labels`` is not a tensor.
    ValueError
        If its dtype is floating point, complex or bool, or a value is out of range.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class labels, got "
                        f"{type_name(labels)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels (torch.int64), got dtype "
                         f"{labels.dtype} with shape {tuple(labels.shape)}; for logits or "
                         f"probabilities of shape (N, C, H, W) take .argmax(1) first")
    wide = labels.long()  # uint8 / int8 compared as int64: no wrap-around
    bad = (wide < 0) | (wide >= num_classes)
    if allow_ignore and ignore_index is not None:
        bad &= wide != ignore_index
    if bool(bad.any()):
        values = torch.unique(wide[bad])[:8].tolist()
        allowed = f"[0, {num_classes})"
        if allow_ignore and ignore_index is not None:
            allowed += f" or ignore_index={ignore_index}"
        raise ValueError(f"{name} has labels {values} outside {allowed} (shape "
                         f"{tuple(labels.shape)}); check num_classes")
    return labels


def check_label_maps(pred, target, num_classes: int, ignore_index=None):
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


def check_conv_operands(input, weight, bias, *, in_axis: int, out_axis: int,
                        groups: int = 1) -> tuple[torch.Tensor, bool]:
    """Check a convolution's tensors as :mod:`torch.nn.functional` would; return ``(x, batched)``.

    ``x`` is ``input`` as a 4-D batch (a ``(C, H, W)`` input gets a batch axis of 1) and
    ``batched`` says whether it already was. ``in_axis`` is the weight's input-channel axis
    (1 for a convolution, weight ``(C_out, C_in/groups, kh, kw)``; 0 for a transposed one,
    weight ``(C_in, C_out/groups, kh, kw)``), ``out_axis`` its output-channel axis. The axis 0
    of the weight holds all its channels and must be a positive multiple of ``groups``; axis 1
    holds one group's. An empty batch (``N = 0``) is allowed; no channels, an empty image or
    an empty kernel is not.
    """
    groups = check_int("groups", groups, 1)
    check_tensor("input", input, ndim=(3, 4), floating=True, shape_hint="(N, C, H, W) or "
                 "(C, H, W)")
    check_tensor("weight", weight, ndim=4, floating=True, shape_hint="(kernels of shape kh x kw)")
    if input.dtype != weight.dtype:
        raise ValueError(f"input and weight must share a dtype, got {input.dtype} and "
                         f"{weight.dtype}; convert one with .to(other.dtype)")
    x = input if input.ndim == 4 else input.unsqueeze(0)  # (N, C, H, W)
    if min(x.shape[2:]) < 1:
        raise ValueError(f"input must have an image of at least 1 x 1 pixels, got shape "
                         f"{tuple(input.shape)}")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"weight must have a kernel of at least 1 x 1, got shape "
                         f"{tuple(weight.shape)}")
    kinds = {in_axis: "input", out_axis: "output"}
    if min(weight.shape[:2]) < 1:
        per_group = " per group" if weight.shape[0] else ""
        raise ValueError(f"weight has 0 {kinds[0 if weight.shape[0] == 0 else 1]} channels"
                         f"{per_group} (shape {tuple(weight.shape)}); pass at least 1")
    if weight.shape[0] % groups:
        raise ValueError(f"weight has {weight.shape[0]} {kinds[0]} channels (shape "
                         f"{tuple(weight.shape)}), which groups={groups} must divide; pass a "
                         f"multiple of {groups} {kinds[0]} channels or another groups")
    in_channels = weight.shape[1] * groups if in_axis == 1 else weight.shape[0]
    if x.shape[1] != in_channels:
        raise ValueError(f"input has {x.shape[1]} channels but weight (shape "
                         f"{tuple(weight.shape)}) with groups={groups} expects {in_channels}")
    out_channels = weight.shape[1] * groups if out_axis == 1 else weight.shape[0]
    if bias is not None:
        check_tensor("bias", bias, shape_hint=f"({out_channels},)")
        if bias.dtype != input.dtype:
            raise ValueError(f"bias must have the dtype of input ({input.dtype}), got "
                             f"{bias.dtype}; convert it with .to({input.dtype})")
        if tuple(bias.shape) != (out_channels,):
            raise ValueError(f"bias must have shape ({out_channels},) (one value per output "
                             f"channel) or be None, got {tuple(bias.shape)}")
    return x, input.ndim == 4
