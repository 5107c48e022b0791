"""Fields: the world-frame transform φ(x; α), image/label sampling, dense outputs."""

from cidir.fields.dense import (
    displacement_field,
    jacobian_determinant_map,
    resample_with_field,
    warp_image,
    warp_labels,
)
from cidir.fields.sampling import ImageSampler, LabelSampler
from cidir.fields.transform import ConditionedTransform

__all__ = [
    "ConditionedTransform",
    "ImageSampler",
    "LabelSampler",
    "displacement_field",
    "jacobian_determinant_map",
    "resample_with_field",
    "warp_image",
    "warp_labels",
]
