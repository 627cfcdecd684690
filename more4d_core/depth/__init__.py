"""Depth: the depth type, backends (built-in prior, transformers models, UniDepth, external depth
images), relative-to-metric conversion, cleanup of flying pixels and scale alignment."""

from .cleanup import clean_depth, fit_scale_shift, flying_pixels
from .conversion import depth_to_image, image_to_values, to_metric
from .estimate import BACKENDS, estimate_depth, external_depth
from .prior import prior_depth
from .result import DEFAULT_FOV_DEG, DepthResult, intrinsics_for

__all__ = [
    "BACKENDS",
    "DEFAULT_FOV_DEG",
    "DepthResult",
    "clean_depth",
    "depth_to_image",
    "estimate_depth",
    "external_depth",
    "fit_scale_shift",
    "flying_pixels",
    "image_to_values",
    "intrinsics_for",
    "prior_depth",
    "to_metric",
]
