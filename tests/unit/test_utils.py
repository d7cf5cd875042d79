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


@pytest.mark.parametrize("bad, exc, match", [(-1, ValueError, r"\[0, 4294967295\]"),
                                             (2**32, ValueError, "4294967295"),
                                             (1.5, TypeError, "int"), (True, TypeError, "int")])
def test_seed_everything_rejects(bad, exc, match):
    with pytest.raises(exc, match=match):
        seed_everything(bad)


def test_get_device_order_and_fallback(monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for prefer in ("cuda", "cuda:1", torch.device("cuda"), torch.device("cuda", 0)):
        with pytest.warns(RuntimeWarning, match="is not available here: using the CPU"):
            assert get_device(prefer) == torch.device("cpu")
    with pytest.raises(ValueError, match="prefer must be one of"):
        get_device("tpu")
    with pytest.raises(ValueError, match="prefer must be one of"):
        get_device("meta")
    with pytest.raises(TypeError, match="prefer must be a device name"):
        get_device(0)


def test_get_device_keeps_an_available_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert get_device("cuda:1") == torch.device("cuda", 1)
    with pytest.warns(RuntimeWarning, match="'cuda:2' is not available"):
        assert get_device("cuda:2") == torch.device("cpu")


def test_in_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert in_colab() is True


def test_time_calls_returns_every_run_after_the_warmup():
    from course_lib.utils import time_calls

    calls = []
    times = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(times) == 4 and all(t >= 0 for t in times) and len(calls) == 6
    order = []
    runs = time_calls({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                      repeats=2, warmup=0)
    assert order == ["a", "b", "a", "b"] and {k: len(v) for k, v in runs.items()} == {
        "a": 2, "b": 2}
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        time_calls(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="fn must be callable"):
        time_calls(3)


def test_num_params_counts_shared_parameters_once():
    from torch import nn

    from course_lib.utils import num_params

    conv = nn.Conv2d(2, 3, 3)
    assert num_params(nn.Sequential(conv, conv)) == 3 * 2 * 9 + 3
    conv.bias.requires_grad_(False)
    assert num_params(conv, trainable=True) == 3 * 2 * 9
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        num_params([conv])


def test_atomic_save_text_bytes_and_tensors(tmp_path):
    import torch

    from course_lib.utils import atomic_save

    assert atomic_save("hi", tmp_path / "a" / "t.json").read_text() == "hi"
    assert atomic_save(b"\x00", tmp_path / "b.bin").read_bytes() == b"\x00"
    torch.testing.assert_close(torch.load(atomic_save(torch.ones(2), tmp_path / "c.pt")),
                               torch.ones(2))
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(TypeError, match="path must be a str or a path"):
        atomic_save("x", 3)
