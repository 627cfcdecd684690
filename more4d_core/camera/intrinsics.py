"""Pinhole intrinsics in pixel units.

One convention everywhere in the library (the reference code mixes three):

* ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in **pixels** for an image of ``height x width``;
* the centre of pixel ``(row i, column j)`` sits at ``(u, v) = (j + 0.5, i + 0.5)``, so an image
  spans ``u in [0, width)`` and ``v in [0, height)`` and a centred principal point is
  ``(width / 2, height / 2)``;
* OpenCV camera axes: x right, y down, z forward.

With the pixel-centre convention, resizing an image by ``s`` scales ``fx, fy, cx, cy`` by ``s``
exactly, which :func:`scale_intrinsics` relies on.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError

_FOV_AXES = ("horizontal", "vertical", "diagonal")


def _check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise InputError(f"image size must be positive integers, got height={height}, width={width}")


def make_intrinsics(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    """Build a float64 3x3 intrinsics matrix, refusing zero, negative or non-finite focal lengths."""
    values = (fx, fy, cx, cy)
    if not all(math.isfinite(float(v)) for v in values):
        raise InputError(f"intrinsics must be finite numbers, got fx={fx}, fy={fy}, cx={cx}, cy={cy}")
    if fx <= 0 or fy <= 0:
        raise InputError(
            f"focal lengths must be positive pixels, got fx={fx}, fy={fy}. "
            "Give a field of view between 1 and 179 degrees or a positive focal length."
        )
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)


def intrinsics_from_focal(height: int, width: int, focal_px: float, focal_px_y: float | None = None) -> torch.Tensor:
    """Intrinsics for a centred principal point and a focal length given in pixels."""
    _check_size(height, width)
    fy = focal_px if focal_px_y is None else focal_px_y
    return make_intrinsics(float(focal_px), float(fy), width / 2.0, height / 2.0)


def intrinsics_from_fov(height: int, width: int, fov_deg: float, axis: str = "horizontal") -> torch.Tensor:
    """Intrinsics (square pixels, centred principal point) from a field of view in degrees.

    ``axis`` says which extent the angle spans: ``"horizontal"`` (the width), ``"vertical"`` (the
    height) or ``"diagonal"``.
    """
    _check_size(height, width)
    if axis not in _FOV_AXES:
        raise InputError(f"fov axis must be one of {_FOV_AXES}, got {axis!r}")
    if not (math.isfinite(fov_deg) and 0.0 < fov_deg < 180.0):
        raise InputError(f"field of view must be between 0 and 180 degrees (exclusive), got {fov_deg}")
    extent = {"horizontal": width, "vertical": height, "diagonal": math.hypot(width, height)}[axis]
    focal = (extent / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return intrinsics_from_focal(height, width, focal)


def intrinsics_from_focal_mm(height: int, width: int, focal_mm: float, sensor_width_mm: float = 36.0) -> torch.Tensor:
    """Intrinsics from a photographic focal length (35 mm full-frame equivalent by default)."""
    if not (focal_mm > 0 and sensor_width_mm > 0):
        raise InputError(f"focal length and sensor width must be positive mm, got {focal_mm}, {sensor_width_mm}")
    return intrinsics_from_focal(height, width, focal_mm / sensor_width_mm * width)


def fov_from_intrinsics(intrinsics: torch.Tensor, height: int, width: int) -> tuple[float, float]:
    """Horizontal and vertical field of view in degrees (for a centred principal point)."""
    k = validate_intrinsics(intrinsics)
    return (
        math.degrees(2.0 * math.atan(width / (2.0 * float(k[0, 0])))),
        math.degrees(2.0 * math.atan(height / (2.0 * float(k[1, 1])))),
    )


def scale_intrinsics(intrinsics: torch.Tensor, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> torch.Tensor:
    """Intrinsics of the same camera for an image resized from ``from_hw`` to ``to_hw``."""
    k = validate_intrinsics(intrinsics).clone()
    _check_size(*from_hw)
    _check_size(*to_hw)
    sy = to_hw[0] / from_hw[0]
    sx = to_hw[1] / from_hw[1]
    k[..., 0, :] *= sx
    k[..., 1, :] *= sy
    return k


def intrinsics_from_normalized(normalized: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Convert the reference code's normalized intrinsics (image spans ``[0, 1]`` in u and v)."""
    _check_size(height, width)
    k = torch.as_tensor(normalized, dtype=torch.float64).clone()
    k[..., 0, :] *= width
    k[..., 1, :] *= height
    return validate_intrinsics(k)


def validate_intrinsics(intrinsics: torch.Tensor, what: str = "intrinsics") -> torch.Tensor:
    """Return ``intrinsics`` as float64 after checking shape ``[..., 3, 3]``, finiteness and focal > 0."""
    k = torch.as_tensor(intrinsics)
    if k.ndim < 2 or tuple(k.shape[-2:]) != (3, 3):
        raise InputError(f"{what} must have shape [3, 3] (or [T, 3, 3]), got {list(k.shape)}")
    k = k.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(k).all():
        raise InputError(f"{what} contain NaN or infinite values")
    if (k[..., 0, 0] <= 0).any() or (k[..., 1, 1] <= 0).any():
        raise InputError(
            f"{what} have a zero or negative focal length (fx={k[..., 0, 0].min().item()}, "
            f"fy={k[..., 1, 1].min().item()}); focal lengths must be positive pixels."
        )
    return k
