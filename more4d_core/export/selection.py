"""What an export contains: which frames, which points, which coordinate system."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..scene import Scene4D

COORDINATE_SYSTEMS = ("gl", "opencv")


def to_coordinates(points: np.ndarray, system: str) -> np.ndarray:
    """Points from our OpenCV frame to ``system``.

    ``"gl"`` is the y-up, camera-looks-down-minus-z convention of glTF, three.js, Blender's glTF
    importer and most viewers: ``(x, -y, -z)``. ``"opencv"`` returns the points unchanged.
    """
    if system not in COORDINATE_SYSTEMS:
        raise InputError(f"coordinate system must be one of {COORDINATE_SYSTEMS}, got {system!r}")
    if system == "opencv":
        return points
    return points * np.array([1.0, -1.0, -1.0], dtype=points.dtype)


def select_frames(scene: Scene4D, frames=None, frame_stride: int = 1) -> list[int]:
    """Frame indices to export: ``frames`` (explicit list) or every ``frame_stride``-th frame."""
    if frame_stride < 1:
        raise InputError(f"frame stride must be >= 1, got {frame_stride}")
    if frames is None:
        return list(range(0, scene.num_frames, frame_stride))
    out = [int(f) for f in frames]
    if not out:
        raise InputError("no frames selected for export")
    bad = [f for f in out if not 0 <= f < scene.num_frames]
    if bad:
        raise InputError(f"frames {bad} are out of range for a scene of {scene.num_frames} frames")
    return out


def select_points(scene: Scene4D, point_stride: int = 1) -> torch.Tensor:
    """Indices of the grid points kept when every ``point_stride``-th row and column is exported."""
    if point_stride < 1:
        raise InputError(f"point stride must be >= 1, got {point_stride}")
    h, w = scene.grid_hw
    if point_stride == 1:
        return torch.arange(h * w)
    rows = torch.arange(0, h, point_stride)
    cols = torch.arange(0, w, point_stride)
    return (rows[:, None] * w + cols[None, :]).reshape(-1)
