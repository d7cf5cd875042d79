import math
import warnings

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_lib.datasets import NUM_CLASSES, ShapesDataset
from course_lib.models.context import single_scale_net
from course_lib.train import HISTORY_KEYS, evaluate, fit, predict
from course_lib.utils import seed_everything

matplotlib.use("Agg")

TRAIN = ShapesDataset("train", 12, image_size=32, seed=0)
VAL = ShapesDataset("val", 6, image_size=32, seed=0)
KW = dict(num_classes=NUM_CLASSES, batch_size=4, device="cpu", progress=False, seed=3)


def _net(seed=0):
    seed_everything(seed)
    return single_scale_net(num_classes=NUM_CLASSES, width=4, hidden=8)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def test_fit_history_one_value_per_epoch_and_plottable():
    from course_lib.viz import plot_history

    net = _net()
    history = fit(net, TRAIN, VAL, epochs=2, lr=1e-2, **KW)
    assert tuple(history) == HISTORY_KEYS
    assert all(len(history[k]) == 2 for k in HISTORY_KEYS)
    assert all(0 <= v <= 1 for v in history["val_miou"] + history["val_pixel_acc"])
    assert all(math.isfinite(v) and v > 0 for v in history["train_loss"] + history["seconds"])
    ax = plot_history(history, ["train_loss", "val_loss"])
    assert len(ax.lines) == 2
    # The last val entry is what evaluate reports for the trained model.
    scores = evaluate(net, VAL, num_classes=NUM_CLASSES, device="cpu")
    assert scores["miou"] == pytest.approx(history["val_miou"][-1])
    assert scores["loss"] == pytest.approx(history["val_loss"][-1])


def test_fit_learns_a_separable_task():
    # Pixels are class 1 where the red channel is bright: a 1x1 rule any net can learn.
    g = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 16, 16, generator=g)
    masks = (images[:, 0] > 0.5).long()
    data = TensorDataset(images, masks)
    seed_everything(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    history = fit(net, data, data, epochs=15, lr=2e-2, **{**KW, "num_classes": 2})
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_pixel_acc"][-1] > 0.9


def test_same_seed_same_run_and_data_order_changes_per_epoch():
    a, b = _net(), _net()
    ha = fit(a, TRAIN, epochs=2, **KW)
    hb = fit(b, TRAIN, epochs=2, **KW)
    assert _without_seconds(ha) == _without_seconds(hb)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    assert ha["val_miou"] == [] and len(ha["train_loss"]) == 2


def test_resume_equals_uninterrupted_run(tmp_path):
    full = _net()
    h_full = fit(full, TRAIN, VAL, epochs=2, **KW)
    ckpt = tmp_path / "run.pt"
    part = _net()
    h1 = fit(part, TRAIN, VAL, epochs=1, checkpoint=ckpt, **KW)
    assert len(h1["train_loss"]) == 1 and ckpt.is_file()
    # A fresh process would build a fresh model: start from different weights on purpose.
    resumed = _net(seed=99)
    h2 = fit(resumed, TRAIN, VAL, epochs=2, checkpoint=ckpt, resume=True, **KW)
    assert _without_seconds(h2) == _without_seconds(h_full)
    assert h2["seconds"][0] == h1["seconds"][0]
    for (k, x), y in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), k
    # The checkpoint is loadable without pickle.
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 2 * len(DataLoader(TRAIN, batch_size=4))
    # Resuming a finished run returns its history and leaves the weights alone.
    h3 = fit(resumed, TRAIN, VAL, epochs=2, checkpoint=ckpt, resume=True, **KW)
    assert h3 == h2


def test_interrupted_run_resumes_mid_epoch_with_steps_and_cosine_schedule(tmp_path):
    # 12 images / batch 4 = 3 batches per epoch; log every 2 steps crosses epoch boundaries.
    budget = {"calls": None}

    def ce(logits, target):  # raises KeyboardInterrupt once its budget of calls is spent
        if budget["calls"] is not None:
            if budget["calls"] == 0:
                raise KeyboardInterrupt
            budget["calls"] -= 1
        return F.cross_entropy(logits, target)

    kw = {**KW, "log_every": 2, "schedule": "cosine", "loss": ce}
    full = _net()
    h_full = fit(full, TRAIN, steps=5, **kw)
    assert len(h_full["train_loss"]) == 3  # 2 + 2 + 1 steps
    ckpt = tmp_path / "steps.pt"
    budget["calls"] = 4
    with pytest.raises(KeyboardInterrupt):
        fit(_net(), TRAIN, steps=5, checkpoint=ckpt, **kw)  # dies in step 5
    assert torch.load(ckpt, weights_only=True)["step"] == 4
    budget["calls"] = None
    resumed = _net(seed=5)
    with pytest.raises(ValueError, match="arguments differ.*'schedule'"):
        fit(resumed, TRAIN, steps=6, checkpoint=ckpt, resume=True, **kw)  # cosine over 6 != 5
    h = fit(resumed, TRAIN, steps=5, checkpoint=ckpt, resume=True, **kw)
    assert _without_seconds(h) == _without_seconds(h_full)
    assert all(torch.equal(x, y) for x, y in zip(full.state_dict().values(),
                                                  resumed.state_dict().values()))


