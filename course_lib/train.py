"""Training loop for segmentation models: ``fit`` (progress bar, history, checkpoints),
``evaluate`` (dataset-level confusion matrix) and ``predict`` (label maps).

The data order of every epoch comes from a generator seeded with ``(seed, epoch)`` and the
checkpoint stores the model, the optimizer, every random-number state and the history, so a
run stopped after any epoch and resumed gives exactly the uninterrupted run (on the CPU).

References
----------
- PyTorch notes on reproducibility and on saving/loading a general checkpoint:
  https://pytorch.org/docs/stable/notes/randomness.html,
  https://pytorch.org/tutorials/beginner/saving_loading_models.html
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015: pixel accuracy and mean IoU from one confusion matrix.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_lib._checks import check_int
from course_lib.utils import atomic_save, get_device, seed_everything

__all__ = ["fit", "evaluate", "predict", "HISTORY_KEYS", "LOSSES", "OPTIMIZERS"]

#: Keys of the history :func:`fit` returns, one value per epoch (or evaluation interval).
HISTORY_KEYS = ("train_loss", "val_loss", "val_miou", "val_pixel_acc", "seconds")
#: Loss names :func:`fit` accepts; all but "ce" come from :mod:`course_lib.losses`.
LOSSES = {"ce": None, "focal": "focal_loss", "dice": "dice_loss", "jaccard": "soft_jaccard_loss"}
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
IGNORE_INDEX = 255


def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    return check_int(name, value, 1)


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)} or a callable "
                         f"(logits, target) -> scalar, got {loss!r}")
    if loss == "ce":
        return lambda logits, target: F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    import course_lib.losses as losses

    fn = getattr(losses, LOSSES[loss])
    return lambda logits, target: fn(logits, target, ignore_index=IGNORE_INDEX)


def _loader(data, name, batch_size, num_workers, shuffle_seed=None, skip=0):
    """A DataLoader over ``data``; a Dataset is shuffled by ``shuffle_seed`` (None: in order)."""
    if isinstance(data, DataLoader):
        return data
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} must be a torch Dataset or DataLoader, got {type(data).__name__}")
    n = len(data)
    if shuffle_seed is None:
        order = list(range(n))
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
    return DataLoader(data, batch_size=batch_size, sampler=order[skip * batch_size:],
                      num_workers=num_workers, generator=torch.Generator().manual_seed(0))


def _rng_state():
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *np_state[2:]]}


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def fit(model: nn.Module, train_data, val_data=None, *, num_classes: int, loss="ce",
        epochs: int | None = None, steps: int | None = None, lr: float = 1e-3,
        batch_size: int = 16, device=None, optimizer: str = "adam", weight_decay: float = 0.0,
        seed: int = 0, checkpoint=None, resume: bool = False, num_workers: int = 0,
        progress: bool = True, log_every: int | None = None, schedule: str = "constant"
        ) -> dict:
    """Train ``model`` for ``epochs`` passes or ``steps`` batches; evaluate after each interval.

    Parameters
    ----------
    model : torch.nn.Module
        Maps images (N, 3, H, W) to logits (N, num_classes, H, W).
    train_data, val_data : Dataset or DataLoader
        Yield ``(image (3, H, W) float, mask (H, W) int64)``. A Dataset is shuffled with a
        generator seeded by ``(seed, epoch)``, so resuming is exact; a DataLoader is used as is.
    num_classes : int
    loss : {"ce", "focal", "dice", "jaccard"} or callable
        A name (cross-entropy, or a loss of :mod:`course_lib.losses`) or
        ``f(logits (N, C, H, W), target (N, H, W)) -> scalar``. ``ignore_index`` is 255.
    epochs, steps : int
        Exactly one of them: passes over ``train_data``, or optimizer steps.
    lr, weight_decay : float
    batch_size : int
    device : str or torch.device, optional
        Default: :func:`course_lib.utils.get_device`.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with momentum 0.9.
    schedule : {"constant", "cosine"}
        Learning rate: ``lr`` throughout, or cosine decay from ``lr`` to 0 over the run.
    seed : int
        Seeds every generator (:func:`course_lib.utils.seed_everything`) and the data order.
    checkpoint : path, optional
        Saved after every interval: model, optimizer, random states, history, step.
    resume : bool
        Continue from ``checkpoint`` (which must exist) instead of starting over.
    num_workers : int
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    log_every : int, optional
        With ``steps``: optimizer steps per history entry (default: one epoch of batches).

    Returns
    -------
    dict
        ``{"train_loss", "val_loss", "val_miou", "val_pixel_acc", "seconds"}``, lists with
        one value per epoch (per ``log_every`` steps); the ``val_*`` lists stay empty without
        ``val_data``. Plot it with :func:`course_lib.viz.plot_history`. ``seconds`` is the
        wall time of each interval; the model is left on ``device`` in eval mode.

    Examples
    --------
    >>> from course_lib.datasets import ShapesDataset
    >>> from course_lib.models.context import single_scale_net
    >>> _ = seed_everything(0); net = single_scale_net(num_classes=4, width=4)
    >>> history = fit(net, ShapesDataset("train", 8, image_size=32),
    ...               ShapesDataset("val", 4, image_size=32), num_classes=4, epochs=2,
    ...               batch_size=4, device="cpu", progress=False)
    >>> [len(history[k]) for k in ("train_loss", "val_miou")]
    [2, 2]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs and steps, got epochs={epochs!r}, "
                         f"steps={steps!r}")
    epochs = _positive_int("epochs", epochs, allow_none=True)
    steps = _positive_int("steps", steps, allow_none=True)
    num_classes = _positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (it counts the background), got {num_classes}")
    batch_size = _positive_int("batch_size", batch_size)
    log_every = _positive_int("log_every", log_every, allow_none=True)
    if log_every is not None and steps is None:
        raise ValueError("log_every only applies with steps=; with epochs= the history has "
                         "one entry per epoch")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive float, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a float >= 0, got {weight_decay!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    loss_fn = _loss_fn(loss)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of a checkpoint saved by fit>")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    if resume and not checkpoint.is_file():
        raise ValueError(f"resume=True but checkpoint {str(checkpoint)!r} does not exist; "
                         "run fit without resume first")
    device = get_device(device)
    seed = seed_everything(seed)
    per_epoch = len(_loader(train_data, "train_data", batch_size, num_workers))
    if per_epoch == 0:
        raise ValueError("train_data is empty")
    total = epochs * per_epoch if epochs is not None else steps
    interval = per_epoch if log_every is None else log_every
    recipe = {"seed": seed, "batch_size": batch_size, "lr": float(lr), "optimizer": optimizer,
              "weight_decay": float(weight_decay), "interval": interval,
              "schedule": schedule if schedule == "constant" else f"{schedule}:{total}",
              "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "callable")}

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if schedule == "cosine":
        decay = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    else:
        decay = lambda s: 1.0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
    history = {key: [] for key in HISTORY_KEYS}
    step = 0
    if resume:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        changed = {k: (state["recipe"].get(k), v) for k, v in recipe.items()
                   if state["recipe"].get(k) != v}
        if changed:
            raise ValueError(f"cannot resume {str(checkpoint)!r}: arguments differ from the "
                             f"saved run (saved, given): {changed}")
        if state["step"] > total:
            raise ValueError(f"checkpoint is at step {state['step']}, beyond the {total} steps "
                             "asked: raise epochs/steps or start a new run")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = {key: list(state["history"][key]) for key in HISTORY_KEYS}
        step = state["step"]
        _set_rng_state(state["rng"])

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, disable=not progress, desc="fit", unit="batch")
    while step < total:
        start, losses = time.perf_counter(), []
        stop = min(total, (step // interval + 1) * interval)
        model.train()
        while step < stop:  # one evaluation interval, possibly across epochs
            epoch, offset = divmod(step, per_epoch)
            loader = _loader(train_data, "train_data", batch_size, num_workers,
                             shuffle_seed=seed * 1_000_003 + epoch, skip=offset)
            for i, (images, masks) in enumerate(loader):
                if isinstance(train_data, DataLoader) and i < offset:
                    continue  # a user DataLoader cannot skip: drop the batches already seen
                images, masks = images.to(device), masks.to(device)
                value = loss_fn(model(images), masks)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                sched.step()
                losses.append(value.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if step == stop:
                    break
        history["train_loss"].append(float(np.mean(losses)))
        if val_data is not None:
            scores = evaluate(model, val_data, num_classes=num_classes, device=device,
                              batch_size=batch_size, num_workers=num_workers, loss_fn=loss_fn)
            history["val_loss"].append(scores["loss"])
            history["val_miou"].append(scores["miou"])
            history["val_pixel_acc"].append(scores["pixel_acc"])
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                            val_miou=f"{scores['miou']:.3f}")
        history["seconds"].append(time.perf_counter() - start)
        if checkpoint is not None:
            atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "rng": _rng_state(),
                         "history": history, "step": step, "recipe": recipe}, checkpoint)
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: nn.Module, data, *, num_classes: int, device=None, batch_size: int = 32,
             ignore_index: int = IGNORE_INDEX, num_workers: int = 0, loss_fn=None) -> dict:
    """Scores of ``model`` on ``data`` from one dataset-level confusion matrix.

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset or DataLoader of ``(image (3, H, W), mask (H, W) int64)``
    num_classes : int
    ignore_index : int
        Mask value left out of every score.
    loss_fn : callable, optional
        ``f(logits, target)`` for the reported "loss" (default: cross-entropy).

    Returns
    -------
    dict
        :meth:`course_lib.metrics.ConfusionMatrix.compute` (``pixel_acc``, ``mean_acc``,
        ``miou``, ``fw_iou``, ``iou``) plus ``loss``, the batch-size-weighted mean loss.

    Examples
    --------
    >>> from course_lib.datasets import ShapesDataset
    >>> from course_lib.models.context import single_scale_net
    >>> scores = evaluate(single_scale_net(width=4), ShapesDataset("val", 4, image_size=32),
    ...                   num_classes=4, device="cpu")
    >>> 0.0 <= scores["pixel_acc"] <= 1.0 and len(scores["iou"]) == 4
    True
    """
    from course_lib.metrics import ConfusionMatrix

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = _positive_int("batch_size", batch_size)
    if loss_fn is None:
        loss_fn = lambda logits, target: F.cross_entropy(logits, target, ignore_index=ignore_index)
    device = get_device(device)
    loader = _loader(data, "data", batch_size, num_workers)
    was_training = model.training
    model.to(device).eval()
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    total, count = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        logits = model(images)  # (N, C, H, W)
        total += loss_fn(logits, masks).item() * len(images)
        count += len(images)
        matrix.update(logits.argmax(1).cpu(), masks.cpu())
    model.train(was_training)
    if count == 0:
        raise ValueError("data is empty: nothing to evaluate")
    return {**matrix.compute(), "loss": total / count}


