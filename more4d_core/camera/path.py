"""The camera-path type passed between nodes."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError
from .intrinsics import scale_intrinsics, validate_intrinsics
from .rotations import is_rotation

CAMERA_PATH_VERSION = 1


def rigid_inverse(poses: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid ``[..., 4, 4]`` transforms (camera-to-world <-> world-to-camera), float64."""
    poses = torch.as_tensor(poses, dtype=torch.float64)
    rot_t = poses[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(poses)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ poses[..., :3, 3:4]).squeeze(-1)
    out[..., 3, 3] = 1.0
    return out


class CameraPath:
    """A sequence of camera poses, optionally with per-frame intrinsics.

    Attributes:
        poses: ``[T, 4, 4]`` float64 **camera-to-world** matrices in the input camera's OpenCV
            frame (x right, y down, z forward); the identity is the input camera. Translations are
            in the scene's units (metres when depth is metric).
        intrinsics: ``None`` (use the scene's camera) or ``[T, 3, 3]`` float64 pixel intrinsics
            for images of size ``intrinsics_hw``; the renderer rescales them to its output size.
        intrinsics_hw: ``(height, width)`` the intrinsics refer to (required with intrinsics).
        zoom: ``None`` or ``[T]`` focal-length multipliers applied on top of the intrinsics
            (2 = twice the focal length, a narrower view).
        name: a label (preset name, "keyframes", "loaded", ...).
        metadata: JSON-serializable extra information (preset parameters, source file, ...).
    """

    version = CAMERA_PATH_VERSION

    def __init__(
        self,
        poses: torch.Tensor,
        *,
        name: str = "custom",
        intrinsics: torch.Tensor | None = None,
        intrinsics_hw: tuple[int, int] | None = None,
        zoom: torch.Tensor | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        poses = torch.as_tensor(poses).detach().to("cpu", torch.float64)
        if poses.ndim == 2:
            poses = poses.unsqueeze(0)
        if poses.ndim != 3 or tuple(poses.shape[1:]) != (4, 4):
            raise InputError(f"camera poses must have shape [T, 4, 4], got {list(poses.shape)}")
        if poses.shape[0] == 0:
            raise InputError("the camera path is empty: it needs at least one pose (frame count >= 1)")
        if not torch.isfinite(poses).all():
            raise InputError("camera poses contain NaN or infinite values")
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
        if not torch.allclose(poses[:, 3], bottom.expand(poses.shape[0], 4), atol=1e-6):
            raise InputError("camera poses must be rigid 4x4 matrices with last row [0, 0, 0, 1]")
        if not is_rotation(poses[:, :3, :3]):
            raise InputError(
                "camera poses must have orthonormal rotations with determinant +1 (no scale, no mirror)"
            )
        if intrinsics is not None:
            intrinsics = validate_intrinsics(intrinsics, "camera-path intrinsics")
            if intrinsics.ndim == 2:
                intrinsics = intrinsics.unsqueeze(0).expand(poses.shape[0], 3, 3).clone()
            if intrinsics.shape[0] != poses.shape[0]:
                raise InputError(
                    f"camera path has {poses.shape[0]} poses but {intrinsics.shape[0]} intrinsics matrices"
                )
            if intrinsics_hw is None:
                raise InputError("per-frame intrinsics need intrinsics_hw=(height, width) they refer to")
            intrinsics_hw = (int(intrinsics_hw[0]), int(intrinsics_hw[1]))
        if zoom is not None:
            zoom = torch.as_tensor(zoom, dtype=torch.float64).detach().cpu().reshape(-1)
            if zoom.numel() == 1:
                zoom = zoom.expand(poses.shape[0]).clone()
            if zoom.shape[0] != poses.shape[0]:
                raise InputError(f"camera path has {poses.shape[0]} poses but {zoom.shape[0]} zoom values")
            if not (torch.isfinite(zoom).all() and (zoom > 0).all()):
                raise InputError("zoom factors must be positive finite numbers")
        self.poses = poses
        self.zoom = zoom
        self.intrinsics = intrinsics
        self.intrinsics_hw = intrinsics_hw
        self.name = str(name)
        self.metadata = dict(metadata or {})

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        extra = ", per-frame intrinsics" if self.intrinsics is not None else ""
        extra += ", zoom" if self.zoom is not None else ""
        return f"CameraPath(name={self.name!r}, frames={self.num_frames}{extra})"

    def intrinsics_for(self, base: torch.Tensor, base_hw: tuple[int, int], out_hw: tuple[int, int]) -> torch.Tensor:
        """``[T, 3, 3]`` intrinsics for rendering at ``out_hw``.

        Uses the path's own intrinsics when it has them, else the scene camera ``base`` (given for
        ``base_hw``), each rescaled to the output size.
        """
        if self.intrinsics is not None:
            k = scale_intrinsics(self.intrinsics, self.intrinsics_hw, out_hw)
        else:
            k = scale_intrinsics(base, base_hw, out_hw)
            k = k.unsqueeze(0).expand(self.num_frames, 3, 3).clone()
        if self.zoom is not None:
            k[:, 0, 0] *= self.zoom
            k[:, 1, 1] *= self.zoom
        return k

    def positions(self) -> torch.Tensor:
        """Camera centres ``[T, 3]``."""
        return self.poses[:, :3, 3].clone()

    def world_to_camera(self) -> torch.Tensor:
        """``[T, 4, 4]`` world-to-camera matrices (rigid inverse of the poses)."""
        return rigid_inverse(self.poses)

    def resampled(self, num_frames: int) -> CameraPath:
        """The same path re-timed to ``num_frames`` frames (position lerp, rotation slerp)."""
        from .interpolation import resample_poses

        poses, intr, zoom = resample_poses(self.poses, num_frames, self.intrinsics, self.zoom)
        return CameraPath(
            poses,
            name=self.name,
            intrinsics=intr,
            intrinsics_hw=self.intrinsics_hw,
            zoom=zoom,
            metadata=self.metadata,
        )
