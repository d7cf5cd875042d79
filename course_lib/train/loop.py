"""``fit``: the training loop, with a progress bar, a history and an exact checkpoint resume.

The data order of every epoch comes from a generator seeded with ``(seed, epoch)`` and the
checkpoint stores the model, the optimizer, every random-number state and the history, so a
run stopped after any epoch and resumed gives exactly the uninterrupted run (on the CPU).

References
----------
- PyTorch notes on reproducibility and on saving/loading a general checkpoint:
  https://pytorch.org/docs/stable/notes/randomness.html,
  https://pytorch.org/tutorials/beginner/saving_loading_models.html
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib._checks import check_choice, check_int, check_number, type_name
from course_lib.train._common import HISTORY_KEYS, OPTIMIZERS, SCHEDULES, make_loader, make_loss
from course_lib.train.inference import evaluate
from course_lib.utils import atomic_save, get_device, seed_everything

__all__ = ["fit"]


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
        Yield ``(image (3, H, W) float, mask (H, W) int64)`` (masks of another integer
        dtype, e.g. uint8 with 255 for void, work with the named losses). A Dataset is
        shuffled with a generator seeded by ``(seed, epoch)``, so resuming is exact; a
        DataLoader is used as is.
    num_classes : int
    loss : {"ce", "focal", "dice", "jaccard"} or callable
        A name (cross-entropy, or a loss of :mod:`course_lib.losses`) or
        ``f(logits (N, C, H, W), target (N, H, W)) -> scalar``. ``ignore_index`` is 255.
    epochs, steps : int
        Exactly one of them: passes over ``train_data``, or optimizer steps.
    lr, weight_decay : float
    batch_size : int
    device : str or torch.device, optional
        Resolved by :func:`course_lib.utils.get_device`: default the fastest available; an
        unavailable one (``"cuda"`` or ``torch.device("cuda")`` without a GPU) falls back to
        the CPU with one ``RuntimeWarning``.
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
    from tqdm.auto import tqdm

    # arguments, device, seeds and the length of the run
    epochs, steps, num_classes, batch_size, log_every, lr, weight_decay = _check_fit_args(
        model, epochs, steps, num_classes, batch_size, log_every, lr, weight_decay, optimizer,
        schedule)
    loss_fn = make_loss(loss)
    checkpoint = _check_checkpoint(checkpoint, resume)
    device = get_device(device)
    seed = seed_everything(seed)
    per_epoch = len(make_loader(train_data, "train_data", batch_size, num_workers))
    if per_epoch == 0:
        raise ValueError("train_data is empty")
    total = epochs * per_epoch if epochs is not None else steps
    interval = per_epoch if log_every is None else log_every
    recipe = {"seed": seed, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
              "weight_decay": weight_decay, "interval": interval,
              "schedule": schedule if schedule == "constant" else f"{schedule}:{total}",
              "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "callable")}
    model.to(device)  # optimizer, schedule, then the saved state when resuming
    opt, sched = _make_optimizer(model, optimizer, lr, weight_decay, schedule, total)
    history, step = {key: [] for key in HISTORY_KEYS}, 0
    if resume:
        history, step = _resume(checkpoint, device, recipe, total, model, opt, sched)

    # the loop: train one interval, evaluate, checkpoint
    bar = tqdm(total=total, initial=step, disable=not progress, desc="fit", unit="batch")
    batches = dict(data=train_data, batch_size=batch_size, num_workers=num_workers,
                   per_epoch=per_epoch, seed=seed)
    while step < total:
        start = time.perf_counter()
        stop = min(total, (step // interval + 1) * interval)  # the end of this interval
        losses = _train_interval(model, opt, sched, loss_fn, device, bar, step, stop, **batches)
        step = stop
        history["train_loss"].append(float(np.mean(losses)))
        if val_data is not None:
            _log_validation(history, bar, evaluate(
                model, val_data, num_classes=num_classes, device=device, batch_size=batch_size,
                num_workers=num_workers, loss_fn=loss_fn))
        history["seconds"].append(time.perf_counter() - start)
        if checkpoint is not None:
            atomic_save(_checkpoint_payload(model, opt, sched, history, step, recipe), checkpoint)
    bar.close()
    model.eval()
    return history


# ----------------------------------------------------------------------------- fit's steps
def _check_fit_args(model, epochs, steps, num_classes, batch_size, log_every, lr, weight_decay,
                    optimizer, schedule):
    """Validate fit's arguments; return the numbers as ints and floats."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type_name(model)}")
    if (epochs is None) == (steps is None):
        raise ValueError(f"give exactly one of epochs and steps, got epochs={epochs!r}, "
                         f"steps={steps!r}")
    epochs = None if epochs is None else check_int("epochs", epochs, 1)
    steps = None if steps is None else check_int("steps", steps, 1)
    num_classes = check_int("num_classes", num_classes, 1)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (it counts the background), got {num_classes}")
    batch_size = check_int("batch_size", batch_size, 1)
    log_every = None if log_every is None else check_int("log_every", log_every, 1)
    if log_every is not None and steps is None:
        raise ValueError("log_every only applies with steps=; with epochs= the history has "
                         "one entry per epoch")
    lr = check_number("lr", lr, 0, strict=True)
    weight_decay = check_number("weight_decay", weight_decay, 0)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("schedule", schedule, SCHEDULES)
    return epochs, steps, num_classes, batch_size, log_every, lr, weight_decay


