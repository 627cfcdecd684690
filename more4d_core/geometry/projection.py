"""Back-projection of depth maps and projection of points (pinhole, OpenCV axes, pixel centres).

``backproject_depth`` and ``project_points`` are exact inverses: the point made from pixel
``(i, j)`` with depth ``z`` projects back to ``(u, v) = (j + 0.5, i + 0.5)`` at depth ``z``.
Everything runs on the device of the input tensors.
"""

from __future__ import annotations

import torch

from ..camera.intrinsics import validate_intrinsics
from ..errors import InputError


def pixel_centers(height: int, width: int, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v)`` pixel-centre coordinates, each ``[height, width]``."""
    u = torch.arange(width, device=device, dtype=dtype) + 0.5
    v = torch.arange(height, device=device, dtype=dtype) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return uu, vv


def backproject_depth(
    depth: torch.Tensor,
    intrinsics: torch.Tensor,
    *,
    allow_invalid: bool = False,
) -> torch.Tensor:
    """Frame-0 point cloud from a depth map: one point per pixel, row-major, shape ``[H*W, 3]``.

    ``depth`` is z-depth (distance along the optical axis), shape ``[H, W]``. Depth must be finite
    and positive everywhere unless ``allow_invalid``, in which case invalid pixels become NaN points
    (the renderer skips them).
    """
    depth = torch.as_tensor(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be a [H, W] map, got shape {list(depth.shape)}")
    if not depth.is_floating_point():
        depth = depth.float()
    k = validate_intrinsics(intrinsics)
    if k.ndim != 2:
        raise InputError("backproject_depth takes one [3, 3] intrinsics matrix")
    invalid = ~torch.isfinite(depth) | (depth <= 0)
    if invalid.any():
        if not allow_invalid:
            raise InputError(
                f"depth has {int(invalid.sum())} of {depth.numel()} pixels that are NaN, infinite or <= 0. "
                "Clean the depth map (fill or mask those pixels) or pass allow_invalid=True to turn "
                "them into NaN points that are never rendered."
            )
        depth = torch.where(invalid, torch.full_like(depth, float("nan")), depth)
    h, w = depth.shape
    compute = torch.float64 if depth.dtype == torch.float64 else torch.float32
    uu, vv = pixel_centers(h, w, device=depth.device, dtype=compute)
    fx, fy, cx, cy = (float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))
    z = depth.to(compute)
    x = (uu - cx) / fx * z
    y = (vv - cy) / fy * z
    return torch.stack([x, y, z], dim=-1).reshape(h * w, 3)


def world_to_camera(points: torch.Tensor, cam_to_world: torch.Tensor) -> torch.Tensor:
    """Express world points ``[..., 3]`` in the camera whose pose (camera-to-world 4x4) is given."""
    pose = torch.as_tensor(cam_to_world, device=points.device, dtype=points.dtype)
    rot = pose[..., :3, :3]
    trans = pose[..., :3, 3]
    # p_cam = R^T (p - t); with row vectors that is (p - t) @ R
    if pose.ndim == 2:
        return (points - trans) @ rot
    return torch.einsum("...ni,...ij->...nj", points - trans.unsqueeze(-2), rot)


def project_points(
    points: torch.Tensor,
    intrinsics: torch.Tensor,
    cam_to_world: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project ``[..., 3]`` points to pixel coordinates ``[..., 2]`` and camera z-depth ``[...]``.

    Points at ``z <= 0`` get non-finite or meaningless ``(u, v)``; callers must test ``z > 0``.
    """
    points = torch.as_tensor(points)
    if points.shape[-1] != 3:
        raise InputError(f"points must have a last dimension of 3, got shape {list(points.shape)}")
    if cam_to_world is not None:
        points = world_to_camera(points, cam_to_world)
    k = validate_intrinsics(intrinsics).to(device=points.device, dtype=points.dtype)
    z = points[..., 2]
    u = points[..., 0] / z * k[0, 0] + k[0, 2]
    v = points[..., 1] / z * k[1, 1] + k[1, 2]
    return torch.stack([u, v], dim=-1), z
