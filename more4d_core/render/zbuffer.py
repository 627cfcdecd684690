"""Fused z-buffer splatting of point clouds into many frames at once.

The nearest point per pixel is found with a single ``scatter_reduce(amin)`` over 64-bit keys
``(depth bits << 32) | point index``: positive float32 depths compare like their int32 bit
patterns, so the minimum key is the nearest point and carries its index. All frames of a chunk are
splatted in one call (pixel ids offset per frame), which is what makes this fast on CPU and GPU;
the reference does ``unique`` + ``amin`` + a mean scatter per frame.

Ties at exactly equal depth go to the lower point index (deterministic).
"""

from __future__ import annotations

import torch

EMPTY_KEY = torch.iinfo(torch.int64).max
_INDEX_MASK = 0xFFFFFFFF


def _footprint(radius: int) -> tuple[float, list[tuple[int, int]]]:
    """Offset of the footprint's first pixel from the projected point and the pixel offsets.

    ``radius`` is the footprint width in pixels: 1 -> the pixel containing the point; 2 -> the 2x2
    pixels whose centres surround it; 3 -> the 3x3 block centred on it.
    """
    shift = (radius - 1) / 2.0
    return shift, [(dy, dx) for dy in range(radius) for dx in range(radius)]


def splat_chunk(
    points: torch.Tensor,
    world_to_cam: torch.Tensor,
    intrinsics: torch.Tensor,
    height: int,
    width: int,
    *,
    splat_radius: int = 1,
    near: float = 1e-4,
    point_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Z-buffer keys ``[F, height * width]`` for ``F`` frames.

    Args:
        points: ``[F, N, 3]`` float32 world points (NaN/inf allowed: never drawn).
        world_to_cam: ``[F, 4, 4]`` float32 world-to-camera matrices.
        intrinsics: ``[F, 3, 3]`` float32 pixel intrinsics for ``height x width``.
        point_mask: optional ``[F, N]`` bool, False drops the point in that frame.

    Returns int64 keys; ``EMPTY_KEY`` marks a hole. Decode with :func:`decode_keys`.
    """
    frames, n, _ = points.shape
    device = points.device
    if n >= 2**31:
        raise ValueError("at most 2**31 - 1 points per frame are supported")
    # uvw = K (R p + t): one batched affine map per frame
    proj = intrinsics @ world_to_cam[:, :3, :3]
    offset = (intrinsics @ world_to_cam[:, :3, 3:4]).transpose(1, 2)
    uvw = torch.baddbmm(offset, points, proj.transpose(1, 2))
    z = uvw[..., 2].contiguous()
    u = uvw[..., 0].div_(z)  # in place: uvw is a fresh buffer
    v = uvw[..., 1].div_(z)

    shift, offsets = _footprint(splat_radius)
    ok = z > near
    if point_mask is not None:
        ok &= point_mask
    # keep coordinates in a safe range before integer conversion (NaN/inf fail these tests)
    ok &= (u > -splat_radius) & (u < width + splat_radius) & (v > -splat_radius) & (v < height + splat_radius)
    col0 = torch.where(ok, u - shift, torch.zeros_like(u)).floor_().to(torch.int64)
    row0 = torch.where(ok, v - shift, torch.zeros_like(v)).floor_().to(torch.int64)
    del uvw, u, v

    keys = z.view(torch.int32).to(torch.int64).bitwise_left_shift_(32)
    keys.bitwise_or_(torch.arange(n, device=device, dtype=torch.int64))
    del z
    frame_base = (torch.arange(frames, device=device, dtype=torch.int64) * (height * width)).unsqueeze(1)

    zbuf = torch.full((frames * height * width,), EMPTY_KEY, dtype=torch.int64, device=device)
    for dy, dx in offsets:
        col = col0 + dx if dx else col0
        row = row0 + dy if dy else row0
        inside = ok & (col >= 0) & (col < width) & (row >= 0) & (row < height)
        pix = row * width
        pix += col
        pix += frame_base
        pix.masked_fill_(~inside, 0)
        k = keys.masked_fill(~inside, EMPTY_KEY)
        zbuf.scatter_reduce_(0, pix.view(-1), k.view(-1), reduce="amin", include_self=True)
    return zbuf.view(frames, height * width)


def decode_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(holes bool, point index int64 (0 at holes), depth float32 (0 at holes))`` from keys."""
    holes = keys == EMPTY_KEY
    index = (keys & _INDEX_MASK).masked_fill_(holes, 0)
    depth = (keys >> 32).to(torch.int32).view(torch.float32).masked_fill(holes, 0.0)
    return holes, index, depth
