"""course_lib: reference implementations for the image-segmentation course.

One concept per module (see ``shared/DESIGN.md`` and the README's layout):

- :mod:`course_lib.utils`: seeding, device selection, Colab detection.
- :mod:`course_lib.shapes`: the procedurally generated ``ShapesDataset``.
- :mod:`course_lib.viz`: colour maps, overlays, image/mask grids, training curves.
- :mod:`course_lib.ops`: convolution and transposed convolution from scratch (with
  :mod:`course_lib.ops_transposed`), output sizes, conv matrices, bilinear/ICNR initialisers.
- :mod:`course_lib.receptive_field`: the receptive-field recurrence, measured on real modules,
  effective receptive fields and FCN crop offsets.
- :mod:`course_lib.losses`: weighted cross-entropy (median-frequency weights), focal, Dice and
  soft-Jaccard losses.
- :mod:`course_lib.metrics`: the dataset-level ``ConfusionMatrix`` (pixel / mean accuracy, IoU,
  mIoU, frequency-weighted IoU) and boundary F1.
- :mod:`course_lib.train`: ``fit`` (progress bar, history, exact checkpoint resume),
  ``evaluate``, ``predict``.
- :mod:`course_lib.zoo`: the shipped checkpoints of ``data/checkpoints`` (``load``, ``train``).
- :mod:`course_lib.models`: the lectures' networks (``simple``, ``context``, ...).
- :mod:`course_lib.widgets`: ipywidgets explorers (convolution, receptive field, transposed
  convolution).

Modules are imported lazily (``import course_lib.shapes``) so that ``import course_lib``
stays cheap and never imports torch by itself.
"""

__version__ = "0.1.0"
