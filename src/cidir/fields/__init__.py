"""Fields: the world-frame transform φ(x; α), image/label sampling, dense outputs."""

from cidir.fields.dense import (
    INTERPOLATIONS,
    displacement_field,
    jacobian_determinant_map,
    map_in_domain,
    resample_with_field,
    warp_image,
    warp_labels,
)
from cidir.fields.sampling import ImageSampler, LabelSampler, NearestSampler
from cidir.fields.transform import ConditionedTransform
from cidir.fields.uncertainty import alpha_spread_map

__all__ = [
    "INTERPOLATIONS",
    "ConditionedTransform",
    "ImageSampler",
    "LabelSampler",
    "NearestSampler",
    "alpha_spread_map",
    "displacement_field",
    "jacobian_determinant_map",
    "map_in_domain",
    "resample_with_field",
    "warp_image",
    "warp_labels",
]