@torch.no_grad()
def predict(model: nn.Module, images, *, device=None, batch_size: int = 32) -> torch.Tensor:
    """Label maps ``argmax_c logits`` of ``model`` for a batch, one image or a Dataset.

    Parameters
    ----------
    images : tensor (N, 3, H, W) or (3, H, W), or a Dataset of images or (image, target)
    device : str or torch.device, optional
    batch_size : int

    Returns
    -------
    torch.LongTensor, shape (N, H, W) (or (H, W) for a single image), on the CPU

    Examples
    --------
    >>> from course_lib.models.context import single_scale_net
    >>> predict(single_scale_net(width=4), torch.rand(3, 32, 32), device="cpu").shape
    torch.Size([32, 32])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = _positive_int("batch_size", batch_size)
    single = False
    if isinstance(images, Dataset) and not isinstance(images, torch.Tensor):
        items = [images[i] for i in range(len(images))]
        images = torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a tensor or a Dataset, got {type(images).__name__}")
    if images.ndim == 3:
        images, single = images.unsqueeze(0), True  # (1, 3, H, W)
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be float (N, 3, H, W) or (3, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    device = get_device(device)
    was_training = model.training
    model.to(device).eval()
    labels = [model(images[i:i + batch_size].to(device)).argmax(1).cpu()
              for i in range(0, len(images), batch_size)]
    model.train(was_training)
    out = torch.cat(labels) if labels else torch.empty(0, *images.shape[-2:], dtype=torch.long)
    return out[0] if single else out
