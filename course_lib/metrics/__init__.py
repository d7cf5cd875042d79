"""Segmentation metrics: a dataset-level confusion matrix and the boundary F1 score.

- :mod:`course_lib.metrics.confusion`: :class:`ConfusionMatrix` (pixel and mean accuracy,
  per-class IoU, mIoU, frequency-weighted IoU) and its differences with torchmetrics.
- :mod:`course_lib.metrics.boundary`: :func:`boundary_f1` (Csurka et al. 2013), with
  ``ignore_index`` and a tolerance related to the DAVIS and BSDS boundary measures.
"""

from course_lib.metrics.boundary import boundary_f1
from course_lib.metrics.confusion import ConfusionMatrix

__all__ = ["ConfusionMatrix", "boundary_f1"]
