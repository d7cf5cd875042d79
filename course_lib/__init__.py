"""course_lib: reference implementations for the image-segmentation course.

One concept per module (see ``shared/DESIGN.md`` and the README's layout):

- :mod:`course_lib.utils`: seeding, device selection, Colab detection.
- :mod:`course_lib.shapes`: the procedurally generated ``ShapesDataset``.
- :mod:`course_lib.viz`: colour maps, overlays, image/mask grids, training curves.
- :mod:`course_lib.ops`: convolution and transposed convolution from scratch (with
  :mod:`course_lib.ops_transposed`), output sizes, conv matrices, bilinear/ICNR initialisers.
- :mod:`course_lib.receptive_field`: the receptive-field recurrence, measured on real modules,
  effective receptive fields and FCN crop offsets.

Modules are imported lazily (``import course_lib.shapes``) so that ``import course_lib``
stays cheap and never imports torch by itself.
"""

__version__ = "0.1.0"
