"""Seeding, device selection, environment detection, timing, parameter counts, atomic saves.

References
----------
- PyTorch notes on reproducibility: https://pytorch.org/docs/stable/notes/randomness.html
"""

from __future__ import annotations

import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course_lib._checks import check_int, type_name

__all__ = ["seed_everything", "get_device", "in_colab", "time_calls", "num_params",
           "atomic_save"]

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
    seed = check_int("seed", seed, 0, 2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    prefer : {"cuda", "mps", "cpu"}, a device string such as ``"cuda:1"``, a torch.device, or None
        Ask for one device. ``None`` (default) picks the fastest available. An unavailable
        preference falls back to the CPU with a warning, so a notebook written on a GPU still
        runs on a laptop.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    """
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a device name such as 'cuda', a torch.device or None, "
                        f"got {type_name(prefer)}")
    try:
        device = torch.device(prefer)
    except RuntimeError:
        raise ValueError(f"prefer must be one of {_DEVICES} (optionally with an index, "
                         f"'cuda:1'), a torch.device or None, got {prefer!r}") from None
    if device.type not in _DEVICES:
        raise ValueError(f"prefer must be one of {_DEVICES}, a torch.device or None, got "
                         f"{prefer!r}")
    if device.type == "cuda" and torch.cuda.is_available():
        if device.index is None or device.index < torch.cuda.device_count():
            return device
    elif (device.type == "mps" and _mps_available()) or device.type == "cpu":
        return device
    warnings.warn(f"device {str(device)!r} is not available here: using the CPU instead",
                  RuntimeWarning, stacklevel=2)
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




def time_calls(fn, *, repeats: int = 5, warmup: int = 1):
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls.

    Every run is returned, so a table can quote the median (robust to a busy machine) and
    show the spread. The warm-up calls absorb one-off costs (allocations, lazy imports).
    Given a dict of callables, they take turns (one call each per round), so a machine that
    gets busier slows them alike, and a dict of lists comes back.

    Parameters
    ----------
    fn : callable, or dict of str to callable
        Called with no arguments.
    repeats : int
        Timed calls, ``>= 1``.
    warmup : int
        Untimed calls first, ``>= 0``.

    Returns
    -------
    list of float, length ``repeats`` (or a dict of such lists, by name)

    Examples
    --------
    >>> import statistics
    >>> times = time_calls(lambda: sum(range(1000)), repeats=3)
    >>> len(times), statistics.median(times) > 0
    (3, True)
    >>> sorted(time_calls({"a": lambda: None, "b": lambda: None}, repeats=2))
    ['a', 'b']
    """
    fns = fn if isinstance(fn, dict) else {None: fn}
    for f in fns.values():
        if not callable(f):
            raise TypeError(f"fn must be callable with no arguments (or a dict of them), got "
                            f"{type_name(f)}")
    repeats, warmup = check_int("repeats", repeats, 1), check_int("warmup", warmup, 0)
    for f in fns.values():
        for _ in range(warmup):
            f()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return times if isinstance(fn, dict) else times[None]


def num_params(model: nn.Module, *, trainable: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if ``trainable``).

    Shared parameters count once.

    Examples
    --------
    >>> num_params(nn.Conv2d(3, 8, 3))  # 8*3*3*3 weights + 8 biases
    224
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type_name(model)}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def atomic_save(obj, path) -> Path:
    """Write ``obj`` to ``path`` atomically: a crash mid-write never leaves half a file.

    ``str`` is written as UTF-8 text, ``bytes`` as is, anything else with :func:`torch.save`.
    The data goes to ``<path>.tmp`` first, which then replaces ``path`` in one step
    (:func:`os.replace`). Parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_save({"w": torch.ones(2)}, Path(d) / "ckpt.pt")
    ...     torch.load(p, weights_only=True)["w"].tolist()
    [1.0, 1.0]
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type_name(path)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(obj, str):
        tmp.write_text(obj, encoding="utf-8")
    elif isinstance(obj, bytes):
        tmp.write_bytes(obj)
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)
    return path
