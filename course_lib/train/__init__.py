"""Training and evaluation for segmentation models.

- :func:`fit` (:mod:`course_lib.train.loop`): Adam or SGD, constant or cosine schedule, a
  ``tqdm`` progress bar, a history of losses and validation scores, and checkpoints from
  which a stopped run resumes exactly.
- :func:`evaluate` and :func:`predict` (:mod:`course_lib.train.inference`): scores from one
  dataset-level confusion matrix, and label maps.
"""

from course_lib.train._common import HISTORY_KEYS, IGNORE_INDEX, LOSSES, OPTIMIZERS, SCHEDULES
from course_lib.train.inference import evaluate, predict
from course_lib.train.loop import fit

__all__ = ["fit", "evaluate", "predict", "HISTORY_KEYS", "LOSSES", "OPTIMIZERS", "SCHEDULES",
           "IGNORE_INDEX"]
