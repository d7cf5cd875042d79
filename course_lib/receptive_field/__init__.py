"""Receptive fields: the recurrence, the stacks it is applied to, real modules, alignment.

- :mod:`course_lib.receptive_field.recurrence`: ``Layer``, ``RFInfo``, the Araujo et al.
  recurrence (``receptive_field``, ``extend``, ``closed_form_size``), ``format_table`` and
  ``unit_field`` (the field of one output unit on an image).
- :mod:`course_lib.receptive_field.stacks`: layer lists (``stacked_3x3``, ``vgg_like``,
  ``vgg16_layers``, ``dilated_stack``, ``layers_for_field``), the text grammar
  ``parse_layers`` and ``build_module``.
- :mod:`course_lib.receptive_field.measure`: ``receptive_field_of`` a real module, traced
  with ``torch.fx`` (branches, skips, functional pooling, upsampling) by the rules of
  :mod:`course_lib.receptive_field.graph`, or measured by gradients when tracing fails.
- :mod:`course_lib.receptive_field.effective`: ``effective_receptive_field`` (Luo et al.
  2016) and ``support_box``.
- :mod:`course_lib.receptive_field.align`: ``coord_map``, FCN's ``crop_offset`` and
  ``layers_of`` (a module's convolutions and pools as a chain of ``Layer``).
"""

from course_lib.receptive_field.align import coord_map, crop_offset, layers_of
from course_lib.receptive_field.effective import effective_receptive_field, support_box
from course_lib.receptive_field.graph import NodeRule, node_rules
from course_lib.receptive_field.measure import RFFraction, field_row, receptive_field_of
from course_lib.receptive_field.recurrence import (
    Layer,
    RFInfo,
    closed_form_size,
    extend,
    format_table,
    receptive_field,
    unit_field,
)
from course_lib.receptive_field.stacks import (
    build_module,
    dilated_stack,
    is_pool,
    layers_for_field,
    parse_layers,
    stacked_3x3,
    vgg16_layers,
    vgg_like,
)

__all__ = ["Layer", "RFInfo", "receptive_field", "extend", "closed_form_size", "format_table",
           "unit_field", "stacked_3x3", "layers_for_field", "vgg_like", "dilated_stack",
           "vgg16_layers", "parse_layers", "is_pool", "build_module", "receptive_field_of",
           "effective_receptive_field", "support_box", "coord_map", "crop_offset", "layers_of",
           "RFFraction", "field_row", "NodeRule", "node_rules"]
