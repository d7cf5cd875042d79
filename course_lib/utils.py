"""Seeding, device selection and environment detection.

References
----------
- PyTorch notes on reproducibility: https://pytorch.org/docs/stable/notes/randomness.html
"""

from __future__ import annotations

import os
import random
import sys
import time

import numpy as np
import torch

__all__ = ["seed_everything", "get_device", "in_colab", "best_time", "check_int"]

_DEVICES = ("cuda", "mps", "cpu")


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) from one integer.

    Parameters
    ----------
    seed : int
        A non-negative integer below ``2**32``.

    Returns
    -------
    int
        The seed, so that ``SEED = seed_everything(SEED)`` reads naturally.

    Examples
    --------
    >>> import torch
    >>> _ = seed_everything(0); a = torch.rand(2)
    >>> _ = seed_everything(0); b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    prefer : {"cuda", "mps", "cpu"} or None
        Ask for one device. ``None`` (default) picks the fastest available. An unavailable
        preference falls back to the CPU, so a notebook written on a GPU still runs on a laptop.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    """
    if prefer is not None:
        if isinstance(prefer, torch.device):
            prefer = prefer.type
        if prefer not in _DEVICES:
            raise ValueError(f"prefer must be one of {_DEVICES} or None, got {prefer!r}")
        if prefer == "cuda" and torch.cuda.is_available():
            return torch.device("cuda")
        if prefer == "mps" and _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def in_colab() -> bool:
    """True when running inside Google Colab.

    Examples
    --------
    >>> in_colab()
    False
    """
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def best_time(fn, repeats: int = 3) -> float:
    """Best wall-clock time of ``repeats`` calls of ``fn()``, in seconds.

    The minimum is the run least disturbed by the rest of the machine.

    Examples
    --------
    >>> best_time(lambda: sum(range(1000)), repeats=2) > 0
    True
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int ``>= minimum`` (bools refused), else a ValueError naming ``name``.

    Examples
    --------
    >>> check_int("stride", 2)
    2
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