def test_fit_accepts_dataloader_callable_loss_and_sgd():
    loader = DataLoader(TRAIN, batch_size=6)
    calls = []

    def my_loss(logits, target):
        calls.append(logits.shape)
        return F.cross_entropy(logits, target)

    history = fit(_net(), loader, DataLoader(VAL, batch_size=3), epochs=1, loss=my_loss,
                  optimizer="sgd", lr=0.1, weight_decay=1e-4, **KW)
    assert len(history["train_loss"]) == 1 and len(calls) == 2 + 2  # 2 train + 2 val batches
    assert calls[0] == (6, NUM_CLASSES, 32, 32)


@pytest.mark.parametrize("loss", ["focal", "dice", "jaccard"])
def test_fit_named_losses(loss):
    history = fit(_net(), TRAIN, steps=1, loss=loss, **KW)
    assert math.isfinite(history["train_loss"][0])


def test_predict_shapes_and_dataset():
    net = _net()
    images = torch.stack([TRAIN[i][0] for i in range(3)])
    labels = predict(net, images, device="cpu", batch_size=2)
    assert labels.shape == (3, 32, 32) and labels.dtype == torch.int64
    assert torch.equal(predict(net, images[0], device="cpu"), labels[0])
    assert torch.equal(predict(net, torch.utils.data.Subset(TRAIN, [0, 1, 2])), labels)
    net.eval()
    torch.testing.assert_close(labels, net(images).argmax(1))


def test_evaluate_matches_a_hand_count_and_ignores_255():
    net = _net().eval()
    images = torch.stack([VAL[i][0] for i in range(4)])
    masks = torch.stack([VAL[i][1] for i in range(4)])
    masks[:, :4] = 255
    scores = evaluate(net, TensorDataset(images, masks), num_classes=NUM_CLASSES, batch_size=3)
    pred = net(images).argmax(1)
    valid = masks != 255
    assert scores["pixel_acc"] == pytest.approx((pred == masks)[valid].float().mean().item())
    expected = F.cross_entropy(net(images), masks, ignore_index=255).item()
    assert set(scores) >= {"pixel_acc", "mean_acc", "miou", "fw_iou", "iou", "loss"}
    assert scores["loss"] == pytest.approx(expected, rel=0.05)  # batch-weighted mean
    assert net.training is False


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one of epochs and steps"),
    (dict(epochs=1, steps=2), "exactly one of epochs and steps"),
    (dict(epochs=0), "epochs must be an int >= 1, got 0"),
    (dict(epochs=1, loss="hinge"), "loss must be one of .*'ce'.* or a callable"),
    (dict(epochs=1, optimizer="lbfgs"), r"optimizer must be one of \('adam', 'sgd'\)"),
    (dict(epochs=1, lr=0), r"lr must be a number > 0, got 0.0"),
    (dict(epochs=1, lr=float("nan")), "lr must be a number > 0, got nan"),
    (dict(epochs=1, weight_decay=-1), "weight_decay must be a number >= 0, got -1.0"),
    (dict(steps=2, log_every=0), "log_every must be an int >= 1, got 0"),
    (dict(steps=0), "steps must be an int >= 1, got 0"),
    (dict(epochs=1, batch_size=0), "batch_size must be an int >= 1"),
    (dict(epochs=1, num_classes=1), "num_classes must be >= 2"),
    (dict(epochs=1, log_every=2), "log_every only applies with steps"),
    (dict(epochs=1, resume=True), "resume=True needs checkpoint"),
    (dict(epochs=1, schedule="step"), r"schedule must be one of \('constant', 'cosine'\)"),
])
def test_fit_rejects_bad_arguments(kwargs, match):
    kw = {**KW, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(_net(), TRAIN, **kw)


def test_fit_rejects_missing_or_mismatched_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="does not exist; run fit without resume"):
        fit(_net(), TRAIN, epochs=1, checkpoint=tmp_path / "nope.pt", resume=True, **KW)
    ckpt = tmp_path / "c.pt"
    fit(_net(), TRAIN, epochs=2, checkpoint=ckpt, **KW)
    with pytest.raises(ValueError, match="arguments differ from the saved run.*'lr'"):
        fit(_net(), TRAIN, epochs=2, checkpoint=ckpt, resume=True, lr=0.5, **KW)
    with pytest.raises(ValueError, match="beyond the 3 steps asked"):
        fit(_net(), TRAIN, epochs=1, checkpoint=ckpt, resume=True, **KW)


