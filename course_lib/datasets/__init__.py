"""Data the course generates or ships: ``ShapesDataset`` and scikit-image's photographs.

- :mod:`course_lib.datasets.shapes`: :class:`ShapesDataset`, coloured shapes on textured
  backgrounds drawn from a seed (semantic masks or instance targets), :data:`CLASSES`.
- :mod:`course_lib.datasets.images`: real photographs bundled with scikit-image
  (:func:`photo`, :func:`camera_image`).
- :mod:`course_lib.datasets.stack`: :func:`stack_samples`, the first ``n`` samples as batches.
- :mod:`course_lib.datasets.augment`: U-Net's elastic deformation (:func:`elastic_deform`,
  :func:`displacement_field`, :func:`warp`) and border weight map (:func:`border_weight_map`).
"""

from course_lib.datasets.augment import (
    border_weight_map,
    displacement_field,
    elastic_deform,
    warp,
)
from course_lib.datasets.images import PHOTOS, camera_image, photo
from course_lib.datasets.shapes import (
    CLASSES,
    NUM_CLASSES,
    SPLITS,
    ShapesDataset,
    collate_detection,
)
from course_lib.datasets.stack import stack_samples

__all__ = ["CLASSES", "NUM_CLASSES", "SPLITS", "ShapesDataset", "collate_detection",
           "PHOTOS", "photo", "camera_image", "stack_samples", "displacement_field", "warp",
           "elastic_deform", "border_weight_map"]
