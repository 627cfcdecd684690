"""A 4D scene as Gaussian splats in ComfyUI core's ``SPLAT`` layout, so core's splat nodes
(Preview Splat, Save Splat, Render Splat, Merge / Transform Splat) can show, save and re-render it.

Core's layout (one row per batch item, here one per chosen frame): ``positions [B, N, 3]`` in
OpenCV axes (x right, y down, z forward — the same frame as our scenes), ``scales [B, N, 3]``
linear standard deviations, ``rotations [B, N, 4]`` unit quaternions (w, x, y, z), ``opacities
[B, N, 1]`` in 0..1, ``sh [B, N, 1, 3]`` degree-0 spherical-harmonic colour (``rgb = 0.5 +
C0 * sh``). Each point becomes an isotropic splat the size of its frame-0 pixel footprint, so
neighbouring splats just overlap and the surface renders closed from the input view.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..export.selection import select_frames, select_points
from ..scene import Scene4D

SH_C0 = 0.28209479177387814  # the degree-0 spherical-harmonic constant


def scene_splat_fields(scene: Scene4D, frames=None, *, point_stride: int = 1, size: float = 1.0,
                       visible_only: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of core's SPLAT for the chosen ``frames`` (default: every frame) of ``scene``.

    ``size`` scales the splats (1 = the width of a frame-0 pixel, point_stride pixels when points
    are skipped). With ``visible_only``, points hidden in that frame (the scene's visibility) get
    zero opacity instead of being dropped, so every row keeps the same points in the same order.
    """
    if not size > 0:
        raise InputError(f"splat size must be > 0, got {size}")
    chosen = select_frames(scene, frames)
    keep = select_points(scene, point_stride)
    pts = torch.stack([scene.frame(t)[keep] for t in chosen]).float()  # [B, N, 3]
    ok = scene.visibility[chosen][:, keep].bool() if visible_only else torch.ones(pts.shape[:2], dtype=torch.bool)
    k = scene.intrinsics.double()
    focal = float(k[0, 0] + k[1, 1]) / 2.0
    z0 = scene.points0[keep, 2].double().abs()  # scenes are validated finite
    # a Gaussian with sigma = footprint / 2 covers its pixel and meets its neighbours
    sigma = (size * point_stride * 0.5 * z0 / focal).clamp(min=1e-6).float()
    b, n = pts.shape[:2]
    rgb = scene.colors[keep].float() / 255.0
    return {
        "positions": pts.contiguous(),
        "scales": sigma[None, :, None].expand(b, n, 3).contiguous(),
        "rotations": torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(b, n, 4).contiguous(),
        "opacities": ok[..., None].float(),
        "sh": ((rgb - 0.5) / SH_C0)[None, :, None, :].expand(b, n, 1, 3).contiguous(),
    }


def splat_colors(sh: torch.Tensor) -> torch.Tensor:
    """RGB in 0..1 from the degree-0 term of ``sh [..., K, 3]`` (what core's renderer shows)."""
    return (0.5 + SH_C0 * sh[..., 0, :]).clamp(0.0, 1.0)
