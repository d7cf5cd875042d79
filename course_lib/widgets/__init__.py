"""Interactive ipywidgets explorers for the lectures; they only draw.

- :func:`conv_explorer` (:mod:`course_lib.widgets.conv`): kernel, stride, padding and
  dilation on a real photograph.
- :func:`receptive_field_explorer` (:mod:`course_lib.widgets.receptive`): type a layer
  stack, pick an output unit, see its field.
- :func:`transposed_conv_explorer` (:mod:`course_lib.widgets.transposed`): the splat, one
  input pixel at a time, and the checkerboard of overlap counts.

Every explorer renders its figure the same way (a PNG in an ``ipywidgets.Image``), and its
compute lives in the library modules it draws (:mod:`course_lib.ops`,
:mod:`course_lib.receptive_field`).

References
----------
- ipywidgets documentation: https://ipywidgets.readthedocs.io
"""

from course_lib.widgets.conv import KERNELS, conv_explorer, conv_explorer_step, kernel
from course_lib.widgets.receptive import PRESETS, draw_field, receptive_field_explorer
from course_lib.widgets.transposed import explorer_arrays, transposed_conv_explorer

__all__ = ["KERNELS", "kernel", "conv_explorer_step", "conv_explorer", "PRESETS", "draw_field",
           "receptive_field_explorer", "explorer_arrays", "transposed_conv_explorer"]
