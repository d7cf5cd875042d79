"""What the confusion matrix and the boundary F1 score share: the empty-input warning."""

import warnings

__all__ = ["warn_empty"]

_EMPTY = ("no labelled pixel was seen (all pixels are ignore_index={ignore}, or update() was "
          "never called): the scores are NaN")


def warn_empty(ignore_index, stacklevel: int = 3) -> None:
    """Warn (RuntimeWarning) that no labelled pixel was seen, so the scores are NaN."""
    warnings.warn(_EMPTY.format(ignore=ignore_index), RuntimeWarning, stacklevel=stacklevel + 1)
