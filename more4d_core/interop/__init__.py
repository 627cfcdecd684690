"""Conversions at the edges: camera formats artists already have, ComfyUI core's MoGe geometry and
TRACKS and SPLAT, and 2D track JSON. Inside the library one convention holds: OpenCV axes, camera-to-world."""

from .cameras import (
    path_from_camera_file,
    path_from_load3d,
    path_from_matrices,
    path_from_realestate,
    path_from_realestate_text,
)
from .geometry import depth_from_moge
from .splat import scene_splat_fields, splat_colors
from .tracks import scene_tracks, tracks_to_json

__all__ = [
    "depth_from_moge",
    "path_from_load3d",
    "path_from_camera_file",
    "path_from_matrices",
    "path_from_realestate",
    "path_from_realestate_text",
    "scene_splat_fields",
    "scene_tracks",
    "splat_colors",
    "tracks_to_json",
]
