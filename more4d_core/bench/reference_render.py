"""A straightforward re-implementation of the authors' point renderer, for speed comparisons.

It follows the steps of the reference inference script, frame by frame: homogeneous points are
moved into the camera with the inverse of the camera-to-world pose, projected with *normalized*
intrinsics (image = [0, 1]^2), filtered to the image and ``z >= 0``; ``torch.unique`` over
column-major pixel ids, ``index_reduce_(amin)`` for the nearest depth per pixel, the points at
that depth kept, and their colours averaged per pixel (``index_add_`` + counts, what
``torch_scatter.scatter(reduce="mean")`` does). Like the reference, the hole mask is read back
from black pixels. Used by the render benchmark and by tests that compare renderers.
"""

from __future__ import annotations

import warnings

import torch


def reference_render_frame(
    points: torch.Tensor,
    colors: torch.Tensor,
    cam_to_world: torch.Tensor,
    normalized_intrinsics: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render one frame: ``(image [H, W, 3] float 0..1, hole mask [H, W] bool)``."""
    homogeneous = torch.cat([points, torch.ones_like(points[:, :1])], dim=-1)
    cam = torch.einsum("ij,nj->ni", cam_to_world.inverse(), homogeneous)[:, :3]
    depth = cam[:, 2]
    eps = torch.finfo(torch.float32).eps
    cam = (cam / (depth.unsqueeze(-1) + eps)).nan_to_num(posinf=1e8, neginf=-1e8)
    uv = torch.einsum("ij,nj->ni", normalized_intrinsics, cam)[:, :2]
    mask = (uv[:, 0] >= 0) * (uv[:, 0] <= 1) * (uv[:, 1] >= 0) * (uv[:, 1] <= 1) * (depth >= 0)
    image = torch.zeros(height * width, 3, dtype=torch.float32, device=points.device)
    if mask.sum() > 0:
        color_pc = colors[mask]
        depth_m = depth[mask]
        uv_m = uv[mask]
        pix = (uv_m[:, 0] * width).floor().clamp(0, width - 1) * height + (uv_m[:, 1] * height).floor().clamp(
            0, height - 1
        )
        uniq, inverse = torch.unique(pix, return_inverse=True)
        min_depth = torch.full_like(uniq, float(depth_m.max()), dtype=depth_m.dtype)
        min_depth.index_reduce_(0, inverse, depth_m, "amin")
        front = depth_m == min_depth[inverse]
        target = pix[front].long()
        sums = torch.zeros(height * width, 3, dtype=torch.float32, device=points.device)
        sums.index_add_(0, target, color_pc[front])
        counts = torch.bincount(target, minlength=height * width).unsqueeze(-1)
        image = sums / counts.clamp(min=1)
        # column-major ids (x * H + y) -> [W, H] -> [H, W]
        image = image.view(width, height, 3).transpose(0, 1)
    else:
        image = image.view(height, width, 3)
    holes = image.sum(-1) == 0
    return image, holes


def reference_render(
    points: torch.Tensor,
    colors: torch.Tensor,
    cam_to_world: torch.Tensor,
    pixel_intrinsics: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``[T, N, 3]`` points frame by frame; returns ``([T, H, W, 3], [T, H, W])``.

    ``pixel_intrinsics`` ``[T, 3, 3]`` are converted to the reference's normalized convention.
    """
    scale = torch.tensor([[1.0 / width], [1.0 / height], [1.0]], dtype=pixel_intrinsics.dtype,
                         device=pixel_intrinsics.device)
    frames, holes = [], []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="index_reduce")
        for t in range(points.shape[0]):
            img, hole = reference_render_frame(
                points[t], colors, cam_to_world[t], pixel_intrinsics[t] * scale, height, width
            )
            frames.append(img)
            holes.append(hole)
    return torch.stack(frames), torch.stack(holes)
