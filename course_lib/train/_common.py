"""What fitting and evaluating share: the loss names, the ignore label and the data loader."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from course_lib._checks import type_name

#: Keys of the history :func:`fit` returns, one value per epoch (or evaluation interval).
HISTORY_KEYS = ("train_loss", "val_loss", "val_miou", "val_pixel_acc", "seconds")
#: Loss names :func:`fit` accepts; all but "ce" come from :mod:`course_lib.losses`.
LOSSES = {"ce": None, "focal": "focal_loss", "dice": "dice_loss", "jaccard": "soft_jaccard_loss"}
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
IGNORE_INDEX = 255


def make_loss(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)} or a callable "
                         f"(logits, target) -> scalar, got {loss!r}")
    if loss == "ce":
        return lambda logits, target: F.cross_entropy(logits, target.long(),
                                                      ignore_index=IGNORE_INDEX)
    import course_lib.losses as losses

    fn = getattr(losses, LOSSES[loss])
    return lambda logits, target: fn(logits, target, ignore_index=IGNORE_INDEX)


def make_loader(data, name, batch_size, num_workers, shuffle_seed=None, skip=0):
    """A DataLoader over ``data``; a Dataset is shuffled by ``shuffle_seed`` (None: in order)."""
    if isinstance(data, DataLoader):
        return data
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} must be a torch Dataset or DataLoader, got {type_name(data)}")
    n = len(data)
    if shuffle_seed is None:
        order = list(range(n))
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
    return DataLoader(data, batch_size=batch_size, sampler=order[skip * batch_size:],
                      num_workers=num_workers, generator=torch.Generator().manual_seed(0))