def _check_checkpoint(checkpoint, resume):
    """``checkpoint`` as a Path (or None); with ``resume`` it must name an existing file."""
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of a checkpoint saved by fit>")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    if resume and not checkpoint.is_file():
        raise ValueError(f"resume=True but checkpoint {str(checkpoint)!r} does not exist; "
                         "run fit without resume first")
    return checkpoint


def _make_optimizer(model, optimizer, lr, weight_decay, schedule, total):
    """Adam, or SGD with momentum 0.9, and a LambdaLR: constant, or cosine to 0 at ``total``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if schedule == "cosine":
        decay = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    else:
        decay = lambda s: 1.0
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, decay)


def _resume(checkpoint, device, recipe, total, model, opt, sched):
    """Load a checkpoint of the same recipe into model, optimizer, schedule and the random
    generators; return ``(history, step)``."""
    state = torch.load(checkpoint, map_location=device, weights_only=True)
    changed = {k: (state["recipe"].get(k), v) for k, v in recipe.items()
               if state["recipe"].get(k) != v}
    if changed:
        raise ValueError(f"cannot resume {str(checkpoint)!r}: arguments differ from the saved "
                         f"run (saved, given): {changed}")
    if state["step"] > total:
        raise ValueError(f"checkpoint is at step {state['step']}, beyond the {total} steps "
                         "asked: raise epochs/steps or start a new run")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return {key: list(state["history"][key]) for key in HISTORY_KEYS}, state["step"]


def _train_interval(model, opt, sched, loss_fn, device, bar, step, stop, *, data, batch_size,
                    num_workers, per_epoch, seed):
    """Optimizer steps ``step .. stop - 1``, possibly across epochs; return their losses.

    Epoch ``e`` visits a Dataset in the order of a generator seeded by ``(seed, e)``, from
    the batch where the step falls, so an interrupted epoch resumes where it stopped.
    """
    model.train()
    losses = []
    while step < stop:
        epoch, offset = divmod(step, per_epoch)
        loader = make_loader(data, "train_data", batch_size, num_workers,
                         shuffle_seed=seed * 1_000_003 + epoch, skip=offset)
        for i, (images, masks) in enumerate(loader):
            if isinstance(data, DataLoader) and i < offset:
                continue  # a user DataLoader cannot skip: drop the batches already seen
            value = loss_fn(model(images.to(device)), masks.to(device))
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
    return losses


def _log_validation(history, bar, scores):
    """Append evaluate's scores to the history and the progress bar."""
    history["val_loss"].append(scores["loss"])
    history["val_miou"].append(scores["miou"])
    history["val_pixel_acc"].append(scores["pixel_acc"])
    bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}", val_miou=f"{scores['miou']:.3f}")


def _checkpoint_payload(model, opt, sched, history, step, recipe):
    """Everything an exact resume needs; tensors and plain types (loads with weights_only)."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "rng": _rng_state(), "history": history,
            "step": step, "recipe": recipe}
