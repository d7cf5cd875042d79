"""Segmentation models, one family per module, each with keyword-only builders.

- :mod:`course_lib.models.simple`: the patch classifier and all-convolution nets of lecture 04.
- :mod:`course_lib.models.context`: single-scale, multi-scale (image pyramid) and recurrent
  convnets, the scene-labelling networks before FCN (lecture 05).
- :mod:`course_lib.models.can`: the context aggregation network (dilated convolutions,
  adaptive batch normalisation) of lectures 02 and 10.
- :mod:`course_lib.models.fcn`: FCN-32s / 16s / 8s with derived crop offsets (lecture 06).
- :mod:`course_lib.models.unet`, :mod:`~course_lib.models.segnet`,
  :mod:`~course_lib.models.deeplab`, :mod:`~course_lib.models.tiramisu`: the encoder-decoders
  of lecture 07 (concatenated skips, pooling indices, atrous convolutions and ASPP, dense
  blocks).

Import the module you need (``from course_lib.models.context import multiscale_net``); this
package imports nothing by itself so that ``import course_lib.models`` stays cheap.
"""
