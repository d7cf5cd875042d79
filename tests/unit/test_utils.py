import pytest
import torch

from course_lib.utils import get_device, in_colab, seed_everything


def test_seed_everything_reproduces_torch_numpy_python():
    import random

    import numpy as np

    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3), random.random())
    assert seed_everything(3) == 3
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


@pytest.mark.parametrize("bad, exc, match", [(-1, ValueError, r"\[0, 2\*\*32\)"),
                                             (2**32, ValueError, "2\\*\\*32"),
                                             (1.5, TypeError, "int"), (True, TypeError, "int")])
def test_seed_everything_rejects(bad, exc, match):
    with pytest.raises(exc, match=match):
        seed_everything(bad)


def test_get_device_order_and_fallback():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")).type == "cpu"
    if not torch.cuda.is_available():
        assert get_device("cuda").type in ("mps", "cpu") and get_device("cuda").type == "cpu"
    with pytest.raises(ValueError, match="prefer must be one of"):
        get_device("tpu")


def test_in_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert in_colab() is True


def test_best_time_is_the_fastest_run():
    from course_lib.utils import best_time

    calls = []
    assert best_time(lambda: calls.append(1), repeats=4) >= 0 and len(calls) == 4
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        best_time(lambda: None, repeats=0)


@pytest.mark.parametrize("value", [0, True, 2.0, "3"])
def test_check_int_refuses_what_is_not_an_int_at_least_minimum(value):
    from course_lib.utils import check_int

    assert check_int("width", 4) == 4 and check_int("padding", 0, 0) == 0
    with pytest.raises(ValueError, match=r"width must be an int >= 1, got"):
        check_int("width", value)
