"""Rotation helpers (float64, OpenCV camera axes): look-at, axis rotations, quaternions, slerp.

Quaternions are ``[w, x, y, z]`` with ``w >= 0`` after :func:`matrix_to_quaternion`.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError

# "Up" on screen is -y in OpenCV camera coordinates, so the world's down direction is +y.
WORLD_DOWN = (0.0, 1.0, 0.0)

_F64 = torch.float64


def _vec(v) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=_F64)
    if t.shape != (3,) or not torch.isfinite(t).all():
        raise InputError(f"expected a finite 3-vector, got {v!r}")
    return t


def rotation_x(angle_rad: float) -> torch.Tensor:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=_F64)


def rotation_y(angle_rad: float) -> torch.Tensor:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=_F64)


def rotation_z(angle_rad: float) -> torch.Tensor:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=_F64)


def euler_to_matrix(pitch_deg: float, yaw_deg: float, roll_deg: float) -> torch.Tensor:
    """Camera rotation from pitch (about x), yaw (about y) and roll (about z), applied yaw-pitch-roll."""
    return (
        rotation_y(math.radians(yaw_deg)) @ rotation_x(math.radians(pitch_deg)) @ rotation_z(math.radians(roll_deg))
    )


def look_at(position, target, down=WORLD_DOWN) -> torch.Tensor:
    """Camera-to-world rotation of a camera at ``position`` whose optical axis (+z) points at ``target``.

    The camera's +y (image down) is kept as close as possible to the world direction ``down``.
    """
    p, t, d = _vec(position), _vec(target), _vec(down)
    forward = t - p
    n = torch.linalg.norm(forward)
    if n < 1e-12:
        raise InputError(f"look-at target {t.tolist()} coincides with the camera position {p.tolist()}")
    z = forward / n
    x = torch.linalg.cross(d, z)
    nx = torch.linalg.norm(x)
    if nx < 1e-9:
        raise InputError(
            "the camera looks straight along the 'down' direction; give a different look-at target or 'up' vector"
        )
    x = x / nx
    y = torch.linalg.cross(z, x)
    return torch.stack([x, y, z], dim=1)


def matrix_to_quaternion(rot: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``[w, x, y, z]`` (w >= 0) of a 3x3 rotation matrix."""
    m = torch.as_tensor(rot, dtype=_F64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = torch.sqrt(tr + 1.0) * 2
        q = torch.stack([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = torch.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = torch.stack([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = torch.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = torch.stack([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = torch.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = torch.stack([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q = q / torch.linalg.norm(q)
    return -q if q[0] < 0 else q


def quaternion_to_matrix(quat) -> torch.Tensor:
    """3x3 rotation matrix of a quaternion ``[w, x, y, z]`` (normalized first)."""
    q = torch.as_tensor(quat, dtype=_F64)
    if q.shape != (4,) or not torch.isfinite(q).all() or torch.linalg.norm(q) < 1e-12:
        raise InputError(f"a quaternion must be 4 finite numbers [w, x, y, z], not all zero; got {quat!r}")
    w, x, y, z = (q / torch.linalg.norm(q)).tolist()
    return torch.tensor(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=_F64,
    )


def slerp(q0: torch.Tensor, q1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical linear interpolation along the shorter arc between two unit quaternions."""
    q0 = q0 / torch.linalg.norm(q0)
    q1 = q1 / torch.linalg.norm(q1)
    dot = float(torch.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / torch.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    s = math.sin(theta)
    return (math.sin((1 - t) * theta) / s) * q0 + (math.sin(t * theta) / s) * q1


def rotation_angle(rot: torch.Tensor) -> float:
    """Angle in radians of a rotation matrix."""
    c = (float(torch.diagonal(torch.as_tensor(rot, dtype=_F64)).sum()) - 1.0) / 2.0
    return math.acos(max(-1.0, min(1.0, c)))


def is_rotation(rot: torch.Tensor, tol: float = 1e-4) -> bool:
    m = torch.as_tensor(rot, dtype=_F64)
    eye = torch.eye(3, dtype=_F64)
    return bool(
        torch.allclose(m.transpose(-1, -2) @ m, eye.expand_as(m), atol=tol)
        and (torch.linalg.det(m) > 0).all()
    )
