"""Geometry: depth back-projection, point projection and the depth-guided motion normalization."""

from .normalization import NormalizationFactors, denormalize_motion, normalize_motion, safe_depth
from .projection import backproject_depth, pixel_centers, project_points, world_to_camera

__all__ = [
    "NormalizationFactors",
    "backproject_depth",
    "denormalize_motion",
    "normalize_motion",
    "pixel_centers",
    "project_points",
    "safe_depth",
    "world_to_camera",
]
