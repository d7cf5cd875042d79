"""Argument checks shared by the model builders of :mod:`course_lib.models`."""

from __future__ import annotations


def check_int(name: str, value, low: int) -> int:
    """``value`` if it is an int ``>= low`` (bools refused), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value
