"""Camera paths from other formats.

* RealEstate10K / CameraCtrl rows (AnimateDiff-Evolved's ``CAMERACTRL_POSES``): per frame
  ``[timestamp?] fx fy cx cy k1 k2`` followed by a 3x4 **world-to-camera** matrix (row-major),
  intrinsics normalized by the image size, OpenCV axes.
* ``[T, 4, 4]`` matrices (e.g. a ``.npy``): camera-to-world unless ``world_to_camera=True``.
* ComfyUI's ``Load3D`` camera info: ``{"position": {x, y, z}, "target": {x, y, z}, "zoom"}`` in
  three.js axes (y up, camera looking down -z) -> a one-pose path.

``relative=True`` re-expresses a path relative to its first camera, so frame 0 is the input camera.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..camera.path import CameraPath, rigid_inverse
from ..camera.rotations import look_at
from ..errors import InputError

_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))


def _relative(c2w: torch.Tensor) -> torch.Tensor:
    return rigid_inverse(c2w[0]).unsqueeze(0) @ c2w


def path_from_matrices(matrices, *, world_to_camera: bool = False, relative: bool = True, name: str = "matrices") -> CameraPath:
    m = torch.as_tensor(np.asarray(matrices), dtype=torch.float64)
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3 or tuple(m.shape[1:]) not in ((4, 4), (3, 4)):
        raise InputError(f"camera matrices must be [T, 4, 4] or [T, 3, 4], got {list(m.shape)}")
    if m.shape[1] == 3:
        m = torch.cat([m, torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(m.shape[0], 1, 4)], dim=1)
    c2w = rigid_inverse(m) if world_to_camera else m
    return CameraPath(_relative(c2w) if relative else c2w, name=name, metadata={"source": name})


def path_from_realestate(rows, *, relative: bool = True, image_hw: tuple[int, int] | None = None) -> CameraPath:
    """Rows of 18 numbers (or 19 with a leading timestamp / frame id)."""
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (18, 19):
        raise InputError(f"RealEstate10K / CameraCtrl rows have 18 or 19 numbers, got shape {list(arr.shape)}")
    if arr.shape[1] == 19:
        arr = arr[:, 1:]
    w2c = arr[:, 6:].reshape(-1, 3, 4)
    path = path_from_matrices(w2c, world_to_camera=True, relative=relative, name="realestate10k")
    if image_hw is not None:
        h, w = image_hw
        k = torch.zeros(len(arr), 3, 3, dtype=torch.float64)
        k[:, 0, 0], k[:, 1, 1] = torch.from_numpy(arr[:, 0] * w), torch.from_numpy(arr[:, 1] * h)
        k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = torch.from_numpy(arr[:, 2] * w), torch.from_numpy(arr[:, 3] * h), 1.0
        path = CameraPath(path.poses, name=path.name, intrinsics=k, intrinsics_hw=image_hw, metadata=path.metadata)
    return path


def path_from_realestate_text(text_or_file: str | os.PathLike, **kw) -> CameraPath:
    """A RealEstate10K ``.txt`` (first line: the video URL, then one row per frame)."""
    text = Path(text_or_file).read_text() if Path(str(text_or_file)).is_file() else str(text_or_file)
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) in (18, 19):
            try:
                rows.append([float(p) for p in parts])
            except ValueError:
                continue
    if not rows:
        raise InputError("no camera rows found (expected lines of 19 numbers: timestamp fx fy cx cy k1 k2 + 3x4 pose)")
    return path_from_realestate(rows, **kw)


def path_from_load3d(info: dict, *, scene_depth: float = 1.0) -> CameraPath:
    """One pose from ComfyUI Load3D camera info (three.js axes), as an OpenCV camera-to-world."""
    try:
        pos = torch.tensor([info["position"][k] for k in "xyz"], dtype=torch.float64)
        target = torch.tensor([info["target"][k] for k in "xyz"], dtype=torch.float64)
    except (KeyError, TypeError):
        raise InputError("Load3D camera info needs 'position' and 'target' with x, y, z") from None
    pos_cv, target_cv = _GL_TO_CV @ pos, _GL_TO_CV @ target
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = look_at(pos_cv, target_cv)
    pose[:3, 3] = pos_cv * scene_depth
    zoom = float(info.get("zoom", 1.0) or 1.0)
    return CameraPath(pose, name="load3d", zoom=torch.tensor([zoom], dtype=torch.float64), metadata={"source": "Load3D"})
