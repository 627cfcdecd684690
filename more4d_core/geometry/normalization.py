"""Depth-guided motion normalization (the representation 4D-STraG generates) and its inverse.

With displacements ``D_t = P_t - P_0`` and frame-0 depth ``Z0``::

    n_x = D_x * fx / Z0        X_t = X_0 + n_x * Z0 / fx
    n_y = D_y * fy / Z0        Y_t = Y_0 + n_y * Z0 / fy
    n_z = D_z / Z0             Z_t = Z0 * (1 + n_z)

``n_x, n_y`` are approximately image-plane displacements in units of the image size and ``n_z`` is
the relative depth change, so the field is invariant to a global scale of the scene. ``Z0`` values
that are NaN, zero or infinite are replaced by 1 (as the reference does).

The factors default to the constants the authors trained with (``fx = 0.75 / (368/512)``,
``fy = 1``). :meth:`NormalizationFactors.from_intrinsics` derives them from a camera instead
(``fx = K[0,0] / width``, ``fy = K[1,1] / height``: displacement as a fraction of the image size),
which is what a model trained by us on varied intrinsics should use.

A third choice, ``"focal"`` (``fx = fy = 1``), measures displacement in units of the focal length
(on the ``z = 1`` plane): the field of a motion given in world units relative to the depth (as in
our procedural data: "slides left" moves an object by a fraction of its distance) is then the same
for every field of view, so a model does not have to guess the focal length from the image.

The reference never applies the inverse at inference; we always do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..camera.intrinsics import validate_intrinsics
from ..errors import InputError

REFERENCE_FX = 0.75 / (368.0 / 512.0)
REFERENCE_FY = 1.0


@dataclass(frozen=True)
class NormalizationFactors:
    """The two focal factors of the normalization."""

    fx: float = REFERENCE_FX
    fy: float = REFERENCE_FY

    def __post_init__(self):
        if not (self.fx > 0 and self.fy > 0):
            raise InputError(f"normalization factors must be positive, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def reference(cls) -> NormalizationFactors:
        """The constants of the authors' training scripts."""
        return cls(REFERENCE_FX, REFERENCE_FY)

    @classmethod
    def from_intrinsics(cls, intrinsics: torch.Tensor, height: int, width: int) -> NormalizationFactors:
        """Factors derived from pixel intrinsics of a ``height x width`` grid."""
        k = validate_intrinsics(intrinsics)
        return cls(float(k[0, 0]) / width, float(k[1, 1]) / height)

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy}


NORMALIZATIONS = ("reference", "intrinsics", "focal")


def factors_for(mode: str, intrinsics: torch.Tensor, height: int, width: int) -> NormalizationFactors:
    """The factors of a normalization ``mode`` (one of :data:`NORMALIZATIONS`) for a ``height x width`` grid."""
    if mode == "intrinsics":
        return NormalizationFactors.from_intrinsics(intrinsics, height, width)
    if mode == "focal":
        return NormalizationFactors(1.0, 1.0)
    if mode == "reference":
        return NormalizationFactors.reference()
    raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")


def safe_depth(z0: torch.Tensor) -> torch.Tensor:
    """Frame-0 depth with NaN, zero and infinite values replaced by 1."""
    bad = ~torch.isfinite(z0) | (z0 == 0)
    return torch.where(bad, torch.ones_like(z0), z0)


def _check_tracks(points: torch.Tensor, name: str) -> None:
    if points.ndim < 2 or points.shape[-1] != 3:
        raise InputError(f"{name} must have shape [T, N, 3] (or [T, H, W, 3]), got {list(points.shape)}")
    if not points.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got {points.dtype}")


def normalize_motion(points: torch.Tensor, factors: NormalizationFactors | None = None) -> torch.Tensor:
    """Normalized displacement field ``n`` (same shape as ``points``, frame 0 is all zeros).

    ``points`` holds trajectories over time on the first axis: ``[T, N, 3]`` or ``[T, H, W, 3]``.
    """
    points = torch.as_tensor(points)
    _check_tracks(points, "points")
    f = factors or NormalizationFactors()
    p0 = points[:1]
    z0 = safe_depth(p0[..., 2:3])
    disp = points - p0
    scale = torch.tensor([f.fx, f.fy, 1.0], dtype=points.dtype, device=points.device)
    return disp * scale / z0


def denormalize_motion(
    normalized: torch.Tensor,
    points0: torch.Tensor,
    factors: NormalizationFactors | None = None,
    *,
    force_frame0: bool = True,
) -> torch.Tensor:
    """Metric trajectories from a normalized field and the frame-0 points.

    ``normalized`` is ``[T, N, 3]`` (or ``[T, H, W, 3]``) and ``points0`` is ``[N, 3]`` (or
    ``[H, W, 3]``). With ``force_frame0`` the first frame is exactly ``points0``.
    """
    normalized = torch.as_tensor(normalized)
    points0 = torch.as_tensor(points0, device=normalized.device)
    _check_tracks(normalized, "normalized motion")
    if tuple(points0.shape) != tuple(normalized.shape[1:]):
        raise InputError(
            f"frame-0 points have shape {list(points0.shape)} but the motion field's frames have shape "
            f"{list(normalized.shape[1:])}; both must describe the same grid of points."
        )
    f = factors or NormalizationFactors()
    p0 = points0.to(normalized.dtype).unsqueeze(0)
    z0 = safe_depth(p0[..., 2:3])
    x = p0[..., 0:1] + normalized[..., 0:1] * z0 / f.fx
    y = p0[..., 1:2] + normalized[..., 1:2] * z0 / f.fy
    z = z0 * (1.0 + normalized[..., 2:3])
    out = torch.cat([x, y, z], dim=-1)
    if force_frame0:
        out[0] = p0[0]
    return out


def rebase_motion(tracks: torch.Tensor, points0: torch.Tensor) -> torch.Tensor:
    """The motion of ``tracks`` ``[T, N, 3]``, relative to their own frame-0 depth, placed on other
    frame-0 points ``[N, 3]`` (the same normalized motion; the factors cancel, so any will do).
    Used to score motion generated from one depth map against tracks that start at another."""
    unit = NormalizationFactors(1.0, 1.0)
    return denormalize_motion(normalize_motion(tracks, unit), points0.to(tracks.dtype), unit)
