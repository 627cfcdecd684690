"""Interpolation of camera keyframes: a C1 cubic Hermite (Catmull-Rom) spline for positions and
slerp for rotations, both on the frame-time axis so unevenly spaced keyframes keep steady speed."""

from __future__ import annotations

import torch

from ..errors import InputError
from .rotations import matrix_to_quaternion, quaternion_to_matrix, slerp

_F64 = torch.float64


def _segment(times: torch.Tensor, t: float) -> tuple[int, float]:
    """Index ``k`` of the keyframe interval containing ``t`` and the local parameter in [0, 1]."""
    if t <= times[0]:
        return 0, 0.0
    if t >= times[-1]:
        return len(times) - 2, 1.0
    k = int(torch.searchsorted(times, torch.tensor([t], dtype=_F64), right=True)[0]) - 1
    k = max(0, min(k, len(times) - 2))
    return k, float((t - times[k]) / (times[k + 1] - times[k]))


def _check_times(times: torch.Tensor) -> None:
    if times.ndim != 1 or len(times) < 1:
        raise InputError("keyframe times must be a non-empty 1-D list")
    if len(times) > 1 and not bool((times[1:] > times[:-1]).all()):
        raise InputError(f"keyframe frames must be strictly increasing, got {times.tolist()}")


def hermite_positions(positions: torch.Tensor, times: torch.Tensor, query: torch.Tensor, spline: bool = True) -> torch.Tensor:
    """Interpolate ``positions [K, 3]`` at keyframe ``times [K]`` to the ``query`` times.

    ``spline=True`` gives a Catmull-Rom curve (tangents from the neighbouring keyframes, scaled by
    their time spacing; one-sided at the ends); ``False`` gives straight segments. Outside the
    keyframe range the end positions are held.
    """
    positions = torch.as_tensor(positions, dtype=_F64)
    times = torch.as_tensor(times, dtype=_F64)
    _check_times(times)
    if len(times) == 1:
        return positions[0].expand(len(query), 3).clone()
    k_count = len(times)
    tangents = torch.zeros_like(positions)
    if spline:
        for k in range(k_count):
            lo, hi = max(k - 1, 0), min(k + 1, k_count - 1)
            tangents[k] = (positions[hi] - positions[lo]) / (times[hi] - times[lo])
    out = torch.empty(len(query), 3, dtype=_F64)
    for i, t in enumerate(torch.as_tensor(query, dtype=_F64).tolist()):
        k, s = _segment(times, t)
        p0, p1 = positions[k], positions[k + 1]
        if not spline:
            out[i] = p0 + s * (p1 - p0)
            continue
        dt = times[k + 1] - times[k]
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        out[i] = h00 * p0 + h10 * dt * tangents[k] + h01 * p1 + h11 * dt * tangents[k + 1]
    return out


def slerp_rotations(rotations: torch.Tensor, times: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Interpolate rotations ``[K, 3, 3]`` at keyframe ``times`` to ``query`` times by slerp."""
    rotations = torch.as_tensor(rotations, dtype=_F64)
    times = torch.as_tensor(times, dtype=_F64)
    _check_times(times)
    quats = [matrix_to_quaternion(r) for r in rotations]
    out = torch.empty(len(query), 3, 3, dtype=_F64)
    for i, t in enumerate(torch.as_tensor(query, dtype=_F64).tolist()):
        if len(quats) == 1:
            out[i] = rotations[0]
            continue
        k, s = _segment(times, t)
        out[i] = quaternion_to_matrix(slerp(quats[k], quats[k + 1], s))
    return out


def compose_poses(rotations: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``[T, 4, 4]`` camera-to-world matrices from ``[T, 3, 3]`` rotations and ``[T, 3]`` centres."""
    t = rotations.shape[0]
    poses = torch.zeros(t, 4, 4, dtype=_F64)
    poses[:, :3, :3] = rotations
    poses[:, :3, 3] = positions
    poses[:, 3, 3] = 1.0
    return poses


def _lerp_frames(values: torch.Tensor | None, query: torch.Tensor) -> torch.Tensor | None:
    """Linear interpolation of per-frame values (first axis) at fractional frame indices."""
    if values is None:
        return None
    idx = query.clamp(0, values.shape[0] - 1)
    lo = idx.floor().long()
    hi = (lo + 1).clamp(max=values.shape[0] - 1)
    w = (idx - lo.to(_F64)).view(-1, *([1] * (values.ndim - 1)))
    return values[lo] * (1 - w) + values[hi] * w


def resample_poses(
    poses: torch.Tensor,
    num_frames: int,
    intrinsics: torch.Tensor | None = None,
    zoom: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Re-time a pose sequence to ``num_frames`` (straight-line positions, slerped rotations,
    linearly interpolated intrinsics and zoom)."""
    if num_frames < 1:
        raise InputError(f"frame count must be at least 1, got {num_frames}")
    src = poses.shape[0]
    times = torch.arange(src, dtype=_F64)
    query = torch.linspace(0, src - 1, num_frames, dtype=_F64) if num_frames > 1 else torch.zeros(1, dtype=_F64)
    pos = hermite_positions(poses[:, :3, 3], times, query, spline=False)
    rot = slerp_rotations(poses[:, :3, :3], times, query)
    return compose_poses(rot, pos), _lerp_frames(intrinsics, query), _lerp_frames(zoom, query)
