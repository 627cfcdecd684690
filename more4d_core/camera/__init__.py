"""Cameras: pixel intrinsics, camera-path type, presets and keyframed paths."""

from .intrinsics import (
    fov_from_intrinsics,
    intrinsics_from_focal,
    intrinsics_from_focal_mm,
    intrinsics_from_fov,
    intrinsics_from_normalized,
    make_intrinsics,
    scale_intrinsics,
    validate_intrinsics,
)
from .keyframes import parse_keyframes, path_to_keyframes
from .path import CameraPath
from .presets import ALIASES, PRESET_DESCRIPTIONS, PRESET_NAMES, camera_preset, canonical_preset_name

__all__ = [
    "ALIASES",
    "CameraPath",
    "PRESET_DESCRIPTIONS",
    "PRESET_NAMES",
    "camera_preset",
    "canonical_preset_name",
    "fov_from_intrinsics",
    "intrinsics_from_focal",
    "intrinsics_from_focal_mm",
    "intrinsics_from_fov",
    "intrinsics_from_normalized",
    "make_intrinsics",
    "parse_keyframes",
    "path_to_keyframes",
    "scale_intrinsics",
    "validate_intrinsics",
]
