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
from ..camera.presets import MAX_FRAMES
from ..camera.rotations import look_at
from ..errors import InputError
from ..export.array_files import load_npy

MAX_CAMERA_FILE_BYTES = 16 * 1024**2

_GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))


def _relative(c2w: torch.Tensor) -> torch.Tensor:
    return rigid_inverse(c2w[0]).unsqueeze(0) @ c2w


def path_from_matrices(matrices, *, world_to_camera: bool = False, relative: bool = True, name: str = "matrices") -> CameraPath:
    arr = np.asarray(matrices)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"camera matrices ({name}) must be numbers, got an array of {arr.dtype}")
    m = torch.as_tensor(arr, dtype=torch.float64)
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3 or tuple(m.shape[1:]) not in ((4, 4), (3, 4)):
        raise InputError(f"camera matrices ({name}) must be [T, 4, 4] or [T, 3, 4], got {list(m.shape)}")
    if not 1 <= m.shape[0] <= MAX_FRAMES:
        raise InputError(f"camera matrices ({name}) hold {m.shape[0]} poses; a path needs 1 to {MAX_FRAMES}")
    if not bool(torch.isfinite(m).all()):
        raise InputError(f"camera matrices ({name}) contain NaN or infinite numbers")
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


def _is_file(value: str | os.PathLike) -> bool:
    if isinstance(value, os.PathLike):
        return True
    if "\n" in value or len(value.encode("utf-8", "surrogatepass")) > 4096:
        return False  # the text itself (a longer "name" would make the file system raise)
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return False


def _read_text_file(path: Path, what: str) -> str:
    if not path.is_file():
        raise InputError(f"{what} {path} not found")
    size = path.stat().st_size
    if size > MAX_CAMERA_FILE_BYTES:
        raise InputError(f"{what} {path} is {size:,} bytes; a camera file of {MAX_FRAMES} rows is far smaller "
                         f"(at most {MAX_CAMERA_FILE_BYTES:,} bytes read). Is it the right file?")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not a text file (a RealEstate10K camera file is text: the video "
                         "URL, then one line of 19 numbers per frame); for binary poses use a [T, 4, 4] .npy") from None


def path_from_realestate_text(text_or_file: str | os.PathLike, **kw) -> CameraPath:
    """A RealEstate10K ``.txt`` (first line: the video URL, then one row per frame), or its text."""
    if _is_file(text_or_file):
        text = _read_text_file(Path(text_or_file), "camera file")
    else:
        text = str(text_or_file)
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


def path_from_camera_file(path: str | os.PathLike, *, relative: bool = True, world_to_camera: bool = False) -> CameraPath:
    """A camera path from a file: ``[T, 4, 4]`` / ``[T, 3, 4]`` matrices in a ``.npy`` (camera-to-world
    unless ``world_to_camera``), anything else read as a RealEstate10K text file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"camera file {path} not found")
    if path.suffix.lower() == ".npy":
        return path_from_matrices(load_npy(path), world_to_camera=world_to_camera, relative=relative, name=path.stem)
    return path_from_realestate_text(path, relative=relative)


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
