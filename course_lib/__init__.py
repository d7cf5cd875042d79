"""course_lib: reference implementations for the image-segmentation course.

One concept per module (the module map of ``CONTRIBUTING.md``):

- :mod:`course_lib.utils`: seeding, device selection, Colab detection, ``time_calls``,
  ``num_params``, ``atomic_save``.
- :mod:`course_lib.datasets`: the procedurally generated ``ShapesDataset``, scikit-image's
  photographs, ``stack_samples``.
- :mod:`course_lib.ops`: convolution and transposed convolution from scratch, output sizes,
  conv matrices, the splat and its overlap counts, bilinear / ICNR initialisers.
- :mod:`course_lib.receptive_field`: the receptive-field recurrence, layer stacks, fields
  measured on real modules, effective receptive fields, FCN crop offsets.
- :mod:`course_lib.losses`: weighted cross-entropy (median-frequency weights), focal, Dice and
  soft-Jaccard losses.
- :mod:`course_lib.metrics`: the dataset-level ``ConfusionMatrix`` (pixel / mean accuracy, IoU,
  mIoU, frequency-weighted IoU) and boundary F1.
- :mod:`course_lib.train`: ``fit`` (progress bar, history, exact checkpoint resume),
  ``evaluate``, ``predict``.
- :mod:`course_lib.zoo`: the shipped checkpoints (``load``, ``train``, the manifest).
- :mod:`course_lib.models`: the lectures' networks (``simple``, ``context``, ``can``, ...).
- :mod:`course_lib.viz`: colour maps, overlays, grids, prediction panels, tables, curves.
- :mod:`course_lib.widgets`: ipywidgets explorers (convolution, receptive field, transposed
  convolution); they only draw.

Every argument check lives in the private :mod:`course_lib._checks`: ``TypeError`` for a wrong
Python type, ``ValueError`` for a wrong value. Subpackages are imported on demand
(``from course_lib.ops import conv2d``), so ``import course_lib`` stays cheap and never
imports torch by itself.
"""

__version__ = "0.1.0"
