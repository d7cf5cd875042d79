"""Stack the first samples of a dataset into batch tensors, the way a DataLoader would."""

from __future__ import annotations

import torch

from course_lib._checks import check_int, type_name

__all__ = ["stack_samples"]


def stack_samples(dataset, n: int | None = None, *, start: int = 0) -> tuple[torch.Tensor, ...]:
    """Samples ``start .. start + n - 1`` of ``dataset``, each field stacked into one tensor.

    ``images, masks = stack_samples(ds, 8)`` is ``torch.stack([ds[i][0] for i in range(8)])``
    and the same for the masks, written once.

    Parameters
    ----------
    dataset : Dataset
        Its items are tuples of tensors of equal shapes (e.g. ``(image, mask)``).
    n : int, optional
        How many samples; default all from ``start`` to the end.
    start : int
        Index of the first sample.

    Returns
    -------
    tuple of torch.Tensor
        One tensor per field, each with a new leading axis of length ``n``: for
        :class:`~course_lib.datasets.ShapesDataset`, images ``(n, 3, H, W)`` and masks
        ``(n, H, W)``.

    Examples
    --------
    >>> from course_lib.datasets import ShapesDataset
    >>> images, masks = stack_samples(ShapesDataset("val", 6, image_size=32), 4)
    >>> tuple(images.shape), tuple(masks.shape)
    ((4, 3, 32, 32), (4, 32, 32))
    """
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise TypeError(f"dataset must support len() and indexing, got {type_name(dataset)}")
    start = check_int("start", start, 0, len(dataset))
    n = len(dataset) - start if n is None else check_int("n", n, 1, len(dataset) - start)
    items = [dataset[i] for i in range(start, start + n)]
    if n == 0:
        raise ValueError(f"no sample from index {start} of a dataset of {len(dataset)}")
    if not all(isinstance(item, (tuple, list)) for item in items):
        raise TypeError("dataset items must be tuples of tensors such as (image, mask)")
    return tuple(torch.stack(field) for field in zip(*items))
