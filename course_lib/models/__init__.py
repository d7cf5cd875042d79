"""Segmentation models, one family per module (see ``shared/DESIGN.md``).

- :mod:`course_lib.models.simple`: the patch classifier and all-convolution nets of lecture 04.
- :mod:`course_lib.models.context`: single-scale, multi-scale (image pyramid) and recurrent
  convnets, the scene-labelling networks before FCN.

Import the module you need (``from course_lib.models.context import multiscale_net``); this
package imports nothing by itself so that ``import course_lib.models`` stays cheap.
"""
