"""Convolution, transposed convolution and their initialisers, from scratch.

- :mod:`course_lib.ops.conv`: ``conv2d`` (loops or im2col), ``conv_output_size``,
  ``conv_matrix``.
- :mod:`course_lib.ops.transposed`: ``conv_transpose2d`` (the splat), its output size,
  ``bed_of_nails``.
- :mod:`course_lib.ops.splat`: the splat one input pixel at a time and its overlap counts
  (the checkerboard).
- :mod:`course_lib.ops.init`: ``bilinear_kernel`` (FCN) and ``icnr_`` (sub-pixel convolution).
"""

from course_lib.ops.conv import conv2d, conv_matrix, conv_output_size
from course_lib.ops.init import bilinear_kernel, icnr_
from course_lib.ops.splat import overlap_counts, splat_steps, stamp_box
from course_lib.ops.transposed import bed_of_nails, conv_transpose2d, conv_transpose_output_size

__all__ = ["conv2d", "conv_output_size", "conv_matrix", "conv_transpose2d",
           "conv_transpose_output_size", "bed_of_nails", "bilinear_kernel", "icnr_",
           "splat_steps", "stamp_box", "overlap_counts"]