def test_type_errors_and_empty_data():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        fit("net", TRAIN, epochs=1, **KW)
    with pytest.raises(TypeError, match="train_data must be a torch Dataset or DataLoader"):
        fit(_net(), [1, 2], epochs=1, **KW)
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(_net(), ShapesDataset("train", 0), epochs=1, **KW)
    with pytest.raises(ValueError, match="data is empty"):
        evaluate(_net(), ShapesDataset("val", 0), num_classes=4)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        evaluate(None, VAL, num_classes=4)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        predict(None, torch.rand(1, 3, 8, 8))
    with pytest.raises(TypeError, match="images must be a tensor or a Dataset, got list"):
        predict(_net(), [1])
    with pytest.raises(ValueError, match=r"images must be float \(N, 3, H, W\)"):
        predict(_net(), torch.zeros(2, 3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        predict(_net(), torch.rand(1, 3, 8, 8), batch_size=0)
    with pytest.raises(TypeError, match="steps must be an int, got 1.5"):
        fit(_net(), TRAIN, steps=1.5, **KW)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr="0.1"), "lr must be a number, got '0.1'"),
    (dict(lr=True), "lr must be a number, got True"),
    (dict(weight_decay=None), "weight_decay must be a number, got None"),
    (dict(num_classes=4.0), "num_classes must be an int, got 4.0"),
    (dict(batch_size="4"), "batch_size must be an int"),
    (dict(log_every=1.5, steps=2, epochs=None), "log_every must be an int, got 1.5"),
])
def test_fit_type_errors_name_the_argument(kwargs, match):
    kw = {**KW, "epochs": 1, **kwargs}
    with pytest.raises(TypeError, match=match):
        fit(_net(), TRAIN, **kw)


# ----------------------------------------------------------------------------- devices
@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def _device_warnings(record):
    return [w for w in record if issubclass(w.category, RuntimeWarning)
            and "is not available here: using the CPU" in str(w.message)]


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda"),
                                    torch.device("cuda", 0)], ids=str)
def test_fit_without_cuda_falls_back_to_the_cpu_with_one_warning(no_cuda, device):
    kw = {**KW, "device": device}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # a repeated warning would be recorded twice
        history = fit(_net(), TRAIN, VAL, epochs=2, **kw)
    assert len(_device_warnings(record)) == 1, [str(w.message) for w in record]
    ref = fit(_net(), TRAIN, VAL, epochs=2, **KW)  # device="cpu"
    assert _without_seconds(history) == _without_seconds(ref)


@pytest.mark.parametrize("device", ["cuda", torch.device("cuda")], ids=str)
def test_evaluate_and_predict_without_cuda_fall_back_to_the_cpu(no_cuda, device):
    net = _net()
    with pytest.warns(RuntimeWarning, match="'cuda' is not available here: using the CPU"):
        scores = evaluate(net, VAL, num_classes=NUM_CLASSES, device=device)
    assert scores == evaluate(net, VAL, num_classes=NUM_CLASSES, device="cpu")
    images = torch.stack([VAL[i][0] for i in range(2)])
    with pytest.warns(RuntimeWarning, match="'cuda' is not available here: using the CPU"):
        labels = predict(net, images, device=device)
    assert labels.device.type == "cpu"
    assert next(net.parameters()).device.type == "cpu"
    assert torch.equal(labels, predict(net, images, device="cpu"))


# ----------------------------------------------------------------------------- mask dtypes
@pytest.mark.parametrize("loss", ["ce", "focal", "dice", "jaccard"])
def test_fit_and_evaluate_accept_uint8_masks(loss):
    images = torch.stack([TRAIN[i][0] for i in range(8)])
    masks = torch.stack([TRAIN[i][1] for i in range(8)])
    masks[:, :3] = 255  # a void band, as VOC PNGs hold it
    wide, small = TensorDataset(images, masks), TensorDataset(images, masks.to(torch.uint8))
    kw = {**KW, "loss": loss}
    h_wide = fit(_net(), wide, wide, steps=2, **kw)
    h_small = fit(_net(), small, small, steps=2, **kw)
    assert _without_seconds(h_small) == _without_seconds(h_wide)
    net = _net()
    assert evaluate(net, small, num_classes=NUM_CLASSES) == evaluate(net, wide,
                                                                     num_classes=NUM_CLASSES)
